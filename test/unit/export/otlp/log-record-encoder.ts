/**
 * A generic log record encoder, for the tests only: any FlowRecord (also
 * ones mapFlow never makes: every AnyValue kind) as a ScopeLogs.log_records
 * field, by walking its attributes with the request's AttributeEncoder. The
 * tests hold it to the SDK serializer's bytes, and so check the
 * AttributeEncoder and LogsRequestFrame that production uses.
 */
import {
  AttributeEncoder,
  ProtoWriter,
  T_LOG_ATTRIBUTES,
  T_LOG_BODY,
  T_LOG_DROPPED,
  T_LOG_EVENT_NAME,
  T_LOG_OBSERVED_TIME,
  T_LOG_SEVERITY_NUMBER,
  T_LOG_TIME,
  T_SCOPE_LOGS_LOG_RECORDS,
} from '../../../../src/export/otlp/proto';
import type { FlowRecord } from '../../../../src/record/record';

/** Encodes any FlowRecord as a ScopeLogs.log_records field, by a generic walk of its attributes. */
export class LogRecordEncoder {
  private readonly _attrs: AttributeEncoder;

  constructor(attrs = new AttributeEncoder()) {
    this._attrs = attrs;
  }

  /** One `log_records` field (tag, length, LogRecord) for `record`, observed at `observedNs`. */
  encode(w: ProtoWriter, record: FlowRecord, observedNs: bigint): void {
    w.byte(T_SCOPE_LOGS_LOG_RECORDS);
    // A flow record is 128..16383 bytes: two length bytes, moved only otherwise.
    const at = w.begin(2);
    w.byte(T_LOG_TIME);
    w.fixed64(record.timestampNs);
    if (record.severityNumber !== undefined && record.severityNumber !== 0) {
      w.byte(T_LOG_SEVERITY_NUMBER);
      w.varint(record.severityNumber);
    }
    if (record.body !== undefined) {
      w.byte(T_LOG_BODY);
      const body = w.begin();
      this._attrs.anyValue(w, record.body);
      w.end(body);
    }
    this._attrs.attributes(w, record.attributes, T_LOG_ATTRIBUTES);
    w.byte(T_LOG_DROPPED);
    w.byte(0);
    w.byte(T_LOG_OBSERVED_TIME);
    w.fixed64(observedNs);
    if (record.eventName) {
      w.byte(T_LOG_EVENT_NAME);
      w.string(record.eventName);
    }
    w.end(at, 2);
  }
}
