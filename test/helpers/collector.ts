// Starts a REAL OpenTelemetry Collector for a test and reads back what it wrote.
//
// The collector receives OTLP (gRPC and HTTP) on 127.0.0.1 and writes every
// request it gets, as OTLP JSON (one ExportLogsServiceRequest /
// ExportMetricsServiceRequest per line), to <dir>/logs.jsonl and
// <dir>/metrics.jsonl through the contrib file exporter. Tests assert on those
// files — what the collector received — never on what flowtap thinks it sent,
// so this module must not import anything from src/.
//
//   const collector = await startCollector();
//   ... point flowtap at collector.endpoint ...
//   const [record] = await collector.waitForLogRecords((r) => r.eventName === 'flowtap.flow.begin');
//   await collector.close();
//
// Binary: $FLOWTAP_OTELCOL, else whatever deploy/setup/collector.sh prints
// (it builds and caches one on first use). Set FLOWTAP_KEEP_COLLECTOR_DIR=1 to
// keep the temp dir (config, collector.log, *.jsonl) for a post-mortem.
//
// The benchmarks (bench/) start theirs here too: a protobuf or debug sink
// instead of JSON, on given CPUs, in a scratch dir on tmpfs.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, type WriteStream, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectorConfig, type CollectorSecurity, type CollectorSink, type CollectorTls } from './collector-config.ts';
import { freePorts, portAccepts } from './ports.ts';
import { spawn } from './processes.ts';
import { ROOT } from './repo.ts';

export type { CollectorSecurity, CollectorTls };

const READY_LINE = 'Everything is ready';
const STDERR_TAIL_LINES = 40;

/** A decoded OTLP AnyValue. intValue becomes a number, or a bigint beyond 2^53; bytesValue a Buffer. */
export type Value = string | number | bigint | boolean | Buffer | null | Value[] | { [key: string]: Value };
export type Attributes = Record<string, Value>;

/** One LogRecord as the collector wrote it, with its resource and scope flattened in. */
export interface CollectedLogRecord {
  /** 0n when the record had no Timestamp. */
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  /** '' when absent (OTLP JSON omits empty fields). */
  eventName: string;
  severityNumber: number;
  severityText: string;
  /** null when the record had no body (the exporter writes an empty AnyValue). */
  body: Value;
  attributes: Attributes;
  droppedAttributesCount: number;
  /** '' when absent; hex otherwise. */
  traceId: string;
  spanId: string;
  resource: Attributes;
  scope: { name: string; version: string; attributes: Attributes };
}

/** One metric data point (sum, gauge or histogram) as the collector wrote it. */
export interface CollectedMetricPoint {
  name: string;
  unit: string;
  kind: 'sum' | 'gauge' | 'histogram';
  /** sum/gauge: the value; histogram: the sum of observations (0 when absent). */
  value: number | bigint;
  /** histogram only: the number of observations. */
  count?: number | bigint;
  timeUnixNano: bigint;
  attributes: Attributes;
  resource: Attributes;
  scope: { name: string; version: string };
}

export type LogRecordPredicate = (record: CollectedLogRecord) => boolean;

export interface CollectorOptions {
  /** How long start() and restart() wait for the collector to be ready. Default 30000. */
  startTimeoutMillis?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 10000. */
  stopTimeoutMillis?: number;
  /** The file exporter's flush_interval. Default 100. */
  flushIntervalMillis?: number;
  /** Serve OTLP over TLS (endpoint becomes https://); with clientCaFile, require client certificates (mTLS). Default: plain. */
  tls?: CollectorTls;
  /** Require `authorization: Bearer <token>` on every request (bearertokenauth extension). Default: no auth. */
  bearerToken?: string;
  /**
   * How log records are written: 'json' (logs.jsonl, what readLogRecords reads), 'proto' (logs.pb, length-prefixed
   * requests: otlp-wire.ts reads them) or 'debug' (one line a batch in collector.log). Default 'json'.
   */
  logs?: 'json' | 'proto' | 'debug';
  /** How metrics are written: 'json' (metrics.jsonl), 'debug', or 'none' (no metrics pipeline). Default 'json'. */
  metrics?: 'json' | 'debug' | 'none';
  /** A batch processor before the exporters. Default: none. */
  batch?: boolean;
  /** Run on these CPUs (a taskset list, e.g. "1-3"). Default: any. */
  cpus?: string;
  /** Where the temp dir goes. Default: the OS temp dir. */
  scratchBase?: string;
}

