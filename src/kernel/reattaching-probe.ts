/**
 * A probe that follows its cgroup directory: when the watched cgroup is
 * removed (a systemd unit restarting removes and creates its cgroup again)
 * the programs attached to it see nothing more, so this notices within one
 * check interval, closes the probe (its last batches still reach onBatch),
 * and opens a new one on the directory once a cgroup stands at the same path
 * again. Counters carry on across probes: what a closed probe counted is
 * added to what the current one counts.
 *
 * The directory's identity is its inode number (a cgroup v2 id): a cgroup
 * removed and created again between two checks is a new one, and is followed.
 */
import type { NativeProbe } from './probe';

export interface ReattachingProbeOptions {
  /** The watched directory (for messages and `inode`). */
  path: string;
  /** Opens a probe on `path`; throws like the addon's Probe constructor. */
  open(): NativeProbe;
  /** The directory's inode number, or undefined when there is none at `path`. */
  inode(path: string): bigint | undefined;
  /** Time between two checks. */
  checkIntervalMillis: number;
  nowMs(): number;
  /** The cgroup is gone: the probe was closed. */
  onRemoved?(path: string): void;
  /** A cgroup stands at `path` again and the new probe is attached. */
  onAttached?(path: string): void;
  /** A cgroup stands at `path` again but attaching failed (retried at the next check). */
  onAttachFailed?(path: string, error: unknown): void;
  /** Injected for tests. */
  timers?: { setInterval(fn: () => void, ms: number): unknown; clearInterval(handle: unknown): void };
}

const NODE_TIMERS: NonNullable<ReattachingProbeOptions['timers']> = {
  setInterval: (fn, ms) => setInterval(fn, ms).unref(),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

export class ReattachingProbe implements NativeProbe {
  /** Since when the watched cgroup has been gone (wall-clock ms); undefined while attached. */
  removedSinceMs: number | undefined;
  /** Times a probe was attached again after its cgroup came back. */
  reattachments = 0;

  private readonly _options: ReattachingProbeOptions;
  private readonly _timers: NonNullable<ReattachingProbeOptions['timers']>;
  private _inner: NativeProbe | undefined;
  private _inode: bigint | undefined;
  /** Counters of the probes already closed. */
  private readonly _carried: Record<string, number> = {};
  private _lastProgramStats: Record<string, unknown> = {};
  private readonly _leftOut: { missing: string; leavesOut: string }[];
  private readonly _timer: unknown;
  private _closing: Promise<void> | undefined;
  private _checking: Promise<void> | undefined;

  /** Opens the first probe (throws as `open` does) and starts checking. */
  constructor(options: ReattachingProbeOptions) {
    this._options = options;
    this._timers = options.timers ?? NODE_TIMERS;
    this._inode = options.inode(options.path);
    this._inner = options.open();
    this._leftOut = this._inner.leftOut?.() ?? [];
    this._timer = this._timers.setInterval(() => void this.check(), options.checkIntervalMillis);
  }

  /** One check (the timer runs it; tests call it). Resolves once a probe it closed has drained. */
  check(): Promise<void> {
    if (this._closing !== undefined) return Promise.resolve();
    this._checking ??= this._check().finally(() => (this._checking = undefined));
    return this._checking;
  }

  private async _check(): Promise<void> {
    const o = this._options;
    const inode = o.inode(o.path);
    if (this._inner !== undefined) {
      if (inode !== undefined && inode === this._inode) return;
      const closed = this._inner;
      this._inner = undefined;
      this._inode = undefined;
      this.removedSinceMs = o.nowMs();
      this._lastProgramStats = safe(() => closed.programStats(), {});
      await closeKeepingCounts(closed, this._carried);
      o.onRemoved?.(o.path);
      if (inode === undefined) return;
    }
    if (inode === undefined || this._closing !== undefined) return;
    try {
      this._inner = o.open();
    } catch (e) {
      o.onAttachFailed?.(o.path, e);
      return;
    }
    this._inode = inode;
    this.removedSinceMs = undefined;
    this.reattachments++;
    o.onAttached?.(o.path);
  }

  counters(): Record<string, number> {
    const out: Record<string, number> = { ...this._carried };
    if (this._inner !== undefined) addInto(out, this._inner.counters());
    return out;
  }

  programStats(): Record<string, unknown> {
    return this._inner?.programStats() ?? this._lastProgramStats;
  }

  flowTableSize(): number {
    return this._inner?.flowTableSize() ?? 0;
  }

  /** What this kernel cannot give (the first probe's answer: the same kernel and privileges for every probe). */
  leftOut(): { missing: string; leavesOut: string }[] {
    return this._leftOut;
  }

  /** Stops checking and closes the current probe. Idempotent. */
  close(): Promise<void> {
    this._closing ??= (async () => {
      this._timers.clearInterval(this._timer);
      await this._checking;
      const inner = this._inner;
      if (inner === undefined) return;
      this._lastProgramStats = safe(() => inner.programStats(), this._lastProgramStats);
      this._inner = undefined;
      // What it counted stays readable: the stopped line comes after close.
      await closeKeepingCounts(inner, this._carried);
    })();
    return this._closing;
  }
}

/**
 * Closes `probe` and adds its counters into `into`: as read after the close
 * (the drain may count more), or as read just before it where a closed
 * probe's counters cannot be read.
 */
async function closeKeepingCounts(probe: NativeProbe, into: Record<string, number>): Promise<void> {
  const before = safe(() => probe.counters(), {});
  await probe.close().catch(() => undefined);
  addInto(
    into,
    safe(() => probe.counters(), before),
  );
}

function addInto(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

function safe<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}
