#!/usr/bin/env node
/**
 * flowtap's entry point (with ./young-generation, which it loads first), and
 * the only module that reads process.argv, process.env, /proc/self/mountinfo,
 * /proc/self/cgroup or /proc/self/status, installs signal handlers, listens
 * (--health-address), or exits.
 *
 * Order: config → log → resource → record export → pipeline → probe (attach)
 * → "ready". Shutdown (SIGTERM/SIGINT): probe.close() drains the ring buffer
 * through the pipeline, then the record export is flushed and shut down; if that
 * outlasts --shutdown-timeout-millis, flowtap says what was not flushed and
 * exits 0 anyway.
 */
// First, before anything else loads: it sizes V8's young generation.
import './runtime/young-generation';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { DiagLogLevel, diag, type DiagLogger } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import { BootClock, type ClockAnchor } from './kernel/clock';
import { ConfigError, helpText, parseConfig, requestedInfo, type Config } from './config/config';
import { ContainerIndex, type CgroupTree } from './enrich/container';
import { DnsCache } from './enrich/dns/cache';
import { filtersActive, probeFilters } from './kernel/filter';
import { ExportStats } from './export/stats';
import { OtlpRecordExport } from './export/otlp/sink';
import { createRecordExport } from './export/provider';
import { HealthServer } from './runtime/health';
import { createLog, type Log, type LogLevel } from './runtime/log';
import { describeProbeError, loadBinding, missingCapabilities, type NativeBinding, type NativeProbe } from './kernel/probe';
import { Pipeline } from './pipeline';
import { jsClockAnchor, ReplayProbe, type ReplaySpec } from './kernel/replay';
import { createResource } from './record/resource';
import { SCOPE_NAME } from './record/semconv';
import { flowtapCounts, SelfTelemetry, type FlowtapCounts, type ProgramRunStats } from './runtime/telemetry';

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const STATS_INTERVAL_MILLIS = 60_000;
/** Probe counters that mean lost events; a rise is worth a warning. */
const LOSS_COUNTERS = ['ringbuf_full_flow', 'ringbuf_full_dns', 'flow_table_full', 'flow_table_evictions', 'handoff_dropped_records'];

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** A /proc file's text, or undefined if it cannot be read. */
/** The cgroup directory walk for container.id (src/enrich/container.ts). */
const cgroupTree: CgroupTree = {
  subdirs(dir: string): string[] {
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      return [];
    }
  },
  inode(dir: string): bigint | undefined {
    try {
      return statSync(dir, { bigint: true }).ino;
    } catch {
      return undefined;
    }
  },
};

