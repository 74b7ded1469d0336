/**
 * One run of bench/export-path.mts, in its own process: the synthetic source
 * (--replay's ReplayProbe) → the production Pipeline → one export path →
 * a real collector, for a fixed time at a fixed rate; prints one JSON line.
 *
 *   node bench/export-path-harness.mts <sdk|queue> <rate> <seconds> <endpoint> <batch> [<profile.cpuprofile>]
 *
 * With a profile file, the run window (after the warm-up) is profiled with
 * the inspector's CPU profiler and written there.
 *
 *   sdk    the stock SDK path: Logger.emit → BatchLogRecordProcessor → OTLPLogExporter
 *   queue  flowtap's export queue: protobuf encoded per record → SDK gRPC export delegate
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { ROOT } from './lib.mts';

// As the CLI runs (src/cli.ts tuneYoungGeneration), for both paths.
if (!process.env.NO_GF1) setFlagsFromString('--semi-space-growth-factor=1');

/* eslint-disable @typescript-eslint/no-explicit-any */
const require = createRequire(import.meta.url);
const dist = (m: string): any => require(join(ROOT, 'dist', m));
const { Pipeline } = dist('pipeline.js');
const { DnsCache } = dist('enrich/dns/cache.js');
const { BootClock } = dist('kernel/clock.js');
const { ReplayProbe, jsClockAnchor } = dist('kernel/replay.js');
const { createResource } = dist('record/resource.js');
const { createRecordExport } = dist('export/provider.js');
const sdk = dist('export/reference-sdk.js');
const { LoggerRecordExport } = dist('export/logger-sink.js');

const [path, rateArg, secondsArg, endpoint, batchArg, profileFile] = process.argv.slice(2);
const rate = Number(rateArg);
const seconds = Number(secondsArg);

const counts = { exported: 0, failed: 0, dropped: 0 };
const observer = {
  exported: (n: number) => (counts.exported += n),
  failed: (n: number) => (counts.failed += n),
  dropped: (n: number) => (counts.dropped += n),
};
const config = {
  exporter: 'otlp',
  endpoint,
  otlp: { protocol: 'grpc', timeoutMillis: 10_000, compression: 'none' },
  queueMaxRecords: 200_000,
  batch: { scheduledDelayMillis: 1000, exportTimeoutMillis: 30_000, maxExportBatchSize: Number(batchArg) },
};
const resource = await createResource(process.env);
const scope = { name: 'flowtap', version: '0.0.0' };
const sink =
  path === 'sdk'
    ? sdk.createSdkRecordExport
      ? sdk.createSdkRecordExport(config, resource, scope, process.stdout, observer)
      : new LoggerRecordExport(sdk.createLoggerProvider(config, resource, process.stdout, observer), scope)
    : createRecordExport(config, resource, scope, process.stdout, observer);
const pipeline = new Pipeline({
  sink,
  clock: new BootClock({ anchor: jsClockAnchor, nowMs: Date.now }),
  domains: new DnsCache({}),
  nowMs: Date.now,
  nowNs: () => jsClockAnchor().realtimeNs,
});
const probe = new ReplayProbe({
  spec: { kind: 'synthetic', ratePerSecond: rate },
  ringBufferBytes: 8 << 20,
  onBatch: (b: Buffer, n: number) => pipeline.onBatch(b, n),
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
await sleep(1000); // warm-up
const inspector = profileFile ? new Session() : undefined;
if (inspector) {
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.start');
}
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let rssMax = 0;
const rss = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage.rss())), 250);
await sleep(seconds * 1000);
const cpu = process.cpuUsage(cpu0);
const wall = (performance.now() - t0) / 1000;
clearInterval(rss);
if (inspector) {
  const { profile } = await inspector.post('Profiler.stop');
  writeFileSync(profileFile, JSON.stringify(profile));
}
await probe.close();
const flushed = await Promise.race([sink.forceFlush().then(() => true), sleep(10_000).then(() => false)]);
process.stdout.write(
  `${JSON.stringify({
    path,
    batch: Number(batchArg),
    rate,
    cpuCores: (cpu.user + cpu.system) / 1e6 / wall,
    rssMaxMiB: rssMax / 2 ** 20,
    emitted: pipeline.stats.emitted,
    ringBufferLost: probe.counters().ringbuf_full_flow,
    flushed,
    ...counts,
  })}\n`,
);
process.exit(0);
