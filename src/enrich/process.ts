/**
 * What /proc says about the process a flow event names (FlowEvent.process):
 * its executable, command line, user and parent. The kernel gives the pid
 * (in the initial pid namespace), the uid and the capture time; this reads
 * the rest from /proc/<pid> once per process and keeps it, bounded and
 * counted.
 *
 * A pid is reused once its process is gone, so an entry is keyed by pid and
 * start time (/proc/<pid>/stat field 22, boot-time clock ticks): a process
 * that started after the capture cannot be the one that connected, and is
 * never reported for it. A process that is gone when the event is read gives
 * nothing beyond the kernel's fields. See docs/process.md.
 *
 * I/O comes in through `proc` (a real /proc, or a fake tree in tests).
 */

/** Reads from a /proc tree; undefined when the file, link or directory does not exist or cannot be read. */
export interface ProcReader {
  readFile(path: string): string | undefined;
  readLink(path: string): string | undefined;
  /** The names in a directory (/proc/<pid>/task); without it, no thread names are read. */
  listDir?(path: string): string[] | undefined;
}

/** What /proc said about one process, when flowtap first looked. */
export interface ProcessDetails {
  pid: number;
  /** Start time, ns since boot (clock-tick resolution). */
  startNs: bigint;
  /** /proc/<pid>/comm: the name of the program it runs. */
  name: string | undefined;
  /** /proc/<pid>/exe; undefined when unreadable, or when the program changed since the capture (see lookup). */
  executablePath: string | undefined;
  /** /proc/<pid>/cmdline split at NUL; undefined as executablePath. */
  commandArgs: string[] | undefined;
  /** Real uid (/proc/<pid>/status Uid:). */
  uid: number | undefined;
  parentPid: number | undefined;
}

export interface ProcessCacheStats {
  /** Lookups answered from the cache (also for a process gone since it was read). */
  hits: number;
  /** Lookups that read /proc. */
  misses: number;
  /** The pid had no process any more. */
  gone: number;
  /** The pid's process started after the capture: a reused pid, not reported. */
  reused: number;
  /** The process runs another program than at the capture (an exec): name, path and args left out. */
  changed: number;
  /** Entries dropped to stay within maxEntries. */
  evictions: number;
  entries: number;
}

export interface ProcessCacheOptions {
  proc: ProcReader;
  /** Where the tree is mounted (default /proc). */
  root?: string;
  /** At most this many processes are kept; the least recently used goes first. */
  maxEntries: number;
  /**
   * An entry filled longer than this before a flow's capture is read again
   * (a process may exec() another program, and only a re-read sees it).
   */
  maxAgeNs: bigint;
  /** sysconf(_SC_CLK_TCK): /proc's clock ticks per second (100 on Linux). */
  clockTicksPerSecond?: number;
  /** Kernel boot-time ns now (CLOCK_BOOTTIME, the clock of FlowProcess.capturedAtNs). */
  nowBootNs: () => bigint;
}

/** The bounds the CLI uses: the processes kept, and how old an entry may be before it is read again. */
export const PROCESS_CACHE_LIMITS = { maxEntries: 4096, maxAgeNs: 30_000_000_000n } as const;

interface Entry {
  details: ProcessDetails;
  filledAtNs: bigint;
  /** The last time /proc showed this process running (boot-time ns). */
  seenAtNs: bigint;
  /** The names of its threads (the comm of each /proc/<pid>/task entry), read the first time a capture's name is not the process's. */
  threadNames?: ReadonlySet<string>;
}

/** Parsed /proc/<pid>/stat: the fields after the parenthesised comm, which may hold anything. */
export function parseStat(text: string): { parentPid: number; startTicks: bigint } | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // after ") ": state(3) ppid(4) ... starttime(22) — index 0 here is field 3
  const fields = text
    .slice(close + 2)
    .trim()
    .split(' ');
  if (fields.length < 20) return undefined;
  const parentPid = Number(fields[1]);
  if (!Number.isInteger(parentPid) || !/^\d+$/.test(fields[19])) return undefined;
  return { parentPid, startTicks: BigInt(fields[19]) };
}

