// Reads OTLP log requests as bytes on the wire (protobuf), independently of
// src/: the fake collectors of the export tests count what they received
// with it. Only what the tests need: the log records of an
// ExportLogsServiceRequest, each with its time_unix_nano and raw bytes.
//
//   ExportLogsServiceRequest.resource_logs = 1 → ResourceLogs.scope_logs = 2
//   → ScopeLogs.log_records = 2 → LogRecord.time_unix_nano = 1 (fixed64)

export interface WireLogRecord {
  timeUnixNano: bigint;
  bytes: Buffer;
}

/** Calls `onField(field, wireType, value)` for each field of `buf`; value is the bytes of a length-delimited field. */
function walk(buf: Buffer, onField: (field: number, wireType: number, value: Buffer | bigint) => void): void {
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wireType = key & 7;
    switch (wireType) {
      case 0:
        onField(field, wireType, varint());
        break;
      case 1:
        onField(field, wireType, buf.readBigUInt64LE(pos));
        pos += 8;
        break;
      case 2: {
        const len = Number(varint());
        if (pos + len > buf.length) throw new Error('truncated field');
        onField(field, wireType, buf.subarray(pos, pos + len));
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wireType}`);
    }
  }
}

/** The log records of one ExportLogsServiceRequest, in order. */
export function logRecordsOf(request: Buffer): WireLogRecord[] {
  const out: WireLogRecord[] = [];
  walk(request, (f, wt, resourceLogs) => {
    if (f !== 1 || wt !== 2) return;
    walk(resourceLogs as Buffer, (f2, wt2, scopeLogs) => {
      if (f2 !== 2 || wt2 !== 2) return;
      walk(scopeLogs as Buffer, (f3, wt3, record) => {
        if (f3 !== 2 || wt3 !== 2) return;
        let timeUnixNano = 0n;
        walk(record as Buffer, (f4, wt4, v) => {
          if (f4 === 1 && wt4 === 1) timeUnixNano = v as bigint;
        });
        out.push({ timeUnixNano, bytes: record as Buffer });
      });
    });
  });
  return out;
}
