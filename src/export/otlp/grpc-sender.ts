/**
 * The OTLP/gRPC transport of the export queue: the SDK's own gRPC export
 * delegate (@opentelemetry/otlp-grpc-exporter-base, the one OTLPLogExporter
 * is built on) with a serializer that passes flowtap's already-encoded
 * request through. So TLS, OTEL_EXPORTER_OTLP_(LOGS_)HEADERS, _CERTIFICATE,
 * _CLIENT_KEY, _CLIENT_CERTIFICATE, _INSECURE, compression, the per-request
 * timeout and the user agent are the SDK's, read from the environment by the
 * SDK exactly as for the stock exporter.
 *
 * The delegate in 0.301.0 does not retry gRPC errors itself (its
 * RetryingTransport wraps only the HTTP transports); the export queue does,
 * for the status codes classified retryable here.
 */
import { ExportResultCode } from '@opentelemetry/core';
import { convertLegacyOtlpGrpcOptions, createOtlpGrpcExportDelegate } from '@opentelemetry/otlp-grpc-exporter-base';
import type { ISerializer } from '@opentelemetry/otlp-transformer';
import { displayUrl } from './http-sender';
import type { BatchSender, SendResult } from './queue';
import { acceptedResult, LOGS_SIGNAL, type OtlpSignal, type PartialSuccess } from './signal';

/** One request as the delegate sees it. */
interface EncodedRequest {
  bytes: Uint8Array;
  records: number;
}

/** The gRPC status codes (grpc/doc/statuscodes.md) that a retry may cure. */
const GRPC_STATUS = {
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
} as const;

/**
 * Retryable: the OTLP specification's list (CANCELLED, DEADLINE_EXCEEDED,
 * ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS) plus RESOURCE_EXHAUSTED (a
 * collector's memory limiter or a full queue says so), and any error without
 * a gRPC status (the client could not even start the call). Everything else
 * (INVALID_ARGUMENT, UNAUTHENTICATED, UNIMPLEMENTED, ...) would fail the same
 * way again: the batch counts as failed.
 */
const RETRYABLE = new Set<number>([
  GRPC_STATUS.CANCELLED,
  GRPC_STATUS.DEADLINE_EXCEEDED,
  GRPC_STATUS.RESOURCE_EXHAUSTED,
  GRPC_STATUS.ABORTED,
  GRPC_STATUS.OUT_OF_RANGE,
  GRPC_STATUS.UNAVAILABLE,
  GRPC_STATUS.DATA_LOSS,
]);

export function isRetryableGrpcError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code !== 'number' || RETRYABLE.has(code);
}

/**
 * grpc-js says UNAVAILABLE "... Protocol error" when the peer's answer is not
 * HTTP/2: an HTTP/1.1 server, most often the collector's OTLP/HTTP port.
 * Retrying would meet the same answer, so this is a configuration error.
 */
export function wrongProtocolError(error: unknown, url: string): Error | undefined {
  const e = error as { code?: unknown; details?: unknown; message?: unknown } | undefined;
  const text = `${String(e?.details ?? '')} ${String(e?.message ?? '')}`;
  if (e?.code !== GRPC_STATUS.UNAVAILABLE || !text.includes('Protocol error')) return undefined;
  return new Error(
    `OTLP/gRPC ${displayUrl(url)} did not answer in HTTP/2: it looks like an OTLP/HTTP port (4318 by default); ` +
      'set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or use the OTLP/gRPC port (4317 by default)',
  );
}

export interface OtlpGrpcSenderOptions {
  /** http(s)://host:port; the SDK also honours OTEL_EXPORTER_OTLP_(LOGS_)INSECURE etc. */
  url: string;
  /** Deadline of one request. */
  timeoutMillis: number;
  compression: 'gzip' | 'none';
  /** What is sent: log records (default) or spans. */
  signal?: OtlpSignal;
}

