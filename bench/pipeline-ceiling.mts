/**
 * Pipeline ceiling: the highest steady event rate flowtap exports with zero
 * loss into a real collector on one CPU, and its RSS at 50 000 events/s.
 *
 * flowtap runs as the real CLI with --replay synthetic:<rate>: synthetic
 * flow records in the ring-buffer layout of bpf/flowtap.h go through the
 * production decode → map → OTLP export queue → SDK gRPC transport, pinned
 * to CPU 0 (taskset). The synthetic source models the ring buffer: records
 * are produced at <rate> in wall-clock time, and lost (counted as
 * ringbuf_full_flow) when flowtap falls more than --ring-buffer-bytes behind.
 * The collector (otlp receiver → file exporter, protobuf) runs on the last
 * CPU; after each run its file is read back and every record counted.
 *
 * A rate passes when, over a run of `seconds`:
 *   - flowtap lost nothing: no ring-buffer loss, no queue drop, no failed export,
 *     every record exported (flowtap's `stopped` line; no shutdown timeout);
 *   - the collector's file holds every record (distinct timestamps = emitted);
 *   - it kept up: records not yet exported (`summary` lines, every second)
 *     stayed under 2 s worth through the second half of the run.
 * Each repetition climbs the rate ladder until a rate fails; its ceiling is
 * the last rate that passed. Reported: min/median over the repetitions.
 *
 *   node bench/pipeline-ceiling.mts      (env: BENCH_REPS=5, CEILING_SECONDS=10,
 *                                         CEILING_RATES=50000,100000,...)
 * Results: bench/out/pipeline-ceiling.json; markdown on stdout.
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { OUT, cpuSeconds, ensureDir, log, summarize, type Summary } from './lib.mts';
import { countProtoFile, percentile, sampleRss, scratchDir, sleep, startFileCollector, startFlowtapReplay } from './pipeline-lib.mts';

export interface CeilingOptions {
  reps: number;
  seconds: number;
  rates: number[];
}

export interface CeilingStep {
  rep: number;
  rate: number;
  passed: boolean;
  /** Why it failed, when it did. */
  reason?: string;
  emitted: number;
  exported: number;
  dropped: number;
  failed: number;
  ringBufferLost: number;
  collectorRecords: number;
  collectorDistinct: number;
  /** flowtap's CPU use over the run window, in cores (≤ 1: it is pinned to one). */
  cpuCores: number;
  /** The collector's, on its own CPU: near 1 means the collector, not flowtap, set the pace. */
  collectorCpuCores: number;
  rssMaxMiB: number;
  rssMedianMiB: number;
  /** Largest backlog (emitted − exported) in the second half, in seconds of input. */
  maxLagSeconds: number;
}

export interface CeilingResult {
  options: CeilingOptions;
  steps: CeilingStep[];
  /** Per repetition: the highest rate that passed (0: none did). */
  ceilings: number[];
  ceiling: Summary;
  /** RSS at 50 000 events/s: the max over each repetition's run, summarized over repetitions. */
  rssAt50k: Summary | undefined;
  cpuCoresAt50k: Summary | undefined;
}

const RSS_RATE = 50_000;
/** Backlog allowed in the second half of a run: two seconds of input. */
const MAX_LAG_SECONDS = 2;

/* eslint-disable @typescript-eslint/no-explicit-any */
async function runStep(rep: number, rate: number, seconds: number): Promise<CeilingStep> {
  const n = cpus().length;
  const { dir, remove } = scratchDir(`ceiling-${rate}`);
  const collector = await startFileCollector(dir, { format: 'proto', flushIntervalMillis: 200, cpus: n > 1 ? String(n - 1) : undefined });
  const ft = await startFlowtapReplay(rate, collector.endpoint, { cpus: '0', args: ['--summary-interval-seconds', '1'] });
  const pid = ft.process.child.pid!;
  await sleep(1000); // warm-up: JIT, first connection
  const collectorPid = collector.process.child.pid!;
  const cpu0 = cpuSeconds(pid);
  const ccpu0 = cpuSeconds(collectorPid);
  const t0 = Date.now();
  const rss = sampleRss(pid);
  await sleep(seconds * 1000);
  const cpu1 = cpuSeconds(pid);
  const ccpu1 = cpuSeconds(collectorPid);
  const t1 = Date.now();
  const rssSamples = rss.stop();
  await ft.process.stop('SIGTERM', 20_000);
  await collector.stop();
  const counted = countProtoFile(collector.file);
  remove();

  const logs = ft.logs();
  const stopped = logs.find((l) => l.msg === 'stopped') as Record<string, any> | undefined;
  const timedOut = logs.find((l) => l.msg === 'shutdown timed out: exiting without flushing') as Record<string, any> | undefined;
  const end = stopped ?? timedOut ?? {};
  const summaries = logs.filter((l) => l.msg === 'summary') as Record<string, any>[];
  const secondHalf = summaries.slice(Math.floor(summaries.length / 2));
  const maxLag = secondHalf.reduce((m, l) => Math.max(m, Number(l.emitted) - Number(l.exportedRecords)), 0);

  const step: CeilingStep = {
    rep,
    rate,
    passed: false,
    emitted: Number(end.emitted ?? NaN),
    exported: Number(end.exportedRecords ?? NaN),
    dropped: Number(end.droppedRecords ?? NaN),
    failed: Number(end.failedRecords ?? NaN),
    ringBufferLost: Number(end.probe?.ringbuf_full_flow ?? NaN),
    collectorRecords: counted.records,
    collectorDistinct: counted.distinct,
    cpuCores: (cpu1 - cpu0) / ((t1 - t0) / 1000),
    collectorCpuCores: (ccpu1 - ccpu0) / ((t1 - t0) / 1000),
    rssMaxMiB: Math.max(...rssSamples),
    rssMedianMiB: percentile(rssSamples, 50),
    maxLagSeconds: maxLag / rate,
  };
  const reasons: string[] = [];
  if (stopped === undefined) reasons.push('shutdown timed out with records unflushed');
  if (step.ringBufferLost !== 0) reasons.push(`${step.ringBufferLost} lost at the ring buffer`);
  if (step.dropped !== 0) reasons.push(`${step.dropped} dropped at the queue`);
  if (step.failed !== 0) reasons.push(`${step.failed} failed exports`);
  if (step.exported !== step.emitted) reasons.push(`exported ${step.exported} of ${step.emitted}`);
  if (step.collectorDistinct !== step.emitted) reasons.push(`collector has ${step.collectorDistinct} of ${step.emitted}`);
  if (step.maxLagSeconds > MAX_LAG_SECONDS) reasons.push(`fell behind (backlog ${step.maxLagSeconds.toFixed(1)} s)`);
  step.passed = reasons.length === 0;
  if (!step.passed) step.reason = reasons.join('; ');
  return step;
}

