/**
 * The `ready` log line and the start failures after configuration, as data.
 * Endpoints are shown without their credentials (user:password@ in a URL);
 * headers are never shown.
 */
import type { Config, ConfigSources } from '../config/config';
import { redactUrl } from '../config/values';
import { filtersActive, probeFilters } from '../kernel/filter';

/** The fields of the `ready` line. */
export function readyFields(
  config: Config,
  version: string,
  healthAddress: string | undefined,
  cgroupProcesses: number | undefined,
  spans: string | undefined,
): Record<string, unknown> {
  return {
    version,
    cgroup: config.cgroup,
    cgroupProcesses,
    exporter: config.exporter,
    endpoint: config.exporter === 'otlp' ? redactUrl(config.endpoint) : undefined,
    ringBufferBytes: config.ringBufferBytes,
    flowTableEntries: config.flowTableEntries,
    queueMaxRecords: config.queueMaxRecords,
    replay: config.replay === undefined ? undefined : `synthetic:${config.replay.ratePerSecond}`,
    filters: filtersActive(probeFilters(config)) ? probeFilters(config) : undefined,
    metrics: config.metrics === 'otlp' ? redactUrl(config.metricsExport.endpoint) : 'none',
    spans: spans ?? 'none',
    healthAddress,
    summaryIntervalSeconds: config.summaryIntervalSeconds > 0 ? config.summaryIntervalSeconds : undefined,
  };
}

/** Where records go, as log lines may name it: the endpoint without credentials, or the exporter. */
export function destination(config: Pick<Config, 'exporter' | 'endpoint'>): string {
  return config.exporter === 'otlp' ? redactUrl(config.endpoint) : config.exporter;
}

/** What the CLI says, and the exit status, when the health server cannot listen. */
export function healthListenFailure(error: Error, config: Config, sources: ConfigSources): { exitCode: 1 | 2; message: string } {
  const { host, port } = config.healthAddress ?? { host: '', port: 0 };
  const where = `${sources.healthAddress} ${host}:${port}`;
  if ((error as NodeJS.ErrnoException).code === 'EACCES') {
    return { exitCode: 1, message: `${where}: ${error.message}: ports below 1024 need CAP_NET_BIND_SERVICE` };
  }
  return { exitCode: 2, message: `${where}: ${error.message}` };
}
