/**
 * Configuration: one option table gives each flag, its environment variable(s),
 * its default and its parser. Precedence: defaults < env < flags. Everything
 * here is pure: argv, env and the text of /proc/self/mountinfo come in as
 * arguments; bad input throws a ConfigError naming the flag or variable, the
 * bad value and what was expected.
 *
 * Flags are parsed with node:util parseArgs, not commander: commander 15 is
 * ESM-only, and Jest (CommonJS, no --experimental-vm-modules) cannot load it,
 * so nothing importing it could be unit-tested.
 *
 * Standard SDK variables: OTEL_BLRP_* and OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT /
 * _COMPRESSION are validated here and passed to the SDK explicitly, because
 * the SDK only warns through diag (silent by default) and falls back to its
 * defaults. OTEL_EXPORTER_OTLP_(LOGS_)HEADERS, _CERTIFICATE, _CLIENT_KEY,
 * _CLIENT_CERTIFICATE and _INSECURE are left to the exporter: in
 * @opentelemetry/otlp-grpc-exporter-base 0.301.0
 * (configuration/otlp-grpc-env-configuration) the gRPC exporter reads them
 * from process.env itself, signal-specific before generic, on construction.
 */
import { DNS_CACHE_DEFAULTS } from '../enrich/dns/cache';
import { parseArgs } from 'node:util';
import { LOG_LEVELS, type LogLevel } from '../runtime/log';
import { envString, type Env } from './env';
import { parseReplaySpec, MAX_REPLAY_RATE, type ReplaySpec } from '../kernel/replay';
import { parseResourceAttributes } from '../record/resource';
import { DIRECTIONS, FilterSyntaxError, parseCidrList, parsePortList, type DirectionFilter, type PortRange } from '../kernel/filter';
import { CONSOLE_FORMATS, type ConsoleFormat } from '../export/console/console';
import { cgroup2Mounts, findPodCgroup, PodCgroupError, POD_CGROUP } from './podcgroup';

/**
 * A bad flag or variable. Its message is always one line: control characters
 * in it (a value may hold a newline) are written as escapes, and a very long
 * value is cut.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';

  constructor(message: string) {
    super(oneLine(message));
  }
}

const MAX_MESSAGE_CHARS = 1000;

function oneLine(message: string): string {
  const escaped = message.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
  return escaped.length > MAX_MESSAGE_CHARS ? `${escaped.slice(0, MAX_MESSAGE_CHARS)}…` : escaped;
}

export const EXPORTERS = ['otlp', 'console', 'none'] as const;
export type Exporter = (typeof EXPORTERS)[number];

export const SPAN_EXPORTERS = ['otlp', 'none'] as const;
export type SpanExporter = (typeof SPAN_EXPORTERS)[number];

export const COMPRESSIONS = ['gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export interface BatchConfig {
  /** OTEL_BLRP_SCHEDULE_DELAY: ms between two exports. */
  scheduledDelayMillis: number;
  /** OTEL_BLRP_EXPORT_TIMEOUT: ms one export may take (console path; an OTLP request is bounded by OTEL_EXPORTER_OTLP_TIMEOUT). */
  exportTimeoutMillis: number;
  /** OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: records per export, <= Config.queueMaxRecords. */
  maxExportBatchSize: number;
}

export interface OtlpConfig {
  /** OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT: ms one gRPC export may take. */
  timeoutMillis: number;
  /** OTEL_EXPORTER_OTLP_(LOGS_)COMPRESSION. */
  compression: Compression;
}

export interface Config {
  /** cgroup v2 directory watched, recursively (`--cgroup pod` already resolved to a directory). */
  cgroup: string;
  exporter: Exporter;
  /** OTLP/gRPC endpoint URL (otlp exporter only). */
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
  otlp: OtlpConfig;
  batch: BatchConfig;
  metricsExport: MetricsExportConfig;
}

export const METRICS_EXPORTERS = ['otlp', 'none'] as const;
export type MetricsExporter = (typeof METRICS_EXPORTERS)[number];

/** A listen address: host ('' = every address) and port (0 = any free one). */
export interface HostPort {
  host: string;
  port: number;
}

export interface MetricsExportConfig {
  /** OTEL_METRIC_EXPORT_INTERVAL: ms between two metric exports. */
  intervalMillis: number;
  /** OTEL_METRIC_EXPORT_TIMEOUT: ms one collection and export may take (at most the interval). */
  timeoutMillis: number;
  /** OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, else the records' endpoint. */
  endpoint: string;
}

