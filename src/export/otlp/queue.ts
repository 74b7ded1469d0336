/**
 * The export queue in front of the OTLP transport: records are encoded into
 * an open batch, sealed into a request when it is full or the schedule delay
 * has passed, and sent; a batch whose send fails with a retryable error goes
 * back into the queue in its place (oldest first) and is sent again after a
 * backoff, for as long as it takes. Only the queue's bound loses records,
 * oldest batch first, and every such record is counted (ExportObserver.dropped).
 *
 * What the BatchLogRecordProcessor does differently, and why this replaces it
 * on the OTLP path: it drops new records at a full queue, and it forgets a
 * batch once its one export failed; this keeps failed batches for later, so a
 * collector outage shorter than the queue's capacity loses nothing.
 *
 * Accounting, at any time: records added = exported + failed + dropped + held.
 */
import type { ExportObserver } from '../observed';
import { ProtoWriter } from './proto';

/** What one send came to. */
export type SendResult =
  | { ok: true; /** records the receiver accepted the request but rejected (partial success) */ rejected?: number; error?: Error }
  | { ok: false; /** whether sending the same request again may succeed */ retryable: boolean; error: Error };

/** Sends one encoded request. Never rejects. */
export interface BatchSender {
  send(request: Uint8Array, records: number): Promise<SendResult>;
  shutdown(): Promise<void>;
}

export interface RetryOptions {
  /** First backoff after a failure. Default 1000. */
  initialBackoffMillis: number;
  /** Longest backoff. Default 5000. */
  maxBackoffMillis: number;
  /** Growth per consecutive failure. Default 1.5. */
  multiplier: number;
  /** Random spread, ± this fraction of the backoff. Default 0.2. */
  jitter: number;
}

/** The SDK's RetryingTransport constants (@opentelemetry/otlp-exporter-base), without its attempt limit. */
export const RETRY_DEFAULTS: RetryOptions = { initialBackoffMillis: 1000, maxBackoffMillis: 5000, multiplier: 1.5, jitter: 0.2 };

/** A request stays well under the collector's default 4 MiB gRPC receive limit. */
export const MAX_BATCH_BYTES_DEFAULT = 3 * 1024 * 1024;

export interface ExportQueueOptions {
  sender: BatchSender;
  /** Turns a writer's records into one request, in place (LogsRequestFrame). */
  frame: RequestFrame;
  /** Records held at most: open batch + queued + in flight. */
  maxQueueRecords: number;
  /** Records per request at most. */
  maxBatchRecords: number;
  /** A batch is sent at the latest this long after its first record. */
  scheduledDelayMillis: number;
  /** Encoded bytes per request at most. Default MAX_BATCH_BYTES_DEFAULT. */
  maxBatchBytes?: number;
  /**
   * Requests in flight at once while the receiver answers. Default 4: more
   * than one overlaps encoding with the collector's work and keeps up when
   * the collector answers slowly (a busy node: several ms per request).
   */
  maxConcurrentExports?: number;
  retry?: Partial<RetryOptions>;
  observer?: ExportObserver;
  /** Wall-clock ms, for when a request was sent (oldestUnansweredSinceMs). Default Date.now. */
  nowMs?: () => number;
  /** Injected for tests. */
  timers?: {
    setTimeout(fn: () => void, ms: number): unknown;
    clearTimeout(handle: unknown): void;
    random(): number;
  };
}

/**
 * How records written to a writer become a request: the frame of the open
 * batch (LogsRequestFrame), one batch at a time: open(w), records (and what
 * the frame writes between them), frame(w).
 */
export interface RequestFrame {
  /** Begins a batch in an empty writer. */
  open(w: ProtoWriter): void;
  /** Encoded bytes of the records written since open(), not the frame's own. */
  recordBytes(w: ProtoWriter): number;
  /** The request around the records written since open(): a view of the writer's buffer. */
  frame(w: ProtoWriter): Uint8Array;
}

interface Batch {
  /** Seal order: the queue stays sorted by it, so the oldest records go (and are dropped) first. */
  seq: number;
  request: Uint8Array;
  records: number;
  /** The writer `request` is a view of, while it is; undefined once compacted into a buffer of its own. */
  writer: ProtoWriter | undefined;
  /** When its current send started (wall-clock ms), while it is in flight. */
  sentAtMs?: number;
}

