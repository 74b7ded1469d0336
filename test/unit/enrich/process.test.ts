import { ProcessCache, parseCmdline, parseStat, parseStatusUid, pidNamespaceIsInitial, type ProcReader } from '../../../src/enrich/process';

/** A fake /proc: files and links by path, and how often each was read. */
class FakeProc implements ProcReader {
  readonly files = new Map<string, string>();
  readonly links = new Map<string, string>();
  readonly reads: string[] = [];
  readFile(path: string): string | undefined {
    this.reads.push(path);
    return this.files.get(path);
  }
  readLink(path: string): string | undefined {
    this.reads.push(path);
    return this.links.get(path);
  }
  listDir(path: string): string[] | undefined {
    this.reads.push(path);
    const prefix = `${path}/`;
    const names = [...this.files.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length).split('/')[0]);
    return names.length === 0 ? undefined : [...new Set(names)];
  }
  /** A process: stat with ppid and start ticks, comm, exe, cmdline, status. */
  add(pid: number, p: { comm: string; ppid: number; startTicks: number; exe?: string; args?: string[]; uid?: number }): void {
    // comm in stat is parenthesised and may hold spaces and parentheses
    const rest = ['S', p.ppid, ...Array(17).fill(0), p.startTicks, 0, 0].join(' ');
    this.files.set(`/proc/${pid}/stat`, `${pid} (${p.comm}) ${rest}\n`);
    this.files.set(`/proc/${pid}/comm`, `${p.comm}\n`);
    if (p.exe !== undefined) this.links.set(`/proc/${pid}/exe`, p.exe);
    if (p.args !== undefined) this.files.set(`/proc/${pid}/cmdline`, p.args.map((a) => `${a}\0`).join(''));
    if (p.uid !== undefined)
      this.files.set(`/proc/${pid}/status`, `Name:\t${p.comm}\nUmask:\t0022\nUid:\t${p.uid}\t${p.uid}\t${p.uid}\t${p.uid}\nGid:\t0\t0\t0\t0\n`);
  }
  remove(pid: number): void {
    for (const m of [this.files, this.links]) for (const k of [...m.keys()]) if (k.startsWith(`/proc/${pid}/`)) m.delete(k);
  }
}

const SEC = 1_000_000_000n;

describe('/proc parsers', () => {
  it('stat: the fields after the last ")" of a comm with spaces and parentheses', () => {
    const rest = ['R', 77, ...Array(17).fill(9), 123456, 0].join(' ');
    expect(parseStat(`42 (a (b) c) ${rest}`)).toEqual({ parentPid: 77, startTicks: 123456n });
    expect(parseStat('42 (x) S 1')).toBeUndefined();
    expect(parseStat('garbage')).toBeUndefined();
  });
  it('status: the real uid', () => {
    expect(parseStatusUid('Name:\tx\nUid:\t1000\t0\t0\t0\n')).toBe(1000);
    expect(parseStatusUid('Name:\tx\n')).toBeUndefined();
  });
  it('cmdline: NUL-separated, an empty one is none', () => {
    expect(parseCmdline('python3\0-c\0print(1)\0')).toEqual(['python3', '-c', 'print(1)']);
    expect(parseCmdline('a b')).toEqual(['a b']); // a process that rewrote its argv
    expect(parseCmdline('')).toBeUndefined();
  });
});

