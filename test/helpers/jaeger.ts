/**
 * A real Jaeger (v2, all-in-one: OTLP/gRPC receiver → in-memory storage →
 * query API) on free 127.0.0.1 ports, built by deploy/setup/jaeger.sh (or
 * $FLOWTAP_JAEGER). Tests send spans to `otlpEndpoint` and read them back
 * through the HTTP query API, as a person's browser would.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePorts, portAccepts } from './ports';

const REPO_ROOT = resolve(__dirname, '..', '..');
const TAIL_LINES = 40;

let binaryPromise: Promise<string> | undefined;

/** The Jaeger binary: $FLOWTAP_JAEGER or the path deploy/setup/jaeger.sh prints. */
export function jaegerBinary(): Promise<string> {
  binaryPromise ??= new Promise<string>((resolvePath, reject) => {
    const fromEnv = process.env.FLOWTAP_JAEGER;
    if (fromEnv) {
      if (!existsSync(fromEnv)) reject(new Error(`FLOWTAP_JAEGER=${fromEnv} does not exist`));
      else resolvePath(fromEnv);
      return;
    }
    const script = join(REPO_ROOT, 'deploy', 'setup', 'jaeger.sh');
    execFile(script, { cwd: REPO_ROOT, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
      else resolvePath(stdout.trim().split('\n').pop()!);
    });
  });
  return binaryPromise;
}

/** A span as Jaeger's query API (/api/traces) returns it. */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  /** Microseconds since the epoch. */
  startTime: number;
  /** Microseconds. */
  duration: number;
  tags: { key: string; type: string; value: string | number | boolean }[];
  processID: string;
}

export interface JaegerTrace {
  traceID: string;
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string; tags: { key: string; value: unknown }[] }>;
}

/** One span's tags as an object. */
export function tagsOf(span: JaegerSpan): Record<string, string | number | boolean> {
  return Object.fromEntries(span.tags.map((t) => [t.key, t.value]));
}

export interface RunningJaeger {
  /** OTLP/gRPC receiver, http://127.0.0.1:<port>. */
  readonly otlpEndpoint: string;
  /** OTLP/HTTP receiver's base URL, http://127.0.0.1:<port> (spans go to <it>/v1/traces). */
  readonly otlpHttpEndpoint: string;
  /** Query API and UI, http://127.0.0.1:<port>. */
  readonly queryUrl: string;
  /** GET <queryUrl><path>, parsed JSON. */
  get(path: string): Promise<unknown>;
  /** Every trace of `service` in the store (up to `limit`). */
  traces(service: string, limit?: number): Promise<JaegerTrace[]>;
  output(): string;
  close(): Promise<void>;
}

/** Jaeger's configuration for tests: the ports come in through the environment. */
const CONFIG = join(REPO_ROOT, 'deploy', 'setup', 'jaeger.yaml');

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startJaeger(startTimeoutMillis = 60_000): Promise<RunningJaeger> {
  const binary = await jaegerBinary();
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-jaeger-'));
  const [otlpPort, httpPort, grpcPort, otlpHttpPort] = await freePorts(4);
  const env = {
    ...process.env,
    JAEGER_OTLP_GRPC_PORT: String(otlpPort),
    JAEGER_OTLP_HTTP_PORT: String(otlpHttpPort),
    JAEGER_QUERY_HTTP_PORT: String(httpPort),
    JAEGER_QUERY_GRPC_PORT: String(grpcPort),
  };
  const child = spawn(binary, ['--config', CONFIG], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const tail: string[] = [];
  const onOutput = (chunk: Buffer): void => {
    tail.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES);
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
  let exited: string | undefined;
  const closed = new Promise<void>((r) =>
    child.once('close', (code, signal) => {
      exited = signal ? `killed by ${signal}` : `exited with code ${code}`;
      live.delete(child);
      r();
    }),
  );
  const queryUrl = `http://127.0.0.1:${httpPort}`;
  const jaeger: RunningJaeger = {
    otlpEndpoint: `http://127.0.0.1:${otlpPort}`,
    otlpHttpEndpoint: `http://127.0.0.1:${otlpHttpPort}`,
    queryUrl,
    async get(path) {
      const res = await fetch(`${queryUrl}${path}`);
      if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}: ${await res.text()}`);
      return res.json();
    },
    async traces(service, limit = 1000) {
      const body = (await jaeger.get(`/api/traces?service=${encodeURIComponent(service)}&limit=${limit}&lookback=1h`)) as { data: JaegerTrace[] | null };
      return body.data ?? [];
    },
    output: () => tail.join('\n'),
    async close() {
      if (exited === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await closed;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + startTimeoutMillis;
  while (!((await portAccepts(otlpPort)) && (await portAccepts(otlpHttpPort)) && (await portAccepts(httpPort)))) {
    if (exited !== undefined) throw new Error(`jaeger ${exited} before it was ready (${binary}); its output ends:\n${jaeger.output()}`);
    if (Date.now() > deadline) {
      await jaeger.close();
      throw new Error(`jaeger not ready after ${startTimeoutMillis} ms; its output ends:\n${jaeger.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return jaeger;
}
