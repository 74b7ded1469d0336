/**
 * The OpenTelemetry SDK variables flowtap reads (no flags): OTEL_BLRP_*,
 * OTEL_EXPORTER_OTLP_(LOGS_|METRICS_)* and OTEL_METRIC_EXPORT_*. They are
 * checked here and passed to the exporters explicitly, because the SDK only
 * warns through diag (silent by default) and falls back to its defaults.
 *
 * OTEL_EXPORTER_OTLP_(LOGS_|METRICS_)HEADERS, _CERTIFICATE, _CLIENT_KEY,
 * _CLIENT_CERTIFICATE and _INSECURE are read by the gRPC exporter itself from
 * process.env on construction (signal-specific before generic), so here they
 * are only checked: the headers' syntax, the booleans, and that each TLS
 * file can be read, so that a mistake stops flowtap at start and not at its
 * first export. Header values are never echoed: they may hold credentials.
 */
import { firstEnv } from './argv';
import type { Env } from './env';
import { ConfigError, invalid } from './error';
import { LIMITS, type Limit } from './limits';
import { COMPRESSIONS, PROTOCOLS, type BatchConfig, type MetricsExportConfig, type OtlpConfig, type Protocol } from './types';
import { boolean, endpoint, integer, oneOf, type Parser } from './values';

/** One SDK environment variable (no flag). */
export interface EnvSpec<T> {
  /** First set wins (signal-specific before generic). */
  env: readonly string[];
  description: string;
  default: T;
  /** The range of a numeric variable (limits.ts). */
  limit?: Limit;
  parse: Parser<T>;
}

export const BATCH_ENV: { readonly [K in keyof BatchConfig]: EnvSpec<BatchConfig[K]> } = {
  scheduledDelayMillis: {
    env: ['OTEL_BLRP_SCHEDULE_DELAY'],
    description: 'ms between two exports',
    default: LIMITS.scheduledDelayMillis.default,
    limit: LIMITS.scheduledDelayMillis,
    parse: integer(LIMITS.scheduledDelayMillis),
  },
  exportTimeoutMillis: {
    env: ['OTEL_BLRP_EXPORT_TIMEOUT'],
    description: 'ms one export may take',
    default: LIMITS.exportTimeoutMillis.default,
    limit: LIMITS.exportTimeoutMillis,
    parse: integer(LIMITS.exportTimeoutMillis),
  },
  maxExportBatchSize: {
    env: ['OTEL_BLRP_MAX_EXPORT_BATCH_SIZE'],
    description: 'records per export, at most --queue-max-records (flowtap default; the SDK default is 512)',
    default: LIMITS.maxExportBatchSize.default,
    limit: LIMITS.maxExportBatchSize,
    parse: integer(LIMITS.maxExportBatchSize),
  },
};

export const OTLP_ENV: { readonly [K in keyof OtlpConfig]: EnvSpec<OtlpConfig[K]> } = {
  protocol: {
    env: ['OTEL_EXPORTER_OTLP_LOGS_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'],
    description: 'grpc or http/protobuf (http/protobuf: OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/logs appended, default http://localhost:4318)',
    default: 'grpc',
    parse: oneOf(PROTOCOLS),
  },
  tracesProtocol: {
    env: ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'],
    description: 'grpc or http/protobuf, for --spans otlp (http/protobuf: OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces appended)',
    default: 'grpc',
    parse: oneOf(PROTOCOLS),
  },
  timeoutMillis: {
    env: ['OTEL_EXPORTER_OTLP_LOGS_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'],
    description: 'ms one OTLP request may take',
    default: LIMITS.otlpTimeoutMillis.default,
    limit: LIMITS.otlpTimeoutMillis,
    parse: integer(LIMITS.otlpTimeoutMillis),
  },
  compression: {
    env: ['OTEL_EXPORTER_OTLP_LOGS_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION'],
    description: 'gzip or none',
    default: 'none',
    parse: oneOf(COMPRESSIONS),
  },
};

/** Metric export, read when --metrics is otlp. */
export const METRICS_ENV: { readonly [K in keyof MetricsExportConfig]: EnvSpec<MetricsExportConfig[K] | undefined> } = {
  intervalMillis: {
    env: ['OTEL_METRIC_EXPORT_INTERVAL'],
    description: 'ms between two metric exports',
    default: LIMITS.metricExportIntervalMillis.default,
    limit: LIMITS.metricExportIntervalMillis,
    parse: integer(LIMITS.metricExportIntervalMillis),
  },
  timeoutMillis: {
    env: ['OTEL_METRIC_EXPORT_TIMEOUT'],
    description: 'ms one metric export may take, at most OTEL_METRIC_EXPORT_INTERVAL',
    default: LIMITS.metricExportTimeoutMillis.default,
    limit: LIMITS.metricExportTimeoutMillis,
    parse: integer(LIMITS.metricExportTimeoutMillis),
  },
  endpoint: {
    env: ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'],
    description: 'where metrics go',
    default: undefined,
    parse: endpoint,
  },
};

