/**
 * Throwaway cgroup v2 directories for integration tests and benchmarks:
 * created under the cgroup2 mount (hybrid hosts: /sys/fs/cgroup/unified),
 * removed afterwards — also when a test fails or the process exits early.
 */
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { readFileSync, mkdirSync, rmdirSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cgroup2Mounts } from '../../src/config/podcgroup.ts';
import { leftover, processGroup } from './processes.ts';

/** The cgroup v2 mount point of the hierarchy's root, read from /proc/self/mountinfo. */
export function cgroup2Mount(): string {
  const mounts = cgroup2Mounts(readFileSync('/proc/self/mountinfo', 'utf8'));
  const mount = mounts.find((m) => m.root === '/') ?? mounts[0];
  if (mount === undefined) throw new Error('no cgroup2 mount in /proc/self/mountinfo');
  return mount.mountPoint;
}

/** The argv that runs `cmd args` inside the cgroup `dir`: a shell moves itself in, then execs. */
export function inCgroup(dir: string, cmd: string, args: readonly string[]): [string, string[]] {
  return ['/bin/sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, cmd, ...args]];
}

export class TestCgroup {
  readonly path: string;
  private readonly children = processGroup();
  private readonly forget: () => void;

  constructor(label: string, parent?: string) {
    const base = parent ?? cgroup2Mount();
    this.path = join(base, `flowtap-test-${label}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(this.path);
    this.forget = leftover(`cgroup ${this.path}`, () => this.destroySync());
  }

  /** The cgroup's id (its inode number), as bpf_skb_cgroup_id reports it. */
  get id(): bigint {
    return statSync(this.path, { bigint: true }).ino;
  }

  /** Spawns cmd inside this cgroup (tracked, see processes.ts). */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    const [file, argv] = inCgroup(this.path, cmd, args);
    return this.children.spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }

  pids(): number[] {
    if (!existsSync(this.path)) return [];
    return readFileSync(join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  }

  /** Kills what is left inside and removes the directory. */
  async destroy(): Promise<void> {
    this.children.killAll();
    for (let i = 0; i < 100; i++) {
      const pids = this.pids();
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    this.destroySync();
  }

  destroySync(): void {
    for (const pid of this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    for (let i = 0; i < 50 && existsSync(this.path); i++) {
      try {
        rmdirSync(this.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EBUSY') throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
    this.forget();
  }
}

/** Resolves with the child's stdout once it exits with code 0; rejects otherwise. */
export function collect(child: ChildProcess, timeoutMs = 30000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (err += d));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child timed out after ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`child exited ${code ?? signal}; stderr: ${err}`));
    });
  });
}
