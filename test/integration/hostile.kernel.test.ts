/**
 * Hostile input: hand-built packets against the real kernel programs (native
 * addon, and the real CLI for the flood). The packets are built and sent from
 * raw sockets by test/fixtures/craft.py inside the test's own network
 * namespaces (a TestNet: host a, host b).
 *
 * cgroup_skb programs run only for packets of sockets in the watched cgroup,
 * so every crafted packet is either sent to such a socket (ingress: a TCP
 * listener and a UDP socket in the cgroup, on host b) or sent by one (egress:
 * a raw socket in the cgroup, on host a). The kernel's own BPF run counters
 * (BPF_ENABLE_STATS) say how many packets really reached each hook, so a case
 * cannot pass because its packets never arrived; the probe's counters say what
 * the programs made of them. Where the kernel drops a packet before any
 * socket sees it, the test shows that instead (run count 0) and, where one
 * exists, names the other way such a packet reaches the hook (raw sockets).
 * The findings are written up in docs/reliability.md, "Hostile input".
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TestCgroup, collect } from '../helpers/cgroup';
import { killAllFlowtaps, startFlowtap } from '../helpers/flowtap';
import { TestNet } from '../helpers/netns';
import { enableBpfStats, waitFor } from '../helpers/traffic';
import { loadBinding, type NativeProbe } from '../../src/probe';
import { decodeBatch, type DecodedEvent, type DnsEvent, type FlowEvent } from '../../src/decode';

const CRAFT = join(__dirname, '..', 'fixtures', 'craft.py');
/** Flow table size for the probe and the CLI: far below the flood's 200 000 flows. */
const TABLE = 4096;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A DNS answer: example.test A 198.18.0.7. */
const DNS_ANSWER = 'abcd81800001000100000000' + '076578616d706c6504746573740000010001' + 'c00c000100010000003c0004c6120007';
/** IPv4 options: NOP NOP NOP EOL (ihl 6), and a Record Route with 9 empty slots + EOL (40 bytes, ihl 15). */
const OPT_NOPS = '01010100';
const OPT_RECORD_ROUTE = '072704' + '00'.repeat(37);

type Spec = Record<string, unknown>;
interface SendResult {
  sent: number;
  refused: Record<string, number>;
}
interface Observed {
  /** Kernel counters that changed, by how much. */
  counters: Record<string, number>;
  /** Program runs: packets that reached each hook. */
  runs: { ingress: number; egress: number };
  events: DecodedEvent[];
}

/** The sockets crafted packets are sent to: craft.py sink, in the cgroup, on host b. */
class Sink {
  readonly child: ChildProcess;
  tcp = 0;
  udp = 0;
  /** Payloads (hex) of the datagrams the UDP socket received. */
  readonly datagrams: string[] = [];
  private readonly ready: Promise<void>;

  constructor(cg: TestCgroup, ns: string, opts: object = {}) {
    this.child = cg.spawn('ip', ['netns', 'exec', ns, 'python3', CRAFT, 'sink', JSON.stringify(opts)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines = createInterface({ input: this.child.stdout! });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => reject(new Error(`sink exited ${code}`)));
      lines.on('line', (l) => {
        const m = JSON.parse(l) as { tcp?: number; udp?: number | string };
        if (typeof m.udp === 'string') this.datagrams.push(m.udp);
        else {
          this.tcp = m.tcp!;
          this.udp = m.udp!;
          resolve();
        }
      });
    });
  }

  started(): Promise<void> {
    return this.ready;
  }

  stop(): void {
    this.child.stdin?.end();
    this.child.kill();
  }
}

/** Counters of the kernel's IP/TCP MIBs in namespace ns, nstat-style names (IpInHdrErrors, Ip6ReasmOKs). */
function snmp(ns: string): Record<string, number> {
  const text = execFileSync('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp', '/proc/net/snmp6'], { encoding: 'utf8' });
  const out: Record<string, number> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const names = /^(\w+): ([A-Za-z].*)$/.exec(lines[i]);
    if (names) {
      // /proc/net/snmp: a line of names, then a line of values
      const values = lines[++i].split(' ').slice(1);
      names[2].split(' ').forEach((n, j) => (out[names[1] + n] = Number(values[j])));
    } else {
      const [k, v] = lines[i].trim().split(/\s+/);
      if (k && v !== undefined) out[k] = Number(v);
    }
  }
  return out;
}

