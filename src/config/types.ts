/** What the configuration is: the typed values flowtap runs with. */
import type { DirectionFilter, PortRange } from '../kernel/filter';
import type { ConsoleFormat } from '../export/console/console';
import type { ReplaySpec } from '../kernel/replay';
import type { LogLevel } from '../runtime/log';
import type { HostPort } from './values';

export type { HostPort } from './values';

export const EXPORTERS = ['otlp', 'console', 'none'] as const;
export type Exporter = (typeof EXPORTERS)[number];

/** OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL values flowtap sends records with; grpc is the default (docs/configuration.md says why). */
export const PROTOCOLS = ['grpc', 'http/protobuf'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const SPAN_EXPORTERS = ['otlp', 'none'] as const;
export type SpanExporter = (typeof SPAN_EXPORTERS)[number];

export const COMPRESSIONS = ['gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export const METRICS_EXPORTERS = ['otlp', 'none'] as const;
export type MetricsExporter = (typeof METRICS_EXPORTERS)[number];

export interface BatchConfig {
  /** OTEL_BLRP_SCHEDULE_DELAY: ms between two exports. */
  scheduledDelayMillis: number;
  /** OTEL_BLRP_EXPORT_TIMEOUT: ms one export may take (console path; an OTLP request is bounded by OTEL_EXPORTER_OTLP_TIMEOUT). */
  exportTimeoutMillis: number;
  /** OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: records per export, <= Config.queueMaxRecords. */
  maxExportBatchSize: number;
}

export interface OtlpConfig {
  /** OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL: the records'. */
  protocol: Protocol;
  /** OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL: the spans' (--spans otlp). */
  tracesProtocol: Protocol;
  /** OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT: ms one OTLP request may take. */
  timeoutMillis: number;
  /** OTEL_EXPORTER_OTLP_(LOGS_)COMPRESSION. */
  compression: Compression;
}

export interface MetricsExportConfig {
  /** OTEL_METRIC_EXPORT_INTERVAL: ms between two metric exports. */
  intervalMillis: number;
  /** OTEL_METRIC_EXPORT_TIMEOUT: ms one collection and export may take (at most the interval). */
  timeoutMillis: number;
  /** OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, else the records' endpoint. */
  endpoint: string;
}

/** The options that have a flag (the option table, options.ts). */
export interface FlagOptions {
  /** cgroup v2 directory watched, recursively (`--cgroup pod` already resolved to a directory). */
  cgroup: string;
  exporter: Exporter;
  /** Where records go (otlp exporter only): the gRPC endpoint, or the full OTLP/HTTP URL (…/v1/logs). */
  endpoint: string;
  ringBufferBytes: number;
  /** Bytes waiting in the ring buffer before the reader is woken; 0 = every record. */
  ringBufferWakeupBytes: number;
  ringBufferPollMillis: number;
  flowTableEntries: number;
  /** How long SIGTERM/SIGINT may take to detach and flush before exiting anyway. */
  shutdownTimeoutMillis: number;
  logLevel: LogLevel;
  /** Names the DNS cache holds across all addresses. */
  dnsCacheNames: number;
  /** Names the DNS cache holds for one address. */
  dnsNamesPerAddress: number;
  /** Seconds a TTL-0 DNS answer names the flows that begin after it; 0: never used. */
  dnsZeroTtlSeconds: number;
  /** Report only flows in this direction (filter.ts; applied in the kernel). */
  direction: DirectionFilter;
  /** Report only flows whose responder port is in these ranges (empty: any port). */
  includePorts: PortRange[];
  /** Never report flows whose responder port is in these ranges. */
  excludePorts: PortRange[];
  /** Report only flows whose peer address is under one of these prefixes (empty: any address). */
  includeCidrs: string[];
  /** Never report flows whose peer address is under one of these prefixes. */
  excludeCidrs: string[];
  /** flowtap's own metrics: exported over OTLP/gRPC, or not at all. */
  metrics: MetricsExporter;
  /** Where /healthz and /readyz are served; undefined: nowhere (no listening socket). */
  healthAddress: HostPort | undefined;
  /** /readyz fails once every record export failed for longer than this. */
  readyExportFailureSeconds: number;
  /** Seconds between two `summary` log lines; 0: none. */
  summaryIntervalSeconds: number;
  /**
   * Records the export queue holds at most, waiting for export or for a retry
   * (--queue-max-records; OTEL_BLRP_MAX_QUEUE_SIZE means the same); beyond it
   * the oldest are dropped and counted.
   */
  queueMaxRecords: number;
  /** A synthetic event source instead of the kernel programs (benchmarks, tests); undefined: the kernel. */
  replay: ReplaySpec | undefined;
  /** Each ended flow also as a span, over OTLP (src/export/spans.ts); 'none': no spans. */
  spans: SpanExporter;
  /** Where spans go; undefined: the records' endpoint. */
  spansEndpoint: string | undefined;
  /** `--exporter console`: JSON lines (for programs) or aligned text (for a person). */
  consoleFormat: ConsoleFormat;
}

export interface Config extends FlagOptions {
  otlp: OtlpConfig;
  batch: BatchConfig;
  metricsExport: MetricsExportConfig;
}

/** Where each flag option's value came from: "--flag", the variable, or "--flag" for a default. */
export type ConfigSources = { readonly [K in keyof FlagOptions]: string };