/** What a default may depend on. */
export interface DefaultContext {
  /** Text of /proc/self/mountinfo, if it could be read. */
  mountinfo: string | undefined;
  /** The records' exporter, once resolved (the --metrics default follows it). */
  exporter?: Exporter;
}

/** What `--cgroup pod` reads from the system (see podcgroup.ts); the CLI passes it in. */
export interface PodView {
  /** Text of /proc/self/cgroup, if it could be read. */
  procSelfCgroup: string | undefined;
  /** Whether `dir` is an existing directory. */
  isDirectory(dir: string): boolean;
}

/** One flag, its environment variables (first set wins) and its default. */
export interface OptionSpec<T> {
  /** Long flag name without the dashes. */
  flag: string;
  /** Shown in --help after the flag. */
  valueName: string;
  env: readonly string[];
  description: string;
  default: T | ((ctx: DefaultContext) => T);
  /** Default as shown in --help, when not the value itself. */
  defaultText?: string;
  /** Parses a flag or env value; `name` is "--flag" or the variable. */
  parse(raw: string, name: string): T;
}

/** One SDK environment variable (no flag). */
export interface EnvSpec<T> {
  /** First set wins (signal-specific before generic). */
  env: readonly string[];
  description: string;
  default: T;
  parse(raw: string, name: string): T;
}

type FlagOptions = Omit<Config, 'otlp' | 'batch' | 'metricsExport'>;

/** Largest delay setTimeout honours. */
const MAX_MILLIS = 2_147_483_647;
const MAX_SECONDS = Math.floor(MAX_MILLIS / 1000);
const MIN_RING_BUFFER_BYTES = 4096;
const MAX_RING_BUFFER_BYTES = 1 << 30;
const MAX_FLOW_TABLE_ENTRIES = 1 << 24;
/**
 * A 60 s collector outage at 2 000 flows/s is 120 000 records; this holds
 * that with room to spare (memory: docs/benchmarks.md, export queue).
 */
const QUEUE_MAX_RECORDS_DEFAULT = 200_000;
const MAX_QUEUE_RECORDS = 100_000_000;

function invalid(name: string, raw: string, expected: string): ConfigError {
  return new ConfigError(`invalid ${name} '${raw}': expected ${expected}`);
}

function oneOf<T extends string>(values: readonly T[]): (raw: string, name: string) => T {
  return (raw, name) => {
    const v = raw.trim().toLowerCase();
    if ((values as readonly string[]).includes(v)) return v as T;
    throw invalid(name, raw, `one of ${values.join(', ')}`);
  };
}

function integer(min: number, max: number, expected: string): (raw: string, name: string) => number {
  return (raw, name) => {
    const v = raw.trim();
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(name, raw, expected);
    return n;
  };
}

function parseRingBufferBytes(raw: string, name: string): number {
  const expected = `a power of two from ${MIN_RING_BUFFER_BYTES} to ${MAX_RING_BUFFER_BYTES} (bytes)`;
  const n = integer(MIN_RING_BUFFER_BYTES, MAX_RING_BUFFER_BYTES, expected)(raw, name);
  if ((n & (n - 1)) !== 0) throw invalid(name, raw, expected);
  return n;
}

function parseEndpoint(raw: string, name: string): string {
  const expected = 'an http:// or https:// URL, e.g. http://localhost:4317';
  const v = raw.trim();
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw invalid(name, raw, expected);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw invalid(name, raw, expected);
  }
  return v;
}

/** "host:port", "[v6]:port" or ":port" (every address); port 0 picks a free one. */
function parseHostPort(raw: string, name: string): HostPort {
  const expected = 'host:port, [ipv6]:port or :port, with a port from 0 to 65535';
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]*)):(\d{1,5})$/.exec(raw.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65_535)) throw invalid(name, raw, expected);
  return { host: m[1] ?? m[2], port };
}

/** A filter list parser whose errors name the flag or variable. */
function filterList<T>(parse: (raw: string) => T, expected: string): (raw: string, name: string) => T {
  return (raw, name) => {
    try {
      return parse(raw);
    } catch (e) {
      if (e instanceof FilterSyntaxError) throw new ConfigError(`invalid ${name} '${raw}': ${e.message}; expected ${expected}`);
      throw e;
    }
  };
}

const PORT_LIST = 'comma-separated ports and ranges, e.g. 22,8000-8100';
const CIDR_LIST = 'comma-separated IPv4/IPv6 prefixes, e.g. 10.0.0.0/8,fd00::/8';

