/**
 * Stage 4 of the data path: where records go.
 *   otlp    → the export queue (queue.ts): each record encoded as OTLP
 *             protobuf straight from the flow event (flow-encoder.ts), batched,
 *             sent through the SDK's gRPC export delegate (grpc-sender.ts),
 *             retried while the collector is unreachable, dropped (and
 *             counted) only at the queue's bound
 *   none    → the same, up to the send, which always succeeds
 *   console → the SDK path: mapFlow → Logger.emit → BatchLogRecordProcessor
 *             → one JSON line per record on `out` (logger-sink.ts)
 */
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import type { Resource } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import type { Config } from '../config/config';
import type { RecordSink } from '../pipeline';
import { ConsoleJsonLogRecordExporter, type LineStream } from './console/console';
import { LoggerRecordExport } from './logger-sink';
import { dropCountingMeterProvider, ObservedLogRecordExporter, type ExportObserver } from './observed';
import { NullSender, OtlpGrpcSender } from './otlp/grpc-sender';
import { OtlpRecordExport } from './otlp/sink';
import type { BatchSender } from './otlp/queue';

type OtlpOptions = NonNullable<ConstructorParameters<typeof OTLPLogExporter>[0]>;

export type ExporterConfig = Pick<Config, 'exporter' | 'endpoint' | 'otlp' | 'batch' | 'queueMaxRecords'> & Partial<Pick<Config, 'consoleFormat'>>;

/** A record sink with the lifecycle of an SDK provider. */
export interface RecordExport extends RecordSink {
  /** Sends what is held; resolves once it is exported, failed or dropped. */
  forceFlush(): Promise<void>;
  /** Stops; what could not be sent is counted as dropped. Idempotent. */
  shutdown(): Promise<void>;
}

/** The instrumentation scope of the records. */
export interface Scope {
  name: string;
  version?: string;
}

/**
 * Where records go for `config`. `observer` hears every export result and
 * every dropped record. `sender` replaces the OTLP transport (tests).
 */
export function createRecordExport(
  config: ExporterConfig,
  resource: Resource,
  scope: Scope,
  out: LineStream,
  observer?: ExportObserver,
  sender?: BatchSender,
): RecordExport {
  if (config.exporter === 'console') {
    return new LoggerRecordExport(createLoggerProvider(config, resource, out, observer), scope);
  }
  return new OtlpRecordExport({
    resource,
    scope,
    sender:
      sender ??
      (config.exporter === 'otlp'
        ? new OtlpGrpcSender({ url: config.endpoint, timeoutMillis: config.otlp.timeoutMillis, compression: config.otlp.compression })
        : new NullSender()),
    maxQueueRecords: config.queueMaxRecords,
    maxBatchRecords: config.batch.maxExportBatchSize,
    scheduledDelayMillis: config.batch.scheduledDelayMillis,
    observer,
  });
}

/** The SDK exporter `config` asks for; undefined for 'none'. */
export function createExporter(config: ExporterConfig, out: LineStream): LogRecordExporter | undefined {
  switch (config.exporter) {
    case 'otlp':
      return new OTLPLogExporter({
        url: config.endpoint,
        timeoutMillis: config.otlp.timeoutMillis,
        compression: config.otlp.compression as OtlpOptions['compression'],
      });
    case 'console':
      return new ConsoleJsonLogRecordExporter(out, config.consoleFormat);
    case 'none':
      return undefined;
  }
}

/**
 * The stock SDK provider: a BatchLogRecordProcessor in front of the exporter
 * `config` asks for (the console path, and the reference the tests and
 * benchmarks compare the OTLP export queue with). `observer` hears every
 * export result and every record dropped at a full queue. `exporter`
 * replaces the one the config asks for (tests).
 */
export function createLoggerProvider(
  config: ExporterConfig,
  resource: Resource,
  out: LineStream,
  observer?: ExportObserver,
  exporter: LogRecordExporter | undefined = createExporter(config, out),
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
