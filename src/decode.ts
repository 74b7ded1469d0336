/**
 * Stage 1 of the data path: one batch of ring-buffer records (as the addon
 * hands it over) → events, in ring-buffer order. Pure: bytes in, data out.
 * The layout is bpf/flowtap.h, via ./layout.
 */
import { formatIPv4, formatIPv6, isIPv4Mapped } from './address';
import * as L from './layout';
import {
  TCP_FLOW_CLOSE_REASON_VALUE_FIN,
  TCP_FLOW_CLOSE_REASON_VALUE_RST,
  TCP_FLOW_CLOSED_BY_VALUE_DESTINATION,
  TCP_FLOW_CLOSED_BY_VALUE_SOURCE,
  TCP_FLOW_DIRECTION_VALUE_INCOMING,
  TCP_FLOW_DIRECTION_VALUE_OUTGOING,
} from './semconv';

export type Direction = typeof TCP_FLOW_DIRECTION_VALUE_INCOMING | typeof TCP_FLOW_DIRECTION_VALUE_OUTGOING;
export type CloseReason = typeof TCP_FLOW_CLOSE_REASON_VALUE_FIN | typeof TCP_FLOW_CLOSE_REASON_VALUE_RST;
export type ClosedBy = typeof TCP_FLOW_CLOSED_BY_VALUE_SOURCE | typeof TCP_FLOW_CLOSED_BY_VALUE_DESTINATION;

/** A flow start or end. Source is always the initiator, destination the responder. */
export interface FlowEvent {
  type: 'begin' | 'end';
  /** Kernel boot-time ns when the packet passed the hook. */
  tsNs: bigint;
  /** 4 also for an IPv4-mapped IPv6 flow (its addresses are written as IPv4). */
  family: 4 | 6;
  direction: Direction;
  srcAddr: string;
  srcPort: number;
  dstAddr: string;
  dstPort: number;
  /** cgroup v2 id of the local socket, 0n if unknown. */
  cgroupId: bigint;
  /** 'end' only. */
  closeReason: CloseReason | undefined;
  /** 'end' only. */
  closedBy: ClosedBy | undefined;
  /** 'end' only: boot-time ns of the flow's begin, 0n if unknown. */
  beginTsNs: bigint | undefined;
}

/** One DNS message (a response) as the workload saw it. */
export interface DnsEvent {
  type: 'dns';
  tsNs: bigint;
  family: 4 | 6;
  cgroupId: bigint;
  /** Length of the whole message on the wire; data may be shorter (truncated). */
  msgLen: number;
  truncated: boolean;
  tcp: boolean;
  egress: boolean;
  /**
   * The copied message bytes: a view into the batch Buffer, not a copy. It
   * keeps the whole batch alive while referenced: copy what must outlive it.
   */
  data: Buffer;
}

export type DecodedEvent = FlowEvent | DnsEvent;

export interface DecodeResult {
  /** In ring-buffer order: a DNS answer comes before a later flow that uses it. */
  events: DecodedEvent[];
  /**
   * Records that could not be decoded: unknown type or version, bad field
   * values, a size too small for the type. A header whose size is impossible
   * ends the walk (nothing after it can be found) and counts as one.
   */
  errors: number;
}

/** Decodes every record of `buf`. Never throws on bad input; counts it instead. */
export function decodeBatch(buf: Buffer): DecodeResult {
  const events: DecodedEvent[] = [];
  const { errors } = forEachEvent(buf, (ev) => events.push(ev));
  return { events, errors };
}

/**
 * Decodes the records of `buf` one at a time, in order, handing each to
 * `visit` before reading the next: the pipeline keeps one event alive at a
 * time, not a whole batch (fewer objects survive a young-generation GC).
 * Returns how many events were visited and how many records could not be
 * decoded, as decodeBatch counts them. Never throws on bad input; an
 * exception from `visit` propagates.
 */
export function forEachEvent(buf: Buffer, visit: (event: DecodedEvent) => void): { events: number; errors: number } {
  let events = 0;
  let errors = 0;
  let off = 0;
  while (off < buf.length) {
    const remaining = buf.length - off;
    if (remaining < L.HDR_SIZE) {
      errors++;
      break;
    }
    const size = buf.readUInt16LE(off + L.HDR_SIZE_FIELD);
    if (size < L.HDR_SIZE || size > remaining) {
      errors++;
      break;
    }
    const ev = buf[off + L.HDR_VERSION] === L.ABI_VERSION ? decodeRecord(buf, off, size) : undefined;
    off += size;
    if (ev === undefined) {
      errors++;
    } else {
      events++;
      visit(ev);
    }
  }
  return { events, errors };
}

