/**
 * What the benchmarks share: a cleanup stack that also runs on a crash or a
 * signal, throwaway cgroups, child processes started in them, sysctls set and
 * restored, /proc CPU times, and summary statistics.
 *
 * Everything a benchmark changes on the host (a sysctl, an nft table, an
 * attached program, a mount) is undone through `onCleanup`, in reverse order,
 * when the step ends — and, if the runner dies first, from the exit handler.
 */
import { execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inCgroup, TestCgroup } from '../test/helpers/cgroup.ts';
import { killTrackedSync, spawn } from '../test/helpers/processes.ts';
import { ROOT } from '../test/helpers/repo.ts';

export { ROOT };
/** Raw results and per-part files; BENCH_OUT moves them (e.g. for a trial run beside someone else's). */
export const OUT = process.env.BENCH_OUT || join(ROOT, 'bench', 'out');
export const BUILD = join(ROOT, 'build', 'bench');

// --- cleanup ------------------------------------------------------------------------------------

type Undo = () => void;
const undoStack: Undo[] = [];

/** Registers a synchronous undo step; returns a function that runs it now (once). */
export function onCleanup(undo: Undo): () => void {
  let done = false;
  const once: Undo = () => {
    if (done) return;
    done = true;
    const i = undoStack.indexOf(once);
    if (i >= 0) undoStack.splice(i, 1);
    try {
      undo();
    } catch (e) {
      process.stderr.write(`bench: cleanup step failed: ${(e as Error).message}\n`);
    }
  };
  undoStack.push(once);
  return once;
}

export function cleanupAll(): void {
  while (undoStack.length > 0) undoStack[undoStack.length - 1]();
}

process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    process.stderr.write(`bench: ${sig}: cleaning up\n`);
    cleanupAll();
    process.exit(130);
  });
}

// --- small utilities ------------------------------------------------------------------------------

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** /proc/loadavg's 1, 5 and 15 minute averages, e.g. "0.52 0.61 0.70". */
export const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/**
 * A command line as it reads in docs/benchmarks.md: each `[actual, shown]`
 * replacement (ports, scratch dirs) in order, then Node as `node` and the
 * repository's paths relative.
 */
export function shownCommand(line: string, replacements: [string, string][] = []): string {
  let out = line;
  for (const [actual, shown] of replacements) out = out.replaceAll(actual, shown);
  return out.replaceAll(process.execPath, 'node').replaceAll(`${ROOT}/`, '');
}

export interface Summary {
  min: number;
  median: number;
  max: number;
  values: number[];
}

export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const median = n === 0 ? NaN : n % 2 === 1 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return { min: sorted[0] ?? NaN, median, max: sorted[n - 1] ?? NaN, values };
}

/** Sets a sysctl (/proc/sys path form, e.g. kernel/bpf_stats_enabled) and restores the old value at cleanup. */
export function setSysctl(name: string, value: string): () => void {
  const file = join('/proc/sys', name);
  const old = readFileSync(file, 'utf8').trim();
  writeFileSync(file, value);
  return onCleanup(() => writeFileSync(file, old));
}

const CLK_TCK = Number(run('getconf', ['CLK_TCK']).trim()) || 100;

/** user + system CPU seconds of a process (all its threads), from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/**
 * One CPU's time from /proc/stat, in seconds: `busy` is everything but idle
 * and iowait (so it includes steal: time the hypervisor gave elsewhere).
 */
export function cpuTimes(cpu: number): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (line === undefined) throw new Error(`no cpu${cpu} in /proc/stat`);
  const t = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
  const total = t.reduce((a, b) => a + b, 0);
  return { busy: (total - t[3] - t[4]) / CLK_TCK, total: total / CLK_TCK };
}

// --- cgroups and the processes in them ---------------------------------------------------------------

// Every process started here (test/helpers/processes.ts tracks them) ends with the run.
onCleanup(() => killTrackedSync());

export interface Started {
  child: ChildProcess;
  /** The command as started: extra environment, taskset, command and arguments (not the cgroup wrapper). */
  commandLine: string;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  /** Resolves when stdout or stderr has matched `re`; rejects on exit or timeout. */
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<void>;
  /** Sends `signal` (default SIGTERM); SIGKILL after timeoutMs; resolves with the exit code. */
  stop: (signal?: NodeJS.Signals, timeoutMs?: number) => Promise<number | null>;
}

/**
 * Starts a process (inside `cgroupDir` when given: a shell moves itself into
 * the cgroup, then execs; on the CPUs `cpus` lists when given, through
 * taskset). stdout/stderr are kept in memory unless `stdoutFile` sends stdout
 * straight to a file (then nothing passes through this process).
 */
