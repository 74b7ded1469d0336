import type { ExportObserver } from '../../../../src/export/observed';
import type { ProtoWriter } from '../../../../src/export/otlp/proto';
import { ExportQueue, type BatchSender, type ExportQueueOptions, type RequestFrame, type SendResult } from '../../../../src/export/otlp/queue';

/** Timers driven by the test: advance(ms) fires what is due, in order. */
class FakeTimers {
  now = 0;
  private next = 1;
  private pending = new Map<number, { at: number; fn: () => void }>();
  readonly api = {
    setTimeout: (fn: () => void, ms: number): unknown => {
      const id = this.next++;
      this.pending.set(id, { at: this.now + ms, fn });
      return id;
    },
    clearTimeout: (h: unknown): void => void this.pending.delete(h as number),
    random: (): number => 0.5, // no jitter
  };
  /** Delays of the timers now pending, soonest first. */
  delays(): number[] {
    return [...this.pending.values()].map((t) => t.at - this.now).sort((a, b) => a - b);
  }
  advance(ms: number): void {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.pending.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = until;
  }
}

/** A sender whose sends the test answers one by one. */
class ManualSender implements BatchSender {
  sent: { bytes: string; records: number; answer: (r: SendResult) => void }[] = [];
  shutdowns = 0;
  send(request: Uint8Array, records: number): Promise<SendResult> {
    return new Promise((resolve) => this.sent.push({ bytes: Buffer.from(request).toString(), records, answer: resolve }));
  }
  shutdown(): Promise<void> {
    this.shutdowns++;
    return Promise.resolve();
  }
  /** Sends not yet answered. */
  open(): { bytes: string; records: number; answer: (r: SendResult) => void }[] {
    return this.sent.filter((s) => !(s as { done?: boolean }).done);
  }
  answer(i: number, r: SendResult): void {
    (this.sent[i] as { done?: boolean }).done = true;
    this.sent[i].answer(r);
  }
}

class Counts implements ExportObserver {
  exportedRecords = 0;
  failedRecords = 0;
  droppedRecords = 0;
  retriedRecords = 0;
  exported(n: number): void {
    this.exportedRecords += n;
  }
  failed(n: number): void {
    this.failedRecords += n;
  }
  dropped(n: number): void {
    this.droppedRecords += n;
  }
  retrying(n: number): void {
    this.retriedRecords += n;
  }
}

/** Requests are the records' bytes between '[' and ']', written in place after a 1-byte head room. */
const FRAME: RequestFrame = {
  open(w: ProtoWriter): void {
    w.pos = 1;
  },
  recordBytes: (w: ProtoWriter) => w.pos - 1,
  frame(w: ProtoWriter): Uint8Array {
    w.buf[0] = 0x5b; // '['
    w.byte(0x5d); // ']'
    return w.buf.subarray(0, w.pos);
  },
};

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
const OK: SendResult = { ok: true };
const UNAVAILABLE: SendResult = { ok: false, retryable: true, error: Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }) };

function setup(over: Partial<ExportQueueOptions> = {}) {
  const timers = new FakeTimers();
  const sender = new ManualSender();
  const counts = new Counts();
  const queue = new ExportQueue({
    sender,
    frame: FRAME,
    maxQueueRecords: 100,
    maxBatchRecords: 3,
    scheduledDelayMillis: 1000,
    maxConcurrentExports: 2,
    observer: counts,
    timers: timers.api,
    ...over,
  });
  /** Adds records named by the characters of `names`; false for each the queue dropped. */
  const add = (names: string): boolean[] =>
    [...names].map((c) => {
      if (!queue.reserve()) return false;
      queue.writer.string(c); // 0x01 <c>
      queue.commit();
      return true;
    });
  const body = (names: string): string => `[${[...names].map((c) => `\x01${c}`).join('')}]`;
  return { timers, sender, counts, queue, add, body };
}

