/**
 * One flow record as OTLP protobuf, written straight from the decoded event:
 * the same bytes LogRecordEncoder (proto.ts) writes for
 * mapFlow(event, domains, timestampNs, containerId), and so the same bytes as
 * the SDK serializer, but without building the record: no attribute object
 * for a generic walk, no body string. Every key, and every attribute whose
 * value is one of a few constants, is encoded once, at load; addresses,
 * ports and names are written into the batch's buffer directly. A record
 * without domain names allocates nothing here.
 *
 * mapFlow (src/record/record.ts) stays the definition of the record: this is its
 * encoding, unrolled. Change both together; test/unit/export/otlp/flow-encoder.test.ts
 * holds them to the same bytes on random events and on the SDK's serializer.
 */
import type { FlowEvent } from '../../kernel/decode';
import type { FlowDomains } from '../../record/record';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_CLIENT_PORT,
  ATTR_CONTAINER_ID,
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
  TCP_FLOW_CLOSE_REASON_VALUE_FIN,
  TCP_FLOW_CLOSE_REASON_VALUE_RST,
  TCP_FLOW_CLOSED_BY_VALUE_DESTINATION,
  TCP_FLOW_CLOSED_BY_VALUE_SOURCE,
  TCP_FLOW_DIRECTION_VALUE_INCOMING,
  TCP_FLOW_DIRECTION_VALUE_OUTGOING,
} from '../../record/semconv';
import {
  keyValueHead,
  ProtoWriter,
  T_ANY_ARRAY,
  T_ANY_DOUBLE,
  T_ANY_INT,
  T_ANY_STRING,
  T_LIST_VALUES,
  T_LOG_ATTRIBUTES,
  T_LOG_BODY,
  T_LOG_DROPPED,
  T_LOG_EVENT_NAME,
  T_LOG_OBSERVED_TIME,
  T_LOG_SEVERITY_NUMBER,
  T_LOG_TIME,
  T_SCOPE_LOGS_LOG_RECORDS,
  COPY_LOOP_MAX,
  varintSize,
} from './proto';

/** SeverityNumber INFO, as mapFlow sets it. */
const SEVERITY_INFO = 9;

/** Starts a `log_records.attributes` KeyValue (`head`: keyValueHead of its key); returns where, for endKv. */
function beginKv(w: ProtoWriter, head: Buffer): number {
  w.byte(T_LOG_ATTRIBUTES);
  const kv = w.begin();
  w.raw(head);
  w.begin();
  return kv;
}

/** Ends the KeyValue beginKv started at `kv`: the value's length, then the KeyValue's. */
function endKv(w: ProtoWriter, kv: number, head: Buffer): void {
  w.end(kv + 1 + head.length);
  w.end(kv);
}

/** Bytes written once, at load, by `write`. */
function bytesOf(write: (w: ProtoWriter) => void): Buffer {
  const w = new ProtoWriter(256);
  write(w);
  return Buffer.from(w.view());
}

/** A whole attribute with a constant string value. */
const constantKv = (key: string, value: string): Buffer =>
  bytesOf((w) => {
    const head = keyValueHead(key);
    const kv = beginKv(w, head);
    w.byte(T_ANY_STRING);
    w.string(value);
    endKv(w, kv, head);
  });

/** A whole attribute whose value is an empty array. */
const emptyArrayKv = (key: string): Buffer =>
  bytesOf((w) => {
    const head = keyValueHead(key);
    const kv = beginKv(w, head);
    w.byte(T_ANY_ARRAY);
    w.byte(0);
    endKv(w, kv, head);
  });

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

/** Copies `bytes` into `buf` at `p`; returns the position after them. */
function copyInto(buf: Buffer, p: number, bytes: Buffer): number {
  const n = bytes.length;
  if (n > COPY_LOOP_MAX) {
    buf.set(bytes, p);
    return p + n;
  }
  for (let i = 0; i < n; i++) buf[p++] = bytes[i];
  return p;
}

/**
 * One attribute key of the record, with what comes before a small value
 * ready-made, made on first use: `32 <kv len> 0a <key len> key 12 <value
 * len> 0a <string len>` for a string of each length, and `32 <kv len> 0a
 * <key len> key 12 <value len> 18` for each varint size. A value whose
 * KeyValue needs a 2-byte length takes the general path.
 */
