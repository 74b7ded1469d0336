/**
 * The LRU flow table under pressure (real kernel programs + native addon, real
 * sockets on loopback): a table far smaller than the number of open flows
 * must evict, and flow_table_evictions must say how many — checked against
 * what really happens next: an evicted flow gives no end record, a flow still
 * in the table gives exactly one.
 */
import { execFileSync } from 'node:child_process';
import { createServer, Server, Socket, AddressInfo } from 'node:net';
import { join } from 'node:path';
import { TestCgroup, collect } from '../helpers/cgroup';
import { loadBinding, NativeProbe } from '../../src/kernel/probe';
import { decodeBatch, FlowEvent } from '../../src/kernel/decode';

const BURST = join(__dirname, '..', 'fixtures', 'tcp-burst.js');
const RACE = join(__dirname, '..', 'fixtures', 'bpf-race.py');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting: ${what()}`);
    await sleep(20);
  }
}

describe('LRU flow table evictions (real kernel programs, native addon, real sockets)', () => {
  let cg: TestCgroup;
  let server: Server;
  let probe: NativeProbe | undefined;
  const sockets = new Set<Socket>();

  beforeEach(async () => {
    cg = new TestCgroup('lru');
    server = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.once('data', (d) => s.end(d));
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, r));
  });

  afterEach(async () => {
    await probe?.close();
    probe = undefined;
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    await cg.destroy();
  });

  it('counts every flow the table evicted: evicted flows give no end, the others exactly one', async () => {
    const TABLE = 64;
    const FLOWS = 400;
    const events: FlowEvent[] = [];
    const binding = loadBinding(join(__dirname, '..', '..'));
    probe = new binding.Probe({
      cgroupPath: cg.path,
      flowTableEntries: TABLE,
      onBatch: (buf: Buffer) => {
        for (const e of decodeBatch(buf).events) if (e.type !== 'dns') events.push(e);
      },
    });
    const p = probe;
    const port = (server.address() as AddressInfo).port;

    // FLOWS connections, all open at once, held until we say so
    const client = cg.spawn(process.execPath, [BURST, JSON.stringify({ host: '127.0.0.1', port, count: FLOWS, hold: true, timeoutMs: 20_000 })], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const done = collect(client, 60_000);
    await new Promise<void>((resolve) => client.stdout!.once('data', () => resolve())); // {"connected":FLOWS}
    const begins = () => events.filter((e) => e.type === 'begin').length;
    await until(
      () => begins() >= FLOWS,
      () => `${begins()} begins`,
    );

    // while they are all open: FLOWS inserts, no delete, at most TABLE entries
    const open = p.counters();
    const entries = p.flowTableSize();
    expect(open.flow_begin).toBe(FLOWS);
    expect(open.flow_table_insert).toBe(FLOWS);
    expect(open.flow_table_delete).toBe(0);
    expect(open.flow_table_full).toBe(0);
    expect(entries).toBeLessThanOrEqual(TABLE);
    expect(entries).toBeGreaterThan(0);
    expect(open.flow_table_evictions).toBe(FLOWS - entries);

    // now close them all (the server closes first): only the flows still in the table end
    client.stdin!.write('go\n');
    const summary = JSON.parse((await done).trim().split('\n').pop()!) as { ok: number };
    expect(summary.ok).toBe(FLOWS);
    const ends = () => events.filter((e) => e.type === 'end').length;
    await until(
      () => ends() >= entries,
      () => `${ends()} ends, ${entries} expected`,
    );
    await sleep(300);

    const after = p.counters();
    expect(ends()).toBe(entries);
    expect(after.flow_end).toBe(entries);
    expect(after.flow_table_delete).toBe(entries);
    expect(p.flowTableSize()).toBe(0);
    // the one number an operator sees: every flow whose end went unreported
    expect(after.flow_table_evictions).toBe(FLOWS - ends());
    // every end belongs to a begin, once
    const endKeys = events.filter((e) => e.type === 'end').map((e) => e.srcPort);
    expect(new Set(endKeys).size).toBe(endKeys.length);

    // the value is kept after close
    await p.close();
    expect(p.counters().flow_table_evictions).toBe(FLOWS - entries);
  });

  it('a table with room evicts nothing', async () => {
    const binding = loadBinding(join(__dirname, '..', '..'));
    let n = 0;
    probe = new binding.Probe({ cgroupPath: cg.path, flowTableEntries: 1024, onBatch: (buf: Buffer) => (n += decodeBatch(buf).events.length) });
    const port = (server.address() as AddressInfo).port;
    await collect(cg.spawn(process.execPath, [BURST, JSON.stringify({ host: '127.0.0.1', port, count: 50, concurrency: 50 })]));
    await until(
      () => n >= 100,
      () => `${n} events`,
    );
    const c = probe.counters();
    expect(c.flow_table_insert).toBe(50);
    expect(c.flow_table_delete).toBe(50);
    expect(c.flow_table_evictions).toBe(0);
  });
});

/**
 * The insert race: two CPUs handle the same SYN-ACK at once, both miss the
 * lookup, one inserts (into `pending`, where an incoming flow waits for its
 * ACK) and the other's BPF_NOEXIST insert fails with EEXIST: that one is a
 * duplicate, not a second flow. Two threads run the egress
 * program on one crafted SYN-ACK with BPF_PROG_TEST_RUN, each deleting its
 * flow before each run (bpf-race.py), so the window opens again and again.
 */
describe('the flow table insert race (BPF_PROG_TEST_RUN of the real egress program from two threads)', () => {
  it('two CPUs that both miss the lookup give one pending entry: the second insert is counted as a race', async () => {
    const cg = new TestCgroup('race');
    const binding = loadBinding(join(__dirname, '..', '..'));
    const probe = new binding.Probe({ cgroupPath: cg.path, onBatch: () => undefined });
    try {
      const bpftool = (...args: string[]) => JSON.parse(execFileSync('bpftool', [...args, '-j'], { encoding: 'utf8' }));
      const egress = (bpftool('cgroup', 'show', cg.path) as { id: number; name: string }[]).find((p) => p.name === 'flowtap_egress')!;
      const mapIds = (bpftool('prog', 'show', 'id', String(egress.id)) as { map_ids: number[] }).map_ids;
      // an incoming flow waits in `pending` for its handshake's ACK: the SYN-ACK's insert goes there
      const flowsMap = mapIds.find((id) => (bpftool('map', 'show', 'id', String(id)) as { name: string }).name === 'pending')!;
      // Ethernet, IPv4 198.18.0.2:8080 -> 198.18.0.1:40000, TCP SYN-ACK: the initiator is the destination
      const ip = Buffer.from('450000280000400040060000c6120002c6120001', 'hex');
      const tcp = Buffer.from('1f909c40000003e8000007d15012ffff00000000', 'hex');
      const packet = Buffer.concat([Buffer.from('0000000000020000000000010800', 'hex'), ip, tcp]);
      // struct flowtap_flow_key: initiator, responder (16 bytes each), ports (host order), family 4, incoming
      const key = Buffer.alloc(40);
      Buffer.from([198, 18, 0, 1]).copy(key, 0);
      Buffer.from([198, 18, 0, 2]).copy(key, 16);
      key.writeUInt16LE(40000, 32);
      key.writeUInt16LE(8080, 34);
      key[36] = 4;
      key[37] = 1;
      const before = probe.counters();
      // a lost race takes two CPUs in a window of a few hundred ns: a few a second here; run until one is
      let runs = 0;
      let deleted = 0;
      for (let round = 0; round < 10 && probe.counters().flow_table_race === before.flow_table_race; round++) {
        const out = execFileSync('python3', [RACE, String(egress.id), String(flowsMap), packet.toString('hex'), key.toString('hex'), '2'], {
          encoding: 'utf8',
        });
        const r = JSON.parse(out) as { runs: number; deleted: number };
        runs += r.runs;
        deleted += r.deleted;
      }
      const c = probe.counters();
      const d = (name: string) => c[name] - before[name];
      const entries = (bpftool('map', 'dump', 'id', String(flowsMap)) as unknown[]).length;
      // every run is an insert, a lookup hit, or a lost race
      expect(d('synack_pending') + d('synack_duplicate')).toBe(runs);
      // the race was run, and lost
      expect(d('flow_table_race')).toBeGreaterThan(0);
      // one insert per entry that existed: each deleted once, or still there (with BPF_ANY a racing
      // second insert would overwrite the first and count an insert no delete ever matches)
      expect(d('synack_pending')).toBe(deleted + entries);
      // no ACK follows: no begin, nothing in the flow table
      expect(d('flow_begin')).toBe(0);
      expect(d('flow_table_insert')).toBe(0);
      expect(d('flow_table_full')).toBe(0);
      console.log(`insert race: ${runs} runs, ${d('synack_pending')} inserts, ${deleted} deleted, ${d('flow_table_race')} races lost`);
    } finally {
      await probe.close();
      await cg.destroy();
    }
  }, 60_000);
});
