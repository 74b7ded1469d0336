/**
 * Stage 1 of the data path: one batch of ring-buffer records (as the addon
 * hands it over) → events, in ring-buffer order. Pure: bytes in, data out.
 * The layout is bpf/flowtap.h, via ./layout.
 */
import { formatIPv4, formatIPv6, isIPv4Mapped } from './address';
import * as L from './layout';
import {
  FLOW_ATTEMPT_REASON_VALUE_ABANDONED,
  FLOW_ATTEMPT_REASON_VALUE_REFUSED,
  FLOW_ATTEMPT_REASON_VALUE_TIMED_OUT,
  FLOW_ATTEMPT_REASON_VALUE_UNREACHABLE,
  FLOW_CLOSE_REASON_VALUE_FIN,
  FLOW_CLOSE_REASON_VALUE_RST,
  FLOW_CLOSED_BY_VALUE_DESTINATION,
  FLOW_CLOSED_BY_VALUE_SOURCE,
  FLOW_DIRECTION_VALUE_INCOMING,
  FLOW_DIRECTION_VALUE_OUTGOING,
} from '../record/semconv';

export type Direction = typeof FLOW_DIRECTION_VALUE_INCOMING | typeof FLOW_DIRECTION_VALUE_OUTGOING;
export type CloseReason = typeof FLOW_CLOSE_REASON_VALUE_FIN | typeof FLOW_CLOSE_REASON_VALUE_RST;
export type AttemptReason =
  | typeof FLOW_ATTEMPT_REASON_VALUE_REFUSED
  | typeof FLOW_ATTEMPT_REASON_VALUE_UNREACHABLE
  | typeof FLOW_ATTEMPT_REASON_VALUE_TIMED_OUT
  | typeof FLOW_ATTEMPT_REASON_VALUE_ABANDONED;
export type ClosedBy = typeof FLOW_CLOSED_BY_VALUE_SOURCE | typeof FLOW_CLOSED_BY_VALUE_DESTINATION;

/**
 * The process a flow's local socket belongs to, captured in that process's
 * own context: for an outgoing flow the one that called connect(), for an
 * incoming one the one that bound the listener that accepted it.
 */
export interface FlowProcess {
  /** Thread-group id (the pid) in the initial pid namespace: the host's, not a container's. */
  pid: number;
  /** Real user id at the capture, in the initial user namespace. */
  uid: number;
  /**
   * The calling thread's name (comm, at most 15 bytes) at the capture, not
   * changed by a later exec(); undefined where the kernel does not let
   * flowtap read it (cgroup programs need CAP_PERFMON for it).
   */
  comm?: string;
  /** Kernel boot-time ns of the capture: a process that started later cannot be this one (a reused pid). */
  capturedAtNs: bigint;
  /** cgroup v2 id of the socket (as FlowEvent.cgroupId). */
  cgroupId: bigint;
}

/**
 * The TCP handshake. Outgoing: the first SYN leaving → the SYN-ACK arriving,
 * and the SYNs sent. Incoming (on the end only): the first SYN-ACK leaving →
 * the handshake's ACK arriving, and the SYN-ACKs sent.
 */
export interface FlowHandshake {
  durationNs: bigint;
  synCount: number;
}

/**
 * The local socket's TCP counters when the flow's first FIN or RST passed the
 * hook, that segment included; nothing after it (data after a half-close, the
 * other side's FIN, the last ACKs) is in them.
 */
export interface FlowTcpStats {
  /** Payload bytes the local socket sent. */
  bytesSent: number;
  /** Payload bytes it received in order (for a FIN it received: up to that FIN). */
  bytesReceived: number;
  segsOut: number;
  segsIn: number;
  /** Segments retransmitted (tcp_sock total_retrans). */
  retransSegs: number;
  /** Smoothed RTT, µs. */
  srttUs: number;
  /** Minimum RTT seen, µs. */
  minRttUs: number;
}

/**
 * A flow start or end, or a failed connection attempt (an outgoing connect
 * that left SYN_SENT for CLOSE: no begin, no end). Source is always the
 * initiator, destination the responder.
 */
