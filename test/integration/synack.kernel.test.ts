/**
 * Which SYN-ACKs begin an outgoing flow: real kernel programs (native addon),
 * real TCP sockets in a throwaway cgroup on host b of a TestNet, and SYN-ACKs
 * built by test/fixtures/craft.py and sent from a raw socket on host a,
 * outside the cgroup. On ingress a SYN-ACK is the reply to our handshake only
 * when the socket it is delivered to is a TCP socket in SYN_SENT; every other
 * one (to a listener, to an established connection) is counted as
 * synack_unsolicited and reported as nothing. The real replies of real
 * connections are kernel.test.ts's.
 *
 * Client sockets are held in SYN_SENT by connecting to host a's port
 * UNANSWERED, whose SYNs host b's nftables drops on output (before the egress
 * hook, so no hook sees them); the SYN-ACK is then crafted with the matching
 * tuple. Its ACK number is not the client's, so the client answers it with a
 * RST and stays in SYN_SENT: the hook has already run by then (tcp_filter
 * runs before TCP looks at the segment).
 */
import { execFileSync } from 'node:child_process';
import { TestCgroup } from '../helpers/cgroup';
import { Sink, ProbeObserver, sendFrom, type Spec, type Observed } from '../helpers/crafted';
import { TestNet, nftDrop } from '../helpers/netns';
import { enableBpfStats } from '../helpers/traffic';
import type { FlowEvent } from '../../src/kernel/decode';

/** Host a's port that never answers: host b drops its SYNs to it. */
const UNANSWERED = 9;

