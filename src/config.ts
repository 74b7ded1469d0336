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
import { DNS_CACHE_DEFAULTS } from './dns/cache';
import { parseArgs } from 'node:util';
import { LOG_LEVELS, type LogLevel } from './log';
import { envString, type Env } from './env';
import { parseResourceAttributes } from './resource';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const EXPORTERS = ['otlp', 'console', 'none'] as const;
export type Exporter = (typeof EXPORTERS)[number];

export const COMPRESSIONS = ['gzip', 'none'] as const;
export type Compression = (typeof COMPRESSIONS)[number];

export interface BatchConfig {
  /** OTEL_BLRP_SCHEDULE_DELAY: ms between two exports. */
  scheduledDelayMillis: number;
  /** OTEL_BLRP_EXPORT_TIMEOUT: ms one export may take. */
  exportTimeoutMillis: number;
  /** OTEL_BLRP_MAX_QUEUE_SIZE: records held; more are dropped (and counted). */
  maxQueueSize: number;
  /** OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: records per export, <= maxQueueSize. */
  maxExportBatchSize: number;
}

export interface OtlpConfig {
  /** OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT: ms one gRPC export may take. */
  timeoutMillis: number;
  /** OTEL_EXPORTER_OTLP_(LOGS_)COMPRESSION. */
  compression: Compression;
}

export interface Config {
  /** cgroup v2 directory watched, recursively. */
  cgroup: string;
  exporter: Exporter;
  /** OTLP/gRPC endpoint URL (otlp exporter only). */
  endpoint: string;
  ringBufferBytes: number;
  flowTableEntries: number;
  /** How long SIGTERM/SIGINT may take to detach and flush before exiting anyway. */
  shutdownTimeoutMillis: number;
  logLevel: LogLevel;
  /** Names the DNS cache holds across all addresses. */
  dnsCacheNames: number;
  /** Names the DNS cache holds for one address. */
  dnsNamesPerAddress: number;
  otlp: OtlpConfig;
  batch: BatchConfig;
}

/** What a default may depend on. */
export interface DefaultContext {
  /** Text of /proc/self/mountinfo, if it could be read. */
  mountinfo: string | undefined;
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

type FlagOptions = Omit<Config, 'otlp' | 'batch'>;

/** Largest delay setTimeout honours. */
const MAX_MILLIS = 2_147_483_647;
const MIN_RING_BUFFER_BYTES = 4096;
const MAX_RING_BUFFER_BYTES = 1 << 30;
const MAX_FLOW_TABLE_ENTRIES = 1 << 24;

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
  let fallback: string | undefined;
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const fields = line.trim().split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields[sep + 1] !== 'cgroup2') continue;
    const root = unescapeMountinfo(fields[3]);
    const mountPoint = unescapeMountinfo(fields[4]);
    if (root === '/') return mountPoint;
    fallback ??= mountPoint;
  }
  return fallback;
}

/** mountinfo writes space, tab, newline and backslash as \ooo octal. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
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
    description: 'cgroup v2 directory to watch, with everything below it',
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
  logLevel: {
    flag: 'log-level',
    valueName: 'debug|info|warn|error',
    env: ['FLOWTAP_LOG_LEVEL'],
    description: "flowtap's own log lines (JSON on stderr) at this level and above",
    default: 'info',
    parse: oneOf(LOG_LEVELS),
  },
};

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
  maxQueueSize: {
    env: ['OTEL_BLRP_MAX_QUEUE_SIZE'],
    description: 'records queued for export; more are dropped and counted',
    default: 2048,
    parse: positiveCount,
  },
  maxExportBatchSize: {
    env: ['OTEL_BLRP_MAX_EXPORT_BATCH_SIZE'],
    description: 'records per export, at most OTEL_BLRP_MAX_QUEUE_SIZE',
    default: 512,
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

/** flowtap speaks OTLP over gRPC only; a different protocol must not be ignored silently. */
const PROTOCOL_ENV = ['OTEL_EXPORTER_OTLP_LOGS_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL'] as const;

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
 * The configuration from argv (without node and script), the environment and
 * the text of /proc/self/mountinfo (only read for the --cgroup default).
 * Throws ConfigError. --help/--version are accepted and ignored here; see
 * requestedInfo.
 */