/** The first writer starts this big; it keeps what it grew to when it goes back to the pool. */
const WRITER_INITIAL_BYTES = 256 * 1024;

/** The pool lets go, every this many batches, of the writers it never ran out of meanwhile. */
const POOL_TRIM_BATCHES = 16;

const NODE_TIMERS: NonNullable<ExportQueueOptions['timers']> = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  random: Math.random,
};

const NO_OBSERVER: ExportObserver = { exported() {}, failed() {}, dropped() {} };

/**
 * Memory: a batch is encoded into a writer's buffer and sent from there, its
 * request head written in place, so steady-state export allocates nothing per
 * batch; writers are reused. A batch that has to wait (behind others, or for
 * a retry) is compacted into a buffer of exactly its size and its writer
 * reused, so a long outage holds ~the encoded bytes of the records it holds.
 */
export class ExportQueue {
  private readonly _sender: BatchSender;
  private readonly _frame: RequestFrame;
  private readonly _maxRecords: number;
  private readonly _maxBatchRecords: number;
  private readonly _maxBatchBytes: number;
  private readonly _delayMs: number;
  private readonly _maxInflight: number;
  private readonly _retry: RetryOptions;
  private readonly _observer: ExportObserver;
  private readonly _timers: NonNullable<ExportQueueOptions['timers']>;
  private readonly _nowMs: () => number;
  /** The batches whose send has not been answered yet (at most maxConcurrentExports). */
  private readonly _inflightBatches = new Set<Batch>();

  private _open: ProtoWriter;
  private readonly _pool: ProtoWriter[] = [];
  /** Batches opened since the pool was last trimmed, and the fewest writers it held after one. */
  private _poolTakes = 0;
  private _poolLow = Infinity;
  /** The largest a writer has grown to: later writers start that big (no regrowing after a trim). */
  private _writerBytes = WRITER_INITIAL_BYTES;
  private _openRecords = 0;
  private _openTimer: unknown;
  private readonly _queued: Batch[] = [];
  private _queuedRecords = 0;
  private _queuedBytes = 0;
  private _inflight = 0;
  private _inflightRecords = 0;
  private _inflightBytes = 0;
  /** Consecutive backoffs since the last success; > 0 means the receiver is failing. */
  private _failures = 0;
  private _backoffTimer: unknown;
  private _idleWaiters: (() => void)[] = [];
  private _closed = false;
  private _shutdown: Promise<void> | undefined;
  private _nextSeq = 0;

  constructor(options: ExportQueueOptions) {
    if (options.maxBatchRecords > options.maxQueueRecords) throw new RangeError('maxBatchRecords must be at most maxQueueRecords');
    this._sender = options.sender;
    this._frame = options.frame;
    this._maxRecords = options.maxQueueRecords;
    this._maxBatchRecords = options.maxBatchRecords;
    this._maxBatchBytes = options.maxBatchBytes ?? MAX_BATCH_BYTES_DEFAULT;
    this._delayMs = options.scheduledDelayMillis;
    this._maxInflight = options.maxConcurrentExports ?? 4;
    this._retry = { ...RETRY_DEFAULTS, ...options.retry };
    this._observer = options.observer ?? NO_OBSERVER;
    this._timers = options.timers ?? NODE_TIMERS;
    this._nowMs = options.nowMs ?? Date.now;
    this._open = this._newWriter();
    this._frame.open(this._open);
  }

  /** The open batch. Write one record between reserve() and commit(). */
  get writer(): ProtoWriter {
    return this._open;
  }

  /** Records held: in the open batch, queued, and in flight. */
  get heldRecords(): number {
    return this._openRecords + this._queuedRecords + this._inflightRecords;
  }

  /**
   * Encoded bytes of the records held: the open batch's records, and the
   * requests queued and in flight. Not the memory they take (writers are
   * pooled and grow; see bench/queue-memory.mts).
   */
  get heldBytes(): number {
    const open = this._openRecords > 0 ? this._frame.recordBytes(this._open) : 0;
    return open + this._queuedBytes + this._inflightBytes;
  }

