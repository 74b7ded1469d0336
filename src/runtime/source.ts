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
import { jsClockAnchor, ReplayProbe } from '../kernel/replay';

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
 * attach reaches onError. Throws a NativeError (see describeProbeError).
 */
export function openEventSource(
  config: Config,
  kind: EventSourceKind,
  onBatch: (batch: Buffer, records: number) => void,
  onError: (error: Error) => void,
): NativeProbe {
  if (config.replay !== undefined) return new ReplayProbe({ spec: config.replay, ringBufferBytes: config.ringBufferBytes, onBatch });
  if (kind.binding === undefined) throw new Error('no event source: the addon was not loaded');
  return new kind.binding.Probe({
    cgroupPath: config.cgroup,
    ringBufferBytes: config.ringBufferBytes,
    wakeupBytes: config.ringBufferWakeupBytes,
    pollIntervalMillis: config.ringBufferPollMillis,
    flowTableEntries: config.flowTableEntries,
    filters: probeFilters(config),
    onBatch,
    onError,
  });
}
