#!/usr/bin/env node
/**
 * flowtap's entry point (with ./runtime/young-generation, which it loads
 * first), and the only module that reads process.argv and process.env,
 * installs process handlers, or exits. main() is the start sequence, top to
 * bottom; the pieces live in src/runtime/ and the stages' own modules.
 *
 * Shutdown (SIGTERM/SIGINT): runtime/shutdown.ts. Exit status: 0 after a
 * signal, 1 without the privilege to load the programs, 2 on bad input.
 */
// First, before anything else loads: it sizes V8's young generation.
import './runtime/young-generation';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import type { Resource } from '@opentelemetry/resources';
import { ConfigError, helpText, loadConfig, requestedInfo, type Config, type LoadedConfig } from './config/config';
import { BootClock } from './kernel/clock';
import { describeProbeError, missingCapabilities, type NativeProbe } from './kernel/probe';
import { ReattachingProbe } from './kernel/reattaching-probe';
import { Pipeline } from './pipeline';
import { createResource } from './record/resource';
import { SCOPE_NAME } from './record/semconv';
import { routeDiagnostics } from './runtime/diagnostics';
import { HealthServer } from './runtime/health';
import { cgroupProcessCount, cgroupTree, packageVersion, readText, systemView } from './runtime/host';
import { createEnrichment } from './runtime/enrichment';
import { createExports } from './runtime/exports';
import { createLog, type Log } from './runtime/log';
import { safeCounters, safeProgramStats, startMonitor } from './runtime/monitor';
import { healthListenFailure, readyFields } from './runtime/ready';
import { shutdownSequence } from './runtime/shutdown';
import { loadEventSource, openEventSource, PACKAGE_ROOT, type CgroupFollow } from './runtime/source';
import { flowtapCounts, SelfTelemetry, type FlowtapCounts } from './runtime/telemetry';

async function main(): Promise<void> {
  // Configuration: --help/--version first, then every flag and variable checked.
  const argv = process.argv.slice(2);
  answerInfoRequest(argv);
  const { config, sources } = configOrExit(argv);
  const log = createLog(process.stderr, config.logLevel);
  routeDiagnostics(log, config.logLevel);
  watchProcess(log);
  const version = packageVersion(PACKAGE_ROOT);
  const startedMs = Date.now();

  // Clock and event source: the addon (not needed with --replay).
  const source = attempt(() => loadEventSource(config), 1);
  const clock = new BootClock({ anchor: source.clockAnchor, nowMs: Date.now });

  // Export, enrichment and the pipeline that joins them.
  const resource = await createResource(process.env);
  const { records, stats, exportQueue, spanTotals, spansDestination } = createExports(config, resource, { name: SCOPE_NAME, version }, process.stdout, log);
  const { dnsCache, containers, processCache } = createEnrichment(config, () => source.clockAnchor().boottimeNs);
  const pipeline = new Pipeline({
    sink: records,
    clock,
    domains: dnsCache,
    containers,
    cgroupPaths: containers,
    processes: processCache,
    nowMs: Date.now,
    nowNs: () => source.clockAnchor().realtimeNs,
    onError: (e) => log.error('event processing failed', { error: e }),
  });

  // Probe: load and attach the kernel programs (or start the replay).
  const state: { ready: boolean; stopping: boolean; pollError?: string } = { ready: false, stopping: false };
  let probe: NativeProbe | ReattachingProbe;
  try {
    const onError = (e: Error): void => {
      state.pollError = e.message;
      log.error('probe error', { error: e, step: (e as { step?: string }).step });
    };
    probe = openEventSource(config, source, (batch, n) => pipeline.onBatch(batch, n), onError, followCgroup(log));
  } catch (e) {
    await records.shutdown().catch(() => undefined);
    const failure = describeProbeError(e, config.cgroup, missingCapabilities(readText('/proc/self/status')), sources.cgroup);
    fail(failure.message, failure.exitCode);
  }

  sayWhatIsLeftOut(log, probe, config.replay === undefined && processCache === undefined);

  // Health and self-telemetry: one view of every counter.
  const counts = () => flowtapCounts({ pipeline: pipeline.stats, exportStats: stats, exportQueue, dnsCache, processCache, probe: safeCounters(probe) });
  const telemetry = config.metrics === 'otlp' ? selfTelemetry(config, resource, version, counts, probe) : undefined;
  const health = await startHealth({ config, sources }, () => ({
    ...state,
    attached: !state.stopping,
    cgroupRemovedSinceMs: probe instanceof ReattachingProbe ? probe.removedSinceMs : undefined,
    exportFailingSinceMs: stats.failingSinceMs,
    exportUnansweredSinceMs: exportQueue?.oldestUnansweredSinceMs(),
    lastExportSuccessMs: stats.lastSuccessMs,
  }));
  const monitor = startMonitor({
    log,
    probe,
    counts,
    summaryIntervalSeconds: config.summaryIntervalSeconds,
    sweep: () => dnsCache.sweep(Date.now()),
    failingSinceMs: () => stats.failingSinceMs,
    spanTotals,
  });

  // Wait for a signal (or a closed stdout), then shut down in order.
  const stop = shutdownSequence({
    config,
    log,
    monitor,
    probe,
    records,
    telemetry,
    health,
    counts,
    spanTotals,
    startedMs,
    nowMs: Date.now,
    pendingRecords: () => pipeline.stats.emitted - stats.exportedRecords - stats.failedRecords - stats.droppedRecords,
    onStopping: () => (state.stopping = true),
    exit: (code) => process.exit(code),
  });
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // A closed stdout (e.g. `flowtap --exporter console | head`) ends the run.
  process.stdout.on('error', (e) => {
    log.warn('stdout failed', { error: e });
    void stop('stdout closed');
  });

  const cgroupProcesses = config.replay === undefined ? cgroupProcessCount(config.cgroup) : undefined;
  log.info('ready', readyFields(config, version, health?.address(), cgroupProcesses, spansDestination));
  state.ready = true;
}

