/**
 * Stage 4 of the data path: the SDK LoggerProvider the records are emitted
 * to, with a BatchLogRecordProcessor in front of the chosen exporter.
 *   otlp    → OTLPLogExporter (gRPC); it retries, and reads the headers,
 *             certificate and insecure variables from the environment itself
 *   console → one JSON line per record on `out`
 *   none    → no processor: records are mapped, then dropped by the SDK
 */
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import type { Resource } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import type { Config } from '../config';
import { ConsoleJsonLogRecordExporter, type LineStream } from './console';
import { dropCountingMeterProvider, ObservedLogRecordExporter, type ExportObserver } from './observed';

type OtlpOptions = NonNullable<ConstructorParameters<typeof OTLPLogExporter>[0]>;

export type ExporterConfig = Pick<Config, 'exporter' | 'endpoint' | 'otlp' | 'batch'>;

/** The exporter `config` asks for; undefined for 'none'. */
export function createExporter(config: ExporterConfig, out: LineStream): LogRecordExporter | undefined {
  switch (config.exporter) {
    case 'otlp':
      return new OTLPLogExporter({
        url: config.endpoint,
        timeoutMillis: config.otlp.timeoutMillis,
        compression: config.otlp.compression as OtlpOptions['compression'],
      });
    case 'console':
      return new ConsoleJsonLogRecordExporter(out);
    case 'none':
      return undefined;
  }
}

/**
 * The provider records are emitted to. `observer` hears every export result
 * and every record dropped at a full queue. `exporter` replaces the one the
 * config asks for (tests).
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
    maxQueueSize: config.batch.maxQueueSize,
    maxExportBatchSize: config.batch.maxExportBatchSize,
    selfObsMeterProvider: observer === undefined ? undefined : dropCountingMeterProvider((n) => observer.dropped(n)),
  });
  return new LoggerProvider({ resource, processors: [processor] });
}
