/**
 * DNS answers with TTL 0, as dnsmasq gives local names by default
 * (local-ttl 0): a real dnsmasq in a test network namespace, a client in the
 * monitored cgroup resolving through it with a real resolver and connecting
 * to the answer, the real kernel programs, the real CLI and the real
 * collector. A connection right after the answer is named; one that begins
 * after --dns-zero-ttl-seconds is not; both show in the counters.
 */
import { join } from 'node:path';
import { TestCgroup, collect } from '../helpers/cgroup';
import { TestNet } from '../helpers/netns';
import { startCollector, RunningCollector, CollectedLogRecord } from '../helpers/collector';
import { startFlowtap, killAllFlowtaps, RunningFlowtap } from '../helpers/flowtap';
import { startDnsmasq, Dnsmasq } from '../helpers/dnsmasq';

const RESOLVE = join(__dirname, '..', 'fixtures', 'resolve-connect.js');
const SERVER = join(__dirname, '..', 'fixtures', 'tcp-server.js');
const PORT = 8080;
/** The window flowtap is given; the late connection waits well past it. */
const WINDOW_SECONDS = 2;
const LATE_MS = WINDOW_SECONDS * 1000 + 1500;

interface Resolved {
  ok: boolean;
  address?: string;
  localPort?: number;
}

describe('DNS answers with TTL 0 (real dnsmasq, a host record with TTL 0, real resolver, real kernel, real collector)', () => {
  let net: TestNet;
  let cg: TestCgroup;
  let collector: RunningCollector;
  let dns: Dnsmasq;
  let ft: RunningFlowtap;
  let server: ReturnType<TestNet['spawnIn']>;
  const ip = (n: number) => net.v4(n);

  beforeAll(async () => {
    net = new TestNet();
    net.addAddress(net.b, ip(3));
    // a host record with TTL 0: what dnsmasq gives every local name by default (the helper sets local-ttl=300)
    dns = await startDnsmasq(net.b.prefix, [net.b.ipv4], [`host-record=zero.flowtap.test,${ip(3)},0`]);
    server = net.spawnIn(net.b, process.execPath, [SERVER, '0.0.0.0', String(PORT)]);
    await new Promise((resolve) => server.stdout!.once('data', resolve));
    collector = await startCollector();
    cg = new TestCgroup('dns0ttl');
    ft = await startFlowtap(['--cgroup', cg.path, '--endpoint', collector.endpoint, '--log-level', 'debug', '--dns-zero-ttl-seconds', String(WINDOW_SECONDS)], {
      OTEL_BLRP_SCHEDULE_DELAY: '100',
    });
  });

  afterAll(async () => {
    killAllFlowtaps();
    server?.kill();
    await dns?.stop();
    await collector?.close();
    await cg?.destroy();
    net?.destroy();
  });

  async function resolveConnect(name: string, delayMs: number): Promise<Resolved> {
    const child = cg.spawn('ip', ['netns', 'exec', net.a.ns, process.execPath, RESOLVE, net.b.ipv4, name, '4', String(PORT), '0', String(delayMs)]);
    const r = JSON.parse((await collect(child, 20_000)).trim()) as Resolved;
    expect(r).toMatchObject({ ok: true, address: ip(3) });
    return r;
  }

  async function beginFor(localPort: number): Promise<CollectedLogRecord> {
    const [rec] = await collector.waitForLogRecords((r) => r.eventName === 'flowtap.flow.begin' && r.attributes['source.port'] === localPort, 10000);
    return rec;
  }

  it('dnsmasq really answers with TTL 0', async () => {
    const dig = cg.spawn('ip', ['netns', 'exec', net.a.ns, 'dig', '+noall', '+answer', `@${net.b.ipv4}`, 'zero.flowtap.test', 'A']);
    // "zero.flowtap.test.	0	IN	A	198.18.x.3"
    expect((await collect(dig)).trim().split(/\s+/)).toEqual(['zero.flowtap.test.', '0', 'IN', 'A', ip(3)]);
  });

  it('a connection right after the answer is named, one after the window is not, and both are counted', async () => {
    const soon = await resolveConnect('zero.flowtap.test', 0);
    const late = await resolveConnect('zero.flowtap.test', LATE_MS);
    const named = await beginFor(soon.localPort!);
    expect(named.attributes['flowtap.flow.destination.domains']).toEqual(['zero.flowtap.test']);
    expect(named.attributes['server.address']).toBe('zero.flowtap.test');
    const unnamed = await beginFor(late.localPort!);
    expect(unnamed.attributes['flowtap.flow.destination.domains']).toEqual([]);
    expect(unnamed.attributes['server.address']).toBe(ip(3));

    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    const counters = ft
      .logs()
      .filter((l) => l.msg === 'counters')
      .pop() as { dns?: Record<string, number> } | undefined;
    // held: the dig answer and the two resolutions, one name each; named: the first connection's begin and end
    // (both within the window), never the late one's
    expect(counters?.dns).toMatchObject({ zeroTtlNames: 3, zeroTtlHits: 2 });
    expect(counters!.dns!.expired).toBeGreaterThanOrEqual(1);
  });
});
