/**
 * Failed connection attempts end to end: the real CLI on a throwaway cgroup,
 * the real kernel programs (sockops state and RTO callbacks,
 * cgroup/sock_release, the ingress RST check), real sockets and the real
 * collector. Each way a connect fails gives exactly one flowtap.flow.attempt
 * record with its reason, no begin and no end, within about a second:
 *  - refused: a closed port on loopback (the kernel answers the SYN with an RST);
 *  - unreachable: a test host whose nftables answers the SYN with ICMP host
 *    unreachable (ICMPv6 address unreachable);
 *  - timed out: a test host that drops the SYNs, with tcp_syn_retries=1 in
 *    the client's namespace so the kernel gives up after ~3 s;
 *  - abandoned: the same host, and the client closes the socket after 300 ms.
 * The port filter applies: a refused connect to an excluded port gives no record.
 */
import { createServer, type Server } from 'node:net';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { TestCgroup, collect } from '../helpers/cgroup';
import { startCollector, type RunningCollector, type CollectedLogRecord } from '../helpers/collector';
import { finalLines, startFlowtap, killAllFlowtaps, type WatchedFlowtap } from '../helpers/flowtap';
import { TestNet, nftDrop, nftRejectUnreachable } from '../helpers/netns';

const BURST = join(__dirname, '..', 'fixtures', 'tcp-burst.js');
const RUN_ATTR = 'flowtap.test.run';
const ATTEMPT = 'flowtap.flow.attempt';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface BurstResult {
  ok: number;
  errors: Record<string, number>;
  results: { ok: boolean; error?: string }[];
}

