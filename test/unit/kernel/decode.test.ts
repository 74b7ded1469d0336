import { formatIPv4, formatIPv6 } from '../../../src/kernel/address';
import { decodeBatch, forEachEvent, type DnsEvent, type FlowEvent } from '../../../src/kernel/decode';
import { prng } from '../../helpers/prng';
import { dnsRecord, flowRecord, v4, v4mapped, v6 } from '../record/recordfix';

const begin4 = (over: Partial<Parameters<typeof flowRecord>[0]> = {}): Buffer =>
  flowRecord({
    tsNs: 123_456_789_012n,
    saddr: v4(10, 0, 0, 5),
    daddr: v4(93, 184, 216, 34),
    sport: 43512,
    dport: 443,
    family: 4,
    direction: 2,
    cgroupId: 0x1122334455667788n,
    ...over,
  });

describe('decodeBatch', () => {
  it('decodes an IPv4 outgoing flow begin', () => {
    const { events, errors } = decodeBatch(begin4());
    expect(errors).toBe(0);
    expect(events).toEqual<FlowEvent[]>([
      {
        type: 'begin',
        tsNs: 123_456_789_012n,
        family: 4,
        direction: 'outgoing',
        srcAddr: '10.0.0.5',
        srcPort: 43512,
        dstAddr: '93.184.216.34',
        dstPort: 443,
        cgroupId: 0x1122334455667788n,
        closeReason: undefined,
        closedBy: undefined,
        beginTsNs: undefined,
        flowId: 0n,
        cookie: 0n,
      },
    ]);
  });

  it('decodes a failed attempt: each reason, its SYNs and time, no TCP statistics; an unknown reason is an error', () => {
    const reasons = ['refused', 'unreachable', 'timed_out', 'abandoned'];
    const tcp = { sent: 1n, received: 2n, segsOut: 3, segsIn: 4, retrans: 5, srttUs: 6, minRttUs: 7 };
    const { events, errors } = decodeBatch(
      Buffer.concat([1, 2, 3, 4, 0, 5].map((closeReason) => begin4({ type: 4, closeReason, handshake: { ns: 3_000_000_000n, syns: 2 }, tcp }))),
    );
    expect(errors).toBe(2);
    expect(events.map((e) => (e as FlowEvent).attemptReason)).toEqual(reasons);
    for (const e of events as FlowEvent[]) {
      expect(e).toMatchObject({ type: 'attempt', direction: 'outgoing', closeReason: undefined, closedBy: undefined, beginTsNs: undefined, tcp: undefined });
      expect(e.handshake).toEqual({ durationNs: 3_000_000_000n, synCount: 2 });
    }
    // an end's close fields are not an attempt's reason
    const [end] = decodeBatch(begin4({ type: 2, closeReason: 1, closedBy: 1 })).events as FlowEvent[];
    expect(end.attemptReason).toBeUndefined();
  });

  it('decodes the flow id, the cookie, and each optional part only when its flag is set', () => {
    const parts = {
      cookie: 4097n,
      flowId: 0xfedcba9876543210n,
      process: { pid: 4242, uid: 1000, comm: 'curl', tsNs: 77n },
      handshake: { ns: 35_000n, syns: 2 },
      tcp: { sent: 5_000_000_123n, received: 3000n, segsOut: 11, segsIn: 9, retrans: 1, srttUs: 40, minRttUs: 9 },
    };
    const [end] = decodeBatch(begin4({ type: 2, closeReason: 1, closedBy: 1, cgroupId: 5n, ...parts })).events as FlowEvent[];
    expect(end).toMatchObject({
      cookie: 4097n,
      flowId: 0xfedcba9876543210n,
      process: { pid: 4242, uid: 1000, comm: 'curl', capturedAtNs: 77n, cgroupId: 5n },
      handshake: { durationNs: 35_000n, synCount: 2 },
      tcp: { bytesSent: 5_000_000_123, bytesReceived: 3000, segsOut: 11, segsIn: 9, retransSegs: 1, srttUs: 40, minRttUs: 9 },
    });
    // the same bytes with no flag: no part, whatever the fields hold
    const [bare] = decodeBatch(begin4({ type: 2, closeReason: 1, closedBy: 1, ...parts, flags: 0 })).events as FlowEvent[];
    expect([bare.process, bare.handshake, bare.tcp]).toEqual([undefined, undefined, undefined]);
    // a begin never carries TCP statistics, even with the flag
    const [begin] = decodeBatch(begin4({ ...parts })).events as FlowEvent[];
    expect(begin.tcp).toBeUndefined();
    expect(begin.process?.comm).toBe('curl');
    // a comm of the full 16 bytes with no NUL is cut at 16
    const [long] = decodeBatch(begin4({ process: { ...parts.process, comm: 'abcdefghijklmnopqrst' } })).events as FlowEvent[];
    expect(long.process?.comm).toBe('abcdefghijklmnop');
  });

  it('decodes an IPv6 incoming flow begin', () => {
    const buf = flowRecord({
      tsNs: 5n,
      saddr: v6(0xfd00, 0, 0, 0, 0, 0, 0, 2),
      daddr: v6(0xfd00, 0, 0, 0, 0, 0, 0, 1),
      sport: 50000,
      dport: 8080,
      family: 6,
      direction: 1,
    });
    const { events, errors } = decodeBatch(buf);
    expect(errors).toBe(0);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'begin',
      family: 6,
      direction: 'incoming',
      srcAddr: 'fd00::2',
      srcPort: 50000,
      dstAddr: 'fd00::1',
      dstPort: 8080,
    });
  });

  it('decodes a flow end with reason, closer and begin time', () => {
    const buf = begin4({ type: 2, tsNs: 3_500_000_000n, beginTsNs: 1_000_000_000n, closeReason: 2, closedBy: 2 });
    const { events, errors } = decodeBatch(buf);
    expect(errors).toBe(0);
    expect(events[0]).toMatchObject({
      type: 'end',
      tsNs: 3_500_000_000n,
      beginTsNs: 1_000_000_000n,
      closeReason: 'rst',
      closedBy: 'destination',
    });
    const fin = decodeBatch(begin4({ type: 2, closeReason: 1, closedBy: 1 })).events[0] as FlowEvent;
    expect([fin.closeReason, fin.closedBy]).toEqual(['fin', 'source']);
  });

  it('writes an IPv4-mapped IPv6 flow as an IPv4 flow', () => {
    const buf = flowRecord({
      saddr: v4mapped(198, 18, 0, 1),
      daddr: v4mapped(198, 18, 0, 2),
      sport: 1,
      dport: 2,
      family: 6,
      direction: 2,
    });
    const ev = decodeBatch(buf).events[0] as FlowEvent;
    expect([ev.family, ev.srcAddr, ev.dstAddr]).toEqual([4, '198.18.0.1', '198.18.0.2']);
  });

  it('decodes a DNS record with its flags, and the data as a view of len bytes', () => {
    const data = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x01]);
    const buf = dnsRecord({
      tsNs: 77n,
      data,
      msgLen: 1500,
      flags: 1 | 4,
      family: 6,
      cgroupId: 9n,
      saddr: v6(0xfd00, 0, 0, 0, 0, 0, 0, 0x53),
      sport: 53,
      daddr: v4mapped(198, 18, 0, 1),
      dport: 41000,
    });
    const { events, errors } = decodeBatch(buf);
    expect(errors).toBe(0);
    const ev = events[0] as DnsEvent;
    expect(ev).toMatchObject({
      type: 'dns',
      tsNs: 77n,
      family: 6,
      cgroupId: 9n,
      srcAddr: 'fd00::53',
      srcPort: 53,
      dstAddr: '198.18.0.1', // IPv4-mapped: written as IPv4
      dstPort: 41000,
      msgLen: 1500,
      truncated: true,
      tcp: false,
      egress: true,
    });
    expect([...ev.data]).toEqual([0xde, 0xad, 0xbe, 0xef, 0x01]);
    expect(ev.data.buffer).toBe(buf.buffer);
  });

  it('decodes the addresses of an IPv4 DNS record', () => {
    const ev = decodeBatch(dnsRecord({ data: Buffer.from([1]), saddr: v4(198, 18, 0, 1), sport: 40001, daddr: v4(198, 18, 0, 53), dport: 53 }))
      .events[0] as DnsEvent;
    expect([ev.family, ev.srcAddr, ev.srcPort, ev.dstAddr, ev.dstPort]).toEqual([4, '198.18.0.1', 40001, '198.18.0.53', 53]);
  });

  it('keeps ring-buffer order across types', () => {
    const buf = Buffer.concat([
      begin4({ tsNs: 1n }),
      dnsRecord({ tsNs: 2n, data: Buffer.from([1]) }),
      begin4({ tsNs: 3n, type: 2, closeReason: 1, closedBy: 1 }),
    ]);
    const { events, errors } = decodeBatch(buf);
    expect(errors).toBe(0);
    expect(events.map((e) => [e.type, e.tsNs])).toEqual([
      ['begin', 1n],
      ['dns', 2n],
      ['end', 3n],
    ]);
  });

  it('accepts a DNS record whose size covers only the valid data', () => {
    const full = dnsRecord({ data: Buffer.from([1, 2, 3]), size: 75 });
    const { events, errors } = decodeBatch(Buffer.concat([full.subarray(0, 75), begin4()]));
    expect(errors).toBe(0);
    expect(events.map((e) => e.type)).toEqual(['dns', 'begin']);
  });

  it('returns nothing for an empty batch', () => {
    expect(decodeBatch(Buffer.alloc(0))).toEqual({ events: [], errors: 0 });
  });

  describe('bad input is counted, never thrown', () => {
    it('stops at a size below the header size', () => {
      const { events, errors } = decodeBatch(Buffer.concat([begin4(), begin4({ size: 8 }), begin4()]));
      expect(events).toHaveLength(1);
      expect(errors).toBe(1);
    });

    it('stops at a size beyond the batch', () => {
      const { events, errors } = decodeBatch(Buffer.concat([begin4(), begin4({ size: 200 })]));
      expect(events).toHaveLength(1);
      expect(errors).toBe(1);
    });

    it('stops at a truncated header', () => {
      const { events, errors } = decodeBatch(Buffer.concat([begin4(), Buffer.alloc(10)]));
      expect(events).toHaveLength(1);
      expect(errors).toBe(1);
    });

    it('stops at a record cut short', () => {
      const { events, errors } = decodeBatch(Buffer.concat([begin4(), begin4().subarray(0, 40)]));
      expect(events).toHaveLength(1);
      expect(errors).toBe(1);
    });

    it('skips a flow record smaller than the flow struct and goes on', () => {
      const small = begin4({ size: 40 }).subarray(0, 40);
      const { events, errors } = decodeBatch(Buffer.concat([small, begin4({ tsNs: 9n })]));
      expect(events.map((e) => e.tsNs)).toEqual([9n]);
      expect(errors).toBe(1);
    });

    it('skips unknown types, versions, families, directions and close fields', () => {
      const unknownType = begin4();
      unknownType[8] = 7;
      const bad = [
        unknownType,
        begin4({ version: 1 }), // an older record layout
        begin4({ family: 5 }),
        begin4({ direction: 0 }),
        begin4({ direction: 3 }),
        begin4({ type: 2, closeReason: 0, closedBy: 1 }),
        begin4({ type: 2, closeReason: 1, closedBy: 3 }),
      ];
      const { events, errors } = decodeBatch(Buffer.concat([...bad, begin4({ tsNs: 42n })]));
      expect(events.map((e) => e.tsNs)).toEqual([42n]);
      expect(errors).toBe(bad.length);
    });

    it('skips a DNS record whose len exceeds its size or family is unknown', () => {
      const tooLong = dnsRecord({ data: Buffer.from([1]), len: 1233 });
      const shortSize = dnsRecord({ data: Buffer.from([1, 2, 3, 4]), size: 74 }).subarray(0, 74);
      const badFamily = dnsRecord({ data: Buffer.from([1]), family: 0 });
      const { events, errors } = decodeBatch(Buffer.concat([tooLong, shortSize, badFamily, begin4()]));
      expect(events.map((e) => e.type)).toEqual(['begin']);
      expect(errors).toBe(3);
    });

    it('survives random bytes: each record the framing delimits is decoded or counted, and a broken frame ends the batch as one error', () => {
      let seed = 12345;
      const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
      // The framing, read from bpf/flowtap.h: a 16-byte header whose u16 at offset 10 is the record's size.
      let multi = 0;
      const frames = (b: Buffer): { records: number; broken: number } => {
        let records = 0;
        for (let off = 0; off < b.length;) {
          const size = b.length - off >= 16 ? b.readUInt16LE(off + 10) : 0;
          if (size < 16 || size > b.length - off) return { records, broken: 1 };
          records++;
          off += size;
        }
        return { records, broken: 0 };
      };
      for (let i = 0; i < 200; i++) {
        const b = Buffer.from(Array.from({ length: 1 + ((i * 37) % 400) }, rnd));
        // every other buffer: random records with sizes that frame (16 to 271 bytes), so the walk goes past the first
        for (let off = 0; i % 2 === 1 && b.length - off >= 16;) {
          const size = Math.min(16 + rnd(), b.length - off);
          b.writeUInt16LE(size, off + 10);
          off += size;
        }
        const { events, errors } = decodeBatch(b);
        const f = frames(b);
        expect(events.length + errors).toBe(f.records + f.broken);
        expect(errors).toBeGreaterThanOrEqual(f.broken);
        if (i % 2 === 1) multi += f.records > 1 ? 1 : 0;
      }
      expect(multi).toBeGreaterThan(50); // the framed buffers held several records each
    });
  });
});

