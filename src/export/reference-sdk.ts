/**
 * The stock OpenTelemetry SDK log path for every exporter flowtap knows,
 * OTLP included: mapFlow → Logger.emit → BatchLogRecordProcessor → the SDK's
 * exporter. Tests and benchmarks use it as the reference the OTLP export
 * queue must match (same records at the collector) and beat (CPU per
 * record). Not on the product path: the CLI never imports it (its console
 * exporter goes through provider.ts).
 */
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import type { Resource } from '@opentelemetry/resources';
import type { LoggerProvider, LogRecordExporter } from '@opentelemetry/sdk-logs';
import { ConsoleJsonLogRecordExporter, type LineStream } from './console/console';
import { batchLoggerProvider } from './logger-provider';
import { LoggerRecordExport } from './logger-sink';
import type { ExportObserver } from './observed';
import type { ExporterConfig } from './provider';

type OtlpOptions = NonNullable<ConstructorParameters<typeof OTLPLogExporter>[0]>;

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
 * The stock SDK provider for `config`. `observer` hears every export result
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
  return batchLoggerProvider(config, resource, exporter, observer);
}

/**
 * The stock SDK path as a record sink: a provider per workload Resource
 * (logger-sink.ts), each with its own exporter `config` asks for.
 */
export function createSdkRecordExport(
  config: ExporterConfig,
  resource: Resource,
  scope: { name: string; version?: string },
  out: LineStream,
  observer?: ExportObserver,
): LoggerRecordExport {
  return new LoggerRecordExport({ providerFor: (r) => createLoggerProvider(config, r, out, observer), resource, scope });
}
