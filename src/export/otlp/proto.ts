/**
 * OTLP/protobuf writing, straight into a reusable buffer: the writer, the
 * AnyValue/attribute encoding of the request's resource and scope, and the
 * ExportLogsServiceRequest frame around runs of log_records fields (each
 * written by flow-encoder.ts), one ResourceLogs per run of one workload, whose
 * resources and scope were encoded once.
 * The bytes are the same, field for field and in the same order, as
 * @opentelemetry/otlp-transformer's ProtobufLogsSerializer writes
 * (test/unit/export/otlp/ compares them byte for byte). Data in, bytes
 * out; the request frame keeps the open batch's runs.
 *
 * Field numbers, from opentelemetry/proto (v1):
 *   ExportLogsServiceRequest: resource_logs=1
 *   ResourceLogs: resource=1 scope_logs=2 schema_url=3
 *   Resource: attributes=1 dropped_attributes_count=2
 *   ScopeLogs: scope=1 log_records=2 schema_url=3
 *   InstrumentationScope: name=1 version=2 attributes=3
 *   LogRecord: time_unix_nano=1 (fixed64) severity_number=2 severity_text=3 body=5
 *              attributes=6 dropped_attributes_count=7 observed_time_unix_nano=11 (fixed64)
 *              event_name=12
 *   KeyValue: key=1 value=2
 *   AnyValue: string=1 bool=2 int=3 double=4 array=5 kvlist=6 bytes=7
 *   ArrayValue / KeyValueList: values=1
 */
import type { AnyValue, Attributes } from '@opentelemetry/api';
import { workloadKey, type Workload } from '../../enrich/container';
import { workloadResourceAttributes } from '../../record/resource';

/** Wire types. */
const VARINT = 0;
const I64 = 1;
const LEN = 2;

const tag = (field: number, wireType: number): number => (field << 3) | wireType;

const T_REQUEST_RESOURCE_LOGS = tag(1, LEN);
const T_RESOURCE_LOGS_RESOURCE = tag(1, LEN);
const T_RESOURCE_LOGS_SCOPE_LOGS = tag(2, LEN);
const T_RESOURCE_LOGS_SCHEMA_URL = tag(3, LEN);
const T_RESOURCE_ATTRIBUTES = tag(1, LEN);
const T_RESOURCE_DROPPED = tag(2, VARINT);
const T_SCOPE_LOGS_SCOPE = tag(1, LEN);
export const T_SCOPE_LOGS_LOG_RECORDS = tag(2, LEN);
const T_SCOPE_LOGS_SCHEMA_URL = tag(3, LEN);
const T_SCOPE_NAME = tag(1, LEN);
const T_SCOPE_VERSION = tag(2, LEN);
const T_SCOPE_ATTRIBUTES = tag(3, LEN);
export const T_LOG_TIME = tag(1, I64);
export const T_LOG_SEVERITY_NUMBER = tag(2, VARINT);
export const T_LOG_BODY = tag(5, LEN);
export const T_LOG_ATTRIBUTES = tag(6, LEN);
export const T_LOG_DROPPED = tag(7, VARINT);
export const T_LOG_OBSERVED_TIME = tag(11, I64);
export const T_LOG_EVENT_NAME = tag(12, LEN);
const T_KV_KEY = tag(1, LEN);
const T_KV_VALUE = tag(2, LEN);
export const T_ANY_STRING = tag(1, LEN);
const T_ANY_BOOL = tag(2, VARINT);
export const T_ANY_INT = tag(3, VARINT);
export const T_ANY_DOUBLE = tag(4, I64);
export const T_ANY_ARRAY = tag(5, LEN);
const T_ANY_KVLIST = tag(6, LEN);
const T_ANY_BYTES = tag(7, LEN);
export const T_LIST_VALUES = tag(1, LEN);

/** The int64 range the SDK writes as int_value (beyond it, a double). */
const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;

const SCRATCH_U64 = new BigUint64Array(1);
// Host byte order: flowtap runs on little-endian hosts only (bpf/flowtap.h).
const SCRATCH_BYTES = new Uint8Array(SCRATCH_U64.buffer);

