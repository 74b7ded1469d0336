import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { dropCountingMeterProvider, ObservedLogRecordExporter, type ExportObserver } from '../../../src/export/observed';

function observer(): ExportObserver & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    exported: (n) => calls.push(['exported', n]),
    failed: (n, e) => calls.push(['failed', n, e?.message]),
    dropped: (n) => calls.push(['dropped', n]),
  };
}

const logs = [{}, {}, {}] as ReadableLogRecord[];

describe('ObservedLogRecordExporter', () => {
  it('reports success and failure with the record count, and passes the result on', () => {
    let answer: ExportResult = { code: ExportResultCode.SUCCESS };
    const inner: LogRecordExporter = {
      export: (_l, cb) => cb(answer),
      forceFlush: jest.fn(() => Promise.resolve()),
      shutdown: jest.fn(() => Promise.resolve()),
    };
    const obs = observer();
    const exporter = new ObservedLogRecordExporter(inner, obs);
    const results: ExportResult[] = [];
    exporter.export(logs, (r) => results.push(r));
    answer = { code: ExportResultCode.FAILED, error: new Error('down') };
    exporter.export(logs.slice(0, 1), (r) => results.push(r));
    expect(obs.calls).toEqual([
      ['exported', 3],
      ['failed', 1, 'down'],
    ]);
    expect(results.map((r) => r.code)).toEqual([ExportResultCode.SUCCESS, ExportResultCode.FAILED]);
  });

  it('turns a throwing exporter into a failed result', () => {
    const inner: LogRecordExporter = {
      export: () => {
        throw new Error('boom');
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
    const obs = observer();
    const results: ExportResult[] = [];
    new ObservedLogRecordExporter(inner, obs).export(logs, (r) => results.push(r));
    expect(obs.calls).toEqual([['failed', 3, 'boom']]);
    expect(results[0].code).toBe(ExportResultCode.FAILED);
  });

  it('forwards forceFlush and shutdown', async () => {
    const inner = { export: jest.fn(), forceFlush: jest.fn(() => Promise.resolve()), shutdown: jest.fn(() => Promise.resolve()) };
    const exporter = new ObservedLogRecordExporter(inner, observer());
    await exporter.forceFlush();
    await exporter.shutdown();
    expect(inner.forceFlush).toHaveBeenCalledTimes(1);
    expect(inner.shutdown).toHaveBeenCalledTimes(1);
  });
});

describe('dropCountingMeterProvider', () => {
  it('hears only queue_full on the processed-records counter', () => {
    const dropped: number[] = [];
    const meter = dropCountingMeterProvider((n) => dropped.push(n)).getMeter('@opentelemetry/sdk-logs');
    const processed = meter.createCounter('otel.sdk.processor.log.processed');
    processed.add(1, { 'error.type': 'queue_full' });
    processed.add(5, {});
    processed.add(2, { 'error.type': 'Error' });
    meter.createCounter('something.else').add(9, { 'error.type': 'queue_full' });
    meter.createUpDownCounter('otel.sdk.processor.log.queue.capacity').add(1);
    expect(dropped).toEqual([1]);
  });
});
