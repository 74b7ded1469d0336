/**
 * The data path, batch by batch: decode → context (domains, resolvers,
 * process, cgroup path) → emit (the sink maps, or encodes the mapping
 * directly).
 * No process.* here: the sink, the clock, the DNS lookup and the /proc
 * cache come in.
 */
import { forEachEvent, type DecodedEvent, type FlowEvent } from './kernel/decode';
import { NO_NAMES, type DomainLookup } from './enrich/dns/lookup';
import type { Workload } from './enrich/container';
import type { ProcessDetails } from './enrich/process';
import type { FlowContext } from './record/record';

/** Where the pipeline hands each record (export/: the OTLP export queue, or an SDK Logger). */
export interface RecordSink {
  /**
   * The record of one flow event: mapFlow(event, context, timestampNs)
   * defines it (src/record/record.ts); a sink may encode it without building
   * it. `workload` is the local socket's (src/enrich/container.ts), undefined
   * when its cgroup names none: the record goes under that workload's
   * Resource (src/record/resource.ts workloadResource); the same object
   * comes for every record of one workload. `observedNs` is when its batch was read (wall-clock ns).
   * `event` and `context` are the pipeline's and valid during the call only:
   * a sink keeps what it needs (the arrays and the process details in
   * `context` it may keep).
   */
  emitFlow(event: FlowEvent, context: FlowContext, timestampNs: bigint, workload: Workload | undefined, observedNs: bigint): void;
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
  /** The cgroup v2 path of a socket's cgroup id (src/enrich/container.ts); none: no cgroup path. */
  cgroupPaths?: { cgroupPathFor(cgroupId: bigint): string | undefined };
  /**
   * /proc's details of an event's process (src/enrich/process.ts ProcessCache);
   * none (flowtap's /proc is not the kernel's pid namespace): the kernel's fields only.
   */
  processes?: { lookup(pid: number, capturedAtNs: bigint, comm?: string): ProcessDetails | undefined };
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
  private readonly _cgroupPaths: PipelineOptions['cgroupPaths'];
  private readonly _processes: PipelineOptions['processes'];
  /** What is known about the current event (one object, every field refilled per event: one shape). */
  private readonly _context: Required<Omit<FlowContext, 'process' | 'cgroupPath'>> & Pick<FlowContext, 'process' | 'cgroupPath'> = {
    src: NO_NAMES,
    dst: NO_NAMES,
    srcResolvers: NO_NAMES,
    dstResolvers: NO_NAMES,
    process: undefined,
    cgroupPath: undefined,
  };
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
    this._cgroupPaths = options.cgroupPaths;
    this._processes = options.processes;
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
      const c = this._context;
      c.src = this._domains.namesFor(ev.srcAddr, nowMs);
      c.dst = this._domains.namesFor(ev.dstAddr, nowMs);
      // An address without names has no resolver that named it.
      c.srcResolvers = c.src.length === 0 ? NO_NAMES : this._domains.resolversFor(ev.srcAddr, nowMs);
      c.dstResolvers = c.dst.length === 0 ? NO_NAMES : this._domains.resolversFor(ev.dstAddr, nowMs);
      const p = ev.process;
      c.process = p === undefined || this._processes === undefined ? undefined : this._processes.lookup(p.pid, p.capturedAtNs, p.comm);
      c.cgroupPath = this._cgroupPaths?.cgroupPathFor(ev.cgroupId);
      const workload = this._containers?.workloadFor(ev.cgroupId);
      this._sink.emitFlow(ev, c, ev.tsNs + this._batchWallOffsetNs, workload, this._batchObservedNs);
      this.stats.emitted++;
    } catch (e) {
      this.stats.processingErrors++;
      this._onError?.(e);
    }
  };
}