/**
 * Up to this many bytes, a JS loop copies faster than TypedArray.prototype.set
 * (a call with a fixed cost of ~15 looped bytes); above it, set. Measured on
 * the flow encoder: 16 was ~20 % faster per record than 64.
 */
export const COPY_LOOP_MAX = 16;

/** Bytes of the varint of a non-negative 32-bit length. */
export function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/**
 * An append-only protobuf writer over one growable Buffer, reused from batch
 * to batch (reset()). Length-delimited fields reserve their length bytes up
 * front and move the content only when the guess was wrong.
 */
export class ProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  reset(): void {
    this.pos = 0;
  }

  /** The bytes written so far (a view, valid until the next write or reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** A varint of a non-negative safe integer, or a negative one as 10-byte two's complement (int64). */
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (value >= 0 && value <= 0xffffffff) {
      let v = value >>> 0;
      while (v > 0x7f) {
        buf[this.pos++] = (v & 0x7f) | 0x80;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    let lo: number;
    let hi: number;
    if (value >= 0) {
      lo = value >>> 0;
      hi = (value / 4294967296) >>> 0;
    } else {
      const abs = -value;
      lo = ~(abs >>> 0) >>> 0;
      hi = ~((abs / 4294967296) >>> 0) >>> 0;
      lo = (lo + 1) >>> 0;
      if (lo === 0) hi = (hi + 1) >>> 0;
    }
    while (hi > 0 || lo > 0x7f) {
      buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    buf[this.pos++] = lo;
  }

  /** 8 bytes little-endian of a 64-bit bigint (taken modulo 2^64). */
  fixed64(v: bigint): void {
    this.ensure(8);
    // A BigUint64Array store converts without allocating; Buffer.writeBigUInt64LE checks the range with bigint math.
    SCRATCH_U64[0] = v;
    const buf = this.buf;
    const p = this.pos;
    for (let i = 0; i < 8; i++) buf[p + i] = SCRATCH_BYTES[i];
    this.pos = p + 8;
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Raw bytes, no length prefix. */
  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    this.ensure(n);
    if (n > COPY_LOOP_MAX) {
      this.buf.set(bytes, this.pos);
      this.pos += n;
      return;
    }
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = bytes[i];
    this.pos = p;
  }

  /** A length-prefixed byte string. */
  bytes(bytes: Uint8Array): void {
    this.varint(bytes.length);
    this.raw(bytes);
  }

  /** A length-prefixed UTF-8 string. ASCII under 128 chars (nearly every value here) is copied in a JS loop. */
  string(s: string): void {
    const n = s.length;
    if (n < 0x80) {
      this.ensure(n + 1);
      const buf = this.buf;
      const start = this.pos;
      let p = start + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c > 0x7f) break;
        buf[p++] = c;
      }
      if (i === n) {
        buf[start] = n;
        this.pos = p;
        return;
      }
    }
    const len = Buffer.byteLength(s, 'utf8');
    this.varint(len);
    this.ensure(len);
    this.buf.write(s, this.pos, len, 'utf8');
    this.pos += len;
  }

  /** The UTF-8 bytes of `s`, no length prefix. ASCII is copied in a JS loop. */
  utf8(s: string): void {
    const n = s.length;
    this.ensure(n);
    const buf = this.buf;
    let p = this.pos;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) break;
      buf[p++] = c;
    }
    this.pos = p;
    if (i < n) {
      const rest = n - i;
      this.ensure(rest * 3);
      this.pos += this.buf.write(i === 0 ? s : s.slice(i), this.pos, rest * 3, 'utf8');
    }
  }

  /** The decimal ASCII digits of a non-negative integer below 2^32 (a port), no length prefix. */
  decimal(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    let v = value >>> 0;
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    let p = this.pos + digits;
    this.pos = p;
    do {
      const q = Math.floor(v / 10);
      buf[--p] = 0x30 + v - q * 10;
      v = q;
    } while (v > 0);
  }

  /** Starts a length-delimited field's content, reserving `reserve` bytes for its length. */
  begin(reserve = 1): number {
    this.ensure(reserve);
    const at = this.pos;
    this.pos += reserve;
    return at;
  }

  /** Ends the field begun at `at` with `reserve` length bytes: writes the length, moving the content if needed. */
  end(at: number, reserve = 1): void {
    const contentStart = at + reserve;
    const len = this.pos - contentStart;
    const size = varintSize(len);
    if (size !== reserve) {
      this.ensure(size - reserve);
      this.buf.copyWithin(at + size, contentStart, this.pos);
      this.pos += size - reserve;
    }
    let v = len;
    let p = at;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }
}

