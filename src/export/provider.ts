/**
 * Stage 4 of the data path: where records go.
 *   otlp    → the export queue (queue.ts): each record encoded as OTLP
 *             protobuf straight from the flow event (flow-encoder.ts), batched,
 *             sent through the SDK's gRPC export delegate (grpc-sender.ts)
 *             or, with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf, its HTTP
 *             one (http-sender.ts),
 *             retried while the collector is unreachable, dropped (and
 *             counted) only at the queue's bound
 *   none    → the same, up to the send, which always succeeds
 *   console → the SDK path: mapFlow → Logger.emit → BatchLogRecordProcessor
 *             → one JSON line per record on `out` (logger-sink.ts)
 */
import type { Resource } from '@opentelemetry/resources';
import type { Config } from '../config/config';
import { ConsoleJsonLogRecordExporter, type LineStream } from './console/console';
import { batchLoggerProvider } from './logger-provider';
import { LoggerRecordExport } from './logger-sink';
import type { ExportObserver } from './observed';
import { NullSender, OtlpGrpcSender } from './otlp/grpc-sender';
import { OtlpHttpSender } from './otlp/http-sender';
import type { BatchSender } from './otlp/queue';
import { OtlpRecordExport } from './otlp/sink';
import type { RecordExport, Scope } from './record-export';

export type { RecordExport, Scope } from './record-export';

export type ExporterConfig = Pick<Config, 'exporter' | 'endpoint' | 'otlp' | 'batch' | 'queueMaxRecords'> & Partial<Pick<Config, 'consoleFormat'>>;

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
    return new LoggerRecordExport({
      providerFor: (r) => batchLoggerProvider(config, r, new ConsoleJsonLogRecordExporter(out, config.consoleFormat), observer),
      resource,
      scope,
    });
  }
  return new OtlpRecordExport({
    resource,
    scope,
    sender: sender ?? (config.exporter === 'otlp' ? createOtlpSender(config) : new NullSender()),
    maxQueueRecords: config.queueMaxRecords,
    maxBatchRecords: config.batch.maxExportBatchSize,
    scheduledDelayMillis: config.batch.scheduledDelayMillis,
    observer,
  });
}

/** The OTLP transport for the protocol `config` asks for. */
export function createOtlpSender(config: Pick<Config, 'endpoint' | 'otlp'>): BatchSender {
  const options = { url: config.endpoint, timeoutMillis: config.otlp.timeoutMillis, compression: config.otlp.compression };
  return config.otlp.protocol === 'http/protobuf' ? new OtlpHttpSender(options) : new OtlpGrpcSender(options);
}
