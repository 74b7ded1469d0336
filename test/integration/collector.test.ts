// Real OpenTelemetry Collector, no flowtap code: proves the test harness in
// test/helpers/collector.ts. A record sent with the OpenTelemetry JS SDK over
// OTLP/gRPC must come back out of the collector's file exporter with every
// field decoded to the value that was sent.
import { SeverityNumber } from '@opentelemetry/api';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { existsSync } from 'node:fs';
import { RunningCollector, startCollector } from '../helpers/collector';

/** Sends records through a fresh SDK pipeline to `endpoint` and waits until the export finished. */
async function sendLogs(endpoint: string, emit: (logger: ReturnType<LoggerProvider['getLogger']>) => void): Promise<void> {
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'collector-harness-test', 'host.name': 'test-host' }),
    processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: endpoint }) })],
  });
  emit(provider.getLogger('harness-scope', '1.2.3'));
  await provider.forceFlush();
  await provider.shutdown();
}

describe('collector harness with the real OpenTelemetry Collector', () => {
  let collector: RunningCollector;

  beforeAll(async () => {
    collector = await startCollector();
  });

  afterAll(async () => {
    await collector?.close();
  });

  test('an OTLP/gRPC log record comes back from the file exporter with every field decoded', async () => {
    expect(collector.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    await sendLogs(collector.endpoint, (logger) =>
      logger.emit({
        eventName: 'flowtap.harness.check',
        // HrTime [seconds, nanoseconds]: the nanoseconds must survive as a bigint.
        timestamp: [1_700_000_000, 123_456_789],
        observedTimestamp: [1_700_000_001, 987_654_321],
        severityNumber: SeverityNumber.INFO,
        severityText: 'INFO',
        body: 'outgoing tcp 198.18.0.1:40000 -> 198.18.0.2:443 (example.test)',
        attributes: {
          'test.string': 'hello',
          'test.int': 443,
          'test.strings': ['a.example.test', 'b.example.test'],
          'test.empty_strings': [],
          'test.bool': true,
          'test.double': 1.5,
        },
      }),
    );

    const [record, ...others] = await collector.waitForLogRecords((r) => r.eventName === 'flowtap.harness.check');
    expect(others).toHaveLength(0);
    expect(record).toEqual({
      timeUnixNano: 1_700_000_000_123_456_789n,
      observedTimeUnixNano: 1_700_000_001_987_654_321n,
      eventName: 'flowtap.harness.check',
      severityNumber: 9,
      severityText: 'INFO',
      body: 'outgoing tcp 198.18.0.1:40000 -> 198.18.0.2:443 (example.test)',
      attributes: {
        'test.string': 'hello',
        'test.int': 443,
        'test.strings': ['a.example.test', 'b.example.test'],
        'test.empty_strings': [],
        'test.bool': true,
        'test.double': 1.5,
      },
      droppedAttributesCount: 0,
      traceId: '',
      spanId: '',
      resource: { 'service.name': 'collector-harness-test', 'host.name': 'test-host' },
      scope: { name: 'harness-scope', version: '1.2.3', attributes: {} },
    });
    expect(typeof record.attributes['test.int']).toBe('number');
  });

  test('64-bit ints, maps and bytes decode exactly; a record without a body has body null', async () => {
    await sendLogs(collector.endpoint, (logger) =>
      logger.emit({
        eventName: 'flowtap.harness.types',
        severityNumber: SeverityNumber.WARN,
        attributes: {
          'test.big': 2 ** 60,
          'test.negative': -7,
          'test.map': { inner: 'x', n: 2 },
          'test.bytes': new Uint8Array([0, 1, 254, 255]),
        },
      }),
    );

    const [record] = await collector.waitForLogRecords((r) => r.eventName === 'flowtap.harness.types');
    expect(record.body).toBeNull();
    expect(record.severityNumber).toBe(13);
    expect(record.severityText).toBe('');
    expect(record.attributes['test.big']).toBe(2n ** 60n);
    expect(record.attributes['test.negative']).toBe(-7);
    expect(record.attributes['test.map']).toEqual({ inner: 'x', n: 2 });
    expect(record.attributes['test.bytes']).toEqual(Buffer.from([0, 1, 254, 255]));
    // The SDK stamps an observed time when none is given.
    expect(record.observedTimeUnixNano).toBeGreaterThan(0n);
  });

  test('kill() then restart() keeps the endpoint and the records written before the outage', async () => {
    const endpoint = collector.endpoint;
    const before = (await collector.waitForLogRecords(2)).length;

    await collector.kill();
    expect(collector.running).toBe(false);
    await collector.restart();
    expect(collector.running).toBe(true);
    expect(collector.endpoint).toBe(endpoint);

    await sendLogs(collector.endpoint, (logger) => logger.emit({ eventName: 'flowtap.harness.after-restart', body: 'again' }));
    const records = await collector.waitForLogRecords(before + 1);
    expect(records.map((r) => r.eventName)).toEqual(
      expect.arrayContaining(['flowtap.harness.check', 'flowtap.harness.types', 'flowtap.harness.after-restart']),
    );
  });

  test('waitForLogRecords fails with a clear message naming what it waited for', async () => {
    await expect(collector.waitForLogRecords((r) => r.eventName === 'never.sent', 300)).rejects.toThrow(
      /waited 300 ms for 1 matching log record\(s\); the collector wrote \d+/,
    );
  });

  test('close() stops the collector and removes its temp dir', async () => {
    const other = await startCollector();
    expect(existsSync(other.dir)).toBe(true);
    await other.close();
    expect(other.running).toBe(false);
    expect(existsSync(other.dir)).toBe(process.env.FLOWTAP_KEEP_COLLECTOR_DIR ? true : false);
    await other.close(); // idempotent
  });
});
