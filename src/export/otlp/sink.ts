/**
 * The OTLP path as a record sink: each flow event's record is encoded as
 * protobuf straight into the export queue's open batch (flow-encoder.ts: from
 * the event, without building the record), and the queue sends
 * whole requests through a BatchSender (grpc-sender.ts: the SDK's gRPC export
 * delegate). No LogRecord object, no per-record SDK processing: see
 * docs/benchmarks.md for what that costs on the stock path.
 */
import type { FlowEvent } from '../../kernel/decode';
import type { FlowDomains } from '../../record/record';
import { FlowLogRecordEncoder } from './flow-encoder';
import { LogsRequestFrame, type ResourceLike, type ScopeLike } from './proto';
import type { RecordExport } from '../record-export';
import { ExportQueue, type ExportQueueOptions } from './queue';

export interface OtlpRecordExportOptions extends Omit<ExportQueueOptions, 'frame'> {
  resource: ResourceLike;
  scope: ScopeLike;
}

export class OtlpRecordExport implements RecordExport {
  readonly queue: ExportQueue;
  private readonly _encoder = new FlowLogRecordEncoder();

  constructor(options: OtlpRecordExportOptions) {
    const frame = new LogsRequestFrame(options.resource, options.scope);
    this.queue = new ExportQueue({ ...options, frame });
  }

  emitFlow(event: FlowEvent, domains: FlowDomains, timestampNs: bigint, containerId: string | undefined, observedNs: bigint): void {
    const queue = this.queue;
    if (!queue.reserve()) return;
    const w = queue.writer;
    const mark = w.pos;
    try {
      this._encoder.encode(w, event, domains, timestampNs, containerId, observedNs);
    } catch (e) {
      w.pos = mark; // no half record in the batch
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