function resolveEnv<T>(spec: EnvSpec<T>, env: Env): T {
  const found = firstEnv(env, spec.env);
  return found === undefined ? spec.default : spec.parse(found.raw, found.name);
}

/** The batch settings; `queueMaxRecords` and where it came from bound the batch size. */
export function batchConfig(env: Env, queueMaxRecords: number, queueSource: string): BatchConfig {
  const batch = {
    scheduledDelayMillis: resolveEnv(BATCH_ENV.scheduledDelayMillis, env),
    exportTimeoutMillis: resolveEnv(BATCH_ENV.exportTimeoutMillis, env),
    maxExportBatchSize: resolveEnv(BATCH_ENV.maxExportBatchSize, env),
  };
  if (batch.maxExportBatchSize > queueMaxRecords) {
    throw invalid('OTEL_BLRP_MAX_EXPORT_BATCH_SIZE', String(batch.maxExportBatchSize), `at most ${queueSource} (${queueMaxRecords})`);
  }
  return batch;
}

/** The OTLP settings of the records' export and the spans' (read only when one is OTLP; the spans' protocol only with `spans`). */
export function otlpConfig(env: Env, spans: boolean): OtlpConfig {
  return {
    protocol: resolveEnv(OTLP_ENV.protocol, env),
    tracesProtocol: spans ? resolveEnv(OTLP_ENV.tracesProtocol, env) : OTLP_ENV.tracesProtocol.default,
    timeoutMillis: resolveEnv(OTLP_ENV.timeoutMillis, env),
    compression: resolveEnv(OTLP_ENV.compression, env),
  };
}

/** The OTLP settings of the records' export when it is not OTLP: the defaults, unread. */
export const OTLP_DEFAULTS: OtlpConfig = {
  protocol: OTLP_ENV.protocol.default,
  tracesProtocol: OTLP_ENV.tracesProtocol.default,
  timeoutMillis: OTLP_ENV.timeoutMillis.default,
  compression: OTLP_ENV.compression.default,
};

/** The OTLP/HTTP receiver's port by specification; OTEL_EXPORTER_OTLP_ENDPOINT's default for http/protobuf. */
export const OTLP_HTTP_ENDPOINT_DEFAULT = 'http://localhost:4318';
const OTLP_HTTP_LOGS_PATH = 'v1/logs';
const OTLP_HTTP_TRACES_PATH = 'v1/traces';

/**
 * Where the records go, by the OTLP exporter specification's rules: for grpc
 * the endpoint as resolved; for http/protobuf, --endpoint and
 * OTEL_EXPORTER_OTLP_LOGS_ENDPOINT are the URL as given, while
 * OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318) is a base URL
 * that gets /v1/logs appended. `givenBy`: the flag or variable the
 * resolved endpoint came from (undefined: the default).
 */
export function logsEndpoint(env: Env, protocol: Protocol, endpoint: string, givenBy: string | undefined): string {
  if (protocol === 'grpc' || givenBy === '--endpoint' || givenBy === 'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT') return endpoint;
  const base = firstEnv(env, ['OTEL_EXPORTER_OTLP_ENDPOINT'])?.raw.trim() ?? OTLP_HTTP_ENDPOINT_DEFAULT;
  return `${base.endsWith('/') ? base : `${base}/`}${OTLP_HTTP_LOGS_PATH}`;
}

/** The metric export settings when metrics are off: the defaults, unread. */
export function metricsExportDefaults(recordsEndpoint: string): MetricsExportConfig {
  return { intervalMillis: LIMITS.metricExportIntervalMillis.default, timeoutMillis: LIMITS.metricExportTimeoutMillis.default, endpoint: recordsEndpoint };
}

/**
 * Where the spans go over http/protobuf: --spans-endpoint or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given (`given`); else beside the
 * records (their …/v1/logs URL with /v1/traces instead); else
 * OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318) with
 * /v1/traces appended. Over grpc: `given`, else the records' endpoint
 * (undefined here).
 */
export function tracesEndpoint(env: Env, protocol: Protocol, given: string | undefined, recordsEndpoint: string): string | undefined {
  if (protocol === 'grpc' || given !== undefined) return given;
  const logsSuffix = `/${OTLP_HTTP_LOGS_PATH}`;
  if (recordsEndpoint.endsWith(logsSuffix)) return `${recordsEndpoint.slice(0, -logsSuffix.length)}/${OTLP_HTTP_TRACES_PATH}`;
  const base = firstEnv(env, ['OTEL_EXPORTER_OTLP_ENDPOINT'])?.raw.trim() ?? OTLP_HTTP_ENDPOINT_DEFAULT;
  return `${base.endsWith('/') ? base : `${base}/`}${OTLP_HTTP_TRACES_PATH}`;
}

