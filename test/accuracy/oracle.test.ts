/**
 * The oracle's own rules (test/helpers/oracle.ts), on hand-made tshark
 * output: a judge that miscounts would make every accuracy result wrong.
 */
import { deriveFlows, namesByAddress, parseTsharkFields, Segment } from '../helpers/oracle';
import { compare, expectedRecords } from '../helpers/accuracy';
import type { CollectedLogRecord } from '../helpers/collector';

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const RST = 0x04;
const PSH = 0x08;

let t = 0;
/** A segment from a:ap to b:bp. */
function seg(a: string, ap: number, b: string, bp: number, flags: number, seq: number, ack = 0): Segment {
  return { time: ++t, family: a.includes(':') ? 6 : 4, src: a, dst: b, sport: ap, dport: bp, flags, seq, ack };
}
const C = '198.18.1.1';
const S = '198.18.1.2';

/** A full handshake + FIN close, server closing first, with the given ISNs. */
function flow(cp: number, sp: number, cisn: number, sisn: number): Segment[] {
  return [
    seg(C, cp, S, sp, SYN, cisn),
    seg(S, sp, C, cp, SYN | ACK, sisn, cisn + 1),
    seg(C, cp, S, sp, ACK, cisn + 1, sisn + 1),
    seg(C, cp, S, sp, PSH | ACK, cisn + 1, sisn + 1),
    seg(S, sp, C, cp, FIN | PSH | ACK, sisn + 1, cisn + 2),
    seg(C, cp, S, sp, FIN | ACK, cisn + 2, sisn + 3),
    seg(S, sp, C, cp, ACK, sisn + 3, cisn + 3),
  ];
}

describe('deriveFlows', () => {
  it('one established flow per handshake; the first FIN, and who sent it', () => {
    const flows = deriveFlows([...flow(40000, 80, 1000, 5000), ...flow(40001, 80, 2000, 6000)]);
    expect(flows).toHaveLength(2);
    expect(flows[0]).toMatchObject({ initiator: C, initiatorPort: 40000, responder: S, responderPort: 80, established: true, synAcks: 1 });
    expect(flows[0].end).toMatchObject({ reason: 'fin', by: 'destination' });
  });

  it('retransmitted SYNs and SYN-ACKs are the same flow', () => {
    const s = flow(40000, 80, 1000, 5000);
    const flows = deriveFlows([s[0], s[0], s[1], s[0], s[1], ...s.slice(2)]);
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ syns: 3, synAcks: 2, established: true });
  });

  it('the same 4-tuple opened again (new ISN) is a new flow', () => {
    const flows = deriveFlows([...flow(40000, 80, 1000, 5000), ...flow(40000, 80, 900_000, 7000)]);
    expect(flows).toHaveLength(2);
    expect(flows.every((f) => f.established && f.end?.reason === 'fin')).toBe(true);
  });

  it('a SYN answered with RST is refused; an unanswered SYN is silent; neither is established', () => {
    const flows = deriveFlows([seg(C, 40000, S, 81, SYN, 10), seg(S, 81, C, 40000, RST | ACK, 0, 11), seg(C, 40001, S, 82, SYN, 20), seg(C, 40001, S, 82, SYN, 20)]);
    expect(flows.map((f) => [f.refused, f.established, f.synAcks, f.syns])).toEqual([
      [true, false, 0, 1],
      [false, false, 0, 2],
    ]);
  });

  it('a SYN-ACK that is never acknowledged is no flow; an ACK of the wrong number does not complete it', () => {
    const flows = deriveFlows([seg(C, 40000, S, 80, SYN, 10), seg(S, 80, C, 40000, SYN | ACK, 99, 11), seg(C, 40000, S, 80, ACK, 11, 12345)]);
    expect(flows[0].established).toBe(false);
  });

  it('a RST from the initiator after the handshake ends the flow by the source', () => {
    const s = flow(40000, 80, 1000, 5000).slice(0, 3);
    const flows = deriveFlows([...s, seg(C, 40000, S, 80, RST | ACK, 1001, 5001), seg(S, 80, C, 40000, FIN | ACK, 5001, 1001)]);
    expect(flows[0].end).toMatchObject({ reason: 'rst', by: 'source' });
  });

  it('ISNs near 2^32 wrap', () => {
    const flows = deriveFlows(flow(40000, 80, 0xffffffff, 0xffffffff).map((s) => ({ ...s, seq: s.seq >>> 0, ack: s.ack >>> 0 })));
    expect(flows[0].established).toBe(true);
  });
});