describe('decode: texts and ids are those of the bytes, however often they repeat', () => {
  it('on 20 000 flows drawn from 1200 addresses and cgroup ids (address texts are cached, ids memoized; seed 0xadd7)', () => {
    const r = prng(0xadd7);
    const int = (n: number): number => Math.floor(r() * n);
    const bytes = (n: number): number[] => Array.from({ length: n }, () => int(256));
    // Few distinct values, so both cache hits and slot collisions (4096 slots) happen, also between addresses
    // that differ only in their last bytes (fd00::a:b, fd00::c:d); zero groups for IPv6's '::'.
    const v4s = [...Array.from({ length: 300 }, () => bytes(4)), ...Array.from({ length: 300 }, (_, i) => [10, 0, i >> 8, i & 0xff])];
    const v6s = [
      ...Array.from({ length: 300 }, () => Array.from({ length: 16 }, (_, i) => (i % 4 < 2 && r() < 0.5 ? 0 : int(256)))),
      ...Array.from({ length: 300 }, () => [0xfd, 0, ...Array<number>(10).fill(0), ...bytes(4)]),
    ];
    const ids = [0n, 1n, 2n, 2n ** 32n + 1n, 2n ** 32n + 2n, 2n ** 63n + 1n, 0xffff_ffff_ffff_ffffn];
    for (let i = 0; i < 20_000; i++) {
      const six = r() < 0.5;
      const s = six ? v6s[int(v6s.length)] : v4s[int(v4s.length)];
      const d = six ? v6s[int(v6s.length)] : v4s[int(v4s.length)];
      const cgroupId = ids[int(ids.length)];
      const tsNs = BigInt(int(2 ** 30)) * 2n ** 32n + BigInt(int(2 ** 30));
      const [ev] = decodeBatch(
        flowRecord({
          tsNs,
          saddr: six ? s : [...s, ...bytes(12)],
          daddr: six ? d : [...d, ...bytes(12)],
          sport: 1,
          dport: 2,
          family: six ? 6 : 4,
          direction: 1,
          cgroupId,
        }),
      ).events as FlowEvent[];
      const text = (b: number[]): string => (six ? formatIPv6(Uint8Array.from(b)) : formatIPv4(Uint8Array.from(b)));
      if (ev.srcAddr !== text(s) || ev.dstAddr !== text(d) || ev.cgroupId !== cgroupId || ev.tsNs !== tsNs) {
        throw new Error(`flow ${i}: ${ev.srcAddr} ${ev.dstAddr} ${ev.cgroupId} ${ev.tsNs} for ${text(s)} ${text(d)} ${cgroupId} ${tsNs}`);
      }
    }
  });
});

