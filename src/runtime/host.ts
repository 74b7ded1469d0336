/**
 * What flowtap reads from the host's file system at start and while it runs:
 * /proc files, directory checks, the cgroup tree (for container.id), TLS
 * files, its own package.json. Each is a small function the CLI passes to
 * the pure parts that need it.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import * as path from 'node:path';
import type { SystemView } from '../config/config';
import type { CgroupTree } from '../enrich/container';
import { fsProcReader, type ProcReader } from '../enrich/process';

/** A file's text, or undefined if it cannot be read. */
export function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The real /proc, for the process cache. */
export const procReader: ProcReader = fsProcReader({ readFileSync, readlinkSync, readdirSync: (dir) => readdirSync(dir) });

/** A symbolic link's target, or undefined if it cannot be read. */
export function readLink(file: string): string | undefined {
  try {
    return readlinkSync(file);
  } catch {
    return undefined;
  }
}

export function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

/** What the configuration reads from the system: /proc/self/cgroup, directories, TLS files. */
export function systemView(): SystemView {
  return { procSelfCgroup: readText('/proc/self/cgroup'), isDirectory, readFile: (file) => readFileSync(file) };
}

/** The cgroup directory walk for container.id (src/enrich/container.ts). */
export const cgroupTree: CgroupTree = {
  subdirs(dir: string): string[] {
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    } catch {
      return [];
    }
  },
  inode(dir: string): bigint | undefined {
    try {
      return statSync(dir, { bigint: true }).ino;
    } catch {
      return undefined;
    }
  },
};

/** Directories walked at most when counting a cgroup tree's processes. */
const MAX_COUNTED_CGROUPS = 100_000;

/**
 * Processes in the cgroup tree at `root` (cgroup.procs of it and of every
 * cgroup below it), or undefined when `root` cannot be read. The `ready` line
 * shows it, so an empty or wrong cgroup shows at start.
 */
export function cgroupProcessCount(root: string): number | undefined {
  if (readText(path.join(root, 'cgroup.procs')) === undefined) return undefined;
  let count = 0;
  const queue = [root];
  for (let n = 0; n < queue.length && n < MAX_COUNTED_CGROUPS; n++) {
    const procs = readText(path.join(queue[n], 'cgroup.procs')) ?? '';
    for (const line of procs.split('\n')) if (line !== '') count++;
    for (const sub of cgroupTree.subdirs(queue[n])) queue.push(path.join(queue[n], sub));
  }
  return count;
}

/** The version in `packageRoot`/package.json, or "unknown". */
export function packageVersion(packageRoot: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
