/**
 * What flowtap says while it runs: a warning when the probe's loss counters
 * rise, the periodic `stats` (debug) and `summary` (runtime/summary.ts) lines, and the DNS cache
 * sweep. Timers are started here and stopped by stop().
 */
import type { NativeProbe } from '../kernel/probe';
import { exportState, summaryFields, totalsOf, type SpanTotals } from './summary';
import type { FlowtapCounts, ProgramRunStats } from './telemetry';
import type { Log } from './log';

const STATS_INTERVAL_MILLIS = 60_000;
/** Probe counters that mean lost events; a rise is worth a warning. */
const LOSS_COUNTERS = ['ringbuf_full_flow', 'ringbuf_full_dns', 'flow_table_full', 'flow_table_evictions', 'handoff_dropped_records'];

/** The probe's counters, or {} when they cannot be read. */
export function safeCounters(probe: NativeProbe): Record<string, number> {
  try {
    return probe.counters();
  } catch {
    return {};
  }
}

/** The probe's program run stats, or {} when they cannot be read. */
export function safeProgramStats(probe: NativeProbe): Record<string, ProgramRunStats> {
  try {
    return probe.programStats() as Record<string, ProgramRunStats>;
  } catch {
    return {};
  }
}

/** Events lost before decoding, summed over the loss counters. */
export function lossTotal(counters: Record<string, number>): number {
  return LOSS_COUNTERS.reduce((sum, name) => sum + (counters[name] ?? 0), 0);
}

export interface MonitorOptions {
  log: Log;
  probe: NativeProbe;
  counts: () => FlowtapCounts;
  /** Seconds between two summary lines; 0: none. */
  summaryIntervalSeconds: number;
  /** Called with the clock at each stats tick (the DNS cache sweep). */
  sweep: () => void;
  /** Since when every record export has failed (ExportStats); undefined while they work. */
  failingSinceMs: () => number | undefined;
  /** What the span export counted; undefined without spans. */
  spanTotals: () => SpanTotals | undefined;
}

export interface Monitor {
  /** Warns once about events lost since the last check. */
  warnLoss(): void;
  /** Stops the timers. */
  stop(): void;
}

/** Starts the timers; the stats timer also keeps the process alive between batches. */
export function startMonitor(o: MonitorOptions): Monitor {
  let lastLoss = lossTotal(safeCounters(o.probe));
  const warnLoss = (): void => {
    const counters = safeCounters(o.probe);
    const loss = lossTotal(counters);
    if (loss > lastLoss) o.log.warn('events lost before decoding', { lost: loss - lastLoss, probe: counters });
    lastLoss = loss;
  };
  // The summary: what changed since the last one, in a few numbers (every counter: the debug lines, the metrics).
  let lastTotals = totalsOf(o.counts());
  let lastSpanTotals = o.spanTotals();
  const summarize = (): void => {
    const counts = o.counts();
    const now = totalsOf(counts);
    const nowSpans = o.spanTotals();
    const spanDelta = nowSpans === undefined || lastSpanTotals === undefined ? undefined : { prev: lastSpanTotals, now: nowSpans };
    o.log.info('summary', summaryFields(lastTotals, now, o.summaryIntervalSeconds, exportState(o.failingSinceMs()), spanDelta));
    o.log.debug('counters', { ...counts });
    lastTotals = now;
    lastSpanTotals = nowSpans;
  };
  const summary = o.summaryIntervalSeconds > 0 ? setInterval(summarize, o.summaryIntervalSeconds * 1000) : undefined;
  const stats = setInterval(() => {
    warnLoss();
    // Addresses never looked up again would keep their expired names until
    // the bound evicted them: the cache gauge would count dead names.
    o.sweep();
    o.log.debug('stats', { ...o.counts() });
  }, STATS_INTERVAL_MILLIS);
  return {
    warnLoss,
    stop() {
      clearInterval(stats);
      clearInterval(summary);
    },
  };
}