export interface RunningCollector {
  /** OTLP/gRPC endpoint, `http://127.0.0.1:<port>` (`https://` with tls). Stays the same across restart(). */
  readonly endpoint: string;
  /** OTLP/HTTP base URL, `http://127.0.0.1:<port>` (append /v1/logs etc.). */
  readonly httpEndpoint: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Temp dir holding config.yaml, collector.log, logs.jsonl (or logs.pb), metrics.jsonl. */
  readonly dir: string;
  readonly logsPath: string;
  readonly metricsPath: string;
  /** Everything the collector printed (stdout and stderr), appended as it comes. */
  readonly outputPath: string;
  /** The command line it runs, binary and config path as given. */
  readonly command: string;
  /** Whether the collector process is currently running. */
  readonly running: boolean;
  /** Its process id while it runs. */
  readonly pid: number | undefined;
  /** Every log record written so far (survives restart()), in file order. */
  readLogRecords(): CollectedLogRecord[];
  /** Every sum/gauge/histogram data point written so far, in file order. */
  readMetricPoints(): CollectedMetricPoint[];
  /**
   * Polls until `want` is met, then returns the records:
   * a number → all records once there are at least that many;
   * a predicate → the matching records once at least `minMatches` (default 1) match.
   * Rejects after `timeoutMillis` (default 10000) with what was seen and the collector's stderr tail.
   */
  waitForLogRecords(want: number | LogRecordPredicate, timeoutMillis?: number, minMatches?: number): Promise<CollectedLogRecord[]>;
  /** The last lines the collector wrote to stderr (its own logs). */
  stderrTail(): string;
  /** SIGTERM, wait, SIGKILL fallback. Flushes the files. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL now (an abrupt outage); up to one flush interval of file output may be lost. Idempotent. */
  kill(): Promise<void>;
  /** Stops it if running, then starts it again on the same ports, appending to the same files. */
  restart(): Promise<void>;
  /** stop() and remove the temp dir. Idempotent. */
  close(): Promise<void>;
}

let binary: string | undefined;

/** The collector binary: $FLOWTAP_OTELCOL or the path deploy/setup/collector.sh prints (it may build one first). */
export function collectorBinary(): string {
  if (binary !== undefined) return binary;
  const fromEnv = process.env.FLOWTAP_OTELCOL;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`FLOWTAP_OTELCOL=${fromEnv} does not exist`);
    binary = fromEnv;
    return binary;
  }
  const script = join(ROOT, 'deploy', 'setup', 'collector.sh');
  try {
    binary = execFileSync(script, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] })
      .trim()
      .split('\n')
      .pop()!;
  } catch (err) {
    throw new Error(`${script} failed: ${(err as Error).message}\n${(err as { stderr?: string }).stderr ?? ''}`);
  }
  return binary;
}

/** Starts a collector on free 127.0.0.1 ports; resolves once it logged that it is ready. */
export async function startCollector(options: CollectorOptions = {}): Promise<RunningCollector> {
  const binary = collectorBinary();
  const dir = mkdtempSync(join(options.scratchBase ?? tmpdir(), 'flowtap-otelcol-'));
  const [grpcPort, httpPort] = await freePorts(2);
  const collector = new Collector(binary, dir, grpcPort, httpPort, options);
  try {
    await collector.start();
  } catch (err) {
    await collector.close();
    throw err;
  }
  return collector;
}

class Collector implements RunningCollector {
  readonly endpoint: string;
  readonly httpEndpoint: string;
  readonly dir: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly logsPath: string;
  readonly metricsPath: string;
  readonly outputPath: string;
  readonly command: string;
  private readonly binary: string;
  private readonly argv: string[];
  private readonly logsFormat: 'json' | 'proto' | 'debug';
  private readonly configPath: string;
  private readonly startTimeoutMillis: number;
  private readonly stopTimeoutMillis: number;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private logFile: WriteStream | undefined;
  private tail: string[] = [];
  private closed = false;

