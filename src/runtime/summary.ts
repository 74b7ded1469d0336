/**
 * The lines a person reads in flowtap's log: a periodic summary of what
 * happened since the last one, e.g.
 *   {"msg":"summary","seconds":10,"begun":120,"ended":118,"exported":238,"failed":0,"dropped":0,"dnsRefused":0,"export":"ok"}
 * and a short `stopped` line with the uptime and the totals. Every counter
 * is still there for a program: in the `counters` debug line before
 * `stopped`, the debug `stats` lines and the metrics (telemetry.ts). Pure:
 * counts in, log fields out.
 */
import type { FlowtapCounts } from './telemetry';

/** The few totals a person follows. */
export interface Totals {
  /** Flow begin and end events the kernel programs reported. */
  begun: number;
  ended: number;
  /** Records exported, failed for good, dropped (full queue, or unsent at shutdown). */
  exported: number;
  failed: number;
  dropped: number;
  /** DNS answers ignored because they answered no query seen (forged, late, duplicate: every reason). */
  dnsRefused: number;
}

/** What the span export counted (ExportStats of the spans). */
export interface SpanTotals {
  exportedRecords: number;
  failedRecords: number;
  droppedRecords: number;
}

export function totalsOf(counts: FlowtapCounts): Totals {
  return {
    begun: counts.probe.flow_begin ?? 0,
    ended: counts.probe.flow_end ?? 0,
    exported: counts.exportedRecords,
    failed: counts.failedRecords,
    dropped: counts.droppedRecords,
    dnsRefused: Object.values(counts.dns.unmatched).reduce((sum, n) => sum + n, 0),
  };
}

/** Whether exports work now: `failingSinceMs` is ExportStats' (undefined while the last export succeeded). */
export function exportState(failingSinceMs: number | undefined): 'ok' | 'failing' {
  return failingSinceMs === undefined ? 'ok' : 'failing';
}

/** The summary line's fields: what changed from `prev` to `now`, over `seconds`. */
export function summaryFields(
  prev: Totals,
  now: Totals,
  seconds: number,
  state: 'ok' | 'failing',
  spans?: { prev: SpanTotals; now: SpanTotals },
): Record<string, number | string> {
  const fields: Record<string, number | string> = {
    seconds,
    begun: now.begun - prev.begun,
    ended: now.ended - prev.ended,
    exported: now.exported - prev.exported,
    failed: now.failed - prev.failed,
    dropped: now.dropped - prev.dropped,
    dnsRefused: now.dnsRefused - prev.dnsRefused,
    export: state,
  };
  if (spans !== undefined) {
    fields.exportedSpans = spans.now.exportedRecords - spans.prev.exportedRecords;
    fields.failedSpans = spans.now.failedRecords - spans.prev.failedRecords;
    fields.droppedSpans = spans.now.droppedRecords - spans.prev.droppedRecords;
  }
  return fields;
}

/** The `stopped` line's fields: how long flowtap ran and the totals. */
export function stoppedFields(now: Totals, uptimeSeconds: number, spans?: SpanTotals): Record<string, number> {
  const fields: Record<string, number> = {
    uptimeSeconds,
    flowsBegun: now.begun,
    flowsEnded: now.ended,
    exportedRecords: now.exported,
    failedRecords: now.failed,
    droppedRecords: now.dropped,
    dnsAnswersRefused: now.dnsRefused,
  };
  if (spans !== undefined) {
    fields.exportedSpans = spans.exportedRecords;
    fields.failedSpans = spans.failedRecords;
    fields.droppedSpans = spans.droppedRecords;
  }
  return fields;
}
