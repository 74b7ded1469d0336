// Reads OTLP log requests as bytes on the wire (protobuf), independently of
// src/: the fake collectors of the export tests count what they received
// with it, and the benchmarks read the collector's file exporter output
// (format: proto) with it. Only what they need: the log records of an
// ExportLogsServiceRequest, each with its time_unix_nano and raw bytes.
//
//   ExportLogsServiceRequest.resource_logs = 1 → ResourceLogs.scope_logs = 2
//   → ScopeLogs.log_records = 2 → LogRecord.time_unix_nano = 1 (fixed64)
import { closeSync, openSync, readSync } from 'node:fs';

export interface WireLogRecord {
  timeUnixNano: bigint;
  bytes: Buffer;
}

/**
 * Calls `onField(field, wireType, start, end)` for each field of the message
 * in buf[from, to): for a length-delimited field (wire type 2) start..end are
 * its bytes, for the others the bytes of the value as encoded.
 */
export function fields(buf: Buffer, from: number, to: number, onField: (field: number, wireType: number, start: number, end: number) => void): void {
  let pos = from;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (;;) {
      if (pos >= to) throw new Error(`truncated varint at ${pos}`);
      const b = buf[pos++];
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return v;
      mul *= 128;
    }
  };
  while (pos < to) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    const start = pos;
    switch (wireType) {
      case 0:
        varint();
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint();
        if (pos + len > to) throw new Error(`truncated field ${field} at ${pos}`);
        onField(field, wireType, pos, pos + len);
        pos += len;
        continue;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wireType} at ${start}`);
    }
    if (pos > to) throw new Error(`truncated field ${field} at ${start}`);
    onField(field, wireType, start, pos);
  }
}

/** Calls `onRecord(buf, start, end)` for each LogRecord of the ExportLogsServiceRequest in buf[from, to), in order. */
export function forEachLogRecord(buf: Buffer, from: number, to: number, onRecord: (buf: Buffer, start: number, end: number) => void): void {
  fields(buf, from, to, (f1, w1, s1, e1) => {
    if (f1 !== 1 || w1 !== 2) return; // resource_logs
    fields(buf, s1, e1, (f2, w2, s2, e2) => {
      if (f2 !== 2 || w2 !== 2) return; // scope_logs
      fields(buf, s2, e2, (f3, w3, s3, e3) => {
        if (f3 === 2 && w3 === 2) onRecord(buf, s3, e3); // log_records
      });
    });
  });
}

/** A LogRecord's time_unix_nano (0n when absent). */
export function recordTimeUnixNano(buf: Buffer, start: number, end: number): bigint {
  let t = 0n;
  fields(buf, start, end, (f, w, s) => {
    if (f === 1 && w === 1) t = buf.readBigUInt64LE(s);
  });
  return t;
}

/** The log records of one ExportLogsServiceRequest, in order. */
export function logRecordsOf(request: Buffer): WireLogRecord[] {
  const out: WireLogRecord[] = [];
  forEachLogRecord(request, 0, request.length, (buf, s, e) => out.push({ timeUnixNano: recordTimeUnixNano(buf, s, e), bytes: buf.subarray(s, e) }));
  return out;
}

/**
 * Calls onRequest(buf, from, to) for each request in a file exporter's proto
 * output (each ExportLogsServiceRequest preceded by its length, 4 bytes
 * big-endian), reading the file in 16 MiB chunks. Returns the bytes of a
 * truncated request left at the end (0 when the file ends on a request).
 */
export function forEachProtoRequest(path: string, onRequest: (buf: Buffer, from: number, to: number) => void): number {
  const fd = openSync(path, 'r');
  try {
    const chunk = Buffer.alloc(16 << 20);
    let carry = Buffer.alloc(0);
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return carry.length;
      const buf = Buffer.concat([carry, chunk.subarray(0, n)]);
      let pos = 0;
      while (buf.length - pos >= 4) {
        const len = buf.readUInt32BE(pos);
        if (buf.length - pos - 4 < len) break;
        onRequest(buf, pos + 4, pos + 4 + len);
        pos += 4 + len;
      }
      carry = Buffer.from(buf.subarray(pos));
    }
  } finally {
    closeSync(fd);
  }
}