function parseDirectory(raw: string, name: string): string {
  if (raw.trim() === '') throw invalid(name, raw, 'a cgroup v2 directory');
  return raw;
}

/**
 * The cgroup v2 mount point in the text of /proc/self/mountinfo: the first
 * cgroup2 mount of the hierarchy's root ("/sys/fs/cgroup" on unified hosts,
 * "/sys/fs/cgroup/unified" on hybrid ones), else the first cgroup2 mount.
 */
export function findCgroup2Mount(mountinfo: string): string | undefined {
  const mounts = cgroup2Mounts(mountinfo);
  return (mounts.find((m) => m.root === '/') ?? mounts[0])?.mountPoint;
}

function defaultCgroup(ctx: DefaultContext): string {
  const mount = ctx.mountinfo === undefined ? undefined : findCgroup2Mount(ctx.mountinfo);
  if (mount === undefined) {
    throw new ConfigError('no cgroup v2 mount found in /proc/self/mountinfo: pass --cgroup <dir> or set FLOWTAP_CGROUP');
  }
  return mount;
}

/** The option table: every flag, its env names and its default. */
export const OPTIONS: { readonly [K in keyof FlagOptions]: OptionSpec<FlagOptions[K]> } = {
  cgroup: {
    flag: 'cgroup',
    valueName: '<dir>',
    env: ['FLOWTAP_CGROUP'],
    description:
      "cgroup v2 directory to watch, with everything below it; 'pod': the parent of flowtap's own cgroup, " +
      'i.e. the pod when flowtap runs as a sidecar container (in a private cgroup namespace it needs the ' +
      "host's cgroup v2 hierarchy mounted, e.g. hostPath /sys/fs/cgroup at /host/sys/fs/cgroup, and " +
      'k8s.pod.uid in OTEL_RESOURCE_ATTRIBUTES)',
    default: defaultCgroup,
    defaultText: 'the cgroup v2 mount root',
    parse: parseDirectory,
  },
  exporter: {
    flag: 'exporter',
    valueName: 'otlp|console|none',
    env: ['OTEL_LOGS_EXPORTER'],
    description: 'where records go: OTLP/gRPC, JSON lines on stdout, or nowhere',
    default: 'otlp',
    parse: oneOf(EXPORTERS),
  },
  endpoint: {
    flag: 'endpoint',
    valueName: '<url>',
    env: ['OTEL_EXPORTER_OTLP_LOGS_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT'],
    description: 'OTLP/gRPC endpoint of the collector',
    default: 'http://localhost:4317',
    parse: parseEndpoint,
  },
  ringBufferBytes: {
    flag: 'ring-buffer-bytes',
    valueName: '<n>',
    env: ['FLOWTAP_RING_BUFFER_BYTES'],
    description: 'size of the kernel ring buffer (a power of two)',
    default: 8_388_608,
    parse: parseRingBufferBytes,
  },
  ringBufferWakeupBytes: {
    flag: 'ring-buffer-wakeup-bytes',
    valueName: '<n>',
    env: ['FLOWTAP_RING_BUFFER_WAKEUP_BYTES'],
    description: 'wake the reader once this many bytes wait in the ring buffer (else at its next poll, --ring-buffer-poll-millis); 0 = for every record (lowest latency, most CPU)',
    default: 65_536,
    parse: integer(0, 1_073_741_824, 'an integer from 0 to 1073741824 (bytes)'),
  },
  ringBufferPollMillis: {
    flag: 'ring-buffer-poll-millis',
    valueName: '<ms>',
    env: ['FLOWTAP_RING_BUFFER_POLL_MILLIS'],
    description: 'the reader reads the ring buffer at least this often: how long a record can wait at low traffic (lower: less latency, a little more CPU)',
    default: 50,
    parse: integer(1, 1000, 'an integer from 1 to 1000 (milliseconds)'),
  },
  flowTableEntries: {
    flag: 'flow-table-entries',
    valueName: '<n>',
    env: ['FLOWTAP_FLOW_TABLE_ENTRIES'],
    description: 'flows tracked at once in the kernel (LRU)',
    default: 65_536,
    parse: integer(1, MAX_FLOW_TABLE_ENTRIES, `an integer from 1 to ${MAX_FLOW_TABLE_ENTRIES}`),
  },
  shutdownTimeoutMillis: {
    flag: 'shutdown-timeout-millis',
    valueName: '<ms>',
    env: ['FLOWTAP_SHUTDOWN_TIMEOUT_MILLIS'],
    description: 'on SIGTERM/SIGINT, exit after this long even if records are not flushed',
    default: 5000,
    parse: integer(1, MAX_MILLIS, `an integer from 1 to ${MAX_MILLIS} (milliseconds)`),
  },
  dnsCacheNames: {
    flag: 'dns-cache-names',
    valueName: '<n>',
    env: ['FLOWTAP_DNS_CACHE_NAMES'],
    description: 'names the DNS cache holds (oldest addresses are evicted first)',
    default: DNS_CACHE_DEFAULTS.maxNames,
    parse: integer(1, 10_000_000, 'an integer from 1 to 10000000'),
  },
  dnsNamesPerAddress: {
    flag: 'dns-names-per-address',
    valueName: '<n>',
    env: ['FLOWTAP_DNS_NAMES_PER_ADDRESS'],
    description: 'names the DNS cache holds for one IP address (newest answers kept)',
    default: DNS_CACHE_DEFAULTS.maxNamesPerIp,
    parse: integer(1, 1000, 'an integer from 1 to 1000'),
  },
  direction: {
    flag: 'direction',
    valueName: 'incoming|outgoing|both',
    env: ['FLOWTAP_DIRECTION'],
    description: 'report only flows the watched sockets accepted (incoming) or opened (outgoing)',
    default: 'both',
    parse: oneOf(DIRECTIONS),
  },
  includePorts: {
    flag: 'include-ports',
    valueName: '<ports>',
    env: ['FLOWTAP_INCLUDE_PORTS'],
    description: "report only flows whose responder (server) port is listed, e.g. 443,8000-8100",
    default: [],
    defaultText: 'any port',
    parse: filterList(parsePortList, PORT_LIST),
  },
  excludePorts: {
    flag: 'exclude-ports',
    valueName: '<ports>',
    env: ['FLOWTAP_EXCLUDE_PORTS'],
    description: 'never report flows whose responder (server) port is listed, e.g. health checks: 8081,9090-9099',
    default: [],
    defaultText: 'none',
    parse: filterList(parsePortList, PORT_LIST),
  },
  includeCidrs: {
    flag: 'include-cidrs',
    valueName: '<cidrs>',
    env: ['FLOWTAP_INCLUDE_CIDRS'],
    description: "report only flows whose peer address (the other end) is in one of these prefixes",
    default: [],
    defaultText: 'any address',
    parse: filterList(parseCidrList, CIDR_LIST),
  },
  excludeCidrs: {
    flag: 'exclude-cidrs',
    valueName: '<cidrs>',
    env: ['FLOWTAP_EXCLUDE_CIDRS'],
    description: 'never report flows whose peer address is in one of these prefixes (wins over --include-cidrs)',
    default: [],
    defaultText: 'none',
    parse: filterList(parseCidrList, CIDR_LIST),
  },
  logLevel: {
    flag: 'log-level',
    valueName: 'debug|info|warn|error',
    env: ['FLOWTAP_LOG_LEVEL'],
    description: "flowtap's own log lines (JSON on stderr) at this level and above",
    default: 'info',
    parse: oneOf(LOG_LEVELS),
  },
  metrics: {
    flag: 'metrics',
    valueName: 'otlp|none',
    env: ['OTEL_METRICS_EXPORTER'],
    description: "flowtap's own metrics (counts of flows, exports, drops, DNS cache), OTLP/gRPC to the same endpoint",
    default: (ctx) => (ctx.exporter === 'otlp' ? 'otlp' : 'none'),
    defaultText: 'otlp with --exporter otlp, else none',
    parse: oneOf(METRICS_EXPORTERS),
  },
  healthAddress: {
    flag: 'health-address',
    valueName: '<host:port>',
    env: ['FLOWTAP_HEALTH_ADDRESS'],
    description: 'serve GET /healthz and /readyz (JSON) here, e.g. 127.0.0.1:8080 or :8080',
    default: undefined,
    defaultText: 'off (no listening socket)',
    parse: parseHostPort,
  },
  readyExportFailureSeconds: {
    flag: 'ready-export-failure-seconds',
    valueName: '<s>',
    env: ['FLOWTAP_READY_EXPORT_FAILURE_SECONDS'],
    description: '/readyz fails once every record export failed for longer than this',
    default: 60,
    parse: integer(1, MAX_SECONDS, `an integer from 1 to ${MAX_SECONDS} (seconds)`),
  },
  summaryIntervalSeconds: {
    flag: 'summary-interval-seconds',
    valueName: '<s>',
    env: ['FLOWTAP_SUMMARY_INTERVAL_SECONDS'],
    description: "log a 'summary' line this often: flows begun and ended, records exported, failed and dropped since the last one, and whether exports work (0: never)",
    default: 0,
    defaultText: '0 (off)',
    parse: integer(0, MAX_SECONDS, `an integer from 0 to ${MAX_SECONDS} (seconds; 0 turns it off)`),
  },
  queueMaxRecords: {
    flag: 'queue-max-records',
    valueName: '<n>',
    env: ['FLOWTAP_QUEUE_MAX_RECORDS', 'OTEL_BLRP_MAX_QUEUE_SIZE'],
    description:
      'records held for export, also while the collector is unreachable (about 0.6 KB each); ' +
      'beyond it the oldest are dropped and counted',
    default: QUEUE_MAX_RECORDS_DEFAULT,
    parse: integer(1, MAX_QUEUE_RECORDS, `an integer from 1 to ${MAX_QUEUE_RECORDS}`),
  },
  replay: {
    flag: 'replay',
    valueName: 'synthetic:<rate>',
    env: ['FLOWTAP_REPLAY'],
    description: 'benchmarks and tests: no kernel programs; synthetic flow events at <rate> per second go through the same pipeline',
    default: undefined,
    defaultText: 'off (events come from the kernel)',
    parse: parseReplay,
  },
  spans: {
    flag: 'spans',
    valueName: 'otlp|none',
    env: ['OTEL_TRACES_EXPORTER'],
    description:
      'also export each ended flow as one span (CLIENT outgoing, SERVER incoming; error status on a reset) over OTLP/gRPC; ' +
      'a flow still open has no span until it ends',
    default: 'none',
    parse: oneOf(SPAN_EXPORTERS),
  },
  spansEndpoint: {
    flag: 'spans-endpoint',
    valueName: '<url>',
    env: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
    description: 'OTLP/gRPC endpoint the spans go to',
    default: undefined,
    defaultText: 'the --endpoint',
    parse: parseEndpoint,
  },
  consoleFormat: {
    flag: 'console-format',
    valueName: 'json|text',
    env: ['FLOWTAP_CONSOLE_FORMAT'],
    description: '--exporter console: one JSON object per record, or one aligned line a person reads (time, event, direction, flow, duration, reason)',
    default: 'json',
    parse: oneOf(CONSOLE_FORMATS),
  },
};

