/**
 * Part 1: kernel cost per packet.
 *
 * flowtap's cgroup_skb programs and an EMPTY cgroup_skb program (bench/
 * empty.bpf.c, returns 1) are attached to the same throwaway cgroup at the
 * same time, so every packet of the workload runs through both. With
 * kernel.bpf_stats_enabled=1 the kernel adds each program's run time
 * (run_time_ns) and runs (run_cnt); the figure is
 *   (flowtap run_time_ns / run_cnt) / (empty run_time_ns / run_cnt)
 * over the same packets in the same seconds. The programs of one cgroup run
 * in attach order, and whichever runs first is measurably slower, so a third,
 * "lead" empty program is always attached first to absorb that; flowtap and
 * the measured empty program follow in an order that alternates between
 * repetitions (even: empty then flowtap; odd: flowtap then empty).
 *
 * Workloads (the client in the cgroup, the server outside it, 127.0.0.1):
 *   bulk  — iperf3, one TCP stream: data on egress, ACKs on ingress; every
 *           packet takes flowtap's fast path.
 *   churn — loadgen tcp-client: connect, wait for the server's FIN, close, as
 *           fast as it can; 7 packets a connection, 4 of them (SYN, SYN-ACK
 *           and the two FINs) take the slow path, 2 of those emit an event.
 *   dns   — loadgen dns-client: UDP queries to 127.0.0.1:53 and their answers;
 *           every query (egress) and every answer (ingress) is copied to the
 *           ring buffer: user space takes an answer only for a query it saw.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import type { NativeBinding, NativeProbe } from '../src/kernel/probe.ts';
import { freePort } from '../test/helpers/ports.ts';
import { BUILD, Cgroup, ROOT, log, onCleanup, parseClient, run, runToEnd, setSysctl, start, summarize, type Summary } from './lib.mts';

export type Workload = 'bulk' | 'churn' | 'dns';
export const WORKLOADS: Workload[] = ['bulk', 'churn', 'dns'];

interface RunStats {
  runTimeNs: number;
  runCount: number;
}
interface HookPair {
  ingress: RunStats;
  egress: RunStats;
}

export interface KernelCostRep {
  workload: Workload;
  rep: number;
  order: 'empty-first' | 'flowtap-first';
  flowtap: HookPair;
  empty: HookPair;
  /** The lead empty program (always first in line): shows what the first position costs. */
  lead: HookPair;
  /** IRQ-work interrupts (all CPUs, /proc/interrupts IWI) during the workload: ring-buffer wake-ups. */
  irqWork: number;
  /** What the workload did: iperf3 bits/s, or loadgen done/errors. */
  load: Record<string, number | string>;
  /** flowtap's kernel counters for the repetition (flow_begin, dns, ringbuf_full_*, ...). */
  counters: Record<string, number>;
  /** Each socket program's run time and runs during the repetition. */
  socketPrograms: Record<string, RunStats>;
}

export interface KernelCostSummary {
  workload: Workload;
  /** ns per run, both hooks together. */
  flowtapNs: Summary;
  emptyNs: Summary;
  ratio: Summary;
  ratioIngress: Summary;
  ratioEgress: Summary;
  /** Runs per repetition (flowtap's, both hooks). */
  runs: Summary;
  /** Largest |flowtap run_cnt − empty run_cnt| / run_cnt seen: both must have seen the same packets. */
  runCountMismatch: number;
  /** churn: ns per connection of each socket program (its run time / the connections made), and of both cgroup_skb hooks. */
  nsPerConnection?: Record<string, Summary>;
}

const sub = (a: RunStats, b: RunStats): RunStats => ({ runTimeNs: a.runTimeNs - b.runTimeNs, runCount: a.runCount - b.runCount });
const subPair = (a: HookPair, b: HookPair): HookPair => ({ ingress: sub(a.ingress, b.ingress), egress: sub(a.egress, b.egress) });
const nsPerRun = (p: HookPair): number => (p.ingress.runTimeNs + p.egress.runTimeNs) / (p.ingress.runCount + p.egress.runCount);
const hookNs = (s: RunStats): number => s.runTimeNs / s.runCount;

/** The empty programs, loaded once and pinned; attach/detach per repetition. */
class EmptyPrograms {
  readonly dir: string;

  constructor(label: string) {
    this.dir = `/sys/fs/bpf/flowtap-bench-${process.pid}-${label}`;
    const obj = join(BUILD, 'empty.bpf.o');
    run('bpftool', ['prog', 'loadall', obj, this.dir]);
    const dir = this.dir;
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  }

