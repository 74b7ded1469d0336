import { EventEmitter } from 'node:events';
import { SeverityNumber } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ConsoleJsonLogRecordExporter, recordToJson, type LineStream } from '../../../../src/export/console/console';

const resource = resourceFromAttributes({ 'service.name': 'flowtap', 'host.name': 'node-1' });

function record(over: Partial<ReadableLogRecord> = {}): ReadableLogRecord {
  return {
    hrTime: [1_714_564_800, 123_456_789],
    hrTimeObserved: [1_714_564_801, 0],
    severityNumber: SeverityNumber.INFO,
    body: 'outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443 (example.com)',
    eventName: 'flowtap.flow.begin',
    resource,
    instrumentationScope: { name: 'flowtap' },
    attributes: {
      'flowtap.flow.direction': 'outgoing',
      'source.port': 43512,
      'flowtap.flow.destination.domains': ['example.com', 'edge.example.net'],
      'flowtap.flow.source.domains': [],
    },
    droppedAttributesCount: 0,
    ...over,
  };
}

class Sink extends EventEmitter implements LineStream {
  chunks: string[] = [];
  full = false;
  destroyed = false;
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return !this.full;
  }
}

describe('recordToJson', () => {
  it('writes exactly the contract keys, a nanosecond timestamp and arrays as arrays', () => {
    const line = recordToJson(record());
    expect(line).toBe(
      '{"timestamp":"2024-05-01T12:00:00.123456789Z","eventName":"flowtap.flow.begin","severityNumber":9,' +
        '"body":"outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443 (example.com)",' +
        '"attributes":{"flowtap.flow.direction":"outgoing","source.port":43512,' +
        '"flowtap.flow.destination.domains":["example.com","edge.example.net"],"flowtap.flow.source.domains":[]},' +
        '"resource":{"service.name":"flowtap","host.name":"node-1"}}',
    );
    expect(Object.keys(JSON.parse(line))).toEqual(['timestamp', 'eventName', 'severityNumber', 'body', 'attributes', 'resource']);
  });

  it('pads the nanoseconds to 9 digits', () => {
    expect(JSON.parse(recordToJson(record({ hrTime: [0, 5] }))).timestamp).toBe('1970-01-01T00:00:00.000000005Z');
  });
});

describe('ConsoleJsonLogRecordExporter', () => {
  it('writes one line per record in one write, then reports success', () => {
    const sink = new Sink();
    const exporter = new ConsoleJsonLogRecordExporter(sink);
    const results: ExportResult[] = [];
    exporter.export([record(), record({ eventName: 'flowtap.flow.end' })], (r) => results.push(r));
    expect(sink.chunks).toHaveLength(1);
    const lines = sink.chunks[0].split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(lines.slice(0, 2).map((l) => JSON.parse(l).eventName)).toEqual(['flowtap.flow.begin', 'flowtap.flow.end']);
    expect(results).toEqual([{ code: ExportResultCode.SUCCESS }]);
  });

  it('reports success only after a full stream drains', () => {
    const sink = new Sink();
    sink.full = true;
    const exporter = new ConsoleJsonLogRecordExporter(sink);
    const results: ExportResult[] = [];
    exporter.export([record()], (r) => results.push(r));
    expect(results).toEqual([]);
    sink.emit('drain');
    sink.emit('close');
    expect(results).toEqual([{ code: ExportResultCode.SUCCESS }]);
    expect(sink.listenerCount('drain') + sink.listenerCount('close')).toBe(0);
  });

  it('fails, without hanging, when the reader goes away', () => {
    const sink = new Sink();
    sink.full = true;
    const exporter = new ConsoleJsonLogRecordExporter(sink);
    const results: ExportResult[] = [];
    exporter.export([record()], (r) => results.push(r));
    sink.destroyed = true;
    sink.emit('close');
    exporter.export([record()], (r) => results.push(r));
    expect(results.map((r) => [r.code, r.error?.message])).toEqual([
      [ExportResultCode.FAILED, 'output stream is closed'],
      [ExportResultCode.FAILED, 'output stream is closed'],
    ]);
    expect(sink.chunks).toHaveLength(1);
    expect(sink.listenerCount('drain') + sink.listenerCount('close')).toBe(0);
  });

  it('fails when the stream throws or after shutdown', async () => {
    const exporter = new ConsoleJsonLogRecordExporter({
      write: () => {
        throw new Error('EPIPE');
      },
    });
    const results: ExportResult[] = [];
    exporter.export([record()], (r) => results.push(r));
    expect(results[0].code).toBe(ExportResultCode.FAILED);
    expect(results[0].error?.message).toBe('EPIPE');

    const sink = new Sink();
    const closed = new ConsoleJsonLogRecordExporter(sink);
    await closed.shutdown();
    closed.export([record()], (r) => results.push(r));
    expect(results[1].code).toBe(ExportResultCode.FAILED);
    expect(sink.chunks).toEqual([]);
  });
});
