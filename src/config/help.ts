/** The --help text, made from the option table and the SDK variables. */
import { describeLimit } from './limits';
import { OPTIONS, type OptionSpec } from './options';
import { BATCH_ENV, METRICS_ENV, OTLP_ENV, type EnvSpec } from './sdk-env';

/** --help text, made from the option table. */
export function helpText(): string {
  const rows: [string, string][] = [];
  for (const spec of Object.values(OPTIONS) as OptionSpec<unknown>[]) {
    const dflt = spec.defaultText ?? String(spec.default);
    rows.push([`--${spec.flag} ${spec.valueName}`, spec.description]);
    rows.push(['', `env ${spec.env.join(', then ')}; default ${dflt}${spec.limit === undefined ? '' : `; ${describeLimit(spec.limit)}`}`]);
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
    'OpenTelemetry log records per flow (OTLP/gRPC or OTLP/HTTP): one when it',
    'begins, one when it ends (duration, how it closed). With --spans otlp, each',
    'ended flow is also one span.',
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