/** `key` as `0a <len> key 12`: a KeyValue up to its value's length. */
export function keyValueHead(key: string): Buffer {
  const w = new ProtoWriter(key.length * 3 + 8);
  w.byte(T_KV_KEY);
  w.string(key);
  w.byte(T_KV_VALUE);
  return Buffer.from(w.view());
}

/**
 * Encodes AnyValues and attribute lists as the SDK's common-serializer does:
 * the resource and scope of a request (once, at start-up). Flow records have
 * their own encoder (flow-encoder.ts), derived from the record schema.
 */
export class AttributeEncoder {
  /** Each own property of `attributes` as a repeated KeyValue field `fieldTag`. */
  attributes(w: ProtoWriter, attributes: Attributes | Record<string, AnyValue>, fieldTag: number): void {
    for (const key in attributes) {
      if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
      w.byte(fieldTag);
      const kv = w.begin();
      w.raw(keyValueHead(key));
      const v = w.begin();
      this.anyValue(w, attributes[key] as AnyValue);
      w.end(v);
      w.end(kv);
    }
  }

  /** The content of an AnyValue (without its own tag and length). null/undefined write nothing (an empty AnyValue). */
  anyValue(w: ProtoWriter, value: AnyValue): void {
    switch (typeof value) {
      case 'string':
        w.byte(T_ANY_STRING);
        w.string(value);
        return;
      case 'boolean':
        w.byte(T_ANY_BOOL);
        w.byte(value ? 1 : 0);
        return;
      case 'number':
        if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64) {
          w.byte(T_ANY_INT);
          w.varint(value);
        } else {
          w.byte(T_ANY_DOUBLE);
          w.double(value);
        }
        return;
      case 'object':
        if (value === null) return;
        if (value instanceof Uint8Array) {
          w.byte(T_ANY_BYTES);
          w.bytes(value);
        } else if (Array.isArray(value)) {
          w.byte(T_ANY_ARRAY);
          const list = w.begin();
          for (const item of value) {
            w.byte(T_LIST_VALUES);
            const at = w.begin();
            this.anyValue(w, item as AnyValue);
            w.end(at);
          }
          w.end(list);
        } else {
          w.byte(T_ANY_KVLIST);
          const list = w.begin();
          this.attributes(w, value as Record<string, AnyValue>, T_LIST_VALUES);
          w.end(list);
        }
        return;
      default:
        return;
    }
  }
}

/** What the request frame needs of a Resource. */
export interface ResourceLike {
  attributes: Attributes;
  schemaUrl?: string;
}

/** What the request frame needs of an InstrumentationScope. */
export interface ScopeLike {
  name: string;
  version?: string;
  schemaUrl?: string;
  attributes?: Attributes;
}

/** Distinct workload resources a frame keeps encoded at most (the least recently used goes first). Default. */
export const MAX_CACHED_RESOURCES_DEFAULT = 1024;

/** The largest varint of a request's lengths (a batch stays far below 2^35 bytes). */
const MAX_LENGTH_BYTES = 5;

/** Workload objects a frame remembers by identity, with their key and resource bytes, before it hashes a key. */
const RECENT_WORKLOADS = 16;

/** No run is open (distinct from every workload, undefined included). */
const NO_RUN: unique symbol = Symbol('no run');

/**
 * The ExportLogsServiceRequest around runs of encoded log_records fields
 * (each written by flow-encoder.ts): one ResourceLogs with one ScopeLogs per
 * run of consecutive records of one workload, a switch of workload closing
 * the run. Each resource (flowtap's own, each workload's: workloadAttributes
 * over it) and the scope are encoded once; workload resources are cached,
 * the cache bounded (maxCachedResources).
 *
 * In place: a run starts by leaving room for its ResourceLogs head (its
 * largest size) and ends by writing its schema fields; frame() writes each
 * head right before the run's records and closes the gaps of the room left
 * unused, moving each run after the first (a batch with one workload moves
 * nothing). Stateful: it frames the export queue's open batch, begun with
 * open(); the writer must not be written to but by select() and records.
 */