  /** Attaches both to the cgroup (multi: next to flowtap's links); returns the detach step. */
  attach(cgroupPath: string): () => void {
    const undo: (() => void)[] = [];
    for (const hook of ['ingress', 'egress'] as const) {
      const pin = join(this.dir, `empty_${hook}`);
      run('bpftool', ['cgroup', 'attach', cgroupPath, hook, 'pinned', pin, 'multi']);
      undo.push(
        onCleanup(() => {
          if (existsSync(cgroupPath)) run('bpftool', ['cgroup', 'detach', cgroupPath, hook, 'pinned', pin]);
        }),
      );
    }
    return () => undo.reverse().forEach((u) => u());
  }

  stats(): HookPair {
    const one = (hook: string): RunStats => {
      const j = JSON.parse(run('bpftool', ['prog', 'show', 'pinned', join(this.dir, `empty_${hook}`), '--json'])) as {
        run_time_ns?: number;
        run_cnt?: number;
      };
      return { runTimeNs: j.run_time_ns ?? 0, runCount: j.run_cnt ?? 0 };
    };
    return { ingress: one('ingress'), egress: one('egress') };
  }
}

/** IRQ-work interrupts so far, summed over CPUs (a ring-buffer wake-up of a sleeping reader is one). */
export function irqWorkInterrupts(): number {
  const line = readFileSync('/proc/interrupts', 'utf8')
    .split('\n')
    .find((l) => l.trim().startsWith('IWI:'));
  if (!line) return NaN;
  return line
    .trim()
    .split(/\s+/)
    .slice(1)
    .filter((f) => /^\d+$/.test(f))
    .reduce((sum, f) => sum + Number(f), 0);
}

function flowtapStats(probe: NativeProbe): HookPair {
  const s = probe.programStats() as unknown as HookPair;
  return { ingress: { ...s.ingress }, egress: { ...s.egress } };
}

/** The socket programs' stats (bpf/sock.h: cgroup/connect4, sockops, ...), by section name. */
function socketStats(probe: NativeProbe): Record<string, RunStats> {
  const out: Record<string, RunStats> = {};
  for (const [name, s] of Object.entries(probe.programStats() as Record<string, RunStats>)) if (name !== 'ingress' && name !== 'egress') out[name] = { ...s };
  return out;
}

export interface KernelCostOptions {
  reps: number;
  seconds: number;
  /** loadgen client processes for churn and dns. */
  workers: number;
}