function parseReplay(raw: string, name: string): ReplaySpec {
  const spec = parseReplaySpec(raw);
  if (spec === undefined) throw invalid(name, raw, `synthetic:<events per second>, from 1 to ${MAX_REPLAY_RATE}`);
  return spec;
}

const nonNegativeMillis = integer(0, MAX_MILLIS, `an integer from 0 to ${MAX_MILLIS} (milliseconds)`);
const positiveMillis = integer(1, MAX_MILLIS, `an integer from 1 to ${MAX_MILLIS} (milliseconds)`);
const positiveCount = integer(1, MAX_MILLIS, `an integer from 1 to ${MAX_MILLIS}`);

/**
 * SDK variables validated here. Defaults are the specification's. Sizes and
 * the export timeout must be at least 1: a batch of 0 would spin, a queue of 0
 * or a timeout of 0 would drop every record.
 */
export const BATCH_ENV: { readonly [K in keyof BatchConfig]: EnvSpec<BatchConfig[K]> } = {
  scheduledDelayMillis: {
    env: ['OTEL_BLRP_SCHEDULE_DELAY'],
    description: 'ms between two exports',
    default: 1000,
    parse: nonNegativeMillis,
  },
  exportTimeoutMillis: {
    env: ['OTEL_BLRP_EXPORT_TIMEOUT'],
    description: 'ms one export may take',
    default: 30_000,
    parse: positiveMillis,
  },
  maxExportBatchSize: {
    env: ['OTEL_BLRP_MAX_EXPORT_BATCH_SIZE'],
    // Not the specification's 512: at high rates larger requests cost flowtap
    // and the collector less per record (docs/benchmarks.md, pipeline
    // ceiling); at low rates the schedule delay sends batches first anyway.
    description: 'records per export, at most --queue-max-records (flowtap default; the SDK default is 512)',
    default: 2048,
    parse: positiveCount,
  },
};

