/**
 * What the pipeline benchmarks (pipeline-ceiling, export-path, queue-memory,
 * latency) share: a real OpenTelemetry Collector writing what it receives to
 * a file, that file read back (OTLP protobuf or JSON), flowtap started with
 * --replay (synthetic events through the production pipeline, no kernel) or
 * on a cgroup, RSS sampling, percentiles.
 */
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectorConfig } from '../test/helpers/collector-config.ts';
import { freePort } from './kernel-cost.mts';
import { ROOT, onCleanup, run, shownCommand, sleep, start, type Started } from './lib.mts';

// --- the collector ------------------------------------------------------------------------------

let binary: string | undefined;

/** $FLOWTAP_OTELCOL, else what deploy/setup/collector.sh builds or finds. */
export function collectorBinary(): string {
  binary ??= process.env.FLOWTAP_OTELCOL || run(join(ROOT, 'deploy', 'setup', 'collector.sh'), []).trim().split('\n').pop()!;
  return binary;
}

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
  process: Started;
  /** SIGTERM: the file exporter flushes; resolves once the collector exited. */
  stop(): Promise<void>;
}

export interface FileCollectorOptions {
  format: 'proto' | 'json';
  flushIntervalMillis: number;
  /** taskset CPU list. */
  cpus?: string;
}

/** otlp receiver (gRPC) → file exporter, nothing in between. */
export async function startFileCollector(dir: string, opts: FileCollectorOptions): Promise<FileCollector> {
  const port = await freePort();
  const file = join(dir, opts.format === 'proto' ? 'logs.pb' : 'logs.jsonl');
  const config = join(dir, 'collector.yaml');
  writeFileSync(config, collectorConfig({ grpcPort: port, logs: { kind: 'file', path: file, format: opts.format, flushIntervalMillis: opts.flushIntervalMillis } }));
  const p = start(collectorBinary(), ['--config', config], { cpus: opts.cpus });
  await p.waitFor(/Everything is ready/, 30_000);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    command: shownCommand(p.commandLine, [[collectorBinary(), '$(deploy/setup/collector.sh)'], [dir, '<dir>']]),
    file,
    process: p,
    stop: async () => {
      await p.stop('SIGTERM', 15_000);
    },
  };
}

// --- reading what the collector wrote -----------------------------------------------------------

/** Field walker over protobuf bytes; calls `onLen(field, start, end)` for length-delimited fields, `onFixed64` for fixed64. */
function walk(
  buf: Buffer,
  from: number,
  to: number,
  onLen: (field: number, start: number, end: number) => void,
  onFixed64?: (field: number, at: number) => void,
): void {
  let pos = from;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      const b = buf[pos++];
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
      mul *= 128;
    }
  };
  while (pos < to) {
    const key = varint();
    const field = Math.floor(key / 8);
    switch (key & 7) {
      case 0:
        varint();
        break;
      case 1:
        onFixed64?.(field, pos);
        pos += 8;
        break;
      case 2: {
        const len = varint();
        onLen(field, pos, pos + len);
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`bad protobuf wire type ${key & 7} at ${pos}`);
    }
  }
}

/**
 * Calls onRequest(buf, from, to) for each request in a file exporter's proto
 * output (each ExportLogsServiceRequest preceded by its length, 4 bytes
 * big-endian), reading the file in 16 MiB chunks. Returns the bytes of a
 * truncated request left at the end (0 when the file ends on a request).
 */
export function forEachProtoRequest(path: string, onRequest: (buf: Buffer, from: number, to: number) => void): number {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(16 << 20);
    let carry = Buffer.alloc(0);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return carry.length;
      const buf = Buffer.concat([carry, chunk.subarray(0, n)]);
      let pos = 0;
      while (buf.length - pos >= 4) {
        const len = buf.readUInt32BE(pos);
        if (buf.length - pos - 4 < len) break;
        onRequest(buf, pos + 4, pos + 4 + len);
        pos += 4 + len;
      }
      carry = Buffer.from(buf.subarray(pos));
    }
  } finally {
    closeSync(fd);
  }
}

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
    walk(buf, from, to, (f1, s1, e1) => {
      if (f1 !== 1) return; // resource_logs
      walk(buf, s1, e1, (f2, s2, e2) => {
        if (f2 !== 2) return; // scope_logs
        walk(buf, s2, e2, (f3, s3, e3) => {
          if (f3 !== 2) return; // log_records
          if (records === times.length) {
            const grown = new BigUint64Array(times.length * 2);
            grown.set(times);
            times = grown;
          }
          let t = 0n;
          walk(buf, s3, e3, () => undefined, (f4, at) => {
            if (f4 === 1) t = buf.readBigUInt64LE(at); // time_unix_nano
          });
          times[records++] = t;
        });
      });
    });

  forEachProtoRequest(path, onRequest); // a truncated last request is not counted
  const sorted = times.subarray(0, records).sort();
  let distinct = records > 0 ? 1 : 0;
  for (let i = 1; i < records; i++) if (sorted[i] !== sorted[i - 1]) distinct++;
  return { records, distinct };
}

// --- flowtap ------------------------------------------------------------------------------------

export const CLI = join(ROOT, 'dist', 'cli.js');

export interface FlowtapRun {
  process: Started;
  /** Its command line as docs/benchmarks.md shows it. */
  command: string;
  /** flowtap's JSON log lines so far. */
  logs(): Record<string, unknown>[];
}

/** The synthetic source: records in the ring-buffer layout at `rate` a second, through the production decode → map → export. */
export const replaySource = (rate: number): string[] => ['--replay', `synthetic:${rate}`];

/**
 * The real CLI reading `source` (replaySource(rate), or ['--cgroup', dir] for
 * the kernel programs) and exporting to `endpoint`, its own metrics off;
 * resolves once it logged "ready".
 */
export async function startFlowtap(
  source: string[],
  endpoint: string,
  opts: { cpus?: string; env?: NodeJS.ProcessEnv; args?: string[] } = {},
): Promise<FlowtapRun> {
  const p = start(process.execPath, [CLI, ...source, '--endpoint', endpoint, '--metrics', 'none', ...(opts.args ?? [])], {
    cpus: opts.cpus,
    env: { ...process.env, ...opts.env },
  });
  const logs = (): Record<string, unknown>[] =>
    p
      .stderr()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await p.waitFor(/"msg":"ready"/, 15_000);
  return { process: p, logs, command: shownCommand(p.commandLine, [[endpoint, 'http://127.0.0.1:<port>']]) };
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
