/**
 * Part 2: connection-rate overhead.
 *
 * loadgen tcp-client (in a throwaway cgroup) opens and closes TCP connections
 * to loadgen tcp-server (outside it) on 127.0.0.1 as fast as it can for a
 * fixed time, under each monitor in turn:
 *   none      — nothing attached;
 *   flowtap   — the real CLI (node dist/cli.js --cgroup <the client's cgroup>)
 *               exporting over OTLP/gRPC to the real collector (otlp → batch →
 *               debug exporter at basic verbosity, which logs a count per batch);
 *   conntrack — `conntrack -E -e NEW,DESTROY` to a file, with an nft table
 *               (`ct state new counter` on output) that makes the kernel track
 *               connections at all while it runs;
 *   tcpdump   — `tcpdump -i lo -w <file>` with a SYN-ACK capture filter;
 *   bpftrace  — bench/inet_sock_set_state.bt, one line per socket reaching
 *               ESTABLISHED, to a file.
 * The collector runs (idle unless flowtap feeds it) through every mode, so its
 * cost when it receives is charged to flowtap's rate. A repetition runs every
 * mode once, in an order rotated by one each repetition; a mode's ratio is its
 * rate over the same repetition's `none` rate.
 *
 * Placement (ConnRateOptions): by default everything shares every CPU; with
 * workloadCpus/monitorCpus the load generator and the monitor + collector are
 * pinned apart with taskset (bench/run.mts runs both placements).
 *
 * CPU: the monitor's own utime+stime (/proc/<pid>/stat) from just before the
 * load until the monitor has caught up (for flowtap: every record of the run
 * has reached the collector, or 3 s without progress), per 1000 connections.
 * Kernel-side work done in the load generator's context (BPF programs,
 * conntrack hooks, packet taps) is not in it; it shows in the rate.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collectorBinary, startCollector, type RunningCollector } from '../test/helpers/collector.ts';
import { startFlowtap } from '../test/helpers/flowtap.ts';
import { freePort } from '../test/helpers/ports.ts';
import { BUILD, Cgroup, OUT, ROOT, cpuSeconds, ensureDir, log, onCleanup, parseClient, run, runToEnd, sleep, start, summarize, type Summary } from './lib.mts';

export type Mode = 'none' | 'flowtap' | 'conntrack' | 'tcpdump' | 'bpftrace';
export const MODES: Mode[] = ['none', 'flowtap', 'conntrack', 'tcpdump', 'bpftrace'];

export interface ConnRateRun {
  mode: Mode;
  rep: number;
  /** Position in the repetition's order (0 = first). */
  position: number;
  connections: number;
  errors: number;
  seconds: number;
  rate: number;
  /** Monitor CPU seconds (utime+stime) over the load and the catch-up after it. */
  monitorCpuSeconds: number;
  /** Collector CPU seconds over the same window. */
  collectorCpuSeconds: number;
  /** Seconds between the end of the load and the monitor having caught up. */
  catchUpSeconds: number;
  /** What the monitor recorded: records at the collector, events, packets or lines. */
  captured: number;
  /** What it says it lost (ring buffer full, dropped by kernel, ENOBUFS, lost events). */
  lost: number;
  notes: string;
}

export interface ConnRateSummary {
  mode: Mode;
  rate: Summary;
  /** rate / the same repetition's `none` rate. */
  ratio: Summary;
  /** Monitor CPU milliseconds per 1000 connections. */
  cpuMsPer1000: Summary;
  collectorCpuMsPer1000: Summary;
  capturedPerConnection: Summary;
  lost: number;
  errors: number;
}

interface Monitor {
  pid: number | undefined;
  /** After the load: waits until the monitor has caught up with `connections`. */
  catchUp(connections: number): Promise<void>;
  /** Stops it; returns what it captured and lost. */
  stop(): Promise<{ captured: number; lost: number; notes: string }>;
}

export interface ConnRateOptions {
  /** Names the variant in logs, files and the report. */
  label: string;
  reps: number;
  seconds: number;
  workers: number;
  /** taskset CPU list for the load generator (client and server); all CPUs when absent. */
  workloadCpus?: string;
  /** taskset CPU list for the monitor and the collector; all CPUs when absent. */
  monitorCpus?: string;
}

export interface ConnRateResult {
  options: ConnRateOptions;
  runs: ConnRateRun[];
  summaries: ConnRateSummary[];
  collectorVersion: string;
}

/** Records the collector's debug exporter has logged so far. */
function collectorRecords(c: RunningCollector): number {
  let n = 0;
  for (const m of readFileSync(c.outputPath, 'utf8').matchAll(/"log records": (\d+)/g)) n += Number(m[1]);
  return n;
}

