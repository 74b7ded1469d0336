/**
 * The oracle's own rules (test/helpers/oracle.ts), on hand-made tshark
 * output: a judge that miscounts would make every accuracy result wrong.
 */
import { deriveFlows, namesByAddress, parseTsharkFields, Segment } from '../helpers/oracle';
import { accountFor, compare, expectedRecords, TIMESTAMP_BOUND_MILLIS, type Comparison, type ExpectedRecord } from '../helpers/accuracy';
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
    const again = { ...s[1], time: s[1].time + 0.5 };
    const flows = deriveFlows([s[0], s[0], s[1], s[0], again, ...s.slice(2)]);
    expect(flows).toHaveLength(1);
    expect(flows[0]).toMatchObject({ syns: 3, synAcks: 2, established: true });
    // the initiator acknowledged the second SYN-ACK: the first was lost before its stack
    expect([flows[0].synAckTime, flows[0].acceptedSynAckTime]).toEqual([s[1].time, again.time]);
  });

  it('a begin is timed by the SYN-ACK its side saw: incoming the first sent, outgoing the one acknowledged; an end by the first FIN', () => {
    const s = flow(40000, 80, 1000, 5000);
    const segs = [s[0], s[1], { ...s[1], time: s[1].time + 0.5 }, ...s.slice(2)];
    const flows = deriveFlows(segs);
    const expected = expectedRecords(flows, { directions: () => ['outgoing', 'incoming'] });
    expect(expected.map((e) => [e.eventName, e.direction, e.packetTime])).toEqual([
      ['flowtap.flow.begin', 'outgoing', segs[2].time],
      ['flowtap.flow.end', 'outgoing', segs[5].time],
      ['flowtap.flow.begin', 'incoming', segs[1].time],
      ['flowtap.flow.end', 'incoming', segs[5].time],
    ]);
  });

  it('the same 4-tuple opened again (new ISN) is a new flow', () => {
    const flows = deriveFlows([...flow(40000, 80, 1000, 5000), ...flow(40000, 80, 900_000, 7000)]);
    expect(flows).toHaveLength(2);
    expect(flows.every((f) => f.established && f.end?.reason === 'fin')).toBe(true);
  });

  it('a SYN answered with RST is refused; an unanswered SYN is silent; neither is established', () => {
    const flows = deriveFlows([
      seg(C, 40000, S, 81, SYN, 10),
      seg(S, 81, C, 40000, RST | ACK, 0, 11),
      seg(C, 40001, S, 82, SYN, 20),
      seg(C, 40001, S, 82, SYN, 20),
    ]);
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
      line([
        '2.0',
        '198.18.1.3',
        '198.18.1.1',
        '',
        '',
        '',
        '',
        '',
        '',
        '',
        '1',
        'WWW.flowtap.test',
        'www.flowtap.test,edge.flowtap.test,svc.flowtap.test',
        '5,5,1',
        'edge.flowtap.test,svc.flowtap.test',
        '198.18.1.2',
        '',
      ]),
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
  /** The record flowtap should send, stamped `offsetMs` from its packet's capture time. */
  const record = (eventName: string, extra: Record<string, unknown> = {}, offsetMs = 0.25): CollectedLogRecord =>
    ({
      eventName,
      timeUnixNano: BigInt(Math.round(expected.find((e) => e.eventName === eventName)!.packetTime! * 1e6)) * 1000n + BigInt(Math.round(offsetMs * 1e6)),
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
        ...(eventName === 'flowtap.flow.end'
          ? { 'flowtap.flow.close_reason': 'fin', 'flowtap.flow.closed_by': 'destination', 'flowtap.flow.duration': 0.001 }
          : {}),
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

  it("a Timestamp within the bound of its packet's capture time matches; one beyond it, or a shifted clock, is a wrong field", () => {
    const inBound = compare(expected, [
      record('flowtap.flow.begin', {}, -(TIMESTAMP_BOUND_MILLIS - 0.5)),
      record('flowtap.flow.end', {}, TIMESTAMP_BOUND_MILLIS - 0.5),
    ]);
    expect(inBound.wrongField).toEqual([]);
    expect(inBound.maxTimestampOffsetMillis).toBeCloseTo(TIMESTAMP_BOUND_MILLIS - 0.5, 6);
    for (const offsetMs of [TIMESTAMP_BOUND_MILLIS + 0.5, -(TIMESTAMP_BOUND_MILLIS + 0.5), 20_000, -20_000]) {
      const c = compare(expected, [record('flowtap.flow.begin', {}, offsetMs), record('flowtap.flow.end')]);
      expect(c.wrongField).toHaveLength(1);
      expect(c.wrongField[0].problems[0]).toMatch(new RegExp(`^timestamp -?\\d+ is ${offsetMs.toFixed(3)} ms from its packet's capture time`));
    }
  });
});

describe('accountFor: a missing record only where a counter names that loss', () => {
  const [begin, end] = expectedRecords(deriveFlows(flow(40000, 80, 1000, 5000)), { directions: () => ['outgoing'] });
  const comparison = (missing: ExpectedRecord[], wrongField: Comparison['wrongField'] = []): Comparison => ({
    expected: 2,
    seen: 2 - missing.length,
    matched: 2 - missing.length,
    missing,
    duplicate: [],
    unexpected: [],
    wrongField,
    maxTimestampOffsetMillis: 0,
  });

  it('flow-table counters explain lost ends, never lost begins', () => {
    for (const counter of ['flow_table_full', 'flow_table_evictions']) {
      expect(accountFor(comparison([end]), { [counter]: 1 })).toEqual({ accountedFor: { [counter]: 1 }, missing: [], wrongField: [] });
      expect(accountFor(comparison([begin]), { [counter]: 5 })).toEqual({ accountedFor: {}, missing: [begin], wrongField: [] });
    }
  });

  it('record losses explain begins and ends, one record per unit; the end-only counters are used first', () => {
    expect(accountFor(comparison([begin, end]), { ringbuf_full_flow: 1 })).toEqual({ accountedFor: { ringbuf_full_flow: 1 }, missing: [end], wrongField: [] });
    expect(accountFor(comparison([begin, end]), { ringbuf_full_flow: 1, flow_table_evictions: 1 }).accountedFor).toEqual({
      ringbuf_full_flow: 1,
      flow_table_evictions: 1,
    });
    for (const counter of ['handoff_dropped_records', 'bad_records', 'droppedRecords', 'failedRecords']) {
      expect(accountFor(comparison([begin, end]), { [counter]: 2 })).toEqual({ accountedFor: { [counter]: 2 }, missing: [], wrongField: [] });
    }
    // the DNS counter and counters that are no loss explain nothing missing
    expect(accountFor(comparison([begin]), { ringbuf_full_dns: 9, synack_duplicate: 9, filtered: 9 }).missing).toEqual([begin]);
  });

  it('lost DNS answers excuse a wrong destination name, and nothing else; flow losses never excuse a name', () => {
    const named = {
      record: {} as CollectedLogRecord,
      problems: ['flowtap.flow.destination.domains=[] (want ["a.test"])', 'server.address=198.18.1.2 (want a.test)'],
    };
    const port = { record: {} as CollectedLogRecord, problems: ['server.port=1 (want 80)'] };
    expect(accountFor(comparison([], [named, port]), { ringbuf_full_dns: 1 })).toEqual({
      accountedFor: { ringbuf_full_dns: 1 },
      missing: [],
      wrongField: [port],
    });
    expect(accountFor(comparison([], [named]), { ringbuf_full_flow: 9, flow_table_full: 9 }).wrongField).toEqual([named]);
  });
});

describe('expected failed attempts', () => {
  it('a SYN answered by a RST is one refused attempt at the RST; an unanswered SYN, timed out or abandoned, its SYNs counted; only from the watched (outgoing) side', () => {
    const refused = [seg(C, 41000, S, 81, SYN, 100), seg(S, 81, C, 41000, RST | ACK, 0, 101)];
    const unanswered = [seg(C, 41001, S, 82, SYN, 200), seg(C, 41001, S, 82, SYN, 200)];
    const flows = deriveFlows([...refused, ...unanswered, ...flow(41002, 80, 300, 900)]);
    const expected = expectedRecords(flows, { directions: () => ['outgoing'] });
    const attempts = expected.filter((e) => e.eventName === 'flowtap.flow.attempt');
    expect(attempts).toEqual([
      expect.objectContaining({ srcPort: 41000, dstPort: 81, attemptReasons: ['refused'], syns: 1, packetTime: refused[1].time }),
      expect.objectContaining({ srcPort: 41001, dstPort: 82, attemptReasons: ['timed_out', 'abandoned'], syns: 2, packetTime: undefined }),
    ]);
    // a watched server sees no attempt of a client elsewhere
    expect(expectedRecords(flows, { directions: () => ['incoming'] }).filter((e) => e.eventName === 'flowtap.flow.attempt')).toEqual([]);
    // and a record with the wrong reason or SYN count is a wrong field
    const record = (reason: string, syns: number): CollectedLogRecord =>
      ({
        eventName: 'flowtap.flow.attempt',
        timeUnixNano: BigInt(Math.round(refused[1].time * 1e6)) * 1000n,
        attributes: {
          'flowtap.flow.direction': 'outgoing',
          'source.address': C,
          'source.port': 41000,
          'destination.address': S,
          'destination.port': 81,
          'client.address': C,
          'client.port': 41000,
          'server.address': S,
          'server.port': 81,
          'network.transport': 'tcp',
          'network.type': 'ipv4',
          'network.local.address': C,
          'network.local.port': 41000,
          'network.peer.address': S,
          'network.peer.port': 81,
          'flowtap.flow.attempt.reason': reason,
          'flowtap.flow.attempt.syn_count': syns,
        },
      }) as unknown as CollectedLogRecord;
    expect(compare([attempts[0]], [record('refused', 1)]).wrongField).toEqual([]);
    expect(compare([attempts[0]], [record('timed_out', 1)]).wrongField[0].problems).toEqual(['flowtap.flow.attempt.reason=timed_out (want refused)']);
    expect(compare([attempts[0]], [record('refused', 3)]).wrongField[0].problems).toEqual(['flowtap.flow.attempt.syn_count=3 (want 1)']);
  });
});