type GrpcOptions = Parameters<typeof convertLegacyOtlpGrpcOptions>[0];

/** The queue limits concurrency itself; the delegate's limit must never bite first. */
const DELEGATE_CONCURRENCY = 1024;

type Delegate = ReturnType<typeof createOtlpGrpcExportDelegate<EncodedRequest, PartialSuccess | undefined>>;

export class OtlpGrpcSender implements BatchSender {
  private readonly _options: OtlpGrpcSenderOptions;
  private readonly _signal: OtlpSignal;
  private readonly _serializer: ISerializer<EncodedRequest, PartialSuccess | undefined>;
  private _delegate: Delegate;
  /** The delegate's gRPC channel gave UNAVAILABLE: the next send gets a new one. */
  private _stale = false;
  private readonly _retired = new Set<Promise<void>>();
  /** The response of the request whose callback runs next (the delegate decodes it just before). */
  private _lastResponse: PartialSuccess | undefined;

  constructor(options: OtlpGrpcSenderOptions) {
    this._options = options;
    const signal = (this._signal = options.signal ?? LOGS_SIGNAL);
    this._serializer = {
      serializeRequest: (request) => request.bytes,
      deserializeResponse: (data) => {
        const response = signal.partialSuccess(data);
        this._lastResponse = response;
        return response;
      },
    };
    this._delegate = this._newDelegate();
  }

  private _newDelegate(): Delegate {
    const o = this._options;
    return createOtlpGrpcExportDelegate(
      convertLegacyOtlpGrpcOptions(
        {
          url: o.url,
          timeoutMillis: o.timeoutMillis,
          compression: o.compression as GrpcOptions['compression'],
          concurrencyLimit: DELEGATE_CONCURRENCY,
        },
        this._signal.sdkSignal,
      ),
      this._serializer,
      this._signal.componentType,
      { name: this._signal.itemName, countItems: (request) => request.records },
      undefined, // no SDK self-observability metrics: flowtap counts exports itself (ExportStats)
      this._signal.grpcService,
      this._signal.grpcPath,
    );
  }

  /**
   * A channel that failed to connect backs off on its own, up to 120 s in
   * grpc-js, and fails every call at once meanwhile: a collector back after
   * a one-minute outage would wait up to another minute. The export queue
   * already spaces its retries, so after UNAVAILABLE the next send gets a
   * fresh delegate (a new channel, connecting at once); the old one closes
   * when its sends in flight are done.
   */
  private _current(): Delegate {
    if (this._stale) {
      this._stale = false;
      const retired = this._delegate.shutdown().catch(() => undefined);
      this._retired.add(retired);
      void retired.then(() => this._retired.delete(retired));
      this._delegate = this._newDelegate();
    }
    return this._delegate;
  }

  send(request: Uint8Array, records: number): Promise<SendResult> {
    return new Promise((resolve) => {
      try {
        this._current().export({ bytes: request, records }, (result) => {
          const response = this._lastResponse;
          this._lastResponse = undefined;
          if (result.code === ExportResultCode.SUCCESS) {
            resolve(acceptedResult(this._signal, response, 'collector'));
          } else {
            const error = result.error ?? new Error('export failed');
            if ((error as { code?: unknown }).code === GRPC_STATUS.UNAVAILABLE) this._stale = true;
            const wrong = wrongProtocolError(error, this._options.url);
            resolve(wrong === undefined ? { ok: false, retryable: isRetryableGrpcError(error), error } : { ok: false, retryable: false, error: wrong });
          }
        });
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        resolve({ ok: false, retryable: true, error });
      }
    });
  }

  async shutdown(): Promise<void> {
    await Promise.all([this._delegate.shutdown(), ...this._retired]);
  }
}

/** `--exporter none`: everything up to the send, which always succeeds at once. */
export class NullSender implements BatchSender {
  send(): Promise<SendResult> {
    return Promise.resolve({ ok: true });
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
