/**
 * `--console-format text`: one aligned line per record, for a person at a
 * terminal (the JSON lines are for programs):
 *
 *   TIME                     EVENT DIRECTION PROCESS         FLOW                                                   DURATION  BYTES REASON
 *   2026-12-02T18:54:44.657Z begin outgoing  curl/4242       127.0.0.1:34398 → 127.0.0.1:18080
 *   2026-12-02T18:54:44.784Z end   outgoing  curl/4242       127.0.0.1:34398 → 127.0.0.1:18080                      127.0 ms 78/4.0K fin by destination
 *
 * PROCESS is `name/pid` of the flow's process ('-' when the record names
 * none); BYTES is `sent/received` by the watched socket, on an end that
 * carries its counters. A value wider than its column pushes the rest of its
 * line right; every other column keeps its width.
 */
import type { AnyValue, Attributes } from '@opentelemetry/api';
import type { ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { hostPort } from '../../record/record';
import {
  ATTR_DESTINATION_ADDRESS,
  ATTR_DESTINATION_PORT,
  ATTR_SOURCE_ADDRESS,
  ATTR_SOURCE_PORT,
  ATTR_FLOWTAP_FLOW_CLOSE_REASON,
  ATTR_FLOWTAP_FLOW_CLOSED_BY,
  ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS,
  ATTR_FLOWTAP_FLOW_DIRECTION,
  ATTR_FLOWTAP_FLOW_DURATION,
  ATTR_FLOWTAP_FLOW_BYTES_RECEIVED,
  ATTR_FLOWTAP_FLOW_BYTES_SENT,
  ATTR_PROCESS_EXECUTABLE_NAME,
  ATTR_PROCESS_PID,
  EVENT_FLOWTAP_FLOW_BEGIN,
  EVENT_FLOWTAP_FLOW_END,
  EVENT_FLOWTAP_FLOW_ATTEMPT,
  ATTR_FLOWTAP_FLOW_ATTEMPT_REASON,
  ATTR_FLOWTAP_FLOW_ATTEMPT_DURATION,
} from '../../record/semconv';

/** Column widths (the last column, REASON, has none). */
const W = { time: 24, event: 5, direction: 9, process: 15, flow: 52, duration: 10, bytes: 6 } as const;

const EVENT_WORDS: Record<string, string> = { [EVENT_FLOWTAP_FLOW_BEGIN]: 'begin', [EVENT_FLOWTAP_FLOW_END]: 'end', [EVENT_FLOWTAP_FLOW_ATTEMPT]: 'fail' };

/** The header line, without the newline. */
export const TEXT_HEADER = line(['TIME', 'EVENT', 'DIRECTION', 'PROCESS', 'FLOW', 'DURATION', 'BYTES', 'REASON']);

function line([time, event, direction, process, flow, duration, bytes, reason]: string[]): string {
  return [
    time.padEnd(W.time),
    event.padEnd(W.event),
    direction.padEnd(W.direction),
    process.padEnd(W.process),
    flow.padEnd(W.flow),
    duration.padStart(W.duration),
    bytes.padStart(W.bytes),
    reason,
  ]
    .join(' ')
    .trimEnd();
}

const str = (v: AnyValue | undefined): string => (v === undefined || v === null ? '' : String(v));

/** A duration in seconds as a person reads it: 12 µs, 3.4 ms, 250.0 ms, 2.00 s, 1 m 05 s. */
export function formatDuration(seconds: number): string {
  if (seconds < 0.001) return `${Math.round(seconds * 1e6)} µs`;
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
  if (seconds < 60) return `${seconds.toFixed(2)} s`;
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, '0');
  return h > 0 ? `${h} h ${String(m).padStart(2, '0')} m` : `${m} m ${s} s`;
}

/** A byte count as a person reads it: 512, 4.0K, 12M, 1.5G (powers of 1024). */
export function formatBytes(n: number): string {
  if (n < 1024) return String(n);
  const units = ['K', 'M', 'G', 'T'];
  let v = n / 1024;
  let u = 0;
  for (; v >= 1024 && u < units.length - 1; u++) v /= 1024;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[u]}`;
}

/** `name/pid` of the record's process, or '-'. */
function processText(a: Attributes): string {
  const pid = a[ATTR_PROCESS_PID];
  if (pid === undefined) return '-';
  const name = a[ATTR_PROCESS_EXECUTABLE_NAME];
  return name === undefined ? str(pid) : `${str(name)}/${str(pid)}`;
}

/** `sent/received`, or '' without the counters. */
function bytesText(a: Attributes): string {
  const sent = a[ATTR_FLOWTAP_FLOW_BYTES_SENT];
  const received = a[ATTR_FLOWTAP_FLOW_BYTES_RECEIVED];
  return typeof sent === 'number' && typeof received === 'number' ? `${formatBytes(sent)}/${formatBytes(received)}` : '';
}

/** `src:port → dst:port (name)`, the name when DNS gave one. */
function flowText(a: Attributes): string {
  const names = a[ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS];
  const name = Array.isArray(names) && names.length > 0 ? ` (${String(names[0])})` : '';
  const src = hostPort(str(a[ATTR_SOURCE_ADDRESS]), Number(a[ATTR_SOURCE_PORT]));
  const dst = hostPort(str(a[ATTR_DESTINATION_ADDRESS]), Number(a[ATTR_DESTINATION_PORT]));
  return `${src} → ${dst}${name}`;
}

/** The text line of one record, without the newline. `isoTime` is its timestamp (ISO-8601, 9 digits). */
export function recordToText(record: Pick<ReadableLogRecord, 'eventName' | 'attributes'>, isoTime: string): string {
  const a = record.attributes;
  // an attempt: how long it tried, and why it failed
  const duration = a[ATTR_FLOWTAP_FLOW_DURATION] ?? a[ATTR_FLOWTAP_FLOW_ATTEMPT_DURATION];
  const reason = a[ATTR_FLOWTAP_FLOW_CLOSE_REASON] ?? a[ATTR_FLOWTAP_FLOW_ATTEMPT_REASON];
  const by = a[ATTR_FLOWTAP_FLOW_CLOSED_BY];
  return line([
    `${isoTime.slice(0, 23)}Z`, // milliseconds
    EVENT_WORDS[record.eventName ?? ''] ?? str(record.eventName),
    str(a[ATTR_FLOWTAP_FLOW_DIRECTION]),
    processText(a),
    flowText(a),
    typeof duration === 'number' ? formatDuration(duration) : '',
    bytesText(a),
    reason === undefined ? '' : by === undefined ? str(reason) : `${str(reason)} by ${str(by)}`,
  ]);
}