export async function pipelineCeiling(opts: CeilingOptions): Promise<CeilingResult> {
  const steps: CeilingStep[] = [];
  const ceilings: number[] = [];
  for (let rep = 1; rep <= opts.reps; rep++) {
    let ceiling = 0;
    for (const rate of opts.rates) {
      const step = await runStep(rep, rate, opts.seconds);
      steps.push(step);
      log(
        `ceiling rep ${rep} ${rate}/s: ${step.passed ? 'pass' : `FAIL (${step.reason})`}; ` +
          `cpu ${step.cpuCores.toFixed(2)} cores (collector ${step.collectorCpuCores.toFixed(2)}), rss max ${step.rssMaxMiB.toFixed(0)} MiB, backlog ≤ ${step.maxLagSeconds.toFixed(2)} s`,
      );
      if (!step.passed) break;
      ceiling = rate;
    }
    ceilings.push(ceiling);
  }
  const at50k = steps.filter((s) => s.rate === RSS_RATE);
  return {
    options: opts,
    steps,
    ceilings,
    ceiling: summarize(ceilings),
    rssAt50k: at50k.length > 0 ? summarize(at50k.map((s) => s.rssMaxMiB)) : undefined,
    cpuCoresAt50k: at50k.length > 0 ? summarize(at50k.map((s) => s.cpuCores)) : undefined,
  };
}

export const TARGET_CEILING = 150_000;
export const TARGET_RSS_MIB = 100;

export function renderPipelineCeiling(r: CeilingResult): string {
  const lines: string[] = [];
  const p = (...l: string[]): void => void lines.push(...l);
  const k = (v: number): string => `${Math.round(v / 1000)}k`;
  p(
    '## Pipeline ceiling (user space, one CPU)',
    '',
    `The real CLI with \`--replay synthetic:<rate>\` (synthetic flow records in the ring-buffer layout, through the ` +
      `production decode → map → OTLP export queue → SDK gRPC transport) pinned to CPU 0; the real collector ` +
      `(otlp → file, protobuf) on the last CPU, its file read back and every record counted. A rate passes when ` +
      `nothing is lost anywhere, the collector holds every record, and the backlog stays under ${MAX_LAG_SECONDS} s; ` +
      `each repetition climbs ${r.options.rates.map(k).join(', ')} events/s (${r.options.seconds} s each) until one fails.`,
    '',
    `| | min | median | target |`,
    `|---|---|---|---|`,
    `| highest rate with zero loss (events/s) | ${k(r.ceiling.min)} | ${k(r.ceiling.median)} | ≥ ${k(TARGET_CEILING)} |`,
  );
  if (r.rssAt50k) p(`| RSS at 50k events/s (MiB, max over the run) | ${r.rssAt50k.min.toFixed(0)} | ${r.rssAt50k.median.toFixed(0)} | ≤ ${TARGET_RSS_MIB} |`);
  if (r.cpuCoresAt50k) p(`| CPU at 50k events/s (cores) | ${r.cpuCoresAt50k.min.toFixed(2)} | ${r.cpuCoresAt50k.median.toFixed(2)} | |`);
  p('', `Repetitions: ceilings ${r.ceilings.map(k).join(', ')}.`, '');
  p('| rep | rate | result | flowtap CPU (cores) | collector CPU (cores) | RSS max / median (MiB) | backlog max (s) |', '|---|---|---|---|---|---|---|');
  for (const s of r.steps) {
    p(
      `| ${s.rep} | ${k(s.rate)} | ${s.passed ? 'pass' : `fail: ${s.reason}`} | ${s.cpuCores.toFixed(2)} | ${s.collectorCpuCores.toFixed(2)} | ` +
        `${s.rssMaxMiB.toFixed(0)} / ${s.rssMedianMiB.toFixed(0)} | ${s.maxLagSeconds.toFixed(2)} |`,
    );
  }
  p('');
  return lines.join('\n');
}

function envList(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  return raw ? raw.split(',').map((x) => Number(x.trim())) : fallback;
}

if (import.meta.main) {
  const opts: CeilingOptions = {
    reps: Number(process.env.BENCH_REPS ?? 5),
    seconds: Number(process.env.CEILING_SECONDS ?? 10),
    rates: envList('CEILING_RATES', [50_000, 100_000, 125_000, 150_000, 175_000, 200_000, 250_000, 300_000]),
  };
  const result = await pipelineCeiling(opts);
  ensureDir(OUT);
  writeFileSync(join(OUT, 'pipeline-ceiling.json'), JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(renderPipelineCeiling(result));
}
