/**
 * Kernel boot-time nanoseconds (bpf_ktime_get_boot_ns) → wall-clock
 * nanoseconds since the Unix epoch, and the time formats the exporters need.
 */
import type { HrTime } from '@opentelemetry/api';

/** A pair of readings of CLOCK_REALTIME and CLOCK_BOOTTIME taken together. */
export interface ClockAnchor {
  realtimeNs: bigint;
  boottimeNs: bigint;
}

export interface BootClockOptions {
  /** Takes a fresh anchor (the addon's clockAnchor()). */
  anchor: () => ClockAnchor;
  /** Current time in milliseconds, to decide when to re-anchor (Date.now). */
  nowMs: () => number;
  /** How often the anchor is renewed, so NTP steps reach the records. Default 60000. */
  reanchorIntervalMillis?: number;
}

export const REANCHOR_INTERVAL_MILLIS_DEFAULT = 60_000;

/** Wall-clock ns of boot-time ns `bootNs`, given one anchor. */
export function bootToWallNs(bootNs: bigint, anchor: ClockAnchor): bigint {
  return anchor.realtimeNs + (bootNs - anchor.boottimeNs);
}

/**
 * Converts boot-time ns to wall-clock ns. The anchor is taken at construction
 * and renewed on the first conversion after each interval.
 */
export class BootClock {
  private readonly _anchorFn: () => ClockAnchor;
  private readonly _nowMs: () => number;
  private readonly _intervalMs: number;
  private _anchor: ClockAnchor;
  private _anchoredAtMs: number;

  constructor(options: BootClockOptions) {
    this._anchorFn = options.anchor;
    this._nowMs = options.nowMs;
    this._intervalMs = options.reanchorIntervalMillis ?? REANCHOR_INTERVAL_MILLIS_DEFAULT;
    this._anchor = this._anchorFn();
    this._anchoredAtMs = this._nowMs();
  }

  toWallNs(bootNs: bigint): bigint {
    const now = this._nowMs();
    if (now - this._anchoredAtMs >= this._intervalMs || now < this._anchoredAtMs) {
      this._anchor = this._anchorFn();
      this._anchoredAtMs = now;
    }
    return bootToWallNs(bootNs, this._anchor);
  }
}

const NS_PER_S = 1_000_000_000n;

/** [seconds, nanoseconds] of epoch ns, exactly (a double would lose the last digits). */
export function nsToHrTime(ns: bigint): HrTime {
  return [Number(ns / NS_PER_S), Number(ns % NS_PER_S)];
}

/** Epoch ns of an HrTime. */
export function hrTimeToNs(t: HrTime): bigint {
  return BigInt(t[0]) * NS_PER_S + BigInt(t[1]);
}

/** ISO-8601 UTC with 9 fractional digits, e.g. 2024-05-01T12:00:00.123456789Z. */
export function hrTimeToIso(t: HrTime): string {
  const iso = new Date(t[0] * 1000).toISOString(); // ...T12:00:00.000Z
  return `${iso.slice(0, -4)}${String(t[1]).padStart(9, '0')}Z`;
}

/** ISO-8601 UTC with 9 fractional digits of epoch ns. */
export function nsToIso(ns: bigint): string {
  return hrTimeToIso(nsToHrTime(ns));
}
