/**
 * Who, how much and how long, at the FlowEvent level: real kernel programs
 * (native addon) on a throwaway cgroup, real processes (test/fixtures/
 * tcp-bytes.py) moving known byte counts each way over loopback or between
 * test namespaces. Each event is matched to the connection by its ports.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TestCgroup } from '../helpers/cgroup';
import { TestNet, nftDropFirstSyn, nftDropFirstSynAck } from '../helpers/netns';
import { loadBinding } from '../../src/kernel/probe';
import type { FlowEvent } from '../../src/kernel/decode';
import { ProcessCache, fsProcReader, pidNamespaceIsInitial } from '../../src/enrich/process';
import { FlowEventRecorder } from '../helpers/event-recorder';

const FIXTURE = join(__dirname, '..', 'fixtures', 'tcp-bytes.py');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));

class Recorder extends FlowEventRecorder {
  /** The begin and end of the flow whose initiator port is `srcPort`, once both (or, with `endToo` false, the begin) arrived. */
  async flow(srcPort: number, direction: 'incoming' | 'outgoing', endToo = true, timeoutMs = 5000): Promise<{ begin: FlowEvent; end: FlowEvent }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mine = this.events.filter((e) => e.srcPort === srcPort && e.direction === direction);
      const begin = mine.find((e) => e.type === 'begin');
      const end = mine.find((e) => e.type === 'end');
      if (begin && (end || !endToo)) {
        await sleep(200); // anything more would show
        expect(this.events.filter((e) => e.srcPort === srcPort && e.direction === direction)).toHaveLength(endToo ? 2 : 1);
        return { begin, end: end! };
      }
      if (Date.now() > deadline) throw new Error(`no ${direction} flow from port ${srcPort}; events: ${json(this.events)}`);
      await sleep(20);
    }
  }
  /** True when the kernel lets the programs read the process name (CAP_PERFMON). */
  commCaptured(): boolean {
    return !(this.probe.leftOut?.() ?? []).some((p) => p.missing.includes('bpf_get_current_comm'));
  }
}

interface Line {
  pid?: number;
  port?: number;
  localPort?: number;
  peerPort?: number;
  cookie?: number;
  exe?: string;
  argv?: string[];
  done?: boolean;
}

/** One tcp-bytes.py process and the JSON lines it prints, in order. */
class Fixture {
  private readonly lines: AsyncIterator<string>;
  constructor(readonly child: ChildProcess) {
    this.lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.on('exit', (code) => {
      if (code !== 0 && code !== null) process.stderr.write(`tcp-bytes.py exited ${code}: ${err}\n`);
    });
  }
  async next(): Promise<Line> {
    const r = await this.lines.next();
    if (r.done) throw new Error('tcp-bytes.py ended before its next line');
    return JSON.parse(r.value) as Line;
  }
}

const children: ChildProcess[] = [];
/** tcp-bytes.py with `args`, inside `cg` if given, behind an argv `prefix` (ip netns exec …). */
function run(args: (string | number)[], cg?: TestCgroup, prefix: string[] = []): Fixture {
  const argv = [...prefix, 'python3', FIXTURE, ...args.map(String)];
  const opts = { stdio: ['pipe', 'pipe', 'pipe'] as ['pipe', 'pipe', 'pipe'] };
  const child = cg ? cg.spawn(argv[0], argv.slice(1), opts) : spawn(argv[0], argv.slice(1), opts);
  children.push(child);
  return new Fixture(child);
}