export class LogsRequestFrame {
  private readonly _base: ResourceLike;
  private readonly _baseResource: Buffer;
  private readonly _scope: Buffer;
  private readonly _resourceSchema: Buffer;
  private readonly _scopeSchema: Buffer;
  private readonly _attrs: AttributeEncoder;
  private readonly _cache = new Map<string, Buffer>();
  private readonly _maxCached: number;
  /** The open run's workload, its key, and its resource bytes. */
  private _current: Workload | undefined | typeof NO_RUN = NO_RUN;
  private _currentKey = '';
  /** Per run: where its head room starts, where its records start, where it ends (after its schema fields). */
  private readonly _runs: number[] = [];
  private readonly _runResources: Buffer[] = [];
  /** The last RECENT_WORKLOADS workload objects met, their keys and resources (a ring): a switch among a few finds its resource without hashing. */
  private readonly _recent: (Workload | undefined)[] = new Array<Workload | undefined>(RECENT_WORKLOADS).fill(undefined);
  private readonly _recentKeys: string[] = new Array<string>(RECENT_WORKLOADS).fill('');
  private readonly _recentBytes: (Buffer | undefined)[] = new Array<Buffer | undefined>(RECENT_WORKLOADS).fill(undefined);
  private _recentNext = 0;
  /** Bytes of the open batch that are not records: head room and schema fields. */
  private _overhead = 0;
  /** Distinct workload resources encoded, since start (a cache miss each). */
  resourcesEncoded = 0;

  constructor(resource: ResourceLike, scope: ScopeLike, options: { maxCachedResources?: number } = {}, attrs = new AttributeEncoder()) {
    this._base = resource;
    this._attrs = attrs;
    this._maxCached = options.maxCachedResources ?? MAX_CACHED_RESOURCES_DEFAULT;
    this._baseResource = this._encodeResource(resource.attributes);

    const w = new ProtoWriter(4096);
    w.byte(T_SCOPE_LOGS_SCOPE);
    const at = w.begin();
    w.byte(T_SCOPE_NAME);
    w.string(scope.name);
    if (scope.version) {
      w.byte(T_SCOPE_VERSION);
      w.string(scope.version);
    }
    if (scope.attributes) attrs.attributes(w, scope.attributes, T_SCOPE_ATTRIBUTES);
    w.end(at);
    this._scope = Buffer.from(w.view());

    this._resourceSchema = schemaField(T_RESOURCE_LOGS_SCHEMA_URL, resource.schemaUrl);
    this._scopeSchema = schemaField(T_SCOPE_LOGS_SCHEMA_URL, scope.schemaUrl);
  }

  /** Distinct workload resources cached now (at most maxCachedResources). */
  get cachedResources(): number {
    return this._cache.size;
  }

  private _encodeResource(attributes: Attributes): Buffer {
    const w = new ProtoWriter(1024);
    w.byte(T_RESOURCE_LOGS_RESOURCE);
    const at = w.begin();
    this._attrs.attributes(w, attributes, T_RESOURCE_ATTRIBUTES);
    w.byte(T_RESOURCE_DROPPED);
    w.byte(0);
    w.end(at);
    return Buffer.from(w.view());
  }

  /** The encoded Resource field of `workload` (flowtap's own for none). */
  private _resourceOf(workload: Workload | undefined, key: string): Buffer {
    if (workload === undefined) return this._baseResource;
    const hit = this._cache.get(key);
    if (hit !== undefined) {
      // Most recently used last: the cache lets go of the least recently used.
      this._cache.delete(key);
      this._cache.set(key, hit);
      return hit;
    }
    const bytes = this._encodeResource(workloadResourceAttributes(this._base.attributes, workload));
    this.resourcesEncoded++;
    if (this._cache.size >= this._maxCached) this._cache.delete(this._cache.keys().next().value!);
    this._cache.set(key, bytes);
    return bytes;
  }

  /** Begins a batch in `w` (empty, or reset). */
  open(w: ProtoWriter): void {
    w.pos = 0;
    this._current = NO_RUN;
    this._runs.length = 0;
    this._runResources.length = 0;
    this._overhead = 0;
  }

