/**
 * The stock SDK provider around one exporter: a BatchLogRecordProcessor in
 * front of it, sized by the batch settings. The console exporter runs on it;
 * reference-sdk.ts builds the same around the SDK's OTLP exporter for the
 * tests and benchmarks.
 */
import type { Resource } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import type { Config } from '../config/config';
import { dropCountingMeterProvider, ObservedLogRecordExporter, type ExportObserver } from './observed';

export type BatchSettings = Pick<Config, 'batch' | 'queueMaxRecords'>;

/**
 * A provider exporting through `exporter` (none: a provider without
 * processors, which drops every record). `observer` hears every export
 * result and every record dropped at a full queue.
 */
export function batchLoggerProvider(
  config: BatchSettings,
  resource: Resource,
  exporter: LogRecordExporter | undefined,
  observer?: ExportObserver,
): LoggerProvider {
  if (exporter === undefined) return new LoggerProvider({ resource });
  const processor = new BatchLogRecordProcessor({
    exporter: observer === undefined ? exporter : new ObservedLogRecordExporter(exporter, observer),
    scheduledDelayMillis: config.batch.scheduledDelayMillis,
    exportTimeoutMillis: config.batch.exportTimeoutMillis,
    maxQueueSize: config.queueMaxRecords,
    maxExportBatchSize: config.batch.maxExportBatchSize,
    selfObsMeterProvider: observer === undefined ? undefined : dropCountingMeterProvider((n) => observer.dropped(n)),
  });
  return new LoggerProvider({ resource, processors: [processor] });
}
