/**
 * The OTLP/HTTP (binary protobuf) transport of the export queue: the SDK's
 * own Node HTTP export delegate (@opentelemetry/otlp-exporter-base/node-http,
 * the one the stock http/protobuf exporters are built on) with a serializer
 * that passes flowtap's already-encoded request through. So TLS
 * (OTEL_EXPORTER_OTLP_(LOGS_)CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE),
 * OTEL_EXPORTER_OTLP_(LOGS_)HEADERS, gzip, the per-request timeout, keep-alive
 * connections and the user agent are the SDK's, read from the environment by
 * the SDK exactly as for the stock exporter.
 *
 * Retries: the delegate's RetryingTransport retries 429, 502, 503 and 504 and
 * the network errors a retry may cure (ECONNREFUSED, ECONNRESET, ...) within
 * the request's timeout, waiting what Retry-After asks for when it fits; what
 * is still retryable after that goes back to the export queue, which retries
 * it for as long as it takes. Every other answer (400, 401, 404, 413, ...)
 * would be the same again: the batch counts as failed.
 */
import { ExportResultCode } from '@opentelemetry/core';
import { OTLPExporterError } from '@opentelemetry/otlp-exporter-base';
import { convertLegacyHttpOptions, createOtlpHttpExportDelegate } from '@opentelemetry/otlp-exporter-base/node-http';
import type { ISerializer } from '@opentelemetry/otlp-transformer';
import type { BatchSender, SendResult } from './queue';
import { acceptedResult, LOGS_SIGNAL, type OtlpSignal, type PartialSuccess } from './signal';

/** One request as the delegate sees it. */
interface EncodedRequest {
  bytes: Uint8Array;
  records: number;
}

export interface OtlpHttpSenderOptions {
  /** The full URL requests are POSTed to, e.g. http://localhost:4318/v1/logs. */
  url: string;
  /** Deadline of one request, its transport-level retries included. */
  timeoutMillis: number;
  compression: 'gzip' | 'none';
  /** What is sent: log records (default) or spans. */
  signal?: OtlpSignal;
}

type HttpOptions = Parameters<typeof convertLegacyHttpOptions>[0];

const CONTENT_TYPE = { 'Content-Type': 'application/x-protobuf' };
/** The queue limits concurrency itself; the delegate's limit must never bite first. */
const DELEGATE_CONCURRENCY = 1024;
/** What the delegate reports when its transport retries ran out on 429/502/503/504. */
const RETRIES_EXHAUSTED = 'Export failed with retryable status';
/** Node's socket errors that a later attempt may not meet (the SDK's transport list). */
const RETRYABLE_NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH']);
/** HTTP/2 frame type of SETTINGS, the first frame an HTTP/2 (gRPC) server sends. */
const HTTP2_SETTINGS_FRAME = 0x04;

/** `url` without user name and password, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '<invalid URL>';
  }
}

/**
 * Whether a failed send may succeed later, and the error to report: one
 * line, naming the URL, with a hint when the answer says the endpoint is not
 * an OTLP/HTTP logs receiver.
 */
export function classifyHttpError(error: Error, url: string, signal: OtlpSignal = LOGS_SIGNAL): { retryable: boolean; error: Error } {
  const where = displayUrl(url);
  if (error instanceof OTLPExporterError && typeof error.code === 'number') {
    const path = signal.httpPath;
    const given =
      signal === LOGS_SIGNAL ? '--endpoint and OTEL_EXPORTER_OTLP_LOGS_ENDPOINT are' : '--spans-endpoint and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT are';
    const hint =
      error.code === 404 || error.code === 405
        ? ` (an OTLP/HTTP receiver takes ${signal.itemName}s at ...${path}; ${given} used as given, OTEL_EXPORTER_OTLP_ENDPOINT gets ${path} appended)`
        : '';
    const body = (error.data ?? '').replace(/\s+/g, ' ').trim().slice(0, 200);
    return { retryable: false, error: new Error(`OTLP/HTTP ${where} answered ${error.code} ${error.message ?? ''}${body === '' ? '' : `: ${body}`}${hint}`) };
  }
  if (error.message === RETRIES_EXHAUSTED) {
    return { retryable: true, error: new Error(`OTLP/HTTP ${where} answered 429/502/503/504 until the request's timeout`) };
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && code.startsWith('HPE_')) {
    const raw = (error as { rawPacket?: Buffer }).rawPacket;
    const http2 = raw !== undefined && raw.length >= 9 && raw[3] === HTTP2_SETTINGS_FRAME;
    return {
      retryable: false,
      error: new Error(
        http2
          ? `OTLP/HTTP ${where} answered with HTTP/2 frames: it is an OTLP/gRPC port (4317 by default); set OTEL_EXPORTER_OTLP_PROTOCOL=grpc or use the OTLP/HTTP port (4318 by default)`
          : `OTLP/HTTP ${where} did not answer in HTTP/1.1 (${code}): is it an OTLP/HTTP endpoint?`,
      ),
    };
  }
  if ((typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) || error.message === 'Request timed out') {
    return { retryable: true, error: new Error(`OTLP/HTTP ${where}: ${error.message}`) };
  }
  return { retryable: false, error: new Error(`OTLP/HTTP ${where}: ${error.message}`) };
}

type Delegate = ReturnType<typeof createOtlpHttpExportDelegate<EncodedRequest, PartialSuccess | undefined>>;

export class OtlpHttpSender implements BatchSender {
  private readonly _url: string;
  private readonly _signal: OtlpSignal;
  private readonly _delegate: Delegate;
  /** The response of the request whose callback runs next (the delegate decodes it just before). */
  private _lastResponse: PartialSuccess | undefined;

  constructor(options: OtlpHttpSenderOptions) {
    this._url = options.url;
    const signal = (this._signal = options.signal ?? LOGS_SIGNAL);
    const serializer: ISerializer<EncodedRequest, PartialSuccess | undefined> = {
      serializeRequest: (request) => request.bytes,
      deserializeResponse: (data) => {
        const response = signal.partialSuccess(data);
        this._lastResponse = response;
        return response;
      },
    };
    this._delegate = createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(
        {
          url: options.url,
          timeoutMillis: options.timeoutMillis,
          compression: options.compression as HttpOptions['compression'],
          concurrencyLimit: DELEGATE_CONCURRENCY,
        },
        signal.sdkSignal,
        signal.httpPath.slice(1),
        CONTENT_TYPE,
      ),
      serializer,
      signal.httpComponentType,
      { name: signal.itemName, countItems: (request) => request.records },
      undefined, // no SDK self-observability metrics: flowtap counts exports itself (ExportStats)
    );
  }

  send(request: Uint8Array, records: number): Promise<SendResult> {
    return new Promise((resolve) => {
      try {
        this._delegate.export({ bytes: request, records }, (result) => {
          const response = this._lastResponse;
          this._lastResponse = undefined;
          if (result.code === ExportResultCode.SUCCESS) {
            resolve(acceptedResult(this._signal, response, 'receiver'));
          } else {
            resolve({ ok: false, ...classifyHttpError(result.error ?? new Error('export failed'), this._url, this._signal) });
          }
        });
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        resolve({ ok: false, retryable: true, error });
      }
    });
  }

  shutdown(): Promise<void> {
    return this._delegate.shutdown();
  }
}
