/**
 * Flow records that exercise the encoders: both families and directions,
 * begin and end (a fractional and a whole duration), no names, several names,
 * a long name (multi-byte protobuf lengths), a non-ASCII name, many names
 * (a record over 1 KiB), an end without its begin (no duration); the last
 * ones of two workloads (a container in a pod, a pod alone), each in one run. The records are made by the real mapping (src/record/record.ts).
 */
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import type { Workload } from '../../src/enrich/container';
import type { FlowEvent } from '../../src/kernel/decode';
import { LoggerRecordExport } from '../../src/export/logger-sink';
import { mapFlow, type FlowDomains, type FlowRecord } from '../../src/record/record';

const BASE_NS = 1_795_836_314_094_503_983n;

/** An outgoing IPv4 begin, no optional parts: the base the other flow fixtures vary. */
export const OUTGOING_V4_BEGIN: FlowEvent = {
  type: 'begin',
  tsNs: 0n,
  family: 4,
  direction: 'outgoing',
  srcAddr: '198.18.0.5',
  srcPort: 43512,
  dstAddr: '198.19.0.34',
  dstPort: 443,
  cgroupId: 7n,
  closeReason: undefined,
  closedBy: undefined,
  beginTsNs: undefined,
};

const v6: FlowEvent = { ...OUTGOING_V4_BEGIN, family: 6, direction: 'incoming', srcAddr: 'fd00::2', srcPort: 50000, dstAddr: 'fd00:0:0:1::1', dstPort: 8080 };

/** What the pipeline hands a record sink for one flow (RecordSink.emitFlow, before observedNs). */
export interface FlowInput {
  event: FlowEvent;
  domains: FlowDomains;
  timestampNs: bigint;
  workload: Workload | undefined;
}

const CONTAINER_ID = 'c'.repeat(8) + '0123456789abcdef'.repeat(3) + 'f'.repeat(8);
export const WORKLOAD_CONTAINER: Workload = { containerId: CONTAINER_ID, podUid: '0a1b2c3d-0000-1111-2222-333344445555' };
export const WORKLOAD_POD: Workload = { podUid: '9f8e7d6c-5b4a-3928-1706-a5b4c3d2e1f0' };

export function variedFlowInputs(): FlowInput[] {
  const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.example`;
  const many = Array.from({ length: 24 }, (_, i) => `cname-${i}.cdn.example.net`);
  const cases: [FlowEvent, FlowDomains, Workload?][] = [
    [OUTGOING_V4_BEGIN, { src: [], dst: [] }],
    [OUTGOING_V4_BEGIN, { src: [], dst: ['www.example.com', 'example.com.cdn.example.net'] }],
    [v6, { src: ['client.example'], dst: ['server.example'] }],
    [
      { ...OUTGOING_V4_BEGIN, type: 'end', tsNs: 250_000_001n, beginTsNs: 1n, closeReason: 'fin', closedBy: 'source' },
      { src: [], dst: ['example.com'] },
    ],
    [
      { ...v6, type: 'end', tsNs: 2_000_000_001n, beginTsNs: 1n, closeReason: 'rst', closedBy: 'destination' },
      { src: [], dst: [] },
    ],
    [OUTGOING_V4_BEGIN, { src: [], dst: [long] }],
    [v6, { src: [], dst: ['bücher.example', 'ünïcødé.test'] }],
    [OUTGOING_V4_BEGIN, { src: many.slice(0, 3), dst: many }],
    [OUTGOING_V4_BEGIN, { src: [], dst: ['api.example'] }, WORKLOAD_CONTAINER],
    [{ ...v6, type: 'end', tsNs: 3_000_000_000n, beginTsNs: 0n, closeReason: 'fin', closedBy: 'destination' }, { src: [], dst: [] }, { ...WORKLOAD_CONTAINER }],
    [v6, { src: [], dst: ['pod.example'] }, WORKLOAD_POD],
  ];
  return cases.map(([ev, domains, workload], i) => ({
    event: { ...ev, srcPort: ev.srcPort + i },
    domains,
    timestampNs: BASE_NS + BigInt(i) * 1_000_003n + ev.tsNs,
    workload,
  }));
}

export function variedFlowRecords(): FlowRecord[] {
  return variedFlowInputs().map((f) => mapFlow(f.event, f.domains, f.timestampNs));
}

/** A wall-clock ns observed time after every record above. */
export const OBSERVED_NS = BASE_NS + 60_000_000_000n;

export const SCOPE = { name: 'flowtap', version: '0.1.0' };

/**
 * What the stock SDK path writes for `records` (FlowRecords, or flow inputs
 * mapped by mapFlow): Logger.emit → ReadableLogRecord → ProtobufLogsSerializer.
 */
export function sdkBytes(
  records: (FlowRecord | FlowInput)[],
  resource: Resource = resourceFromAttributes({ 'service.name': 'flowtap', 'host.name': 'vm' }),
): Buffer {
  const memory = new InMemoryLogRecordExporter();
  const sink = new LoggerRecordExport({
    providerFor: (r) => new LoggerProvider({ resource: r, processors: [new SimpleLogRecordProcessor({ exporter: memory })] }),
    resource,
    scope: SCOPE,
  });
  for (const r of records) {
    if ('event' in r) sink.emitFlow(r.event, r.domains, r.timestampNs, r.workload, OBSERVED_NS);
    else sink.emit(r, OBSERVED_NS);
  }
  return Buffer.from(ProtobufLogsSerializer.serializeRequest(memory.getFinishedLogRecords())!);
}
