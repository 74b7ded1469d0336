/**
 * Export latency: time from an event's own timestamp (the synthetic source
 * stamps each record with the moment it "passed the hook") to its arrival at
 * a real collector, at 1 000 flows/s, with flowtap's defaults and with the
 * documented low-latency setting (OTEL_BLRP_SCHEDULE_DELAY).
 *
 * flowtap: the real CLI with --replay synthetic:1000, on CPU 0. The synthetic
 * ring buffer is drained every 10 ms (the addon wakes per event), so up to
 * 10 ms of each figure is the source's, not the export's. Collector: otlp →
 * file (JSON lines, flush_interval 5 ms) on the last CPU. Arrival: when this
 * script, polling the file every 2 ms, first sees the record: so a figure
 * includes up to ~7 ms of the collector's file buffering and the polling —
 * they err on the late side. All three processes share one host clock.
 *
 *   node bench/latency.mts     (env: BENCH_REPS=5, LATENCY_SECONDS=20)
 * Results: bench/out/latency.json; markdown on stdout.
 */
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { OUT, cpuSeconds, ensureDir, log, summarize, type Summary } from './lib.mts';
import { percentile, scratchDir, sleep, startFileCollector, startFlowtapReplay } from './pipeline-lib.mts';

export interface LatencyMode {
  label: string;
  env: Record<string, string>;
}

/** The low-latency setting the README documents (LATENCY_LOW_DELAY overrides it, to try others). */
export const LOW_LATENCY_SCHEDULE_DELAY_MILLIS = Number(process.env.LATENCY_LOW_DELAY ?? 25);

export const MODES: LatencyMode[] = [
  { label: 'defaults', env: {} },
  { label: 'low latency', env: { OTEL_BLRP_SCHEDULE_DELAY: String(LOW_LATENCY_SCHEDULE_DELAY_MILLIS) } },
];

export interface LatencyRun {
  rep: number;
  mode: string;
  records: number;
  p50Millis: number;
  p99Millis: number;
  maxMillis: number;
  /** flowtap's CPU at this rate and setting, in cores. */
  cpuCores: number;
}

export interface LatencyResult {
  rate: number;
  seconds: number;
  runs: LatencyRun[];
  summaries: { mode: string; p50: Summary; p99: Summary; cpuCores: Summary }[];
}

const RATE = 1000;
const WARMUP_MILLIS = 2000;
const POLL_MILLIS = 2;

const nowNs = (): number => (performance.timeOrigin + performance.now()) * 1e6;

/** Follows a JSON-lines file, calling `onRecord(timeUnixNano, seenNs)` for each log record in each new complete line. */
function follow(path: string, onRecord: (timeUnixNano: number, seenNs: number) => void): { stop(): void } {
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
            for (const sl of rl.scopeLogs ?? []) for (const lr of sl.logRecords ?? []) onRecord(Number(lr.timeUnixNano), seen);
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

async function runOnce(rep: number, mode: LatencyMode, seconds: number): Promise<LatencyRun> {
  const n = cpus().length;
  const { dir, remove } = scratchDir('latency');
  const collector = await startFileCollector(dir, { format: 'json', flushIntervalMillis: 5, cpus: n > 1 ? String(n - 1) : undefined });
  const latencies: number[] = [];
  const startedNs = nowNs();
  const follower = follow(collector.file, (t, seen) => {
    if (t > startedNs + WARMUP_MILLIS * 1e6) latencies.push((seen - t) / 1e6);
  });
  const ft = await startFlowtapReplay(RATE, collector.endpoint, { cpus: '0', env: mode.env });
  const pid = ft.process.child.pid!;
  await sleep(WARMUP_MILLIS);
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const cpuCores = (cpuSeconds(pid) - cpu0) / ((Date.now() - t0) / 1000);
  await sleep(1500); // the last records of the window arrive
  follower.stop();
  await ft.process.stop('SIGTERM', 20_000);
  await collector.stop();
  remove();
  return {
    rep,
    mode: mode.label,
    records: latencies.length,
    p50Millis: percentile(latencies, 50),
    p99Millis: percentile(latencies, 99),
    maxMillis: Math.max(...latencies),
    cpuCores,
  };
}

export async function exportLatency(opts: { reps: number; seconds: number }): Promise<LatencyResult> {
  const runs: LatencyRun[] = [];
  for (let rep = 1; rep <= opts.reps; rep++) {
    // alternate which mode runs first
    const order = rep % 2 === 1 ? MODES : [...MODES].reverse();
    for (const mode of order) {
      const r = await runOnce(rep, mode, opts.seconds);
      runs.push(r);
      log(`latency rep ${rep} ${mode.label}: p50 ${r.p50Millis.toFixed(1)} ms, p99 ${r.p99Millis.toFixed(1)} ms (${r.records} records), cpu ${r.cpuCores.toFixed(3)} cores`);
    }
  }
  const summaries = MODES.map((m) => {
    const rs = runs.filter((r) => r.mode === m.label);
    return {
      mode: m.label,
      p50: summarize(rs.map((r) => r.p50Millis)),
      p99: summarize(rs.map((r) => r.p99Millis)),
      cpuCores: summarize(rs.map((r) => r.cpuCores)),
    };
  });
  return { rate: RATE, seconds: opts.seconds, runs, summaries };
}

export const TARGET_P99_MILLIS: Record<string, number> = { defaults: 1500, 'low latency': 100 };

export function renderLatency(r: LatencyResult): string {
  const lines: string[] = [];
  const p = (...l: string[]): void => void lines.push(...l);
  const ms = (v: number): string => `${v.toFixed(v < 100 ? 1 : 0)} ms`;
  p(
    '## Export latency (event → collector)',
    '',
    `From each event's own timestamp to its arrival at the real collector, at ${r.rate} flows/s (\`--replay synthetic:${r.rate}\`, ` +
      `${r.seconds} s per run, flowtap on CPU 0, the collector on the last CPU). Arrival is when a reader polling the collector's ` +
      `file (JSON, flush_interval 5 ms) every ${POLL_MILLIS} ms first sees the record, and the synthetic ring buffer is drained ` +
      `every 10 ms: up to ~17 ms of each figure is measurement and source, not export.`,
    '',
    '| setting | p50 min / median | p99 min / median | p99 target | CPU (cores, median) |',
    '|---|---|---|---|---|',
  );
  for (const s of r.summaries) {
    const setting = s.mode === 'defaults' ? 'defaults' : `low latency: \`OTEL_BLRP_SCHEDULE_DELAY=${LOW_LATENCY_SCHEDULE_DELAY_MILLIS}\``;
    p(`| ${setting} | ${ms(s.p50.min)} / ${ms(s.p50.median)} | ${ms(s.p99.min)} / ${ms(s.p99.median)} | ≤ ${ms(TARGET_P99_MILLIS[s.mode])} | ${s.cpuCores.median.toFixed(3)} |`);
  }
  p('', '| rep | setting | records | p50 | p99 | max |', '|---|---|---|---|---|---|');
  for (const run of r.runs) p(`| ${run.rep} | ${run.mode} | ${run.records} | ${ms(run.p50Millis)} | ${ms(run.p99Millis)} | ${ms(run.maxMillis)} |`);
  p('');
  return lines.join('\n');
}

if (import.meta.main) {
  const result = await exportLatency({ reps: Number(process.env.BENCH_REPS ?? 5), seconds: Number(process.env.LATENCY_SECONDS ?? 20) });
  ensureDir(OUT);
  writeFileSync(join(OUT, 'latency.json'), JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(renderLatency(result));
}
