/**
 * Stage 3 of the data path: one flow event (+ the names known for its
 * addresses) → one log record, exactly as DESIGN.md's "Event record contract"
 * describes it. Pure.
 *
 * This is the definition of the record. The OTLP path does not build it: it
 * writes the record's protobuf straight from the event
 * (src/export/otlp/flow-encoder.ts), held to these bytes by its tests. A change here
 * goes there too.
 */
import { SeverityNumber, type AnyValue, type Attributes } from '@opentelemetry/api';
import type { FlowEvent } from '../kernel/decode';
import {
  ATTR_CONTAINER_ID,
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_DESTINATION_ADDRESS,
  ATTR_DESTINATION_PORT,
  ATTR_NETWORK_LOCAL_ADDRESS,
  ATTR_NETWORK_LOCAL_PORT,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_TRANSPORT,
  ATTR_NETWORK_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_SOURCE_ADDRESS,
  ATTR_SOURCE_PORT,
  ATTR_TCP_FLOW_CLOSE_REASON,
  ATTR_TCP_FLOW_CLOSED_BY,
  ATTR_TCP_FLOW_DESTINATION_DOMAINS,
  ATTR_TCP_FLOW_DIRECTION,
  ATTR_TCP_FLOW_DURATION,
  ATTR_TCP_FLOW_SOURCE_DOMAINS,
  EVENT_TCP_FLOW_BEGIN,
  EVENT_TCP_FLOW_END,
  NETWORK_TRANSPORT_VALUE_TCP,
  NETWORK_TYPE_VALUE_IPV4,
  NETWORK_TYPE_VALUE_IPV6,
  TCP_FLOW_DIRECTION_VALUE_OUTGOING,
} from './semconv';

export interface FlowDomains {
  /** Names for the source (initiator) address. */
  src: readonly string[];
  /** Names for the destination (responder) address; the first is the one asked. */
  dst: readonly string[];
}

export interface FlowRecord {
  eventName: typeof EVENT_TCP_FLOW_BEGIN | typeof EVENT_TCP_FLOW_END;
  /** Wall-clock ns since the epoch when the packet passed the hook. */
  timestampNs: bigint;
  /** INFO (9); no SeverityText is written. */
  severityNumber: SeverityNumber;
  body: AnyValue;
  attributes: Attributes;
}

/**
 * The log record of one flow event. `timestampNs` is the event's time already
 * converted to wall-clock ns (see clock.ts): the mapping stays free of clocks.
 */
/** `containerId`: the local socket's container, when its cgroup path names one (src/enrich/container.ts). */
export function mapFlow(event: FlowEvent, domains: FlowDomains, timestampNs: bigint, containerId?: string): FlowRecord {
  const outgoing = event.direction === TCP_FLOW_DIRECTION_VALUE_OUTGOING;
  const serverAddress = domains.dst.length > 0 ? domains.dst[0] : event.dstAddr;
  const attributes: Attributes = {
    [ATTR_TCP_FLOW_DIRECTION]: event.direction,
    [ATTR_SOURCE_ADDRESS]: event.srcAddr,
    [ATTR_SOURCE_PORT]: event.srcPort,
    [ATTR_DESTINATION_ADDRESS]: event.dstAddr,
    [ATTR_DESTINATION_PORT]: event.dstPort,
    [ATTR_TCP_FLOW_SOURCE_DOMAINS]: domains.src,
    [ATTR_TCP_FLOW_DESTINATION_DOMAINS]: domains.dst,
    [ATTR_CLIENT_ADDRESS]: event.srcAddr,
    [ATTR_CLIENT_PORT]: event.srcPort,
    [ATTR_SERVER_ADDRESS]: serverAddress,
    [ATTR_SERVER_PORT]: event.dstPort,
    [ATTR_NETWORK_TRANSPORT]: NETWORK_TRANSPORT_VALUE_TCP,
    [ATTR_NETWORK_TYPE]: event.family === 4 ? NETWORK_TYPE_VALUE_IPV4 : NETWORK_TYPE_VALUE_IPV6,
    // The monitored socket is the initiator of an outgoing flow and the
    // responder of an incoming one.
    [ATTR_NETWORK_LOCAL_ADDRESS]: outgoing ? event.srcAddr : event.dstAddr,
    [ATTR_NETWORK_LOCAL_PORT]: outgoing ? event.srcPort : event.dstPort,
    [ATTR_NETWORK_PEER_ADDRESS]: outgoing ? event.dstAddr : event.srcAddr,
    [ATTR_NETWORK_PEER_PORT]: outgoing ? event.dstPort : event.srcPort,
  };
  if (containerId !== undefined) attributes[ATTR_CONTAINER_ID] = containerId;
  if (event.type === 'end') {
    // A begin_ts_ns of 0 means the begin was not seen: no duration then.
    if (event.beginTsNs !== undefined && event.beginTsNs !== 0n && event.tsNs >= event.beginTsNs) {
      attributes[ATTR_TCP_FLOW_DURATION] = Number(event.tsNs - event.beginTsNs) / 1e9;
    }
    if (event.closeReason !== undefined) attributes[ATTR_TCP_FLOW_CLOSE_REASON] = event.closeReason;
    if (event.closedBy !== undefined) attributes[ATTR_TCP_FLOW_CLOSED_BY] = event.closedBy;
  }
  return {
    eventName: event.type === 'begin' ? EVENT_TCP_FLOW_BEGIN : EVENT_TCP_FLOW_END,
    timestampNs,
    severityNumber: SeverityNumber.INFO,
    body: flowBody(event, domains.dst[0]),
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