  constructor(binary: string, dir: string, grpcPort: number, httpPort: number, options: CollectorOptions) {
    this.binary = binary;
    this.dir = dir;
    this.grpcPort = grpcPort;
    this.httpPort = httpPort;
    const scheme = options.tls === undefined ? 'http' : 'https';
    this.endpoint = `${scheme}://127.0.0.1:${grpcPort}`;
    this.httpEndpoint = `${scheme}://127.0.0.1:${httpPort}`;
    this.logsFormat = options.logs ?? 'json';
    this.logsPath = join(dir, this.logsFormat === 'proto' ? 'logs.pb' : 'logs.jsonl');
    this.metricsPath = join(dir, 'metrics.jsonl');
    this.outputPath = join(dir, 'collector.log');
    this.configPath = join(dir, 'config.yaml');
    this.startTimeoutMillis = options.startTimeoutMillis ?? 30_000;
    this.stopTimeoutMillis = options.stopTimeoutMillis ?? 10_000;
    // append: restart() must not truncate what the previous run wrote.
    const sink = (format: 'json' | 'proto' | 'debug', path: string): CollectorSink =>
      format === 'debug' ? { kind: 'debug' } : { kind: 'file', path, format, append: true, flushIntervalMillis: options.flushIntervalMillis ?? 100 };
    const metrics = options.metrics ?? 'json';
    writeFileSync(
      this.configPath,
      collectorConfig({
        grpcPort,
        httpPort,
        security: options,
        batch: options.batch,
        logs: sink(this.logsFormat, this.logsPath),
        metrics: metrics === 'none' ? undefined : sink(metrics, this.metricsPath),
      }),
    );
    const args = ['--config', this.configPath];
    this.argv = options.cpus === undefined ? [binary, ...args] : ['taskset', '-c', options.cpus, binary, ...args];
    this.command = this.argv.join(' ');
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.closed) throw new Error('collector: start after close');
    if (this.child) return;
    this.logFile = createWriteStream(this.outputPath, { flags: 'a' });
    const child = spawn(this.argv[0], this.argv.slice(1), { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let ready = false;
    let partial = '';
    const onOutput = (chunk: Buffer) => {
      this.logFile?.write(chunk);
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (line.includes(READY_LINE)) ready = true;
        this.tail.push(line);
      }
      if (this.tail.length > STDERR_TAIL_LINES) this.tail.splice(0, this.tail.length - STDERR_TAIL_LINES);
    };
    child.stdout!.on('data', onOutput);
    child.stderr!.on('data', onOutput);
    let exitStatus: string | undefined;
    this.exited = new Promise<void>((resolveExit) => {
      child.once('error', (err) => {
        exitStatus ??= `could not be spawned (${err.message})`;
        resolveExit();
      });
      // 'close', not 'exit': by then its last stderr lines are in the tail.
      child.once('close', (code, signal) => {
        if (partial) this.tail.push(partial);
        exitStatus ??= signal ? `killed by ${signal}` : `exited with code ${code}`;
        resolveExit();
      });
    }).then(() => {
      if (this.child === child) this.child = undefined;
      this.logFile?.end();
    });

    const deadline = Date.now() + this.startTimeoutMillis;
    while (!(ready && (await portAccepts(this.grpcPort)))) {
      if (exitStatus !== undefined) {
        throw new Error(`collector ${exitStatus} before it was ready (${this.binary}); its output ends:\n${this.stderrTail()}`);
      }
      if (Date.now() > deadline) {
        const waitingFor = ready ? `127.0.0.1:${this.grpcPort} to accept connections` : `"${READY_LINE}"`;
        await this.kill();
        throw new Error(`collector not ready after ${this.startTimeoutMillis} ms (waited for ${waitingFor}); its output ends:\n${this.stderrTail()}`);
      }
      await sleep(50);
    }
  }

  stderrTail(): string {
    return this.tail.join('\n');
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      this.exited.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.stopTimeoutMillis))),
    ]);
    clearTimeout(timer);
    if (!stopped) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await this.exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.stop();
    if (!process.env.FLOWTAP_KEEP_COLLECTOR_DIR) rmSync(this.dir, { recursive: true, force: true });
  }

  readLogRecords(): CollectedLogRecord[] {
    if (this.logsFormat !== 'json') throw new Error(`collector: readLogRecords reads JSON; this one writes ${this.logsFormat}`);
    return readJsonLines(this.logsPath).flatMap(decodeLogsRequest);
  }

  readMetricPoints(): CollectedMetricPoint[] {
    return readJsonLines(this.metricsPath).flatMap(decodeMetricsRequest);
  }

  async waitForLogRecords(want: number | LogRecordPredicate, timeoutMillis = 10_000, minMatches = 1): Promise<CollectedLogRecord[]> {
    const deadline = Date.now() + timeoutMillis;
    let records: CollectedLogRecord[] = [];
    for (;;) {
      records = this.readLogRecords();
      if (typeof want === 'number') {
        if (records.length >= want) return records;
      } else {
        const matching = records.filter(want);
        if (matching.length >= minMatches) return matching;
      }
      if (Date.now() > deadline) break;
      await sleep(50);
    }
    const wanted = typeof want === 'number' ? `${want} log records` : `${minMatches} matching log record(s)`;
    const seen = records
      .slice(-5)
      .map((r) => `  ${r.eventName} ${JSON.stringify(r.body, jsonReplacer)}`)
      .join('\n');
    throw new Error(
      `waited ${timeoutMillis} ms for ${wanted}; the collector wrote ${records.length}` +
        (seen ? `, the last ones:\n${seen}` : '') +
        `\ncollector ${this.running ? 'running' : 'NOT running'}; its output ends:\n${this.stderrTail()}`,
    );
  }
}