export const OTLP_ENV: { readonly [K in keyof OtlpConfig]: EnvSpec<OtlpConfig[K]> } = {
  timeoutMillis: {
    env: ['OTEL_EXPORTER_OTLP_LOGS_TIMEOUT', 'OTEL_EXPORTER_OTLP_TIMEOUT'],
    description: 'ms one OTLP request may take',
    default: 10_000,
    parse: positiveMillis,
  },
  compression: {
    env: ['OTEL_EXPORTER_OTLP_LOGS_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION'],
    description: 'gzip or none',
    default: 'none',
    parse: oneOf(COMPRESSIONS),
  },
};

const METRICS_INTERVAL_DEFAULT = 60_000;
const METRICS_TIMEOUT_DEFAULT = 30_000;

/** Metric export, read when --metrics is otlp. Defaults are the specification's. */
export const METRICS_ENV: { readonly [K in keyof MetricsExportConfig]: EnvSpec<MetricsExportConfig[K] | undefined> } = {
  intervalMillis: {
    env: ['OTEL_METRIC_EXPORT_INTERVAL'],
    description: 'ms between two metric exports',
    default: METRICS_INTERVAL_DEFAULT,
    parse: positiveMillis,
  },
  timeoutMillis: {
    env: ['OTEL_METRIC_EXPORT_TIMEOUT'],
    description: 'ms one metric export may take, at most OTEL_METRIC_EXPORT_INTERVAL',
    default: METRICS_TIMEOUT_DEFAULT,
    parse: positiveMillis,
  },
  endpoint: {
    env: ['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT'],
    description: 'where metrics go',
    default: undefined,
    parse: parseEndpoint,
  },
};

