import type { NativeProbe } from '../../../src/kernel/probe';
import { ReattachingProbe } from '../../../src/kernel/reattaching-probe';

/** A probe whose counters the test sets; unreadable once closed, as the addon's are. */
class FakeProbe implements NativeProbe {
  closed = false;
  constructor(public counts: Record<string, number>) {}
  counters(): Record<string, number> {
    if (this.closed) throw new Error('probe is closed');
    return { ...this.counts };
  }
  programStats(): Record<string, unknown> {
    return { ingress: { runs: this.counts.flow_begin ?? 0 } };
  }
  flowTableSize(): number {
    return 7;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

function setup() {
  let inode: bigint | undefined = 100n;
  let now = 0;
  let failOpen = false;
  const opened: FakeProbe[] = [];
  const events: string[] = [];
  let interval: { fn: () => void; ms: number } | undefined;
  const probe = new ReattachingProbe({
    path: '/cg/unit',
    open: () => {
      if (failOpen) throw new Error('attach: EBADF');
      const p = new FakeProbe({ flow_begin: 0 });
      opened.push(p);
      return p;
    },
    inode: () => inode,
    checkIntervalMillis: 1000,
    nowMs: () => now,
    onRemoved: (p) => events.push(`removed ${p}`),
    onAttached: (p) => events.push(`attached ${p}`),
    onAttachFailed: (p, e) => events.push(`failed ${p}: ${(e as Error).message}`),
    timers: {
      setInterval: (fn, ms) => (interval = { fn, ms }),
      clearInterval: () => (interval = undefined),
    },
  });
  return {
    probe,
    opened,
    events,
    interval: () => interval,
    set: (v: { inode?: bigint | undefined; now?: number; failOpen?: boolean }) => {
      if ('inode' in v) inode = v.inode;
      if (v.now !== undefined) now = v.now;
      if (v.failOpen !== undefined) failOpen = v.failOpen;
    },
  };
}

describe('ReattachingProbe', () => {
  it('opens one probe and checks every interval; nothing changes while the cgroup stays', async () => {
    const t = setup();
    expect(t.opened).toHaveLength(1);
    expect(t.interval()?.ms).toBe(1000);
    await t.probe.check();
    expect(t.opened).toHaveLength(1);
    expect(t.probe.removedSinceMs).toBeUndefined();
    expect(t.probe.flowTableSize()).toBe(7);
  });

  it('closes the probe when the cgroup is removed, and attaches a new one when it comes back; counters carry on', async () => {
    const t = setup();
    t.opened[0].counts.flow_begin = 5;
    t.set({ inode: undefined, now: 3000 });
    await t.probe.check();
    expect(t.opened[0].closed).toBe(true);
    expect(t.probe.removedSinceMs).toBe(3000);
    expect(t.probe.counters()).toEqual({ flow_begin: 5 });
    expect(t.probe.flowTableSize()).toBe(0);
    expect(t.probe.programStats()).toEqual({ ingress: { runs: 5 } });
    await t.probe.check(); // still gone: nothing opened
    expect(t.opened).toHaveLength(1);

    t.set({ inode: 200n, now: 4000 });
    await t.probe.check();
    expect(t.opened).toHaveLength(2);
    expect(t.probe.removedSinceMs).toBeUndefined();
    expect(t.probe.reattachments).toBe(1);
    t.opened[1].counts.flow_begin = 2;
    expect(t.probe.counters()).toEqual({ flow_begin: 7 });
    expect(t.events).toEqual(['removed /cg/unit', 'attached /cg/unit']);
  });

  it('follows a cgroup removed and created again between two checks (a new inode at the same path)', async () => {
    const t = setup();
    t.set({ inode: 101n });
    await t.probe.check();
    expect(t.opened).toHaveLength(2);
    expect(t.opened[0].closed).toBe(true);
    expect(t.events).toEqual(['removed /cg/unit', 'attached /cg/unit']);
  });

  it('retries at the next check when attaching to the new cgroup fails', async () => {
    const t = setup();
    t.set({ inode: undefined });
    await t.probe.check();
    t.set({ inode: 300n, failOpen: true, now: 9000 });
    await t.probe.check();
    expect(t.probe.removedSinceMs).toBe(0);
    expect(t.events).toEqual(['removed /cg/unit', 'failed /cg/unit: attach: EBADF']);
    t.set({ failOpen: false });
    await t.probe.check();
    expect(t.probe.removedSinceMs).toBeUndefined();
    expect(t.opened).toHaveLength(2);
  });

  it('close() stops checking, closes the current probe once, and keeps every count readable', async () => {
    const t = setup();
    t.opened[0].counts.flow_begin = 3;
    await Promise.all([t.probe.close(), t.probe.close()]);
    expect(t.interval()).toBeUndefined();
    expect(t.opened[0].closed).toBe(true);
    expect(t.probe.counters()).toEqual({ flow_begin: 3 });
    t.set({ inode: undefined });
    await t.probe.check(); // after close: nothing happens
    expect(t.events).toEqual([]);
  });
});