describe('process, TCP statistics, handshake and flow id on flow events (real kernel programs, native addon, real processes)', () => {
  let cg: TestCgroup;
  let rec: Recorder;

  beforeEach(() => {
    cg = new TestCgroup('proc');
    rec = new Recorder(cg.path);
  });
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    expect(rec.decodeErrors).toBe(0);
    await rec.probe.close();
    await cg.destroy();
  });

  describe.each([
    ['IPv4', '127.0.0.1'],
    ['IPv6', '::1'],
  ])('%s loopback', (_name, host) => {
    it('outgoing, the client closes first: exact bytes each way, its process, its cookie and flow id on both events, the handshake', async () => {
      const server = run(['server', host, 0, 3000, 1000, 'wait']); // outside the cgroup
      const { port } = await server.next();
      const client = run(['client', host, port!, 1000, 3000, 'first'], cg);
      const c = await client.next();
      expect((await client.next()).done).toBe(true);
      const { begin, end } = await rec.flow(c.localPort!, 'outgoing');
      expect([end.closeReason, end.closedBy]).toEqual(['fin', 'source']);
      expect(end.tcp).toMatchObject({ bytesSent: 1000, bytesReceived: 3000, retransSegs: 0 });
      // SYN, the handshake's ACK, the data, the FIN; the SYN-ACK and the data in
      expect(end.tcp!.segsOut).toBeGreaterThanOrEqual(4);
      expect(end.tcp!.segsIn).toBeGreaterThanOrEqual(2);
      expect(end.tcp!.srttUs).toBeGreaterThan(0);
      expect(end.tcp!.minRttUs).toBeGreaterThan(0);
      expect(end.tcp!.minRttUs).toBeLessThanOrEqual(end.tcp!.srttUs + 1);
      for (const e of [begin, end]) {
        expect(e.cookie).toBe(BigInt(c.cookie!));
        expect(e.process).toMatchObject({ pid: c.pid, uid: process.getuid!(), cgroupId: cg.id });
        expect(e.process!.comm).toBe(rec.commCaptured() ? 'python3' : undefined);
        expect(e.process!.capturedAtNs).toBeLessThanOrEqual(begin.tsNs);
        expect(e.handshake?.synCount).toBe(1);
        expect(e.handshake!.durationNs).toBeGreaterThan(0n);
        // the handshake ends at the begin, which is a loopback round trip after the SYN
        expect(e.handshake!.durationNs).toBeLessThan(100_000_000n);
      }
      expect(begin.flowId).toBe(end.flowId);
      expect(begin.flowId).not.toBe(0n);
      expect(begin.tcp).toBeUndefined();
    });

    it('outgoing, the server closes first (the end is its FIN arriving): exact bytes each way', async () => {
      const server = run(['server', host, 0, 7777, 2222, 'first']);
      const { port } = await server.next();
      const client = run(['client', host, port!, 2222, 7777, 'wait'], cg);
      const c = await client.next();
      const { end } = await rec.flow(c.localPort!, 'outgoing');
      expect([end.closeReason, end.closedBy]).toEqual(['fin', 'destination']);
      expect(end.tcp).toMatchObject({ bytesSent: 2222, bytesReceived: 7777 });
    });

    it('outgoing, 4 MiB written and the socket closed at once (its FIN leaves behind data not yet acknowledged): every byte counted', async () => {
      const MIB4 = 4 << 20;
      const server = run(['server', host, 0, 0, MIB4, 'wait']);
      const { port } = await server.next();
      const client = run(['client', host, port!, MIB4, 0, 'first'], cg);
      const c = await client.next();
      const { end } = await rec.flow(c.localPort!, 'outgoing');
      expect(end.tcp).toMatchObject({ bytesSent: MIB4, bytesReceived: 0 });
    });

    it('outgoing, the client aborts (RST) after a known exchange: exact bytes, close reason rst', async () => {
      const server = run(['server', host, 0, 7000, 5000, 'wait']);
      const { port } = await server.next();
      const client = run(['client', host, port!, 5000, 7000, 'reset'], cg);
      const c = await client.next();
      client.child.stdin!.write('go\n');
      const { end } = await rec.flow(c.localPort!, 'outgoing');
      expect([end.closeReason, end.closedBy]).toEqual(['rst', 'source']);
      expect(end.tcp).toMatchObject({ bytesSent: 5000, bytesReceived: 7000 });
    });

    it("incoming: the listener's process, the accepted socket's cookie and the handshake on begin and end (the begin waits for the ACK)", async () => {
      const server = run(['server', host, 0, 3000, 1000, 'wait'], cg);
      const { port, pid } = await server.next();
      const client = run(['client', host, port!, 1000, 3000, 'first']); // outside
      const c = await client.next();
      const accepted = await server.next();
      const { begin, end } = await rec.flow(c.localPort!, 'incoming');
      expect([end.closeReason, end.closedBy]).toEqual(['fin', 'source']);
      expect(end.tcp).toMatchObject({ bytesSent: 3000, bytesReceived: 1000, retransSegs: 0 });
      expect(begin.cookie).toBe(BigInt(accepted.cookie!));
      expect(end.cookie).toBe(BigInt(accepted.cookie!));
      expect(begin.flowId).toBe(end.flowId);
      for (const e of [begin, end]) expect(e.process).toMatchObject({ pid, uid: process.getuid!(), cgroupId: cg.id });
      expect(begin.handshake).toEqual(end.handshake);
      // the begin keeps the SYN-ACK's time, and the handshake is the time to the ACK
      expect(begin.tsNs + end.handshake!.durationNs).toBeLessThanOrEqual(end.tsNs);
      expect(end.handshake?.synCount).toBe(1);
      expect(end.handshake!.durationNs).toBeGreaterThan(0n);
      expect(end.handshake!.durationNs).toBeLessThan(100_000_000n);
    });
  });

  it('a process that exec()s after connecting keeps its pid; the name is the one captured at connect', async () => {
    const server = run(['server', '127.0.0.1', 0, 0, 0, 'wait']);
    const { port } = await server.next();
    const client = run(['client', '127.0.0.1', port!, 0, 0, 'first', 'exec'], cg);
    const c = await client.next();
    await rec.flow(c.localPort!, 'outgoing', false);
    for (let i = 0; readFileSync(`/proc/${c.pid}/comm`, 'utf8').trim() !== 'sleep'; i++) {
      if (i > 100) throw new Error('the client did not exec sleep');
      await sleep(20);
    }
    client.child.kill('SIGTERM'); // sleep dies; its socket closes with a FIN
    const { begin, end } = await rec.flow(c.localPort!, 'outgoing');
    for (const e of [begin, end]) {
      expect(e.process?.pid).toBe(c.pid);
      expect(e.process!.comm).toBe(rec.commCaptured() ? 'python3' : undefined);
    }
    expect(end.tcp).toMatchObject({ bytesSent: 0, bytesReceived: 0 });
  });

  it('a listener bound before flowtap attached: its flows have no process, and still their statistics', async () => {
    await rec.probe.close();
    const server = run(['server', '127.0.0.1', 0, 10, 20, 'wait'], cg);
    const { port } = await server.next();
    rec = new Recorder(cg.path); // attach now: the bind was before
    const client = run(['client', '127.0.0.1', port!, 20, 10, 'first']);
    const c = await client.next();
    const { begin, end } = await rec.flow(c.localPort!, 'incoming');
    expect(begin.process).toBeUndefined();
    expect(end.process).toBeUndefined();
    expect(end.tcp).toMatchObject({ bytesSent: 10, bytesReceived: 20 });
  });

  it('a process in its own pid namespace is reported with its pid in the initial namespace', async () => {
    const server = run(['server', '127.0.0.1', 0, 0, 0, 'wait']);
    const { port } = await server.next();
    const client = run(['client', '127.0.0.1', port!, 0, 0, 'reset'], cg, ['unshare', '--pid', '--fork']);
    const c = await client.next();
    expect(c.pid).toBe(1); // as the process sees itself
    const { begin } = await rec.flow(c.localPort!, 'outgoing', false);
    const hostPid = begin.process!.pid;
    expect(hostPid).not.toBe(1);
    // the same process, seen from the initial namespace while it waits: NSpid lists its host pid, then 1
    const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${hostPid}/status`, 'utf8'));
    expect(nspid?.[1].split(/\s+/).map(Number)).toEqual([hostPid, 1]);
    client.child.stdin!.write('go\n');
    const { end } = await rec.flow(c.localPort!, 'outgoing');
    expect(end.process?.pid).toBe(hostPid);
  });
});

describe('handshake retransmissions (real kernel programs, test namespaces)', () => {
  let net: TestNet;
  let cg: TestCgroup;
  let rec: Recorder;
  beforeEach(() => {
    net = new TestNet();
    cg = new TestCgroup('hs');
    rec = new Recorder(cg.path);
  });
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    await rec.probe.close();
    await cg.destroy();
    net.destroy();
  });

  it('outgoing: the first SYN is lost: two SYNs, the handshake takes the retransmission timeout', async () => {
    const server = run(['server', '0.0.0.0', 8080, 0, 0, 'wait'], undefined, net.b.prefix);
    await server.next();
    net.nft(net.b, nftDropFirstSyn('ftfirstsyn', 8080));
    const client = run(['client', net.b.ipv4, 8080, 100, 0, 'first'], cg, net.a.prefix);
    const c = await client.next();
    const { begin, end } = await rec.flow(c.localPort!, 'outgoing', true, 10_000);
    for (const e of [begin, end]) {
      expect(e.handshake?.synCount).toBe(2);
      expect(e.handshake!.durationNs).toBeGreaterThanOrEqual(900_000_000n); // the initial RTO is 1 s
    }
    // the lost SYN is a retransmission TCP counts
    expect(end.tcp).toMatchObject({ bytesSent: 100, retransSegs: 1 });
  });

  it('incoming: the first SYN-ACK is lost: every SYN-ACK sent counted, the handshake takes the retransmission timeout', async () => {
    const server = run(['server', '0.0.0.0', 8080, 0, 0, 'wait'], cg, net.b.prefix);
    await server.next();
    net.nft(net.a, nftDropFirstSynAck('ftfirstsynack', 'input', 8080));
    // every SYN-ACK reaching host a, counted before the drop: the server's
    // timer resends it, and so does the client's retransmitted SYN
    net.nft(
      net.a,
      'table inet ftsynacks {\n chain c {\n  type filter hook input priority -20;\n  tcp flags & (syn | ack) == (syn | ack) tcp sport 8080 counter\n }\n}\n',
    );
    const client = run(['client', net.b.ipv4, 8080, 100, 0, 'first'], undefined, net.a.prefix);
    const c = await client.next();
    const { begin, end } = await rec.flow(c.localPort!, 'incoming', true, 10_000);
    expect(begin.handshake).toEqual(end.handshake);
    const counted = (table: string) =>
      Number(/counter packets (\d+) /.exec(execFileSync('ip', ['netns', 'exec', net.a.ns, 'nft', 'list', 'table', 'inet', table], { encoding: 'utf8' }))![1]);
    expect(counted('ftfirstsynack')).toBe(1);
    expect(counted('ftsynacks')).toBeGreaterThanOrEqual(2);
    expect(end.handshake?.synCount).toBe(counted('ftsynacks'));
    expect(end.handshake!.durationNs).toBeGreaterThanOrEqual(900_000_000n);
    expect(end.tcp).toMatchObject({ bytesReceived: 100 });
  });
});

describe('ProcessCache on the real /proc, for the pids real flow events name', () => {
  let cg: TestCgroup;
  let rec: Recorder;
  const binding = loadBinding(join(__dirname, '..', '..'));
  const cache = () =>
    new ProcessCache({ proc: fsProcReader(fs), maxEntries: 16, maxAgeNs: 60_000_000_000n, nowBootNs: () => binding.clockAnchor().boottimeNs });

  beforeEach(() => {
    cg = new TestCgroup('proccache');
    rec = new Recorder(cg.path);
  });
  afterEach(async () => {
    for (const c of children.splice(0)) c.kill('SIGKILL');
    await rec.probe.close();
    await cg.destroy();
  });

  it("gives the connecting process's executable, arguments, uid and parent; a capture before its start is a reused pid", async () => {
    const server = run(['server', '127.0.0.1', 0, 0, 0, 'wait']);
    const { port } = await server.next();
    const client = run(['client', '127.0.0.1', port!, 0, 0, 'reset'], cg);
    const c = await client.next();
    const { begin } = await rec.flow(c.localPort!, 'outgoing', false);
    const p = begin.process!;
    const pc = cache();
    expect(c.argv).toEqual(expect.arrayContaining([FIXTURE, 'client', String(port), 'reset']));
    expect(pc.lookup(p.pid, p.capturedAtNs, p.comm)).toEqual({
      pid: c.pid,
      startNs: expect.any(BigInt),
      name: 'python3',
      executablePath: c.exe, // as the process itself sees them
      commandArgs: c.argv,
      uid: process.getuid!(),
      parentPid: process.pid, // cg.spawn's shell exec()s the fixture
    });
    // /proc's start time and the kernel's capture time are on one clock: the process started before it connected
    const start = pc.lookup(p.pid, p.capturedAtNs)!.startNs;
    expect(start).toBeLessThanOrEqual(p.capturedAtNs);
    expect(p.capturedAtNs - start).toBeLessThan(30_000_000_000n);
    expect(pc.lookup(p.pid, start - 10_000_000n)).toBeUndefined();
    expect(pc.stats).toMatchObject({ hits: 1, misses: 1, reused: 1, gone: 0 });
    client.child.stdin!.write('go\n');
    await rec.flow(c.localPort!, 'outgoing');
    if (client.child.exitCode === null) await new Promise((r) => client.child.once('exit', r));
    expect(cache().lookup(p.pid, p.capturedAtNs)).toBeUndefined(); // gone
  });

  it("tells whether this /proc's pids are the kernel's: here yes, in a pid namespace of its own (a pod without hostPID) no", () => {
    expect(pidNamespaceIsInitial(fs.readlinkSync('/proc/self/ns/pid'))).toBe(true);
    const inner = execFileSync('unshare', ['--pid', '--fork', '--mount-proc', 'readlink', '/proc/self/ns/pid'], { encoding: 'utf8' }).trim();
    expect(inner).toMatch(/^pid:\[\d+\]$/);
    expect(pidNamespaceIsInitial(inner)).toBe(false);
  });

  it('after an exec, the captured name is not the running one: name, path and arguments are left out (where the kernel captured the name)', async () => {
    const server = run(['server', '127.0.0.1', 0, 0, 0, 'wait']);
    const { port } = await server.next();
    const client = run(['client', '127.0.0.1', port!, 0, 0, 'first', 'exec'], cg);
    const c = await client.next();
    const { begin } = await rec.flow(c.localPort!, 'outgoing', false);
    for (let i = 0; readFileSync(`/proc/${c.pid}/comm`, 'utf8').trim() !== 'sleep'; i++) {
      if (i > 100) throw new Error('the client did not exec sleep');
      await sleep(20);
    }
    const p = begin.process!;
    const d = cache().lookup(p.pid, p.capturedAtNs, p.comm)!;
    expect(d.parentPid).toBe(process.pid);
    if (rec.commCaptured()) {
      expect(p.comm).toBe('python3');
      // no thread of the process is called python3 any more: what /proc says is the new program's
      expect([d.name, d.executablePath, d.commandArgs]).toEqual([undefined, undefined, undefined]);
    } else {
      // no name from the kernel to tell: /proc's, the new program's
      expect(d.name).toBe('sleep');
      expect(d.commandArgs).toEqual(['sleep', '60']);
    }
  });
});
