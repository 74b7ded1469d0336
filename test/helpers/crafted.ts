/**
 * Hand-built packets against the real kernel programs: the sockets they are
 * sent to (craft.py sink), sending them from raw sockets in a test namespace,
 * and a probe whose counters, program runs and records are read around each
 * action (ProbeObserver.observe). Used by hostile.kernel.test.ts and
 * synack.kernel.test.ts.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { spawn } from './processes';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { collect, type TestCgroup } from './cgroup';
import { loadBinding, type NativeProbe, type NativeProbeOptions } from '../../src/kernel/probe';
import { decodeBatch, type DecodedEvent } from '../../src/kernel/decode';

export const CRAFT = join(__dirname, '..', 'fixtures', 'craft.py');

/** A packet spec for craft.py send (see its header). */
export type Spec = Record<string, unknown>;

export interface SendResult {
  sent: number;
  /** What sendto refused, by errno name. */
  refused: Record<string, number>;
}

/** Sends specs from raw sockets in namespace ns, from this process's cgroup (not a watched one). */
export function sendFrom(ns: string, specs: Spec[]): SendResult {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'python3', CRAFT, 'send'], { input: specs.map((s) => JSON.stringify(s)).join('\n'), encoding: 'utf8' });
  return JSON.parse(out) as SendResult;
}