/** flowtap speaks OTLP over gRPC only; a different protocol must not be ignored silently. */
const PROTOCOL_ENV = ['OTEL_EXPORTER_OTLP_LOGS_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'] as const;
const METRICS_PROTOCOL_ENV = ['OTEL_EXPORTER_OTLP_METRICS_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'] as const;
const TRACES_PROTOCOL_ENV = ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'] as const;

/** The first of `names` set to a non-blank value, with its name. */
function firstEnv(env: Env, names: readonly string[]): { name: string; raw: string } | undefined {
  for (const name of names) {
    const raw = envString(env, name);
    if (raw !== undefined) return { name, raw };
  }
  return undefined;
}

function resolveEnv<T>(spec: EnvSpec<T>, env: Env): T {
  const found = firstEnv(env, spec.env);
  return found === undefined ? spec.default : spec.parse(found.raw, found.name);
}

/** What the command line asks for before any option is validated. */
export type InfoRequest = 'help' | 'version' | undefined;

/** Whether argv asks for --help/-h or --version/-V (help wins). Pure scan, never throws. */
export function requestedInfo(argv: readonly string[]): InfoRequest {
  let version = false;
  for (const a of argv) {
    if (a === '--') break;
    if (a === '--help' || a === '-h') return 'help';
    if (a === '--version' || a === '-V') version = true;
  }
  return version ? 'version' : undefined;
}

type FlagValues = Partial<Record<string, string | boolean>>;

function parseFlags(argv: readonly string[]): FlagValues {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
  };
  for (const spec of Object.values(OPTIONS)) options[spec.flag] = { type: 'string' };
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw flagError(e);
  }
}

/** parseArgs errors, rewritten as one line that names the flag and what it wants. */
function flagError(e: unknown): ConfigError {
  const code = (e as NodeJS.ErrnoException).code;
  const message = e instanceof Error ? e.message : String(e);
  const quoted = /'([^' ]+)/.exec(message)?.[1] ?? '';
  const flag = /--([A-Za-z0-9-]+)/.exec(message)?.[1];
  const spec = Object.values(OPTIONS).find((s) => s.flag === flag);
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return new ConfigError(`unknown option '${quoted}' (see --help)`);
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new ConfigError(`unexpected argument '${quoted}': flowtap takes options only (see --help)`);
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (spec !== undefined) {
        return new ConfigError(`--${spec.flag} needs a value: ${spec.valueName} (write --${spec.flag}=<value> for one starting with '-')`);
      }
      return new ConfigError(`--${flag ?? quoted} takes no value`);
    default:
      return new ConfigError(message.split('\n')[0]);
  }
}

/**
 * The configuration from argv (without node and script), the environment,
 * the text of /proc/self/mountinfo (read for the --cgroup default and for
 * --cgroup pod) and, for --cgroup pod, what podcgroup.ts needs to see.
 * Throws ConfigError. --help/--version are accepted and ignored here; see
 * requestedInfo.
 */
