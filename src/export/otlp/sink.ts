/**
 * The OTLP path as a record sink: each flow event's record is encoded as
 * protobuf straight into the export queue's open batch (flow-encoder.ts: from
 * the event, without building the record), and the queue sends
 * whole requests through a BatchSender (grpc-sender.ts: the SDK's gRPC export
 * delegate). No LogRecord object, no per-record SDK processing: see
 * docs/benchmarks.md for what that costs on the stock path. Each record goes
 * under its workload's Resource: consecutive records of one workload share
 * one ResourceLogs (LogsRequestFrame).
 */
import type { Workload } from '../../enrich/container';
import type { FlowEvent } from '../../kernel/decode';
import type { FlowDomains } from '../../record/record';
import { FlowLogRecordEncoder } from './flow-encoder';
import { LogsRequestFrame, type ResourceLike, type ScopeLike } from './proto';
import type { RecordExport } from '../record-export';
import { ExportQueue, type ExportQueueOptions } from './queue';

export interface OtlpRecordExportOptions extends Omit<ExportQueueOptions, 'frame'> {
  /** flowtap's own Resource: records without a workload carry it, each workload's is it with the workload's attributes over it. */
  resource: ResourceLike;
  scope: ScopeLike;
  /** Distinct workload resources kept encoded at most. Default MAX_CACHED_RESOURCES_DEFAULT. */
  maxCachedResources?: number;
}

export class OtlpRecordExport implements RecordExport {
  readonly queue: ExportQueue;
  readonly frame: LogsRequestFrame;
  private readonly _encoder = new FlowLogRecordEncoder();

  constructor(options: OtlpRecordExportOptions) {
    this.frame = new LogsRequestFrame(options.resource, options.scope, { maxCachedResources: options.maxCachedResources });
    this.queue = new ExportQueue({ ...options, frame: this.frame });
  }

  emitFlow(event: FlowEvent, domains: FlowDomains, timestampNs: bigint, workload: Workload | undefined, observedNs: bigint): void {
    const queue = this.queue;
    if (!queue.reserve()) return;
    const w = queue.writer;
    this.frame.select(w, workload);
    const mark = w.pos;
    try {
      this._encoder.encode(w, event, domains, timestampNs, observedNs);
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
