// Starts a REAL VictoriaLogs for a test, on a free 127.0.0.1 port with its data
// in a temp dir, and runs LogsQL queries against it over its HTTP API.
//
//   const vl = await startVictoriaLogs();
//   ... send OTLP/HTTP to vl.otlpLogsUrl (or a collector to vl.otlpBaseUrl) ...
//   const rows = await vl.query('_time:1h | stats count() n');
//   await vl.close();
//
// Binary: $FLOWTAP_VICTORIALOGS, else whatever deploy/setup/victorialogs.sh
// prints (it builds and caches one on first use).
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePorts } from './ports';

const REPO_ROOT = resolve(__dirname, '..', '..');

let binaryPromise: Promise<string> | undefined;

/** The VictoriaLogs binary: $FLOWTAP_VICTORIALOGS or the path deploy/setup/victorialogs.sh prints. */
export function victoriaLogsBinary(): Promise<string> {
  binaryPromise ??= new Promise<string>((resolvePath, reject) => {
    const fromEnv = process.env.FLOWTAP_VICTORIALOGS;
    if (fromEnv) {
      if (!existsSync(fromEnv)) reject(new Error(`FLOWTAP_VICTORIALOGS=${fromEnv} does not exist`));
      else resolvePath(fromEnv);
      return;
    }
    const script = join(REPO_ROOT, 'deploy', 'setup', 'victorialogs.sh');
    execFile(script, { cwd: REPO_ROOT, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
      else resolvePath(stdout.trim().split('\n').pop()!);
    });
  });
  return binaryPromise;
}

/** One row of a query's answer: field name → value (VictoriaLogs answers every value as a string). */
export type Row = Record<string, string>;

export class QueryError extends Error {
  override name = 'QueryError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface RunningVictoriaLogs {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** What a collector's otlp_http exporter takes as its endpoint (it appends /v1/logs). */
  readonly otlpBaseUrl: string;
  /** Where OTLP/HTTP log requests go. */
  readonly otlpLogsUrl: string;
  /** Runs a LogsQL query; rejects with a QueryError (its HTTP status and message) when VictoriaLogs refuses it. */
  query(logsql: string): Promise<Row[]>;
  /** Polls `logsql` until it answers at least `rows` rows; returns them. */
  waitForRows(logsql: string, rows: number, timeoutMillis?: number): Promise<Row[]>;
  /** Its log output so far. */
  output(): string;
  close(): Promise<void>;
}

export async function startVictoriaLogs(): Promise<RunningVictoriaLogs> {
  const binary = await victoriaLogsBinary();
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-victorialogs-'));
  const [port] = await freePorts(1);
  const url = `http://127.0.0.1:${port}`;
  let out = '';
  const child: ChildProcess = spawn(binary, [`-storageDataPath=${join(dir, 'data')}`, `-httpListenAddr=127.0.0.1:${port}`, '-loggerLevel=WARN'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));

  const close = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };

  const query = async (logsql: string): Promise<Row[]> => {
    const res = await fetch(`${url}/select/logsql/query`, { method: 'POST', body: new URLSearchParams({ query: logsql }) });
    const text = await res.text();
    if (res.status !== 200) throw new QueryError(res.status, text.trim());
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Row);
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline || child.exitCode !== null) {
      await close();
      throw new Error(`VictoriaLogs did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    otlpBaseUrl: `${url}/insert/opentelemetry`,
    otlpLogsUrl: `${url}/insert/opentelemetry/v1/logs`,
    query,
    async waitForRows(logsql, rows, timeoutMillis = 15_000) {
      const until = Date.now() + timeoutMillis;
      let last: Row[] = [];
      while (Date.now() < until) {
        last = await query(logsql);
        if (last.length >= rows) return last;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`waited ${timeoutMillis} ms for ${rows} rows of [${logsql}]; got ${last.length}: ${JSON.stringify(last.slice(0, 5))}`);
    },
    output: () => out,
    close,
  };
}
