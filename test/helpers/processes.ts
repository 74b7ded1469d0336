/**
 * Every process the tests and benchmarks start goes through spawn() here (a
 * drop-in for node:child_process's), so that none outlives what started it:
 * the registry lists the ones still running, killTracked() ends them, and
 * the jest environment (test/helpers/environment.ts) calls it when a test
 * fails (for what that test started) and after each test file (for the rest).
 * Processes in a network namespace or a cgroup are tracked the same way.
 * The throwaway namespaces and cgroups themselves are leftovers until
 * removed: the environment removes those after the file, the exit handler
 * elsewhere (jest's sandboxed `process` runs no exit handlers of a test file).
 *
 * The registry lives on globalThis, so that the jest environment, outside
 * the test file's module registry, sees the same one.
 */
import { spawn as spawnChild, type ChildProcess, type SpawnOptions } from 'node:child_process';

export interface TrackedProcess {
  child: ChildProcess;
  /** The command line as started, for reports. */
  command: string;
  /** Increases with every start: what a test started has a sequence at or above the mark taken when it began. */
  sequence: number;
}

interface Leftover {
  what: string;
  remove(): void;
}

interface Registry {
  live: Set<TrackedProcess>;
  next: number;
  leftovers: Set<Leftover>;
}

const KEY = Symbol.for('flowtap.test.processes');

/** The registry of the current global context (a jest test file's sandbox, or a bench process). */
export function registry(global: object = globalThis): Registry {
  const g = global as { [KEY]?: Registry };
  g[KEY] ??= { live: new Set(), next: 0, leftovers: new Set() };
  return g[KEY];
}

/** Started (one that could not be spawned has no pid) and not yet exited. */
const running = (c: ChildProcess): boolean => c.pid !== undefined && c.exitCode === null && c.signalCode === null;

/** Adds a child started elsewhere to the registry; it leaves it when it exits. Returns the child. */
export function track(child: ChildProcess, command: string): ChildProcess {
  const reg = registry();
  const entry: TrackedProcess = { child, command, sequence: reg.next++ };
  reg.live.add(entry);
  const forget = () => reg.live.delete(entry);
  // Only 'exit': an 'error' listener here would hide a failed spawn from a caller that has none.
  child.once('exit', forget);
  return child;
}

/** node:child_process spawn (same overloads and defaults), tracked. */
export const spawn = ((command: string, argsOrOptions?: readonly string[] | SpawnOptions, maybeOptions?: SpawnOptions): ChildProcess => {
  const args = Array.isArray(argsOrOptions) ? (argsOrOptions as readonly string[]) : [];
  const options = (Array.isArray(argsOrOptions) ? maybeOptions : (argsOrOptions as SpawnOptions | undefined)) ?? {};
  return track(spawnChild(command, args, options), [command, ...args].join(' '));
}) as typeof spawnChild;

/** Processes started for one owner (a cgroup, a set of namespaces), to be killed with it. */
export interface ProcessGroup {
  /** spawn(), remembered by this group too. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** SIGKILLs the group's processes still running. */
  killAll(): void;
}

export function processGroup(): ProcessGroup {
  const members = new Set<ChildProcess>();
  return {
    spawn(command, args, options = {}) {
      const child = spawn(command, args, options);
      members.add(child);
      child.once('exit', () => members.delete(child));
      return child;
    },
    killAll() {
      for (const c of members) c.kill('SIGKILL');
      members.clear();
    },
  };
}

/** The processes still running, oldest first. */
export function liveProcesses(global: object = globalThis): TrackedProcess[] {
  return [...registry(global).live].filter((p) => running(p.child)).sort((a, b) => a.sequence - b.sequence);
}

/** The sequence the next process will get: a mark to kill "everything started since" with. */
export function processMark(global: object = globalThis): number {
  return registry(global).next;
}

/**
 * SIGKILLs the tracked processes still running whose sequence is at least
 * `since` (all of them by default), waits up to `waitMillis` for them to be
 * gone, and returns what it killed.
 */
export async function killTracked(since = 0, global: object = globalThis, waitMillis = 5000): Promise<TrackedProcess[]> {
  const victims = liveProcesses(global).filter((p) => p.sequence >= since);
  await Promise.all(
    victims.map(
      (p) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMillis);
          p.child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          p.child.kill('SIGKILL');
          if (!running(p.child)) {
            clearTimeout(timer);
            resolve();
          }
        }),
    ),
  );
  return victims;
}

/** The same, synchronously, without waiting: for exit handlers. */
export function killTrackedSync(global: object = globalThis): void {
  for (const p of liveProcesses(global)) p.child.kill('SIGKILL');
}

/**
 * Registers something to remove (a cgroup, a namespace) if nobody does;
 * returns the function to call once it has been removed.
 */
export function leftover(what: string, remove: () => void): () => void {
  const reg = registry();
  const entry: Leftover = { what, remove };
  reg.leftovers.add(entry);
  return () => reg.leftovers.delete(entry);
}

/** Removes what is still registered, newest first; returns what it removed (and what failed, with why). */
export function removeLeftovers(global: object = globalThis): string[] {
  const reg = registry(global);
  const done: string[] = [];
  for (const entry of [...reg.leftovers].reverse()) {
    try {
      entry.remove();
      done.push(entry.what);
    } catch (e) {
      done.push(`${entry.what} (failed: ${(e as Error).message})`);
    }
    reg.leftovers.delete(entry);
  }
  return done;
}

process.once('exit', () => {
  killTrackedSync();
  removeLeftovers();
});
