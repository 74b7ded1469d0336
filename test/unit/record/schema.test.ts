import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FlowEvent } from '../../../src/kernel/decode';
import { rewriteTables, tablesIn } from '../../../src/record/docs';
import { mapFlow } from '../../../src/record/record';
import { ATTRIBUTES, ATTRIBUTES_OF, EVENT_KINDS, EVENTS, SEED_ARGUMENTS, attributeOf } from '../../../src/record/schema';

const ROOT = join(__dirname, '..', '..', '..');

const begin: FlowEvent = {
  type: 'begin',
  tsNs: 5_000_000_000n,
  family: 6,
  direction: 'incoming',
  srcAddr: 'fd00::2',
  srcPort: 50000,
  dstAddr: 'fd00::1',
  dstPort: 8080,
  cgroupId: 7n,
  closeReason: undefined,
  closedBy: undefined,
  beginTsNs: undefined,
};
const end: FlowEvent = { ...begin, type: 'end', tsNs: 7_500_000_000n, beginTsNs: 5_000_000_000n, closeReason: 'rst', closedBy: 'source' };
const attempt: FlowEvent = {
  ...begin,
  type: 'attempt',
  direction: 'outgoing',
  attemptReason: 'timed_out',
  handshake: { durationNs: 3_000_000_000n, synCount: 2 },
};
const sample = { begin, end, attempt };
/** The same events with everything the kernel can give, and a context that knows everything. */
const known = {
  process: { pid: 4242, uid: 1000, comm: 'curl', capturedAtNs: 4_000_000_000n, cgroupId: 7n },
  handshake: { durationNs: 1_500_000n, synCount: 1 },
  flowId: 0xfeedn,
  cookie: 9n,
};
const full = {
  attempt: { ...attempt, ...known },
  begin: { ...begin, ...known },
  end: { ...end, ...known, tcp: { bytesSent: 78, bytesReceived: 4096, segsOut: 6, segsIn: 5, retransSegs: 0, srttUs: 120, minRttUs: 80 } },
};
const fullContext = {
  src: ['c.test'],
  dst: ['s.test'],
  srcResolvers: ['198.18.0.53'],
  dstResolvers: ['198.18.0.53'],
  process: { pid: 4242, startNs: 1n, name: 'curl', executablePath: '/usr/bin/curl', commandArgs: ['curl', 'http://s.test/'], uid: 1000, parentPid: 1 },
  cgroupPath: '/flowtap.test/app',
};