/** OTEL_METRIC_EXPORT_* and the metrics endpoint (default: the records' endpoint when they go over gRPC). */
export function metricsExport(env: Env, recordsEndpoint: string | undefined): MetricsExportConfig {
  const intervalMillis = resolveEnv(METRICS_ENV.intervalMillis, env) ?? LIMITS.metricExportIntervalMillis.default;
  const timeout = firstEnv(env, METRICS_ENV.timeoutMillis.env);
  let timeoutMillis = resolveEnv(METRICS_ENV.timeoutMillis, env) ?? LIMITS.metricExportTimeoutMillis.default;
  if (timeoutMillis > intervalMillis) {
    // The SDK refuses an explicit timeout longer than the interval; the default one is clamped.
    if (timeout !== undefined) {
      throw invalid(timeout.name, timeout.raw, `at most OTEL_METRIC_EXPORT_INTERVAL (${intervalMillis})`);
    }
    timeoutMillis = intervalMillis;
  }
  const endpoint = resolveEnv(METRICS_ENV.endpoint, env) ?? recordsEndpoint;
  if (endpoint === undefined) {
    throw new ConfigError(
      '--metrics otlp with records over http/protobuf needs OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: a gRPC endpoint for the metrics (flowtap exports them over gRPC only)',
    );
  }
  return { intervalMillis, timeoutMillis, endpoint };
}

/** Which OTLP export: the records (LOGS), the flows as spans (TRACES) or flowtap's own metrics (METRICS). */
export type OtlpSignal = 'LOGS' | 'TRACES' | 'METRICS';

/** The signal-specific variable, then the generic one: OTEL_EXPORTER_OTLP_LOGS_HEADERS, OTEL_EXPORTER_OTLP_HEADERS. */
export function signalEnv(signal: OtlpSignal, suffix: string): readonly string[] {
  return [`OTEL_EXPORTER_OTLP_${signal}_${suffix}`, `OTEL_EXPORTER_OTLP_${suffix}`];
}

/** The TLS files the gRPC exporter reads. */
const TLS_FILES = ['CERTIFICATE', 'CLIENT_KEY', 'CLIENT_CERTIFICATE'] as const;

/** Reads a file for the TLS check; throws an errno error when it cannot. */
export type ReadFile = (path: string) => Buffer;

/**
 * The transport variables of one OTLP export: the metrics' protocol
 * (flowtap exports its own metrics over gRPC only, so another must not be
 * ignored silently; the records' and spans' are in OTLP_ENV), the
 * headers, the insecure flag and the TLS files (`readFile` reads them;
 * without it they are not opened).
 */
export function checkTransport(env: Env, signal: OtlpSignal, readFile: ReadFile | undefined): void {
  const protocol = signal === 'METRICS' ? firstEnv(env, signalEnv(signal, 'PROTOCOL')) : undefined;
  if (protocol !== undefined && protocol.raw.trim().toLowerCase() !== 'grpc') {
    throw invalid(
      protocol.name,
      protocol.raw,
      'grpc (flowtap exports its own metrics over gRPC only; set OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc or --metrics none)',
    );
  }
  const headers = firstEnv(env, signalEnv(signal, 'HEADERS'));
  if (headers !== undefined) checkHeaders(headers.name, headers.raw);
  const insecure = firstEnv(env, signalEnv(signal, 'INSECURE'));
  if (insecure !== undefined) boolean(insecure.raw, insecure.name);
  if (readFile === undefined) return;
  for (const suffix of TLS_FILES) {
    const file = firstEnv(env, signalEnv(signal, suffix));
    if (file !== undefined) checkReadable(file.name, file.raw, readFile);
  }
}

/** W3C-baggage-like "key=value,key2=value2" with percent-encoded values; the values are never shown. */
export function checkHeaders(name: string, raw: string): void {
  const entries = raw.split(',');
  entries.forEach((entry, i) => {
    if (entry.trim() === '') return;
    const eq = entry.indexOf('=');
    const key = eq < 0 ? '' : entry.slice(0, eq).trim();
    const why =
      eq < 0
        ? 'is not key=value'
        : !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)
          ? 'has no valid header name before the ='
          : !decodable(entry.slice(eq + 1).trim())
            ? 'has a value that is not percent-encoded'
            : undefined;
    if (why !== undefined) {
      throw new ConfigError(
        `invalid ${name}: entry ${i + 1} of ${entries.length} ${why} (expected key=value,key2=value2; the value is not shown, it may hold credentials)`,
      );
    }
  });
}

function decodable(value: string): boolean {
  try {
    decodeURIComponent(value);
    return true;
  } catch {
    return false;
  }
}

function checkReadable(name: string, file: string, readFile: ReadFile): void {
  let text: Buffer;
  try {
    text = readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'a directory, not a file' }[err.code ?? ''] ?? err.code ?? err.message;
    throw new ConfigError(`cannot read ${name} '${file}': ${why}`);
  }
  if (text.length === 0) throw new ConfigError(`cannot use ${name} '${file}': the file is empty`);
}