describe('ExportQueue', () => {
  it('reports when the oldest unanswered send started, until it is answered', async () => {
    let now = 1_000;
    const { timers, sender, queue, add } = setup({ nowMs: () => now });
    expect(queue.oldestUnansweredSinceMs()).toBeUndefined();
    add('abc'); // a full batch: sent at once
    expect(sender.sent.length).toBe(1);
    expect(queue.oldestUnansweredSinceMs()).toBe(1_000);
    now = 4_000;
    add('def');
    expect(sender.sent.length).toBe(2);
    expect(queue.oldestUnansweredSinceMs()).toBe(1_000);
    sender.answer(0, OK);
    await flush();
    expect(queue.oldestUnansweredSinceMs()).toBe(4_000);
    sender.answer(1, UNAVAILABLE);
    await flush();
    // Back in the queue for a retry after a backoff: nothing waits for an answer meanwhile.
    expect(queue.oldestUnansweredSinceMs()).toBeUndefined();
    now = 9_000;
    timers.advance(60_000);
    expect(sender.sent.length).toBe(3);
    expect(queue.oldestUnansweredSinceMs()).toBe(9_000);
  });

  it('sends a batch once it holds maxBatchRecords, and a partial one after the schedule delay', async () => {
    const { timers, sender, counts, queue, add, body } = setup();
    add('abcd');
    expect(sender.sent.map((s) => [s.bytes, s.records])).toEqual([[body('abc'), 3]]);
    timers.advance(999);
    expect(sender.sent).toHaveLength(1);
    timers.advance(1);
    expect(sender.sent.map((s) => s.bytes)).toEqual([body('abc'), body('d')]);
    sender.answer(0, OK);
    sender.answer(1, OK);
    await flush();
    expect(counts.exportedRecords).toBe(4);
    expect(queue.heldRecords).toBe(0);
  });

  it('also seals at maxBatchBytes', () => {
    const { sender, add } = setup({ maxBatchRecords: 100, maxBatchBytes: 5 });
    add('abc'); // 1 head byte + 2 bytes per record: sealed at the second record (5 bytes)
    expect(sender.sent.map((s) => s.records)).toEqual([2]);
  });

  it('keeps at most maxConcurrentExports requests in flight; the rest wait their turn, in order', async () => {
    const { sender, add, body } = setup();
    add('abcdefghi');
    expect(sender.sent.map((s) => s.bytes)).toEqual([body('abc'), body('def')]);
    sender.answer(0, OK);
    await flush();
    expect(sender.sent.map((s) => s.bytes)).toEqual([body('abc'), body('def'), body('ghi')]);
  });

  it('retries a retryable failure after a backoff that grows (×1.5, at most 5 s), one request at a time, until it succeeds', async () => {
    const { timers, sender, counts, queue, add, body } = setup();
    add('abcdef');
    sender.answer(0, UNAVAILABLE);
    sender.answer(1, UNAVAILABLE);
    await flush();
    expect(counts.retriedRecords).toBe(6);
    expect(counts.failedRecords).toBe(0);
    expect(queue.retrying).toBe(true);
    const delays: number[] = [];
    for (let attempt = 0; attempt < 6; attempt++) {
      delays.push(timers.delays()[0]);
      timers.advance(timers.delays()[0]);
      const open = sender.open();
      expect(open).toHaveLength(1); // one probe while the receiver fails
      sender.answer(sender.sent.indexOf(open[0]), UNAVAILABLE);
      await flush();
    }
    expect(delays).toEqual([1000, 1500, 2250, 3375, 5000, 5000]);
    timers.advance(5000);
    sender.answer(sender.sent.indexOf(sender.open()[0]), OK);
    await flush();
    // recovered: full concurrency again, oldest first
    expect(sender.open().map((s) => s.bytes)).toEqual([body('def')]);
    sender.answer(sender.sent.indexOf(sender.open()[0]), OK);
    await flush();
    expect(counts.exportedRecords).toBe(6);
    expect(queue.heldRecords).toBe(0);
    expect(queue.retrying).toBe(false);
  });

  it('counts a non-retryable failure as failed and does not send it again', async () => {
    const { timers, sender, counts, queue, add } = setup();
    add('abc');
    sender.answer(0, { ok: false, retryable: false, error: new Error('3 INVALID_ARGUMENT') });
    await flush();
    timers.advance(60_000);
    expect(sender.sent).toHaveLength(1);
    expect(counts.failedRecords).toBe(3);
    expect(queue.heldRecords).toBe(0);
  });

  it('counts records a partial success rejected', async () => {
    const { sender, counts, add } = setup();
    add('abc');
    sender.answer(0, { ok: true, rejected: 1, error: new Error('rejected') });
    await flush();
    expect([counts.exportedRecords, counts.failedRecords]).toEqual([2, 1]);
  });

  it('at its bound drops the oldest waiting batch, counted; records added = exported + failed + dropped + held', async () => {
    const { sender, counts, queue, add, body } = setup({ maxQueueRecords: 9, maxConcurrentExports: 1 });
    add('abcdefghi'); // abc in flight, def and ghi wait
    expect(queue.heldRecords).toBe(9);
    add('j'); // full: def (the oldest waiting) goes
    expect(counts.droppedRecords).toBe(3);
    add('kl'); // jkl seals
    sender.answer(0, OK);
    await flush();
    expect(sender.sent.map((s) => s.bytes)).toEqual([body('abc'), body('ghi')]);
    sender.answer(1, OK);
    await flush();
    sender.answer(2, OK);
    await flush();
    expect(sender.sent[2].bytes).toBe(body('jkl'));
    expect(counts.exportedRecords + counts.failedRecords + counts.droppedRecords + queue.heldRecords).toBe(12);
    expect(counts).toMatchObject({ exportedRecords: 9, droppedRecords: 3 });
  });

  it('counts the encoded bytes it holds: open batch, waiting, in flight, back for a retry; 0 once delivered or dropped', async () => {
    const { timers, sender, queue, add } = setup({ maxQueueRecords: 6, maxConcurrentExports: 1 });
    expect(queue.maxRecords).toBe(6);
    expect(queue.heldBytes).toBe(0);
    add('a'); // open: one record of 2 bytes
    expect(queue.heldBytes).toBe(2);
    add('bcdef'); // abc in flight (8 bytes with its frame), def waits (8)
    expect(queue.heldBytes).toBe(16);
    sender.answer(0, UNAVAILABLE); // abc back in the queue, waiting for the backoff
    await flush();
    expect([queue.heldRecords, queue.heldBytes]).toEqual([6, 16]);
    add('g'); // full: abc (the oldest waiting) dropped; g open
    expect([queue.heldRecords, queue.heldBytes]).toEqual([4, 8 + 2]);
    timers.advance(1000); // the backoff ends: def is sent; g is sealed and waits (one send at a time while failing)
    sender.answer(1, OK);
    await flush(); // recovered: g is sent
    sender.answer(2, OK);
    await flush();
    expect([queue.heldRecords, queue.heldBytes]).toEqual([0, 0]);
  });

  it('drops (and counts) the new record when nothing waiting can make room', () => {
    const { counts, queue, add } = setup({ maxQueueRecords: 3, maxConcurrentExports: 1 });
    expect(add('abcd')).toEqual([true, true, true, false]); // abc in flight
    expect(counts.droppedRecords).toBe(1);
    expect(queue.heldRecords).toBe(3);
  });

  it('keeps a waiting batch intact while the writers are reused (a compacted copy)', async () => {
    const { timers, sender, add, body } = setup({ maxConcurrentExports: 1 });
    add('abc'); // in flight from its writer
    add('def'); // waits: compacted
    add('ghijkl'); // reuse writers
    sender.answer(0, UNAVAILABLE); // abc comes back: compacted too
    await flush();
    add('mnopqr');
    for (let i = 0; i < 6; i++) {
      timers.advance(5000);
      sender.answer(sender.sent.length - 1, OK);
      await flush();
    }
    expect(sender.sent.map((s) => s.bytes)).toEqual(['abc', 'abc', 'def', 'ghi', 'jkl', 'mno', 'pqr'].map(body));
  });

  it('lets go of the writers a burst left in the pool once steady traffic has not taken them for 16 batches', async () => {
    const { sender, counts, queue, add } = setup({ maxBatchRecords: 1, maxConcurrentExports: 4 });
    const pooled = (): number => (queue as unknown as { _pool: unknown[] })._pool.length;
    const steady = async (batches: number): Promise<void> => {
      for (let i = 0; i < batches; i++) {
        add('x'); // one batch, sent at once; answered before the next
        sender.answer(sender.sent.length - 1, OK);
        await flush();
      }
    };
    add('abcd'); // a burst: four in flight, each in a writer of its own
    for (let i = 0; i < 4; i++) sender.answer(i, OK);
    await flush();
    expect(pooled()).toBe(4);
    await steady(12); // the burst's window (16 batches) ends: it needed them all then
    expect(pooled()).toBe(4);
    await steady(16); // a window in which three writers always stayed: they go
    expect(pooled()).toBe(1);
    await steady(64); // steady traffic takes the last one each batch: it stays
    expect(pooled()).toBe(1);
    expect(counts.exportedRecords).toBe(4 + 12 + 16 + 64);
  });

  it('forceFlush sends the open batch now and resolves once nothing is held', async () => {
    const { sender, queue, add, body } = setup();
    add('ab');
    let done = false;
    const flushed = queue.forceFlush().then(() => (done = true));
    expect(sender.sent.map((s) => s.bytes)).toEqual([body('ab')]);
    await flush();
    expect(done).toBe(false);
    sender.answer(0, OK);
    await flushed;
    expect(done).toBe(true);
  });

  it('shutdown drops (counts) what waits, waits for what is in flight, stops accepting, and is idempotent', async () => {
    const { sender, counts, queue, add } = setup({ maxConcurrentExports: 1 });
    add('abcdefg'); // abc in flight, def waits, g open
    const stopped = queue.shutdown();
    expect(counts.droppedRecords).toBe(4);
    expect(sender.shutdowns).toBe(0);
    sender.answer(0, UNAVAILABLE); // no retry after shutdown: failed
    await stopped;
    expect(sender.shutdowns).toBe(1);
    expect(counts.failedRecords).toBe(3);
    expect(add('z')).toEqual([false]);
    expect(counts.droppedRecords).toBe(5);
    await queue.shutdown();
    expect(sender.shutdowns).toBe(1);
    expect(sender.sent).toHaveLength(1);
  });
});