  /** The bound on heldRecords (maxQueueRecords). */
  get maxRecords(): number {
    return this._maxRecords;
  }

  /** Whether the last send failed and the queue is backing off. */
  get retrying(): boolean {
    return this._failures > 0;
  }

  /**
   * Makes room for one record: at the bound, the oldest queued batch is
   * dropped (counted). Returns false when the record itself must be dropped
   * (counted too): the queue is closed, or everything held is in flight or
   * in the open batch.
   */
  reserve(): boolean {
    if (this._closed) {
      this._observer.dropped(1);
      return false;
    }
    if (this.heldRecords < this._maxRecords) return true;
    const oldest = this._queued.shift();
    if (oldest === undefined) {
      this._observer.dropped(1);
      return false;
    }
    this._queuedRecords -= oldest.records;
    this._queuedBytes -= oldest.request.length;
    this._release(oldest);
    this._observer.dropped(oldest.records);
    return true;
  }

  /** One record was written to `writer` after reserve() returned true. */
  commit(): void {
    this._openRecords++;
    if (this._openRecords >= this._maxBatchRecords || this._open.pos >= this._maxBatchBytes) {
      this._sealAndSend();
    } else if (this._openRecords === 1) {
      this._openTimer = this._timers.setTimeout(() => {
        this._openTimer = undefined;
        this._sealAndSend();
      }, this._delayMs);
    }
  }

  private _sealAndSend(): void {
    const batch = this._seal();
    this._pump();
    // Not taken: it waits, so it gives its writer back.
    if (batch !== undefined && this._queued[this._queued.length - 1] === batch) this._compact(batch);
  }

  /** Sends what is held now; resolves once nothing is held (all delivered, failed or dropped). */
  forceFlush(): Promise<void> {
    this._sealAndSend();
    if (this.heldRecords === 0) return Promise.resolve();
    return new Promise((resolve) => this._idleWaiters.push(resolve));
  }

  /**
   * Stops: nothing more is accepted or retried; what is not yet in flight is
   * dropped (counted); waits for the sends in flight, then shuts the sender.
   * Call forceFlush() first to deliver what is held. Idempotent.
   */
  shutdown(): Promise<void> {
    this._shutdown ??= this._stop();
    return this._shutdown;
  }

  private async _stop(): Promise<void> {
    this._closed = true;
    this._seal();
    this._cancelTimer('_backoffTimer');
    if (this._queuedRecords > 0) this._observer.dropped(this._queuedRecords);
    for (const batch of this._queued) this._release(batch);
    this._queued.length = 0;
    this._queuedRecords = 0;
    this._queuedBytes = 0;
    this._checkIdle();
    if (this._inflight > 0) await new Promise<void>((resolve) => this._idleWaiters.push(resolve));
    await this._sender.shutdown();
  }

  private _cancelTimer(which: '_openTimer' | '_backoffTimer'): void {
    if (this[which] !== undefined) {
      this._timers.clearTimeout(this[which]);
      this[which] = undefined;
    }
  }

  /** The open batch becomes a queued request; a fresh writer opens. */
  private _seal(): Batch | undefined {
    this._cancelTimer('_openTimer');
    if (this._openRecords === 0) return undefined;
    const writer = this._open;
    const batch: Batch = { seq: this._nextSeq++, request: this._frame.frame(writer), records: this._openRecords, writer };
    this._open = this._takeWriter();
    this._frame.open(this._open);
    this._openRecords = 0;
    this._queued.push(batch);
    this._queuedRecords += batch.records;
    this._queuedBytes += batch.request.length;
    return batch;
  }

  /**
   * A writer for the next batch, from the pool if it has one. A burst (the
   * first seconds, a slow collector) leaves writers in the pool that steady
   * traffic never takes again, each holding a batch's worth of RSS (~1.2 MB
   * at 2048 records): every POOL_TRIM_BATCHES batches, the pool lets go of
   * as many as it never ran out of in that time.
   */
  private _takeWriter(): ProtoWriter {
    const writer = this._pool.pop() ?? this._newWriter();
    this._poolLow = Math.min(this._poolLow, this._pool.length);
    if (++this._poolTakes === POOL_TRIM_BATCHES) {
      this._pool.length -= this._poolLow;
      this._poolTakes = 0;
      this._poolLow = Infinity;
    }
    return writer;
  }

