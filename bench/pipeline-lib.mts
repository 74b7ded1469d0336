/**
 * What the pipeline benchmarks (pipeline-ceiling, export-path, queue-memory,
 * latency) share: a real OpenTelemetry Collector writing what it receives to
 * a file, that file read back (OTLP protobuf or JSON), flowtap started with
 * --replay (synthetic events through the production pipeline, no kernel) or
 * on a cgroup, RSS sampling, percentiles.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectorBinary, startCollector } from '../test/helpers/collector.ts';
import { CLI, startFlowtap as startCli, type RunningFlowtap } from '../test/helpers/flowtap.ts';
import { forEachLogRecord, forEachProtoRequest, recordTimeUnixNano } from '../test/helpers/otlp-wire.ts';
import { onCleanup, quotedCommand, shownCommand, sleep } from './lib.mts';

export { collectorBinary };

// --- the collector ------------------------------------------------------------------------------

/** Scratch space for collector files, on tmpfs when there is one (a run writes up to a GB); remove() when done. */
export function scratchDir(label: string): { dir: string; remove: () => void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, `flowtap-bench-${label}-`));
  return { dir, remove: onCleanup(() => rmSync(dir, { recursive: true, force: true })) };
}

export interface FileCollector {
  endpoint: string;
  /** Its command line as docs/benchmarks.md shows it. */
  command: string;
  /** The file exporter's output: length-prefixed protobuf requests, or JSON lines. */
  file: string;
  /** The collector's process id. */
  pid: number;
  /** SIGTERM: the file exporter flushes; resolves once the collector exited. */
  stop(): Promise<void>;
}

export interface FileCollectorOptions {
  format: 'proto' | 'json';
  flushIntervalMillis: number;
  /** taskset CPU list. */
  cpus?: string;
}

/** otlp receiver (gRPC) → file exporter, nothing in between; its files in a new directory under `dir`. */
export async function startFileCollector(dir: string, opts: FileCollectorOptions): Promise<FileCollector> {
  const collector = await startCollector({
    logs: opts.format,
    metrics: 'none',
    flushIntervalMillis: opts.flushIntervalMillis,
    cpus: opts.cpus,
    scratchBase: dir,
    stopTimeoutMillis: 15_000,
  });
  return {
    endpoint: collector.endpoint,
    command: shownCommand(collector.command, [
      [collectorBinary(), '$(deploy/setup/collector.sh)'],
      [collector.dir, '<dir>'],
    ]),
    file: collector.logsPath,
    pid: collector.pid!,
    stop: () => collector.stop(),
  };
}

// --- reading what the collector wrote -----------------------------------------------------------

export interface FileCount {
  /** Log records in the file. */
  records: number;
  /** Distinct time_unix_nano values among them (each synthetic record has its own). */
  distinct: number;
}

/**
 * Counts the log records in a file exporter's proto output: each
 * ExportLogsServiceRequest preceded by its length (4 bytes, big-endian).
 */
export function countProtoFile(path: string): FileCount {
  let times = new BigUint64Array(1 << 20);
  let records = 0;
  const onRequest = (buf: Buffer, from: number, to: number): void =>
    forEachLogRecord(buf, from, to, (b, s, e) => {
      if (records === times.length) {
        const grown = new BigUint64Array(times.length * 2);
        grown.set(times);
        times = grown;
      }
      times[records++] = recordTimeUnixNano(b, s, e);
    });

  forEachProtoRequest(path, onRequest); // a truncated last request is not counted
  const sorted = times.subarray(0, records).sort();
  let distinct = records > 0 ? 1 : 0;
  for (let i = 1; i < records; i++) if (sorted[i] !== sorted[i - 1]) distinct++;
  return { records, distinct };
}

// --- flowtap ------------------------------------------------------------------------------------

export interface FlowtapRun extends RunningFlowtap {
  /** Its command line as docs/benchmarks.md shows it. */
  shown: string;
}

/** The synthetic source: records in the ring-buffer layout at `rate` a second, through the production decode → map → export. */
export const replaySource = (rate: number): string[] => ['--replay', `synthetic:${rate}`];

/**
 * The real CLI (test/helpers/flowtap.ts) reading `source` (replaySource(rate),
 * or ['--cgroup', dir] for the kernel programs) and exporting to `endpoint`,
 * its own metrics off; resolves once it logged "ready".
 */
export async function startFlowtap(
  source: string[],
  endpoint: string,
  opts: { cpus?: string; env?: NodeJS.ProcessEnv; args?: string[] } = {},
): Promise<FlowtapRun> {
  const prefix = opts.cpus === undefined ? [] : ['taskset', '-c', opts.cpus];
  const args = [...source, '--endpoint', endpoint, '--metrics', 'none', ...(opts.args ?? [])];
  const ft = await startCli(args, opts.env, 15_000, prefix);
  const line = quotedCommand({ ...process.env, ...opts.env }, [...prefix, process.execPath, CLI, ...args]);
  return Object.assign(ft, { shown: shownCommand(line, [[endpoint, 'http://127.0.0.1:<port>']]) });
}

// --- measuring ----------------------------------------------------------------------------------

/** Resident set size of a process in MiB, from /proc/<pid>/status (NaN once it is gone). */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readProcText(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

function readProcText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(8192);
    const n = readSync(fd, buf, 0, buf.length, 0);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** Samples a process's RSS every `everyMillis` until stopped. */
export function sampleRss(pid: number, everyMillis = 250): { stop(): number[] } {
  const samples: number[] = [];
  const t = setInterval(() => {
    const v = rssMiB(pid);
    if (!Number.isNaN(v)) samples.push(v);
  }, everyMillis);
  return {
    stop: () => {
      clearInterval(t);
      return samples;
    },
  };
}

/** The p-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export { sleep };
