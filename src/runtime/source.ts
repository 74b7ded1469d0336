/**
 * Where flow events come from: the kernel programs through the native addon,
 * or (--replay) a synthetic source in JS that needs no addon. Also the clock
 * anchor that goes with each.
 */
import * as path from 'node:path';
import type { Config } from '../config/config';
import type { ClockAnchor } from '../kernel/clock';
import { probeFilters } from '../kernel/filter';
import { loadBinding, type NativeBinding, type NativeProbe } from '../kernel/probe';
import { ReattachingProbe, type ReattachingProbeOptions } from '../kernel/reattaching-probe';
import { jsClockAnchor, ReplayProbe } from '../kernel/replay';

/** How often the watched cgroup's directory is checked: a removal shows within this. */
export const CGROUP_CHECK_INTERVAL_MILLIS = 1000;

/** What following the watched cgroup needs: its directory's inode, and who is told. */
export type CgroupFollow = Pick<ReattachingProbeOptions, 'inode' | 'onRemoved' | 'onAttached' | 'onAttachFailed'>;

/** The package root: build/flowtap.node is below it. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

export interface EventSourceKind {
  /** The addon; undefined with --replay. */
  binding: NativeBinding | undefined;
  /** A REALTIME reading and the BOOTTIME of the same instant. */
  clockAnchor: () => ClockAnchor;
}

/** The addon (not with --replay) and its clock. Throws when the addon cannot be loaded. */
export function loadEventSource(config: Pick<Config, 'replay'>): EventSourceKind {
  if (config.replay !== undefined) return { binding: undefined, clockAnchor: jsClockAnchor };
  const binding = loadBinding(PACKAGE_ROOT);
  return { binding, clockAnchor: () => binding.clockAnchor() };
}

/**
 * Opens and attaches the source: batches reach onBatch, a failure after
 * attach reaches onError. The kernel probe follows the watched cgroup: it is
 * attached again when the cgroup at that path is removed and created again.
 * Throws a NativeError (see describeProbeError).
 */
export function openEventSource(
  config: Config,
  kind: EventSourceKind,
  onBatch: (batch: Buffer, records: number) => void,
  onError: (error: Error) => void,
  follow: CgroupFollow,
): NativeProbe | ReattachingProbe {
  if (config.replay !== undefined) return new ReplayProbe({ spec: config.replay, ringBufferBytes: config.ringBufferBytes, onBatch });
  if (kind.binding === undefined) throw new Error('no event source: the addon was not loaded');
  const Probe = kind.binding.Probe;
  const filters = probeFilters(config);
  const open = (): NativeProbe =>
    new Probe({
      cgroupPath: config.cgroup,
      ringBufferBytes: config.ringBufferBytes,
      wakeupBytes: config.ringBufferWakeupBytes,
      pollIntervalMillis: config.ringBufferPollMillis,
      flowTableEntries: config.flowTableEntries,
      filters,
      onBatch,
      onError,
    });
  return new ReattachingProbe({ path: config.cgroup, open, checkIntervalMillis: CGROUP_CHECK_INTERVAL_MILLIS, nowMs: Date.now, ...follow });
}