describe('parseTsharkFields', () => {
  it('reads TCP segments (IPv4 and IPv6) and DNS answers with their CNAME chains', () => {
    const line = (fields: string[]) => fields.join('\t');
    const text = [
      line(['1.5', '198.18.1.1', '198.18.1.2', '', '', '40000', '80', '0x0002', '1000', '0', '', '', '', '', '', '', '']),
      line(['1.6', '', '', 'fd00::1', 'fd00::2', '40001', '80', '0x0012', '7', '1001', '', '', '', '', '', '', '']),
      line(['2.0', '198.18.1.3', '198.18.1.1', '', '', '', '', '', '', '', '1', 'WWW.flowtap.test', 'www.flowtap.test,edge.flowtap.test,svc.flowtap.test', '5,5,1', 'edge.flowtap.test,svc.flowtap.test', '198.18.1.2', '']),
      '',
    ].join('\n');
    const { segments, dns } = parseTsharkFields(text);
    expect(segments).toEqual([
      { time: 1.5, family: 4, src: '198.18.1.1', dst: '198.18.1.2', sport: 40000, dport: 80, flags: 2, seq: 1000, ack: 0 },
      { time: 1.6, family: 6, src: 'fd00::1', dst: 'fd00::2', sport: 40001, dport: 80, flags: 0x12, seq: 7, ack: 1001 },
    ]);
    expect(namesByAddress(dns).get('198.18.1.2')).toEqual(['www.flowtap.test', 'edge.flowtap.test', 'svc.flowtap.test']);
  });
});

describe('compare', () => {
  const flows = deriveFlows(flow(40000, 80, 1000, 5000));
  const expected = expectedRecords(flows, { directions: () => ['outgoing'] });
  const record = (eventName: string, extra: Record<string, unknown> = {}): CollectedLogRecord =>
    ({
      eventName,
      timeUnixNano: BigInt(t++),
      attributes: {
        'flowtap.flow.direction': 'outgoing',
        'source.address': C,
        'source.port': 40000,
        'destination.address': S,
        'destination.port': 80,
        'client.address': C,
        'client.port': 40000,
        'server.address': S,
        'server.port': 80,
        'network.transport': 'tcp',
        'network.type': 'ipv4',
        'network.local.address': C,
        'network.local.port': 40000,
        'network.peer.address': S,
        'network.peer.port': 80,
        ...(eventName === 'flowtap.flow.end' ? { 'flowtap.flow.close_reason': 'fin', 'flowtap.flow.closed_by': 'destination', 'flowtap.flow.duration': 0.001 } : {}),
        ...extra,
      },
    }) as unknown as CollectedLogRecord;

  it('exact', () => {
    expect(expected.map((e) => e.eventName)).toEqual(['flowtap.flow.begin', 'flowtap.flow.end']);
    const c = compare(expected, [record('flowtap.flow.begin'), record('flowtap.flow.end')]);
    expect([c.matched, c.missing.length, c.duplicate.length, c.unexpected.length, c.wrongField.length]).toEqual([2, 0, 0, 0, 0]);
  });

  it('finds missing, duplicate, unexpected and wrong-field records', () => {
    const c = compare(expected, [
      record('flowtap.flow.begin', { 'network.type': 'ipv6' }),
      record('flowtap.flow.begin'),
      record('flowtap.flow.begin', { 'source.port': 1 }),
    ]);
    expect(c.missing.map((e) => e.eventName)).toEqual(['flowtap.flow.end']);
    expect(c.duplicate).toHaveLength(1);
    expect(c.unexpected).toHaveLength(1);
    expect(c.wrongField[0].problems).toEqual(['network.type=ipv6 (want ipv4)']);
  });
});
