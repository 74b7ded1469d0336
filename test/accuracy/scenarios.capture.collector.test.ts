/**
 * Accuracy, judged by a packet capture: each scenario runs real TCP traffic
 * between test hosts (network namespaces on a bridge) or on a namespace's
 * loopback, with the real CLI (dist/cli.js, real kernel programs) watching a
 * throwaway cgroup and exporting to a real OpenTelemetry Collector. tcpdump
 * captures the same traffic; tshark reads it back and the oracle
 * (test/helpers/oracle.ts) says which flows happened on the wire. The records
 * the collector wrote are compared with what the capture says they should
 * be: every record expected exactly once, nothing else, every field right.
 * Each scenario writes its row for docs/accuracy.md (make accuracy).
 */
import { join } from 'node:path';
import { TestCgroup, collect } from '../helpers/cgroup';
import { startCollector, RunningCollector, CollectedLogRecord } from '../helpers/collector';
import { startFlowtap, killAllFlowtaps, RunningFlowtap } from '../helpers/flowtap';
import { TestLan, LanHost, nftDrop, nftRejectReset, nftDropFirstSynAck } from '../helpers/netns';
import { startCapture, readCapture, deriveFlows, namesByAddress, OracleFlow } from '../helpers/oracle';
import { accountFor, compare, expectedRecords, explain, writeResult, Direction, Comparison, LOSS_RULES, DNS_LOSS_COUNTER } from '../helpers/accuracy';
import { startDnsmasq, Dnsmasq } from '../helpers/dnsmasq';

