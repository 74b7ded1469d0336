/**
 * Stage 3 of the data path: one flow event (+ what the pipeline knows about
 * it: names, resolvers, process, cgroup) → one log record, as schema.ts declares it. Pure.
 *
 * The SDK and console paths build this record; the OTLP path writes the
 * same record's protobuf straight from the event (src/export/otlp/
 * flow-encoder.ts), from the same schema.
 */
import { SeverityNumber, type AnyValue, type AttributeValue, type Attributes } from '@opentelemetry/api';
import type { FlowEvent } from '../kernel/decode';
import { ATTRIBUTES_OF, EVENTS, type FlowContext } from './schema';

export type { FlowContext, FlowDomains } from './schema';

export interface FlowRecord {
  /** EVENTS[event.type].name */
  eventName: string;
  /** Wall-clock ns since the epoch when the packet passed the hook. */
  timestampNs: bigint;
  /** INFO (9); no SeverityText is written. */
  severityNumber: SeverityNumber;
  body: AnyValue;
  attributes: Attributes;
}

/** SeverityNumber of every flow record. */
export const FLOW_SEVERITY = SeverityNumber.INFO;

/**
 * The log record of one flow event. `timestampNs` is the event's time already
 * converted to wall-clock ns (see clock.ts): the mapping stays free of clocks.
 * The local socket's workload (container, pod) is not the record's: it is
 * the Resource the record goes under (src/record/resource.ts).
 */
export function mapFlow(event: FlowEvent, context: FlowContext, timestampNs: bigint): FlowRecord {
  const attributes: Attributes = {};
  for (const a of ATTRIBUTES_OF[event.type]) {
    const value = a.source(event, context);
    if (value !== undefined) attributes[a.key] = value as AttributeValue;
  }
  return {
    eventName: EVENTS[event.type].name,
    timestampNs,
    severityNumber: FLOW_SEVERITY,
    body: flowBody(event, context.dst[0]),
    attributes,
  };
}

/**
 * The short human line of a flow, e.g.
 * `outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443 (example.com)`;
 * IPv6 addresses in brackets, the name only when one is known.
 */
export function flowBody(event: FlowEvent, dstDomain: string | undefined): string {
  const name = dstDomain === undefined ? '' : ` (${dstDomain})`;
  return `${event.direction} tcp ${hostPort(event.srcAddr, event.srcPort)} -> ${hostPort(event.dstAddr, event.dstPort)}${name}`;
}

/** host:port, with IPv6 hosts in brackets (RFC 5952 section 6). */
export function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}
