// The OpenTelemetry Collector configs the tests (test/helpers/collector.ts) and
// the benchmarks (bench/) run: an otlp receiver on 127.0.0.1 and, per signal,
// one exporter. Pure — no I/O, no Node globals — so jest's CommonJS and
// bench's ES modules both load it.

/** PEM files for the receiver's TLS settings. */
export interface CollectorTls {
  certFile: string;
  keyFile: string;
  /** When set, clients must present a certificate signed by this CA. */
  clientCaFile?: string;
}

/** Receiver security; absent fields keep the plain, unauthenticated default. */
export interface CollectorSecurity {
  tls?: CollectorTls;
  bearerToken?: string;
}

/** Where one signal goes. */
export type CollectorSink =
  /** The file exporter: each request as OTLP JSON (one per line) or protobuf (length-prefixed). */
  | { kind: 'file'; path: string; format: 'json' | 'proto'; flushIntervalMillis: number; append?: boolean }
  /** The debug exporter at basic verbosity: one log line per batch with its record count. */
  | { kind: 'debug' };

export interface CollectorConfigOptions {
  grpcPort: number;
  /** Also receive OTLP/HTTP, on this port. */
  httpPort?: number;
  security?: CollectorSecurity;
  logs: CollectorSink;
  /** No metrics pipeline when absent. */
  metrics?: CollectorSink;
  /** A batch processor before the exporters. Default: nothing between receiver and exporter. */
  batch?: boolean;
}

/** The collector's YAML config. Exporters are named `<kind>/<signal>`, e.g. `file/logs`. */
export function collectorConfig(o: CollectorConfigOptions): string {
  const { tls, bearerToken } = o.security ?? {};
  const protocolSecurity = (indent: string): string[] => [
    ...(tls === undefined
      ? []
      : [
          `${indent}tls:`,
          `${indent}  cert_file: ${JSON.stringify(tls.certFile)}`,
          `${indent}  key_file: ${JSON.stringify(tls.keyFile)}`,
          ...(tls.clientCaFile === undefined ? [] : [`${indent}  client_ca_file: ${JSON.stringify(tls.clientCaFile)}`]),
        ]),
    ...(bearerToken === undefined ? [] : [`${indent}auth:`, `${indent}  authenticator: bearertokenauth`]),
  ];
  const pipelines = Object.entries({ logs: o.logs, metrics: o.metrics }).filter((e): e is [string, CollectorSink] => e[1] !== undefined);
  const exporter = ([signal, sink]: [string, CollectorSink]): string[] =>
    sink.kind === 'debug'
      ? [`  debug/${signal}:`, '    verbosity: basic']
      : [
          `  file/${signal}:`,
          `    path: ${JSON.stringify(sink.path)}`,
          `    format: ${sink.format}`,
          ...(sink.append ? ['    append: true'] : []),
          `    flush_interval: ${sink.flushIntervalMillis}ms`,
        ];
  return [
    'receivers:',
    '  otlp:',
    '    protocols:',
    '      grpc:',
    `        endpoint: 127.0.0.1:${o.grpcPort}`,
    ...protocolSecurity('        '),
    ...(o.httpPort === undefined ? [] : ['      http:', `        endpoint: 127.0.0.1:${o.httpPort}`, ...protocolSecurity('        ')]),
    ...(bearerToken === undefined ? [] : ['extensions:', '  bearertokenauth:', `    token: ${JSON.stringify(bearerToken)}`]),
    ...(o.batch ? ['processors:', '  batch: {}'] : []),
    'exporters:',
    ...pipelines.flatMap(exporter),
    'service:',
    ...(bearerToken === undefined ? [] : ['  extensions: [bearertokenauth]']),
    '  telemetry:',
    // The debug exporter's per-batch lines are how records are counted: no log sampling.
    ...(pipelines.some(([, sink]) => sink.kind === 'debug') ? ['    logs:', '      sampling:', '        enabled: false'] : []),
    // No self-metrics endpoint: its default :8888 would clash between parallel collectors.
    '    metrics:',
    '      level: none',
    '  pipelines:',
    ...pipelines.flatMap(([signal, sink]) => [
      `    ${signal}:`,
      '      receivers: [otlp]',
      ...(o.batch ? ['      processors: [batch]'] : []),
      `      exporters: [${sink.kind}/${signal}]`,
    ]),
    '',
  ].join('\n');
}