class AttributeKey {
  /** `0a <key len> key 12` */
  readonly head: Buffer;
  private readonly _strings: (Buffer | undefined)[] = new Array<Buffer | undefined>(0x80).fill(undefined);
  private readonly _ints: (Buffer | undefined)[] = new Array<Buffer | undefined>(6).fill(undefined);

  constructor(key: string) {
    this.head = keyValueHead(key);
  }

  /** The bytes before a string value of `n` ASCII characters, or undefined if they would not be the 1-byte-length form. */
  stringPrefix(n: number): Buffer | undefined {
    const kvLen = this.head.length + 3 + n;
    if (kvLen > 0x7f) return undefined;
    return (this._strings[n] ??= Buffer.concat([Buffer.from([T_LOG_ATTRIBUTES, kvLen]), this.head, Buffer.from([n + 2, T_ANY_STRING, n])]));
  }

  /** The bytes before the varint of a non-negative int value that takes `size` bytes (1..5). */
  intPrefix(size: number): Buffer {
    return (this._ints[size] ??= Buffer.concat([Buffer.from([T_LOG_ATTRIBUTES, this.head.length + 2 + size]), this.head, Buffer.from([size + 1, T_ANY_INT])]));
  }
}

const K_SOURCE_ADDRESS = new AttributeKey(ATTR_SOURCE_ADDRESS);
const K_SOURCE_PORT = new AttributeKey(ATTR_SOURCE_PORT);
const K_DESTINATION_ADDRESS = new AttributeKey(ATTR_DESTINATION_ADDRESS);
const K_DESTINATION_PORT = new AttributeKey(ATTR_DESTINATION_PORT);
const K_SOURCE_DOMAINS = new AttributeKey(ATTR_TCP_FLOW_SOURCE_DOMAINS);
const K_DESTINATION_DOMAINS = new AttributeKey(ATTR_TCP_FLOW_DESTINATION_DOMAINS);
const K_CLIENT_ADDRESS = new AttributeKey(ATTR_CLIENT_ADDRESS);
const K_CLIENT_PORT = new AttributeKey(ATTR_CLIENT_PORT);
const K_SERVER_ADDRESS = new AttributeKey(ATTR_SERVER_ADDRESS);
const K_SERVER_PORT = new AttributeKey(ATTR_SERVER_PORT);
const K_LOCAL_ADDRESS = new AttributeKey(ATTR_NETWORK_LOCAL_ADDRESS);
const K_LOCAL_PORT = new AttributeKey(ATTR_NETWORK_LOCAL_PORT);
const K_PEER_ADDRESS = new AttributeKey(ATTR_NETWORK_PEER_ADDRESS);
const K_PEER_PORT = new AttributeKey(ATTR_NETWORK_PEER_PORT);
const K_CONTAINER_ID = new AttributeKey(ATTR_CONTAINER_ID);
const K_DURATION = new AttributeKey(ATTR_TCP_FLOW_DURATION);
const K_CLOSE_REASON = new AttributeKey(ATTR_TCP_FLOW_CLOSE_REASON);
const K_CLOSED_BY = new AttributeKey(ATTR_TCP_FLOW_CLOSED_BY);

const KV_DIRECTION_OUTGOING = constantKv(ATTR_TCP_FLOW_DIRECTION, TCP_FLOW_DIRECTION_VALUE_OUTGOING);
const KV_DIRECTION_INCOMING = constantKv(ATTR_TCP_FLOW_DIRECTION, TCP_FLOW_DIRECTION_VALUE_INCOMING);
const KV_SOURCE_DOMAINS_NONE = emptyArrayKv(ATTR_TCP_FLOW_SOURCE_DOMAINS);
const KV_DESTINATION_DOMAINS_NONE = emptyArrayKv(ATTR_TCP_FLOW_DESTINATION_DOMAINS);
/** network.transport and network.type together: they are adjacent in the record. */
const KV_TRANSPORT_TYPE_IPV4 = Buffer.concat([constantKv(ATTR_NETWORK_TRANSPORT, NETWORK_TRANSPORT_VALUE_TCP), constantKv(ATTR_NETWORK_TYPE, NETWORK_TYPE_VALUE_IPV4)]);
const KV_TRANSPORT_TYPE_IPV6 = Buffer.concat([constantKv(ATTR_NETWORK_TRANSPORT, NETWORK_TRANSPORT_VALUE_TCP), constantKv(ATTR_NETWORK_TYPE, NETWORK_TYPE_VALUE_IPV6)]);
const constantKvs = (key: string, values: string[]): Map<string, Buffer> => new Map(values.map((v) => [v, constantKv(key, v)]));
const KV_CLOSE_REASON = constantKvs(ATTR_TCP_FLOW_CLOSE_REASON, [TCP_FLOW_CLOSE_REASON_VALUE_FIN, TCP_FLOW_CLOSE_REASON_VALUE_RST]);
const KV_CLOSED_BY = constantKvs(ATTR_TCP_FLOW_CLOSED_BY, [TCP_FLOW_CLOSED_BY_VALUE_SOURCE, TCP_FLOW_CLOSED_BY_VALUE_DESTINATION]);