export function parseConfig(argv: readonly string[], env: Env, mountinfo?: string, pod?: PodView): Config {
  const flags = parseFlags(argv);
  const ctx: DefaultContext = { mountinfo };

  function resolve<K extends keyof FlagOptions>(key: K): FlagOptions[K] {
    const spec: OptionSpec<FlagOptions[K]> = OPTIONS[key];
    const flagValue = flags[spec.flag];
    if (typeof flagValue === 'string') return spec.parse(flagValue, `--${spec.flag}`);
    const found = firstEnv(env, spec.env);
    if (found !== undefined) return spec.parse(found.raw, found.name);
    return typeof spec.default === 'function' ? (spec.default as (c: DefaultContext) => FlagOptions[K])(ctx) : spec.default;
  }

  /** "--flag" or the variable a value came from, for error messages. */
  function source<K extends keyof FlagOptions>(key: K): string {
    const spec = OPTIONS[key];
    if (typeof flags[spec.flag] === 'string') return `--${spec.flag}`;
    return firstEnv(env, spec.env)?.name ?? `--${spec.flag}`;
  }

  let cgroup = resolve('cgroup');
  if (cgroup === POD_CGROUP) {
    const name = source('cgroup');
    try {
      cgroup = findPodCgroup({
        procSelfCgroup: pod?.procSelfCgroup,
        mountinfo,
        podUid: resourceAttributes(env)['k8s.pod.uid'],
        isDirectory: pod?.isDirectory ?? (() => false),
      });
    } catch (e) {
      if (e instanceof PodCgroupError) throw new ConfigError(`${name === '--cgroup' ? '--cgroup pod' : `${name}=pod`}: ${e.message}`);
      throw e;
    }
  }

  const exporter = resolve('exporter');
  ctx.exporter = exporter;
  const endpoint = resolve('endpoint');
  const config: Config = {
    cgroup,
    exporter,
    endpoint,
    ringBufferBytes: resolve('ringBufferBytes'),
    ringBufferWakeupBytes: resolve('ringBufferWakeupBytes'),
    ringBufferPollMillis: resolve('ringBufferPollMillis'),
    flowTableEntries: resolve('flowTableEntries'),
    shutdownTimeoutMillis: resolve('shutdownTimeoutMillis'),
    logLevel: resolve('logLevel'),
    dnsCacheNames: resolve('dnsCacheNames'),
    dnsNamesPerAddress: resolve('dnsNamesPerAddress'),
    direction: resolve('direction'),
    includePorts: resolve('includePorts'),
    excludePorts: resolve('excludePorts'),
    includeCidrs: resolve('includeCidrs'),
    excludeCidrs: resolve('excludeCidrs'),
    metrics: resolve('metrics'),
    healthAddress: resolve('healthAddress'),
    readyExportFailureSeconds: resolve('readyExportFailureSeconds'),
    summaryIntervalSeconds: resolve('summaryIntervalSeconds'),
    queueMaxRecords: resolve('queueMaxRecords'),
    replay: resolve('replay'),
    spans: resolve('spans'),
    spansEndpoint: resolve('spansEndpoint'),
    consoleFormat: resolve('consoleFormat'),
    otlp: { timeoutMillis: OTLP_ENV.timeoutMillis.default, compression: OTLP_ENV.compression.default },
    batch: {
      scheduledDelayMillis: BATCH_ENV.scheduledDelayMillis.default,
      exportTimeoutMillis: BATCH_ENV.exportTimeoutMillis.default,
      maxExportBatchSize: BATCH_ENV.maxExportBatchSize.default,
    },
    metricsExport: { intervalMillis: METRICS_INTERVAL_DEFAULT, timeoutMillis: METRICS_TIMEOUT_DEFAULT, endpoint },
  };

  // SDK variables are validated only where they take effect; the batch ones
  // do for every exporter ('none' runs the export queue up to the send).
  config.batch = {
    scheduledDelayMillis: resolveEnv(BATCH_ENV.scheduledDelayMillis, env),
    exportTimeoutMillis: resolveEnv(BATCH_ENV.exportTimeoutMillis, env),
    maxExportBatchSize: resolveEnv(BATCH_ENV.maxExportBatchSize, env),
  };
  if (config.batch.maxExportBatchSize > config.queueMaxRecords) {
    throw new ConfigError(
      `invalid OTEL_BLRP_MAX_EXPORT_BATCH_SIZE '${config.batch.maxExportBatchSize}': ` +
        `expected at most ${source('queueMaxRecords')} (${config.queueMaxRecords})`,
    );
  }
  if (exporter === 'otlp' || config.spans === 'otlp') {
    config.otlp = {
      timeoutMillis: resolveEnv(OTLP_ENV.timeoutMillis, env),
      compression: resolveEnv(OTLP_ENV.compression, env),
    };
    const protocol = firstEnv(env, PROTOCOL_ENV);
    if (protocol !== undefined && protocol.raw.toLowerCase() !== 'grpc') {
      throw invalid(protocol.name, protocol.raw, 'grpc (flowtap exports OTLP over gRPC only)');
    }
  }
  if (config.spans === 'otlp') {
    const protocol = firstEnv(env, TRACES_PROTOCOL_ENV);
    if (protocol !== undefined && protocol.raw.toLowerCase() !== 'grpc') {
      throw invalid(protocol.name, protocol.raw, 'grpc (flowtap exports OTLP over gRPC only)');
    }
  }
  if (config.metrics === 'otlp') config.metricsExport = metricsExport(env, endpoint);
  resourceAttributes(env);
  return config;
}

