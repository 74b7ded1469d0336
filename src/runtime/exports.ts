/**
 * Where records go, as the CLI sets it up: the record export of the
 * configuration, and with --spans otlp the span export beside it, each with
 * its own counters (ExportStats) so the log lines and metrics tell them apart.
 */
import type { Resource } from '@opentelemetry/resources';
import type { Config } from '../config/config';
import type { ExportQueue } from '../export/otlp/queue';
import { OtlpRecordExport } from '../export/otlp/sink';
import { createRecordExport, type RecordExport, type Scope } from '../export/provider';
import { createSpanExport, spansEndpointForLog, withSpans } from '../export/spans';
import { ExportStats } from '../export/stats';
import type { LineStream } from '../export/console/console';
import type { Log } from './log';
import { destination } from './ready';
import type { SpanTotals } from './summary';

export interface Exports {
  /** The records' sink: the log records and, with spans, the spans too. */
  records: RecordExport;
  /** The records' export counters. */
  stats: ExportStats;
  /** The OTLP export queue of the records (undefined for the console). */
  exportQueue: ExportQueue | undefined;
  /** What the span export counted; undefined without spans. */
  spanTotals: () => SpanTotals | undefined;
  /** Where the spans go, as log lines show it; undefined without spans. */
  spansDestination: string | undefined;
}

export function createExports(config: Config, resource: Resource, scope: Scope, out: LineStream, log: Log): Exports {
  const stats = new ExportStats({ log, nowMs: Date.now, destination: destination(config) });
  const logRecords = createRecordExport(config, resource, scope, out, stats);
  const spanStats = new ExportStats({ log, nowMs: Date.now, destination: spansEndpointForLog(config), items: 'spans' });
  const spans = createSpanExport(config, resource, scope, spanStats);
  return {
    records: withSpans(logRecords, spans),
    stats,
    exportQueue: logRecords instanceof OtlpRecordExport ? logRecords.queue : undefined,
    spanTotals: () => (spans === undefined ? undefined : spanStats),
    spansDestination: spans === undefined ? undefined : spansEndpointForLog(config),
  };
}
