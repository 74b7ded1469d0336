/**
 * The stock SDK path as a record sink: each record through Logger.emit into
 * the LoggerProvider's processors (BatchLogRecordProcessor → exporter). The
 * console exporter uses it (records for humans, a few per second), and the
 * tests and benchmarks use it as the reference the OTLP export queue must
 * match (same records at the collector) and beat (CPU per record).
 *
 * A LoggerProvider has one Resource, so each workload (src/enrich/container.ts)
 * gets a provider of its own, made on its first record with that workload's
 * Resource (src/record/resource.ts workloadResource); records without one go
 * through flowtap's own. The workload providers are bounded (maxProviders):
 * past the bound, the least recently made one is shut down (which exports
 * what it holds) and made again when its workload comes back.
 */
import type { HrTime, Logger } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { LoggerProvider } from '@opentelemetry/sdk-logs';
import { workloadKey, type Workload } from '../enrich/container';
import { nsToHrTime } from '../kernel/clock';
import type { FlowEvent } from '../kernel/decode';
import { mapFlow, type FlowDomains, type FlowRecord } from '../record/record';
import { workloadResource } from '../record/resource';
import type { RecordExport } from './record-export';

/** Workload providers at most, by default. */
export const MAX_WORKLOAD_PROVIDERS_DEFAULT = 64;

interface Emitter {
  provider: LoggerProvider;
  logger: Logger;
}

export interface LoggerRecordExportOptions {
  /** A provider for a Resource: each has its own exporter, as shutting a provider down shuts its exporter. */
  providerFor: (resource: Resource) => LoggerProvider;
  /** flowtap's own Resource. */
  resource: Resource;
  scope: { name: string; version?: string };
  /** Workload providers alive at most. Default MAX_WORKLOAD_PROVIDERS_DEFAULT. */
  maxProviders?: number;
}

export class LoggerRecordExport implements RecordExport {
  private readonly _options: LoggerRecordExportOptions;
  private readonly _own: Emitter;
  /** Workload key → its emitter, oldest made first. */
  private readonly _workloads = new Map<string, Emitter>();
  private readonly _maxProviders: number;
  /** Providers shut down to keep the bound, until their shutdown is done. */
  private readonly _retiring = new Set<Promise<void>>();
  private _lastWorkload: Workload | undefined;
  private _last: Emitter;
  private _observedNs = -1n;
  private _observed: HrTime = [0, 0];
  /** Workload providers made, since start. */
  providersMade = 0;

  constructor(options: LoggerRecordExportOptions) {
    this._options = options;
    this._maxProviders = options.maxProviders ?? MAX_WORKLOAD_PROVIDERS_DEFAULT;
    this._own = this._emitter(options.resource);
    this._last = this._own;
  }

  /** Workload providers alive now. */
  get workloadProviders(): number {
    return this._workloads.size;
  }

  private _emitter(resource: Resource): Emitter {
    const provider = this._options.providerFor(resource);
    return { provider, logger: provider.getLogger(this._options.scope.name, this._options.scope.version) };
  }

  private _emitterOf(workload: Workload | undefined): Emitter {
    if (workload === this._lastWorkload) return this._last;
    let e = this._own;
    if (workload !== undefined) {
      const key = workloadKey(workload);
      const known = this._workloads.get(key);
      if (known !== undefined) {
        e = known;
      } else {
        if (this._workloads.size >= this._maxProviders) this._retire();
        e = this._emitter(workloadResource(this._options.resource, workload));
        this.providersMade++;
        this._workloads.set(key, e);
      }
    }
    this._lastWorkload = workload;
    this._last = e;
    return e;
  }

  /** Shuts the oldest workload provider down; its records are exported on the way. */
  private _retire(): void {
    const [key, e] = this._workloads.entries().next().value!;
    this._workloads.delete(key);
    const done: Promise<void> = e.provider.shutdown().finally(() => this._retiring.delete(done));
    this._retiring.add(done);
  }

  emitFlow(event: FlowEvent, domains: FlowDomains, timestampNs: bigint, workload: Workload | undefined, observedNs: bigint): void {
    this.emit(mapFlow(event, domains, timestampNs), observedNs, workload);
  }

  /** One record, as mapped, of `workload` (tests and benchmarks hand records in directly). */
  emit(record: FlowRecord, observedNs: bigint, workload?: Workload): void {
    // One batch shares its observed time: convert it once.
    if (observedNs !== this._observedNs) {
      this._observedNs = observedNs;
      this._observed = nsToHrTime(observedNs);
    }
    this._emitterOf(workload).logger.emit({
      eventName: record.eventName,
      timestamp: nsToHrTime(record.timestampNs),
      observedTimestamp: this._observed,
      severityNumber: record.severityNumber,
      body: record.body,
      attributes: record.attributes,
    });
  }

  private _providers(): LoggerProvider[] {
    return [this._own.provider, ...[...this._workloads.values()].map((e) => e.provider)];
  }

  async forceFlush(): Promise<void> {
    await Promise.all([...this._providers().map((p) => p.forceFlush()), ...this._retiring]);
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this._providers().map((p) => p.shutdown()), ...this._retiring]);
  }
}
