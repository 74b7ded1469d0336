/**
 * What differs between sending log records and sending spans over OTLP: the
 * service and path, the SDK's signal name (it picks the signal's own
 * OTEL_EXPORTER_OTLP_<SIGNAL>_* variables by it), and how the response counts
 * rejected items. A transport (grpc-sender.ts, http-sender.ts) takes one of these.
 */
import { ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';

/** A partial success the receiver reported: items it accepted the request but rejected. */
export interface PartialSuccess {
  rejected: number;
  errorMessage: string | undefined;
}

export interface OtlpSignal {
  /** The SDK's signal identifier: LOGS or TRACES. */
  readonly sdkSignal: 'LOGS' | 'TRACES';
  /** gRPC service name and method path. */
  readonly grpcService: string;
  readonly grpcPath: string;
  /** OTLP/HTTP path under the endpoint (specification default). */
  readonly httpPath: string;
  /** The SDK's component types (gRPC, HTTP) and item name, for its own bookkeeping. */
  readonly componentType: string;
  readonly httpComponentType: string;
  readonly itemName: 'log' | 'span';
  /** The items in flowtap's own messages: records, spans. */
  readonly itemsText: string;
  /** What an export response says of rejected items; undefined when it says nothing. */
  partialSuccess(response: Uint8Array): PartialSuccess | undefined;
}

export const LOGS_SIGNAL: OtlpSignal = {
  sdkSignal: 'LOGS',
  grpcService: 'LogsExportService',
  grpcPath: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
  httpPath: '/v1/logs',
  componentType: 'otlp_grpc_log_exporter',
  httpComponentType: 'otlp_http_log_exporter',
  itemName: 'log',
  itemsText: 'records',
  partialSuccess(response) {
    const partial = ProtobufLogsSerializer.deserializeResponse(response).partialSuccess;
    return partial === undefined ? undefined : { rejected: Number(partial.rejectedLogRecords ?? 0), errorMessage: partial.errorMessage };
  },
};

export const TRACES_SIGNAL: OtlpSignal = {
  sdkSignal: 'TRACES',
  grpcService: 'TraceExportService',
  grpcPath: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  httpPath: '/v1/traces',
  componentType: 'otlp_grpc_span_exporter',
  httpComponentType: 'otlp_http_span_exporter',
  itemName: 'span',
  itemsText: 'spans',
  partialSuccess(response) {
    const partial = ProtobufTraceSerializer.deserializeResponse(response).partialSuccess;
    return partial === undefined ? undefined : { rejected: Number(partial.rejectedSpans ?? 0), errorMessage: partial.errorMessage };
  },
};

/**
 * What a successful export came to: accepted whole, or accepted with
 * `response`'s rejected items (a partial success), named as `who` rejected
 * them (the collector, the receiver).
 */
export function acceptedResult(signal: OtlpSignal, response: PartialSuccess | undefined, who: string): { ok: true; rejected?: number; error?: Error } {
  const rejected = response?.rejected ?? 0;
  if (rejected === 0) return { ok: true };
  return { ok: true, rejected, error: new Error(`${who} rejected ${rejected} ${signal.itemsText}: ${response?.errorMessage ?? ''}`) };
}
