/**
 * The data path, batch by batch: decode → domains → emit (the sink maps,
 * or encodes the mapping directly).
 * No process.* here: the sink, the clock and the DNS lookup come in.
 */
import { forEachEvent, type DecodedEvent, type FlowEvent } from './kernel/decode';
import type { DomainLookup } from './enrich/dns/lookup';
import type { Workload } from './enrich/container';
import type { FlowDomains } from './record/record';

/** Where the pipeline hands each record (export/: the OTLP export queue, or an SDK Logger). */
export interface RecordSink {
  /**
   * The record of one flow event: mapFlow(event, domains, timestampNs)
   * defines it (src/record/record.ts); a sink may encode it without building
   * it. `workload` is the local socket's (src/enrich/container.ts), undefined
   * when its cgroup names none: the record goes under that workload's
   * Resource (src/record/resource.ts workloadResource); the same object
   * comes for every record of one workload. `observedNs` is when its batch was read (wall-clock ns).
   * `event` and `domains` are the pipeline's and valid during the call only:
   * a sink keeps what it needs (the arrays in `domains` it may keep).
   */
  emitFlow(event: FlowEvent, domains: FlowDomains, timestampNs: bigint, workload: Workload | undefined, observedNs: bigint): void;
}

export interface PipelineOptions {
  /** Where records are emitted. */
  sink: RecordSink;
  /** Boot-time ns → wall-clock ns: a translation (clock.ts), read once per batch. */
  clock: { toWallNs(bootNs: bigint): bigint };
  domains: DomainLookup;
  /** Wall-clock ms; the observed timestamp of a batch and the DNS cache's clock. */
  nowMs: () => number;
  /** Wall-clock ns: the observed timestamp of a batch (ms precision would put it before the event's own time). */
  nowNs: () => bigint;
  /** The workload of a socket's cgroup id (src/enrich/container.ts); none: every record under flowtap's own Resource. */
  containers?: { workloadFor(cgroupId: bigint): Workload | undefined };
  /** Told about an event that failed after decoding (counted in processingErrors). */
  onError?: (error: unknown) => void;
}

export interface PipelineStats {
  batches: number;
  /** Flow events decoded (begin and end). */
  flows: number;
  /** DNS events decoded. */
  dns: number;
  /** Records emitted to the sink. */
  emitted: number;
  /** Records the decoder could not read (see decodeBatch). */
  decodeErrors: number;
  /** Decoded events whose mapping or DNS handling threw. */
  processingErrors: number;
}

export class Pipeline {
  readonly stats: PipelineStats = { batches: 0, flows: 0, dns: 0, emitted: 0, decodeErrors: 0, processingErrors: 0 };

  private readonly _sink: RecordSink;
  private readonly _clock: PipelineOptions['clock'];
  private readonly _domains: DomainLookup;
  private readonly _nowMs: () => number;
  private readonly _nowNs: () => bigint;
  private readonly _onError: ((error: unknown) => void) | undefined;
  private readonly _containers: PipelineOptions['containers'];
  /** The names of the current event's addresses (one object, refilled per event). */
  private readonly _flowDomains: FlowDomains = { src: [], dst: [] };
  /** The current batch's clock readings (one per batch). */
  private _batchNowMs = 0;
  private _batchObservedNs = 0n;
  /** Wall-clock ns minus boot-time ns, for the current batch. */
  private _batchWallOffsetNs = 0n;

  constructor(options: PipelineOptions) {
    this._sink = options.sink;
    this._clock = options.clock;
    this._domains = options.domains;
    this._nowMs = options.nowMs;
    this._nowNs = options.nowNs;
    this._onError = options.onError;
    this._containers = options.containers;
  }

  /**
   * One batch from the addon. `records`, when given, is how many records the
   * addon put in it: records the walk never reached count as decode errors.
   * Never throws: it runs as the addon's callback.
   */
  onBatch(batch: Buffer, records?: number): void {
    this._batchNowMs = this._nowMs();
    this._batchObservedNs = this._nowNs();
    // One conversion per batch, one BigInt addition per event (toWallNs per
    // event made two BigInts and read the wall clock each time).
    this._batchWallOffsetNs = this._clock.toWallNs(0n);
    const { events, errors } = forEachEvent(batch, this._onEvent);
    this.stats.batches++;
    this.stats.decodeErrors += records === undefined ? errors : Math.max(errors, records - events);
  }

  /** One decoded event of the current batch. Never throws. */
  private readonly _onEvent = (ev: DecodedEvent): void => {
    const nowMs = this._batchNowMs;
    try {
      if (ev.type === 'dns') {
        this.stats.dns++;
        this._domains.observe(ev, nowMs);
        return;
      }
      this.stats.flows++;
      const domains = this._flowDomains;
      domains.src = this._domains.namesFor(ev.srcAddr, nowMs);
      domains.dst = this._domains.namesFor(ev.dstAddr, nowMs);
      const workload = this._containers?.workloadFor(ev.cgroupId);
      this._sink.emitFlow(ev, domains, ev.tsNs + this._batchWallOffsetNs, workload, this._batchObservedNs);
      this.stats.emitted++;
    } catch (e) {
      this.stats.processingErrors++;
      this._onError?.(e);
    }
  };
}
