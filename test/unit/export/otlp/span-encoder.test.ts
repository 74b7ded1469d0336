import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { nsToHrTime } from '../../../../src/kernel/clock';
import { ProtoWriter } from '../../../../src/export/otlp/proto';
import { SpanEncoder, SpansRequestFrame } from '../../../../src/export/otlp/span-encoder';
import { flowSpan, SPAN_STATUS_MESSAGE_RESET, type FlowSpan, type SpanIds } from '../../../../src/export/otlp/span-record';
import { OtlpSpanExport, randomSpanIds } from '../../../../src/export/otlp/span-sink';
import { mapFlow } from '../../../../src/record/record';
import { SCOPE, variedFlowInputs } from '../../../helpers/flowrecords';
import type { Workload } from '../../../../src/enrich/container';
import type { BatchSender } from '../../../../src/export/otlp/queue';
import { workloadResource } from '../../../../src/record/resource';

/** Ids 1, 2, 3, ... in the last bytes: distinct and reproducible. */
function countingIds(): SpanIds {
  let n = 0;
  return {
    next: () => {
      n++;
      const traceId = Buffer.alloc(16);
      traceId.writeUInt32BE(n, 12);
      const spanId = Buffer.alloc(8);
      spanId.writeUInt32BE(0x1000 + n, 4);
      return { traceId, spanId };
    },
  };
}

