/**
 * Flow spans as OTLP protobuf: each span one ScopeSpans.spans field, written
 * into the export queue's writer; the same bytes, field for field and in the
 * same order, as @opentelemetry/otlp-transformer's ProtobufTraceSerializer
 * writes for a ReadableSpan with the same content (test/unit/export/otlp/
 * span-encoder.test.ts compares them byte for byte).
 *
 * Field numbers, from opentelemetry/proto (v1):
 *   ExportTraceServiceRequest: resource_spans=1
 *   ResourceSpans: resource=1 scope_spans=2 schema_url=3
 *   ScopeSpans: scope=1 spans=2 schema_url=3
 *   Span: trace_id=1 span_id=2 trace_state=3 parent_span_id=4 name=5 kind=6
 *         start_time_unix_nano=7 (fixed64) end_time_unix_nano=8 (fixed64)
 *         attributes=9 dropped_attributes_count=10 events=11
 *         dropped_events_count=12 links=13 dropped_links_count=14 status=15
 *         flags=16 (fixed32)
 *   Status: message=2 code=3
 *
 * The request's envelope has the logs request's field numbers at every level
 * (resource_*=1, resource=1, scope_*=2, schema_url=3, scope=1, items=2), so
 * LogsRequestFrame frames spans as well: SpansRequestFrame is that frame.
 */
import { AttributeEncoder, LogsRequestFrame, type ProtoWriter } from './proto';
import type { FlowSpan } from './span-record';

/** The ExportTraceServiceRequest around encoded `spans` fields (see above). */
export const SpansRequestFrame = LogsRequestFrame;

const tag = (field: number, wireType: number): number => (field << 3) | wireType;
const T_SCOPE_SPANS_SPANS = tag(2, 2);
const T_SPAN_TRACE_ID = tag(1, 2);
const T_SPAN_SPAN_ID = tag(2, 2);
const T_SPAN_NAME = tag(5, 2);
const T_SPAN_KIND = tag(6, 0);
const T_SPAN_START = tag(7, 1);
const T_SPAN_END = tag(8, 1);
const T_SPAN_ATTRIBUTES = tag(9, 2);
const T_STATUS_MESSAGE = tag(2, 2);
const T_STATUS_CODE = tag(3, 0);
/** dropped_attributes_count 0, dropped_events_count 0, dropped_links_count 0 (no events, no links), then the status tag. */
const DROPPED_COUNTS_STATUS = Buffer.from([tag(10, 0), 0, tag(12, 0), 0, tag(14, 0), 0, tag(15, 2)]);
/**
 * flags (field 16, fixed32: tag 0x85 0x01): W3C trace flags SAMPLED (0x01)
 * with CONTEXT_HAS_IS_REMOTE (0x100) set and IS_REMOTE clear: a root span
 * made here, not continued from elsewhere.
 */
const FLAGS = Buffer.from([0x85, 0x01, 0x01, 0x01, 0x00, 0x00]);

/** Encodes flow spans as ScopeSpans.spans fields. */
export class SpanEncoder {
  private readonly _attrs: AttributeEncoder;

  constructor(attrs = new AttributeEncoder()) {
    this._attrs = attrs;
  }

  /** One `spans` field (tag, length, Span) for `span`. */
  encode(w: ProtoWriter, span: FlowSpan): void {
    w.byte(T_SCOPE_SPANS_SPANS);
    // A flow span is 128..16383 bytes: two length bytes, moved only otherwise.
    const at = w.begin(2);
    w.byte(T_SPAN_TRACE_ID);
    w.bytes(span.traceId);
    w.byte(T_SPAN_SPAN_ID);
    w.bytes(span.spanId);
    w.byte(T_SPAN_NAME);
    w.string(span.name);
    w.byte(T_SPAN_KIND);
    w.varint(span.kind + 1); // the API's enum starts at INTERNAL 0, OTLP's at UNSPECIFIED 0
    w.byte(T_SPAN_START);
    w.fixed64(span.startNs);
    w.byte(T_SPAN_END);
    w.fixed64(span.endNs);
    this._attrs.attributes(w, span.attributes, T_SPAN_ATTRIBUTES);
    w.raw(DROPPED_COUNTS_STATUS);
    const status = w.begin();
    if (span.status.message) {
      w.byte(T_STATUS_MESSAGE);
      w.string(span.status.message);
    }
    w.byte(T_STATUS_CODE);
    w.varint(span.status.code);
    w.end(status);
    w.raw(FLAGS);
    w.end(at, 2);
  }
}