/** A port nothing listens on: bound (so no one else takes it while we look), then closed. */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s: Server = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('failed connection attempts (real CLI, real kernel programs, real sockets, real collector)', () => {
  let collector: RunningCollector;
  let cg: TestCgroup;
  let net: TestNet;
  let ft: WatchedFlowtap;
  const id = `attempts${process.pid}`;
  const unreachablePort = 20_000 + Math.floor(Math.random() * 10_000);
  const droppedPort = unreachablePort + 1;
  let refusedPort = 0;
  let excludedPort = 0;

  beforeAll(async () => {
    collector = await startCollector();
    cg = new TestCgroup('attempts');
    net = new TestNet();
    net.nft(net.b, nftRejectUnreachable('unreach', `tcp dport ${unreachablePort}`));
    net.nft(net.b, nftDrop('dropsyn', 'input', `tcp dport ${droppedPort}`));
    // the client's namespace gives up on an unanswered SYN after one retransmission (~3 s)
    execFileSync('ip', ['netns', 'exec', net.a.ns, 'sysctl', '-qw', 'net.ipv4.tcp_syn_retries=1']);
    refusedPort = await closedPort();
    do excludedPort = await closedPort();
    while (excludedPort === refusedPort);
    ft = await startFlowtap(['--cgroup', cg.path, '--endpoint', collector.endpoint, '--log-level', 'debug', '--exclude-ports', String(excludedPort)], {
      OTEL_BLRP_SCHEDULE_DELAY: '100',
      OTEL_RESOURCE_ATTRIBUTES: `${RUN_ATTR}=${id}`,
    });
  }, 60_000);

  afterAll(async () => {
    killAllFlowtaps();
    await cg?.destroy();
    net?.destroy();
    await collector?.close();
  });

  /** Connects from inside the cgroup (in test host a, or in this namespace) and returns what the client saw. */
  async function connect(host: string, port: number, timeoutMs: number, inHostA: boolean): Promise<BurstResult> {
    const argv = [process.execPath, BURST, JSON.stringify({ host, port, timeoutMs })];
    const child = inHostA ? cg.spawn('ip', ['netns', 'exec', net.a.ns, ...argv]) : cg.spawn(argv[0], argv.slice(1));
    return JSON.parse(await collect(child)) as BurstResult;
  }

  /** Packets the rule of nft table `table` in test host b has matched. */
  const nftCount = (table: string): number => {
    const out = execFileSync('ip', ['netns', 'exec', net.b.ns, 'nft', 'list', 'table', 'inet', table], { encoding: 'utf8' });
    const m = /counter packets (\d+)/.exec(out);
    if (m === null) throw new Error(`no counter in: ${out}`);
    return Number(m[1]);
  };
  /** The SYNs sent to droppedPort (dropped by test host b). */
  const droppedSyns = (): number => nftCount('dropsyn');

  const ofRun = (r: CollectedLogRecord) => r.resource[RUN_ATTR] === id;
  const toPort = (port: number) => (r: CollectedLogRecord) => ofRun(r) && r.attributes['destination.port'] === port;

  /** The attempt records to host:port once `n` are there (within withinMs), after a short wait for any extra one. */
  async function attempts(host: string, port: number, n: number, withinMs: number): Promise<CollectedLogRecord[]> {
    const match = (r: CollectedLogRecord) => toPort(port)(r) && r.attributes['destination.address'] === host;
    await collector.waitForLogRecords((r) => match(r) && r.eventName === ATTEMPT, withinMs, n);
    await sleep(300);
    return collector.readLogRecords().filter(match);
  }

  it('refused: an RST answering the SYN (a closed port on loopback), reported within about a second', async () => {
    const r = await connect('127.0.0.1', refusedPort, 5000, false);
    expect(r.errors).toEqual({ ECONNREFUSED: 1 });
    const seen = await attempts('127.0.0.1', refusedPort, 1, 1500);
    expect(seen.map((x) => x.eventName)).toEqual([ATTEMPT]);
    expect(seen[0].attributes).toMatchObject({
      'flowtap.flow.attempt.reason': 'refused',
      'flowtap.flow.direction': 'outgoing',
      'source.address': '127.0.0.1',
      'network.peer.port': refusedPort,
      'network.type': 'ipv4',
      'flowtap.flow.attempt.syn_count': 1,
    });
    const duration = seen[0].attributes['flowtap.flow.attempt.duration'] as number;
    expect(duration).toBeGreaterThanOrEqual(0);
    expect(duration).toBeLessThan(1);
    expect(seen[0].attributes['flowtap.flow.close_reason']).toBeUndefined();
  });

  it('unreachable: an ICMP / ICMPv6 error for the SYN (IPv4 and IPv6)', async () => {
    for (const host of [net.b.ipv4, net.b.ipv6]) {
      const before = nftCount('unreach');
      const r = await connect(host, unreachablePort, 5000, true);
      // each SYN that reached host b was answered with an ICMP error (one may be rate-limited or come while connect() holds the socket)
      const syns = nftCount('unreach') - before;
      expect(r.errors).toEqual({ EHOSTUNREACH: 1 });
      const seen = await attempts(host, unreachablePort, 1, 1500);
      expect(seen.map((x) => x.eventName)).toEqual([ATTEMPT]);
      expect(seen[0].attributes).toMatchObject({
        'flowtap.flow.attempt.reason': 'unreachable',
        'source.address': host === net.b.ipv4 ? net.a.ipv4 : net.a.ipv6,
        'network.type': host === net.b.ipv4 ? 'ipv4' : 'ipv6',
        'flowtap.flow.attempt.syn_count': syns,
      });
      expect(syns).toBeGreaterThanOrEqual(1);
    }
  });

  it('timed out: SYNs dropped until the kernel gives up (tcp_syn_retries=1: a few seconds)', async () => {
    const started = Date.now();
    const r = await connect(net.b.ipv4, droppedPort, 20_000, true);
    expect(r.errors).toEqual({ ETIMEDOUT: 1 });
    expect(Date.now() - started).toBeLessThan(15_000);
    const seen = await attempts(net.b.ipv4, droppedPort, 1, 1500);
    expect(seen.map((x) => x.eventName)).toEqual([ATTEMPT]);
    expect(seen[0].attributes['flowtap.flow.attempt.reason']).toBe('timed_out');
    // every SYN the client sent reached the test host's drop rule (the abandoned case below adds its own later)
    expect(seen[0].attributes['flowtap.flow.attempt.syn_count']).toBe(droppedSyns());
    expect(droppedSyns()).toBeGreaterThanOrEqual(2);
    expect(seen[0].attributes['flowtap.flow.attempt.duration'] as number).toBeGreaterThan(2);
  }, 30_000);

  it('abandoned: the application closes the socket before any answer (a connect timeout of 300 ms)', async () => {
    const r = await connect(net.b.ipv6, droppedPort, 300, true);
    expect(r.errors).toEqual({ timeout: 1 });
    const seen = await attempts(net.b.ipv6, droppedPort, 1, 1500);
    expect(seen.map((x) => x.eventName)).toEqual([ATTEMPT]);
    expect(seen[0].attributes['flowtap.flow.attempt.reason']).toBe('abandoned');
    expect(seen[0].attributes['flowtap.flow.attempt.syn_count']).toBe(1);
    expect(seen[0].attributes['flowtap.flow.attempt.duration'] as number).toBeLessThan(1);
  });

  it('the port filter applies: a refused connect to an excluded port gives no record; the counters match the records by reason', async () => {
    const r = await connect('127.0.0.1', excludedPort, 5000, false);
    expect(r.errors).toEqual({ ECONNREFUSED: 1 });
    await sleep(1500);
    expect(collector.readLogRecords().filter(toPort(excludedPort))).toEqual([]);
    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    const probe = (finalLines(ft).counters as { probe: Record<string, number> }).probe;
    const byReason: Record<string, number> = {};
    for (const rec of collector.readLogRecords().filter((x) => ofRun(x) && x.eventName === ATTEMPT)) {
      const reason = String(rec.attributes['flowtap.flow.attempt.reason']);
      byReason[reason] = (byReason[reason] ?? 0) + 1;
    }
    expect(byReason).toEqual({ refused: 1, unreachable: 2, timed_out: 1, abandoned: 1 });
    expect({
      refused: probe.attempt_refused,
      unreachable: probe.attempt_unreachable,
      timed_out: probe.attempt_timed_out,
      abandoned: probe.attempt_abandoned,
    }).toEqual(byReason);
    expect(probe.flow_begin).toBe(0);
  });
});
