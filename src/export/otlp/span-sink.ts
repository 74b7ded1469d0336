/**
 * Flows as spans (`--spans otlp`): a record sink that turns each flow end
 * into one span (span-record.ts), encodes it straight into an export queue's
 * open batch (span-encoder.ts) and lets the queue send whole
 * ExportTraceServiceRequests through the BatchSender it is given, with the
 * same batching, retries, bound and counters as the log records' queue.
 * Flow begins are not spans: they are skipped here, and not counted.
 */
import { randomFillSync } from 'node:crypto';
import type { Workload } from '../../enrich/container';
import type { FlowEvent } from '../../kernel/decode';
import type { FlowDomains } from '../../record/record';
import type { RecordExport } from '../provider';
import type { ResourceLike, ScopeLike } from './proto';
import { ExportQueue, type ExportQueueOptions } from './queue';
import { SpanEncoder, SpansRequestFrame } from './span-encoder';
import { flowSpan, type SpanIds } from './span-record';

export interface OtlpSpanExportOptions extends Omit<ExportQueueOptions, 'frame'> {
  resource: ResourceLike;
  scope: ScopeLike;
  /** Where span ids come from. Default: random (randomSpanIds). */
  ids?: SpanIds;
}

/** Ids drawn this many spans at a time from the system's random source. */
const IDS_PER_DRAW = 256;
const ID_BYTES = 16 + 8;

/** Random trace and span ids (W3C: all-zero ids are invalid, so one is drawn again). */
export function randomSpanIds(fill: (buf: Uint8Array) => void = randomFillSync): SpanIds {
  const pool = Buffer.alloc(IDS_PER_DRAW * ID_BYTES);
  let next = IDS_PER_DRAW;
  const take = (n: number): Uint8Array => {
    for (;;) {
      if (next === IDS_PER_DRAW) {
        fill(pool);
        next = 0;
      }
      const at = next++ * ID_BYTES;
      // A copy: a span in a batch must not see its ids change when the pool is refilled.
      const id = Buffer.from(pool.subarray(at, at + n));
      if (id.some((b) => b !== 0)) return id;
    }
  };
  return { next: () => ({ traceId: take(16), spanId: take(8) }) };
}

export class OtlpSpanExport implements RecordExport {
  readonly queue: ExportQueue;
  private readonly _frame: InstanceType<typeof SpansRequestFrame>;
  private readonly _encoder = new SpanEncoder();
  private readonly _ids: SpanIds;

  constructor(options: OtlpSpanExportOptions) {
    this._ids = options.ids ?? randomSpanIds();
    this._frame = new SpansRequestFrame(options.resource, options.scope);
    this.queue = new ExportQueue({ ...options, frame: this._frame });
  }

  /** Each span under its workload's Resource, as the log records (LogsRequestFrame). */
  emitFlow(event: FlowEvent, domains: FlowDomains, timestampNs: bigint, workload: Workload | undefined): void {
    if (event.type !== 'end') return;
    const queue = this.queue;
    if (!queue.reserve()) return;
    const span = flowSpan(event, domains, timestampNs, this._ids)!;
    const w = queue.writer;
    this._frame.select(w, workload);
    const mark = w.pos;
    try {
      this._encoder.encode(w, span);
    } catch (e) {
      w.pos = mark; // no half span in the batch
      throw e;
    }
    queue.commit();
  }

  forceFlush(): Promise<void> {
    return this.queue.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.queue.shutdown();
  }
}