/** One record of `size` bytes at `off`, or undefined if it is not valid. */
function decodeRecord(buf: Buffer, off: number, size: number): DecodedEvent | undefined {
  switch (buf[off + L.HDR_TYPE]) {
    case L.EV_FLOW_BEGIN:
      return decodeFlow(buf, off, size, 'begin');
    case L.EV_FLOW_END:
      return decodeFlow(buf, off, size, 'end');
    case L.EV_DNS:
      return decodeDns(buf, off, size);
    default:
      return undefined;
  }
}

function decodeFlow(buf: Buffer, off: number, size: number, type: 'begin' | 'end'): FlowEvent | undefined {
  if (size < L.FLOW_SIZE) return undefined;
  const rawFamily = buf[off + L.FLOW_FAMILY];
  const direction = directionOf(buf[off + L.FLOW_DIRECTION]);
  if ((rawFamily !== 4 && rawFamily !== 6) || direction === undefined) return undefined;

  let closeReason: CloseReason | undefined;
  let closedBy: ClosedBy | undefined;
  let beginTsNs: bigint | undefined;
  if (type === 'end') {
    closeReason = closeReasonOf(buf[off + L.FLOW_CLOSE_REASON]);
    closedBy = closedByOf(buf[off + L.FLOW_CLOSED_BY]);
    if (closeReason === undefined || closedBy === undefined) return undefined;
    beginTsNs = buf.readBigUInt64LE(off + L.FLOW_BEGIN_TS_NS);
  }

  const s = off + L.FLOW_SADDR;
  const d = off + L.FLOW_DADDR;
  let family: 4 | 6 = rawFamily;
  let srcAddr: string;
  let dstAddr: string;
  if (rawFamily === 4) {
    srcAddr = formatIPv4(buf, s);
    dstAddr = formatIPv4(buf, d);
  } else {
    // An IPv4-mapped address is never written: it is an IPv4 flow.
    const sMapped = isIPv4Mapped(buf, s);
    const dMapped = isIPv4Mapped(buf, d);
    srcAddr = sMapped ? formatIPv4(buf, s + 12) : formatIPv6(buf, s);
    dstAddr = dMapped ? formatIPv4(buf, d + 12) : formatIPv6(buf, d);
    if (sMapped && dMapped) family = 4;
  }

  return {
    type,
    tsNs: buf.readBigUInt64LE(off + L.HDR_TS_NS),
    family,
    direction,
    srcAddr,
    srcPort: buf.readUInt16LE(off + L.FLOW_SPORT),
    dstAddr,
    dstPort: buf.readUInt16LE(off + L.FLOW_DPORT),
    cgroupId: buf.readBigUInt64LE(off + L.FLOW_CGROUP_ID),
    closeReason,
    closedBy,
    beginTsNs,
  };
}

function decodeDns(buf: Buffer, off: number, size: number): DnsEvent | undefined {
  if (size < L.DNS_DATA) return undefined;
  const len = buf.readUInt16LE(off + L.DNS_LEN);
  const family = buf[off + L.DNS_FAMILY];
  if (len > size - L.DNS_DATA || len > L.DNS_MAX || (family !== 4 && family !== 6)) return undefined;
  const flags = buf[off + L.DNS_FLAGS];
  return {
    type: 'dns',
    tsNs: buf.readBigUInt64LE(off + L.HDR_TS_NS),
    family,
    cgroupId: buf.readBigUInt64LE(off + L.DNS_CGROUP_ID),
    msgLen: buf.readUInt16LE(off + L.DNS_MSG_LEN),
    truncated: (flags & L.DNS_FLAG_TRUNCATED) !== 0,
    tcp: (flags & L.DNS_FLAG_TCP) !== 0,
    egress: (flags & L.DNS_FLAG_EGRESS) !== 0,
    data: buf.subarray(off + L.DNS_DATA, off + L.DNS_DATA + len),
  };
}

function directionOf(v: number): Direction | undefined {
  if (v === L.DIR_OUTGOING) return TCP_FLOW_DIRECTION_VALUE_OUTGOING;
  if (v === L.DIR_INCOMING) return TCP_FLOW_DIRECTION_VALUE_INCOMING;
  return undefined;
}

function closeReasonOf(v: number): CloseReason | undefined {
  if (v === L.CLOSE_FIN) return TCP_FLOW_CLOSE_REASON_VALUE_FIN;
  if (v === L.CLOSE_RST) return TCP_FLOW_CLOSE_REASON_VALUE_RST;
  return undefined;
}

function closedByOf(v: number): ClosedBy | undefined {
  if (v === L.CLOSED_BY_SOURCE) return TCP_FLOW_CLOSED_BY_VALUE_SOURCE;
  if (v === L.CLOSED_BY_DESTINATION) return TCP_FLOW_CLOSED_BY_VALUE_DESTINATION;
  return undefined;
}
