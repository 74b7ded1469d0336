import { SeverityNumber } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, type LogRecordExporter, type ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { nsToHrTime } from '../../../src/kernel/clock';
import type { ExporterConfig } from '../../../src/export/provider';
import { createExporter, createLoggerProvider } from '../../../src/export/reference-sdk';
import { createOtlpSender } from '../../../src/export/provider';
import { OtlpGrpcSender } from '../../../src/export/otlp/grpc-sender';
import { OtlpHttpSender } from '../../../src/export/otlp/http-sender';
import { ConsoleJsonLogRecordExporter } from '../../../src/export/console/console';
import type { ExportObserver } from '../../../src/export/observed';

const resource = resourceFromAttributes({ 'service.name': 'flowtap' });

function config(over: Partial<ExporterConfig> = {}): ExporterConfig {
  return {
    exporter: 'console',
    endpoint: 'http://127.0.0.1:1',
    otlp: { protocol: 'grpc', tracesProtocol: 'grpc', timeoutMillis: 1000, compression: 'none' },
    queueMaxRecords: 2048,
    batch: { scheduledDelayMillis: 60_000, exportTimeoutMillis: 30_000, maxExportBatchSize: 512 },
    ...over,
  };
}

class Counting implements ExportObserver {
  exportedRecords = 0;
  failedRecords = 0;
  droppedRecords = 0;
  errors: (Error | undefined)[] = [];
  exported(n: number): void {
    this.exportedRecords += n;
  }
  failed(n: number, e: Error | undefined): void {
    this.failedRecords += n;
    this.errors.push(e);
  }
  dropped(n: number): void {
    this.droppedRecords += n;
  }
}

const emit = (provider: ReturnType<typeof createLoggerProvider>, n = 1): void => {
  const logger = provider.getLogger('flowtap');
  for (let i = 0; i < n; i++) {
    logger.emit({
      eventName: 'flowtap.flow.begin',
      timestamp: nsToHrTime(1_714_564_800_123_456_789n),
      severityNumber: SeverityNumber.INFO,
      body: 'b',
      attributes: { 'flowtap.flow.destination.domains': ['a.test'] },
    });
  }
};

describe('createExporter', () => {
  it('builds the exporter the config names', async () => {
    const otlp = createExporter(config({ exporter: 'otlp' }), { write: () => true });
    expect(otlp).toBeInstanceOf(OTLPLogExporter);
    await otlp?.shutdown();
    expect(createExporter(config({ exporter: 'console' }), { write: () => true })).toBeInstanceOf(ConsoleJsonLogRecordExporter);
    expect(createExporter(config({ exporter: 'none' }), { write: () => true })).toBeUndefined();
  });
});

describe('createLoggerProvider', () => {
  it('console: a record emitted with a ns HrTime comes out as one JSON line with the eventName', async () => {
    const lines: string[] = [];
    const observer = new Counting();
    const provider = createLoggerProvider(config(), resource, { write: (s) => (lines.push(s), true) }, observer);
    emit(provider);
    await provider.forceFlush();
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toEqual({
      timestamp: '2024-05-01T12:00:00.123456789Z',
      eventName: 'flowtap.flow.begin',
      severityNumber: 9,
      body: 'b',
      attributes: { 'flowtap.flow.destination.domains': ['a.test'] },
      resource: { 'service.name': 'flowtap' },
    });
    expect(observer.exportedRecords).toBe(1);
    await provider.shutdown();
  });

  it('none: records are accepted and dropped, nothing is written', async () => {
    const lines: string[] = [];
    const provider = createLoggerProvider(config({ exporter: 'none' }), resource, { write: (s) => (lines.push(s), true) });
    expect(provider.getLogger('flowtap').enabled()).toBe(false);
    emit(provider, 3);
    await provider.forceFlush();
    await provider.shutdown();
    expect(lines).toEqual([]);
  });

  it('passes the batch settings: a full batch is exported without waiting for the delay', async () => {
    const memory = new InMemoryLogRecordExporter();
    const provider = createLoggerProvider(
      config({ queueMaxRecords: 10, batch: { scheduledDelayMillis: 60_000, exportTimeoutMillis: 1000, maxExportBatchSize: 2 } }),
      resource,
      { write: () => true },
      undefined,
      memory,
    );
    emit(provider, 2);
    await new Promise((r) => setImmediate(r));
    expect(memory.getFinishedLogRecords()).toHaveLength(2);
    await provider.shutdown();
  });

  it('counts records dropped at a full queue, and failed exports', async () => {
    const failing: LogRecordExporter = {
      export(_logs: ReadableLogRecord[], cb: (r: ExportResult) => void): void {
        cb({ code: ExportResultCode.FAILED, error: new Error('collector unreachable') });
      },
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
    const observer = new Counting();
    const provider = createLoggerProvider(
      config({ queueMaxRecords: 5, batch: { scheduledDelayMillis: 60_000, exportTimeoutMillis: 1000, maxExportBatchSize: 5 } }),
      resource,
      { write: () => true },
      observer,
      failing,
    );
    // The first 5 fill the queue and start an export (it fails at once); the
    // batch processor then has room again, so emit in two rounds.
    emit(provider, 5);
    await new Promise((r) => setImmediate(r));
    expect(observer.failedRecords).toBe(5);
    expect(observer.errors[0]?.message).toBe('collector unreachable');
    await provider.shutdown();

    const slow: LogRecordExporter = { export: () => undefined, forceFlush: () => Promise.resolve(), shutdown: () => Promise.resolve() };
    const observer2 = new Counting();
    const provider2 = createLoggerProvider(
      config({ queueMaxRecords: 4, batch: { scheduledDelayMillis: 60_000, exportTimeoutMillis: 50, maxExportBatchSize: 4 } }),
      resource,
      { write: () => true },
      observer2,
      slow,
    );
    emit(provider2, 4); // a batch of 4 goes to the (never answering) exporter
    emit(provider2, 6); // 4 fit in the queue, 2 are dropped
    expect(observer2.droppedRecords).toBe(2);
    await provider2.shutdown().catch(() => undefined);
  });
});

describe('createOtlpSender', () => {
  it('the transport follows the protocol', async () => {
    const grpc = createOtlpSender(config({ exporter: 'otlp' }));
    const http = createOtlpSender(
      config({ exporter: 'otlp', otlp: { protocol: 'http/protobuf', tracesProtocol: 'grpc', timeoutMillis: 1000, compression: 'gzip' } }),
    );
    expect(grpc).toBeInstanceOf(OtlpGrpcSender);
    expect(http).toBeInstanceOf(OtlpHttpSender);
    await Promise.all([grpc.shutdown(), http.shutdown()]);
  });
});