describe('ProcessCache (fake /proc)', () => {
  let proc: FakeProc;
  let now: bigint;
  const cache = (maxEntries = 8, maxAgeNs = 60n * SEC) => new ProcessCache({ proc, maxEntries, maxAgeNs, nowBootNs: () => now });

  beforeEach(() => {
    proc = new FakeProc();
    now = 1000n * SEC;
    proc.add(300, { comm: 'curl', ppid: 1, startTicks: 50_000, exe: '/usr/bin/curl', args: ['curl', '-s', 'http://x'], uid: 1000 });
  });

  it('reads a process once: its executable, arguments, uid and parent; later lookups are hits', () => {
    const c = cache();
    const want = {
      pid: 300,
      startNs: 500n * SEC,
      name: 'curl',
      executablePath: '/usr/bin/curl',
      commandArgs: ['curl', '-s', 'http://x'],
      uid: 1000,
      parentPid: 1,
    };
    expect(c.lookup(300, 600n * SEC)).toEqual(want);
    const reads = proc.reads.length;
    // captured before the cache saw it running (now, 1000 s): the same process, nothing read
    expect(c.lookup(300, 601n * SEC, 'curl')).toEqual(want);
    expect(proc.reads.length - reads).toBe(0);
    // captured after: only stat, whose start time says it is the same process
    expect(c.lookup(300, 1001n * SEC, 'curl')).toEqual(want);
    expect(proc.reads.length - reads).toBe(1);
    expect(c.stats).toMatchObject({ hits: 2, misses: 1, entries: 1 });
  });

  it('a pid whose process started after the capture is a reused pid: nothing, counted', () => {
    const c = cache();
    expect(c.lookup(300, 499n * SEC)).toBeUndefined();
    expect(c.stats).toMatchObject({ reused: 1, entries: 0 });
    // the same start tick as the capture (ticks round down): still the same process
    expect(c.lookup(300, 500n * SEC)?.name).toBe('curl');
  });

  it('a pid reused after a lookup is a new entry, never the old one', () => {
    const c = cache();
    now = 620n * SEC;
    expect(c.lookup(300, 600n * SEC)?.name).toBe('curl');
    proc.remove(300);
    proc.add(300, { comm: 'nginx', ppid: 2, startTicks: 70_000, exe: '/usr/sbin/nginx', args: ['nginx'], uid: 33 });
    now = 1000n * SEC;
    // captured before the new process started, after the old one was last read: the old one may have exited before it
    expect(c.lookup(300, 650n * SEC)).toBeUndefined();
    // captured before the old one was last read: it was the old one's
    expect(c.lookup(300, 610n * SEC)?.name).toBe('curl');
    expect(c.lookup(300, 701n * SEC)).toMatchObject({ name: 'nginx', executablePath: '/usr/sbin/nginx', uid: 33, parentPid: 2 });
    // the old one's entry is no longer the pid's: nothing for a capture between
    expect(c.lookup(300, 610n * SEC)).toBeUndefined();
    expect(c.stats).toMatchObject({ reused: 2, hits: 1, misses: 2, entries: 2 });
  });

  it('a process gone since it was read, after the capture, is still answered from the cache (the end of its last flow)', () => {
    const c = cache();
    now = 601n * SEC;
    expect(c.lookup(300, 600n * SEC)?.executablePath).toBe('/usr/bin/curl');
    proc.remove(300);
    expect(c.lookup(300, 600n * SEC)?.executablePath).toBe('/usr/bin/curl');
    // a capture after the last read: the process may have exited before it
    expect(c.lookup(300, 602n * SEC)).toBeUndefined();
    expect(c.stats).toMatchObject({ hits: 1, misses: 1, gone: 1 });
  });

  it("a capture by a thread of another name than the process's is not an exec", () => {
    proc.files.set('/proc/300/task/300/comm', 'curl\n');
    proc.files.set('/proc/300/task/301/comm', 'worker-1\n');
    const c = cache();
    expect(c.lookup(300, 600n * SEC, 'worker-1')?.executablePath).toBe('/usr/bin/curl');
    expect(c.lookup(300, 600n * SEC, 'worker-1')?.executablePath).toBe('/usr/bin/curl');
    expect(proc.reads.filter((r) => r.endsWith('/task'))).toHaveLength(1); // read once, kept with the entry
    expect(c.lookup(300, 600n * SEC, 'python3')?.executablePath).toBeUndefined();
    expect(c.stats.changed).toBe(1);
  });

  it('a process that is gone gives nothing, counted', () => {
    const c = cache();
    expect(c.lookup(999, 600n * SEC)).toBeUndefined();
    expect(c.stats).toMatchObject({ gone: 1, entries: 0 });
  });

  it('a program changed since the capture (an exec: no thread has the name the kernel captured): name, path and arguments left out', () => {
    const c = cache();
    expect(c.lookup(300, 600n * SEC, 'python3')).toEqual(
      expect.objectContaining({ name: undefined, executablePath: undefined, commandArgs: undefined, uid: 1000, parentPid: 1 }),
    );
    expect(c.stats.changed).toBe(1);
  });

  it('an entry older than maxAgeNs at the capture is read again (an exec after it was filled shows)', () => {
    const c = cache(8, 10n * SEC);
    expect(c.lookup(300, 600n * SEC)?.executablePath).toBe('/usr/bin/curl');
    proc.links.set('/proc/300/exe', '/usr/bin/wget'); // exec'd, same pid and start time
    now = 1005n * SEC;
    expect(c.lookup(300, 1009n * SEC)?.executablePath).toBe('/usr/bin/curl'); // within 10 s of the fill
    expect(c.lookup(300, 1011n * SEC)?.executablePath).toBe('/usr/bin/wget');
    expect(c.stats).toMatchObject({ hits: 1, misses: 2, entries: 1 });
  });

  it('stays within maxEntries, dropping the least recently used, and counts it', () => {
    for (let pid = 1; pid <= 5; pid++) proc.add(pid, { comm: `p${pid}`, ppid: 1, startTicks: 100, exe: `/bin/p${pid}` });
    const c = cache(3);
    for (const pid of [1, 2, 3]) c.lookup(pid, 600n * SEC);
    c.lookup(1, 600n * SEC); // 1 is now the most recent
    c.lookup(4, 600n * SEC); // evicts 2
    c.lookup(5, 600n * SEC); // evicts 3
    expect(c.stats).toMatchObject({ entries: 3, evictions: 2, hits: 1, misses: 5 });
    const reads = proc.reads.length;
    c.lookup(1, 600n * SEC);
    expect(proc.reads.length - reads).toBe(0); // still cached, seen running after the capture
    c.lookup(2, 600n * SEC);
    expect(proc.reads.length - reads).toBeGreaterThan(2); // read again
  });

  it('unreadable parts are undefined, the rest is reported', () => {
    proc.add(400, { comm: 'kworker/0:1', ppid: 2, startTicks: 10 });
    expect(cache().lookup(400, 600n * SEC)).toEqual({
      pid: 400,
      startNs: SEC / 10n,
      name: 'kworker/0:1',
      executablePath: undefined,
      commandArgs: undefined,
      uid: undefined,
      parentPid: 2,
    });
  });

  it('refuses a maxEntries below 1', () => {
    expect(() => new ProcessCache({ proc, maxEntries: 0, maxAgeNs: SEC, nowBootNs: () => 0n })).toThrow(/maxEntries must be a whole number >= 1, got 0/);
  });
});

describe('pidNamespaceIsInitial', () => {
  it('only the initial pid namespace (its fixed inode) shares the kernel pids', () => {
    expect(pidNamespaceIsInitial('pid:[4026531836]')).toBe(true);
    expect(pidNamespaceIsInitial('pid:[4026532281]')).toBe(false);
    expect(pidNamespaceIsInitial(undefined)).toBe(false);
  });
});
