/**
 * The configuration, assembled: flags and variables read against the option
 * table (argv.ts, options.ts), the cgroup resolved (cgroup.ts), the SDK
 * variables checked where they take effect (sdk-env.ts). Each part is worked
 * out once, in order. Pure: argv, env, the text of /proc/self/mountinfo and
 * a view of the system (for --cgroup pod and the TLS files) come in as
 * arguments; bad input throws a ConfigError naming the flag or variable, the
 * bad value and what was expected.
 */
import { parseResourceAttributes } from '../record/resource';
import { readOptions } from './argv';
import { podCgroup, type PodView } from './cgroup';
import { envString, type Env } from './env';
import { ConfigError } from './error';
import { OPTIONS } from './options';
import { POD_CGROUP } from './podcgroup';
import {
  batchConfig,
  checkTransport,
  logsEndpoint,
  tracesEndpoint,
  metricsExport,
  metricsExportDefaults,
  otlpConfig,
  OTLP_DEFAULTS,
  type ReadFile,
} from './sdk-env';
import type { Config, ConfigSources, FlagOptions } from './types';

export { requestedInfo, type InfoRequest } from './argv';
export { findCgroup2Mount, type PodView } from './cgroup';
export { ConfigError } from './error';
export { helpText } from './help';
export { OPTIONS, type DefaultContext, type OptionSpec } from './options';
export { BATCH_ENV, METRICS_ENV, OTLP_ENV, type EnvSpec } from './sdk-env';
export * from './types';

/** What the configuration reads from the system; the CLI passes it in. */
export interface SystemView extends PodView {
  /** Reads a TLS file named by an OTEL_EXPORTER_OTLP_*_CERTIFICATE/_KEY variable; absent: they are not opened. */
  readFile?: ReadFile;
}

/** The configuration and where each flag option came from (for messages about it later, e.g. a cgroup that cannot be opened). */
export interface LoadedConfig {
  config: Config;
  sources: ConfigSources;
}

/**
 * The configuration from argv (without node and script), the environment,
 * the text of /proc/self/mountinfo (read for the --cgroup default and for
 * --cgroup pod) and what `system` shows. Throws ConfigError. --help/--version
 * are accepted and ignored here; see requestedInfo.
 */
export function loadConfig(argv: readonly string[], env: Env, mountinfo?: string, system?: SystemView): LoadedConfig {
  const options = readOptions(argv, env);
  const keys = Object.keys(OPTIONS) as (keyof FlagOptions)[];
  const sources = Object.fromEntries(keys.map((k) => [k, options.source(k)])) as unknown as ConfigSources;

  const givenCgroup = options.value('cgroup', { mountinfo });
  const cgroup = givenCgroup === POD_CGROUP ? podCgroup(sources.cgroup, mountinfo, system, resourceAttributes(env)['k8s.pod.uid']) : givenCgroup;
  const exporter = options.value('exporter', { mountinfo });
  // SDK variables are checked only where they take effect: the OTLP ones
  // with --exporter otlp.
  const spans = options.value('spans', { mountinfo });
  const otlp = exporter === 'otlp' || spans === 'otlp' ? otlpConfig(env, spans === 'otlp') : OTLP_DEFAULTS;
  const ctx = { mountinfo, exporter, protocol: otlp.protocol };
  const flagOptions = Object.fromEntries(
    keys.map((k) => [k, k === 'cgroup' ? cgroup : k === 'exporter' ? exporter : options.value(k, ctx)]),
  ) as unknown as FlagOptions;
  flagOptions.endpoint = logsEndpoint(env, otlp.protocol, flagOptions.endpoint, options.givenBy('endpoint'));
  if (spans === 'otlp') flagOptions.spansEndpoint = tracesEndpoint(env, otlp.tracesProtocol, flagOptions.spansEndpoint, flagOptions.endpoint);

  // The batch variables take effect for every exporter ('none' runs the export queue up to the send).
  const batch = batchConfig(env, flagOptions.queueMaxRecords, sources.queueMaxRecords);
  if (exporter === 'otlp') checkTransport(env, 'LOGS', system?.readFile);
  if (spans === 'otlp') checkTransport(env, 'TRACES', system?.readFile);
  const metricsDefaultEndpoint = otlp.protocol === 'grpc' ? flagOptions.endpoint : undefined;
  if (flagOptions.metrics === 'otlp') checkTransport(env, 'METRICS', system?.readFile);
  const metrics = flagOptions.metrics === 'otlp' ? metricsExport(env, metricsDefaultEndpoint) : metricsExportDefaults(flagOptions.endpoint);
  resourceAttributes(env);
  return { config: { ...flagOptions, otlp, batch, metricsExport: metrics }, sources };
}

/** loadConfig's configuration alone. */
export function parseConfig(argv: readonly string[], env: Env, mountinfo?: string, system?: SystemView): Config {
  return loadConfig(argv, env, mountinfo, system).config;
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