/** Sends specs from raw sockets in namespace ns, from a process inside cg. */
export async function sendFromCgroup(cg: TestCgroup, ns: string, specs: Spec[]): Promise<SendResult> {
  const child = cg.spawn('ip', ['netns', 'exec', ns, 'python3', CRAFT, 'send'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end(specs.map((s) => JSON.stringify(s)).join('\n'));
  return JSON.parse(await collect(child)) as SendResult;
}

/** A TCP client socket for Sink.connect: from src:sport to dst:dport. */
export interface ClientSpec {
  family: 4 | 6;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

/** craft.py sink's answer to a command. */
interface SinkReply {
  connected?: string[];
  closed?: number;
  asked?: number;
}

/**
 * The sockets crafted packets are sent to (craft.py sink) in namespace ns,
 * inside cg when given: a dual-stack TCP listener and UDP socket, optionally
 * raw sockets, and TCP client sockets opened on request (connect).
 */
export class Sink {
  readonly child: ChildProcess;
  tcp = 0;
  udp = 0;
  /** Payloads (hex) of the datagrams the UDP socket received. */
  readonly datagrams: string[] = [];
  private readonly ready: Promise<void>;
  private readonly replies: { resolve: (reply: SinkReply) => void; reject: (e: Error) => void }[] = [];
  private queue: Promise<unknown> = Promise.resolve();

  constructor(ns: string, cg?: TestCgroup, opts: { raw?: [4 | 6, number][] } = {}) {
    const argv = ['netns', 'exec', ns, 'python3', CRAFT, 'sink', JSON.stringify(opts)];
    const stdio = ['pipe', 'pipe', 'pipe'] as const;
    this.child = cg ? cg.spawn('ip', argv, { stdio: [...stdio] }) : spawn('ip', argv, { stdio: [...stdio] });
    const lines = createInterface({ input: this.child.stdout! });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => {
        const e = new Error(`sink exited ${code}`);
        reject(e);
        for (const r of this.replies.splice(0)) r.reject(e);
      });
      lines.on('line', (l) => {
        const m = JSON.parse(l) as { tcp?: number; udp?: number | string } & SinkReply;
        if (m.connected !== undefined || m.closed !== undefined || m.asked !== undefined) this.replies.shift()!.resolve(m);
        else if (typeof m.udp === 'string') this.datagrams.push(m.udp);
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

  /**
   * Opens TCP client sockets (kept until stop), waits up to waitMillis for
   * their handshakes, and returns their TCP states ('SYN_SENT', 'ESTABLISHED', ...).
   */
  async connect(clients: ClientSpec[], waitMillis = 0): Promise<string[]> {
    return (await this.command({ connect: clients, wait_ms: waitMillis })).connected!;
  }

  /** Closes the client sockets bound to these local ports with a RST (SO_LINGER 0); resolves with how many there were. */
  async close(ports: number[]): Promise<number> {
    return (await this.command({ close: ports })).closed!;
  }

  /** Sends a datagram (a DNS query) from the UDP socket to dst:dport; resolves once it is sent. */
  async ask(dst: string, dport: number, payload: Buffer): Promise<void> {
    await this.command({ ask: { dst, dport, payload: payload.toString('hex') } });
  }

  /** Resolves once the UDP socket has received at least n datagrams (or rejects after timeoutMillis). */
  async waitForDatagrams(n: number, timeoutMillis = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMillis;
    while (this.datagrams.length < n) {
      if (Date.now() > deadline) throw new Error(`sink: ${this.datagrams.length} datagrams, waited for ${n}`);
      await sleep(10);
    }
  }

  /** Sends one command line and resolves with its reply line; one command at a time. */
  private command(cmd: object): Promise<SinkReply> {
    const run = () =>
      new Promise<SinkReply>((resolve, reject) => {
        if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error('sink exited');
        this.replies.push({ resolve, reject });
        this.child.stdin!.write(JSON.stringify(cmd) + '\n');
      });
    const p = this.queue.then(run, run);
    this.queue = p;
    return p;
  }

  stop(): void {
    this.child.stdin?.end();
    this.child.kill();
  }
}

/** What an action made the programs do. */
export interface Observed {
  /** Kernel counters that changed, by how much. */
  counters: Record<string, number>;
  /** Program runs: packets that reached each hook (needs enableBpfStats). */
  runs: { ingress: number; egress: number };
  events: DecodedEvent[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The real programs attached to cgroupPath through the addon, with every record decoded and kept. */
export class ProbeObserver {
  readonly probe: NativeProbe;
  readonly events: DecodedEvent[] = [];
  readonly counterNames: string[];
  decodeErrors = 0;

  constructor(cgroupPath: string, options: Omit<NativeProbeOptions, 'cgroupPath' | 'onBatch'> = {}) {
    const binding = loadBinding(join(__dirname, '..', '..'));
    this.counterNames = binding.counterNames;
    this.probe = new binding.Probe({
      ...options,
      cgroupPath,
      onBatch: (buf: Buffer) => {
        const r = decodeBatch(buf);
        this.decodeErrors += r.errors;
        this.events.push(...r.events);
      },
    });
  }

  runs(): { ingress: number; egress: number } {
    const s = this.probe.programStats() as Record<string, { runCount: number }>;
    return { ingress: s.ingress.runCount, egress: s.egress.runCount };
  }

  /** The kernel counters that differ between c0 and c, by how much. */
  delta(c0: Record<string, number>, c: Record<string, number> = this.probe.counters()): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of this.counterNames) if (c[k] !== c0[k]) out[k] = c[k] - c0[k];
    return out;
  }

  /** Runs action, then waits until the hooks are quiet and every record they counted has been read. */
  async observe(action: () => Promise<unknown>): Promise<Observed> {
    const c0 = this.probe.counters();
    const r0 = this.runs();
    const e0 = this.events.length;
    await action();
    let last = '';
    let stableSince = Date.now();
    const t0 = Date.now();
    for (;;) {
      const c = this.probe.counters();
      const r = this.runs();
      const now = JSON.stringify([c, r, this.events.length]);
      if (now !== last) {
        last = now;
        stableSince = Date.now();
      }
      const made = ['flow_begin', 'flow_end', 'dns'].reduce((n, k) => n + c[k] - c0[k], 0);
      if (this.events.length - e0 === made && Date.now() - stableSince >= 200) break;
      if (Date.now() - t0 > 10_000) throw new Error(`not quiet after 10 s: ${now}`);
      await sleep(25);
    }
    const r = this.runs();
    return { counters: this.delta(c0), runs: { ingress: r.ingress - r0.ingress, egress: r.egress - r0.egress }, events: this.events.slice(e0) };
  }

  close(): Promise<void> {
    return this.probe.close();
  }
}