const NODE = process.execPath;
const SERVER = join(__dirname, '..', 'fixtures', 'tcp-server.js');
const BURST = join(__dirname, '..', 'fixtures', 'tcp-burst.js');
const RESOLVE = join(__dirname, '..', 'fixtures', 'resolve-connect.js');
const SCENARIO_ATTR = 'flowtap.test.scenario';
/** The probe's loss counters (the others in LOSS_RULES are the exporter's). */
const LOSS_COUNTERS = [...Object.keys(LOSS_RULES).filter((n) => n !== 'droppedRecords' && n !== 'failedRecords'), DNS_LOSS_COUNTER];
const EXPORT_ENV = {
  OTEL_BLRP_SCHEDULE_DELAY: '100',
  OTEL_BLRP_MAX_QUEUE_SIZE: '65536',
  OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '2048',
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** argv prefix: raise the open-files limit to the hard limit, then exec the rest. */
const NOFILE = ['/bin/sh', '-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh'];

interface BurstResult {
  attempted: number;
  ok: number;
  errors: Record<string, number>;
  results?: { ok: boolean; localPort?: number; error?: string }[];
}

interface BurstOptions {
  host: string;
  port: number;
  count?: number;
  concurrency?: number;
  timeoutMs?: number;
  localPort?: number;
  close?: 'server' | 'client' | 'reset';
  hold?: boolean;
}

interface Scenario {
  id: string;
  title: string;
  /** Where tcpdump listens. */
  capture: { ns: string; dev: string };
  /** Runs before flowtap attaches (e.g. opens connections that stay open). */
  before?: (cg: TestCgroup) => Promise<unknown>;
  /** The traffic. Returns a note for the report. */
  traffic: (cg: TestCgroup, before: unknown) => Promise<string>;
  /** Which records an established flow gives (the directions the cgroup sees it in). */
  directions: (flow: OracleFlow) => Direction[];
  /** Flows established before flowtap attached give nothing. */
  onlySinceAttach?: boolean;
  /** Destination domains come from the DNS answers in the capture. */
  checkDomains?: boolean;
  collector?: () => RunningCollector;
  /** Extra checks once compared. */
  check?: (r: { comparison: Comparison; flows: OracleFlow[]; probe: Record<string, number> }) => void;
  /** How long to wait for the records at the collector. */
  waitMillis?: number;
}

describe('accuracy against a packet capture (real kernel programs, real CLI, real collector, tcpdump + tshark oracle, test hosts on a bridge)', () => {
  let lan: TestLan;
  let A: LanHost; // clients
  let B: LanHost; // servers
  let C: LanHost; // dual-stack server, clients outside the cgroup, DNS
  let collector: RunningCollector;
  const servers: ReturnType<TestLan['spawnIn']>[] = [];

  async function serve(h: LanHost | string, host: string, port: number, cg?: TestCgroup): Promise<void> {
    const ns = typeof h === 'string' ? h : h.ns;
    const argv = ['ip', 'netns', 'exec', ns, ...NOFILE, NODE, SERVER, host, String(port), '65535'];
    const child =
      cg !== undefined ? cg.spawn(argv[0], argv.slice(1)) : lan.spawnIn(ns, NOFILE[0], [...NOFILE.slice(1), NODE, SERVER, host, String(port), '65535']);
    servers.push(child);
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`server ${host}:${port} exited ${code}: ${err}`)));
    });
  }

  /** Runs the burst client in host h, inside cgroup cg when given. */
  function burst(h: LanHost, o: BurstOptions, cg?: TestCgroup): ReturnType<TestLan['spawnIn']> {
    const cmd = [...NOFILE, NODE, BURST, JSON.stringify(o)];
    const stdio: ['pipe', 'pipe', 'pipe'] = ['pipe', 'pipe', 'pipe'];
    return cg !== undefined ? cg.spawn('ip', ['netns', 'exec', h.ns, ...cmd], { stdio }) : lan.spawnIn(h, cmd[0], cmd.slice(1), { stdio });
  }

  async function runBurst(h: LanHost, o: BurstOptions, cg?: TestCgroup, timeoutMs = 60_000): Promise<BurstResult> {
    return JSON.parse((await collect(burst(h, o, cg), timeoutMs)).trim().split('\n').pop()!) as BurstResult;
  }

  beforeAll(async () => {
    lan = new TestLan(3);
    [A, B, C] = lan.hosts;
    for (const h of lan.hosts) {
      lan.sysctl(h, { 'net.core.somaxconn': 65535, 'net.ipv4.tcp_max_syn_backlog': 65535 });
    }
    await serve(B, '0.0.0.0', 8080); // IPv4 only
    await serve(B, B.ipv6, 8080); // IPv6 only
    await serve(C, '::', 8080); // dual stack
    await serve(A, '127.0.0.1', 9000); // loopback, outside the cgroup
    collector = await startCollector();
  });

  afterAll(async () => {
    killAllFlowtaps();
    for (const s of servers) s.kill('SIGKILL');
    await collector?.close();
    lan?.destroy();
  });

  afterEach(() => killAllFlowtaps());

  const scenarioRecords = (c: RunningCollector, id: string): CollectedLogRecord[] => c.readLogRecords().filter((r) => r.resource[SCENARIO_ATTR] === id);

  async function run(s: Scenario): Promise<void> {
    const t0 = Date.now();
    const coll = s.collector?.() ?? collector;
    const cg = new TestCgroup(s.id.slice(0, 12));
    const capture = await startCapture(s.capture.ns, s.capture.dev);
    let ft: RunningFlowtap | undefined;
    try {
      const before = await s.before?.(cg);
      ft = await startFlowtap(['--cgroup', cg.path, '--endpoint', coll.endpoint, '--log-level', 'debug'], {
        ...EXPORT_ENV,
        OTEL_RESOURCE_ATTRIBUTES: `${SCENARIO_ATTR}=${s.id}`,
      });
      const attachedAt = Date.now() / 1000;
      const note = await s.traffic(cg, before);
      await sleep(300); // the last FINs and ACKs
      const stats = await capture.stop();
      const { segments, dns } = await readCapture(capture.file);
      const flows = deriveFlows(segments);
      const names = namesByAddress(dns);
      const expected = expectedRecords(flows, {
        directions: s.directions,
        since: s.onlySinceAttach ? attachedAt : undefined,
        domains: s.checkDomains ? (addr) => names.get(addr) ?? [] : undefined,
      });

      // every expected record (or a timeout), then a quiet spell in which extra ones would show
      const deadline = Date.now() + (s.waitMillis ?? 10_000);
      // (every poll re-reads the collector's file: poll less often for big scenarios)
      while (scenarioRecords(coll, s.id).length < expected.length && Date.now() < deadline) await sleep(Math.min(1000, 200 + expected.length / 50));
      await sleep(500);
      const stopped = await ft.stop();
      expect(stopped.code).toBe(0);
      await sleep(300); // the collector's file flush
      const stoppedLine = ft
        .logs()
        .filter((l) => l.msg === 'counters')
        .pop() as { probe?: Record<string, number>; droppedRecords?: number; failedRecords?: number } | undefined;
      const probe = stoppedLine?.probe ?? {};
      const seen = scenarioRecords(coll, s.id);
      const comparison = compare(expected, seen);

      // the loss rule (accountFor): a missing record only where a counter names that loss
      const accounting = accountFor(comparison, { ...probe, droppedRecords: stoppedLine?.droppedRecords, failedRecords: stoppedLine?.failedRecords });
      const established = flows.filter((f) => f.established && (!s.onlySinceAttach || (f.synAckTime ?? 0) >= attachedAt));
      const wire = [
        `${flows.length} connection attempts`,
        `${flows.filter((f) => f.established).length} established`,
        flows.some((f) => f.refused) ? `${flows.filter((f) => f.refused).length} refused` : '',
        flows.some((f) => !f.refused && f.synAcks === 0) ? `${flows.filter((f) => !f.refused && f.synAcks === 0).length} unanswered` : '',
        flows.some((f) => f.syns > 1) ? `${flows.filter((f) => f.syns > 1).length} with a retransmitted SYN` : '',
        flows.some((f) => f.synAcks > 1) ? `${flows.filter((f) => f.synAcks > 1).length} with a retransmitted SYN-ACK` : '',
      ]
        .filter(Boolean)
        .join(', ');
      const moved = ['synack_duplicate', 'synack_unsolicited', 'filtered', ...LOSS_COUNTERS].filter((n) => (probe[n] ?? 0) > 0).map((n) => `${n} ${probe[n]}`);
      writeResult({
        id: s.id,
        title: s.title,
        flows: established.length,
        expected: comparison.expected,
        seen: comparison.seen,
        missing: comparison.missing.length,
        duplicate: comparison.duplicate.length,
        unexpected: comparison.unexpected.length,
        wrongField: comparison.wrongField.length,
        accountedFor: accounting.accountedFor,
        maxTimestampOffsetMillis: comparison.maxTimestampOffsetMillis,
        captureDropped: stats.droppedByKernel,
        notes: [note, `wire: ${wire}`, moved.length > 0 ? `counters: ${moved.join(', ')}` : ''].filter(Boolean).join('; '),
        durationMillis: Date.now() - t0,
      });

      expect(stats.droppedByKernel).toBe(0);
      // exact, or every missing record (and wrong name) accounted for by a counter that names that loss
      if (accounting.missing.length > 0 || accounting.wrongField.length > 0) {
        throw new Error(explain({ ...comparison, missing: accounting.missing, wrongField: accounting.wrongField }));
      }
      expect({ duplicate: comparison.duplicate.length, unexpected: comparison.unexpected.length }).toEqual({
        duplicate: 0,
        unexpected: 0,
      });
      s.check?.({ comparison, flows, probe });
    } catch (e) {
      if (e instanceof Error && !/expected \d+, seen/.test(e.message)) e.message += `\n(scenario ${s.id})`;
      throw e;
    } finally {
      if (ft !== undefined && ft.child.exitCode === null) await ft.stop().catch(() => undefined);
      await capture.close();
      await cg.destroy();
    }
  }

  const outgoing = (): Direction[] => ['outgoing'];
  const incoming = (): Direction[] => ['incoming'];
  const both = (): Direction[] => ['outgoing', 'incoming'];
  const okAll = (r: BurstResult, n: number) => {
    expect(r).toMatchObject({ attempted: n, ok: n });
    return `${n} connections`;
  };

  it('ipv4-veth-client: IPv4 over veth, client in the cgroup, the server closes (FIN)', async () => {
    await run({
      id: 'ipv4-veth-client',
      title: 'IPv4 over veth; client in the cgroup; server closes first (FIN)',
      capture: { ns: A.ns, dev: A.dev },
      traffic: async (cg) => okAll(await runBurst(A, { host: B.ipv4, port: 8080, count: 20, concurrency: 5 }, cg), 20),
      directions: outgoing,
      check: ({ comparison }) => expect(comparison.expected).toBe(40),
    });
  });

  it('ipv6-veth-client: IPv6 over veth, client in the cgroup', async () => {
    await run({
      id: 'ipv6-veth-client',
      title: 'IPv6 over veth; client in the cgroup',
      capture: { ns: A.ns, dev: A.dev },
      traffic: async (cg) => okAll(await runBurst(A, { host: B.ipv6, port: 8080, count: 20, concurrency: 5 }, cg), 20),
      directions: outgoing,
      check: ({ comparison }) => expect(comparison.expected).toBe(40),
    });
  });

  it('ipv4-to-dual-stack: IPv4 to a dual-stack :: listener is reported as IPv4', async () => {
    await run({
      id: 'ipv4-to-dual-stack',
      title: 'IPv4 client to a dual-stack `::` listener (server side in the cgroup: an AF_INET6 socket)',
      capture: { ns: C.ns, dev: C.dev },
      before: async (cg) => serve(C, '::', 8085, cg),
      traffic: async () => okAll(await runBurst(A, { host: C.ipv4, port: 8085, count: 10, concurrency: 5 }), 10),
      directions: incoming,
      check: ({ comparison }) => expect(comparison.expected).toBe(20),
    });
  });

  it('loopback-client: loopback, client in the cgroup, server outside', async () => {
    await run({
      id: 'loopback-client',
      title: 'IPv4 loopback; client in the cgroup, server outside it',
      capture: { ns: A.ns, dev: 'lo' },
      traffic: async (cg) => okAll(await runBurst(A, { host: '127.0.0.1', port: 9000, count: 10, concurrency: 5 }, cg), 10),
      directions: outgoing,
      check: ({ comparison }) => expect(comparison.expected).toBe(20),
    });
  });

  it('server-only: server in the cgroup, clients outside, IPv4 and IPv6', async () => {
    await run({
      id: 'server-only',
      title: 'server in the cgroup, clients outside it (IPv4 and IPv6 over veth)',
      capture: { ns: B.ns, dev: B.dev },
      before: async (cg) => serve(B, '::', 8082, cg),
      traffic: async () => {
        const [v4, v6] = await Promise.all([
          runBurst(C, { host: B.ipv4, port: 8082, count: 10, concurrency: 5 }),
          runBurst(C, { host: B.ipv6, port: 8082, count: 10, concurrency: 5 }),
        ]);
        okAll(v4, 10);
        okAll(v6, 10);
        return '20 connections from a host outside the cgroup';
      },
      directions: incoming,
      check: ({ comparison }) => expect(comparison.expected).toBe(40),
    });
  });

  it('both-ends: client and server in the cgroup give two records per flow, opposite directions', async () => {
    await run({
      id: 'both-ends',
      title: 'client and server both in the cgroup (IPv6 loopback): two records per flow',
      capture: { ns: A.ns, dev: 'lo' },
      before: async (cg) => serve(A, '::1', 9001, cg),
      traffic: async (cg) => okAll(await runBurst(A, { host: '::1', port: 9001, count: 10, concurrency: 5 }, cg), 10),
      directions: both,
      check: ({ comparison }) => expect(comparison.expected).toBe(40),
    });
  });

  it('client-closes: the initiator sends the first FIN', async () => {
    await run({
      id: 'fin-by-client',
      title: 'FIN close by the initiator (client half-closes first)',
      capture: { ns: A.ns, dev: A.dev },
      traffic: async (cg) => okAll(await runBurst(A, { host: B.ipv4, port: 8080, count: 10, concurrency: 5, close: 'client' }, cg), 10),
      directions: outgoing,
      check: ({ flows }) => expect(flows.filter((f) => f.established).every((f) => f.end?.reason === 'fin' && f.end.by === 'source')).toBe(true),
    });
  });

  it('rst-close: a client abort (RST by the initiator) and a firewall reset (nft reject with tcp reset)', async () => {
    lan.nft(B, nftRejectReset('ftreset', 'tcp dport 8080 tcp flags & psh == psh'));
    try {
      await run({
        id: 'rst-close',
        title: 'RST close: client aborts (SO_LINGER 0), and nftables `reject with tcp reset` of the first data',
        capture: { ns: A.ns, dev: A.dev },
        traffic: async (cg) => {
          const aborted = await runBurst(A, { host: B.ipv6, port: 8080, count: 5, concurrency: 5, close: 'reset' }, cg);
          okAll(aborted, 5);
          const rejected = await runBurst(A, { host: B.ipv4, port: 8080, count: 5, concurrency: 5 }, cg);
          expect(rejected.errors).toEqual({ ECONNRESET: 5 });
          return '5 aborted by the client, 5 reset by the server host firewall';
        },
        directions: outgoing,
        check: ({ flows }) => {
          const ends = flows.filter((f) => f.established).map((f) => `${f.end?.reason}/${f.end?.by}`);
          expect(ends.sort()).toEqual([...Array(5).fill('rst/destination'), ...Array(5).fill('rst/source')]);
        },
      });
    } finally {
      lan.nftDelete(B, 'ftreset');
    }
  });

  it('refused: a closed port answers RST; no begin, one refused attempt each', async () => {
    await run({
      id: 'refused',
      title: 'refused port (RST to the SYN): no begin, one `refused` attempt each, its SYNs and the RST time as on the wire; 3 good connections beside',
      capture: { ns: A.ns, dev: A.dev },
      traffic: async (cg) => {
        const refused = await runBurst(A, { host: B.ipv4, port: 8099, count: 5, concurrency: 5 }, cg);
        expect(refused.errors).toEqual({ ECONNREFUSED: 5 });
        okAll(await runBurst(A, { host: B.ipv4, port: 8080, count: 3 }, cg), 3);
        return '5 refused, 3 accepted';
      },
      directions: outgoing,
      check: ({ comparison, flows }) => {
        expect(flows.filter((f) => f.refused)).toHaveLength(5);
        expect(comparison.expected).toBe(6 + 5);
      },
    });
  });

  it('silent-drop: SYNs dropped by nftables; no SYN-ACK, no begin, one attempt each', async () => {
    lan.nft(B, nftDrop('ftdrop', 'input', 'tcp dport 8098'));
    try {
      await run({
        id: 'silent-drop',
        title:
          'silent drop (nftables `drop` of the SYNs): no begin, one attempt each (`abandoned`: the client gives up at 1.5 s) with its SYNs as on the wire; 3 good connections beside',
        capture: { ns: A.ns, dev: A.dev },
        traffic: async (cg) => {
          const dropped = await runBurst(A, { host: B.ipv4, port: 8098, count: 3, concurrency: 3, timeoutMs: 1500 }, cg);
          expect(dropped.errors).toEqual({ timeout: 3 });
          okAll(await runBurst(A, { host: B.ipv4, port: 8080, count: 3 }, cg), 3);
          return '3 unanswered, 3 accepted';
        },
        directions: outgoing,
        check: ({ comparison }) => expect(comparison.expected).toBe(6 + 3),
      });
    } finally {
      lan.nftDelete(B, 'ftdrop');
    }
  });

  it('first-synack-dropped: the first SYN-ACK of each flow is lost, the retransmission completes it: exactly one begin per side', async () => {
    lan.nft(A, nftDropFirstSynAck('ftfirst', 'input', 8084));
    try {
      await run({
        id: 'first-synack-dropped',
        title: 'first SYN-ACK of each flow dropped (nftables, client host input): the server side sees it and its retransmission; both ends in the cgroup',
        capture: { ns: A.ns, dev: A.dev },
        before: async (cg) => serve(B, '::', 8084, cg),
        traffic: async (cg) => okAll(await runBurst(A, { host: B.ipv4, port: 8084, count: 5, concurrency: 5, timeoutMs: 10_000 }, cg), 5),
        directions: both,
        check: ({ flows, probe }) => {
          const est = flows.filter((f) => f.established);
          expect(est).toHaveLength(5);
          for (const f of est) expect(f.synAcks).toBeGreaterThanOrEqual(2);
          // the server's egress hook saw every retransmission, and reported none of them
          expect(probe.synack_duplicate).toBeGreaterThanOrEqual(5);
          // a SYN-ACK repeated after the client is ESTABLISHED is a duplicate,
          // not unsolicited: the duplicate check comes before the socket's state
          expect(probe.synack_unsolicited).toBe(0);
        },
      });
    } finally {
      lan.nftDelete(A, 'ftfirst');
    }
  });

  it('before-attach: flows open before flowtap attached give no begin and no end', async () => {
    await run({
      id: 'before-attach',
      title: 'flows established before flowtap attached (closed after): no begin, no end; 3 new flows beside',
      capture: { ns: A.ns, dev: A.dev },
      onlySinceAttach: true,
      before: async (cg) => {
        const held = burst(A, { host: B.ipv4, port: 8080, count: 5, hold: true }, cg);
        const done = collect(held);
        await new Promise<void>((resolve) => held.stdout!.once('data', () => resolve())); // {"connected":5}
        return { held, done };
      },
      traffic: async (cg, before) => {
        const { held, done } = before as { held: ReturnType<typeof burst>; done: Promise<string> };
        held.stdin!.write('go\n');
        const r = JSON.parse((await done).trim().split('\n').pop()!) as BurstResult;
        okAll(r, 5);
        okAll(await runBurst(A, { host: B.ipv4, port: 8080, count: 3 }, cg), 3);
        return '5 flows open before attach, closed after; 3 opened after';
      },
      directions: outgoing,
      check: ({ comparison, flows }) => {
        expect(flows.filter((f) => f.established)).toHaveLength(8);
        expect(comparison.expected).toBe(6);
      },
    });
  });

  it('port-reuse: the same 4-tuple opened again after close gives a new begin each time', async () => {
    const localPort = 20_000 + Math.floor(Math.random() * 5000);
    await run({
      id: 'port-reuse',
      title: 'the same 4-tuple reopened after each close (fixed local port, SO_REUSEADDR): one begin and one end each time',
      capture: { ns: A.ns, dev: A.dev },
      traffic: async (cg) => okAll(await runBurst(A, { host: B.ipv4, port: 8080, count: 3, localPort }, cg), 3),
      directions: outgoing,
      check: ({ comparison, flows }) => {
        const est = flows.filter((f) => f.established);
        expect(new Set(est.map((f) => `${f.initiatorPort}|${f.responderPort}`)).size).toBe(1);
        expect(est).toHaveLength(3);
        expect(comparison.expected).toBe(6);
      },
    });
  });

  describe('with a DNS server', () => {
    let dns: Dnsmasq;
    beforeAll(async () => {
      dns = await startDnsmasq(
        C.prefix,
        [C.ipv4],
        [`host-record=svc.flowtap.test,${B.ipv4}`, 'cname=www.flowtap.test,edge.flowtap.test', 'cname=edge.flowtap.test,svc.flowtap.test'],
      );
    });
    afterAll(async () => dns?.stop());

    it('cname-chain: a destination reached through a CNAME chain is named by the asked name, then each hop', async () => {
      await run({
        id: 'cname-chain',
        title: 'destination resolved through a CNAME chain (dnsmasq; the chain read from the captured answer)',
        capture: { ns: A.ns, dev: A.dev },
        traffic: async (cg) => {
          for (let i = 0; i < 3; i++) {
            const out = await collect(cg.spawn('ip', ['netns', 'exec', A.ns, NODE, RESOLVE, C.ipv4, 'www.flowtap.test', '4', '8080']));
            expect(JSON.parse(out.trim())).toMatchObject({ ok: true, address: B.ipv4 });
          }
          return '3 resolve-then-connect';
        },
        directions: (f) => (f.responderPort === 8080 ? ['outgoing'] : []),
        checkDomains: true,
        check: ({ comparison }) => expect(comparison.expected).toBe(6),
      });
    });
  });

  describe('a burst', () => {
    let burstCollector: RunningCollector;
    beforeAll(async () => {
      burstCollector = await startCollector();
    });
    afterAll(async () => burstCollector?.close());

    it('burst-10k: 10 000 connections opened at once: every begin and end, exactly once', async () => {
      const N = 10_000;
      await run({
        id: 'burst-10k',
        title: `${N.toLocaleString('en-US')} connections opened at once, IPv4 over veth, both ends in the cgroup (${(4 * N).toLocaleString('en-US')} records)`,
        capture: { ns: A.ns, dev: A.dev },
        collector: () => burstCollector,
        before: async (cg) => serve(B, '0.0.0.0', 8086, cg),
        traffic: async (cg) => {
          // four client processes at once, so each stays well under a 20 000 open-files limit
          const t = Date.now();
          const parts = await Promise.all(
            Array.from({ length: 4 }, () => runBurst(A, { host: B.ipv4, port: 8086, count: N / 4, concurrency: N / 4, timeoutMs: 30_000 }, cg, 90_000)),
          );
          const ok = parts.reduce((n, r) => n + r.ok, 0);
          const errors: Record<string, number> = {};
          for (const r of parts) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
          expect(parts.reduce((n, r) => n + r.attempted, 0)).toBe(N);
          return `${ok} of ${N} connections (4 clients × ${N / 4}, all at once) completed in ${((Date.now() - t) / 1000).toFixed(1)} s${Object.keys(errors).length ? ` (errors ${JSON.stringify(errors)})` : ''}`;
        },
        directions: both,
        waitMillis: 40_000,
        check: ({ flows }) => expect(flows.filter((f) => f.established).length).toBeGreaterThanOrEqual(N * 0.99),
      });
    }, 120_000);
  });
});