describe('an ingress SYN-ACK begins a flow only for a TCP socket in SYN_SENT (real kernel programs, native addon, crafted packets, test namespaces)', () => {
  let net: TestNet;
  let cg: TestCgroup;
  let stopStats: () => void;
  /** In the cgroup on host b: the listener, and the client sockets. */
  let sink: Sink;
  /** Outside it on host a: a listener the clients can really connect to. */
  let peer: Sink;
  let obs: ProbeObserver | undefined;
  let port = 21000;
  const nextPort = () => port++;

  const addrs = (family: 4 | 6) => (family === 4 ? { a: net.a.ipv4, b: net.b.ipv4 } : { a: net.a.ipv6, b: net.b.ipv6 });
  /** A SYN-ACK (or, with flags 'S', a SYN) from host a's aport to host b's bport. */
  const synAck = (family: 4 | 6, aport: number, bport: number, flags = 'SA'): Spec => {
    const { a, b } = addrs(family);
    return { family, src: a, dst: b, l4: { proto: 'tcp', sport: aport, dport: bport, flags } };
  };
  /** A client socket of the sink, from host b's bport to host a's aport; resolves with its TCP state after up to waitMillis. */
  const client = async (family: 4 | 6, bport: number, aport: number, waitMillis = 0): Promise<string> => {
    const { a, b } = addrs(family);
    const [state] = await sink.connect([{ family, src: b, sport: bport, dst: a, dport: aport }], waitMillis);
    return state;
  };
  /** The outgoing begin of the sink's client on bport to host a's aport. */
  const clientFlow = (family: 4 | 6, bport: number, aport: number) => {
    const { a, b } = addrs(family);
    return { family, direction: 'outgoing', srcAddr: b, srcPort: bport, dstAddr: a, dstPort: aport, cgroupId: cg.id };
  };
  const flows = (o: Observed, type: 'begin' | 'end') =>
    (o.events.filter((e) => e.type === type) as FlowEvent[]).map((e) => ({
      family: e.family,
      direction: e.direction,
      srcAddr: e.srcAddr,
      srcPort: e.srcPort,
      dstAddr: e.dstAddr,
      dstPort: e.dstPort,
      cgroupId: e.cgroupId,
      ...(type === 'end' ? { closeReason: e.closeReason, closedBy: e.closedBy } : {}),
    }));

  beforeAll(async () => {
    net = new TestNet();
    cg = new TestCgroup('synack');
    stopStats = await enableBpfStats();
    net.nft(net.b, nftDrop('ftunanswered', 'output', `tcp dport ${UNANSWERED} tcp flags & (syn | ack) == syn`));
    // and host a never answers on it (no RST for what host b's clients send there)
    net.nft(net.a, nftDrop('ftsilent', 'input', `tcp dport ${UNANSWERED}`));
    sink = new Sink(net.b.ns, cg);
    peer = new Sink(net.a.ns);
    await Promise.all([sink.started(), peer.started()]);
    // A fresh veth (IPv6 above all) takes a moment to carry packets: wait until a handshake completes on each family.
    for (const family of [4, 6] as const) {
      const deadline = Date.now() + 10_000;
      while ((await client(family, nextPort(), peer.tcp, 500)) !== 'ESTABLISHED') {
        if (Date.now() > deadline) throw new Error(`IPv${family} between the test hosts: no handshake after 10 s`);
      }
    }
  });

  afterEach(async () => {
    if (obs) expect(obs.decodeErrors).toBe(0);
    await obs?.close();
    obs = undefined;
  });

  afterAll(async () => {
    sink?.stop();
    peer?.stop();
    stopStats?.();
    await cg?.destroy();
    net?.destroy();
  });

  describe.each([4, 6] as const)('IPv%i', (family) => {
    it('a SYN-ACK for a client socket in SYN_SENT: exactly one outgoing begin, the client as the source', async () => {
      obs = new ProbeObserver(cg.path);
      const p = nextPort();
      expect(await client(family, p, UNANSWERED)).toBe('SYN_SENT');
      const o = await obs.observe(async () => sendFrom(net.a.ns, [synAck(family, UNANSWERED, p)]));
      expect(o.runs.ingress).toBe(1);
      expect(flows(o, 'begin')).toEqual([clientFlow(family, p, UNANSWERED)]);
      if (family === 4) {
        // the client's RST (the ACK number is not its own) is its own packet on IPv4: it ends the flow
        expect(flows(o, 'end')).toEqual([{ ...clientFlow(family, p, UNANSWERED), closeReason: 'rst', closedBy: 'source' }]);
        expect(o.counters).toEqual({ flow_begin: 1, flow_table_insert: 1, flow_end: 1, flow_table_delete: 1 });
      } else {
        // IPv6 sends it from the namespace's control socket, outside the cgroup: the flow stays open
        expect(o.counters).toEqual({ flow_begin: 1, flow_table_insert: 1 });
      }
      // the hook ran before TCP refused the segment: the client is still waiting for its reply
      const ss = execFileSync('ip', ['netns', 'exec', net.b.ns, 'ss', '-Htn', 'state', 'syn-sent', `sport = :${p}`], { encoding: 'utf8' });
      expect(ss.trim().split('\n').filter(Boolean)).toHaveLength(1);
    });

    it("a simultaneous open (the peer's SYN crosses the client's) that the peer never ACKs: the client's own SYN-ACK is pending (no begin); the peer's SYN-ACK, arriving in SYN_RECV, is synack_unsolicited", async () => {
      obs = new ProbeObserver(cg.path);
      const p = nextPort();
      expect(await client(family, p, UNANSWERED)).toBe('SYN_SENT');
      const o = await obs.observe(async () => {
        sendFrom(net.a.ns, [synAck(family, UNANSWERED, p, 'S'), synAck(family, UNANSWERED, p)]);
        // before it retransmits its SYN-ACK (1 s): its RST ends the flow
        expect(await sink.close([p])).toBe(1);
      });
      expect(o.runs.ingress).toBe(2);
      // host a "initiated": its SYN was answered
      const { a, b } = addrs(family);
      // the client's own SYN-ACK waits for an ACK that host a never sends: no begin, no end
      expect(flows(o, 'begin')).toEqual([]);
      expect(flows(o, 'end')).toEqual([]);
      expect(o.counters).toEqual({ synack_pending: 1, synack_unsolicited: 1 });
      expect(a).not.toBe(b);
    });

    it('a SYN-ACK to a listener in the cgroup: synack_unsolicited, no record', async () => {
      obs = new ProbeObserver(cg.path);
      const o = await obs.observe(async () => sendFrom(net.a.ns, [synAck(family, nextPort(), sink.tcp)]));
      expect(o.runs.ingress).toBe(1);
      expect(o.counters).toEqual({ synack_unsolicited: 1 });
      expect(o.events).toEqual([]);
    });

    it('a SYN-ACK matching a connection established before attach: synack_unsolicited, no record', async () => {
      const p = nextPort();
      expect(await client(family, p, peer.tcp, 5000)).toBe('ESTABLISHED');
      obs = new ProbeObserver(cg.path);
      const o = await obs.observe(async () => sendFrom(net.a.ns, [synAck(family, peer.tcp, p)]));
      expect(o.runs.ingress).toBe(1);
      expect(o.counters).toEqual({ synack_unsolicited: 1 });
      expect(o.events).toEqual([]);
    });

    it('a SYN-ACK repeated for a flow begun after attach (its client ESTABLISHED by then): synack_duplicate, still one begin', async () => {
      obs = new ProbeObserver(cg.path);
      const p = nextPort();
      const o = await obs.observe(async () => {
        expect(await client(family, p, peer.tcp, 5000)).toBe('ESTABLISHED');
        sendFrom(net.a.ns, [synAck(family, peer.tcp, p)]);
      });
      expect(o.runs.ingress).toBe(2); // the real SYN-ACK, then the crafted one
      expect(flows(o, 'begin')).toEqual([clientFlow(family, p, peer.tcp)]);
      expect(o.counters).toEqual({ flow_begin: 1, flow_table_insert: 1, synack_duplicate: 1 });
    });
  });
});