describe('the record schema', () => {
  it('has one entry per key, flowtap-own names under flowtap., registered ones by their names, never network.io.direction', () => {
    const keys = ATTRIBUTES.map((a) => a.key);
    expect(new Set(keys).size).toBe(keys.length);
    const registered =
      /^(source|destination|client|server)\.(address|port)$|^network\.(transport|type|(local|peer)\.(address|port))$|^container\.id$|^process\.(pid|executable\.(name|path)|command_args|user\.id|parent_pid)$/;
    for (const k of keys) expect(k.startsWith('flowtap.') || registered.test(k)).toBe(true);
    expect(keys).not.toContain('network.io.direction');
    expect(keys.filter((k) => k.startsWith('flowtap.'))).toEqual([
      'flowtap.flow.direction',
      'flowtap.flow.source.domains',
      'flowtap.flow.destination.domains',
      'flowtap.flow.duration',
      'flowtap.flow.close_reason',
      'flowtap.flow.closed_by',
      'flowtap.flow.id',
      'flowtap.flow.source.resolvers',
      'flowtap.flow.destination.resolvers',
      'flowtap.process.cgroup.path',
      'flowtap.flow.bytes_sent',
      'flowtap.flow.bytes_received',
      'flowtap.flow.segments_sent',
      'flowtap.flow.segments_received',
      'flowtap.flow.retransmitted_segments',
      'flowtap.flow.rtt.smoothed',
      'flowtap.flow.rtt.min',
      'flowtap.flow.handshake.duration',
      'flowtap.flow.handshake.syn_count',
      'flowtap.flow.attempt.reason',
      'flowtap.flow.attempt.syn_count',
      'flowtap.flow.attempt.duration',
    ]);
    expect(EVENT_KINDS.map((k) => EVENTS[k].name)).toEqual(['flowtap.flow.begin', 'flowtap.flow.end', 'flowtap.flow.attempt']);
  });

  it('every entry names known events and seed arguments, and a closed set holds what its source gives', () => {
    for (const a of ATTRIBUTES) {
      expect(a.events.length).toBeGreaterThan(0);
      for (const k of a.events) expect(EVENT_KINDS).toContain(k);
      for (const s of a.seed) expect(SEED_ARGUMENTS).toContain(s);
      expect(a.brief.length).toBeGreaterThan(0);
      for (const kind of a.events) {
        const v = a.source(sample[kind], { src: [], dst: [] });
        if (a.presence === 'always') expect(v).toBeDefined();
        if (a.values !== undefined && v !== undefined) expect(a.values).toContain(v);
      }
    }
    expect(attributeOf('flowtap.flow.duration')?.events).toEqual(['end']);
    expect(attributeOf('flowtap.flow.attempt.reason')?.events).toEqual(['attempt']);
    expect(attributeOf('destination.port')?.events).toContain('attempt');
    expect(attributeOf('tcp.flow.duration')).toBeUndefined();
  });

  it('writes the flow id as 16 hex digits, times in seconds, and the process from the kernel before /proc', () => {
    const r = mapFlow(full.end, fullContext, 1n).attributes;
    expect(r['flowtap.flow.id']).toBe('000000000000feed');
    expect(mapFlow({ ...full.end, flowId: 0xfedcba9876543210n }, fullContext, 1n).attributes['flowtap.flow.id']).toBe('fedcba9876543210');
    expect(r['flowtap.flow.rtt.smoothed']).toBe(0.00012);
    expect(r['flowtap.flow.rtt.min']).toBe(0.00008);
    expect(r['flowtap.flow.handshake.duration']).toBe(0.0015);
    expect(r['flowtap.flow.bytes_sent']).toBe(78);
    expect(r['flowtap.flow.bytes_received']).toBe(4096);
    expect(r['process.pid']).toBe(4242);
    expect(r['process.command_args']).toEqual(['curl', 'http://s.test/']);
    // The kernel's captured name wins over /proc's (an exec after connect changes /proc's).
    const execd = mapFlow(full.end, { ...fullContext, process: { ...fullContext.process, name: 'sleep' } }, 1n).attributes;
    expect(execd['process.executable.name']).toBe('curl');
    // Without the kernel's name, /proc's.
    const noComm = mapFlow({ ...full.end, process: { ...known.process, comm: undefined } }, fullContext, 1n).attributes;
    expect(noComm['process.executable.name']).toBe('curl');
    expect(
      mapFlow({ ...full.end, process: { ...known.process, comm: undefined } }, { src: [], dst: [] }, 1n).attributes['process.executable.name'],
    ).toBeUndefined();
    // An empty resolver list is left out, as an unknown one.
    expect(mapFlow(full.begin, { ...fullContext, srcResolvers: [], dstResolvers: [] }, 1n).attributes).not.toHaveProperty('flowtap.flow.destination.resolvers');
  });

  it('mapFlow writes exactly the schema keys of each event, in schema order, known ones only when known', () => {
    for (const kind of EVENT_KINDS) {
      const all = mapFlow(full[kind], fullContext, 1n);
      expect(Object.keys(all.attributes)).toEqual(ATTRIBUTES_OF[kind].map((a) => a.key));
      expect(all.eventName).toBe(EVENTS[kind].name);
      const bare = mapFlow({ ...sample[kind], beginTsNs: kind === 'end' ? 0n : undefined, handshake: undefined }, { src: [], dst: [] }, 1n);
      expect(Object.keys(bare.attributes)).toEqual(ATTRIBUTES_OF[kind].filter((a) => a.presence === 'always').map((a) => a.key));
    }
  });
});

describe('the docs tables', () => {
  it.each([
    ['README.md', ['attributes']],
    ['docs/record.md', ['events', 'attributes', 'seed']],
  ])('%s holds the schema tables as `make docs` renders them', (file, tables) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    expect(tablesIn(text)).toEqual(tables);
    // A table that disagrees with the schema is rewritten: run `make docs`.
    expect(rewriteTables(text)).toBe(text);
  });

  it('renders one attributes row per entry, and rejects a marker naming no table', () => {
    const out = rewriteTables('x\n<!-- schema:attributes:begin -->\nstale\n<!-- schema:attributes:end -->\ny');
    expect(out.split('\n').filter((l) => l.startsWith('| `'))).toHaveLength(ATTRIBUTES.length);
    expect(out).not.toContain('stale');
    expect(rewriteTables('no markers')).toBe('no markers');
    expect(() => rewriteTables('<!-- schema:nope:begin -->\n<!-- schema:nope:end -->')).toThrow('unknown schema table "nope"');
    const tampered = readFileSync(join(ROOT, 'README.md'), 'utf8').replace('| `source.port` | int |', '| `source.port` | string |');
    expect(rewriteTables(tampered)).not.toBe(tampered);
  });
});