export interface FlowEvent {
  type: 'begin' | 'end' | 'attempt';
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
  /** 'attempt' only: why it failed. */
  attemptReason?: AttemptReason;
  /** 'end' only: boot-time ns of the flow's begin, 0n if unknown. */
  beginTsNs: bigint | undefined;
  /** Drawn at random by the kernel at the begin: the same on a flow's begin and end. */
  flowId?: bigint;
  /**
   * The local socket's cookie (SO_COOKIE; unique while the host runs), 0n
   * when unknown: on an incoming flow's begin, whose socket the handshake's
   * ACK creates later (its end has it).
   */
  cookie?: bigint;
  /** undefined when no process was captured (the socket was bound or connected before flowtap attached). */
  process?: FlowProcess;
  /**
   * Outgoing: on begin and end; incoming: on the end only; an attempt: the
   * first SYN leaving → the failure, and the SYNs sent. undefined when unknown.
   */
  handshake?: FlowHandshake;
  /** 'end' only, and only when the teardown passed the flow's own socket. */
  tcp?: FlowTcpStats;
}

/** One DNS message to or from port 53 (a query or a response) as the workload saw it. */
export interface DnsEvent {
  type: 'dns';
  tsNs: bigint;
  /** The packet's IP version (an IPv4-mapped address is still written as IPv4). */
  family: 4 | 6;
  cgroupId: bigint;
  /** The packet's own source and destination (a response: the server's is the source). */
  srcAddr: string;
  srcPort: number;
  dstAddr: string;
  dstPort: number;
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
  const { errors } = walk(buf, (ev) => events.push(ev), false);
  return { events, errors };
}

/**
 * Decodes the records of `buf` one at a time, in order, handing each to
 * `visit` before reading the next: the pipeline keeps one event alive at a
 * time, not a whole batch (fewer objects survive a young-generation GC).
 * The FlowEvent handed to `visit` is one object, refilled for each flow of
 * the batch, and so are its process, handshake and tcp objects: they are
 * valid during the call only (decodeBatch's events are each their own). Returns how many events were visited and how many records
 * could not be decoded, as decodeBatch counts them. Never throws on bad
 * input; an exception from `visit` propagates.
 */
export function forEachEvent(buf: Buffer, visit: (event: DecodedEvent) => void): { events: number; errors: number } {
  return walk(buf, visit, true);
}

