/**
 * Part 3a: pipeline ceiling — the highest steady event rate flowtap exports
 * with zero loss into a real collector on one CPU, and its RSS at 50 000
 * events/s next to its RSS near idle.
 *
 * flowtap runs as the real CLI with --replay synthetic:<rate>: synthetic
 * flow records in the ring-buffer layout of bpf/flowtap.h go through the
 * production decode → map → OTLP export queue → SDK gRPC transport, pinned
 * to CPU 0 (taskset); what else ran on that CPU meanwhile is measured
 * (/proc/stat), since it lowers the ceiling. The synthetic source models
 * the ring buffer: records are produced at <rate> in wall-clock time, and
 * lost (counted as ringbuf_full_flow) when flowtap falls more than
 * --ring-buffer-bytes behind.
 * The collector (otlp receiver → file exporter, protobuf) runs on the last
 * CPU; after each run its file is read back and every record counted.
 *
 * A rate passes when, over a run of `seconds`:
 *   - flowtap lost nothing: no ring-buffer loss, no queue drop, no failed
 *     export, no decode or processing error, every record exported
 *     (flowtap's `stopped` line; no shutdown timeout);
 *   - the collector's file holds every record (distinct timestamps = emitted);
 *   - it kept up: records not yet exported (`summary` lines, every second)
 *     stayed under 2 s worth through the second half of the run.
 * Each repetition first runs near idle (IDLE_RATE, for the RSS baseline), then
 * climbs the rate ladder until a rate fails; its ceiling is the last rate
 * that passed.
 */
import { cpus } from 'node:os';
import { cpuSeconds, cpuTimes, log, summarize, type Summary } from './lib.mts';
import { countProtoFile, percentile, replaySource, sampleRss, scratchDir, sleep, startFileCollector, startFlowtap } from './pipeline-lib.mts';

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
  decodeErrors: number;
  processingErrors: number;
  collectorRecords: number;
  collectorDistinct: number;
  /** flowtap's CPU use over the run window, in cores (≤ 1: it is pinned to one). */
  cpuCores: number;
  /** Share of flowtap's CPU that other work (other processes, interrupts, the hypervisor's steal) took over the run. */
  otherOnFlowtapCpu: number;
  /** The collector's, on its own CPU: near 1 means the collector, not flowtap, set the pace. */
  collectorCpuCores: number;
  rssMaxMiB: number;
  rssMedianMiB: number;
  /** Largest backlog (emitted − exported) in the second half, in seconds of input. */
  maxLagSeconds: number;
}

export interface CeilingResult {
  options: CeilingOptions;
  /** The ladder's runs; the near-idle runs are in idleSteps. */
  steps: CeilingStep[];
  idleSteps: CeilingStep[];
  idleRate: number;
  /** Per repetition: the highest rate that passed (0: none did). */
  ceilings: number[];
  ceiling: Summary;
  /** RSS at 50 000 events/s: the max over each repetition's run (passed runs only: steady state), summarized over repetitions. */
  rssAt50k: Summary | undefined;
  cpuCoresAt50k: Summary | undefined;
  /** RSS near idle: the max over each repetition's IDLE_RATE run. */
  rssIdle: Summary;
  /** Per repetition: rssAt50k / rssIdle of the same repetition. */
  rssAt50kOverIdle: Summary | undefined;
  /** At each repetition's ceiling: flowtap's and the collector's CPU, in cores. */
  cpuCoresAtCeiling: Summary;
  collectorCpuCoresAtCeiling: Summary;
  /** Over every run: the share of flowtap's CPU other work took. */
  otherOnFlowtapCpu: Summary;
  /** Command lines of one run (rate and ports as placeholders). */
  commands: string[];
}

/** flowtap's CPU (taskset); the collector gets the last one. */
export const FLOWTAP_CPU = 0;
export const RSS_RATE = 50_000;
/** "Near idle": a trickle, so the pipeline and the gRPC channel are set up as under load. */
export const IDLE_RATE = 100;
/** Backlog allowed in the second half of a run: two seconds of input. */
export const MAX_LAG_SECONDS = 2;

