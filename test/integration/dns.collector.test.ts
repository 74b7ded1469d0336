/**
 * Domains for both ends of a flow, from DNS answers the monitored workload
 * really received: a real DNS server (dnsmasq) in a test network namespace,
 * a client in the monitored cgroup resolving through it with a real resolver
 * (c-ares via node's dns.Resolver) and connecting to the resolved address,
 * the real kernel programs, the real CLI and the real collector.
 */
import { join } from 'node:path';
import { TestCgroup, collect } from '../helpers/cgroup';
import { TestNet } from '../helpers/netns';
import { startCollector, RunningCollector, CollectedLogRecord } from '../helpers/collector';
import { startFlowtap, killAllFlowtaps, RunningFlowtap } from '../helpers/flowtap';
import { startDnsmasq, Dnsmasq } from '../helpers/dnsmasq';

const RESOLVE = join(__dirname, '..', 'fixtures', 'resolve-connect.js');
const SERVER = join(__dirname, '..', 'fixtures', 'tcp-server.js');
const CLIENT = join(__dirname, '..', 'fixtures', 'tcp-client.js');
const PORT = 8080;

interface Resolved {
  ok: boolean;
  error?: string;
  addresses: string[];
  address?: string;
  localAddress?: string;
  localPort?: number;
}

describe('DNS cache → domains on flows (real dnsmasq, real resolver, real kernel, real collector)', () => {
  let net: TestNet;
  let cg: TestCgroup;
  let collector: RunningCollector;
  let dns: Dnsmasq;
  let ft: RunningFlowtap;
  let server: ReturnType<TestNet['spawnIn']>;
  const ip = (n: number) => net.v4(n);

  beforeAll(async () => {
    net = new TestNet();
    for (const n of [3, 4, 5, 6, 7]) net.addAddress(net.b, ip(n));
    dns = await startDnsmasq(
      net.b.prefix,
      [net.b.ipv4],
      [
        `host-record=svc.flowtap.test,${ip(2)}`,
        'cname=www.flowtap.test,edge.flowtap.test',
        'cname=edge.flowtap.test,svc.flowtap.test',
        `host-record=one.flowtap.test,${ip(3)}`,
        `host-record=two.flowtap.test,${ip(3)}`,
        `host-record=short.flowtap.test,${ip(6)},1`,
        `host-record=v6.flowtap.test,${net.b.ipv6}`,
        `host-record=self.flowtap.test,${net.a.ipv4}`,
        `host-record=tcp.flowtap.test,${ip(7)}`,
      ],
      `${ip(4)} multi.flowtap.test\n${ip(5)} multi.flowtap.test\n`,
    );
    server = net.spawnIn(net.b, process.execPath, [SERVER, '::', String(PORT)]);
    await new Promise((resolve) => server.stdout!.once('data', resolve));
    collector = await startCollector();
    cg = new TestCgroup('dns');
    ft = await startFlowtap(['--cgroup', cg.path, '--endpoint', collector.endpoint], { OTEL_BLRP_SCHEDULE_DELAY: '100' });
  });

  afterAll(async () => {
    killAllFlowtaps();
    server?.kill();
    await dns?.stop();
    await collector?.close();
    await cg?.destroy();
    net?.destroy();
  });

  async function resolveConnect(name: string, family: 4 | 6, index: number | string = 0, delayMs = 0, port = PORT): Promise<Resolved> {
    const child = cg.spawn('ip', [
      'netns',
      'exec',
      net.a.ns,
      process.execPath,
      RESOLVE,
      net.b.ipv4,
      name,
      String(family),
      String(port),
      String(index),
      String(delayMs),
    ]);
    const r = JSON.parse((await collect(child)).trim()) as Resolved;
    expect(r).toMatchObject({ ok: true });
    return r;
  }

  async function beginFor(localPort: number): Promise<CollectedLogRecord> {
    const [rec] = await collector.waitForLogRecords((r) => r.eventName === 'flowtap.flow.begin' && r.attributes['source.port'] === localPort, 10000);
    return rec;
  }

  it('a CNAME chain: the asked name first, then each hop in order; server.address is the asked name', async () => {
    const r = await resolveConnect('www.flowtap.test', 4);
    expect(r.address).toBe(ip(2));
    const rec = await beginFor(r.localPort!);
    expect(rec.attributes['destination.address']).toBe(ip(2));
    expect(rec.attributes['flowtap.flow.destination.domains']).toEqual(['www.flowtap.test', 'edge.flowtap.test', 'svc.flowtap.test']);
    expect(rec.attributes['server.address']).toBe('www.flowtap.test');
    expect(rec.body).toBe(`outgoing tcp ${net.a.ipv4}:${r.localPort} -> ${ip(2)}:${PORT} (www.flowtap.test)`);
  });

  it('two names on one address: both, the newest answer first', async () => {
    await resolveConnect('one.flowtap.test', 4, 0, 0, 0);
    const r = await resolveConnect('two.flowtap.test', 4);
    const rec = await beginFor(r.localPort!);
    expect(rec.attributes['flowtap.flow.destination.domains']).toEqual(['two.flowtap.test', 'one.flowtap.test']);
  });

  it('a name with several addresses names each of them', async () => {
    const first = await resolveConnect('multi.flowtap.test', 4, ip(4));
    const second = await resolveConnect('multi.flowtap.test', 4, ip(5));
    expect(first.addresses.sort()).toEqual([ip(4), ip(5)]);
    for (const r of [first, second]) {
      const rec = await beginFor(r.localPort!);
      expect(rec.attributes['destination.address']).toBe(r.address);
      expect(rec.attributes['flowtap.flow.destination.domains']).toEqual(['multi.flowtap.test']);
    }
  });

  it('AAAA over IPv6, and the source named from an answer about the client itself', async () => {
    await resolveConnect('self.flowtap.test', 4, 0, 0, 0);
    const r = await resolveConnect('v6.flowtap.test', 6);
    expect(r.address).toBe(net.b.ipv6);
    const rec = await beginFor(r.localPort!);
    expect(rec.attributes['network.type']).toBe('ipv6');
    expect(rec.attributes['flowtap.flow.destination.domains']).toEqual(['v6.flowtap.test']);
    // the client's own IPv6 address was never resolved
    expect(rec.attributes['flowtap.flow.source.domains']).toEqual([]);
    const v4 = await resolveConnect('svc.flowtap.test', 4);
    const rec4 = await beginFor(v4.localPort!);
    expect(rec4.attributes['flowtap.flow.source.domains']).toEqual(['self.flowtap.test']);
  });

  it('an answer over TCP (dig +tcp) names the flow too', async () => {
    const dig = cg.spawn('ip', ['netns', 'exec', net.a.ns, 'dig', '+tcp', '+short', `@${net.b.ipv4}`, 'tcp.flowtap.test', 'A']);
    expect((await collect(dig)).trim()).toBe(ip(7));
    const client = cg.spawn('ip', ['netns', 'exec', net.a.ns, process.execPath, CLIENT, ip(7), String(PORT), '1']);
    const c = JSON.parse((await collect(client)).trim()) as { ok: boolean; localPort: number };
    expect(c.ok).toBe(true);
    const rec = await beginFor(c.localPort);
    expect(rec.attributes['flowtap.flow.destination.domains']).toEqual(['tcp.flowtap.test']);
  });

  it('an expired TTL yields no name: server.address falls back to the IP', async () => {
    const r = await resolveConnect('short.flowtap.test', 4, 0, 2500); // TTL 1 s, connect after 2.5 s
    const rec = await beginFor(r.localPort!);
    expect(rec.attributes['flowtap.flow.destination.domains']).toEqual([]);
    expect(rec.attributes['server.address']).toBe(ip(6));
    // and the answer itself was seen (so the miss is the TTL, not the capture)
    const fresh = await resolveConnect('short.flowtap.test', 4);
    const rec2 = await beginFor(fresh.localPort!);
    expect(rec2.attributes['flowtap.flow.destination.domains']).toEqual(['short.flowtap.test']);
  });
});

