/**
 * `--spans otlp`: the span export beside the log records' export. The
 * transport comes in as a parameter (spanSender picks OTLP/gRPC or OTLP/HTTP); the
 * queue's sizes are the records' own (--queue-max-records, OTEL_BLRP_*).
 */
import type { Config } from '../config/config';
import type { ExportObserver } from './observed';
import { OtlpGrpcSender } from './otlp/grpc-sender';
import { OtlpHttpSender } from './otlp/http-sender';
import type { ResourceLike, ScopeLike } from './otlp/proto';
import type { BatchSender } from './otlp/queue';
import { TRACES_SIGNAL } from './otlp/signal';
import { OtlpSpanExport } from './otlp/span-sink';
import type { RecordExport } from './provider';

export type SpansConfig = Pick<Config, 'spans' | 'spansEndpoint' | 'endpoint' | 'otlp' | 'batch' | 'queueMaxRecords'>;

/** Where spans go: --spans-endpoint, else the records' endpoint. */
export function spansEndpoint(config: SpansConfig): string {
  return config.spansEndpoint ?? config.endpoint;
}

/** The spans' endpoint as log lines show it: user and password in the URL, if any, replaced by '***'. */
export function spansEndpointForLog(config: SpansConfig): string {
  const url = spansEndpoint(config);
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '***';
    u.password = '';
    return u.toString();
  } catch {
    return url; // parseConfig accepts only valid URLs
  }
}

/** The transport of the spans: OTLP/gRPC (TraceService/Export) or OTLP/HTTP (…/v1/traces), by OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL. */
export function spanSender(config: SpansConfig): BatchSender {
  const options = { url: spansEndpoint(config), timeoutMillis: config.otlp.timeoutMillis, compression: config.otlp.compression, signal: TRACES_SIGNAL };
  return config.otlp.tracesProtocol === 'http/protobuf' ? new OtlpHttpSender(options) : new OtlpGrpcSender(options);
}

/** The span export `config` asks for, sending through `sender`; undefined when spans are off. */
export function createSpanExport(
  config: SpansConfig,
  resource: ResourceLike,
  scope: ScopeLike,
  observer: ExportObserver | undefined,
  sender: () => BatchSender = () => spanSender(config),
): OtlpSpanExport | undefined {
  if (config.spans !== 'otlp') return undefined;
  return new OtlpSpanExport({
    resource,
    scope,
    sender: sender(),
    maxQueueRecords: config.queueMaxRecords,
    maxBatchRecords: config.batch.maxExportBatchSize,
    scheduledDelayMillis: config.batch.scheduledDelayMillis,
    observer,
  });
}

/** One sink that hands each flow to `records`, then to `spans` (when there are spans). */
export function withSpans(records: RecordExport, spans: RecordExport | undefined): RecordExport {
  if (spans === undefined) return records;
  return {
    emitFlow(event, domains, timestampNs, workload, observedNs) {
      records.emitFlow(event, domains, timestampNs, workload, observedNs);
      spans.emitFlow(event, domains, timestampNs, workload, observedNs);
    },
    async forceFlush() {
      await Promise.all([records.forceFlush(), spans.forceFlush()]);
    },
    async shutdown() {
      await Promise.all([records.shutdown(), spans.shutdown()]);
    },
  };
}