export interface StartOptions {
  cgroupDir?: string;
  /** taskset CPU list, e.g. "0" or "1-3". */
  cpus?: string;
  stdoutFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** A command as a shell line: the variables of `env` that differ from this process's, then argv, quoted where needed. */
export function quotedCommand(env: NodeJS.ProcessEnv, argv: string[]): string {
  const extraEnv = Object.entries(env)
    .filter(([k, v]) => v !== undefined && process.env[k] !== v)
    .map(([k, v]) => `${k}=${v}`);
  return [...extraEnv, ...argv].map((w) => (/^[\w@%+=:,./<>-]+$/.test(w) ? w : `'${w}'`)).join(' ');
}

export function start(command: string, commandArgs: string[], opts: StartOptions = {}): Started {
  const cmd = command;
  const [c, a] = opts.cpus ? ['taskset', ['-c', opts.cpus, command, ...commandArgs]] : [command, commandArgs];
  const commandLine = quotedCommand(opts.env ?? {}, [c, ...a]);
  const [file, argv] = opts.cgroupDir ? inCgroup(opts.cgroupDir, c, a) : [c, a];
  let outFd: number | undefined;
  if (opts.stdoutFile) outFd = openSync(opts.stdoutFile, 'w');
  const spawnOpts: SpawnOptions = { stdio: ['ignore', outFd ?? 'pipe', 'pipe'], env: opts.env ?? process.env };
  const child = spawn(file, argv, spawnOpts);
  if (outFd !== undefined) closeSync(outFd);
  let out = '';
  let err = '';
  const waiters: (() => void)[] = [];
  const poke = () => waiters.forEach((w) => w());
  child.stdout?.on('data', (d) => ((out += d), poke()));
  child.stderr?.on('data', (d) => ((err += d), poke()));
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      // could not be spawned: no 'close' follows
      err += `${cmd}: ${e.message}\n`;
      poke();
      resolve(127);
    });
    child.on('close', (code, signal) => {
      poke();
      resolve(code ?? (signal ? 128 : null));
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  const started: Started = {
    child,
    commandLine,
    exited,
    stdout: () => out,
    stderr: () => err,
    waitFor: (re, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const fileText = () => (opts.stdoutFile && existsSync(opts.stdoutFile) ? readFileSync(opts.stdoutFile, 'utf8') : '');
        const t = setTimeout(() => finish(new Error(`${cmd}: no ${re} after ${timeoutMs} ms; stderr: ${err.slice(-2000)}`)), timeoutMs);
        const poll = setInterval(() => check(), 100);
        const check = () => {
          if (re.test(out) || re.test(err) || re.test(fileText())) finish();
          else if (done) finish(new Error(`${cmd} exited before ${re}; stderr: ${err.slice(-2000)}`));
        };
        const finish = (e?: Error) => {
          clearTimeout(t);
          clearInterval(poll);
          const i = waiters.indexOf(check);
          if (i >= 0) waiters.splice(i, 1);
          if (e) reject(e);
          else resolve();
        };
        waiters.push(check);
        check();
      }),
    stop: async (signal = 'SIGTERM', timeoutMs = 10_000) => {
      if (!done) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return started;
}

/** A throwaway cgroup v2 directory (test/helpers/cgroup.ts), removed (its processes killed) at cleanup. */
export class Cgroup {
  readonly path: string;
  readonly remove: () => void;

  constructor(label: string) {
    const cgroup = new TestCgroup(`bench-${label}`);
    this.path = cgroup.path;
    this.remove = onCleanup(() => cgroup.destroySync());
  }

  start(cmd: string, args: string[], opts: Omit<StartOptions, 'cgroupDir'> = {}): Started {
    return start(cmd, args, { ...opts, cgroupDir: this.path });
  }
}

/** Runs a client to completion and returns its stdout (throws on a non-zero exit). */
export async function runToEnd(s: Started, what: string): Promise<string> {
  const code = await s.exited;
  if (code !== 0) throw new Error(`${what} exited ${code}: ${s.stderr().slice(-2000)}`);
  return s.stdout();
}

/** The loadgen client's one line: done errors seconds lastError. */
export interface ClientResult {
  done: number;
  errors: number;
  seconds: number;
  lastError: string;
}

export function parseClient(line: string): ClientResult {
  const [done, errors, seconds, lastError] = line.trim().split(/\s+/);
  const r = { done: Number(done), errors: Number(errors), seconds: Number(seconds), lastError: lastError ?? '-' };
  if (!Number.isFinite(r.done) || !Number.isFinite(r.seconds) || r.seconds <= 0) throw new Error(`loadgen printed '${line.trim()}'`);
  return r;
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}
