/**
 * Part 4: export latency — from a flow's own timestamp (when its SYN-ACK
 * passed the hook) to the record's arrival at a real collector, at 1 000
 * flows/s, with flowtap's defaults and with the low-latency setting the
 * README documents (OTEL_BLRP_SCHEDULE_DELAY=25 and, from the kernel,
 * --ring-buffer-wakeup-bytes 0; also the short delay alone, to show what the
 * wake-up adds), from two sources:
 *
 *   kernel — flowtap's programs on a throwaway cgroup in which loadgen
 *            tcp-client opens 1 000 connections a second (its RATE: a fixed
 *            schedule) to loadgen tcp-server (outside it) on 127.0.0.1: the
 *            whole path, ring buffer and its reader's wake-up included;
 *   replay — --replay synthetic:1000: the synthetic ring buffer is drained
 *            every 10 ms, so this is the user-space path alone (decode → map →
 *            export queue → gRPC → collector), with up to 10 ms of source.
 *
 * flowtap runs on CPU 0 (taskset), the collector (otlp → file, OTLP JSON,
 * flush_interval 5 ms) on the last CPU. Arrival: when this process, polling
 * the file every 2 ms, first sees the record — so each figure includes up to
 * ~7 ms of file buffering and polling: they err on the late side. Only
 * flowtap.flow.begin records whose timestamp falls in the measured window (after a
 * warm-up) count. All processes share one host clock.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { BUILD, Cgroup, cpuSeconds, log, parseClient, runToEnd, shownCommand, start, summarize, type Started, type Summary } from './lib.mts';
import { freePort } from '../test/helpers/ports.ts';
import { percentile, replaySource, scratchDir, sleep, startFileCollector, startFlowtap } from './pipeline-lib.mts';

export type LatencySource = 'kernel' | 'replay';
export const SOURCES: LatencySource[] = ['kernel', 'replay'];

export interface LatencySetting {
  label: 'defaults' | 'low latency' | 'schedule delay only' | 'delay + short poll';
  /** Environment flowtap gets on top of the runner's. */
  env: Record<string, string>;
  /** Flags for the kernel source only (the synthetic source has no ring buffer to wake). */
  kernelArgs: string[];
  sources: LatencySource[];
}

/** The low-latency setting the README documents: a short batch delay and, from the kernel, a wake-up per record. */
export const LOW_LATENCY_SCHEDULE_DELAY_MILLIS = 25;
const lowDelay = { OTEL_BLRP_SCHEDULE_DELAY: String(LOW_LATENCY_SCHEDULE_DELAY_MILLIS) };

export const SETTINGS: LatencySetting[] = [
  { label: 'defaults', env: {}, kernelArgs: [], sources: ['kernel', 'replay'] },
  { label: 'low latency', env: lowDelay, kernelArgs: ['--ring-buffer-wakeup-bytes', '0'], sources: ['kernel', 'replay'] },
  // What the wake-up flag adds: the short delay alone, from the kernel.
  { label: 'schedule delay only', env: lowDelay, kernelArgs: [], sources: ['kernel'] },
  // The short delay with a reader that polls every 5 ms instead of waking per record.
  { label: 'delay + short poll', env: lowDelay, kernelArgs: ['--ring-buffer-poll-millis', '5'], sources: ['kernel'] },
];

export interface LatencyRun {
  rep: number;
  source: LatencySource;
  setting: LatencySetting['label'];
  /** flowtap.flow.begin records with a timestamp in the window that reached the collector. */
  records: number;
  /** Flows started in the window: the rate × the window. */
  expected: number;
  p50Millis: number;
  p99Millis: number;
  maxMillis: number;
  /** flowtap's CPU over the window, in cores. */
  cpuCores: number;
}

export interface LatencySummary {
  source: LatencySource;
  setting: LatencySetting['label'];
  p50: Summary;
  p99: Summary;
  cpuCores: Summary;
}

export interface LatencyResult {
  rate: number;
  seconds: number;
  warmupSeconds: number;
  settings: LatencySetting[];
  runs: LatencyRun[];
  summaries: LatencySummary[];
  /** The command lines of one run per source (flowtap with the low-latency setting). */
  commands: Record<LatencySource, string[]>;
}

const RATE = 1000;
/** The load generator's processes: together they keep RATE's schedule. */
const CLIENT_WORKERS = 2;
const WARMUP_SECONDS = 2;
export const POLL_MILLIS = 2;
export const COLLECTOR_FLUSH_MILLIS = 5;
export const REPLAY_DRAIN_MILLIS = 10;

const nowNs = (): number => (performance.timeOrigin + performance.now()) * 1e6;

/** Follows a JSON-lines file, calling `onRecord` for each log record in each new complete line. */
function follow(path: string, onRecord: (eventName: string, timeUnixNano: number, seenNs: number) => void): { stop(): void } {
  let offset = 0;
  let partial = '';
  const buf = Buffer.alloc(4 << 20);
  const poll = (): void => {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return; // not created yet
    }
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, offset);
        if (n === 0) break;
        offset += n;
        const seen = nowNs();
        const lines = (partial + buf.toString('utf8', 0, n)).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          if (line.trim() === '') continue;
          for (const rl of JSON.parse(line).resourceLogs ?? []) {
            for (const sl of rl.scopeLogs ?? []) for (const lr of sl.logRecords ?? []) onRecord(lr.eventName ?? '', Number(lr.timeUnixNano), seen);
          }
        }
      }
    } finally {
      closeSync(fd);
    }
  };
  const t = setInterval(poll, POLL_MILLIS);
  return { stop: () => clearInterval(t) };
}

