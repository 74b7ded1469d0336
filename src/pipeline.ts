/**
 * The data path, batch by batch: decode → domains → map → emit.
 * No process.* here: the logger, the clock and the DNS lookup come in.
 */
import type { Logger } from '@opentelemetry/api';
import { nsToHrTime } from './clock';
import { decodeBatch } from './decode';
import type { DomainLookup } from './dns/lookup';
import { mapFlow } from './record';

export interface PipelineOptions {
  /** Where records are emitted (an SDK Logger). */
  logger: Logger;
  /** Boot-time ns → wall-clock ns. */
  clock: { toWallNs(bootNs: bigint): bigint };
  domains: DomainLookup;
  /** Wall-clock ms; the observed timestamp of a batch and the DNS cache's clock. */
  nowMs: () => number;
  /** Wall-clock ns: the observed timestamp of a batch (ms precision would put it before the event's own time). */
  nowNs: () => bigint;
  /** Told about an event that failed after decoding (counted in processingErrors). */
  onError?: (error: unknown) => void;
}

export interface PipelineStats {
  batches: number;
  /** Flow events decoded (begin and end). */
  flows: number;
  /** DNS events decoded. */
  dns: number;
  /** Records emitted to the logger. */
  emitted: number;
  /** Records the decoder could not read (see decodeBatch). */
  decodeErrors: number;
  /** Decoded events whose mapping or DNS handling threw. */
  processingErrors: number;
}

export class Pipeline {
  readonly stats: PipelineStats = { batches: 0, flows: 0, dns: 0, emitted: 0, decodeErrors: 0, processingErrors: 0 };

  private readonly _logger: Logger;
  private readonly _clock: PipelineOptions['clock'];
  private readonly _domains: DomainLookup;
  private readonly _nowMs: () => number;
  private readonly _nowNs: () => bigint;
  private readonly _onError: ((error: unknown) => void) | undefined;

  constructor(options: PipelineOptions) {
    this._logger = options.logger;
    this._clock = options.clock;
    this._domains = options.domains;
    this._nowMs = options.nowMs;
    this._nowNs = options.nowNs;
    this._onError = options.onError;
  }

  /**
   * One batch from the addon. `records`, when given, is how many records the
   * addon put in it: records the walk never reached count as decode errors.
   * Never throws: it runs as the addon's callback.
   */
  onBatch(batch: Buffer, records?: number): void {
    const nowMs = this._nowMs();
    const observed = nsToHrTime(this._nowNs());
    const { events, errors } = decodeBatch(batch);
    this.stats.batches++;
    this.stats.decodeErrors += records === undefined ? errors : Math.max(errors, records - events.length);
    for (const ev of events) {
      try {
        if (ev.type === 'dns') {
          this.stats.dns++;
          this._domains.observe(ev, nowMs);
          continue;
        }
        this.stats.flows++;
        const domains = {
          src: this._domains.namesFor(ev.srcAddr, nowMs),
          dst: this._domains.namesFor(ev.dstAddr, nowMs),
        };
        const record = mapFlow(ev, domains, this._clock.toWallNs(ev.tsNs));
        this._logger.emit({
          eventName: record.eventName,
          timestamp: nsToHrTime(record.timestampNs),
          observedTimestamp: observed,
          severityNumber: record.severityNumber,
          body: record.body,
          attributes: record.attributes,
        });
        this.stats.emitted++;
      } catch (e) {
        this.stats.processingErrors++;
        this._onError?.(e);
      }
    }
  }
}
