/**
 * Every numeric default and limit flowtap has, in one table: the option table
 * (options.ts) parses flags and variables against it, the probe
 * (kernel/probe.ts) checks its options against it and fills in its
 * defaults, and the addon and the kernel programs receive the values already
 * checked (they hold no default of their own). No imports: everything else
 * may import this.
 */

/** An inclusive range of whole numbers, with the unit shown in messages. */
export interface Limit {
  min: number;
  max: number;
  /** Shown in parentheses after the range: "bytes", "milliseconds", ... */
  unit?: string;
  /** Only powers of two. */
  powerOfTwo?: boolean;
}

/** A limit and the value used when none is given. */
export interface Setting extends Limit {
  default: number;
}

/** Largest delay setTimeout honours. */
export const MAX_MILLIS = 2_147_483_647;
const MAX_SECONDS = Math.floor(MAX_MILLIS / 1000);
const MS = 'milliseconds';

export const LIMITS = {
  /** The kernel ring buffer: libbpf rounds it up to a multiple of the page size. */
  ringBufferBytes: { default: 8 << 20, min: 4096, max: 2 ** 30, unit: 'bytes', powerOfTwo: true },
  /**
   * Bytes waiting in the ring buffer before the reader is woken. Each wake-up
   * is an irq_work self-interrupt; waking for every record made the slow path
   * about 3.6x dearer under connection churn (docs/benchmarks.md).
   */
  ringBufferWakeupBytes: { default: 65_536, min: 0, max: 2 ** 30, unit: 'bytes' },
  /** The reader's poll timeout: how long a record can wait when fewer than the wake-up bytes do. */
  ringBufferPollMillis: { default: 50, min: 1, max: 1000, unit: MS },
  /** Entries of the kernel's LRU flow table. */
  flowTableEntries: { default: 65_536, min: 1, max: 2 ** 24 },
  /** Bytes read from the ring buffer and not yet taken by JS; above it the reader pauses. */
  maxPendingBytes: { default: 64 << 20, min: 1, max: Number.MAX_SAFE_INTEGER, unit: 'bytes' },
  shutdownTimeoutMillis: { default: 5000, min: 1, max: MAX_MILLIS, unit: MS },
  readyExportFailureSeconds: { default: 60, min: 1, max: MAX_SECONDS, unit: 'seconds' },
  summaryIntervalSeconds: { default: 0, min: 0, max: MAX_SECONDS, unit: 'seconds; 0 turns it off' },
  /**
   * A 60 s collector outage at 2 000 flows/s is 120 000 records; this holds
   * that with room to spare (memory: docs/benchmarks.md, export queue).
   */
  queueMaxRecords: { default: 200_000, min: 1, max: 100_000_000 },
  /** The DNS cache's bounds; their defaults are the cache's own (enrich/dns/cache.ts). */
  dnsCacheNames: { min: 1, max: 10_000_000 },
  dnsNamesPerAddress: { min: 1, max: 1000 },
  /** At most an hour: a TTL-0 name is meant for the connection right after the answer. */
  dnsZeroTtlSeconds: { min: 0, max: 3600, unit: 'seconds; 0 turns it off' },
  // The SDK variables: defaults are the specification's unless said otherwise.
  // Sizes and the export timeout must be at least 1: a batch of 0 would spin,
  // a timeout of 0 would drop every record.
  scheduledDelayMillis: { default: 1000, min: 0, max: MAX_MILLIS, unit: MS },
  exportTimeoutMillis: { default: 30_000, min: 1, max: MAX_MILLIS, unit: MS },
  /**
   * Not the specification's 512: at high rates larger requests cost flowtap
   * and the collector less per record (docs/benchmarks.md, pipeline
   * ceiling); at low rates the schedule delay sends batches first anyway.
   */
  maxExportBatchSize: { default: 2048, min: 1, max: MAX_MILLIS },
  otlpTimeoutMillis: { default: 10_000, min: 1, max: MAX_MILLIS, unit: MS },
  metricExportIntervalMillis: { default: 60_000, min: 1, max: MAX_MILLIS, unit: MS },
  metricExportTimeoutMillis: { default: 30_000, min: 1, max: MAX_MILLIS, unit: MS },
} as const satisfies Record<string, Setting | Limit>;

/** TCP ports a filter may name (the responder's port is never 0). */
export const PORT_LIMIT: Limit = { min: 1, max: 65_535 };

/** "an integer from 1 to 1000 (milliseconds)": what a value outside `limit` is told. */
export function describeLimit(limit: Limit): string {
  const what = limit.powerOfTwo === true ? 'a power of two' : 'an integer';
  return `${what} from ${limit.min} to ${limit.max}${limit.unit === undefined ? '' : ` (${limit.unit})`}`;
}

/** Whether `n` is a whole number within `limit`: the one range check, for flags, variables and the probe's options. */
export function withinLimit(limit: Limit, n: unknown): n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < limit.min || n > limit.max) return false;
  return limit.powerOfTwo !== true || (n > 0 && 2 ** Math.round(Math.log2(n)) === n);
}
