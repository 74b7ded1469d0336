import { ProtobufLogsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { acceptedResult, LOGS_SIGNAL, TRACES_SIGNAL } from '../../../../src/export/otlp/signal';

describe('OTLP signals', () => {
  it('a partial success counts the rejected items, named by the signal and by who rejected them', () => {
    expect(acceptedResult(LOGS_SIGNAL, undefined, 'collector')).toEqual({ ok: true });
    expect(acceptedResult(LOGS_SIGNAL, { rejected: 0, errorMessage: undefined }, 'collector')).toEqual({ ok: true });
    const r = acceptedResult(TRACES_SIGNAL, { rejected: 3, errorMessage: 'too old' }, 'receiver');
    expect(r.ok).toBe(true);
    expect(r.rejected).toBe(3);
    expect(r.error?.message).toBe('receiver rejected 3 spans: too old');
  });

  it("reads the rejected count of each signal's own response message", () => {
    // An empty response: no partial success, nothing rejected.
    expect(LOGS_SIGNAL.partialSuccess(new Uint8Array(0))).toBeUndefined();
    expect(TRACES_SIGNAL.partialSuccess(new Uint8Array(0))).toBeUndefined();
    // ExportLogsServiceResponse{partial_success{rejected_log_records: 7, error_message: "x"}}: field 1 { 1: 7, 2: "x" }
    const logs = Uint8Array.from([0x0a, 0x05, 0x08, 0x07, 0x12, 0x01, 0x78]);
    expect(ProtobufLogsSerializer.deserializeResponse(logs).partialSuccess?.rejectedLogRecords).toBeDefined();
    expect(LOGS_SIGNAL.partialSuccess(logs)).toEqual({ rejected: 7, errorMessage: 'x' });
    expect(ProtobufTraceSerializer.deserializeResponse(logs).partialSuccess?.rejectedSpans).toBeDefined();
    expect(TRACES_SIGNAL.partialSuccess(logs)).toEqual({ rejected: 7, errorMessage: 'x' });
  });
});