/** The one link (not lo) in namespace ns: its name and MAC address. */
function link(ns: string): { ifname: string; mac: string } {
  const links = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string; address: string }[];
  const l = links.find((x) => x.ifname !== 'lo')!;
  return { ifname: l.ifname, mac: l.address };
}

describe('hostile input: crafted packets from raw sockets (real kernel programs, native addon, test namespaces)', () => {
  let net: TestNet;
  let cg: TestCgroup;
  let probe: NativeProbe;
  let counterNames: string[];
  let stopStats: () => void;
  let sink: Sink;
  /** Other children to kill at the end, also when a test failed half-way. */
  const children: ChildProcess[] = [];
  const events: DecodedEvent[] = [];
  let decodeErrors = 0;
  let port = 20000;
  /** A source port no earlier case used: IPv6 flows stay in the table (no RST is seen), so a reused tuple would be a duplicate. */
  const nextPort = () => port++;

  const runs = () => {
    const s = probe.programStats() as Record<string, { runCount: number }>;
    return { ingress: s.ingress.runCount, egress: s.egress.runCount };
  };

  /** Runs action, then waits until the hooks are quiet and every event they counted has been read. */
  async function observe(action: () => Promise<unknown>): Promise<Observed> {
    const c0 = probe.counters();
    const r0 = runs();
    const e0 = events.length;
    await action();
    let last = '';
    let stableSince = Date.now();
    const t0 = Date.now();
    for (;;) {
      const c = probe.counters();
      const r = runs();
      const now = JSON.stringify([c, r, events.length]);
      if (now !== last) {
        last = now;
        stableSince = Date.now();
      }
      const made = ['flow_begin', 'flow_end', 'dns'].reduce((n, k) => n + c[k] - c0[k], 0);
      if (events.length - e0 === made && Date.now() - stableSince >= 200) break;
      if (Date.now() - t0 > 10_000) throw new Error(`not quiet after 10 s: ${now}`);
      await sleep(25);
    }
    const c = probe.counters();
    const r = runs();
    const counters: Record<string, number> = {};
    for (const k of counterNames) if (c[k] !== c0[k]) counters[k] = c[k] - c0[k];
    return { counters, runs: { ingress: r.ingress - r0.ingress, egress: r.egress - r0.egress }, events: events.slice(e0) };
  }

  /** Sends specs from host a, outside the cgroup. */
  function peerSend(specs: Spec[]): SendResult {
    const out = execFileSync('ip', ['netns', 'exec', net.a.ns, 'python3', CRAFT, 'send'], { input: specs.map((s) => JSON.stringify(s)).join('\n'), encoding: 'utf8' });
    return JSON.parse(out) as SendResult;
  }

  /** Sends specs from a raw socket in the cgroup, on host a. */
  async function cgroupSend(specs: Spec[]): Promise<SendResult> {
    const child = cg.spawn('ip', ['netns', 'exec', net.a.ns, 'python3', CRAFT, 'send'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.end(specs.map((s) => JSON.stringify(s)).join('\n'));
    return JSON.parse(await collect(child)) as SendResult;
  }

  /** A packet from host a to host b. */
  function spec(family: 4 | 6, l4: Spec, extra: Spec = {}): Spec {
    const [src, dst] = family === 4 ? [net.a.ipv4, net.b.ipv4] : [net.a.ipv6, net.b.ipv6];
    return { family, src, dst, l4, ...extra };
  }
  const synAck = (family: 4 | 6, sport: number, dport: number, extra: Spec = {}, l4: Spec = {}) =>
    spec(family, { proto: 'tcp', sport, dport, flags: 'SA', ...l4 }, extra);
  const dnsAnswer = (family: 4 | 6, dport: number, payload: string, extra: Spec = {}, l4: Spec = {}) =>
    spec(family, { proto: 'udp', sport: 53, dport, payload, ...l4 }, extra);

  /** The begin flowtap reports for a SYN-ACK from host a's sport to the sink's listener: the listener is the initiator. */
  const listenerBegin = (family: 4 | 6, sport: number) => ({
    type: 'begin',
    family,
    direction: 'outgoing',
    srcAddr: family === 4 ? net.b.ipv4 : net.b.ipv6,
    srcPort: sink.tcp,
    dstAddr: family === 4 ? net.a.ipv4 : net.a.ipv6,
    dstPort: sport,
    cgroupId: cg.id,
  });
  const flows = (o: Observed, type: 'begin' | 'end') =>
    (o.events.filter((e) => e.type === type) as FlowEvent[]).map((e) => ({
      type: e.type,
      family: e.family,
      direction: e.direction,
      srcAddr: e.srcAddr,
      srcPort: e.srcPort,
      dstAddr: e.dstAddr,
      dstPort: e.dstPort,
      cgroupId: e.cgroupId,
      ...(type === 'end' ? { closeReason: e.closeReason, closedBy: e.closedBy } : {}),
    }));
  const dnsEvents = (o: Observed) => o.events.filter((e): e is DnsEvent => e.type === 'dns');

  beforeAll(async () => {
    net = new TestNet();
    cg = new TestCgroup('hostile');
    stopStats = await enableBpfStats();
    const binding = loadBinding(join(__dirname, '..', '..'));
    counterNames = binding.counterNames;
    probe = new binding.Probe({
      cgroupPath: cg.path,
      flowTableEntries: TABLE,
      onBatch: (buf: Buffer) => {
        const r = decodeBatch(buf);
        decodeErrors += r.errors;
        events.push(...r.events);
      },
    });
    sink = new Sink(cg, net.b.ns);
    await sink.started();
    // IPv6 on a fresh veth is not up at once (and neighbours must be resolved): wait until a datagram gets through on each family.
    for (const [family, tag] of [[4, '7634'], [6, '7636']] as const) {
      await waitFor(`IPv${family} between the test hosts`, () => {
        if (sink.datagrams.includes(tag)) return true;
        const [src, dst] = family === 4 ? [net.a.ipv4, net.b.ipv4] : [net.a.ipv6, net.b.ipv6];
        execFileSync('ip', ['netns', 'exec', net.a.ns, 'python3', CRAFT, 'dgram', JSON.stringify({ src, sport: 0, dst, dport: sink.udp, payload: tag })]);
        return undefined;
      });
    }
  });

  afterAll(async () => {
    killAllFlowtaps();
    for (const c of children) c.kill();
    sink?.stop();
    await probe?.close();
    stopStats?.();
    await cg?.destroy();
    net?.destroy();
  });

  afterEach(() => {
    expect(decodeErrors).toBe(0);
  });

  it('IPv4 with options (ihl 6 and 15) carrying a SYN-ACK: parsed, one begin each with the right tuple', async () => {
    const [p1, p2] = [nextPort(), nextPort()];
    const o = await observe(async () =>
      peerSend([synAck(4, p1, sink.tcp, { options: OPT_NOPS }), synAck(4, p2, sink.tcp, { options: OPT_RECORD_ROUTE })]),
    );
    expect(o.runs.ingress).toBe(2);
    expect(flows(o, 'begin')).toEqual([listenerBegin(4, p1), listenerBegin(4, p2)]);
    // The listener answers each with a RST. On IPv4 the kernel sends it as the
    // listener's own packet, so it passes the egress hook and ends the flow.
    expect(flows(o, 'end')).toEqual([p1, p2].map((p) => ({ ...listenerBegin(4, p), type: 'end', closeReason: 'rst', closedBy: 'source' })));
    expect(o.counters).toEqual({ flow_begin: 2, flow_end: 2, flow_table_insert: 2, flow_table_delete: 2 });
  });

  it('IPv4 with options carrying a DNS answer: one DNS record with the message as sent', async () => {
    const o = await observe(async () => peerSend([dnsAnswer(4, sink.udp, DNS_ANSWER, { options: OPT_RECORD_ROUTE })]));
    expect(o.runs.ingress).toBe(1);
    expect(o.counters).toEqual({ dns: 1 });
    const [dns] = dnsEvents(o);
    expect(dns).toMatchObject({ family: 4, cgroupId: cg.id, msgLen: DNS_ANSWER.length / 2, truncated: false, tcp: false, egress: false });
    expect(dns.data.toString('hex')).toBe(DNS_ANSWER);
    expect(sink.datagrams).toContain(DNS_ANSWER);
  });

  it('IPv4 with IHL < 5 never reaches a hook: no IP raw socket may send it, and the IP layer drops it on input', async () => {
    const bad = [synAck(4, nextPort(), sink.tcp, { ihl: 4 }), dnsAnswer(4, sink.udp, DNS_ANSWER, { ihl: 0 })];
    // as Ethernet frames from host a's link to host b's
    const ether = { ifname: link(net.a.ns).ifname, dst: link(net.b.ns).mac };
    const mib0 = snmp(net.b.ns);
    const o = await observe(async () => {
      // sendto(2) refuses it (raw_send_hdrinc), in the cgroup or not
      expect(peerSend(bad)).toEqual({ sent: 0, refused: { EINVAL: 2 } });
      expect(await cgroupSend(bad)).toEqual({ sent: 0, refused: { EINVAL: 2 } });
      expect(peerSend(bad.map((s) => ({ ...s, ether })))).toEqual({ sent: 2, refused: {} });
    });
    expect(snmp(net.b.ns).IpInHdrErrors - mib0.IpInHdrErrors).toBe(2); // dropped in ip_rcv, before any socket
    expect(o.runs).toEqual({ ingress: 0, egress: 0 });
    expect(o.counters).toEqual({}); // skip_bad_ihl stays a defence this kernel never exercises
    expect(o.events).toEqual([]);
  });

  describe('a TCP or UDP header shorter than it claims', () => {
    // cut after 10 bytes of TCP header, data offset 3 (< 5), data offset 15 (60 bytes) in a 20-byte segment;
    // a UDP length of 4 (< its own header) and one of 400 (beyond the packet), from port 53
    const malformed = (family: 4 | 6, dport: number, udp: boolean): Spec[] => [
      synAck(family, nextPort(), dport, { truncate: family === 4 ? 30 : 50 }),
      synAck(family, nextPort(), dport, {}, { doff: 3 }),
      synAck(family, nextPort(), dport, {}, { doff: 15 }),
      ...(udp ? [dnsAnswer(family, dport, DNS_ANSWER, {}, { len: 4 }), dnsAnswer(family, dport, DNS_ANSWER, {}, { len: 400 })] : []),
    ];

    it('sent to the listener: TCP drops them before the socket lookup, no hook runs', async () => {
      const o = await observe(async () => peerSend([...malformed(4, sink.tcp, false), ...malformed(6, sink.tcp, false)]));
      expect(o.runs.ingress).toBe(0);
      expect(o.counters).toEqual({});
    });

    it('copied to a raw TCP socket in the cgroup (ingress): each one counted as skip_truncated, no record', async () => {
      const raw = new Sink(cg, net.b.ns, { raw: [[4, 6], [6, 6]] });
      try {
        await raw.started();
        const o = await observe(async () => peerSend([...malformed(4, sink.tcp, false), ...malformed(6, sink.tcp, false)]));
        expect(o.runs.ingress).toBe(6);
        expect(o.counters).toEqual({ skip_truncated: 6 });
        expect(o.events).toEqual([]);
      } finally {
        raw.stop();
      }
    });

    it('sent by a raw socket in the cgroup (egress): each one counted as skip_truncated, no record', async () => {
      const o = await observe(async () => expect(await cgroupSend([...malformed(4, 9, true), ...malformed(6, 9, true)])).toEqual({ sent: 10, refused: {} }));
      expect(o.runs.egress).toBe(10);
      expect(o.counters).toEqual({ skip_truncated: 10 });
      expect(o.events).toEqual([]);
    });
  });

  describe('IPv6 extension headers', () => {
    const chain = (...types: string[]) => types.map((type) => ({ type }));
    const dsts = (n: number) => Array.from({ length: n }, () => 'dst');

    it('hop-by-hop + routing + destination options before TCP and UDP, up to the walk limit (8): parsed', async () => {
      const [p1, p2] = [nextPort(), nextPort()];
      const o = await observe(async () =>
        peerSend([
          synAck(6, p1, sink.tcp, { ext: [{ type: 'hop' }, { type: 'routing', len: 24 }, { type: 'dst', len: 16 }] }),
          synAck(6, p2, sink.tcp, { ext: chain('hop', 'routing', ...dsts(6)) }),
          dnsAnswer(6, sink.udp, DNS_ANSWER, { ext: chain('hop', 'routing', 'dst') }),
        ]),
      );
      expect(o.runs.ingress).toBe(3);
      // IPv6 sends the listener's RST from the namespace's control socket: no end is seen
      expect(o.counters).toEqual({ flow_begin: 2, flow_table_insert: 2, dns: 1 });
      expect(flows(o, 'begin')).toEqual([listenerBegin(6, p1), listenerBegin(6, p2)]);
      expect(dnsEvents(o).map((e) => [e.family, e.data.toString('hex')])).toEqual([[6, DNS_ANSWER]]);
    });

    it('a chain longer than the walk limit (9 headers): skip_ipv6_ext, no record (the kernel itself delivers it)', async () => {
      const payload = DNS_ANSWER.replace(/^abcd/, 'beef');
      const o = await observe(async () =>
        peerSend([
          synAck(6, nextPort(), sink.tcp, { ext: chain('hop', 'routing', ...dsts(7)) }),
          dnsAnswer(6, sink.udp, payload, { ext: chain('hop', 'routing', ...dsts(7)) }),
        ]),
      );
      expect(o.runs.ingress).toBe(2);
      expect(o.counters).toEqual({ skip_ipv6_ext: 2 });
      expect(o.events).toEqual([]);
      expect(sink.datagrams).toContain(payload);
    });
  });

  describe('fragments', () => {
    // split after 8 bytes of TCP header (IPv4 accepts that); IPv6 (RFC 8200) wants the whole TCP header in the first fragment
    const split4 = [{ from: 0, to: 8, mf: true }, { from: 8, to: null, mf: false }];
    const split6 = [{ from: 0, to: 24, mf: true }, { from: 24, to: null, mf: false }];
    const payload = { payload: '00'.repeat(16) };

    it('are reassembled before socket delivery: the ingress hook sees each packet once, whole; a lone non-first fragment never', async () => {
      const [p4, p6] = [nextPort(), nextPort()];
      const mib0 = snmp(net.b.ns);
      const o = await observe(async () =>
        peerSend([
          synAck(4, p4, sink.tcp, { fragments: split4 }),
          synAck(6, p6, sink.tcp, { fragments: split6 }, payload),
          synAck(4, nextPort(), sink.tcp, { fragments: split4, only: [1] }),
          synAck(6, nextPort(), sink.tcp, { fragments: split6, only: [1] }, payload),
        ]),
      );
      const mib = snmp(net.b.ns);
      expect([mib.IpReasmOKs - mib0.IpReasmOKs, mib.Ip6ReasmOKs - mib0.Ip6ReasmOKs]).toEqual([1, 1]);
      expect(o.runs.ingress).toBe(2);
      expect(flows(o, 'begin')).toEqual([listenerBegin(4, p4), listenerBegin(6, p6)]);
      expect(o.counters).toEqual({ flow_begin: 2, flow_table_insert: 2, flow_end: 1, flow_table_delete: 1 });
    });

    it('an IPv6 atomic fragment (offset 0, M = 0) keeps its Fragment header up to the hook: walked and parsed', async () => {
      const p = nextPort();
      const o = await observe(async () => peerSend([synAck(6, p, sink.tcp, { ext: [{ type: 'hop' }], fragments: [{ from: 0, to: null, mf: false }] })]));
      expect(o.runs.ingress).toBe(1);
      expect(o.counters).toEqual({ flow_begin: 1, flow_table_insert: 1 });
      expect(flows(o, 'begin')).toEqual([listenerBegin(6, p)]);
    });

    it('a DNS answer longer than the MTU: egress sees it before fragmentation, ingress after reassembly, once each', async () => {
      const big = 'abcd81800001000100000000' + '00'.repeat(3000);
      const o = await observe(async () => {
        const child = cg.spawn('ip', ['netns', 'exec', net.a.ns, 'python3', CRAFT, 'dgram', JSON.stringify({ src: net.a.ipv4, sport: 53, dst: net.b.ipv4, dport: sink.udp, payload: big })]);
        await collect(child);
      });
      expect(o.runs).toEqual({ ingress: 1, egress: 1 });
      expect(o.counters).toEqual({ dns: 2, dns_truncated: 2 });
      expect(dnsEvents(o).map((e) => [e.egress, e.msgLen, e.truncated, e.data.toString('hex')])).toEqual([
        [true, big.length / 2, true, big.slice(0, 2 * 1232)],
        [false, big.length / 2, true, big.slice(0, 2 * 1232)],
      ]);
    });

    it('sent by a raw socket in the cgroup (egress): non-first fragments skip_fragment, a tiny first fragment skip_truncated, a first fragment with the whole header parsed', async () => {
      const [q4, q6] = [nextPort(), nextPort()];
      const o = await observe(async () =>
        expect(
          await cgroupSend([
            synAck(4, nextPort(), 9, { fragments: split4, only: [1] }),
            synAck(6, nextPort(), 9, { fragments: split6, only: [1] }, payload),
            synAck(4, nextPort(), 9, { fragments: split4, only: [0] }),
            synAck(4, q4, 9, { fragments: [{ from: 0, to: null, mf: true }] }),
            synAck(6, q6, 9, { fragments: [{ from: 0, to: null, mf: true }] }),
          ]),
        ).toEqual({ sent: 5, refused: {} }),
      );
      expect(o.runs.egress).toBe(5);
      expect(o.counters).toEqual({ skip_fragment: 2, skip_truncated: 1, flow_begin: 2, flow_table_insert: 2 });
      // seen leaving the cgroup: the peer (host b, port 9) initiated
      expect(flows(o, 'begin').map((e) => [e.direction, e.family, e.srcAddr, e.srcPort, e.dstAddr, e.dstPort])).toEqual([
        ['incoming', 4, net.b.ipv4, 9, net.a.ipv4, q4],
        ['incoming', 6, net.b.ipv6, 9, net.a.ipv6, q6],
      ]);
    });

    it('copied to a raw IPv6 socket for the Fragment header (ingress, before reassembly): the non-first fragment is skip_fragment', async () => {
      const raw = new Sink(cg, net.b.ns, { raw: [[6, 44]] });
      try {
        await raw.started();
        const p = nextPort();
        const o = await observe(async () => peerSend([synAck(6, p, sink.tcp, { fragments: split6 }, payload)]));
        // the raw socket's copies of both fragments, then the listener's reassembled packet
        expect(o.runs.ingress).toBe(3);
        expect(o.counters).toEqual({ flow_begin: 1, flow_table_insert: 1, skip_fragment: 1, synack_duplicate: 1 });
        expect(flows(o, 'begin')).toEqual([listenerBegin(6, p)]);
      } finally {
        raw.stop();
      }
    });
  });

  it('a flood of 2 × 100 000 SYN-ACKs with random tuples: table bounded, memory flat, every begin one that was sent, nothing lost', async () => {
    // in rounds of 25 000; RSS is read after each, once every record of the round is out
    const COUNT = 200_000;
    const ROUNDS = 8;
    const ft = await startFlowtap(['--cgroup', cg.path, '--exporter', 'console', '--flow-table-entries', String(TABLE)]);
    const rssKb = () => Number(/^VmRSS:\s*(\d+) kB/m.exec(readFileSync(`/proc/${ft.child.pid}/status`, 'utf8'))![1]);
    // the CLI's records, reduced to the flow they name
    const cliBegins: string[] = [];
    let cliOther = 0;
    createInterface({ input: ft.child.stdout! }).on('line', (l) => {
      const r = JSON.parse(l) as { eventName: string; attributes: Record<string, string | number> };
      const a = r.attributes;
      if (r.eventName === 'tcp.flow.begin')
        cliBegins.push(`${a['tcp.flow.direction']} ${a['network.type']} ${a['source.address']}:${a['source.port']} ${a['destination.address']}:${a['destination.port']}`);
      else cliOther++;
    });
    // Sources from 198.19.<k>.0/24, which host b has no route to: its RSTs never
    // leave, so every flow stays in the table until evicted.
    const k = net.a.ipv4.split('.')[2];
    const srcs = Array.from({ length: 64 }, (_, i) => `198.19.${k}.${i + 1}`);
    const c0 = probe.counters();
    const r0 = runs();
    const e0 = events.length;
    const rssReady = rssKb();
    const rssAfter: number[] = [];
    const sent = new Set<string>();
    const flood = spawn('ip', ['netns', 'exec', net.a.ns, 'python3', CRAFT, 'flood', JSON.stringify({ family: 4, srcs, dst: net.b.ipv4, dport: sink.tcp, count: COUNT, rounds: ROUNDS, seed: 1 })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(flood);
    const rounds = createInterface({ input: flood.stdout! })[Symbol.asyncIterator]();
    for (let round = 1; round <= ROUNDS; round++) {
      const { tuples } = JSON.parse((await rounds.next()).value as string) as { tuples: [string, number][] };
      for (const [addr, sport] of tuples) sent.add(`outgoing ipv4 ${net.b.ipv4}:${sink.tcp} ${addr}:${sport}`);
      await waitFor(`round ${round}: ${sent.size} begins from the probe and the CLI`, () =>
        events.length - e0 >= sent.size && cliBegins.length >= sent.size ? true : undefined,
      20_000);
      rssAfter.push(rssKb());
      if (round < ROUNDS) flood.stdin!.write('go\n');
    }
    flood.stdin!.end();
    await sleep(300); // anything extra would show now

    // every packet reached the hook and was counted as exactly one begin
    expect(sent.size).toBe(COUNT);
    expect(runs().ingress - r0.ingress).toBe(COUNT);
    const c = probe.counters();
    const delta = Object.fromEntries(counterNames.filter((n) => c[n] !== c0[n]).map((n) => [n, c[n] - c0[n]]));
    expect(delta).toEqual({ flow_begin: COUNT, flow_table_insert: COUNT });
    // the table stayed within its bound: the LRU evicted the rest, and says how many
    const entries = probe.flowTableSize();
    expect(entries).toBeGreaterThan(0);
    expect(entries).toBeLessThanOrEqual(TABLE);
    expect(c.flow_table_evictions - c0.flow_table_evictions).toBeGreaterThanOrEqual(COUNT - TABLE);

    // no misreported flow: the begins are exactly the SYN-ACKs sent (swapped: the listener "initiated")
    const probeBegins = (events.slice(e0) as FlowEvent[]).map(
      (e) => `${e.type === 'begin' ? e.direction : e.type} ipv${e.family} ${e.srcAddr}:${e.srcPort} ${e.dstAddr}:${e.dstPort}`,
    );
    expect(probeBegins.length).toBe(COUNT);
    expect(probeBegins.filter((b) => !sent.has(b))).toEqual([]);
    expect(new Set(probeBegins).size).toBe(COUNT);
    expect(cliBegins.length).toBe(COUNT);
    expect(cliOther).toBe(0);
    expect(cliBegins.filter((b) => !sent.has(b))).toEqual([]);
    expect(new Set(cliBegins).size).toBe(COUNT);

    // No crash, and the CLI's own account agrees: nothing dropped anywhere.
    expect(ft.child.exitCode).toBeNull();
    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    const last = ft.logs().find((l) => l.msg === 'stopped')!;
    const p = last.probe as Record<string, number>;
    expect(p).toMatchObject({ flow_begin: COUNT, flow_table_insert: COUNT, ringbuf_full_flow: 0, flow_table_full: 0, handoff_dropped_records: 0 });
    expect(p.flow_table_insert - p.flow_table_delete - p.flow_table_evictions).toBeLessThanOrEqual(TABLE); // the CLI's table
    expect(last).toMatchObject({ emitted: COUNT, exportedRecords: COUNT, droppedRecords: 0, failedRecords: 0, decodeErrors: 0 });

    console.log(`SYN-ACK flood: ${COUNT} begins, table ${entries}/${TABLE}, rss kB ready ${rssReady}, after each round ${rssAfter.join(' ')}`);
    // Memory flat. The flow table is kernel memory (not RSS), the DNS cache
    // is empty, and the export queue drains between rounds. The first 100 000
    // flows size V8's heap for these bursts (measured: ready ~93 MB, then
    // 150-180 MB). The next 100 000 may add less than 64 MB, 640 B a flow,
    // about one queued record (~0.6 KB): a leak of a record per flow fails
    // here, V8's own heap steps do not (measured -1..+30 MB over 13 runs). In
    // a 600 000-flow run outside the suite, RSS stayed at 170-175 MB from the
    // 125 000th flow on.
    const half = ROUNDS / 2 - 1;
    expect(rssAfter[ROUNDS - 1] - rssAfter[half]).toBeLessThan(64 * 1024);
    expect(rssAfter[ROUNDS - 1] - rssReady).toBeLessThan(128 * 1024); // measured +63..+89 MB
  });
});
