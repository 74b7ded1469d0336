/**
 * The option table: every flag, its environment variable(s), its default and
 * its parser, which is the one check of its value (flags and variables
 * alike). Numeric defaults and limits come from limits.ts. Precedence:
 * defaults < env < flags (argv.ts).
 */
import { DNS_CACHE_DEFAULTS } from '../enrich/dns/cache';
import { DIRECTIONS, parseCidrList, parsePortList } from '../kernel/filter';
import { MAX_REPLAY_RATE, parseReplaySpec, type ReplaySpec } from '../kernel/replay';
import { LOG_LEVELS } from '../runtime/log';
import { defaultCgroup } from './cgroup';
import { invalid } from './error';
import { LIMITS, type Limit } from './limits';
import { CONSOLE_FORMATS } from '../export/console/console';
import { EXPORTERS, METRICS_EXPORTERS, SPAN_EXPORTERS, type Exporter, type FlagOptions, type Protocol } from './types';
import { directory, endpoint, filterList, hostPort, integer, oneOf, type Parser } from './values';

/** What a default may depend on. */
export interface DefaultContext {
  /** Text of /proc/self/mountinfo, if it could be read. */
  mountinfo: string | undefined;
  /** The records' exporter, once resolved (the --metrics default follows it). */
  exporter?: Exporter;
  /** The records' OTLP protocol, once resolved (the --metrics default follows it). */
  protocol?: Protocol;
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
  /** The range of a numeric option (limits.ts). */
  limit?: Limit;
  /** Parses a flag or env value; `name` is "--flag" or the variable. */
  parse: Parser<T>;
}

