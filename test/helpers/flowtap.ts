/**
 * Runs the real CLI (node dist/cli.js) as a child process, as a user would,
 * and waits for its "ready" log line.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const CLI = join(__dirname, '..', '..', 'dist', 'cli.js');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** SIGKILLs every flowtap a test started and did not stop (call in afterEach). */
export function killAllFlowtaps(): void {
  for (const c of live) c.kill('SIGKILL');
  live.clear();
}

export interface RunningFlowtap {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Parsed JSON log lines from stderr. */
  logs(): Record<string, unknown>[];
  /** SIGTERM; resolves with the exit code and how long it took. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; millis: number }>;
}

/**
 * `prefix` runs the CLI through another command that execs it in the end
 * (e.g. capsh ... -- -c 'exec "$0" "$@"'), so the child is still flowtap.
 */
export function startFlowtap(args: string[], env: Record<string, string> = {}, readyTimeoutMs = 15000, prefix: string[] = []): Promise<RunningFlowtap> {
  const [cmd, ...cmdArgs] = [...prefix, process.execPath, CLI, ...args];
  const child = spawn(cmd, cmdArgs, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.on('exit', () => live.delete(child));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const running: RunningFlowtap = {
    child,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      err
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      const t0 = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`flowtap did not exit within 15 s of ${signal}; stderr: ${err}`)), 15000);
      });
      try {
        const r = await Promise.race([exited, timeout]);
        return { ...r, millis: Date.now() - t0 };
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`flowtap not ready after ${readyTimeoutMs} ms; stderr: ${err}`));
    }, readyTimeoutMs);
    const check = () => {
      if (running.logs().some((l) => l.msg === 'ready')) {
        clearTimeout(t);
        child.stderr!.off('data', check);
        resolve(running);
      }
    };
    child.stderr!.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(t);
      reject(new Error(`flowtap exited (${code ?? signal}) before ready; stderr: ${err}`));
    });
  });
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
  expect(typeof uptimeSeconds).toBe('number');
  expect(totals).toEqual({
    flowsBegun: counters.probe.flow_begin ?? 0,
    flowsEnded: counters.probe.flow_end ?? 0,
    exportedRecords: counters.exportedRecords,
    failedRecords: counters.failedRecords,
    droppedRecords: counters.droppedRecords,
    ...(stopped.exportedSpans === undefined ? {} : { exportedSpans: stopped.exportedSpans, failedSpans: stopped.failedSpans, droppedSpans: stopped.droppedSpans }),
  });
}