/** The real uid of /proc/<pid>/status text. */
export function parseStatusUid(text: string): number | undefined {
  const m = /^Uid:\s+(\d+)/m.exec(text);
  return m === null ? undefined : Number(m[1]);
}

/** /proc/<pid>/cmdline: NUL-separated arguments, the last one NUL-terminated. */
export function parseCmdline(text: string): string[] | undefined {
  if (text === '') return undefined; // a kernel thread, or a zombie
  const args = text.split('\0');
  if (args[args.length - 1] === '') args.pop();
  return args;
}

export class ProcessCache {
  private readonly _entries = new Map<string, Entry>();
  /** The key of the entry last read for each pid. */
  private readonly _keyOfPid = new Map<number, string>();
  private readonly _options: Required<Omit<ProcessCacheOptions, 'nowBootNs' | 'proc'>> & Pick<ProcessCacheOptions, 'nowBootNs' | 'proc'>;
  private readonly _stats: Omit<ProcessCacheStats, 'entries'> = { hits: 0, misses: 0, gone: 0, reused: 0, changed: 0, evictions: 0 };

  constructor(options: ProcessCacheOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1)
      throw new RangeError(`maxEntries must be a whole number >= 1, got ${options.maxEntries}`);
    this._options = { root: '/proc', clockTicksPerSecond: 100, ...options };
  }

  get stats(): ProcessCacheStats {
    return { ...this._stats, entries: this._entries.size };
  }

  /**
   * The details of process `pid` as captured at boot-time `capturedAtNs`,
   * or undefined when it is gone or its pid now belongs to a later process
   * and the cache holds nothing of it.
   *
   * A process /proc showed running after the capture, and started before it,
   * held the pid at the capture: its entry answers without reading /proc
   * again (the end of a flow, the flows of a batch), also once the process
   * is gone or its pid reused, so the end of a flow whose process exited
   * right after closing still names it.
   *
   * `comm`, when the kernel captured it, is the connecting thread's name at
   * the capture: if no thread of the process has that name now, the process
   * runs another program (it exec()ed) and its name, path and arguments,
   * which are the new program's, are left out.
   */
  lookup(pid: number, capturedAtNs: bigint, comm?: string): ProcessDetails | undefined {
    const base = `${this._options.root}/${pid}`;
    // Seen running after the capture: the pid was its at the capture, no /proc read needed.
    const kept = this._keptFor(pid, capturedAtNs);
    if (kept !== undefined && capturedAtNs - kept.filledAtNs <= this._options.maxAgeNs) {
      this._stats.hits++;
      const key = this._keyOfPid.get(pid)!;
      this._entries.delete(key); // most recently used: to the back
      this._entries.set(key, kept);
      return this._asCaptured(kept, base, comm);
    }
    const stat = this._readStat(base);
    const startNs = stat === undefined ? undefined : (stat.startTicks * 1_000_000_000n) / BigInt(this._options.clockTicksPerSecond);
    // The tick count rounds down: a start after the capture is certain.
    if (stat === undefined || startNs === undefined || startNs > capturedAtNs) {
      if (kept !== undefined) {
        this._stats.hits++;
        return this._asCaptured(kept, base, comm);
      }
      if (stat === undefined) this._stats.gone++;
      else this._stats.reused++;
      return undefined;
    }
    const key = `${pid}:${stat.startTicks}`;
    let entry = this._entries.get(key);
    if (entry !== undefined && capturedAtNs - entry.filledAtNs <= this._options.maxAgeNs) {
      this._stats.hits++;
      entry.seenAtNs = this._options.nowBootNs();
      this._entries.delete(key); // most recently used: to the back
      this._entries.set(key, entry);
    } else {
      this._stats.misses++;
      const nowNs = this._options.nowBootNs();
      entry = { details: this._read(base, pid, startNs, stat.parentPid), filledAtNs: nowNs, seenAtNs: nowNs };
      this._entries.delete(key);
      this._entries.set(key, entry);
      while (this._entries.size > this._options.maxEntries) {
        const oldest = this._entries.keys().next().value as string;
        const gone = this._entries.get(oldest)!.details.pid;
        if (this._keyOfPid.get(gone) === oldest) this._keyOfPid.delete(gone);
        this._entries.delete(oldest);
        this._stats.evictions++;
      }
    }
    this._keyOfPid.set(pid, key);
    return this._asCaptured(entry, base, comm);
  }

  /**
   * The entry of the process that held `pid` at `capturedAtNs`: one that had
   * started before it and that /proc showed running after it.
   */
  private _keptFor(pid: number, capturedAtNs: bigint): Entry | undefined {
    const key = this._keyOfPid.get(pid);
    const entry = key === undefined ? undefined : this._entries.get(key);
    if (entry === undefined || entry.details.startNs > capturedAtNs || entry.seenAtNs < capturedAtNs) return undefined;
    return entry;
  }

  /** The entry's details, without what describes another program than the one whose thread `comm` connected. */
  private _asCaptured(entry: Entry, base: string, comm: string | undefined): ProcessDetails {
    const d = entry.details;
    if (comm === undefined || d.name === undefined || d.name === comm) return d;
    entry.threadNames ??= this._threadNames(base);
    if (entry.threadNames.has(comm)) return d;
    this._stats.changed++;
    return { ...d, name: undefined, executablePath: undefined, commandArgs: undefined };
  }

  private _threadNames(base: string): ReadonlySet<string> {
    const { proc } = this._options;
    const names = new Set<string>();
    for (const tid of proc.listDir?.(`${base}/task`) ?? []) {
      const name = proc.readFile(`${base}/task/${tid}/comm`);
      if (name !== undefined) names.add(name.replace(/\n$/, ''));
    }
    return names;
  }

  private _readStat(base: string): { parentPid: number; startTicks: bigint } | undefined {
    const text = this._options.proc.readFile(`${base}/stat`);
    return text === undefined ? undefined : parseStat(text);
  }

  private _read(base: string, pid: number, startNs: bigint, parentPid: number): ProcessDetails {
    const { proc } = this._options;
    const comm = proc.readFile(`${base}/comm`);
    const status = proc.readFile(`${base}/status`);
    const cmdline = proc.readFile(`${base}/cmdline`);
    return {
      pid,
      startNs,
      name: comm === undefined ? undefined : comm.replace(/\n$/, ''),
      executablePath: proc.readLink(`${base}/exe`),
      commandArgs: cmdline === undefined ? undefined : parseCmdline(cmdline),
      uid: status === undefined ? undefined : parseStatusUid(status),
      parentPid,
    };
  }
}

