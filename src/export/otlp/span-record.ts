/**
 * One ended flow as one span: the definition of what `--spans otlp` exports.
 * Pure: the flow event, its names, its end in wall-clock ns and the ids come
 * in; the span comes out.
 *
 *   kind        CLIENT for an outgoing flow (the watched socket connected),
 *               SERVER for an incoming one (it accepted)
 *   start, end  the flow's kernel timestamps: the end event carries its
 *               begin's (begin_ts), both converted to wall-clock ns with the
 *               same offset; an end whose begin was not seen (begin_ts 0)
 *               starts where it ends
 *   name        `<direction> <server>:<port>`, e.g. `outgoing example.com:443`:
 *               the server's name when DNS gave one, else its address; never
 *               the client's ephemeral port, so trace stores can group by it
 *   attributes  the flow record's own (mapFlow), unchanged
 *   status      ERROR when the flow was reset (close reason rst), else UNSET
 *   ids         a new trace of one root span per flow
 *
 * A flow begin gives no span: a span is written once, complete, so a
 * long-lived connection shows up only when it ends.
 */
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import type { FlowEvent } from '../../kernel/decode';
import { hostPort, mapFlow, type FlowDomains } from '../../record/record';
import { FLOW_CLOSE_REASON_VALUE_RST, FLOW_DIRECTION_VALUE_OUTGOING } from '../../record/semconv';

/** Span.status as the API types it (code: UNSET 0, OK 1, ERROR 2, the same numbers as OTLP's). */
export interface FlowSpanStatus {
  code: SpanStatusCode;
  message?: string;
}

export interface FlowSpan {
  /** 16 bytes. */
  traceId: Uint8Array;
  /** 8 bytes. */
  spanId: Uint8Array;
  name: string;
  /** As the API types it (SERVER 1, CLIENT 2); OTLP's enum is one more. */
  kind: SpanKind.CLIENT | SpanKind.SERVER;
  /** Wall-clock ns since the epoch. */
  startNs: bigint;
  endNs: bigint;
  attributes: Attributes;
  status: FlowSpanStatus;
}

/** Where a span's ids come from (random in production: see span-sink.ts). */
export interface SpanIds {
  /** A new 16-byte trace id and 8-byte span id, never all zeros. */
  next(): { traceId: Uint8Array; spanId: Uint8Array };
}

/** The status message of a reset flow. */
export const SPAN_STATUS_MESSAGE_RESET = 'connection reset';

/** What an ended flow's status is: the one place that decides which flows are errors. */
export function flowSpanStatus(event: FlowEvent): FlowSpanStatus {
  if (event.closeReason === FLOW_CLOSE_REASON_VALUE_RST) return { code: SpanStatusCode.ERROR, message: SPAN_STATUS_MESSAGE_RESET };
  return { code: SpanStatusCode.UNSET };
}

/**
 * The span of a flow end event whose time, in wall-clock ns, is `endNs`;
 * undefined for a begin event.
 */
export function flowSpan(event: FlowEvent, domains: FlowDomains, endNs: bigint, ids: SpanIds): FlowSpan | undefined {
  if (event.type !== 'end') return undefined;
  const begin = event.beginTsNs;
  const durationNs = begin !== undefined && begin !== 0n && event.tsNs >= begin ? event.tsNs - begin : 0n;
  const server = domains.dst.length > 0 ? domains.dst[0] : event.dstAddr;
  const { traceId, spanId } = ids.next();
  return {
    traceId,
    spanId,
    name: `${event.direction} ${hostPort(server, event.dstPort)}`,
    kind: event.direction === FLOW_DIRECTION_VALUE_OUTGOING ? SpanKind.CLIENT : SpanKind.SERVER,
    startNs: endNs - durationNs,
    endNs,
    attributes: mapFlow(event, domains, endNs).attributes,
    status: flowSpanStatus(event),
  };
}