function lineCount(file: string): number {
  if (!existsSync(file)) return 0;
  const text = readFileSync(file, 'utf8');
  return text === '' ? 0 : text.split('\n').filter(Boolean).length;
}

export async function connRate(opts: ConnRateOptions): Promise<ConnRateResult> {
  const dir = ensureDir(join(OUT, `conn-rate-${opts.label}`));
  const mon = { cpus: opts.monitorCpus };
  const wl = { cpus: opts.workloadCpus };
  const loadgen = join(BUILD, 'loadgen');
  const collectorVersion = run(collectorBinary(), ['--version']).trim();

  // bpftrace's tracepoints need tracefs; mount it for the run if it is not.
  if (!existsSync('/sys/kernel/tracing/events')) {
    run('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
    onCleanup(() => run('umount', ['/sys/kernel/tracing']));
  }

  // otlp → batch → debug: the debug exporter logs each batch's record count, which is
  // how records are counted; flowtap's own metrics (when it exports them) land there too.
  const collector = await startCollector({ batch: true, logs: 'debug', metrics: 'debug', cpus: opts.monitorCpus, scratchBase: dir });
  const serverPort = await freePort();
  const server = start(loadgen, ['tcp-server', String(serverPort)], wl);
  await server.waitFor(/ready/);
  const cg = new Cgroup('connrate');

  const monitors: Record<Mode, () => Promise<Monitor>> = {
    none: async () => ({ pid: undefined, catchUp: async () => undefined, stop: async () => ({ captured: 0, lost: 0, notes: '' }) }),

    flowtap: async () => {
      const base = collectorRecords(collector);
      const ft = await startFlowtap(
        ['--cgroup', cg.path, '--exporter', 'otlp', '--endpoint', collector.endpoint, '--log-level', 'debug'],
        {},
        30_000,
        opts.monitorCpus === undefined ? [] : ['taskset', '-c', opts.monitorCpus],
      );
      return {
        pid: ft.child.pid,
        catchUp: async (connections) => {
          // One flow per connection, seen from the client's side: begin + end.
          const want = base + 2 * connections;
          let last = -1;
          let still = Date.now();
          for (let deadline = Date.now() + 60_000; Date.now() < deadline;) {
            const n = collectorRecords(collector);
            if (n >= want) return;
            if (n !== last) [last, still] = [n, Date.now()];
            else if (Date.now() - still > 3_000) return;
            await sleep(100);
          }
        },
        stop: async () => {
          await ft.stop('SIGTERM', 15_000);
          const stopped = ft
            .stderr()
            .split('\n')
            .filter((l) => l.includes('"msg":"counters"')) // every counter, logged (debug) just before "stopped"
            .map((l) => JSON.parse(l) as { exportedRecords: number; droppedRecords: number; failedRecords: number; probe: Record<string, number> })
            .pop();
          // What flowtap flushed at exit reaches the collector's log shortly after.
          const exported = stopped?.exportedRecords ?? 0;
          let last = -1;
          let still = Date.now();
          for (let deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(100)) {
            const n = collectorRecords(collector) - base;
            if (n >= exported) break;
            if (n !== last) [last, still] = [n, Date.now()];
            else if (Date.now() - still > 2_000) break;
          }
          const captured = collectorRecords(collector) - base;
          const p = stopped?.probe ?? {};
          const lost =
            (p.ringbuf_full_flow ?? 0) +
            (p.flow_table_full ?? 0) +
            (p.handoff_dropped_records ?? 0) +
            (stopped?.droppedRecords ?? 0) +
            (stopped?.failedRecords ?? 0);
          if (process.env.BENCH_DEBUG)
            process.stderr.write(`--- flowtap stderr\n${ft.stderr().slice(-3000)}\n--- collector stderr\n${collector.stderrTail()}\n`);
          return {
            captured,
            lost,
            notes: stopped
              ? `flow_begin ${p.flow_begin}, flow_end ${p.flow_end}, exported ${stopped.exportedRecords}, handoff_waits ${p.handoff_waits}, batches ${p.batches}`
              : 'no "stopped" line',
          };
        },
      };
    },

    conntrack: async () => {
      run('nft', ['add table inet flowtap_bench']);
      const dropTable = onCleanup(() => {
        run('nft', ['delete table inet flowtap_bench']);
        run('conntrack', ['-F']);
      });
      run('nft', ['add chain inet flowtap_bench out { type filter hook output priority 0 ; policy accept ; }']);
      run('nft', ['add rule inet flowtap_bench out ct state new counter']);
      const file = join(dir, 'conntrack.out');
      const ct = start('conntrack', ['-E', '-e', 'NEW,DESTROY'], { ...mon, stdoutFile: file });
      await sleep(500); // it prints nothing until the first event
      return {
        pid: ct.child.pid,
        catchUp: async () => sleep(200),
        stop: async () => {
          await ct.stop('SIGTERM');
          dropTable();
          const enobufs = (ct.stderr().match(/ENOBUFS/g) ?? []).length;
          return { captured: lineCount(file), lost: enobufs, notes: enobufs ? `${enobufs} ENOBUFS warnings (events lost)` : '' };
        },
      };
    },

    tcpdump: async () => {
      const file = join(dir, 'synack.pcap');
      const td = start('tcpdump', ['-i', 'lo', '-n', '-w', file, 'tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)'], mon);
      await td.waitFor(/listening on lo/);
      return {
        pid: td.child.pid,
        catchUp: async () => sleep(200),
        stop: async () => {
          await td.stop('SIGTERM');
          const captured = Number(/(\d+) packets? captured/.exec(td.stderr())?.[1] ?? NaN);
          const dropped = Number(/(\d+) packets? dropped by kernel/.exec(td.stderr())?.[1] ?? 0);
          return { captured, lost: dropped, notes: '' };
        },
      };
    },

    bpftrace: async () => {
      const file = join(dir, 'bpftrace.out');
      const bt = start('bpftrace', [join(ROOT, 'bench', 'inet_sock_set_state.bt')], { ...mon, stdoutFile: file });
      await bt.waitFor(/Attaching \d+ probe/, 60_000);
      return {
        pid: bt.child.pid,
        catchUp: async () => sleep(200),
        stop: async () => {
          await bt.stop('SIGINT');
          const lost = [...bt.stderr().matchAll(/Lost (\d+) events/g)].reduce((s, m) => s + Number(m[1]), 0);
          return { captured: Math.max(0, lineCount(file) - 1), lost, notes: '' };
        },
      };
    },
  };

  const runs: ConnRateRun[] = [];
  try {
    for (let rep = 0; rep < opts.reps; rep++) {
      const order = MODES.map((_, i) => MODES[(i + rep) % MODES.length]);
      for (const [position, mode] of order.entries()) {
        const monitor = await monitors[mode]();
        try {
          await sleep(500);
          const cpu0 = monitor.pid ? cpuSeconds(monitor.pid) : 0;
          const col0 = cpuSeconds(collector.pid!);
          const client = cg.start(loadgen, ['tcp-client', String(serverPort), String(opts.seconds), String(opts.workers)], wl);
          const r = parseClient(await runToEnd(client, 'tcp-client'));
          const t0 = Date.now();
          await monitor.catchUp(r.done);
          const catchUpSeconds = (Date.now() - t0) / 1000;
          const cpu1 = monitor.pid ? cpuSeconds(monitor.pid) : 0;
          const col1 = cpuSeconds(collector.pid!);
          const got = await monitor.stop();
          const result: ConnRateRun = {
            mode,
            rep,
            position,
            connections: r.done,
            errors: r.errors,
            seconds: r.seconds,
            rate: r.done / r.seconds,
            monitorCpuSeconds: cpu1 - cpu0,
            collectorCpuSeconds: col1 - col0,
            catchUpSeconds,
            ...got,
          };
          runs.push(result);
          log(
            `conn-rate ${opts.label} rep ${rep + 1}/${opts.reps} ${mode}: ${Math.round(result.rate)} conn/s, cpu ${result.monitorCpuSeconds.toFixed(2)} s, ` +
              `captured ${got.captured}, lost ${got.lost}${r.errors ? `, ${r.errors} client errors (${r.lastError})` : ''}`,
          );
        } catch (e) {
          await monitor.stop().catch(() => undefined);
          throw e;
        }
      }
    }
  } finally {
    cg.remove();
    await server.stop();
    await collector.close();
  }

  const summaries = MODES.map((mode): ConnRateSummary => {
    const rs = runs.filter((r) => r.mode === mode);
    const baseline = (rep: number) => runs.find((r) => r.mode === 'none' && r.rep === rep)!.rate;
    return {
      mode,
      rate: summarize(rs.map((r) => r.rate)),
      ratio: summarize(rs.map((r) => r.rate / baseline(r.rep))),
      cpuMsPer1000: summarize(rs.map((r) => (r.monitorCpuSeconds * 1e3 * 1000) / r.connections)),
      collectorCpuMsPer1000: summarize(rs.map((r) => (r.collectorCpuSeconds * 1e3 * 1000) / r.connections)),
      capturedPerConnection: summarize(rs.map((r) => r.captured / r.connections)),
      lost: rs.reduce((s, r) => s + r.lost, 0),
      errors: rs.reduce((s, r) => s + r.errors, 0),
    };
  });
  return { options: opts, runs, summaries, collectorVersion };
}