/** OTEL_METRIC_EXPORT_* and the metrics endpoint (default: the records' endpoint). */
function metricsExport(env: Env, recordsEndpoint: string): MetricsExportConfig {
  const intervalMillis = resolveEnv(METRICS_ENV.intervalMillis, env) ?? METRICS_INTERVAL_DEFAULT;
  const timeout = firstEnv(env, METRICS_ENV.timeoutMillis.env);
  let timeoutMillis = resolveEnv(METRICS_ENV.timeoutMillis, env) ?? METRICS_TIMEOUT_DEFAULT;
  if (timeoutMillis > intervalMillis) {
    // The SDK refuses an explicit timeout longer than the interval; the default one is clamped.
    if (timeout !== undefined) {
      throw invalid(timeout.name, timeout.raw, `at most OTEL_METRIC_EXPORT_INTERVAL (${intervalMillis})`);
    }
    timeoutMillis = intervalMillis;
  }
  const protocol = firstEnv(env, METRICS_PROTOCOL_ENV);
  if (protocol !== undefined && protocol.raw.toLowerCase() !== 'grpc') {
    throw invalid(protocol.name, protocol.raw, 'grpc (flowtap exports OTLP over gRPC only)');
  }
  return { intervalMillis, timeoutMillis, endpoint: resolveEnv(METRICS_ENV.endpoint, env) ?? recordsEndpoint };
}

/** OTEL_RESOURCE_ATTRIBUTES, parsed; a ConfigError when malformed. */
function resourceAttributes(env: Env): Record<string, string> {
  const raw = envString(env, 'OTEL_RESOURCE_ATTRIBUTES');
  if (raw === undefined) return {};
  try {
    return parseResourceAttributes(raw);
  } catch (e) {
    throw new ConfigError(`invalid OTEL_RESOURCE_ATTRIBUTES '${raw}': ${(e as Error).message}`);
  }
}

/** --help text, made from the option table. */
export function helpText(): string {
  const rows: [string, string][] = [];
  for (const spec of Object.values(OPTIONS) as OptionSpec<unknown>[]) {
    const dflt = spec.defaultText ?? String(spec.default);
    rows.push([`--${spec.flag} ${spec.valueName}`, spec.description]);
    rows.push(['', `env ${spec.env.join(', then ')}; default ${dflt}`]);
  }
  rows.push(['-h, --help', 'show this help and exit']);
  rows.push(['-V, --version', 'show the version and exit']);
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const lines = rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`);

  const sdk = [...Object.values(BATCH_ENV), ...Object.values(OTLP_ENV), ...Object.values(METRICS_ENV)] as EnvSpec<unknown>[];
  const sdkLines = sdk.map((s) => `  ${s.env.join(', ')}: ${s.description} (default ${s.default === undefined ? '--endpoint' : String(s.default)})`);

  return [
    'Usage: flowtap [options]',
    '',
    'Watches the TCP flows of a cgroup v2 subtree with eBPF and exports two',
    'OpenTelemetry log records per flow (OTLP/gRPC): one when it begins, one when',
    'it ends (duration, how it closed). With --spans otlp, each ended flow is also',
    'one span.',
    '',
    'Options:',
    ...lines,
    '',
    'OpenTelemetry SDK variables read:',
    ...sdkLines,
    '  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: resource (service.name defaults to flowtap)',
    '  OTEL_EXPORTER_OTLP_[LOGS_|TRACES_]HEADERS, _CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE, _INSECURE',
    '',
    'Exit status: 0 after SIGTERM/SIGINT, 1 without the privilege to load the',
    'programs (CAP_BPF and CAP_NET_ADMIN), 2 on bad input.',
    '',
  ].join('\n');
}
