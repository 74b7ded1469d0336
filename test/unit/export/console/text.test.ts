import { SeverityNumber } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { ConsoleJsonLogRecordExporter, type LineStream } from '../../../../src/export/console/console';
import { formatBytes, formatDuration, recordToText, TEXT_HEADER } from '../../../../src/export/console/text';
import { nsToHrTime } from '../../../../src/kernel/clock';
import type { FlowEvent } from '../../../../src/kernel/decode';
import { OUTGOING_V4_BEGIN } from '../../../helpers/flowrecords';
import { mapFlow, type FlowDomains } from '../../../../src/record/record';

const T = 1_714_564_800_123_456_789n; // 2024-05-01T12:00:00.123456789Z

const begin: FlowEvent = { ...OUTGOING_V4_BEGIN, tsNs: 1_000n };
const end: FlowEvent = { ...begin, type: 'end', tsNs: 250_001_000n, beginTsNs: 1_000n, closeReason: 'fin', closedBy: 'destination' };
const v6reset: FlowEvent = {
  ...end,
  family: 6,
  direction: 'incoming',
  srcAddr: 'fd00::2',
  srcPort: 50000,
  dstAddr: 'fd00:0:0:1::1',
  dstPort: 8080,
  tsNs: 2_000_001_000n,
  closeReason: 'rst',
  closedBy: 'source',
};

function readable(ev: FlowEvent, domains: FlowDomains, ns: bigint): ReadableLogRecord {
  const r = mapFlow(ev, domains, ns);
  return {
    hrTime: nsToHrTime(ns),
    hrTimeObserved: nsToHrTime(ns),
    severityNumber: SeverityNumber.INFO,
    body: r.body,
    eventName: r.eventName,
    resource: resourceFromAttributes({ 'service.name': 'flowtap' }),
    instrumentationScope: { name: 'flowtap' },
    attributes: r.attributes,
    droppedAttributesCount: 0,
  };
}

const named: FlowDomains = { src: [], dst: ['example.com', 'edge.example.net'] };

describe('console text format', () => {
  it('one aligned line per record: time, event, direction, process, flow with its name, duration, reason', () => {
    const lines = [
      TEXT_HEADER,
      recordToText(readable(begin, named, T), '2024-05-01T12:00:00.123456789Z'),
      recordToText(readable(end, named, T + 250_000_000n), '2024-05-01T12:00:00.373456789Z'),
      recordToText(readable(v6reset, { src: [], dst: [] }, T), '2024-05-01T12:00:00.123456789Z'),
    ];
    expect(lines).toEqual([
      'TIME                     EVENT DIRECTION PROCESS         FLOW                                                   DURATION  BYTES REASON',
      '2024-05-01T12:00:00.123Z begin outgoing  -               198.18.0.5:43512 → 198.19.0.34:443 (example.com)',
      '2024-05-01T12:00:00.373Z end   outgoing  -               198.18.0.5:43512 → 198.19.0.34:443 (example.com)       250.0 ms        fin by destination',
      '2024-05-01T12:00:00.123Z end   incoming  -               [fd00::2]:50000 → [fd00:0:0:1::1]:8080                   2.00 s        rst by source',
    ]);
    // the columns before REASON line up
    expect(lines[2].indexOf('fin')).toBe(lines[3].indexOf('rst'));
    expect(lines[2].indexOf('250.0 ms') + '250.0 ms'.length).toBe(lines[0].indexOf('DURATION') + 'DURATION'.length);
  });

  it('with a process and TCP counters: name/pid in PROCESS, sent/received by the watched socket in BYTES', () => {
    const process = { pid: 4242, uid: 1000, comm: 'curl', capturedAtNs: 1n, cgroupId: 7n };
    const tcp = { bytesSent: 78, bytesReceived: 4096, segsOut: 6, segsIn: 5, retransSegs: 0, srttUs: 120, minRttUs: 80 };
    const lines = [
      recordToText(readable({ ...begin, process }, named, T), '2024-05-01T12:00:00.123456789Z'),
      recordToText(readable({ ...end, process, tcp }, named, T + 250_000_000n), '2024-05-01T12:00:00.373456789Z'),
    ];
    expect(lines).toEqual([
      '2024-05-01T12:00:00.123Z begin outgoing  curl/4242       198.18.0.5:43512 → 198.19.0.34:443 (example.com)',
      '2024-05-01T12:00:00.373Z end   outgoing  curl/4242       198.18.0.5:43512 → 198.19.0.34:443 (example.com)       250.0 ms 78/4.0K fin by destination',
    ]);
    expect([0, 1023, 1024, 10 * 1024 - 1, 10 * 1024, 5 * 1024 ** 2, 3 * 1024 ** 4].map(formatBytes)).toEqual([
      '0',
      '1023',
      '1.0K',
      '10.0K',
      '10K',
      '5.0M',
      '3.0T',
    ]);
  });

  it('durations as a person reads them', () => {
    expect([0.000012, 0.0034, 0.25, 2, 59.994, 65, 3723].map(formatDuration)).toEqual([
      '12 µs',
      '3.40 ms',
      '250.0 ms',
      '2.00 s',
      '59.99 s',
      '1 m 05 s',
      '1 h 02 m',
    ]);
  });

  it('the console exporter writes the header once, then one line per record', () => {
    const chunks: string[] = [];
    const out: LineStream = { write: (c) => (chunks.push(c), true) };
    const exporter = new ConsoleJsonLogRecordExporter(out, 'text');
    const results: number[] = [];
    exporter.export([readable(begin, named, T)], (r) => results.push(r.code));
    exporter.export([readable(end, named, T), readable(end, named, T)], (r) => results.push(r.code));
    expect(results).toEqual([ExportResultCode.SUCCESS, ExportResultCode.SUCCESS]);
    const lines = chunks.join('').split('\n');
    expect(lines).toHaveLength(5); // header, 3 records, '' after the last newline
    expect(lines[0]).toBe(TEXT_HEADER);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/)[1])).toEqual(['begin', 'end', 'end']);
    expect(lines[4]).toBe('');
  });
});