/** The ProcReader of the real file system (synchronous: /proc files are generated in memory). */
export function fsProcReader(fs: {
  readFileSync(path: string, encoding: 'utf8'): string;
  readlinkSync(path: string): string;
  readdirSync(path: string): string[];
}): ProcReader {
  return {
    listDir: (path) => {
      try {
        return fs.readdirSync(path);
      } catch {
        return undefined;
      }
    },
    readFile: (path) => {
      try {
        return fs.readFileSync(path, 'utf8');
      } catch {
        return undefined;
      }
    },
    readLink: (path) => {
      try {
        return fs.readlinkSync(path);
      } catch {
        return undefined;
      }
    },
  };
}

/** The inode of the initial pid namespace (PROC_PID_INIT_INO, include/linux/proc_ns.h). */
const INITIAL_PID_NAMESPACE = 'pid:[4026531836]';

/**
 * True when the link text of /proc/self/ns/pid names the initial pid
 * namespace: only then are the kernel's pids (bpf_get_current_pid_tgid, in
 * the initial namespace) the pids of this /proc. In a pod without
 * hostPID the same number is another process, or none.
 */
export function pidNamespaceIsInitial(procSelfNsPid: string | undefined): boolean {
  return procSelfNsPid === INITIAL_PID_NAMESPACE;
}