export async function kernelCost(opts: KernelCostOptions): Promise<{ reps: KernelCostRep[]; summaries: KernelCostSummary[] }> {
  const require = createRequire(import.meta.url);
  const { loadBinding } = require(join(ROOT, 'dist', 'kernel', 'probe.js')) as { loadBinding: (root: string) => NativeBinding };
  const binding = loadBinding(ROOT);
  const loadgen = join(BUILD, 'loadgen');

  const restoreStats = setSysctl('kernel/bpf_stats_enabled', '1');
  const lead = new EmptyPrograms('lead');
  const empty = new EmptyPrograms('empty');

  // Servers, outside the cgroup, for the whole part.
  const iperfPort = await freePort();
  const iperf = start('iperf3', ['-s', '--forceflush', '-B', '127.0.0.1', '-p', String(iperfPort)]);
  const tcpPort = await freePort();
  const tcpServer = start(loadgen, ['tcp-server', String(tcpPort)]);
  const dnsServer = start(loadgen, ['dns-server', '53']);
  await Promise.all([iperf.waitFor(/Server listening/), tcpServer.waitFor(/ready/), dnsServer.waitFor(/ready/)]);

  const secs = String(opts.seconds);
  const workloads: Record<Workload, (cg: Cgroup) => Promise<Record<string, number | string>>> = {
    bulk: async (cg) => {
      const out = await runToEnd(cg.start('iperf3', ['-c', '127.0.0.1', '-p', String(iperfPort), '-t', secs, '-J']), 'iperf3 -c');
      const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
      return { bitsPerSecond: j.end.sum_received.bits_per_second };
    },
    churn: async (cg) => {
      const r = parseClient(await runToEnd(cg.start(loadgen, ['tcp-client', String(tcpPort), secs, String(opts.workers)]), 'tcp-client'));
      return { connections: r.done, errors: r.errors, seconds: r.seconds };
    },
    dns: async (cg) => {
      const r = parseClient(await runToEnd(cg.start(loadgen, ['dns-client', '53', secs, String(opts.workers)]), 'dns-client'));
      return { answers: r.done, errors: r.errors, seconds: r.seconds };
    },
  };

  const reps: KernelCostRep[] = [];
  try {
    for (const workload of WORKLOADS) {
      for (let rep = 0; rep < opts.reps; rep++) {
        const order = rep % 2 === 0 ? 'empty-first' : 'flowtap-first';
        const cg = new Cgroup(`kcost-${workload}`);
        let probe: NativeProbe | undefined;
        let detachEmpty: (() => void) | undefined;
        let detachLead: (() => void) | undefined;
        try {
          detachLead = lead.attach(cg.path);
          const attachFlowtap = () => {
            probe = new binding.Probe({ cgroupPath: cg.path, onBatch: () => undefined });
          };
          const attachEmpty = () => (detachEmpty = empty.attach(cg.path));
          if (order === 'empty-first') {
            attachEmpty();
            attachFlowtap();
          } else {
            attachFlowtap();
            attachEmpty();
          }
          const p = probe!;
          const f0 = flowtapStats(p);
          const s0 = socketStats(p);
          const e0 = empty.stats();
          const l0 = lead.stats();
          const i0 = irqWorkInterrupts();
          const load = await workloads[workload](cg);
          const i1 = irqWorkInterrupts();
          const f1 = flowtapStats(p);
          const s1 = socketStats(p);
          const e1 = empty.stats();
          const l1 = lead.stats();
          const r: KernelCostRep = {
            workload,
            rep,
            order,
            flowtap: subPair(f1, f0),
            empty: subPair(e1, e0),
            lead: subPair(l1, l0),
            irqWork: i1 - i0,
            load,
            counters: p.counters(),
            socketPrograms: Object.fromEntries(Object.entries(s1).map(([k, v]) => [k, sub(v, s0[k] ?? { runTimeNs: 0, runCount: 0 })])),
          };
          reps.push(r);
          log(
            `kernel-cost ${workload} rep ${rep + 1}/${opts.reps} (${order}): flowtap ${nsPerRun(r.flowtap).toFixed(1)} ns/run, ` +
              `empty ${nsPerRun(r.empty).toFixed(1)} ns/run, ratio ${(nsPerRun(r.flowtap) / nsPerRun(r.empty)).toFixed(3)}, ` +
              `${r.flowtap.ingress.runCount + r.flowtap.egress.runCount} runs`,
          );
          if (workload === 'churn') {
            const conns = Number(r.load.connections);
            const per = Object.entries(r.socketPrograms).map(
              ([k, v]) => `${k} ${(v.runTimeNs / conns).toFixed(1)} ns (${(v.runCount / conns).toFixed(2)} runs)`,
            );
            log(
              `kernel-cost churn per connection: cgroup_skb ${((r.flowtap.ingress.runTimeNs + r.flowtap.egress.runTimeNs) / conns).toFixed(1)} ns; ${per.join(', ')}`,
            );
          }
        } finally {
          await probe?.close();
          detachEmpty?.();
          detachLead?.();
          cg.remove();
        }
      }
    }
  } finally {
    await Promise.all([iperf.stop(), tcpServer.stop(), dnsServer.stop()]);
    restoreStats();
  }

  const summaries = WORKLOADS.map((workload): KernelCostSummary => {
    const rs = reps.filter((r) => r.workload === workload);
    const mismatch = (r: KernelCostRep) =>
      Math.max(...(['ingress', 'egress'] as const).map((h) => Math.abs(r.flowtap[h].runCount - r.empty[h].runCount) / Math.max(1, r.flowtap[h].runCount)));
    return {
      workload,
      flowtapNs: summarize(rs.map((r) => nsPerRun(r.flowtap))),
      emptyNs: summarize(rs.map((r) => nsPerRun(r.empty))),
      ratio: summarize(rs.map((r) => nsPerRun(r.flowtap) / nsPerRun(r.empty))),
      ratioIngress: summarize(rs.map((r) => hookNs(r.flowtap.ingress) / hookNs(r.empty.ingress))),
      ratioEgress: summarize(rs.map((r) => hookNs(r.flowtap.egress) / hookNs(r.empty.egress))),
      runs: summarize(rs.map((r) => r.flowtap.ingress.runCount + r.flowtap.egress.runCount)),
      runCountMismatch: Math.max(...rs.map(mismatch)),
      nsPerConnection:
        workload !== 'churn'
          ? undefined
          : Object.fromEntries(
              ['cgroup_skb', ...Object.keys(rs[0]?.socketPrograms ?? {})].map((k) => [
                k,
                summarize(
                  rs.map(
                    (r) =>
                      (k === 'cgroup_skb' ? r.flowtap.ingress.runTimeNs + r.flowtap.egress.runTimeNs : r.socketPrograms[k].runTimeNs) /
                      Number(r.load.connections),
                  ),
                ),
              ]),
            ),
    };
  });
  return { reps, summaries };
}