// --- decoding the file exporter's OTLP JSON ------------------------------------------------------
// OTLP/JSON (as pdata's JSONMarshaler writes it): lowerCamelCase fields, 64-bit integers as
// strings, bytes as base64, empty/zero fields omitted.

/* eslint-disable @typescript-eslint/no-explicit-any */
type Json = any;

/** Complete lines only: the exporter's buffered writer can leave a line half-written until its next flush. */
function readJsonLines(path: string): Json[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line);
      } catch (err) {
        throw new Error(`${path} line ${i + 1} is not JSON (${(err as Error).message}): ${line.slice(0, 200)}`);
      }
    });
}

export function decodeLogsRequest(request: Json): CollectedLogRecord[] {
  const out: CollectedLogRecord[] = [];
  for (const rl of request.resourceLogs ?? []) {
    const resource = decodeAttributes(rl.resource?.attributes);
    for (const sl of rl.scopeLogs ?? []) {
      const scope = {
        name: sl.scope?.name ?? '',
        version: sl.scope?.version ?? '',
        attributes: decodeAttributes(sl.scope?.attributes),
      };
      for (const lr of sl.logRecords ?? []) {
        out.push({
          timeUnixNano: BigInt(lr.timeUnixNano ?? 0),
          observedTimeUnixNano: BigInt(lr.observedTimeUnixNano ?? 0),
          eventName: lr.eventName ?? '',
          severityNumber: Number(lr.severityNumber ?? 0),
          severityText: lr.severityText ?? '',
          body: decodeValue(lr.body ?? {}),
          attributes: decodeAttributes(lr.attributes),
          droppedAttributesCount: Number(lr.droppedAttributesCount ?? 0),
          traceId: lr.traceId ?? '',
          spanId: lr.spanId ?? '',
          resource,
          scope,
        });
      }
    }
  }
  return out;
}

export function decodeMetricsRequest(request: Json): CollectedMetricPoint[] {
  const out: CollectedMetricPoint[] = [];
  for (const rm of request.resourceMetrics ?? []) {
    const resource = decodeAttributes(rm.resource?.attributes);
    for (const sm of rm.scopeMetrics ?? []) {
      const scope = { name: sm.scope?.name ?? '', version: sm.scope?.version ?? '' };
      for (const m of sm.metrics ?? []) {
        const base = { name: m.name ?? '', unit: m.unit ?? '', resource, scope };
        for (const kind of ['sum', 'gauge'] as const) {
          for (const p of m[kind]?.dataPoints ?? []) {
            const value = p.asInt !== undefined ? decodeInt(p.asInt) : Number(p.asDouble ?? 0);
            out.push({ ...base, kind, value, timeUnixNano: BigInt(p.timeUnixNano ?? 0), attributes: decodeAttributes(p.attributes) });
          }
        }
        for (const p of m.histogram?.dataPoints ?? []) {
          out.push({
            ...base,
            kind: 'histogram',
            value: Number(p.sum ?? 0),
            count: decodeInt(p.count ?? '0'),
            timeUnixNano: BigInt(p.timeUnixNano ?? 0),
            attributes: decodeAttributes(p.attributes),
          });
        }
      }
    }
  }
  return out;
}

export function decodeAttributes(kvs: Json[] | undefined): Attributes {
  const out: Attributes = {};
  for (const kv of kvs ?? []) out[kv.key] = decodeValue(kv.value ?? {});
  return out;
}

/** One AnyValue. An empty AnyValue ({}) decodes to null. */
export function decodeValue(v: Json): Value {
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return decodeInt(v.intValue);
  if ('doubleValue' in v) return Number(v.doubleValue); // "NaN"/"Infinity" arrive as strings
  if ('boolValue' in v) return v.boolValue;
  if ('arrayValue' in v) return (v.arrayValue.values ?? []).map(decodeValue);
  if ('kvlistValue' in v) return decodeAttributes(v.kvlistValue.values);
  if ('bytesValue' in v) return Buffer.from(v.bytesValue, 'base64');
  return null;
}

/** int64 arrives as a JSON string (sometimes a number): a number when exact, else a bigint. */
function decodeInt(raw: string | number): number | bigint {
  const big = BigInt(raw);
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

// --- small I/O helpers --------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