/** The log lines of the probe that follows the watched cgroup (removed, back, attach failed). */
function followCgroup(log: Log): CgroupFollow {
  return {
    inode: (dir) => cgroupTree.inode(dir),
    onRemoved: (cgroup) => log.warn('watched cgroup removed: nothing is seen until a cgroup stands at its path again', { cgroup }),
    onAttached: (cgroup) => log.info('watched cgroup is back: programs attached again', { cgroup, cgroupProcesses: cgroupProcessCount(cgroup) }),
    onAttachFailed: (cgroup, error) => log.warn('attaching to the watched cgroup again failed; retrying', { cgroup, error }),
  };
}

/** Said once at start: what this kernel, these privileges or this pid namespace cannot give. */
function sayWhatIsLeftOut(log: Log, probe: NativeProbe, noProcessDetails: boolean): void {
  if (noProcessDetails) {
    log.info('process details left out', {
      reason: "flowtap's /proc is not the host's pid namespace (no hostPID): pids are reported as the kernel gives them",
    });
  }
  for (const part of probe.leftOut?.() ?? []) log.info('kernel part left out', { missing: part.missing, leavesOut: part.leavesOut });
}

/** flowtap's own metrics over OTLP/gRPC, from the same counts as the log lines. */
function selfTelemetry(config: Config, resource: Resource, version: string, counts: () => FlowtapCounts, probe: NativeProbe): SelfTelemetry {
  return new SelfTelemetry({
    exporter: new OTLPMetricExporter({ url: config.metricsExport.endpoint }),
    resource,
    version,
    exportIntervalMillis: config.metricsExport.intervalMillis,
    exportTimeoutMillis: config.metricsExport.timeoutMillis,
    counts,
    programStats: () => safeProgramStats(probe),
  });
}

/** A one-line error on stderr and the exit status. */
function fail(message: string, code: number): never {
  process.stderr.write(`flowtap: ${message}\n`);
  process.exit(code);
}

/** fn(), or its error's message on stderr and exit `code`. */
function attempt<T>(fn: () => T, code: number): T {
  try {
    return fn();
  } catch (e) {
    fail((e as Error).message, code);
  }
}

/** --help and --version answer and exit before any option is checked. */
function answerInfoRequest(argv: readonly string[]): void {
  const info = requestedInfo(argv);
  if (info === undefined) return;
  process.stdout.write(info === 'help' ? helpText() : `${packageVersion(PACKAGE_ROOT)}\n`);
  process.exit(0);
}

/** The configuration, or its one-line error and exit 2. */
function configOrExit(argv: readonly string[]): LoadedConfig {
  try {
    return loadConfig(argv, process.env, readText('/proc/self/mountinfo'), systemView());
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 2);
    throw e;
  }
}

/** Uncaught exceptions and Node's warnings become log lines. */
function watchProcess(log: Log): void {
  // Also a bug reaches stderr as a JSON line; the bpf_links close with the process.
  process.on('uncaughtException', (e) => {
    log.error('uncaught exception', { error: e.stack ?? e.message });
    process.exit(1);
  });
  // Node's own warnings would reach stderr as plain text, between the JSON
  // lines. Deprecations come from libraries (grpc-js: DEP0123 for an IP
  // address endpoint over TLS) and are nothing the user can act on: debug.
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    const fields = { name: w.name, code: (w as NodeJS.ErrnoException).code, warning: w.message };
    if (w.name === 'DeprecationWarning') log.debug('node warning', fields);
    else log.warn('node warning', fields);
  });
}

/** The health server listening at --health-address (none without it); a failure to listen exits. */
async function startHealth(
  { config, sources }: LoadedConfig,
  inputs: ConstructorParameters<typeof HealthServer>[0]['inputs'],
): Promise<HealthServer | undefined> {
  if (config.healthAddress === undefined) return undefined;
  const { host, port } = config.healthAddress;
  const health = new HealthServer({ host, port, nowMs: Date.now, exportFailureMillis: config.readyExportFailureSeconds * 1000, inputs });
  try {
    await health.listen();
  } catch (e) {
    const failure = healthListenFailure(e as Error, config, sources);
    fail(failure.message, failure.exitCode);
  }
  return health;
}

main().catch((e: unknown) => {
  process.stderr.write(`flowtap: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
