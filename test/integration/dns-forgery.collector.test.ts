/**
 * Names an attacker cannot forge: a DNS answer names a flow only when it
 * answers a query the watched cgroup was seen sending. Forged answers are
 * hand-built (craft.py) and sent from raw sockets outside the watched cgroup;
 * the real resolver is dnsmasq in a test namespace; the real kernel programs,
 * the real CLI and the real collector. Every test asserts on the names of a
 * real flow at the collector, and on the counters of why answers were refused
 * (the CLI's summary line, and flowtap.dns.responses at the collector).
 */
import * as dnsPacket from 'dns-packet';
import { join } from 'node:path';
import { TestCgroup, collect } from '../helpers/cgroup';
import { TestNet } from '../helpers/netns';
import { startCollector, type RunningCollector, type CollectedLogRecord } from '../helpers/collector';
import { startFlowtap, killAllFlowtaps, type RunningFlowtap } from '../helpers/flowtap';
import { startDnsmasq, type Dnsmasq } from '../helpers/dnsmasq';
import { Sink, sendFrom, type Spec } from '../helpers/crafted';
import { ATTR_DESTINATION_ADDRESS, ATTR_SOURCE_PORT, ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS, EVENT_FLOWTAP_FLOW_BEGIN } from '../../src/record/semconv';
import type { DnsUnmatchedReason } from '../../src/enrich/dns/match';

const SERVER = join(__dirname, '..', 'fixtures', 'tcp-server.js');
const CLIENT = join(__dirname, '..', 'fixtures', 'tcp-client.js');
const RESOLVE = join(__dirname, '..', 'fixtures', 'resolve-connect.js');
const PORT = 8080;

type Unmatched = Record<DnsUnmatchedReason, number>;
interface SummaryCounts {
  dns: { names: number; queries: number; responses: number; pendingQueries: number; unmatched: Unmatched };
  probe: Record<string, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A DNS answer: `name` A `ip` (TTL 300) under `id`, as a resolver would send it. */
function answer(name: string, ip: string, id: number): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | dnsPacket.AUTHORITATIVE_ANSWER,
    questions: [{ type: 'A', name, class: 'IN' }],
    answers: [{ type: 'A', name, ttl: 300, class: 'IN', data: ip }],
  });
}

function query(name: string, id: number): Buffer {
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name, class: 'IN' }] });
}

