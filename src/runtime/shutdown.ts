/**
 * The ordered shutdown: stop the timers; close the probe (it drains the ring
 * buffer through the pipeline); flush and shut down the record export; the
 * `stopped` line; the last metrics (they carry the final counts); the health
 * server. If that outlasts the shutdown timeout, flowtap says what was not
 * flushed and exits anyway. Exiting is the caller's: `exit` is called once.
 */
import type { Config } from '../config/config';
import type { RecordExport } from '../export/provider';
import type { NativeProbe } from '../kernel/probe';
import type { Log } from './log';
import type { Monitor } from './monitor';
import { stoppedFields, totalsOf, type SpanTotals } from './summary';
import type { FlowtapCounts } from './telemetry';

export interface ShutdownParts {
  config: Pick<Config, 'exporter' | 'shutdownTimeoutMillis'>;
  log: Log;
  monitor: Monitor;
  probe: NativeProbe;
  records: RecordExport;
  telemetry: { shutdown(): Promise<void> } | undefined;
  health: { close(): Promise<void> } | undefined;
  counts: () => FlowtapCounts;
  /** What the span export counted; undefined without spans. */
  spanTotals: () => SpanTotals | undefined;
  /** When flowtap started (wall-clock ms), for the uptime in the `stopped` line. */
  startedMs: number;
  nowMs: () => number;
  /** Records emitted but neither exported, failed nor dropped. */
  pendingRecords: () => number;
  /** Told once stopping begins (the health server's readiness). */
  onStopping: () => void;
  exit: (code: number) => void;
}

/** stop(reason): the first call shuts down in order; a second one exits at once. */
export function shutdownSequence(p: ShutdownParts): (reason: string) => Promise<void> {
  let stopping = false;
  return async (reason) => {
    if (stopping) {
      p.log.warn('second stop request: exiting without flushing', { reason });
      p.exit(0);
      return;
    }
    stopping = true;
    p.onStopping();
    p.monitor.stop();
    p.log.info('stopping', { reason });
    let recordsFlushed = false;
    const deadline = setTimeout(() => {
      if (recordsFlushed) {
        p.log.warn('shutdown timed out exporting the last metrics', { timeoutMillis: p.config.shutdownTimeoutMillis });
      } else {
        p.log.warn('shutdown timed out: exiting without flushing', {
          timeoutMillis: p.config.shutdownTimeoutMillis,
          unflushedRecords: p.config.exporter === 'none' ? 0 : Math.max(0, p.pendingRecords()),
          ...p.counts(),
        });
      }
      p.exit(0);
    }, p.config.shutdownTimeoutMillis);
    try {
      await p.probe.close();
      await p.records.forceFlush();
      await p.records.shutdown();
    } catch (e) {
      p.log.warn('shutdown error', { error: e });
    }
    recordsFlushed = true;
    p.monitor.warnLoss(); // a loss since the last check is never left unsaid
    // A short line for a person; every counter in the debug line before it (and the last metrics).
    const final = p.counts();
    p.log.debug('counters', { ...final });
    p.log.info('stopped', stoppedFields(totalsOf(final), Math.round((p.nowMs() - p.startedMs) / 100) / 10, p.spanTotals()));
    await p.telemetry?.shutdown();
    await p.health?.close();
    clearTimeout(deadline);
    p.exit(0);
  };
}
