import {
  BATCH_ENV,
  ConfigError,
  findCgroup2Mount,
  helpText,
  loadConfig,
  METRICS_ENV,
  OPTIONS,
  OTLP_ENV,
  parseConfig,
  requestedInfo,
  type Config,
} from '../../../src/config/config';
import { describeLimit, LIMITS, type Limit } from '../../../src/config/limits';

const UNIFIED = [
  '22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/root rw,discard',
  '24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw',
  '29 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
  '30 24 0:27 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:10 - bpf bpf rw,mode=700',
  '',
].join('\n');

const HYBRID = [
  '23 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
  '34 31 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory',
].join('\n');

/** cgroup v1 only: no cgroup2 line at all. */
const V1_ONLY = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
].join('\n');

const DEFAULTS: Config = {
  cgroup: '/sys/fs/cgroup',
  exporter: 'otlp',
  endpoint: 'http://localhost:4317',
  ringBufferBytes: 8_388_608,
  ringBufferWakeupBytes: 65_536,
  ringBufferPollMillis: 50,
  flowTableEntries: 65_536,
  shutdownTimeoutMillis: 5000,
  logLevel: 'info',
  dnsCacheNames: OPTIONS.dnsCacheNames.default as number,
  dnsNamesPerAddress: OPTIONS.dnsNamesPerAddress.default as number,
  dnsZeroTtlSeconds: 5,
  direction: 'both',
  includePorts: [],
  excludePorts: [],
  includeCidrs: [],
  excludeCidrs: [],
  metrics: 'otlp',
  healthAddress: undefined,
  readyExportFailureSeconds: 60,
  summaryIntervalSeconds: 0,
  otlp: { protocol: 'grpc', tracesProtocol: 'grpc', timeoutMillis: 10_000, compression: 'none' },
  queueMaxRecords: 200_000,
  replay: undefined,
  spans: 'none',
  spansEndpoint: undefined,
  consoleFormat: 'json',
  batch: { scheduledDelayMillis: 1000, exportTimeoutMillis: 30_000, maxExportBatchSize: 2048 },
  metricsExport: { intervalMillis: 60_000, timeoutMillis: 30_000, endpoint: 'http://localhost:4317' },
};

