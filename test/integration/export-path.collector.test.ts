/**
 * The OTLP export queue (each flow event's record encoded straight to
 * protobuf from the event, sent through the SDK's gRPC export delegate)
 * against the stock SDK path (mapFlow → Logger.emit →
 * BatchLogRecordProcessor → OTLPLogExporter), the same flow events into the
 * same real OpenTelemetry Collector: the collector must decode identical
 * records. Compared as the collector wrote them (OTLP JSON), so value types
 * count too (intValue vs doubleValue), with resource and scope.
 */
import { readFileSync } from 'node:fs';
import { createResource } from '../../src/record/resource';
import { createRecordExport, type ExporterConfig, type RecordExport } from '../../src/export/provider';
import { createSdkRecordExport } from '../../src/export/reference-sdk';
import type { ExportObserver } from '../../src/export/observed';
import { startCollector, type RunningCollector } from '../helpers/collector';
import { OBSERVED_NS, variedFlowInputs } from '../helpers/flowrecords';

/* eslint-disable @typescript-eslint/no-explicit-any */
interface RawRecord {
  resource: any;
  scope: any;
  record: any;
}

/** Every log record in the collector's file, as raw OTLP JSON, with its resource and scope. */
function rawRecords(path: string): RawRecord[] {
  const out: RawRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    for (const rl of JSON.parse(line).resourceLogs ?? []) {
      for (const sl of rl.scopeLogs ?? []) {
        for (const lr of sl.logRecords ?? []) out.push({ resource: rl.resource, scope: sl.scope, record: lr });
      }
    }
  }
  return out;
}

describe('OTLP export queue vs the stock SDK path, into a real collector', () => {
  let collector: RunningCollector;

  beforeAll(async () => {
    collector = await startCollector({ flushIntervalMillis: 50 });
  });

  afterAll(async () => {
    await collector?.close();
  });

  it('the collector decodes identical records from both (event name, timestamps, severity, body, typed attributes, resource, scope)', async () => {
    const config: ExporterConfig = {
      exporter: 'otlp',
      endpoint: collector.endpoint,
      otlp: { protocol: 'grpc', tracesProtocol: 'grpc', timeoutMillis: 5000, compression: 'none' },
      queueMaxRecords: 1000,
      batch: { scheduledDelayMillis: 50, exportTimeoutMillis: 5000, maxExportBatchSize: 512 },
    };
    const resource = await createResource({ OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,k8s.pod.name=demo' });
    const scope = { name: 'flowtap', version: '9.8.7' };
    const records = variedFlowInputs();

    const send = async (sink: RecordExport, counts: { exported: number }): Promise<void> => {
      for (const r of records) sink.emitFlow(r.event, r.domains, r.timestampNs, r.workload, OBSERVED_NS);
      await sink.forceFlush();
      await sink.shutdown();
      expect(counts.exported).toBe(records.length);
    };
    const observer = (counts: { exported: number }): ExportObserver => ({
      exported: (n) => (counts.exported += n),
      failed: (_n, e) => {
        throw e ?? new Error('export failed');
      },
      dropped: () => {
        throw new Error('dropped');
      },
    });

    const stockCounts = { exported: 0 };
    await send(createSdkRecordExport(config, resource, scope, { write: () => true }, observer(stockCounts)), stockCounts);
    await collector.waitForLogRecords(records.length);
    const stock = rawRecords(collector.logsPath);
    expect(stock).toHaveLength(records.length);

    const fastCounts = { exported: 0 };
    await send(createRecordExport(config, resource, scope, { write: () => true }, observer(fastCounts)), fastCounts);
    await collector.waitForLogRecords(2 * records.length);
    const fast = rawRecords(collector.logsPath).slice(records.length);

    const byTime = (a: RawRecord, b: RawRecord): number => (BigInt(a.record.timeUnixNano) < BigInt(b.record.timeUnixNano) ? -1 : 1);
    expect(fast.sort(byTime)).toEqual(stock.sort(byTime));
    // the comparison saw what it should: types and the fields of the contract
    const end = fast.find((r) => r.record.eventName === 'flowtap.flow.end' && r.record.attributes.some((a: any) => a.key === 'flowtap.flow.duration'));
    expect(end?.record.attributes.find((a: any) => a.key === 'flowtap.flow.duration').value).toEqual({ doubleValue: 0.25 });
    const whole = fast.filter((r) => r.record.attributes.some((a: any) => a.key === 'flowtap.flow.duration' && 'intValue' in a.value));
    expect(whole).toHaveLength(1); // 2 s exactly: an int, as the SDK writes it
    // the workload is the Resource's: container.id (and k8s.pod.uid) there, not on the record
    expect(fast.filter((r) => r.record.attributes.some((a: any) => a.key === 'container.id'))).toHaveLength(0);
    const resourceAttr = (r: RawRecord, key: string): unknown => r.resource.attributes.find((a: any) => a.key === key)?.value.stringValue;
    expect(fast.filter((r) => resourceAttr(r, 'container.id') !== undefined)).toHaveLength(2);
    expect(fast.filter((r) => resourceAttr(r, 'k8s.pod.uid') !== undefined)).toHaveLength(3);
    expect(fast[0].scope).toEqual({ name: 'flowtap', version: '9.8.7' });
    expect(fast[0].record).toMatchObject({ severityNumber: 9, observedTimeUnixNano: String(OBSERVED_NS) });
    expect(fast[0].resource.attributes).toEqual(expect.arrayContaining([{ key: 'k8s.pod.name', value: { stringValue: 'demo' } }]));
  });
});