function walk(buf: Buffer, visit: (event: DecodedEvent) => void, reuseFlowEvent: boolean): { events: number; errors: number } {
  let events = 0;
  let errors = 0;
  let off = 0;
  let flow: FlowEvent | undefined;
  let parts: FlowParts | undefined;
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
    let ev: DecodedEvent | undefined;
    if (buf[off + L.HDR_VERSION] === L.ABI_VERSION) {
      switch (buf[off + L.HDR_TYPE]) {
        case L.EV_FLOW_BEGIN:
        case L.EV_FLOW_END:
        case L.EV_FLOW_ATTEMPT:
          flow = reuseFlowEvent && flow !== undefined ? flow : newFlowEvent();
          ev = decodeFlow(buf, off, size, FLOW_TYPES[buf[off + L.HDR_TYPE]], flow, reuseFlowEvent ? (parts ??= newParts()) : newParts());
          break;
        case L.EV_DNS:
          ev = decodeDns(buf, off, size);
          break;
      }
    }
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

/** FlowEvent's type of each flow record type. */
const FLOW_TYPES: Record<number, FlowEvent['type']> = { [L.EV_FLOW_BEGIN]: 'begin', [L.EV_FLOW_END]: 'end', [L.EV_FLOW_ATTEMPT]: 'attempt' };

// --- fewer objects per event (the pipeline decodes every flow of every batch) ---
// The values are those of a plain read or format; only the allocation differs.

const U64 = new BigUint64Array(1);
// Host byte order: flowtap runs on little-endian hosts only (bpf/flowtap.h).
const U64_BYTES = new Uint8Array(U64.buffer);

/** The u64 at `off`: one BigInt (Buffer.readBigUInt64LE makes four on the way). */
function readU64(buf: Buffer, off: number): bigint {
  for (let i = 0; i < 8; i++) U64_BYTES[i] = buf[off + i];
  return U64[0];
}

/** The last cgroup id read, as its two raw halves and its BigInt: the flows of a batch mostly share a few. */
let lastCgroupLo = 0;
let lastCgroupHi = 0;
let lastCgroupId = 0n;

function readCgroupId(buf: Buffer, off: number): bigint {
  const lo = buf.readInt32LE(off);
  const hi = buf.readInt32LE(off + 4);
  if (lo !== lastCgroupLo || hi !== lastCgroupHi) {
    lastCgroupLo = lo;
    lastCgroupHi = hi;
    lastCgroupId = readU64(buf, off);
  }
  return lastCgroupId;
}

/**
 * The text of addresses seen recently, so a repeated address (the monitored
 * socket's own, a busy peer) costs neither formatting nor a new string.
 * Direct-mapped by a hash of the address bytes: a miss formats and replaces.
 */
class AddressTexts {
  private static readonly BITS = 12;
  private readonly _v4Keys = new Int32Array(1 << AddressTexts.BITS);
  private readonly _v4Texts: (string | undefined)[] = new Array<string | undefined>(1 << AddressTexts.BITS).fill(undefined);
  private readonly _v6Keys = new Int32Array(4 << AddressTexts.BITS);
  private readonly _v6Texts: (string | undefined)[] = new Array<string | undefined>(1 << AddressTexts.BITS).fill(undefined);

  /** formatIPv4(buf, off) */
  ipv4(buf: Buffer, off: number): string {
    const key = buf.readInt32LE(off);
    const slot = Math.imul(key, 0x9e3779b1) >>> (32 - AddressTexts.BITS);
    const cached = this._v4Texts[slot];
    if (cached !== undefined && this._v4Keys[slot] === key) return cached;
    const text = formatIPv4(buf, off);
    this._v4Keys[slot] = key;
    this._v4Texts[slot] = text;
    return text;
  }

  /** formatIPv6(buf, off) */
  ipv6(buf: Buffer, off: number): string {
    const a = buf.readInt32LE(off);
    const b = buf.readInt32LE(off + 4);
    const c = buf.readInt32LE(off + 8);
    const d = buf.readInt32LE(off + 12);
    const slot = Math.imul(a ^ Math.imul(b, 0x85ebca6b) ^ Math.imul(c, 0xc2b2ae35) ^ Math.imul(d, 0x27d4eb2f), 0x9e3779b1) >>> (32 - AddressTexts.BITS);
    const keys = this._v6Keys;
    const k = slot * 4;
    const cached = this._v6Texts[slot];
    if (cached !== undefined && keys[k] === a && keys[k + 1] === b && keys[k + 2] === c && keys[k + 3] === d) return cached;
    const text = formatIPv6(buf, off);
    keys[k] = a;
    keys[k + 1] = b;
    keys[k + 2] = c;
    keys[k + 3] = d;
    this._v6Texts[slot] = text;
    return text;
  }
}

const addressTexts = new AddressTexts();

/** A FlowEvent to decode into (all fields, in one order: one hidden class). */
function newFlowEvent(): FlowEvent {
  return {
    type: 'begin',
    tsNs: 0n,
    family: 4,
    direction: FLOW_DIRECTION_VALUE_OUTGOING,
    srcAddr: '',
    srcPort: 0,
    dstAddr: '',
    dstPort: 0,
    cgroupId: 0n,
    closeReason: undefined,
    closedBy: undefined,
    attemptReason: undefined,
    beginTsNs: undefined,
    flowId: 0n,
    cookie: 0n,
    process: undefined,
    handshake: undefined,
    tcp: undefined,
  };
}

/** The objects of a FlowEvent's optional parts, refilled with it when it is reused. */
interface FlowParts {
  process: FlowProcess;
  handshake: FlowHandshake;
  tcp: FlowTcpStats;
}

function newParts(): FlowParts {
  return {
    process: { pid: 0, uid: 0, comm: undefined, capturedAtNs: 0n, cgroupId: 0n },
    handshake: { durationNs: 0n, synCount: 0 },
    tcp: { bytesSent: 0, bytesReceived: 0, segsOut: 0, segsIn: 0, retransSegs: 0, srttUs: 0, minRttUs: 0 },
  };
}

/** The u64 at `off` as a number (exact below 2^53: byte counts). */
function readU64Number(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x1_0000_0000;
}

/** The NUL-terminated comm at `off`; undefined when empty (not captured). */
function readComm(buf: Buffer, off: number): string | undefined {
  let end = off;
  while (end < off + L.COMM_LEN && buf[end] !== 0) end++;
  return end === off ? undefined : buf.toString('utf8', off, end);
}

/** Decodes the flow record at `off` into `ev` and returns it, or returns undefined (ev untouched) if the record is not valid. */
function decodeFlow(buf: Buffer, off: number, size: number, type: FlowEvent['type'], ev: FlowEvent, parts: FlowParts): FlowEvent | undefined {
  if (size < L.FLOW_SIZE) return undefined;
  const rawFamily = buf[off + L.FLOW_FAMILY];
  const direction = directionOf(buf[off + L.FLOW_DIRECTION]);
  if ((rawFamily !== 4 && rawFamily !== 6) || direction === undefined) return undefined;

  let closeReason: CloseReason | undefined;
  let closedBy: ClosedBy | undefined;
  let beginTsNs: bigint | undefined;
  let attemptReason: AttemptReason | undefined;
  if (type === 'attempt') {
    attemptReason = attemptReasonOf(buf[off + L.FLOW_CLOSE_REASON]);
    if (attemptReason === undefined) return undefined;
  } else if (type === 'end') {
    closeReason = closeReasonOf(buf[off + L.FLOW_CLOSE_REASON]);
    closedBy = closedByOf(buf[off + L.FLOW_CLOSED_BY]);
    if (closeReason === undefined || closedBy === undefined) return undefined;
    beginTsNs = readU64(buf, off + L.FLOW_BEGIN_TS_NS);
  }

  const s = off + L.FLOW_SADDR;
  const d = off + L.FLOW_DADDR;
  let family: 4 | 6 = rawFamily;
  let srcAddr: string;
  let dstAddr: string;
  if (rawFamily === 4) {
    srcAddr = addressTexts.ipv4(buf, s);
    dstAddr = addressTexts.ipv4(buf, d);
  } else {
    // An IPv4-mapped address is never written: it is an IPv4 flow.
    const sMapped = isIPv4Mapped(buf, s);
    const dMapped = isIPv4Mapped(buf, d);
    srcAddr = sMapped ? addressTexts.ipv4(buf, s + 12) : addressTexts.ipv6(buf, s);
    dstAddr = dMapped ? addressTexts.ipv4(buf, d + 12) : addressTexts.ipv6(buf, d);
    if (sMapped && dMapped) family = 4;
  }

  ev.type = type;
  ev.tsNs = readU64(buf, off + L.HDR_TS_NS);
  ev.family = family;
  ev.direction = direction;
  ev.srcAddr = srcAddr;
  ev.srcPort = buf.readUInt16LE(off + L.FLOW_SPORT);
  ev.dstAddr = dstAddr;
  ev.dstPort = buf.readUInt16LE(off + L.FLOW_DPORT);
  ev.cgroupId = readCgroupId(buf, off + L.FLOW_CGROUP_ID);
  ev.closeReason = closeReason;
  ev.closedBy = closedBy;
  ev.attemptReason = attemptReason;
  ev.beginTsNs = beginTsNs;
  const flags = buf[off + L.FLOW_FLAGS];
  ev.flowId = readU64(buf, off + L.FLOW_FLOW_ID);
  ev.cookie = readU64(buf, off + L.FLOW_COOKIE);
  if ((flags & L.FLOW_FLAG_PROCESS) === 0) {
    ev.process = undefined;
  } else {
    const p = parts.process;
    p.pid = buf.readUInt32LE(off + L.FLOW_PID);
    p.uid = buf.readUInt32LE(off + L.FLOW_UID);
    p.comm = readComm(buf, off + L.FLOW_COMM);
    p.capturedAtNs = readU64(buf, off + L.FLOW_PROC_TS_NS);
    p.cgroupId = ev.cgroupId;
    ev.process = p;
  }
  if ((flags & L.FLOW_FLAG_HANDSHAKE) === 0) {
    ev.handshake = undefined;
  } else {
    const h = parts.handshake;
    h.durationNs = readU64(buf, off + L.FLOW_HANDSHAKE_NS);
    h.synCount = buf.readUInt32LE(off + L.FLOW_SYN_COUNT);
    ev.handshake = h;
  }
  if (type !== 'end' || (flags & L.FLOW_FLAG_TCP_STATS) === 0) {
    ev.tcp = undefined;
  } else {
    const t = parts.tcp;
    t.bytesSent = readU64Number(buf, off + L.FLOW_BYTES_SENT);
    t.bytesReceived = readU64Number(buf, off + L.FLOW_BYTES_RECEIVED);
    t.segsOut = buf.readUInt32LE(off + L.FLOW_SEGS_OUT);
    t.segsIn = buf.readUInt32LE(off + L.FLOW_SEGS_IN);
    t.retransSegs = buf.readUInt32LE(off + L.FLOW_RETRANS_SEGS);
    t.srttUs = buf.readUInt32LE(off + L.FLOW_SRTT_US);
    t.minRttUs = buf.readUInt32LE(off + L.FLOW_MIN_RTT_US);
    ev.tcp = t;
  }
  return ev;
}

function decodeDns(buf: Buffer, off: number, size: number): DnsEvent | undefined {
  if (size < L.DNS_DATA) return undefined;
  const len = buf.readUInt16LE(off + L.DNS_LEN);
  const family = buf[off + L.DNS_FAMILY];
  if (len > size - L.DNS_DATA || len > L.DNS_MAX || (family !== 4 && family !== 6)) return undefined;
  const flags = buf[off + L.DNS_FLAGS];
  const s = off + L.DNS_SADDR;
  const d = off + L.DNS_DADDR;
  return {
    type: 'dns',
    tsNs: readU64(buf, off + L.HDR_TS_NS),
    family,
    cgroupId: readCgroupId(buf, off + L.DNS_CGROUP_ID),
    srcAddr: addressText(buf, s, family),
    srcPort: buf.readUInt16LE(off + L.DNS_SPORT),
    dstAddr: addressText(buf, d, family),
    dstPort: buf.readUInt16LE(off + L.DNS_DPORT),
    msgLen: buf.readUInt16LE(off + L.DNS_MSG_LEN),
    truncated: (flags & L.DNS_FLAG_TRUNCATED) !== 0,
    tcp: (flags & L.DNS_FLAG_TCP) !== 0,
    egress: (flags & L.DNS_FLAG_EGRESS) !== 0,
    data: buf.subarray(off + L.DNS_DATA, off + L.DNS_DATA + len),
  };
}

/** The text of the address at `off` of a record of this family; an IPv4-mapped IPv6 address as IPv4. */
function addressText(buf: Buffer, off: number, family: 4 | 6): string {
  if (family === 4) return addressTexts.ipv4(buf, off);
  return isIPv4Mapped(buf, off) ? addressTexts.ipv4(buf, off + 12) : addressTexts.ipv6(buf, off);
}

function directionOf(v: number): Direction | undefined {
  if (v === L.DIR_OUTGOING) return FLOW_DIRECTION_VALUE_OUTGOING;
  if (v === L.DIR_INCOMING) return FLOW_DIRECTION_VALUE_INCOMING;
  return undefined;
}

function closeReasonOf(v: number): CloseReason | undefined {
  if (v === L.CLOSE_FIN) return FLOW_CLOSE_REASON_VALUE_FIN;
  if (v === L.CLOSE_RST) return FLOW_CLOSE_REASON_VALUE_RST;
  return undefined;
}

function attemptReasonOf(v: number): AttemptReason | undefined {
  if (v === L.ATTEMPT_REFUSED) return FLOW_ATTEMPT_REASON_VALUE_REFUSED;
  if (v === L.ATTEMPT_UNREACHABLE) return FLOW_ATTEMPT_REASON_VALUE_UNREACHABLE;
  if (v === L.ATTEMPT_TIMED_OUT) return FLOW_ATTEMPT_REASON_VALUE_TIMED_OUT;
  if (v === L.ATTEMPT_ABANDONED) return FLOW_ATTEMPT_REASON_VALUE_ABANDONED;
  return undefined;
}

function closedByOf(v: number): ClosedBy | undefined {
  if (v === L.CLOSED_BY_SOURCE) return FLOW_CLOSED_BY_VALUE_SOURCE;
  if (v === L.CLOSED_BY_DESTINATION) return FLOW_CLOSED_BY_VALUE_DESTINATION;
  return undefined;
}