/** The spans of the varied flow inputs' end events. */
function variedSpans(): FlowSpan[] {
  const ids = countingIds();
  return variedFlowInputs()
    .map((f) => flowSpan(f.event, f.domains, f.timestampNs, ids))
    .filter((s): s is FlowSpan => s !== undefined);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** The SDK's view of a span: what its own tracer would hand an exporter. */
function readable(span: FlowSpan, resource: Resource): ReadableSpan {
  const start = nsToHrTime(span.startNs);
  const end = nsToHrTime(span.endNs);
  const context = { traceId: hex(span.traceId), spanId: hex(span.spanId), traceFlags: TraceFlags.SAMPLED };
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => context,
    parentSpanContext: undefined,
    startTime: start,
    endTime: end,
    duration: nsToHrTime(span.endNs - span.startNs),
    status: span.status,
    attributes: span.attributes,
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationScope: SCOPE,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

const RESOURCE = resourceFromAttributes({ 'service.name': 'flowtap', 'host.name': 'vm' });

function ourBytes(spans: FlowSpan[], resource: Resource = RESOURCE): Buffer {
  const frame = new SpansRequestFrame(resource, SCOPE);
  const w = new ProtoWriter(64);
  frame.open(w);
  frame.select(w, undefined);
  const enc = new SpanEncoder();
  for (const s of spans) enc.encode(w, s);
  return Buffer.from(frame.frame(w));
}

function sdkBytes(spans: FlowSpan[], resource: Resource = RESOURCE): Buffer {
  return Buffer.from(ProtobufTraceSerializer.serializeRequest(spans.map((s) => readable(s, resource)))!);
}

describe('flow spans', () => {
  it('are one per flow end: kind from the direction, times from the kernel timestamps, the record attributes, error on reset', () => {
    const inputs = variedFlowInputs();
    const ids = countingIds();
    const spans = inputs.map((f) => flowSpan(f.event, f.domains, f.timestampNs, ids));
    // variedFlowInputs: three end events (indexes 3, 4, 9), the rest begins
    expect(spans.map((s) => s !== undefined)).toEqual(inputs.map((f) => f.event.type === 'end'));
    expect(spans.filter((s) => s !== undefined)).toHaveLength(3);

    const fin = spans[3]!;
    const finIn = inputs[3];
    expect(fin.kind).toBe(SpanKind.CLIENT); // outgoing
    expect(fin.endNs).toBe(finIn.timestampNs);
    expect(fin.endNs - fin.startNs).toBe(250_000_000n); // tsNs 250_000_001 - beginTsNs 1
    expect(fin.name).toBe('outgoing example.com:443');
    expect(fin.status).toEqual({ code: SpanStatusCode.UNSET });
    expect(fin.attributes).toEqual(mapFlow(finIn.event, finIn.domains, finIn.timestampNs).attributes);

    const rst = spans[4]!;
    expect(rst.kind).toBe(SpanKind.SERVER); // incoming
    expect(rst.endNs - rst.startNs).toBe(2_000_000_000n);
    expect(rst.name).toBe('incoming [fd00:0:0:1::1]:8080');
    expect(rst.status).toEqual({ code: SpanStatusCode.ERROR, message: SPAN_STATUS_MESSAGE_RESET });

    // begin not seen (begin_ts 0): a span that starts where it ends
    const unseen = spans[9]!;
    expect(unseen.startNs).toBe(unseen.endNs);
    expect(unseen.attributes['container.id']).toBeUndefined(); // the workload is the Resource's
  });

  it('encode, byte for byte, as the SDK serializer writes the same spans', () => {
    const spans = variedSpans();
    expect(ourBytes(spans)).toEqual(sdkBytes(spans));
    for (const s of spans) expect(ourBytes([s])).toEqual(sdkBytes([s]));
  });

  it('match with many names (a span over 1 KiB), a tiny span (1-byte length) and a resource with a schema URL', () => {
    const [base] = variedSpans();
    const many = Array.from({ length: 40 }, (_, i) => `cname-${i}.cdn.example.net`);
    const big: FlowSpan = { ...base, attributes: { ...base.attributes, 'flowtap.test.names': many } };
    const tiny: FlowSpan = { ...base, name: 'x', attributes: { k: 1 }, status: { code: SpanStatusCode.UNSET } };
    const resource = resourceFromAttributes({ 'service.name': 'x' }, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' });
    expect(ourBytes([big, tiny], resource).length).toBeGreaterThan(1024);
    expect(ourBytes([big, tiny], resource)).toEqual(sdkBytes([big, tiny], resource));
    expect(ourBytes([tiny])).toEqual(sdkBytes([tiny]));
  });

  it("go each under its workload's Resource, a ResourceSpans per run of one workload, byte for byte the SDK per run", async () => {
    const sent: Buffer[] = [];
    const sender: BatchSender = {
      send: (request) => (sent.push(Buffer.from(request)), Promise.resolve({ ok: true })),
      shutdown: () => Promise.resolve(),
    };
    const a: Workload = { containerId: 'a'.repeat(64), podUid: '0a1b2c3d-0000-1111-2222-333344445555' };
    const b: Workload = { podUid: '9f8e7d6c-5b4a-3928-1706-a5b4c3d2e1f0' };
    const ends = variedFlowInputs().filter((f) => f.event.type === 'end');
    const workloads = [a, a, b];
    const ids = countingIds();
    const exp = new OtlpSpanExport({ resource: RESOURCE, scope: SCOPE, sender, ids, maxQueueRecords: 100, maxBatchRecords: 100, scheduledDelayMillis: 60_000 });
    ends.forEach((f, i) => exp.emitFlow(f.event, f.domains, f.timestampNs, workloads[i]));
    await exp.forceFlush();
    const again = countingIds();
    const spans = ends.map((f) => flowSpan(f.event, f.domains, f.timestampNs, again)!);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toEqual(
      Buffer.concat([sdkBytes(spans.slice(0, 2), workloadResource(RESOURCE, a)), sdkBytes(spans.slice(2), workloadResource(RESOURCE, b))]),
    );
  });

  it('get random ids, never all zeros, each its own copy', () => {
    let draws = 0;
    // First draw all zeros except one trace id byte of the second span.
    const fill = (buf: Uint8Array): void => {
      draws++;
      if (draws === 1) {
        buf.fill(0);
        buf[24 * 2 + 3] = 7; // pool slot 2: the first non-zero one
      } else {
        for (let i = 0; i < buf.length; i++) buf[i] = (i * 31 + draws) & 0xff || 1;
      }
    };
    const ids = randomSpanIds(fill);
    const a = ids.next();
    expect(a.traceId).toHaveLength(16);
    expect(a.spanId).toHaveLength(8);
    expect(a.traceId[3]).toBe(7);
    expect(a.spanId.some((b) => b !== 0)).toBe(true);
    const copy = Buffer.from(a.traceId);
    for (let i = 0; i < 600; i++) ids.next(); // refills the pool
    expect(Buffer.from(a.traceId)).toEqual(copy);
    const real = randomSpanIds();
    const seen = new Set(Array.from({ length: 1000 }, () => hex(real.next().traceId)));
    expect(seen.size).toBe(1000);
  });
});