  /** Bytes of the records written since open() (not the heads and schema fields around them). */
  recordBytes(w: ProtoWriter): number {
    return w.pos - this._overhead;
  }

  /** The next record written to `w` is of `workload`: closes the open run if it is another's, and starts one. */
  select(w: ProtoWriter, workload: Workload | undefined): void {
    if (workload === this._current) return;
    let key = '';
    let resource: Buffer | undefined = this._baseResource;
    if (workload !== undefined) {
      const recent = this._recent;
      let i = 0;
      while (i < RECENT_WORKLOADS && recent[i] !== workload) i++;
      if (i < RECENT_WORKLOADS) {
        key = this._recentKeys[i];
        resource = this._recentBytes[i];
      } else {
        key = workloadKey(workload);
        resource = undefined;
      }
    }
    if (this._current !== NO_RUN && key === this._currentKey) {
      this._current = workload; // the same workload, another object
      return;
    }
    this._closeRun(w);
    if (resource === undefined) {
      resource = this._resourceOf(workload, key);
      const at = this._recentNext;
      this._recent[at] = workload;
      this._recentKeys[at] = key;
      this._recentBytes[at] = resource;
      this._recentNext = (at + 1) % RECENT_WORKLOADS;
    }
    const room = 1 + MAX_LENGTH_BYTES + resource.length + 1 + MAX_LENGTH_BYTES + this._scope.length;
    const start = w.pos;
    w.ensure(room);
    w.pos += room;
    this._overhead += room;
    this._runs.push(start, w.pos, -1);
    this._runResources.push(resource);
    this._current = workload;
    this._currentKey = key;
  }

  /** Ends the open run: its schema fields after its records; a run without records is taken back. */
  private _closeRun(w: ProtoWriter): void {
    if (this._current === NO_RUN) return;
    this._current = NO_RUN;
    const n = this._runs.length;
    if (w.pos === this._runs[n - 2]) {
      const room = w.pos - this._runs[n - 3];
      w.pos = this._runs[n - 3];
      this._overhead -= room;
      this._runs.length = n - 3;
      this._runResources.length--;
      return;
    }
    const tail = this._scopeSchema.length + this._resourceSchema.length;
    w.raw(this._scopeSchema);
    w.raw(this._resourceSchema);
    this._overhead += tail;
    this._runs[n - 1] = w.pos;
  }

  /**
   * The request of the runs written since open(), framed in place. Returns a
   * view of `w.buf`, valid until `w` is reset or written to.
   */
  frame(w: ProtoWriter): Buffer {
    this._closeRun(w);
    const runs = this._runs;
    const scope = this._scope;
    const tail = this._scopeSchema.length + this._resourceSchema.length;
    let start = 0;
    let out = 0;
    for (let r = 0, i = 0; i < runs.length; r++, i += 3) {
      const recordsAt = runs[i + 1];
      const end = runs[i + 2];
      const resource = this._runResources[r];
      const records = end - tail - recordsAt;
      const scopeLogs = scope.length + records + this._scopeSchema.length;
      const resourceLogs = resource.length + 1 + varintSize(scopeLogs) + scopeLogs + this._resourceSchema.length;
      const head = 1 + varintSize(resourceLogs) + resource.length + 1 + varintSize(scopeLogs) + scope.length;
      const headAt = recordsAt - head;
      w.pos = headAt;
      w.byte(T_REQUEST_RESOURCE_LOGS);
      w.varint(resourceLogs);
      w.raw(resource);
      w.byte(T_RESOURCE_LOGS_SCOPE_LOGS);
      w.varint(scopeLogs);
      w.raw(scope);
      if (r === 0) {
        start = headAt;
        out = end;
      } else {
        w.buf.copyWithin(out, headAt, end);
        out += end - headAt;
      }
    }
    w.pos = out;
    return w.buf.subarray(start, out);
  }
}

function schemaField(fieldTag: number, url: string | undefined): Buffer {
  if (!url) return Buffer.alloc(0);
  const w = new ProtoWriter(url.length * 3 + 8);
  w.byte(fieldTag);
  w.string(url);
  return Buffer.from(w.view());
}