/** severity_number, then the tag of the body field. */
const SEVERITY = Buffer.from([T_LOG_SEVERITY_NUMBER, SEVERITY_INFO]);
/** dropped_attributes_count 0, then the tag of observed_time_unix_nano. */
const DROPPED_OBSERVED = Buffer.from([T_LOG_DROPPED, 0, T_LOG_OBSERVED_TIME]);
const EVENT_NAME_BEGIN = bytesOf((w) => {
  w.byte(T_LOG_EVENT_NAME);
  w.string(EVENT_TCP_FLOW_BEGIN);
});
const EVENT_NAME_END = bytesOf((w) => {
  w.byte(T_LOG_EVENT_NAME);
  w.string(EVENT_TCP_FLOW_END);
});

const BODY_OUTGOING = ascii(`${TCP_FLOW_DIRECTION_VALUE_OUTGOING} tcp `);
const BODY_INCOMING = ascii(`${TCP_FLOW_DIRECTION_VALUE_INCOMING} tcp `);
const BODY_ARROW = ascii(' -> ');
const BODY_NAME_OPEN = ascii(' (');
const COLON = 0x3a;

/** A string attribute; an ASCII value under ~90 characters (every address) is its prefix and its characters. */
function stringKv(w: ProtoWriter, key: AttributeKey, value: string): void {
  const n = value.length;
  const prefix = key.stringPrefix(n);
  if (prefix !== undefined) {
    w.ensure(prefix.length + n);
    const buf = w.buf;
    let p = copyInto(buf, w.pos, prefix);
    let i = 0;
    for (; i < n; i++) {
      const c = value.charCodeAt(i);
      if (c > 0x7f) break;
      buf[p++] = c;
    }
    if (i === n) {
      w.pos = p;
      return;
    }
  }
  const kv = beginKv(w, key.head);
  w.byte(T_ANY_STRING);
  w.string(value);
  endKv(w, kv, key.head);
}

/** An int attribute; a port is its prefix and its varint. */
function intKv(w: ProtoWriter, key: AttributeKey, value: number): void {
  if (value >>> 0 === value) {
    const size = varintSize(value);
    const prefix = key.intPrefix(size);
    w.ensure(prefix.length + size);
    w.pos = copyInto(w.buf, w.pos, prefix);
    w.varint(value);
    return;
  }
  const kv = beginKv(w, key.head);
  w.byte(T_ANY_INT);
  w.varint(value);
  endKv(w, kv, key.head);
}

/** A string attribute whose usual values were encoded whole, at load. */
function constantOrStringKv(w: ProtoWriter, encoded: Map<string, Buffer>, key: AttributeKey, value: string): void {
  const whole = encoded.get(value);
  if (whole !== undefined) w.raw(whole);
  else stringKv(w, key, value);
}

/** A string[] attribute; `none` is the whole attribute for an empty list. */
function namesKv(w: ProtoWriter, key: AttributeKey, none: Buffer, names: readonly string[]): void {
  if (names.length === 0) {
    w.raw(none);
    return;
  }
  const kv = beginKv(w, key.head);
  w.byte(T_ANY_ARRAY);
  const list = w.begin();
  for (let i = 0; i < names.length; i++) {
    w.byte(T_LIST_VALUES);
    const item = w.begin();
    w.byte(T_ANY_STRING);
    w.string(names[i]);
    w.end(item);
  }
  w.end(list);
  endKv(w, kv, key.head);
}

/** A number attribute as the SDK types it: an integer as int_value, else double_value. */
function numberKv(w: ProtoWriter, key: AttributeKey, value: number): void {
  if (Number.isInteger(value) && value >= 0) {
    intKv(w, key, value);
    return;
  }
  const kv = beginKv(w, key.head);
  w.byte(T_ANY_DOUBLE);
  w.double(value);
  endKv(w, kv, key.head);
}

