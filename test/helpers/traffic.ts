/**
 * Real TCP traffic for integration tests: a server in the test process
 * (outside the watched cgroup) and clients spawned inside a TestCgroup, so
 * each connection is observed exactly once (at the client's socket).
 */
import { spawn } from './processes';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { collect, TestCgroup } from './cgroup';
import { startCollector, type RunningCollector } from './collector';
import { killAllFlowtaps } from './flowtap';

const CLIENT = join(__dirname, '..', 'fixtures', 'tcp-client.js');
const STREAM = join(__dirname, '..', 'fixtures', 'tcp-stream.js');
const BPF_STATS = join(__dirname, '..', 'fixtures', 'bpf-stats.py');

/** A server that echoes the first byte and closes. */
export async function listen(host: string): Promise<{ server: Server; port: number }> {
  const server = await new Promise<Server>((resolve) => {
    const srv = createServer((s) => {
      s.once('data', (d) => s.end(d));
      s.on('error', () => undefined);
    });
    srv.listen({ host, port: 0, backlog: 4096 }, () => resolve(srv));
  });
  return { server, port: (server.address() as AddressInfo).port };
}

export interface ClientResult {
  ok: boolean;
  localAddress: string;
  localPort: number;
}

/** `count` connections one after another from inside `cg`. */
export async function connectFrom(cg: TestCgroup, host: string, port: number, count: number): Promise<ClientResult[]> {
  const out = await collect(cg.spawn(process.execPath, [CLIENT, host, String(port), String(count)]));
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ClientResult);
}

export interface Burst {
  /** Resolves with the connections made once the burst ends (or stop() was called). */
  done: Promise<{ ok: number; failed: number }>;
  /** Ends an endless burst (total 0): the connections in flight complete. */
  stop(): void;
}

/** `total` connections (0: until stop()), `concurrency` at a time, from inside `cg`. */
export function burstFrom(cg: TestCgroup, host: string, port: number, total: number, concurrency: number): Burst {
  const child = cg.spawn(process.execPath, [STREAM, host, String(port), String(total), String(concurrency)]);
  return {
    done: collect(child, 60_000).then((out) => JSON.parse(out.trim().split('\n').pop()!) as { ok: number; failed: number }),
    stop: () => child.kill('SIGTERM'),
  };
}

/**
 * Turns on the kernel's BPF run-time statistics while the returned stop()
 * is not called (BPF_ENABLE_STATS, reference-counted: it never turns them off
 * for anyone else).
 */
export async function enableBpfStats(): Promise<() => void> {
  const child = spawn('python3', [BPF_STATS], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`bpf-stats.py exited ${code}: ${err}`)));
  });
  return () => child.kill('SIGKILL');
}

/** Polls `check` every 50 ms until it returns a value other than undefined; rejects after `timeoutMillis`. */
export async function waitFor<T>(what: string, check: () => T | undefined, timeoutMillis = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMillis;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMillis} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The lifecycle most CLI suites share: one real collector for the suite, a
 * fresh throwaway cgroup per test, and every flowtap and listener a test
 * started stopped afterwards (also when it fails). Call inside describe().
 */
export interface CliFixture {
  readonly collector: RunningCollector;
  readonly cg: TestCgroup;
  /** Listeners to close after the test. */
  readonly servers: Server[];
}

export function useCliFixture(label: string): CliFixture {
  const state: { collector?: RunningCollector; cg?: TestCgroup; servers: Server[] } = { servers: [] };
  beforeAll(async () => {
    state.collector = await startCollector();
  });
  afterAll(async () => {
    await state.collector?.close();
  });
  beforeEach(() => {
    state.cg = new TestCgroup(label);
  });
  afterEach(async () => {
    killAllFlowtaps();
    for (const s of state.servers.splice(0)) s.close();
    await state.cg?.destroy();
  });
  return {
    get collector() {
      return state.collector!;
    },
    get cg() {
      return state.cg!;
    },
    servers: state.servers,
  };
}