describe('forEachEvent', () => {
  it('visits each event in order before decoding the next, and counts as decodeBatch does', () => {
    const broken = begin4({ tsNs: 2n });
    broken[9] = 99; // unknown ABI version: counted, skipped
    const batch = Buffer.concat([begin4({ tsNs: 1n }), broken, dnsRecord({ data: Buffer.from([7]) }), begin4({ tsNs: 3n })]);
    const seen: string[] = [];
    const counts = forEachEvent(batch, (ev) => seen.push(ev.type === 'dns' ? 'dns' : `flow ${ev.tsNs}`));
    expect(seen).toEqual(['flow 1', 'dns', 'flow 3']);
    expect(counts).toEqual({ events: 3, errors: 1 });
    expect(decodeBatch(batch).errors).toBe(1);
  });

  it('refills one FlowEvent per batch (valid during the visit only); decodeBatch gives each event its own', () => {
    const batch = Buffer.concat([begin4({ tsNs: 1n }), begin4({ tsNs: 2n, sport: 7 })]);
    const seen: FlowEvent[] = [];
    const copies: FlowEvent[] = [];
    forEachEvent(batch, (ev) => {
      seen.push(ev as FlowEvent);
      copies.push({ ...(ev as FlowEvent) });
    });
    expect(seen[0]).toBe(seen[1]);
    expect(copies.map((e) => [e.tsNs, e.srcPort])).toEqual([
      [1n, 43512],
      [2n, 7],
    ]);
    const { events } = decodeBatch(batch);
    expect(events[0]).not.toBe(events[1]);
    expect(events).toEqual(copies);
  });

  it('refills the optional parts too, and clears the ones a later record lacks', () => {
    const proc = { pid: 5, uid: 6, comm: 'a', tsNs: 7n };
    const tcp = { sent: 10n, received: 20n, segsOut: 3, segsIn: 4, retrans: 0, srttUs: 9, minRttUs: 8 };
    const batch = Buffer.concat([
      begin4({ type: 2, closeReason: 1, closedBy: 1, process: proc, tcp, handshake: { ns: 1n, syns: 1 } }),
      begin4({ type: 2, closeReason: 1, closedBy: 1, process: { ...proc, pid: 55, comm: 'b' }, tcp: { ...tcp, sent: 11n } }),
      begin4({}),
    ]);
    const seen: [number | undefined, string | undefined, number | undefined, bigint | undefined][] = [];
    const objects: unknown[] = [];
    forEachEvent(batch, (ev) => {
      const f = ev as FlowEvent;
      seen.push([f.process?.pid, f.process?.comm, f.tcp?.bytesSent, f.handshake?.durationNs]);
      objects.push(f.process);
    });
    expect(seen).toEqual([
      [5, 'a', 10, 1n],
      [55, 'b', 11, undefined],
      [undefined, undefined, undefined, undefined],
    ]);
    expect(objects[0]).toBe(objects[1]);
    const { events } = decodeBatch(batch);
    expect((events[0] as FlowEvent).process).not.toBe((events[1] as FlowEvent).process);
    expect((events[0] as FlowEvent).process?.pid).toBe(5);
  });

  it('lets an exception from the visitor through, having visited only up to it', () => {
    const seen: bigint[] = [];
    const visit = (ev: { tsNs: bigint }): void => {
      seen.push(ev.tsNs);
      if (ev.tsNs === 2n) throw new Error('stop');
    };
    expect(() => forEachEvent(Buffer.concat([begin4({ tsNs: 1n }), begin4({ tsNs: 2n }), begin4({ tsNs: 3n })]), visit)).toThrow('stop');
    expect(seen).toEqual([1n, 2n]);
  });
});