const PORT_LIST = 'comma-separated ports and ranges, e.g. 22,8000-8100';
const CIDR_LIST = 'comma-separated IPv4/IPv6 prefixes, e.g. 10.0.0.0/8,fd00::/8';

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
    default: (ctx) => defaultCgroup(ctx.mountinfo),
    defaultText: 'the cgroup v2 mount root',
    parse: directory,
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
    description: 'OTLP endpoint of the collector: gRPC, or with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf the URL records are POSTed to',
    default: 'http://localhost:4317',
    parse: endpoint,
  },
  ringBufferBytes: {
    flag: 'ring-buffer-bytes',
    valueName: '<n>',
    env: ['FLOWTAP_RING_BUFFER_BYTES'],
    description: 'size of the kernel ring buffer (a power of two)',
    default: LIMITS.ringBufferBytes.default,
    limit: LIMITS.ringBufferBytes,
    parse: integer(LIMITS.ringBufferBytes),
  },
  ringBufferWakeupBytes: {
    flag: 'ring-buffer-wakeup-bytes',
    valueName: '<n>',
    env: ['FLOWTAP_RING_BUFFER_WAKEUP_BYTES'],
    description:
      'wake the reader once this many bytes wait in the ring buffer (else at its next poll, --ring-buffer-poll-millis); 0 = for every record (lowest latency, most CPU)',
    default: LIMITS.ringBufferWakeupBytes.default,
    limit: LIMITS.ringBufferWakeupBytes,
    parse: integer(LIMITS.ringBufferWakeupBytes),
  },
  ringBufferPollMillis: {
    flag: 'ring-buffer-poll-millis',
    valueName: '<ms>',
    env: ['FLOWTAP_RING_BUFFER_POLL_MILLIS'],
    description: 'the reader reads the ring buffer at least this often: how long a record can wait at low traffic (lower: less latency, a little more CPU)',
    default: LIMITS.ringBufferPollMillis.default,
    limit: LIMITS.ringBufferPollMillis,
    parse: integer(LIMITS.ringBufferPollMillis),
  },
  flowTableEntries: {
    flag: 'flow-table-entries',
    valueName: '<n>',
    env: ['FLOWTAP_FLOW_TABLE_ENTRIES'],
    description: 'flows tracked at once in the kernel (LRU)',
    default: LIMITS.flowTableEntries.default,
    limit: LIMITS.flowTableEntries,
    parse: integer(LIMITS.flowTableEntries),
  },
  shutdownTimeoutMillis: {
    flag: 'shutdown-timeout-millis',
    valueName: '<ms>',
    env: ['FLOWTAP_SHUTDOWN_TIMEOUT_MILLIS'],
    description: 'on SIGTERM/SIGINT, exit after this long even if records are not flushed',
    default: LIMITS.shutdownTimeoutMillis.default,
    limit: LIMITS.shutdownTimeoutMillis,
    parse: integer(LIMITS.shutdownTimeoutMillis),
  },
  dnsCacheNames: {
    flag: 'dns-cache-names',
    valueName: '<n>',
    env: ['FLOWTAP_DNS_CACHE_NAMES'],
    description: 'names the DNS cache holds (oldest addresses are evicted first)',
    default: DNS_CACHE_DEFAULTS.maxNames,
    limit: LIMITS.dnsCacheNames,
    parse: integer(LIMITS.dnsCacheNames),
  },
  dnsNamesPerAddress: {
    flag: 'dns-names-per-address',
    valueName: '<n>',
    env: ['FLOWTAP_DNS_NAMES_PER_ADDRESS'],
    description: 'names the DNS cache holds for one IP address (newest answers kept)',
    default: DNS_CACHE_DEFAULTS.maxNamesPerIp,
    limit: LIMITS.dnsNamesPerAddress,
    parse: integer(LIMITS.dnsNamesPerAddress),
  },
  dnsZeroTtlSeconds: {
    flag: 'dns-zero-ttl-seconds',
    valueName: '<s>',
    env: ['FLOWTAP_DNS_ZERO_TTL_SECONDS'],
    description: 'a DNS answer with TTL 0 (dnsmasq, Consul) names the flows that begin this long after it; 0: TTL-0 answers are not used',
    default: DNS_CACHE_DEFAULTS.zeroTtlSeconds,
    limit: LIMITS.dnsZeroTtlSeconds,
    parse: integer(LIMITS.dnsZeroTtlSeconds),
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
    description: 'report only flows whose responder (server) port is listed, e.g. 443,8000-8100',
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
    description: 'report only flows whose peer address (the other end) is in one of these prefixes',
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
    default: (ctx) => (ctx.exporter === 'otlp' && ctx.protocol !== 'http/protobuf' ? 'otlp' : 'none'),
    defaultText: 'otlp with --exporter otlp over grpc, else none',
    parse: oneOf(METRICS_EXPORTERS),
  },
  healthAddress: {
    flag: 'health-address',
    valueName: '<host:port>',
    env: ['FLOWTAP_HEALTH_ADDRESS'],
    description: 'serve GET /healthz and /readyz (JSON) here, e.g. 127.0.0.1:8080 or :8080',
    default: undefined,
    defaultText: 'off (no listening socket)',
    parse: hostPort,
  },
  readyExportFailureSeconds: {
    flag: 'ready-export-failure-seconds',
    valueName: '<s>',
    env: ['FLOWTAP_READY_EXPORT_FAILURE_SECONDS'],
    description: '/readyz fails once every record export failed for longer than this',
    default: LIMITS.readyExportFailureSeconds.default,
    limit: LIMITS.readyExportFailureSeconds,
    parse: integer(LIMITS.readyExportFailureSeconds),
  },
  summaryIntervalSeconds: {
    flag: 'summary-interval-seconds',
    valueName: '<s>',
    env: ['FLOWTAP_SUMMARY_INTERVAL_SECONDS'],
    description:
      "log a 'summary' line this often: flows begun and ended, records exported, failed and dropped since the last one, and whether exports work (0: never)",
    default: LIMITS.summaryIntervalSeconds.default,
    defaultText: '0 (off)',
    limit: LIMITS.summaryIntervalSeconds,
    parse: integer(LIMITS.summaryIntervalSeconds),
  },
  queueMaxRecords: {
    flag: 'queue-max-records',
    valueName: '<n>',
    env: ['FLOWTAP_QUEUE_MAX_RECORDS', 'OTEL_BLRP_MAX_QUEUE_SIZE'],
    description: 'records held for export, also while the collector is unreachable (about 0.6 KB each); ' + 'beyond it the oldest are dropped and counted',
    default: LIMITS.queueMaxRecords.default,
    limit: LIMITS.queueMaxRecords,
    parse: integer(LIMITS.queueMaxRecords),
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
      'also export each ended flow as one span (CLIENT outgoing, SERVER incoming; error status on a reset) over OTLP ' +
      '(OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: grpc or http/protobuf); ' +
      'a flow still open has no span until it ends',
    default: 'none',
    parse: oneOf(SPAN_EXPORTERS),
  },
  spansEndpoint: {
    flag: 'spans-endpoint',
    valueName: '<url>',
    env: ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'],
    description: 'OTLP endpoint the spans go to (http/protobuf: the full URL, used as given)',
    default: undefined,
    defaultText: 'the --endpoint (http/protobuf: beside the records, …/v1/traces)',
    parse: endpoint,
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