interface KernelLoad {
  cgroup: Cgroup;
  serverPort: number;
}

async function runOnce(
  rep: number,
  source: LatencySource,
  setting: LatencySetting,
  seconds: number,
  load: KernelLoad,
): Promise<{ run: LatencyRun; commands: string[] }> {
  const n = cpus().length;
  const { dir, remove } = scratchDir('latency');
  const collector = await startFileCollector(dir, { format: 'json', flushIntervalMillis: COLLECTOR_FLUSH_MILLIS, cpus: n > 1 ? String(n - 1) : undefined });
  const window = { from: Infinity, to: Infinity };
  const latencies: number[] = [];
  const follower = follow(collector.file, (eventName, t, seen) => {
    if (eventName === 'flowtap.flow.begin' && t >= window.from && t < window.to) latencies.push((seen - t) / 1e6);
  });
  const flowtapSource = source === 'kernel' ? ['--cgroup', load.cgroup.path] : replaySource(RATE);
  const ft = await startFlowtap(flowtapSource, collector.endpoint, { cpus: '0', env: setting.env, args: source === 'kernel' ? setting.kernelArgs : [] });
  const commands = [collector.command, source === 'kernel' ? ft.shown.replace(load.cgroup.path, '<cg>') : ft.shown];
  const pid = ft.child.pid!;
  let client: Started | undefined;
  if (source === 'kernel') {
    const args = ['tcp-client', String(load.serverPort), String(WARMUP_SECONDS + seconds), String(CLIENT_WORKERS), String(RATE)];
    client = load.cgroup.start(join(BUILD, 'loadgen'), args);
    commands.push(`${shownCommand(client.commandLine, [[String(load.serverPort), '<port>']])}   # in <cg>`);
  }
  window.from = nowNs() + WARMUP_SECONDS * 1e9;
  window.to = window.from + seconds * 1e9;
  await sleep(WARMUP_SECONDS * 1000);
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const cpuCores = (cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000);
  if (client) {
    const r = parseClient(await runToEnd(client, 'tcp-client'));
    if (r.errors > 0) log(`latency: tcp-client had ${r.errors} errors (${r.lastError})`);
  }
  await sleep(1500); // the last records of the window arrive (defaults: up to 1 s later)
  follower.stop();
  await ft.stop('SIGTERM', 20_000);
  await collector.stop();
  remove();
  const run: LatencyRun = {
    rep,
    source,
    setting: setting.label,
    records: latencies.length,
    expected: RATE * seconds,
    p50Millis: percentile(latencies, 50),
    p99Millis: percentile(latencies, 99),
    maxMillis: latencies.reduce((m, x) => Math.max(m, x), -Infinity),
    cpuCores,
  };
  return { run, commands };
}

export async function exportLatency(opts: { reps: number; seconds: number; sources?: LatencySource[] }): Promise<LatencyResult> {
  const sources = opts.sources ?? SOURCES;
  const runs: LatencyRun[] = [];
  const commands = {} as Record<LatencySource, string[]>;
  const serverPort = await freePort();
  const server = start(join(BUILD, 'loadgen'), ['tcp-server', String(serverPort)]);
  const cgroup = new Cgroup('latency');
  try {
    await server.waitFor(/ready/);
    for (let rep = 1; rep <= opts.reps; rep++) {
      // alternate which setting runs first
      const order = rep % 2 === 1 ? SETTINGS : [...SETTINGS].reverse();
      for (const source of sources) {
        for (const setting of order.filter((x) => x.sources.includes(source))) {
          const { run: r, commands: cmds } = await runOnce(rep, source, setting, opts.seconds, { cgroup, serverPort });
          const serverCommand = `${shownCommand(server.commandLine, [[String(serverPort), '<port>']])}   # outside <cg>`;
          if (setting.label === 'low latency') commands[source] ??= source === 'kernel' ? [serverCommand, ...cmds] : cmds;
          runs.push(r);
          log(
            `latency rep ${rep} ${source} ${setting.label}: p50 ${r.p50Millis.toFixed(1)} ms, p99 ${r.p99Millis.toFixed(1)} ms ` +
              `(${r.records} of ${r.expected} records), cpu ${r.cpuCores.toFixed(3)} cores`,
          );
        }
      }
    }
  } finally {
    cgroup.remove();
    await server.stop();
  }
  const summaries = sources.flatMap((source) =>
    SETTINGS.filter((s) => s.sources.includes(source)).map((s): LatencySummary => {
      const rs = runs.filter((r) => r.source === source && r.setting === s.label);
      return {
        source,
        setting: s.label,
        p50: summarize(rs.map((r) => r.p50Millis)),
        p99: summarize(rs.map((r) => r.p99Millis)),
        cpuCores: summarize(rs.map((r) => r.cpuCores)),
      };
    }),
  );
  return { rate: RATE, seconds: opts.seconds, warmupSeconds: WARMUP_SECONDS, settings: SETTINGS, runs, summaries, commands };
}