function readProc(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** A one-line error on stderr and the exit status. */
function fail(message: string, code: number): never {
  process.stderr.write(`flowtap: ${message}\n`);
  process.exit(code);
}

/**
 * SDK diagnostics go to flowtap's log. Debug-level diag would dump whole
 * export requests, so the SDK is never more verbose than info.
 */
function routeDiagnostics(log: Log, level: LogLevel): void {
  const forward =
    (to: (msg: string, fields?: Record<string, unknown>) => void) =>
    (message: string, ...args: unknown[]): void =>
      to(message, args.length > 0 ? { source: 'opentelemetry', details: args } : { source: 'opentelemetry' });
  const logger: DiagLogger = {
    error: forward(log.error),
    warn: forward(log.warn),
    info: forward(log.info),
    debug: forward(log.debug),
    verbose: forward(log.debug),
  };
  const diagLevel = { debug: DiagLogLevel.INFO, info: DiagLogLevel.WARN, warn: DiagLogLevel.WARN, error: DiagLogLevel.ERROR }[level];
  diag.setLogger(logger, { logLevel: diagLevel, suppressOverrideMessage: true });
  // The batch processor reports each failed export here; ExportStats already
  // warns about them (throttled), so these stay at debug.
  setGlobalErrorHandler((e) => log.debug('opentelemetry error', { error: e }));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const info = requestedInfo(argv);
  if (info === 'help') {
    process.stdout.write(helpText());
    process.exit(0);
  }
  if (info === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    process.exit(0);
  }

  let config: Config;
  try {
    config = parseConfig(argv, process.env, readProc('/proc/self/mountinfo'), {
      procSelfCgroup: readProc('/proc/self/cgroup'),
      isDirectory,
    });
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 2);
    throw e;
  }

  const log = createLog(process.stderr, config.logLevel);
  routeDiagnostics(log, config.logLevel);
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
  const version = packageVersion();

  // --replay runs no kernel programs, so it needs no addon; its clocks come from JS.
  let binding: NativeBinding | undefined;
  let clockAnchor: () => ClockAnchor = jsClockAnchor;
  if (config.replay === undefined) {
    try {
      const loaded = loadBinding(PACKAGE_ROOT);
      binding = loaded;
      clockAnchor = () => loaded.clockAnchor();
    } catch (e) {
      fail((e as Error).message, 1);
    }
  }

  const resource = await createResource(process.env);
  const stats = new ExportStats({
    log,
    nowMs: Date.now,
    destination: config.exporter === 'otlp' ? config.endpoint : config.exporter,
  });
  const records = createRecordExport(config, resource, { name: SCOPE_NAME, version }, process.stdout, stats);
  const exportQueue = records instanceof OtlpRecordExport ? records.queue : undefined;
  const dnsCache = new DnsCache({ maxNames: config.dnsCacheNames, maxNamesPerIp: config.dnsNamesPerAddress });
  const pipeline = new Pipeline({
    sink: records,
    clock: new BootClock({ anchor: clockAnchor, nowMs: Date.now }),
    domains: dnsCache,
    nowMs: Date.now,
    nowNs: () => clockAnchor().realtimeNs,
    containers: new ContainerIndex({ root: config.cgroup, tree: cgroupTree, nowMs: Date.now }),
    onError: (e) => log.error('event processing failed', { error: e }),
  });

  let probe: NativeProbe;
  let pollError: string | undefined;
  try {
    const onBatch = (batch: Buffer, count: number): void => pipeline.onBatch(batch, count);
    probe =
      binding === undefined
        ? new ReplayProbe({ spec: config.replay as ReplaySpec, ringBufferBytes: config.ringBufferBytes, onBatch })
        : new binding.Probe({
            cgroupPath: config.cgroup,
            ringBufferBytes: config.ringBufferBytes,
            wakeupBytes: config.ringBufferWakeupBytes,
            pollIntervalMillis: config.ringBufferPollMillis,
            flowTableEntries: config.flowTableEntries,
            filters: probeFilters(config),
            onBatch,
            onError: (e) => {
              pollError = e.message;
              log.error('probe error', { error: e, step: (e as { step?: string }).step });
            },
          });
  } catch (e) {
    await records.shutdown().catch(() => undefined);
    const failure = describeProbeError(e, config.cgroup, missingCapabilities(readProc('/proc/self/status')));
    fail(failure.message, failure.exitCode);
  }
  // What this kernel, with these privileges, cannot give, said once at start.
  for (const part of probe.leftOut?.() ?? []) log.info('kernel part left out', { missing: part.missing, leaves_out: part.leavesOut });

  // The one view of every counter: the stopped/summary/stats lines and the metrics.
  const counts = (): FlowtapCounts =>
    flowtapCounts({ pipeline: pipeline.stats, exportStats: stats, exportQueue, dnsCache, probe: safeCounters(probe) });

  const telemetry =
    config.metrics === 'otlp'
      ? new SelfTelemetry({
          exporter: new OTLPMetricExporter({ url: config.metricsExport.endpoint }),
          resource,
          version,
          exportIntervalMillis: config.metricsExport.intervalMillis,
          exportTimeoutMillis: config.metricsExport.timeoutMillis,
          counts,
          programStats: () => safeProgramStats(probe),
        })
      : undefined;

  let ready = false;
  let stopping = false;
  let health: HealthServer | undefined;
  if (config.healthAddress !== undefined) {
    const { host, port } = config.healthAddress;
    health = new HealthServer({
      host,
      port,
      nowMs: Date.now,
      exportFailureMillis: config.readyExportFailureSeconds * 1000,
      inputs: () => ({
        ready,
        stopping,
        attached: !stopping,
        pollError,
        exportFailingSinceMs: stats.failingSinceMs,
        lastExportSuccessMs: stats.lastSuccessMs,
      }),
    });
    try {
      await health.listen();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const where = `--health-address ${host}:${port}`;
      if (code === 'EACCES') fail(`${where}: ${(e as Error).message}: ports below 1024 need CAP_NET_BIND_SERVICE`, 1);
      fail(`${where}: ${(e as Error).message}`, 2);
    }
  }

  const summaryTimer =
    config.summaryIntervalSeconds > 0 ? setInterval(() => log.info('summary', { ...counts() }), config.summaryIntervalSeconds * 1000) : undefined;

  let lastLoss = lossTotal(safeCounters(probe));
  const warnLoss = (): void => {
    const counters = safeCounters(probe);
    const loss = lossTotal(counters);
    if (loss > lastLoss) log.warn('events lost before decoding', { lost: loss - lastLoss, probe: counters });
    lastLoss = loss;
  };
  const statsTimer = setInterval(() => {
    warnLoss();
    // Addresses never looked up again would keep their expired names until
    // the bound evicted them: the cache gauge would count dead names.
    dnsCache.sweep(Date.now());
    log.debug('stats', { ...counts() });
  }, STATS_INTERVAL_MILLIS); // also keeps the process alive between batches

  let recordsFlushed = false;
  const stop = async (reason: string): Promise<void> => {
    if (stopping) {
      log.warn('second stop request: exiting without flushing', { reason });
      process.exit(0);
    }
    stopping = true;
    clearInterval(statsTimer);
    clearInterval(summaryTimer);
    log.info('stopping', { reason });
    const deadline = setTimeout(() => {
      if (recordsFlushed) {
        log.warn('shutdown timed out exporting the last metrics', { timeoutMillis: config.shutdownTimeoutMillis });
        process.exit(0);
      }
      const pending = pipeline.stats.emitted - stats.exportedRecords - stats.failedRecords - stats.droppedRecords;
      log.warn('shutdown timed out: exiting without flushing', {
        timeoutMillis: config.shutdownTimeoutMillis,
        unflushedRecords: config.exporter === 'none' ? 0 : Math.max(0, pending),
        ...counts(),
      });
      process.exit(0);
    }, config.shutdownTimeoutMillis);
    try {
      await probe.close();
      await records.forceFlush();
      await records.shutdown();
    } catch (e) {
      log.warn('shutdown error', { error: e });
    }
    recordsFlushed = true;
    warnLoss(); // a loss since the last check is never left unsaid
    log.info('stopped', { ...counts() });
    // The last metrics carry the final counts, the same as the stopped line.
    await telemetry?.shutdown();
    await health?.close();
    clearTimeout(deadline);
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // A closed stdout (e.g. `flowtap --exporter console | head`) ends the run.
  process.stdout.on('error', (e) => {
    log.warn('stdout failed', { error: e });
    void stop('stdout closed');
  });

  log.info('ready', {
    version,
    cgroup: config.cgroup,
    exporter: config.exporter,
    endpoint: config.exporter === 'otlp' ? config.endpoint : undefined,
    ringBufferBytes: config.ringBufferBytes,
    flowTableEntries: config.flowTableEntries,
    queueMaxRecords: config.queueMaxRecords,
    replay: config.replay === undefined ? undefined : `synthetic:${config.replay.ratePerSecond}`,
    filters: filtersActive(probeFilters(config)) ? probeFilters(config) : undefined,
    metrics: config.metrics === 'otlp' ? config.metricsExport.endpoint : 'none',
    healthAddress: health?.address(),
    summaryIntervalSeconds: config.summaryIntervalSeconds > 0 ? config.summaryIntervalSeconds : undefined,
  });
  ready = true;
}

function safeCounters(probe: NativeProbe): Record<string, number> {
  try {
    return probe.counters();
  } catch {
    return {};
  }
}

function safeProgramStats(probe: NativeProbe): Record<string, ProgramRunStats> {
  try {
    return probe.programStats() as Record<string, ProgramRunStats>;
  } catch {
    return {};
  }
}

function lossTotal(counters: Record<string, number>): number {
  return LOSS_COUNTERS.reduce((sum, name) => sum + (counters[name] ?? 0), 0);
}

main().catch((e: unknown) => {
  process.stderr.write(`flowtap: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