/** host:port as record.ts hostPort writes it: IPv6 hosts in brackets. */
function hostPort(w: ProtoWriter, addr: string, port: number): void {
  if (addr.indexOf(':') >= 0) {
    w.byte(0x5b); // [
    w.utf8(addr);
    w.byte(0x5d); // ]
  } else {
    w.utf8(addr);
  }
  w.byte(COLON);
  w.decimal(port);
}

/** Encodes flow records as ScopeLogs.log_records fields, from the decoded event. */
export class FlowLogRecordEncoder {
  /**
   * One `log_records` field: the record mapFlow(event, domains, timestampNs,
   * containerId) defines, observed at `observedNs`.
   */
  encode(w: ProtoWriter, event: FlowEvent, domains: FlowDomains, timestampNs: bigint, containerId: string | undefined, observedNs: bigint): void {
    const outgoing = event.direction === TCP_FLOW_DIRECTION_VALUE_OUTGOING;
    const dstName: string | undefined = domains.dst[0];

    w.byte(T_SCOPE_LOGS_LOG_RECORDS);
    // A flow record is 128..16383 bytes: two length bytes, moved only otherwise.
    const at = w.begin(2);
    w.byte(T_LOG_TIME);
    w.fixed64(timestampNs);
    w.raw(SEVERITY);

    // body: `${direction} tcp ${src} -> ${dst}${name ? ` (${name})` : ''}`
    w.byte(T_LOG_BODY);
    const body = w.begin();
    w.byte(T_ANY_STRING);
    const text = w.begin();
    w.raw(outgoing ? BODY_OUTGOING : BODY_INCOMING);
    hostPort(w, event.srcAddr, event.srcPort);
    w.raw(BODY_ARROW);
    hostPort(w, event.dstAddr, event.dstPort);
    if (dstName !== undefined) {
      w.raw(BODY_NAME_OPEN);
      w.utf8(dstName);
      w.byte(0x29); // )
    }
    w.end(text);
    w.end(body);

    // attributes, in mapFlow's order
    w.raw(outgoing ? KV_DIRECTION_OUTGOING : KV_DIRECTION_INCOMING);
    stringKv(w, K_SOURCE_ADDRESS, event.srcAddr);
    intKv(w, K_SOURCE_PORT, event.srcPort);
    stringKv(w, K_DESTINATION_ADDRESS, event.dstAddr);
    intKv(w, K_DESTINATION_PORT, event.dstPort);
    namesKv(w, K_SOURCE_DOMAINS, KV_SOURCE_DOMAINS_NONE, domains.src);
    namesKv(w, K_DESTINATION_DOMAINS, KV_DESTINATION_DOMAINS_NONE, domains.dst);
    stringKv(w, K_CLIENT_ADDRESS, event.srcAddr);
    intKv(w, K_CLIENT_PORT, event.srcPort);
    stringKv(w, K_SERVER_ADDRESS, domains.dst.length > 0 ? domains.dst[0] : event.dstAddr);
    intKv(w, K_SERVER_PORT, event.dstPort);
    w.raw(event.family === 4 ? KV_TRANSPORT_TYPE_IPV4 : KV_TRANSPORT_TYPE_IPV6);
    stringKv(w, K_LOCAL_ADDRESS, outgoing ? event.srcAddr : event.dstAddr);
    intKv(w, K_LOCAL_PORT, outgoing ? event.srcPort : event.dstPort);
    stringKv(w, K_PEER_ADDRESS, outgoing ? event.dstAddr : event.srcAddr);
    intKv(w, K_PEER_PORT, outgoing ? event.dstPort : event.srcPort);
    if (containerId !== undefined) stringKv(w, K_CONTAINER_ID, containerId);
    if (event.type === 'end') {
      const begin = event.beginTsNs;
      if (begin !== undefined && begin !== 0n && event.tsNs >= begin) numberKv(w, K_DURATION, Number(event.tsNs - begin) / 1e9);
      if (event.closeReason !== undefined) constantOrStringKv(w, KV_CLOSE_REASON, K_CLOSE_REASON, event.closeReason);
      if (event.closedBy !== undefined) constantOrStringKv(w, KV_CLOSED_BY, K_CLOSED_BY, event.closedBy);
    }

    w.raw(DROPPED_OBSERVED);
    w.fixed64(observedNs);
    w.raw(event.type === 'begin' ? EVENT_NAME_BEGIN : EVENT_NAME_END);
    w.end(at, 2);
  }
}