export function parseConfig(argv: readonly string[], env: Env, mountinfo?: string): Config {
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

  const exporter = resolve('exporter');
  const config: Config = {
    cgroup: resolve('cgroup'),
    exporter,
    endpoint: resolve('endpoint'),
    ringBufferBytes: resolve('ringBufferBytes'),
    flowTableEntries: resolve('flowTableEntries'),
    shutdownTimeoutMillis: resolve('shutdownTimeoutMillis'),
    logLevel: resolve('logLevel'),
    dnsCacheNames: resolve('dnsCacheNames'),
    dnsNamesPerAddress: resolve('dnsNamesPerAddress'),
    otlp: { timeoutMillis: OTLP_ENV.timeoutMillis.default, compression: OTLP_ENV.compression.default },
    batch: {
      scheduledDelayMillis: BATCH_ENV.scheduledDelayMillis.default,
      exportTimeoutMillis: BATCH_ENV.exportTimeoutMillis.default,
      maxQueueSize: BATCH_ENV.maxQueueSize.default,
      maxExportBatchSize: BATCH_ENV.maxExportBatchSize.default,
    },
  };

  // SDK variables are validated only where they take effect.
  if (exporter !== 'none') {
    config.batch = {
      scheduledDelayMillis: resolveEnv(BATCH_ENV.scheduledDelayMillis, env),
      exportTimeoutMillis: resolveEnv(BATCH_ENV.exportTimeoutMillis, env),
      maxQueueSize: resolveEnv(BATCH_ENV.maxQueueSize, env),
      maxExportBatchSize: resolveEnv(BATCH_ENV.maxExportBatchSize, env),
    };
    if (config.batch.maxExportBatchSize > config.batch.maxQueueSize) {
      throw new ConfigError(
        `invalid OTEL_BLRP_MAX_EXPORT_BATCH_SIZE '${config.batch.maxExportBatchSize}': ` +
          `expected at most OTEL_BLRP_MAX_QUEUE_SIZE (${config.batch.maxQueueSize})`,
      );
    }
  }
  if (exporter === 'otlp') {
    config.otlp = {
      timeoutMillis: resolveEnv(OTLP_ENV.timeoutMillis, env),
      compression: resolveEnv(OTLP_ENV.compression, env),
    };
    const protocol = firstEnv(env, PROTOCOL_ENV);
    if (protocol !== undefined && protocol.raw.toLowerCase() !== 'grpc') {
      throw invalid(protocol.name, protocol.raw, 'grpc (flowtap exports OTLP over gRPC only)');
    }
  }
  const resourceAttributes = envString(env, 'OTEL_RESOURCE_ATTRIBUTES');
  if (resourceAttributes !== undefined) {
    try {
      parseResourceAttributes(resourceAttributes);
    } catch (e) {
      throw new ConfigError(`invalid OTEL_RESOURCE_ATTRIBUTES '${resourceAttributes}': ${(e as Error).message}`);
    }
  }
  return config;
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

  const sdk = [...Object.values(BATCH_ENV), ...Object.values(OTLP_ENV)] as EnvSpec<unknown>[];
  const sdkLines = sdk.map((s) => `  ${s.env.join(', ')}: ${s.description} (default ${String(s.default)})`);

  return [
    'Usage: flowtap [options]',
    '',
    'Watches the TCP flows of a cgroup v2 subtree with eBPF and exports each flow',
    'start as an OpenTelemetry log record (OTLP/gRPC).',
    '',
    'Options:',
    ...lines,
    '',
    'OpenTelemetry SDK variables read:',
    ...sdkLines,
    '  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: resource (service.name defaults to flowtap)',
    '  OTEL_EXPORTER_OTLP_[LOGS_]HEADERS, _CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE, _INSECURE',
    '',
    'Exit status: 0 after SIGTERM/SIGINT, 1 without the privilege to load the',
    'programs (CAP_BPF and CAP_NET_ADMIN), 2 on bad input.',
    '',
  ].join('\n');
}
