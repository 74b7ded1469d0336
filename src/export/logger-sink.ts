/**
 * The stock SDK path as a record sink: each record through Logger.emit into
 * the LoggerProvider's processors (BatchLogRecordProcessor → exporter). The
 * console exporter uses it (records for humans, a few per second), and the
 * tests and benchmarks use it as the reference the OTLP export queue must
 * match (same records at the collector) and beat (CPU per record).
 */
import type { HrTime, Logger } from '@opentelemetry/api';
import type { LoggerProvider } from '@opentelemetry/sdk-logs';
import { nsToHrTime } from '../kernel/clock';
import type { FlowEvent } from '../kernel/decode';
import { mapFlow, type FlowDomains, type FlowRecord } from '../record/record';
import type { RecordExport } from './record-export';

export class LoggerRecordExport implements RecordExport {
  private readonly _provider: LoggerProvider;
  private readonly _logger: Logger;
  private _observedNs = -1n;
  private _observed: HrTime = [0, 0];

  constructor(provider: LoggerProvider, scope: { name: string; version?: string }) {
    this._provider = provider;
    this._logger = provider.getLogger(scope.name, scope.version);
  }

  emitFlow(event: FlowEvent, domains: FlowDomains, timestampNs: bigint, containerId: string | undefined, observedNs: bigint): void {
    this.emit(mapFlow(event, domains, timestampNs, containerId), observedNs);
  }

  /** One record, as mapped (tests and benchmarks hand records in directly). */
  emit(record: FlowRecord, observedNs: bigint): void {
    // One batch shares its observed time: convert it once.
    if (observedNs !== this._observedNs) {
      this._observedNs = observedNs;
      this._observed = nsToHrTime(observedNs);
    }
    this._logger.emit({
      eventName: record.eventName,
      timestamp: nsToHrTime(record.timestampNs),
      observedTimestamp: this._observed,
      severityNumber: record.severityNumber,
      body: record.body,
      attributes: record.attributes,
    });
  }

  forceFlush(): Promise<void> {
    return this._provider.forceFlush();
  }

  shutdown(): Promise<void> {
    return this._provider.shutdown();
  }
}