/** The ConfigError message; `mountinfo` null stands for "could not be read". */
function error(argv: string[], env: Record<string, string> = {}, mountinfo: string | null = UNIFIED): string {
  try {
    parseConfig(argv, env, mountinfo ?? undefined);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('no ConfigError');
}

describe('findCgroup2Mount', () => {
  it('finds /sys/fs/cgroup on a unified host', () => {
    expect(findCgroup2Mount(UNIFIED)).toBe('/sys/fs/cgroup');
  });

  it('finds /sys/fs/cgroup/unified on a hybrid host', () => {
    expect(findCgroup2Mount(HYBRID)).toBe('/sys/fs/cgroup/unified');
  });

  it('finds nothing on a cgroup v1 host', () => {
    expect(findCgroup2Mount(V1_ONLY)).toBeUndefined();
    expect(findCgroup2Mount('')).toBeUndefined();
  });

  it('prefers the hierarchy root over a bind-mounted subtree, and unescapes the path', () => {
    const text = [
      '40 22 0:26 /kubepods/pod1 /host/pod\\040one rw - cgroup2 cgroup2 rw',
      '41 22 0:26 / /mnt/cgroup\\040two rw shared:3 master:1 - cgroup2 none rw',
    ].join('\n');
    expect(findCgroup2Mount(text)).toBe('/mnt/cgroup two');
    expect(findCgroup2Mount(text.split('\n')[0])).toBe('/host/pod one');
  });
});

describe('parseConfig', () => {
  it('gives the defaults', () => {
    expect(parseConfig([], {}, UNIFIED)).toEqual(DEFAULTS);
    expect(parseConfig([], {}, HYBRID).cgroup).toBe('/sys/fs/cgroup/unified');
  });

  it('reads every option from its environment variable', () => {
    const config = parseConfig(
      [],
      {
        FLOWTAP_CGROUP: '/sys/fs/cgroup/pod',
        OTEL_LOGS_EXPORTER: 'console',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4317',
        FLOWTAP_RING_BUFFER_BYTES: '4096',
        FLOWTAP_FLOW_TABLE_ENTRIES: '1024',
        FLOWTAP_RING_BUFFER_POLL_MILLIS: '5',
        FLOWTAP_SHUTDOWN_TIMEOUT_MILLIS: '250',
        FLOWTAP_LOG_LEVEL: 'debug',
        OTEL_METRICS_EXPORTER: 'otlp',
        FLOWTAP_HEALTH_ADDRESS: '127.0.0.1:8080',
        FLOWTAP_READY_EXPORT_FAILURE_SECONDS: '5',
        FLOWTAP_SUMMARY_INTERVAL_SECONDS: '10',
      },
      undefined,
    );
    expect(config).toEqual({
      ...DEFAULTS,
      cgroup: '/sys/fs/cgroup/pod',
      exporter: 'console',
      endpoint: 'https://collector:4317',
      ringBufferBytes: 4096,
      flowTableEntries: 1024,
      ringBufferPollMillis: 5,
      shutdownTimeoutMillis: 250,
      logLevel: 'debug',
      metrics: 'otlp',
      healthAddress: { host: '127.0.0.1', port: 8080 },
      readyExportFailureSeconds: 5,
      summaryIntervalSeconds: 10,
      metricsExport: { ...DEFAULTS.metricsExport, endpoint: 'https://collector:4317' },
    });
  });

  it('reads every option from its flag, both --flag value and --flag=value', () => {
    const config = parseConfig(
      [
        '--cgroup',
        '/sys/fs/cgroup/x',
        '--exporter=none',
        '--endpoint',
        'http://10.0.0.1:4317',
        '--ring-buffer-bytes',
        '1073741824',
        '--flow-table-entries=16777216',
        '--ring-buffer-poll-millis',
        '1000',
        '--shutdown-timeout-millis',
        '1',
        '--log-level',
        'error',
        '--metrics',
        'otlp',
        '--health-address',
        '[::1]:0',
        '--ready-export-failure-seconds=1',
        '--summary-interval-seconds',
        '0',
      ],
      {},
      undefined,
    );
    expect(config).toEqual({
      ...DEFAULTS,
      cgroup: '/sys/fs/cgroup/x',
      exporter: 'none',
      endpoint: 'http://10.0.0.1:4317',
      ringBufferBytes: 1_073_741_824,
      flowTableEntries: 16_777_216,
      ringBufferPollMillis: 1000,
      shutdownTimeoutMillis: 1,
      logLevel: 'error',
      metrics: 'otlp',
      healthAddress: { host: '::1', port: 0 },
      readyExportFailureSeconds: 1,
      summaryIntervalSeconds: 0,
      metricsExport: { ...DEFAULTS.metricsExport, endpoint: 'http://10.0.0.1:4317' },
    });
  });

  it('lets a flag beat the environment, and the environment beat the default', () => {
    const env = { OTEL_LOGS_EXPORTER: 'console', FLOWTAP_CGROUP: '/env', FLOWTAP_LOG_LEVEL: 'warn' };
    const config = parseConfig(['--exporter', 'none', '--cgroup', '/flag'], env, UNIFIED);
    expect(config.exporter).toBe('none');
    expect(config.cgroup).toBe('/flag');
    expect(config.logLevel).toBe('warn');
  });

  it('does not validate an environment value a flag overrides', () => {
    expect(parseConfig(['--exporter', 'console'], { OTEL_LOGS_EXPORTER: 'bogus' }, UNIFIED).exporter).toBe('console');
  });

  it('takes the logs endpoint before the generic one', () => {
    const env = { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://logs:4317', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://all:4317' };
    expect(parseConfig([], env, UNIFIED).endpoint).toBe('http://logs:4317');
    expect(parseConfig([], { ...env, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: '  ' }, UNIFIED).endpoint).toBe('http://all:4317');
    expect(parseConfig(['--endpoint', 'https://flag:4317'], env, UNIFIED).endpoint).toBe('https://flag:4317');
  });

  it('treats empty and blank variables as unset, and trims and lower-cases enums', () => {
    const config = parseConfig([], { OTEL_LOGS_EXPORTER: '', FLOWTAP_LOG_LEVEL: ' WARN ', FLOWTAP_CGROUP: ' ' }, UNIFIED);
    expect(config.exporter).toBe('otlp');
    expect(config.logLevel).toBe('warn');
    expect(config.cgroup).toBe('/sys/fs/cgroup');
  });

  it('reads and passes on the batch processor and OTLP variables', () => {
    const config = parseConfig(
      [],
      {
        OTEL_BLRP_SCHEDULE_DELAY: '0',
        OTEL_BLRP_EXPORT_TIMEOUT: '5000',
        OTEL_BLRP_MAX_QUEUE_SIZE: '100',
        OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '100',
        OTEL_EXPORTER_OTLP_TIMEOUT: '2000',
        OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: '3000',
        OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      },
      UNIFIED,
    );
    expect(config.batch).toEqual({ scheduledDelayMillis: 0, exportTimeoutMillis: 5000, maxExportBatchSize: 100 });
    expect(config.queueMaxRecords).toBe(100);
    expect(config.otlp).toEqual({ protocol: 'grpc', tracesProtocol: 'grpc', timeoutMillis: 3000, compression: 'gzip' });
  });

  describe('OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL and the endpoint rules of the OTLP exporter specification', () => {
    const parse = (argv: string[], env: Record<string, string>) => {
      const c = parseConfig(argv, { OTEL_METRICS_EXPORTER: 'none', ...env }, UNIFIED);
      return [c.otlp.protocol, c.endpoint];
    };

    it('grpc by default: the endpoint as given, default http://localhost:4317', () => {
      expect(parse([], {})).toEqual(['grpc', 'http://localhost:4317']);
      expect(parse([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317' })).toEqual(['grpc', 'http://c:4317']);
    });

    it('http/protobuf: OTEL_EXPORTER_OTLP_ENDPOINT (default http://localhost:4318) gets /v1/logs appended', () => {
      const http = { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' };
      expect(parse([], http)).toEqual(['http/protobuf', 'http://localhost:4318/v1/logs']);
      expect(parse([], { ...http, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual(['http/protobuf', 'http://c:4318/v1/logs']);
      expect(parse([], { ...http, OTEL_EXPORTER_OTLP_ENDPOINT: 'https://vl:9428/insert/opentelemetry/' })).toEqual([
        'http/protobuf',
        'https://vl:9428/insert/opentelemetry/v1/logs',
      ]);
    });

    it('http/protobuf: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT and --endpoint are used as given', () => {
      const http = { OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'HTTP/Protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://generic:4318' };
      expect(parse([], { ...http, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://c:4318/custom' })).toEqual(['http/protobuf', 'http://c:4318/custom']);
      expect(parse(['--endpoint', 'http://flag:9428/insert/opentelemetry/v1/logs'], http)).toEqual([
        'http/protobuf',
        'http://flag:9428/insert/opentelemetry/v1/logs',
      ]);
    });

    it('the logs variable wins over the generic one', () => {
      expect(parse([], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'grpc' })).toEqual(['grpc', 'http://localhost:4317']);
    });

    it("flowtap's own metrics stay on gRPC: off by default with http/protobuf; on only with a gRPC endpoint of their own", () => {
      const http = { OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/protobuf' };
      expect(parseConfig([], http, UNIFIED).metrics).toBe('none');
      expect(error(['--metrics', 'otlp'], http)).toBe(
        '--metrics otlp with records over http/protobuf needs OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: a gRPC endpoint for the metrics (flowtap exports them over gRPC only)',
      );
      const c = parseConfig(['--metrics', 'otlp'], { ...http, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://c:4317' }, UNIFIED);
      expect([c.metrics, c.metricsExport.endpoint, c.endpoint]).toEqual(['otlp', 'http://c:4317', 'http://localhost:4318/v1/logs']);
      expect(error(['--metrics', 'otlp'], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })).toMatch(
        /^invalid OTEL_EXPORTER_OTLP_PROTOCOL 'http\/protobuf': expected grpc \(flowtap exports its own metrics over gRPC only/,
      );
    });
  });

  it('ignores the OTLP variables when not exporting OTLP; the batch ones count for every exporter (none runs the queue)', () => {
    const env = { OTEL_EXPORTER_OTLP_TIMEOUT: 'soon', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' };
    expect(parseConfig(['--exporter', 'console'], env, UNIFIED).otlp).toEqual(DEFAULTS.otlp);
    expect(parseConfig(['--exporter', 'none'], { ...env, OTEL_BLRP_SCHEDULE_DELAY: '50' }, UNIFIED).batch.scheduledDelayMillis).toBe(50);
    expect(error(['--exporter', 'none'], { OTEL_BLRP_MAX_QUEUE_SIZE: 'x' })).toMatch(/OTEL_BLRP_MAX_QUEUE_SIZE/);
  });

  it('--queue-max-records wins over FLOWTAP_QUEUE_MAX_RECORDS, which wins over OTEL_BLRP_MAX_QUEUE_SIZE', () => {
    expect(parseConfig([], { OTEL_BLRP_MAX_QUEUE_SIZE: '3000' }, UNIFIED).queueMaxRecords).toBe(3000);
    expect(parseConfig([], { OTEL_BLRP_MAX_QUEUE_SIZE: '3000', FLOWTAP_QUEUE_MAX_RECORDS: '4000' }, UNIFIED).queueMaxRecords).toBe(4000);
    expect(parseConfig(['--queue-max-records', '5000'], { FLOWTAP_QUEUE_MAX_RECORDS: '4000' }, UNIFIED).queueMaxRecords).toBe(5000);
  });

  it('--replay synthetic:<rate> selects the synthetic source', () => {
    expect(parseConfig(['--replay', 'synthetic:2000'], {}, UNIFIED).replay).toEqual({ kind: 'synthetic', ratePerSecond: 2000 });
    expect(parseConfig([], { FLOWTAP_REPLAY: 'synthetic:5' }, UNIFIED).replay).toEqual({ kind: 'synthetic', ratePerSecond: 5 });
  });

  it('ignores --help and --version (the CLI asks requestedInfo first)', () => {
    expect(parseConfig(['--help', '-V'], {}, UNIFIED)).toEqual(DEFAULTS);
  });

  describe('bad values name the flag or variable, the value and what was expected', () => {
    it.each<[string, string[], Record<string, string>, string]>([
      ['--exporter', ['--exporter', 'foo'], {}, "invalid --exporter 'foo': expected one of otlp, console, none"],
      ['OTEL_LOGS_EXPORTER', [], { OTEL_LOGS_EXPORTER: 'otlp,console' }, "invalid OTEL_LOGS_EXPORTER 'otlp,console': expected one of otlp, console, none"],
      [
        '--endpoint (no scheme)',
        ['--endpoint', 'collector:4317'],
        {},
        "invalid --endpoint 'collector:4317': expected an http:// or https:// URL, e.g. http://localhost:4317",
      ],
      [
        '--endpoint (not a URL)',
        ['--endpoint', 'http//x'],
        {},
        "invalid --endpoint 'http//x': expected an http:// or https:// URL, e.g. http://localhost:4317",
      ],
      [
        'OTEL_EXPORTER_OTLP_LOGS_ENDPOINT',
        [],
        { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'grpc://x:4317' },
        "invalid OTEL_EXPORTER_OTLP_LOGS_ENDPOINT 'grpc://x:4317': expected an http:// or https:// URL, e.g. http://localhost:4317",
      ],
      [
        'OTEL_EXPORTER_OTLP_ENDPOINT',
        [],
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://x' },
        "invalid OTEL_EXPORTER_OTLP_ENDPOINT 'ftp://x': expected an http:// or https:// URL, e.g. http://localhost:4317",
      ],
      [
        'FLOWTAP_RING_BUFFER_BYTES (not a power of two)',
        [],
        { FLOWTAP_RING_BUFFER_BYTES: '3' },
        "invalid FLOWTAP_RING_BUFFER_BYTES '3': expected a power of two from 4096 to 1073741824 (bytes)",
      ],
      [
        '--ring-buffer-bytes (too big)',
        ['--ring-buffer-bytes', '2147483648'],
        {},
        "invalid --ring-buffer-bytes '2147483648': expected a power of two from 4096 to 1073741824 (bytes)",
      ],
      [
        '--ring-buffer-bytes (too small)',
        ['--ring-buffer-bytes', '2048'],
        {},
        "invalid --ring-buffer-bytes '2048': expected a power of two from 4096 to 1073741824 (bytes)",
      ],
      [
        '--ring-buffer-bytes (suffix)',
        ['--ring-buffer-bytes', '8M'],
        {},
        "invalid --ring-buffer-bytes '8M': expected a power of two from 4096 to 1073741824 (bytes)",
      ],
      ['--flow-table-entries', ['--flow-table-entries', '0'], {}, "invalid --flow-table-entries '0': expected an integer from 1 to 16777216"],
      [
        'FLOWTAP_FLOW_TABLE_ENTRIES',
        [],
        { FLOWTAP_FLOW_TABLE_ENTRIES: '1.5' },
        "invalid FLOWTAP_FLOW_TABLE_ENTRIES '1.5': expected an integer from 1 to 16777216",
      ],
      [
        '--ring-buffer-poll-millis',
        ['--ring-buffer-poll-millis', '0'],
        {},
        "invalid --ring-buffer-poll-millis '0': expected an integer from 1 to 1000 (milliseconds)",
      ],
      [
        'FLOWTAP_RING_BUFFER_POLL_MILLIS',
        [],
        { FLOWTAP_RING_BUFFER_POLL_MILLIS: '1001' },
        "invalid FLOWTAP_RING_BUFFER_POLL_MILLIS '1001': expected an integer from 1 to 1000 (milliseconds)",
      ],
      [
        '--shutdown-timeout-millis',
        ['--shutdown-timeout-millis', '-1'],
        {},
        "--shutdown-timeout-millis needs a value: <ms> (write --shutdown-timeout-millis=<value> for one starting with '-')",
      ],
      [
        'FLOWTAP_SHUTDOWN_TIMEOUT_MILLIS',
        [],
        { FLOWTAP_SHUTDOWN_TIMEOUT_MILLIS: '5s' },
        "invalid FLOWTAP_SHUTDOWN_TIMEOUT_MILLIS '5s': expected an integer from 1 to 2147483647 (milliseconds)",
      ],
      ['--log-level', ['--log-level', 'trace'], {}, "invalid --log-level 'trace': expected one of debug, info, warn, error"],
      ['FLOWTAP_LOG_LEVEL', [], { FLOWTAP_LOG_LEVEL: 'verbose' }, "invalid FLOWTAP_LOG_LEVEL 'verbose': expected one of debug, info, warn, error"],
      ['--cgroup (empty)', ['--cgroup='], {}, "invalid --cgroup '': expected a cgroup v2 directory"],
      [
        'OTEL_BLRP_SCHEDULE_DELAY',
        [],
        { OTEL_BLRP_SCHEDULE_DELAY: '-5' },
        "invalid OTEL_BLRP_SCHEDULE_DELAY '-5': expected an integer from 0 to 2147483647 (milliseconds)",
      ],
      [
        'OTEL_BLRP_EXPORT_TIMEOUT',
        [],
        { OTEL_BLRP_EXPORT_TIMEOUT: '0' },
        "invalid OTEL_BLRP_EXPORT_TIMEOUT '0': expected an integer from 1 to 2147483647 (milliseconds)",
      ],
      [
        'OTEL_BLRP_MAX_QUEUE_SIZE',
        [],
        { OTEL_BLRP_MAX_QUEUE_SIZE: 'lots' },
        "invalid OTEL_BLRP_MAX_QUEUE_SIZE 'lots': expected an integer from 1 to 100000000",
      ],
      [
        'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE',
        [],
        { OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '0' },
        "invalid OTEL_BLRP_MAX_EXPORT_BATCH_SIZE '0': expected an integer from 1 to 2147483647",
      ],
      [
        'batch > queue',
        [],
        { OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '300000' },
        "invalid OTEL_BLRP_MAX_EXPORT_BATCH_SIZE '300000': expected at most --queue-max-records (200000)",
      ],
      [
        'batch > --queue-max-records',
        ['--queue-max-records', '10'],
        { OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '11' },
        "invalid OTEL_BLRP_MAX_EXPORT_BATCH_SIZE '11': expected at most --queue-max-records (10)",
      ],
      ['--queue-max-records', ['--queue-max-records', '0'], {}, "invalid --queue-max-records '0': expected an integer from 1 to 100000000"],
      ['--replay', ['--replay', 'pcap:x'], {}, "invalid --replay 'pcap:x': expected synthetic:<events per second>, from 1 to 10000000"],
      [
        'FLOWTAP_REPLAY',
        [],
        { FLOWTAP_REPLAY: 'synthetic:0' },
        "invalid FLOWTAP_REPLAY 'synthetic:0': expected synthetic:<events per second>, from 1 to 10000000",
      ],
      [
        'batch > explicit queue',
        [],
        { OTEL_BLRP_MAX_QUEUE_SIZE: '10', OTEL_BLRP_MAX_EXPORT_BATCH_SIZE: '11' },
        "invalid OTEL_BLRP_MAX_EXPORT_BATCH_SIZE '11': expected at most OTEL_BLRP_MAX_QUEUE_SIZE (10)",
      ],
      [
        'OTEL_EXPORTER_OTLP_TIMEOUT',
        [],
        { OTEL_EXPORTER_OTLP_TIMEOUT: '0' },
        "invalid OTEL_EXPORTER_OTLP_TIMEOUT '0': expected an integer from 1 to 2147483647 (milliseconds)",
      ],
      [
        'OTEL_EXPORTER_OTLP_LOGS_TIMEOUT',
        [],
        { OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: '10s', OTEL_EXPORTER_OTLP_TIMEOUT: '100' },
        "invalid OTEL_EXPORTER_OTLP_LOGS_TIMEOUT '10s': expected an integer from 1 to 2147483647 (milliseconds)",
      ],
      [
        'OTEL_EXPORTER_OTLP_COMPRESSION',
        [],
        { OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' },
        "invalid OTEL_EXPORTER_OTLP_COMPRESSION 'zstd': expected one of gzip, none",
      ],
      [
        'OTEL_EXPORTER_OTLP_LOGS_COMPRESSION',
        [],
        { OTEL_EXPORTER_OTLP_LOGS_COMPRESSION: 'deflate' },
        "invalid OTEL_EXPORTER_OTLP_LOGS_COMPRESSION 'deflate': expected one of gzip, none",
      ],
      [
        'OTEL_EXPORTER_OTLP_PROTOCOL',
        [],
        { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
        "invalid OTEL_EXPORTER_OTLP_PROTOCOL 'http/json': expected one of grpc, http/protobuf",
      ],
      [
        'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL',
        [],
        { OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'udp' },
        "invalid OTEL_EXPORTER_OTLP_LOGS_PROTOCOL 'udp': expected one of grpc, http/protobuf",
      ],
      [
        'OTEL_RESOURCE_ATTRIBUTES',
        [],
        { OTEL_RESOURCE_ATTRIBUTES: 'a=1,b' },
        "invalid OTEL_RESOURCE_ATTRIBUTES 'a=1,b': entry \"b\" is not key=value (percent-encode ',' and '=')",
      ],
      ['an unknown flag', ['--colour'], {}, "unknown option '--colour' (see --help)"],
      ['a positional argument', ['eth0'], {}, "unexpected argument 'eth0': flowtap takes options only (see --help)"],
      ['a flag without its value', ['--exporter'], {}, "--exporter needs a value: otlp|console|none (write --exporter=<value> for one starting with '-')"],
      ['a value for --help', ['--help=yes'], {}, '--help takes no value'],
      ['--metrics', ['--metrics', 'prometheus'], {}, "invalid --metrics 'prometheus': expected one of otlp, none"],
      ['OTEL_METRICS_EXPORTER', [], { OTEL_METRICS_EXPORTER: 'otlp,console' }, "invalid OTEL_METRICS_EXPORTER 'otlp,console': expected one of otlp, none"],
      [
        'OTEL_METRIC_EXPORT_INTERVAL',
        [],
        { OTEL_METRIC_EXPORT_INTERVAL: '0' },
        "invalid OTEL_METRIC_EXPORT_INTERVAL '0': expected an integer from 1 to 2147483647 (milliseconds)",
      ],
      [
        'OTEL_METRIC_EXPORT_TIMEOUT > interval',
        [],
        { OTEL_METRIC_EXPORT_INTERVAL: '1000', OTEL_METRIC_EXPORT_TIMEOUT: '2000' },
        "invalid OTEL_METRIC_EXPORT_TIMEOUT '2000': expected at most OTEL_METRIC_EXPORT_INTERVAL (1000)",
      ],
      [
        'OTEL_EXPORTER_OTLP_METRICS_ENDPOINT',
        [],
        { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'x:4317' },
        "invalid OTEL_EXPORTER_OTLP_METRICS_ENDPOINT 'x:4317': expected an http:// or https:// URL, e.g. http://localhost:4317",
      ],
      [
        'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL',
        [],
        { OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json' },
        "invalid OTEL_EXPORTER_OTLP_METRICS_PROTOCOL 'http/json': expected grpc (flowtap exports its own metrics over gRPC only; set OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=grpc or --metrics none)",
      ],
      [
        '--health-address (no port)',
        ['--health-address', 'localhost'],
        {},
        "invalid --health-address 'localhost': expected host:port, [ipv6]:port or :port, with a port from 0 to 65535",
      ],
      [
        'FLOWTAP_HEALTH_ADDRESS (port too big)',
        [],
        { FLOWTAP_HEALTH_ADDRESS: ':65536' },
        "invalid FLOWTAP_HEALTH_ADDRESS ':65536': expected host:port, [ipv6]:port or :port, with a port from 0 to 65535",
      ],
      [
        '--health-address (bare IPv6)',
        ['--health-address', '::1:80'],
        {},
        "invalid --health-address '::1:80': expected host:port, [ipv6]:port or :port, with a port from 0 to 65535",
      ],
      [
        '--ready-export-failure-seconds',
        ['--ready-export-failure-seconds', '0'],
        {},
        "invalid --ready-export-failure-seconds '0': expected an integer from 1 to 2147483 (seconds)",
      ],
      [
        'FLOWTAP_SUMMARY_INTERVAL_SECONDS',
        [],
        { FLOWTAP_SUMMARY_INTERVAL_SECONDS: '1.5' },
        "invalid FLOWTAP_SUMMARY_INTERVAL_SECONDS '1.5': expected an integer from 0 to 2147483 (seconds; 0 turns it off)",
      ],
    ])('%s', (_name, argv, env, message) => {
      expect(error(argv, env)).toBe(message);
    });

    it('says how to fix a missing cgroup v2 mount', () => {
      const message = 'no cgroup v2 mount found in /proc/self/mountinfo: pass --cgroup <dir> or set FLOWTAP_CGROUP';
      expect(error([], {}, V1_ONLY)).toBe(message);
      expect(error([], {}, null)).toBe(message);
      expect(parseConfig(['--cgroup', '/x'], {}, V1_ONLY).cgroup).toBe('/x');
    });

    it('keeps every message on one line', () => {
      expect(error(['--exporter', '--cgroup', 'x'])).not.toContain('\n');
    });
  });
});

describe('--cgroup pod', () => {
  const UID = '0f3c2b9e-1d2a-4c5b-8e7f-6a5b4c3d2e1f';
  const OWN = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-abc.scope`;
  const POD = `/sys/fs/cgroup${OWN.slice(0, OWN.lastIndexOf('/'))}`;
  const view = { procSelfCgroup: `0::${OWN}\n`, isDirectory: () => true };

  it("resolves to the parent of flowtap's own cgroup, from the flag or FLOWTAP_CGROUP", () => {
    expect(parseConfig(['--cgroup', 'pod'], {}, UNIFIED, view).cgroup).toBe(POD);
    expect(parseConfig([], { FLOWTAP_CGROUP: 'pod' }, UNIFIED, view).cgroup).toBe(POD);
    expect(parseConfig([], { FLOWTAP_CGROUP: 'pod', OTEL_RESOURCE_ATTRIBUTES: `k8s.pod.uid=${UID}` }, UNIFIED, view).cgroup).toBe(POD);
  });

  it('an explicit directory is taken as it is, and never looks at /proc/self/cgroup', () => {
    const isDirectory = jest.fn(() => true);
    expect(parseConfig(['--cgroup', '/sys/fs/cgroup/x'], {}, UNIFIED, { procSelfCgroup: undefined, isDirectory }).cgroup).toBe('/sys/fs/cgroup/x');
    expect(isDirectory).not.toHaveBeenCalled();
  });

  it('names the flag or the variable in its one-line error', () => {
    const hidden = { procSelfCgroup: '0::/\n', isDirectory: () => true };
    let message = '';
    try {
      parseConfig([], { FLOWTAP_CGROUP: 'pod' }, UNIFIED, hidden);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/^FLOWTAP_CGROUP=pod: flowtap's own cgroup path is hidden/);
    expect(message).not.toContain('\n');
    expect(() => parseConfig(['--cgroup', 'pod'], {}, UNIFIED, hidden)).toThrow(/^--cgroup pod: /);
    // without a view of the system (a caller that passes none), it cannot resolve either
    expect(() => parseConfig(['--cgroup', 'pod'], {}, UNIFIED)).toThrow(/^--cgroup pod: cannot read \/proc\/self\/cgroup/);
  });

  it('is described in --help', () => {
    expect(helpText()).toContain("'pod': the parent of flowtap's own cgroup");
  });
});

describe('requestedInfo', () => {
  it('finds --help and --version before --', () => {
    expect(requestedInfo([])).toBeUndefined();
    expect(requestedInfo(['--exporter', 'foo', '-h'])).toBe('help');
    expect(requestedInfo(['--version'])).toBe('version');
    expect(requestedInfo(['-V', '--help'])).toBe('help');
    expect(requestedInfo(['--', '--help'])).toBeUndefined();
  });
});

describe('helpText', () => {
  it('lists every flag with its variables and default, from the option table', () => {
    const text = helpText();
    for (const spec of Object.values(OPTIONS)) {
      expect(text).toContain(`--${spec.flag} ${spec.valueName}`);
      for (const env of spec.env) expect(text).toContain(env);
    }
    expect(text).toContain('env OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT; default http://localhost:4317');
    expect(text).toContain('default the cgroup v2 mount root');
    expect(text).toContain('OTEL_BLRP_MAX_EXPORT_BATCH_SIZE');
  });
});

describe('self-telemetry, health and summary options', () => {
  it("exports metrics by default only with the otlp exporter, to the records' endpoint", () => {
    expect(parseConfig([], {}, UNIFIED).metrics).toBe('otlp');
    expect(parseConfig(['--exporter', 'console'], {}, UNIFIED).metrics).toBe('none');
    expect(parseConfig(['--exporter', 'none'], {}, UNIFIED).metrics).toBe('none');
    expect(parseConfig(['--exporter', 'console', '--metrics', 'otlp'], {}, UNIFIED).metrics).toBe('otlp');
    expect(parseConfig([], { OTEL_METRICS_EXPORTER: 'none' }, UNIFIED).metrics).toBe('none');
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://all:4317', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://metrics:4317' };
    expect(parseConfig([], env, UNIFIED).metricsExport.endpoint).toBe('https://metrics:4317');
    expect(parseConfig(['--endpoint', 'http://flag:4317'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://all:4317' }, UNIFIED).metricsExport.endpoint).toBe(
      'http://flag:4317',
    );
  });

  it('reads OTEL_METRIC_EXPORT_INTERVAL and clamps the default timeout to it', () => {
    expect(parseConfig([], { OTEL_METRIC_EXPORT_INTERVAL: '500' }, UNIFIED).metricsExport).toEqual({
      intervalMillis: 500,
      timeoutMillis: 500,
      endpoint: 'http://localhost:4317',
    });
    expect(parseConfig([], { OTEL_METRIC_EXPORT_INTERVAL: '5000', OTEL_METRIC_EXPORT_TIMEOUT: '100' }, UNIFIED).metricsExport.timeoutMillis).toBe(100);
  });

  it('ignores the metric variables when metrics are off', () => {
    const env = { OTEL_METRIC_EXPORT_INTERVAL: 'soon', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'nowhere' };
    expect(parseConfig(['--metrics', 'none'], env, UNIFIED).metricsExport).toEqual(DEFAULTS.metricsExport);
  });

  it('parses health addresses', () => {
    const at = (raw: string) => parseConfig(['--health-address', raw], {}, UNIFIED).healthAddress;
    expect(at('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(at('localhost:0')).toEqual({ host: 'localhost', port: 0 });
    expect(at(':9')).toEqual({ host: '', port: 9 });
    expect(at('[fd00::1]:65535')).toEqual({ host: 'fd00::1', port: 65535 });
  });

  it('documents every new option in --help', () => {
    const help = helpText();
    for (const s of [
      '--metrics otlp|none',
      'OTEL_METRICS_EXPORTER',
      '--health-address <host:port>',
      'FLOWTAP_HEALTH_ADDRESS',
      '--summary-interval-seconds <s>',
      '--ready-export-failure-seconds <s>',
      'OTEL_METRIC_EXPORT_INTERVAL',
    ]) {
      expect(help).toContain(s);
    }
  });
});

describe('bad configuration at start', () => {
  const files: Record<string, string> = { '/etc/tls/ca.pem': '-----BEGIN CERTIFICATE-----\n', '/etc/tls/empty.pem': '' };
  /** A readFile over `files` that fails as node:fs does. */
  const readFile = (p: string): Buffer => {
    if (p === '/etc/tls') throw Object.assign(new Error('EISDIR: illegal operation on a directory'), { code: 'EISDIR' });
    if (p === '/etc/tls/secret.pem') throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    if (!(p in files)) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${p}'`), { code: 'ENOENT' });
    return Buffer.from(files[p]);
  };
  const system = { procSelfCgroup: undefined, isDirectory: () => false, readFile };
  const err = (argv: string[], env: Record<string, string>): string => {
    try {
      parseConfig(argv, env, UNIFIED, system);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('no ConfigError');
  };

  it.each([
    ['OTEL_EXPORTER_OTLP_CERTIFICATE', '/etc/tls/missing.pem', "cannot read OTEL_EXPORTER_OTLP_CERTIFICATE '/etc/tls/missing.pem': no such file"],
    ['OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE', '/etc/tls/secret.pem', "cannot read OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE '/etc/tls/secret.pem': permission denied"],
    ['OTEL_EXPORTER_OTLP_CLIENT_KEY', '/etc/tls', "cannot read OTEL_EXPORTER_OTLP_CLIENT_KEY '/etc/tls': a directory, not a file"],
    [
      'OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE',
      '/etc/tls/empty.pem',
      "cannot use OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE '/etc/tls/empty.pem': the file is empty",
    ],
  ])('a TLS file that cannot be read: %s', (name, file, message) => {
    expect(err([], { [name]: file })).toBe(message);
  });

  it('reads the TLS files that take effect, and accepts readable ones', () => {
    const env = { OTEL_EXPORTER_OTLP_CERTIFICATE: '/etc/tls/ca.pem', OTEL_EXPORTER_OTLP_CLIENT_KEY: '/etc/tls/ca.pem' };
    expect(parseConfig([], env, UNIFIED, system).exporter).toBe('otlp');
    // the signal-specific one wins: the generic one does not take effect (with metrics off; they would read it)
    const both = { OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE: '/etc/tls/ca.pem', OTEL_EXPORTER_OTLP_CERTIFICATE: '/nope' };
    expect(parseConfig(['--metrics', 'none'], both, UNIFIED, system).exporter).toBe('otlp');
    expect(err([], both)).toBe("cannot read OTEL_EXPORTER_OTLP_CERTIFICATE '/nope': no such file");
    // the metrics export reads its own (and the generic) ones
    expect(err(['--exporter', 'console', '--metrics', 'otlp'], { OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE: '/nope' })).toBe(
      "cannot read OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE '/nope': no such file",
    );
    // no OTLP export: nothing read
    expect(parseConfig(['--exporter', 'console'], { OTEL_EXPORTER_OTLP_CERTIFICATE: '/nope' }, UNIFIED, system).exporter).toBe('console');
  });

  it.each([
    ['OTEL_EXPORTER_OTLP_HEADERS', 'garbage', 'invalid OTEL_EXPORTER_OTLP_HEADERS: entry 1 of 1 is not key=value'],
    ['OTEL_EXPORTER_OTLP_LOGS_HEADERS', 'api-key=s3cret,Bearer t0ken', 'invalid OTEL_EXPORTER_OTLP_LOGS_HEADERS: entry 2 of 2 is not key=value'],
    ['OTEL_EXPORTER_OTLP_HEADERS', '=s3cret', 'invalid OTEL_EXPORTER_OTLP_HEADERS: entry 1 of 1 has no valid header name before the ='],
    ['OTEL_EXPORTER_OTLP_HEADERS', 'bad key=s3cret', 'invalid OTEL_EXPORTER_OTLP_HEADERS: entry 1 of 1 has no valid header name before the ='],
    ['OTEL_EXPORTER_OTLP_HEADERS', 'authorization=%zzs3cret', 'invalid OTEL_EXPORTER_OTLP_HEADERS: entry 1 of 1 has a value that is not percent-encoded'],
  ])('malformed headers %s=%j: named, the value never shown', (name, raw, start) => {
    const message = err([], { [name]: raw });
    expect(message.startsWith(start)).toBe(true);
    expect(message).not.toContain('s3cret');
    expect(message).not.toContain('t0ken');
  });

  it('accepts well-formed headers', () => {
    expect(parseConfig([], { OTEL_EXPORTER_OTLP_HEADERS: 'api-key=abc, authorization=Bearer%20x,' }, UNIFIED).exporter).toBe('otlp');
  });

  it.each([
    ['OTEL_EXPORTER_OTLP_INSECURE', 'maybe'],
    ['OTEL_EXPORTER_OTLP_LOGS_INSECURE', '1'],
  ])('a bad boolean %s=%s', (name, raw) => {
    expect(err([], { [name]: raw })).toBe(`invalid ${name} '${raw}': expected true or false`);
  });

  it('accepts the booleans in any case', () => {
    expect(parseConfig([], { OTEL_EXPORTER_OTLP_INSECURE: 'TRUE', OTEL_EXPORTER_OTLP_LOGS_INSECURE: 'false' }, UNIFIED).exporter).toBe('otlp');
  });

  it('never echoes the credentials of a bad endpoint', () => {
    expect(err(['--endpoint', 'ftp://user:pa55@collector:21'], {})).toBe(
      "invalid --endpoint 'ftp://***@collector:21': expected an http:// or https:// URL, e.g. http://localhost:4317",
    );
    expect(err([], { OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'grpc://me:pa55@x' })).not.toContain('pa55');
  });

  it('says where each value came from: the flag, the variable, or the flag for a default', () => {
    const { sources } = loadConfig(['--exporter', 'none'], { FLOWTAP_CGROUP: '/sys/fs/cgroup/x', FLOWTAP_HEALTH_ADDRESS: ':0' }, UNIFIED);
    expect(sources.cgroup).toBe('FLOWTAP_CGROUP');
    expect(sources.exporter).toBe('--exporter');
    expect(sources.healthAddress).toBe('FLOWTAP_HEALTH_ADDRESS');
    expect(sources.ringBufferBytes).toBe('--ring-buffer-bytes');
  });
});

describe('every numeric option and variable at its bounds (limits.ts)', () => {
  const numeric = [
    ...Object.values(OPTIONS).map((s) => ({ names: [`--${s.flag}`, ...s.env], limit: s.limit })),
    ...[...Object.values(BATCH_ENV), ...Object.values(OTLP_ENV), ...Object.values(METRICS_ENV)].map((s) => ({ names: [...s.env], limit: s.limit })),
  ].filter((o): o is { names: string[]; limit: Limit } => o.limit !== undefined);

  it('covers the table', () => {
    expect(numeric.map((o) => o.names[0])).toEqual(
      expect.arrayContaining([
        '--ring-buffer-bytes',
        '--flow-table-entries',
        '--ring-buffer-poll-millis',
        'OTEL_BLRP_SCHEDULE_DELAY',
        '--dns-zero-ttl-seconds',
      ]),
    );
    expect(numeric.length).toBe(17);
  });

  it.each(numeric.flatMap((o) => o.names.map((name) => [name, o.limit] as const)))('%s: min and max taken, one past each refused', (name, limit) => {
    // A batch larger than the queue, or a metric timeout longer than the interval, is refused for another reason: keep the others out of the way.
    const room = { OTEL_BLRP_MAX_QUEUE_SIZE: String(LIMITS.queueMaxRecords.max), OTEL_METRIC_EXPORT_INTERVAL: String(LIMITS.metricExportIntervalMillis.max) };
    const withValue = (v: number): [string[], Record<string, string>] => {
      const env: Record<string, string> = name === 'OTEL_BLRP_MAX_QUEUE_SIZE' || name === 'OTEL_METRIC_EXPORT_INTERVAL' ? {} : { ...room };
      if (name === 'OTEL_BLRP_MAX_QUEUE_SIZE' || name.startsWith('--queue') || name === 'FLOWTAP_QUEUE_MAX_RECORDS') env.OTEL_BLRP_MAX_EXPORT_BATCH_SIZE = '1';
      if (name === 'OTEL_METRIC_EXPORT_INTERVAL') env.OTEL_METRIC_EXPORT_TIMEOUT = '1';
      return name.startsWith('--') ? [[`${name}=${v}`], env] : [[], { ...env, [name]: String(v) }];
    };
    const past = limit.powerOfTwo === true ? [limit.min / 2, limit.max * 2] : [limit.min - 1, limit.max + 1];
    for (const v of [limit.min, limit.max]) {
      // a batch is also at most the queue, whose largest is below the batch's own limit
      if (name === 'OTEL_BLRP_MAX_EXPORT_BATCH_SIZE' && v > LIMITS.queueMaxRecords.max) {
        expect(error(...withValue(v))).toBe(`invalid ${name} '${v}': expected at most OTEL_BLRP_MAX_QUEUE_SIZE (${LIMITS.queueMaxRecords.max})`);
      } else {
        expect(() => parseConfig(...withValue(v), UNIFIED)).not.toThrow();
      }
    }
    for (const v of past.filter((p) => p >= 0)) expect(error(...withValue(v))).toBe(`invalid ${name} '${v}': expected ${describeLimit(limit)}`);
    if (limit.min === 0) expect(error(...withValue(-1))).toMatch(name.startsWith('--') ? /needs a value|invalid/ : /^invalid /);
  });
});

describe('helpText and the limits', () => {
  it('shows the range of every numeric option, from the same table the values are checked against', () => {
    const help = helpText();
    expect(help).toContain('env FLOWTAP_RING_BUFFER_BYTES; default 8388608; a power of two from 4096 to 1073741824 (bytes)');
    expect(help).toContain('env FLOWTAP_RING_BUFFER_POLL_MILLIS; default 50; an integer from 1 to 1000 (milliseconds)');
  });
});

describe('spans and console format options', () => {
  it("spans are off by default; OTEL_TRACES_EXPORTER or --spans turns them on, to the records' endpoint unless told otherwise", () => {
    expect(parseConfig([], {}, UNIFIED)).toMatchObject({ spans: 'none', spansEndpoint: undefined });
    expect(parseConfig([], { OTEL_TRACES_EXPORTER: 'otlp' }, UNIFIED)).toMatchObject({ spans: 'otlp', spansEndpoint: undefined });
    expect(parseConfig(['--spans', 'none'], { OTEL_TRACES_EXPORTER: 'otlp' }, UNIFIED).spans).toBe('none');
    expect(parseConfig(['--spans', 'otlp'], { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://jaeger:4317' }, UNIFIED)).toMatchObject({
      spans: 'otlp',
      spansEndpoint: 'http://jaeger:4317',
    });
    expect(parseConfig(['--spans', 'otlp', '--spans-endpoint', 'http://127.0.0.1:14317'], {}, UNIFIED).spansEndpoint).toBe('http://127.0.0.1:14317');
  });

  it('spans with a console exporter still read the OTLP timeout and compression', () => {
    const c = parseConfig(
      ['--exporter', 'console', '--spans', 'otlp'],
      { OTEL_EXPORTER_OTLP_TIMEOUT: '1234', OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' },
      UNIFIED,
    );
    expect(c.otlp).toEqual({ protocol: 'grpc', tracesProtocol: 'grpc', timeoutMillis: 1234, compression: 'gzip' });
  });

  it('--console-format json (default) or text', () => {
    expect(parseConfig([], {}, UNIFIED).consoleFormat).toBe('json');
    expect(parseConfig(['--console-format', 'text'], {}, UNIFIED).consoleFormat).toBe('text');
    expect(parseConfig([], { FLOWTAP_CONSOLE_FORMAT: 'TEXT' }, UNIFIED).consoleFormat).toBe('text');
  });

  it('names the flag or variable on a bad value', () => {
    expect(error(['--spans', 'jaeger'])).toBe("invalid --spans 'jaeger': expected one of otlp, none");
    expect(error([], { OTEL_TRACES_EXPORTER: 'zipkin' })).toBe("invalid OTEL_TRACES_EXPORTER 'zipkin': expected one of otlp, none");
    expect(error(['--spans-endpoint', 'jaeger:4317'])).toBe(
      "invalid --spans-endpoint 'jaeger:4317': expected an http:// or https:// URL, e.g. http://localhost:4317",
    );
    expect(error(['--console-format', 'yaml'])).toBe("invalid --console-format 'yaml': expected one of json, text");
    expect(error(['--spans', 'otlp'], { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' })).toBe(
      "invalid OTEL_EXPORTER_OTLP_TRACES_PROTOCOL 'http/json': expected one of grpc, http/protobuf",
    );
    // spans off: their protocol variable is not read
    expect(parseConfig([], { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'zipkin' }, UNIFIED).spans).toBe('none');
  });

  it('spans over http/protobuf: the spans endpoint as given, else beside the records (/v1/traces), else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces', () => {
    const traces = (argv: string[], env: Record<string, string>) => {
      const c = parseConfig(['--spans', 'otlp', ...argv], env, UNIFIED);
      return [c.otlp.tracesProtocol, c.spansEndpoint];
    };
    const http = { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' };
    expect(traces([], http)).toEqual(['http/protobuf', 'http://localhost:4318/v1/traces']);
    expect(traces([], { ...http, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toEqual(['http/protobuf', 'http://c:4318/v1/traces']);
    expect(traces(['--spans-endpoint', 'http://j:4318/custom'], http)).toEqual(['http/protobuf', 'http://j:4318/custom']);
    expect(traces([], { ...http, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://j:4318/v1/traces' })).toEqual(['http/protobuf', 'http://j:4318/v1/traces']);
    // both over HTTP: OTEL_EXPORTER_OTLP_PROTOCOL covers records and spans; the spans go beside the records
    expect(traces(['--endpoint', 'http://gw:4318/v1/logs'], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })).toEqual([
      'http/protobuf',
      'http://gw:4318/v1/traces',
    ]);
    // over gRPC the spans endpoint stays unset: the records' endpoint is used
    expect(traces([], {})).toEqual(['grpc', undefined]);
  });

  it('are in --help', () => {
    const help = helpText();
    for (const s of [
      '--spans otlp|none',
      'OTEL_TRACES_EXPORTER',
      '--spans-endpoint <url>',
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
      '--console-format json|text',
      'FLOWTAP_CONSOLE_FORMAT',
    ]) {
      expect(help).toContain(s);
    }
  });
});
