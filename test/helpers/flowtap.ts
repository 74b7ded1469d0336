/**
 * Runs the real CLI (node dist/cli.js) as a child process, as a user would,
 * and waits for its "ready" log line. The tests and the benchmarks (bench/)
 * both start flowtap here; the processes are tracked (processes.ts).
 */
import { deepStrictEqual, strictEqual } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import { spawn } from './processes.ts';
import { CLI } from './repo.ts';

export { CLI };

const live = new Set<ChildProcess>();

/** SIGKILLs every flowtap a test started and did not stop (call in afterEach). */
export function killAllFlowtaps(): void {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
}

export interface RunningFlowtap {
  child: ChildProcess;
  /** The command line as started (prefix, node, node options, CLI, arguments). */
  command: string;
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines from stderr. */
  logs(): Record<string, unknown>[];
  /**
   * Sends `signal` (SIGTERM by default); resolves with the exit code and how long it took. After `timeoutMillis`
   * (default 15000) it SIGKILLs flowtap and rejects.
   */
  stop(signal?: NodeJS.Signals, timeoutMillis?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; millis: number }>;
}

/** A flowtap child watched from its start: its output, its "ready" line, its exit. */
export interface WatchedFlowtap extends RunningFlowtap {
  /** stdout's JSON lines (the console exporter's records). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  records(): Record<string, any>[];
  /** The "ready" log line; rejects when flowtap exits first, or (killing it) after the ready timeout. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  ready: Promise<Record<string, any>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const jsonLines = (text: string, only: (line: string) => boolean) =>
  text
    .split('\n')
    .filter(only)
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    .map((l) => JSON.parse(l) as Record<string, any>);

/**
 * Watches a flowtap child however it was started (directly, or through a
 * shell that execs it in a cgroup or namespace): stdout = records, stderr =
 * JSON log lines.
 */
export function watchFlowtap(child: ChildProcess, command = '', readyTimeoutMs = 15000): WatchedFlowtap {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const logs = () => jsonLines(err, (l) => l.startsWith('{'));
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`flowtap not ready after ${readyTimeoutMs} ms; stderr: ${err}`));
    }, readyTimeoutMs);
    const check = () => {
      const line = logs().find((l) => l.msg === 'ready');
      if (line !== undefined) {
        clearTimeout(t);
        child.stderr!.off('data', check);
        resolve(line);
      }
    };
    child.stderr!.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(t);
      reject(new Error(`flowtap exited (${code ?? signal}) before ready; stderr: ${err}`));
    });
  });
  ready.catch(() => undefined);
  return {
    child,
    command,
    stdout: () => out,
    stderr: () => err,
    logs,
    records: () => jsonLines(out, Boolean),
    ready,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMillis = 15000) {
      const t0 = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          rej(new Error(`flowtap did not exit within ${timeoutMillis} ms of ${signal}; stderr: ${err}`));
        }, timeoutMillis);
      });
      try {
        const r = await Promise.race([exited, timeout]);
        return { ...r, millis: Date.now() - t0 };
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Starts the CLI and resolves once it logged "ready". `prefix` runs it
 * through another command that execs it in the end (e.g. capsh ... -- -c
 * 'exec "$0" "$@"', or taskset -c 0), so the child is still flowtap.
 * `nodeArgs` go to node before the CLI (e.g. --trace-gc).
 */
export async function startFlowtap(
  args: string[],
  env: Record<string, string | undefined> = {},
  readyTimeoutMs = 15000,
  prefix: string[] = [],
  nodeArgs: string[] = [],
): Promise<WatchedFlowtap> {
  const argv = [...prefix, process.execPath, ...nodeArgs, CLI, ...args];
  const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.on('exit', () => live.delete(child));
  const watched = watchFlowtap(child, argv.join(' '), readyTimeoutMs);
  await watched.ready;
  return watched;
}

/** Runs the CLI to completion (for bad-input cases). */
export function runFlowtap(
  args: string[],
  env: Record<string, string> = {},
  prefix: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...cmdArgs] = [...prefix, process.execPath, CLI, ...args];
  return new Promise((resolve) => {
    const child = spawn(cmd, cmdArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code, stdout: out, stderr: err }));
  });
}

/**
 * What a stopped flowtap logged last: `counters`, every counter (a debug
 * line: run it with --log-level debug), and `stopped`, the short info line
 * (uptime and totals). Throws, with the end of stderr, when either is missing.
 */
export function finalLines(ft: RunningFlowtap): { counters: Record<string, any>; stopped: Record<string, any> } {
  const logs = ft.logs();
  // the last one: with --summary-interval-seconds, one comes after each summary too
  const counters = logs.filter((l) => l.msg === 'counters').pop();
  const stopped = logs.find((l) => l.msg === 'stopped');
  if (counters === undefined || stopped === undefined) {
    throw new Error(`no 'counters' (--log-level debug?) or no 'stopped' line; stderr ends: ${ft.stderr().slice(-2000)}`);
  }
  return { counters, stopped };
}

/** The `stopped` line must be the short one, with exactly these totals of the `counters` line. */
export function expectStoppedMatches(counters: Record<string, any>, stopped: Record<string, any>): void {
  const { time: _t, level: _l, msg: _m, uptimeSeconds, ...totals } = stopped;
  // node:assert, not jest's expect: bench/ loads these helpers too.
  strictEqual(typeof uptimeSeconds, 'number');
  deepStrictEqual(totals, {
    flowsBegun: counters.probe.flow_begin ?? 0,
    flowsEnded: counters.probe.flow_end ?? 0,
    exportedRecords: counters.exportedRecords,
    failedRecords: counters.failedRecords,
    droppedRecords: counters.droppedRecords,
    dnsAnswersRefused: Object.values(counters.dns.unmatched as Record<string, number>).reduce((a, n) => a + n, 0),
    ...(stopped.exportedSpans === undefined
      ? {}
      : { exportedSpans: stopped.exportedSpans, failedSpans: stopped.failedSpans, droppedSpans: stopped.droppedSpans }),
  });
}
