/**
 * The console exporter: one JSON object per record, one per line, on an
 * injected stream (stdout in production):
 *   {"timestamp":"<ISO-8601, 9 fractional digits>","eventName":"flowtap.flow.begin","severityNumber":9,
 *    "body":"...","attributes":{...},"resource":{...}}
 * Exactly these keys, so the output can be diffed and parsed line by line.
 * With format 'text', one aligned line per record instead (text.ts).
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import { hrTimeToIso } from '../../kernel/clock';
import { recordToText, TEXT_HEADER } from './text';

export const CONSOLE_FORMATS = ['json', 'text'] as const;
export type ConsoleFormat = (typeof CONSOLE_FORMATS)[number];

/** The part of a Writable the exporter uses. */
export interface LineStream {
  /** Returns false when the stream wants the writer to wait for 'drain'. */
  write(chunk: string): boolean;
  /** True once the stream is closed or failed (e.g. EPIPE). */
  readonly destroyed?: boolean;
  once?(event: 'drain' | 'close', listener: () => void): unknown;
  off?(event: 'drain' | 'close', listener: () => void): unknown;
}

const CLOSED: ExportResult = { code: ExportResultCode.FAILED, error: new Error('output stream is closed') };
const SUCCESS: ExportResult = { code: ExportResultCode.SUCCESS };

/** The JSON line of one record, without the newline. */
export function recordToJson(record: ReadableLogRecord, resourceJson?: string): string {
  const head = JSON.stringify({
    timestamp: hrTimeToIso(record.hrTime),
    eventName: record.eventName,
    severityNumber: record.severityNumber,
    body: record.body,
    attributes: record.attributes,
  });
  return `${head.slice(0, -1)},"resource":${resourceJson ?? JSON.stringify(record.resource.attributes)}}`;
}

export class ConsoleJsonLogRecordExporter implements LogRecordExporter {
  private readonly _out: LineStream;
  private _shutdown = false;
  // The resource is the same object for every record of a provider.
  private _resource: Resource | undefined;
  private _resourceJson = '';
  private readonly _format: ConsoleFormat;
  /** Text: the header goes before the first record. */
  private _headerDue: boolean;

  constructor(out: LineStream, format: ConsoleFormat = 'json') {
    this._out = out;
    this._format = format;
    this._headerDue = format === 'text';
  }

  export(logs: ReadableLogRecord[], resultCallback: (result: ExportResult) => void): void {
    if (this._shutdown) {
      resultCallback({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    const out = this._out;
    if (out.destroyed === true) {
      resultCallback(CLOSED);
      return;
    }
    let text = '';
    if (this._headerDue && logs.length > 0) {
      this._headerDue = false;
      text = `${TEXT_HEADER}\n`;
    }
    for (const record of logs) {
      if (this._format === 'text') {
        text += `${recordToText(record, hrTimeToIso(record.hrTime))}\n`;
        continue;
      }
      if (record.resource !== this._resource) {
        this._resource = record.resource;
        this._resourceJson = JSON.stringify(record.resource.attributes);
      }
      text += `${recordToJson(record, this._resourceJson)}\n`;
    }
    let flushed: boolean;
    try {
      flushed = out.write(text);
    } catch (e) {
      resultCallback({ code: ExportResultCode.FAILED, error: e instanceof Error ? e : new Error(String(e)) });
      return;
    }
    if (flushed || out.once === undefined) {
      resultCallback(SUCCESS);
      return;
    }
    // Wait for a slow reader: the batch processor then queues, and counts
    // what it has to drop, instead of this process buffering without bound.
    // A reader that goes away (EPIPE) closes the stream: fail, don't hang.
    let settled = false;
    const settle = (result: ExportResult): void => {
      if (settled) return;
      settled = true;
      out.off?.('drain', onDrain);
      out.off?.('close', onClose);
      resultCallback(result);
    };
    const onDrain = (): void => settle(SUCCESS);
    const onClose = (): void => settle(CLOSED);
    out.once('drain', onDrain);
    out.once('close', onClose);
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this._shutdown = true;
    return Promise.resolve();
  }
}