/* eslint-disable @typescript-eslint/no-explicit-any */
async function runStep(rep: number, rate: number, seconds: number): Promise<{ step: CeilingStep; commands: string[] }> {
  const n = cpus().length;
  const { dir, remove } = scratchDir(`ceiling-${rate}`);
  const collector = await startFileCollector(dir, { format: 'proto', flushIntervalMillis: 200, cpus: n > 1 ? String(n - 1) : undefined });
  const ft = await startFlowtap(replaySource(rate), collector.endpoint, {
    cpus: String(FLOWTAP_CPU),
    args: ['--summary-interval-seconds', '1', '--log-level', 'debug'],
  });
  const commands = [collector.command, ft.shown.replace(`synthetic:${rate}`, 'synthetic:<rate>')];
  const pid = ft.child.pid!;
  await sleep(1000); // warm-up: JIT, first connection
  const collectorPid = collector.pid;
  const cpu0 = cpuSeconds(pid);
  const ccpu0 = cpuSeconds(collectorPid);
  const host0 = cpuTimes(FLOWTAP_CPU);
  const t0 = Date.now();
  const rss = sampleRss(pid);
  await sleep(seconds * 1000);
  const cpu1 = cpuSeconds(pid);
  const ccpu1 = cpuSeconds(collectorPid);
  const host1 = cpuTimes(FLOWTAP_CPU);
  const t1 = Date.now();
  const rssSamples = rss.stop();
  await ft.stop('SIGTERM', 20_000);
  await collector.stop();
  const counted = countProtoFile(collector.file);
  remove();

  const logs = ft.logs();
  // every counter: the debug `counters` lines (one per summary interval, the last one at exit, before `stopped`)
  const counterLines = logs.filter((l) => l.msg === 'counters') as Record<string, any>[];
  const stopped = logs.some((l) => l.msg === 'stopped') ? counterLines[counterLines.length - 1] : undefined;
  const timedOut = logs.find((l) => l.msg === 'shutdown timed out: exiting without flushing') as Record<string, any> | undefined;
  const end = stopped ?? timedOut ?? {};
  const summaries = counterLines;
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
    decodeErrors: Number(end.decodeErrors ?? NaN),
    processingErrors: Number(end.processingErrors ?? NaN),
    collectorRecords: counted.records,
    collectorDistinct: counted.distinct,
    cpuCores: (cpu1 - cpu0) / ((t1 - t0) / 1000),
    otherOnFlowtapCpu: Math.max(0, (host1.busy - host0.busy - (cpu1 - cpu0)) / (host1.total - host0.total)),
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
  if (step.decodeErrors !== 0 || step.processingErrors !== 0) reasons.push(`${step.decodeErrors} decode and ${step.processingErrors} processing errors`);
  if (step.exported !== step.emitted) reasons.push(`exported ${step.exported} of ${step.emitted}`);
  if (step.collectorDistinct !== step.emitted) reasons.push(`collector has ${step.collectorDistinct} of ${step.emitted}`);
  if (step.maxLagSeconds > MAX_LAG_SECONDS) reasons.push(`fell behind (backlog ${step.maxLagSeconds.toFixed(1)} s)`);
  step.passed = reasons.length === 0;
  if (!step.passed) step.reason = reasons.join('; ');
  return { step, commands };
}

export async function pipelineCeiling(opts: CeilingOptions): Promise<CeilingResult> {
  const steps: CeilingStep[] = [];
  const idleSteps: CeilingStep[] = [];
  const ceilings: number[] = [];
  const atCeiling: CeilingStep[] = [];
  let commands: string[] = [];
  const describe = (s: CeilingStep): string =>
    `cpu ${s.cpuCores.toFixed(2)} cores (collector ${s.collectorCpuCores.toFixed(2)}, other work on flowtap's CPU ${s.otherOnFlowtapCpu.toFixed(2)}), ` +
    `rss max ${s.rssMaxMiB.toFixed(0)} MiB, backlog ≤ ${s.maxLagSeconds.toFixed(2)} s`;
  for (let rep = 1; rep <= opts.reps; rep++) {
    const { step: idle, commands: idleCommands } = await runStep(rep, IDLE_RATE, opts.seconds);
    commands = idleCommands;
    idleSteps.push(idle);
    log(`ceiling rep ${rep} near idle (${IDLE_RATE}/s): ${idle.passed ? 'pass' : `FAIL (${idle.reason})`}; ${describe(idle)}`);
    let ceiling: CeilingStep | undefined;
    for (const rate of opts.rates) {
      const { step } = await runStep(rep, rate, opts.seconds);
      steps.push(step);
      log(`ceiling rep ${rep} ${rate}/s: ${step.passed ? 'pass' : `FAIL (${step.reason})`}; ${describe(step)}`);
      if (!step.passed) break;
      ceiling = step;
    }
    ceilings.push(ceiling?.rate ?? 0);
    if (ceiling) atCeiling.push(ceiling);
  }
  // Steady state only: a run that fell behind holds its backlog in memory.
  const at50k = steps.filter((s) => s.rate === RSS_RATE && s.passed);
  const idleRss = (rep: number): number => idleSteps.find((s) => s.rep === rep)!.rssMaxMiB;
  return {
    options: opts,
    steps,
    idleSteps,
    idleRate: IDLE_RATE,
    ceilings,
    ceiling: summarize(ceilings),
    rssAt50k: at50k.length > 0 ? summarize(at50k.map((s) => s.rssMaxMiB)) : undefined,
    cpuCoresAt50k: at50k.length > 0 ? summarize(at50k.map((s) => s.cpuCores)) : undefined,
    rssIdle: summarize(idleSteps.map((s) => s.rssMaxMiB)),
    rssAt50kOverIdle: at50k.length > 0 ? summarize(at50k.map((s) => s.rssMaxMiB / idleRss(s.rep))) : undefined,
    cpuCoresAtCeiling: summarize(atCeiling.map((s) => s.cpuCores)),
    collectorCpuCoresAtCeiling: summarize(atCeiling.map((s) => s.collectorCpuCores)),
    otherOnFlowtapCpu: summarize([...idleSteps, ...steps].map((s) => s.otherOnFlowtapCpu)),
    commands,
  };
}