describe('DNS answers leaving the cgroup: a DNS server inside the watched cgroup (real dnsmasq, real kernel, real collector)', () => {
  let net: TestNet;
  let cg: TestCgroup;
  let collector: RunningCollector;
  let dns: Dnsmasq;
  let ft: RunningFlowtap;
  let server: ReturnType<TestCgroup['spawn']>;

  beforeAll(async () => {
    net = new TestNet();
    cg = new TestCgroup('dnssrv');
    // dnsmasq and a TCP server both run inside the watched cgroup, in host b
    const inCgroup = ['/bin/sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg.path, ...net.b.prefix];
    dns = await startDnsmasq(inCgroup, [net.b.ipv4], [`host-record=in.flowtap.test,${net.b.ipv4}`, `host-record=client.flowtap.test,${net.a.ipv4}`]);
    server = cg.spawn('ip', ['netns', 'exec', net.b.ns, process.execPath, SERVER, '::', String(PORT)]);
    await new Promise((resolve) => server.stdout!.once('data', resolve));
    collector = await startCollector();
    ft = await startFlowtap(['--cgroup', cg.path, '--endpoint', collector.endpoint], { OTEL_BLRP_SCHEDULE_DELAY: '100' });
  });

  afterAll(async () => {
    killAllFlowtaps();
    await dns?.stop();
    await collector?.close();
    await cg?.destroy();
    net?.destroy();
  });

  it('an incoming flow is named from the answers the in-cgroup server sent (egress), both ends', async () => {
    // a client outside the watched cgroup, in host a
    const run = (args: string[]) => collect(net.spawnIn(net.a, process.execPath, [RESOLVE, net.b.ipv4, ...args]));
    expect(JSON.parse(await run(['client.flowtap.test', '4', '0']))).toMatchObject({ ok: true });
    const r = JSON.parse(await run(['in.flowtap.test', '4', String(PORT)])) as Resolved;
    expect(r.ok).toBe(true);
    const [rec] = await collector.waitForLogRecords((x) => x.eventName === 'flowtap.flow.begin' && x.attributes['source.port'] === r.localPort, 10000);
    expect(rec.attributes['flowtap.flow.direction']).toBe('incoming');
    expect(rec.attributes['flowtap.flow.destination.domains']).toEqual(['in.flowtap.test']);
    expect(rec.attributes['flowtap.flow.source.domains']).toEqual(['client.flowtap.test']);
    expect(rec.attributes['server.address']).toBe('in.flowtap.test');
  });
});
