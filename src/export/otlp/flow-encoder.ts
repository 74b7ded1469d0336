/**
 * One flow record as OTLP protobuf, written straight from the decoded event:
 * the bytes the SDK serializer writes for mapFlow(event, context,
 * timestampNs), without building the record: no attribute
 * object for a generic walk, no body string. Both derive from the record
 * schema (src/record/schema.ts): each attribute's key, and each value of a
 * closed-set attribute, is encoded once, at load; the other values are
 * written into the batch's buffer directly by the writer of their type. A
 * record without domain names allocates nothing here.
 * test/unit/export/otlp/flow-encoder.test.ts holds these bytes to the SDK
 * serializer's on random events.
 */
import type { FlowEvent } from '../../kernel/decode';
import { FLOW_SEVERITY } from '../../record/record';
import { ATTRIBUTES, EVENT_KINDS, EVENTS, type AttributeEntry, type FlowContext, type FlowEventKind } from '../../record/schema';
import { FLOW_DIRECTION_VALUE_INCOMING, FLOW_DIRECTION_VALUE_OUTGOING } from '../../record/semconv';
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

/** severity_number, then the tag of the body field. */
const SEVERITY = Buffer.from([T_LOG_SEVERITY_NUMBER, FLOW_SEVERITY]);
/** dropped_attributes_count 0, then the tag of observed_time_unix_nano. */
const DROPPED_OBSERVED = Buffer.from([T_LOG_DROPPED, 0, T_LOG_OBSERVED_TIME]);
const BODY_OUTGOING = ascii(`${FLOW_DIRECTION_VALUE_OUTGOING} tcp `);
const BODY_INCOMING = ascii(`${FLOW_DIRECTION_VALUE_INCOMING} tcp `);
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

/** Writes the attributes of a flow's record. */
type AttributesWriter = (w: ProtoWriter, event: FlowEvent, context: FlowContext) => void;

/**
 * The writer of `entries` (every attribute of the schema), compiled at load
 * into one straight-line function with a statement per attribute: when the
 * event is of a kind that carries it, `const v<i> = source<i>(event,
 * context)`, then, if defined, the writer of its type with its
 * key's ready-made bytes (a closed-set value: its whole attribute, encoded
 * here). A loop over the entries would call every source from one call site,
 * which V8 then cannot inline; here each source has its own call site and is
 * inlined, as in a hand-written encoder. The generated text holds only names
 * and indices: kinds, keys, values and sources come in through `bound`,
 * never spliced into code.
 */
function compileAttributesWriter(entries: readonly AttributeEntry[]): AttributesWriter {
  const names: string[] = ['stringKv', 'intKv', 'numberKv', 'namesKv'];
  const args: unknown[] = [stringKv, intKv, numberKv, namesKv];
  const bind = (name: string, value: unknown): string => {
    names.push(name);
    args.push(value);
    return name;
  };
  const kinds = EVENT_KINDS.map((kind, i) => bind(`kind${i}`, kind));
  const lines: string[] = [];
  entries.forEach((a, i) => {
    const key = bind(`k${i}`, new AttributeKey(a.key));
    let write: string;
    switch (a.type) {
      case 'string': {
        // A closed-set value: compared, then its whole attribute copied.
        const whole = (a.values ?? []).map(
          (value, j) => `if (v${i} === ${bind(`v${i}_${j}`, value)}) w.raw(${bind(`kv${i}_${j}`, constantKv(a.key, value))}); else `,
        );
        write = `${whole.join('')}stringKv(w, ${key}, v${i});`;
        break;
      }
      case 'int':
        write = `intKv(w, ${key}, v${i});`;
        break;
      case 'double':
        write = `numberKv(w, ${key}, v${i});`;
        break;
      case 'string[]':
        write = `namesKv(w, ${key}, ${bind(`none${i}`, emptyArrayKv(a.key))}, v${i});`;
        break;
    }
    const statement = `const v${i} = ${bind(`s${i}`, a.source)}(event, context); if (v${i} !== undefined) { ${write} }`;
    const all = EVENT_KINDS.every((kind) => a.events.includes(kind));
    const when = EVENT_KINDS.flatMap((kind, k) => (a.events.includes(kind) ? [`event.type === ${kinds[k]}`] : [])).join(' || ');
    lines.push(all ? statement : `if (${when}) { ${statement} }`);
  });
  // Bound as consts, not parameters: V8 folds a const of a closure's context into the optimized code.
  const consts = names.map((name, i) => `const ${name} = bound[${i}];`).join('\n');
  const body = `${consts}\nreturn function writeAttributes(w, event, context) {\n  ${lines.join('\n  ')}\n};`;
  return new Function('bound', body)(args) as AttributesWriter;
}

const writeAttributes = compileAttributesWriter(ATTRIBUTES);

/** Each event kind and its record's event_name field. */
const EVENT_NAME_FIELDS: readonly [FlowEventKind, Buffer][] = EVENT_KINDS.map((kind) => [
  kind,
  bytesOf((w) => {
    w.byte(T_LOG_EVENT_NAME);
    w.string(EVENTS[kind].name);
  }),
]);

/** The event_name field of `kind`'s record. */
function eventNameField(kind: FlowEventKind): Buffer {
  for (let i = 0; i < EVENT_NAME_FIELDS.length; i++) if (EVENT_NAME_FIELDS[i][0] === kind) return EVENT_NAME_FIELDS[i][1];
  throw new Error(`no event ${kind}`);
}

/** Encodes flow records as ScopeLogs.log_records fields, from the decoded event. */
export class FlowLogRecordEncoder {
  /**
   * One `log_records` field: the record mapFlow(event, context, timestampNs)
   * defines, observed at `observedNs`.
   */
  encode(w: ProtoWriter, event: FlowEvent, context: FlowContext, timestampNs: bigint, observedNs: bigint): void {
    const outgoing = event.direction === FLOW_DIRECTION_VALUE_OUTGOING;
    const dstName: string | undefined = context.dst[0];

    w.byte(T_SCOPE_LOGS_LOG_RECORDS);
    // A flow record is 128..16383 bytes: two length bytes, moved only otherwise.
    const at = w.begin(2);
    w.byte(T_LOG_TIME);
    w.fixed64(timestampNs);
    w.raw(SEVERITY);

    // body: flowBody(event, dstName), written in place
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

    writeAttributes(w, event, context);

    w.raw(DROPPED_OBSERVED);
    w.fixed64(observedNs);
    w.raw(eventNameField(event.type));
    w.end(at, 2);
  }
}
