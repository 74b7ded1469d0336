#!/usr/bin/env node
/**
 * flowtap's entry point, and the only module that reads process.argv,
 * process.env or /proc/self/mountinfo, installs signal handlers, or exits.
 *
 * Order: config → log → resource → logger provider → pipeline → probe (attach)
 * → "ready". Shutdown (SIGTERM/SIGINT): probe.close() drains the ring buffer
 * through the pipeline, then the provider is flushed and shut down; if that
 * outlasts --shutdown-timeout-millis, flowtap says what was not flushed and
 * exits 0 anyway.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DiagLogLevel, diag, type DiagLogger } from '@opentelemetry/api';
import { setGlobalErrorHandler } from '@opentelemetry/core';
import { BootClock } from './clock';
import { ConfigError, helpText, parseConfig, requestedInfo, type Config } from './config';
import { DnsCache } from './dns/cache';
import { ExportStats } from './export/stats';
import { createLoggerProvider } from './export/provider';
import { createLog, type Log, type LogLevel } from './log';
import { describeProbeError, loadBinding, type NativeBinding, type NativeProbe } from './probe';
import { Pipeline } from './pipeline';
import { createResource } from './resource';
import { SCOPE_NAME } from './semconv';

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const STATS_INTERVAL_MILLIS = 60_000;
/** Probe counters that mean lost events; a rise is worth a warning. */
const LOSS_COUNTERS = ['ringbuf_full_flow', 'ringbuf_full_dns', 'flow_table_full', 'handoff_dropped_records'];

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function readMountinfo(): string | undefined {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
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
    config = parseConfig(argv, process.env, readMountinfo());
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
  const version = packageVersion();

  let binding: NativeBinding;
  try {
    binding = loadBinding(PACKAGE_ROOT);
  } catch (e) {
    fail((e as Error).message, 1);
  }

  const resource = await createResource(process.env);
  const stats = new ExportStats({
    log,
    nowMs: Date.now,
    destination: config.exporter === 'otlp' ? config.endpoint : config.exporter,
  });
  const provider = createLoggerProvider(config, resource, process.stdout, stats);
  const dnsCache = new DnsCache({ maxNames: config.dnsCacheNames, maxNamesPerIp: config.dnsNamesPerAddress });
  const pipeline = new Pipeline({
    logger: provider.getLogger(SCOPE_NAME, version),
    clock: new BootClock({ anchor: () => binding.clockAnchor(), nowMs: Date.now }),
    domains: dnsCache,
    nowMs: Date.now,
    nowNs: () => binding.clockAnchor().realtimeNs,
    onError: (e) => log.error('event processing failed', { error: e }),
  });

  let probe: NativeProbe;
  try {
    probe = new binding.Probe({
      cgroupPath: config.cgroup,
      ringBufferBytes: config.ringBufferBytes,
      flowTableEntries: config.flowTableEntries,
      onBatch: (batch, records) => pipeline.onBatch(batch, records),
      onError: (e) => log.error('probe error', { error: e, step: (e as { step?: string }).step }),
    });
  } catch (e) {
    await provider.shutdown().catch(() => undefined);
    const failure = describeProbeError(e, config.cgroup);
    fail(failure.message, failure.exitCode);
  }

  const counts = (): Record<string, unknown> => ({
    ...pipeline.stats,
    exportedRecords: stats.exportedRecords,
    failedRecords: stats.failedRecords,
    droppedRecords: stats.droppedRecords,
    dns: { names: dnsCache.size, addresses: dnsCache.addresses, ...dnsCache.stats },
    probe: safeCounters(probe),
  });

  let lastLoss = lossTotal(safeCounters(probe));
  const statsTimer = setInterval(() => {
    const counters = safeCounters(probe);
    const loss = lossTotal(counters);
    if (loss > lastLoss) log.warn('events lost before decoding', { lost: loss - lastLoss, probe: counters });
    lastLoss = loss;
    log.debug('stats', counts());
  }, STATS_INTERVAL_MILLIS); // also keeps the process alive between batches

  let stopping = false;
  const stop = async (reason: string): Promise<void> => {
    if (stopping) {
      log.warn('second stop request: exiting without flushing', { reason });
      process.exit(0);
    }
    stopping = true;
    clearInterval(statsTimer);
    log.info('stopping', { reason });
    const deadline = setTimeout(() => {
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
      await provider.forceFlush();
      await provider.shutdown();
    } catch (e) {
      log.warn('shutdown error', { error: e });
    }
    clearTimeout(deadline);
    log.info('stopped', counts());
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
  });
}

function safeCounters(probe: NativeProbe): Record<string, number> {
  try {
    return probe.counters();
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