  private _newWriter(): ProtoWriter {
    return new ProtoWriter(this._writerBytes);
  }

  /** The batch's request moves to a buffer of its own size; its writer goes back to the pool. */
  private _compact(batch: Batch): void {
    if (batch.writer === undefined) return;
    const own = Buffer.allocUnsafeSlow(batch.request.length);
    own.set(batch.request);
    batch.request = own;
    this._release(batch);
  }

  /** The batch is done with its writer: back to the pool (a few are kept: one per send in flight, the open one, a spare). */
  private _release(batch: Batch): void {
    const writer = batch.writer;
    if (writer === undefined) return;
    batch.writer = undefined;
    if (writer.buf.length > this._writerBytes) this._writerBytes = writer.buf.length;
    if (this._pool.length < this._maxInflight + 1) {
      writer.reset();
      this._pool.push(writer);
    }
  }

  /**
   * When the oldest send still waiting for its answer started (wall-clock
   * ms); undefined when none is. A receiver that accepts a request and never
   * answers shows here from the first second, not only at the deadline.
   */
  oldestUnansweredSinceMs(): number | undefined {
    let oldest: number | undefined;
    for (const b of this._inflightBatches) {
      if (b.sentAtMs !== undefined && (oldest === undefined || b.sentAtMs < oldest)) oldest = b.sentAtMs;
    }
    return oldest;
  }

  /** Starts sends while there is room; while the receiver fails, only one at a time. */
  private _pump(): void {
    while (this._queued.length > 0 && this._backoffTimer === undefined && !this._closed) {
      const limit = this._failures > 0 ? 1 : this._maxInflight;
      if (this._inflight >= limit) return;
      const batch = this._queued.shift()!;
      this._queuedRecords -= batch.records;
      this._queuedBytes -= batch.request.length;
      this._inflight++;
      this._inflightRecords += batch.records;
      this._inflightBytes += batch.request.length;
      batch.sentAtMs = this._nowMs();
      this._inflightBatches.add(batch);
      void this._sender.send(batch.request, batch.records).then(
        (result) => this._settle(batch, result),
        (e: unknown) => this._settle(batch, { ok: false, retryable: true, error: e instanceof Error ? e : new Error(String(e)) }),
      );
    }
  }

  private _settle(batch: Batch, result: SendResult): void {
    this._inflightBatches.delete(batch);
    batch.sentAtMs = undefined;
    this._inflight--;
    this._inflightRecords -= batch.records;
    this._inflightBytes -= batch.request.length;
    if (result.ok) {
      this._release(batch);
      this._failures = 0;
      const rejected = Math.min(result.rejected ?? 0, batch.records);
      if (batch.records > rejected) this._observer.exported(batch.records - rejected);
      if (rejected > 0) this._observer.failed(rejected, result.error);
    } else if (result.retryable && !this._closed) {
      this._compact(batch);
      // Back in seal order (sends in flight may fail in any order).
      let at = 0;
      while (at < this._queued.length && this._queued[at].seq < batch.seq) at++;
      this._queued.splice(at, 0, batch);
      this._queuedRecords += batch.records;
      this._queuedBytes += batch.request.length;
      this._observer.retrying?.(batch.records, result.error);
      if (this._backoffTimer === undefined) {
        const r = this._retry;
        const base = Math.min(r.maxBackoffMillis, r.initialBackoffMillis * r.multiplier ** this._failures);
        const delay = Math.max(0, base * (1 + (this._timers.random() * 2 - 1) * r.jitter));
        this._failures++;
        this._backoffTimer = this._timers.setTimeout(() => {
          this._backoffTimer = undefined;
          this._pump();
        }, delay);
      }
    } else {
      this._release(batch);
      this._observer.failed(batch.records, result.error);
    }
    this._pump();
    this._checkIdle();
  }

  private _checkIdle(): void {
    const idle = this._closed ? this._inflight === 0 : this.heldRecords === 0;
    if (!idle || this._idleWaiters.length === 0) return;
    const waiters = this._idleWaiters;
    this._idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
