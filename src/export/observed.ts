/**
 * Seams where flowtap watches the SDK's export path without replacing it:
 * an exporter wrapper that reports every export result, and a meter provider
 * that hears the batch processor's "dropped, queue full" count.
 */
import { createNoopMeter, type Attributes, type Counter, type Meter, type MeterProvider } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ATTR_ERROR_TYPE, ERROR_TYPE_VALUE_QUEUE_FULL, METRIC_OTEL_SDK_PROCESSOR_LOG_PROCESSED } from '../record/semconv';

/** Told what happened to records after they were emitted. */
export interface ExportObserver {
  /** `count` records reached the exporter's destination. */
  exported(count: number): void;
  /** An export of `count` records failed for good (after the exporter's own retries): they are lost. */
  failed(count: number, error: Error | undefined): void;
  /** `count` records were dropped before export: the queue was full (or flowtap stopped before sending them). */
  dropped(count: number): void;
  /**
   * An export of `count` records failed with a retryable error; the records
   * stay queued and are sent again later (export queue only, see queue.ts).
   */
  retrying?(count: number, error: Error | undefined): void;
}

/** A LogRecordExporter that reports each result of the exporter it wraps. */
export class ObservedLogRecordExporter implements LogRecordExporter {
  private readonly _inner: LogRecordExporter;
  private readonly _observer: ExportObserver;

  constructor(inner: LogRecordExporter, observer: ExportObserver) {
    this._inner = inner;
    this._observer = observer;
  }

  export(logs: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void {
    const count = logs.length;
    const done = (result: ExportResult): void => {
      if (result.code === ExportResultCode.SUCCESS) this._observer.exported(count);
      else this._observer.failed(count, result.error);
      resultCallback(result);
    };
    try {
      this._inner.export(logs, done);
    } catch (e) {
      done({ code: ExportResultCode.FAILED, error: e instanceof Error ? e : new Error(String(e)) });
    }
  }

  forceFlush(): Promise<void> {
    return this._inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this._inner.shutdown();
  }
}

/**
 * A MeterProvider for BatchLogRecordProcessor's selfObsMeterProvider option
 * (experimental in sdk-logs 3.1): it counts otel.sdk.processor.log.processed
 * with error.type=queue_full, the only place the processor reports a record
 * dropped at a full queue; every other instrument is a no-op.
 */
export function dropCountingMeterProvider(onDropped: (count: number) => void): MeterProvider {
  const noop = createNoopMeter();
  const dropCounter: Counter = {
    add(value: number, attributes?: Attributes): void {
      if (attributes?.[ATTR_ERROR_TYPE] === ERROR_TYPE_VALUE_QUEUE_FULL) onDropped(value);
    },
  };
  const meter: Meter = Object.create(noop) as Meter;
  meter.createCounter = ((name: string, options) =>
    name === METRIC_OTEL_SDK_PROCESSOR_LOG_PROCESSED ? dropCounter : noop.createCounter(name, options)) as Meter['createCounter'];
  return { getMeter: () => meter };
}