describe('DNS answers count only when they answer a query that was seen (real kernel, real dnsmasq, real collector)', () => {
  let net: TestNet;
  let cg: TestCgroup;
  let collector: RunningCollector;
  let dns: Dnsmasq;
  /** The same zone on port 5353, reached only through NAT. */
  let dns5353: Dnsmasq;
  let ft: RunningFlowtap;
  let sink: Sink;
  /** Every sink, stopped at the end (a stopped socket's hook sees nothing more). */
  const sinks: Sink[] = [];
  const servers: ReturnType<TestNet['spawnIn']>[] = [];
  const ip = (n: number) => net.v4(n);
  /** Another IPv6 address of host b: not the resolver's. */
  const v6other = () => net.b.ipv6.replace(/::2$/, '::99');

  beforeAll(async () => {
    net = new TestNet();
    for (const n of [9, 11, 12, 13, 14, 15, 16, 17, 18]) net.addAddress(net.b, ip(n));
    net.addAddress(net.b, v6other());
    dns = await startDnsmasq(
      net.b.prefix,
      [net.b.ipv4, net.b.ipv6],
      [
        `host-record=race.flowtap.test,${ip(12)}`,
        `host-record=six.flowtap.test,${ip(16)}`,
        `host-record=vip.flowtap.test,${ip(18)}`,
        `host-record=outside.flowtap.test,${ip(13)}`,
        `host-record=real.flowtap.test,${ip(14)}`,
      ],
    );
    dns5353 = await startDnsmasq(net.b.prefix, [net.b.ipv4], [`host-record=nat.flowtap.test,${ip(17)}`], '', 5353);
    // NAT in host a, the way Docker's embedded DNS and a cluster DNS service address work: a
    // service address .200 translated to the resolver; .201:53 translated to the resolver's port 5353
    net.nft(
      net.a,
      [
        'table ip ftnat {',
        '  chain out {',
        '    type nat hook output priority -100;',
        `    ip daddr ${ip(200)} udp dport 53 dnat to ${net.b.ipv4}:53`,
        `    ip daddr ${ip(201)} udp dport 53 dnat to ${net.b.ipv4}:5353`,
        '  }',
        '}',
      ].join('\n') + '\n',
    );
    // TCP servers (outside the cgroup): in b for the test addresses, in a for 127.0.0.77
    for (const h of [net.a, net.b]) {
      const s = net.spawnIn(h, process.execPath, [SERVER, '::', String(PORT)]);
      servers.push(s);
      await new Promise((resolve) => s.stdout!.once('data', resolve));
    }
    collector = await startCollector();
    cg = new TestCgroup('dnsforge');
    ft = await startFlowtap(['--cgroup', cg.path, '--endpoint', collector.endpoint, '--summary-interval-seconds', '1', '--log-level', 'debug'], {
      OTEL_BLRP_SCHEDULE_DELAY: '100',
      OTEL_METRIC_EXPORT_INTERVAL: '500',
    });
    // a UDP socket inside the watched cgroup, in host a
    sink = new Sink(net.a.ns, cg);
    sinks.push(sink);
    await sink.started();
  });

  afterAll(async () => {
    for (const s of sinks) s.stop();
    killAllFlowtaps();
    for (const s of servers) s.kill();
    await dns?.stop();
    await dns5353?.stop();
    await collector?.close();
    await cg?.destroy();
    net?.destroy();
  });

  /** The counts of the newest counters line (the debug line after each summary). */
  function latest(): SummaryCounts {
    const lines = ft.logs().filter((l) => l.msg === 'counters');
    if (lines.length === 0) throw new Error('no summary line yet');
    return lines[lines.length - 1] as unknown as SummaryCounts;
  }

  /** Waits for a counters line written after now that satisfies ok. */
  async function summaryAfter(ok: (c: SummaryCounts) => boolean, timeoutMillis = 10_000): Promise<SummaryCounts> {
    const seen = ft.logs().filter((l) => l.msg === 'counters').length;
    const deadline = Date.now() + timeoutMillis;
    for (;;) {
      const lines = ft.logs().filter((l) => l.msg === 'counters');
      const c = lines[lines.length - 1] as unknown as SummaryCounts | undefined;
      if (lines.length > seen && c !== undefined && ok(c)) return c;
      if (Date.now() > deadline) throw new Error(`no summary line matched; last: ${JSON.stringify(c?.dns)}`);
      await sleep(100);
    }
  }

  const delta = (a: Unmatched, b: Unmatched) =>
    Object.fromEntries(Object.keys(b).map((k) => [k, b[k as DnsUnmatchedReason] - a[k as DnsUnmatchedReason]])) as Unmatched;

  /** UDP DNS answers from raw sockets in host b (outside the cgroup) to the sink's socket in a. */
  const forged = (payload: Buffer, src = net.b.ipv4, to: Sink = sink): Spec => ({
    family: 4,
    src,
    dst: net.a.ipv4,
    l4: { proto: 'udp', sport: 53, dport: to.udp, payload: payload.toString('hex') },
  });

  /** Another UDP socket inside the watched cgroup, that never asked anything. */
  async function freshSink(): Promise<Sink> {
    const s = new Sink(net.a.ns, cg);
    sinks.push(s);
    await s.started();
    return s;
  }

  /** Connects from the watched cgroup (host a) to address:PORT; the flow's begin record at the collector. */
  async function flowTo(address: string): Promise<CollectedLogRecord> {
    const client = cg.spawn('ip', ['netns', 'exec', net.a.ns, process.execPath, CLIENT, address, String(PORT), '1']);
    const c = JSON.parse((await collect(client)).trim()) as { ok: boolean; localPort: number };
    expect(c).toMatchObject({ ok: true });
    const [rec] = await collector.waitForLogRecords((r) => r.eventName === EVENT_FLOWTAP_FLOW_BEGIN && r.attributes[ATTR_SOURCE_PORT] === c.localPort, 10_000);
    return rec;
  }

  it('a forged answer to an idle UDP socket names nothing (bank.example → 127.0.0.77 from 127.0.0.53:53), counted as no_query', async () => {
    const before = (await summaryAfter(() => true)).dns.unmatched;
    const bogus = answer('bank.example', '127.0.0.77', 0x4242);
    // inside host a, over loopback: the forged source is the stub resolver's address
    const sent = sendFrom(net.a.ns, [
      { family: 4, src: '127.0.0.53', dst: '127.0.0.1', l4: { proto: 'udp', sport: 53, dport: sink.udp, payload: bogus.toString('hex') } },
    ]);
    expect(sent).toEqual({ sent: 1, refused: {} });
    await sink.waitForDatagrams(1);
    expect(sink.datagrams).toContain(bogus.toString('hex')); // it reached the socket: only the name is refused
    const c = await summaryAfter((x) => x.dns.unmatched.no_query > before.no_query);
    expect(delta(before, c.dns.unmatched)).toEqual({ no_query: 1, wrong_server: 0, wrong_id: 0, wrong_question: 0, late: 0, duplicate: 0 });
    const rec = await flowTo('127.0.0.77');
    expect(rec.attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual([]);
  });

  it('a forged answer racing the real one: wrong ID and right ID from the wrong server before it, right ID after it; only the real one names', async () => {
    const before = (await summaryAfter(() => true)).dns.unmatched;
    const id = 0x5151;
    const n0 = sink.datagrams.length;
    dns.pause(); // the query waits in dnsmasq's socket while the forgeries arrive
    try {
      await sink.ask(net.b.ipv4, 53, query('race.flowtap.test', id));
      expect(sendFrom(net.b.ns, [forged(answer('race.flowtap.test', ip(11), id + 1)), forged(answer('race.flowtap.test', ip(11), id), ip(9))])).toEqual({
        sent: 2,
        refused: {},
      });
      await sink.waitForDatagrams(n0 + 2);
    } finally {
      dns.resume();
    }
    await sink.waitForDatagrams(n0 + 3); // the real answer
    const real = dnsPacket.decode(Buffer.from(sink.datagrams[n0 + 2], 'hex'));
    expect([real.id, (real.answers?.[0] as { data?: unknown } | undefined)?.data]).toEqual([id, ip(12)]);
    // the same ID and question again after the real answer, from the real server
    expect(sendFrom(net.b.ns, [forged(answer('race.flowtap.test', ip(11), id))])).toEqual({ sent: 1, refused: {} });
    await sink.waitForDatagrams(n0 + 4);
    const c = await summaryAfter((x) => x.dns.unmatched.duplicate > before.duplicate);
    expect(delta(before, c.dns.unmatched)).toEqual({ no_query: 0, wrong_server: 1, wrong_id: 1, wrong_question: 0, late: 0, duplicate: 1 });
    expect((await flowTo(ip(12))).attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual(['race.flowtap.test']);
    expect((await flowTo(ip(11))).attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual([]);
  });

  it('over IPv6: a forged answer with the right ID from another address of the server host is refused, the real one names', async () => {
    const before = (await summaryAfter(() => true)).dns.unmatched;
    const six = await freshSink();
    const id = 0x6666;
    dns.pause();
    try {
      await six.ask(net.b.ipv6, 53, query('six.flowtap.test', id));
      const spec: Spec = {
        family: 6,
        src: v6other(),
        dst: net.a.ipv6,
        l4: { proto: 'udp', sport: 53, dport: six.udp, payload: answer('six.flowtap.test', ip(9), id).toString('hex') },
      };
      expect(sendFrom(net.b.ns, [spec])).toEqual({ sent: 1, refused: {} });
      await six.waitForDatagrams(1);
    } finally {
      dns.resume();
    }
    await six.waitForDatagrams(2);
    const c = await summaryAfter((x) => x.dns.unmatched.wrong_server > before.wrong_server && x.dns.responses > 0);
    expect(delta(before, c.dns.unmatched)).toEqual({ no_query: 0, wrong_server: 1, wrong_id: 0, wrong_question: 0, late: 0, duplicate: 0 });
    expect((await flowTo(ip(16))).attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual(['six.flowtap.test']);
    expect((await flowTo(ip(9))).attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual([]);
  });

  it.each([
    ['a DNS service address translated to the resolver', 200, 'vip.flowtap.test', 18],
    ["the resolver's port translated (as Docker's embedded DNS does)", 201, 'nat.flowtap.test', 17],
  ])('behind NAT on the way out, %s: the real answer still names', async (_what, service, name, address) => {
    const before = (await summaryAfter(() => true)).dns;
    // c-ares connects its UDP socket to the service address: the query leaves translated
    const r = JSON.parse(await collect(cg.spawn('ip', ['netns', 'exec', net.a.ns, process.execPath, RESOLVE, ip(service), name, '4', String(PORT)]))) as {
      ok: boolean;
      localPort: number;
    };
    expect(r).toMatchObject({ ok: true });
    const [rec] = await collector.waitForLogRecords((x) => x.eventName === EVENT_FLOWTAP_FLOW_BEGIN && x.attributes[ATTR_SOURCE_PORT] === r.localPort, 10_000);
    expect(rec.attributes[ATTR_DESTINATION_ADDRESS]).toBe(ip(address));
    expect(rec.attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual([name]);
    const c = await summaryAfter((x) => x.dns.responses > before.responses);
    expect(delta(before.unmatched, c.dns.unmatched)).toEqual({ no_query: 0, wrong_server: 0, wrong_id: 0, wrong_question: 0, late: 0, duplicate: 0 });
  });

  it('answers to a query from outside the watched cgroup name nothing inside it, nor does a copy sent to a watched socket', async () => {
    const before = (await summaryAfter(() => true)).dns.unmatched;
    // a real query and answer from a process of host a outside the watched cgroup: never seen
    const dig = net.spawnIn(net.a, 'dig', ['+short', '+tries=1', `@${net.b.ipv4}`, 'outside.flowtap.test', 'A']);
    expect((await collect(dig)).trim()).toBe(ip(13));
    // the same answer, sent to a watched socket from the real server's address
    const other = await freshSink();
    expect(sendFrom(net.b.ns, [forged(answer('outside.flowtap.test', ip(13), 0x0707), net.b.ipv4, other)])).toEqual({ sent: 1, refused: {} });
    await other.waitForDatagrams(1);
    const c = await summaryAfter((x) => x.dns.unmatched.no_query > before.no_query);
    expect(delta(before, c.dns.unmatched).no_query).toBe(1);
    expect((await flowTo(ip(13))).attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual([]);
  });

  it('a flood of forged answers names nothing, holds nothing, and every one is counted; a real answer during it still names', async () => {
    const N = 3000;
    const c0 = await summaryAfter(() => true);
    const target = await freshSink();
    const specs: Spec[] = [];
    for (let i = 0; i < N; i++) {
      // spoofed from the real resolver's address, IDs all over the range, each its own name
      specs.push(forged(answer(`f${i}.flood.test`, ip(15), (i * 7919) & 0xffff), net.b.ipv4, target));
    }
    expect(sendFrom(net.b.ns, specs)).toEqual({ sent: N, refused: {} });
    // a real lookup through the real resolver, right after the flood
    const r = JSON.parse(
      await collect(cg.spawn('ip', ['netns', 'exec', net.a.ns, process.execPath, RESOLVE, net.b.ipv4, 'real.flowtap.test', '4', String(PORT)])),
    ) as {
      ok: boolean;
      localPort: number;
    };
    expect(r.ok).toBe(true);
    // settled: every DNS record the kernel passed up since c0 is accounted for
    const c = await summaryAfter((x) => {
      const u = Object.values(x.dns.unmatched).reduce((a, b) => a + b, 0) - Object.values(c0.dns.unmatched).reduce((a, b) => a + b, 0);
      return x.probe.dns - c0.probe.dns > 0 && u + (x.dns.queries - c0.dns.queries) + (x.dns.responses - c0.dns.responses) === x.probe.dns - c0.probe.dns;
    }, 20_000);
    const d = delta(c0.dns.unmatched, c.dns.unmatched);
    const lost = c.probe.ringbuf_full_dns - c0.probe.ringbuf_full_dns;
    // every forged answer that reached the kernel hook: refused, all for no query held on that socket
    expect(d.no_query + lost).toBeGreaterThanOrEqual(N * 0.99);
    expect(d).toMatchObject({ wrong_server: 0, wrong_id: 0, wrong_question: 0, late: 0, duplicate: 0 });
    expect(c.dns.responses - c0.dns.responses).toBe(1); // the real answer only
    expect(c.dns.names - c0.dns.names).toBe(1);
    // the flood held nothing: only the real lookup's query was added to what the earlier tests left
    expect(c.dns.pendingQueries - c0.dns.pendingQueries).toBeLessThanOrEqual(c.dns.queries - c0.dns.queries);
    expect(c.dns.queries - c0.dns.queries).toBeLessThanOrEqual(2);
    const [rec] = await collector.waitForLogRecords((x) => x.eventName === EVENT_FLOWTAP_FLOW_BEGIN && x.attributes[ATTR_SOURCE_PORT] === r.localPort, 10_000);
    expect(rec.attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual(['real.flowtap.test']);
    expect((await flowTo(ip(15))).attributes[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS]).toEqual([]);
    // the refusals are a metric at the collector too
    const deadline = Date.now() + 10_000;
    let metric = 0;
    while (Date.now() < deadline) {
      const points = collector.readMetricPoints().filter((p) => p.name === 'flowtap.dns.responses' && p.attributes['flowtap.dns.result'] === 'no_query');
      metric = points.length > 0 ? Number(points[points.length - 1].value) : 0;
      if (metric >= c.dns.unmatched.no_query) break;
      await sleep(200);
    }
    expect(metric).toBeGreaterThanOrEqual(c.dns.unmatched.no_query);
    expect(latest().dns.unmatched.no_query).toBe(metric);
  });
});
