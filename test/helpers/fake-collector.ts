// A scripted OTLP/gRPC logs receiver for the export tests: a real gRPC
// server (@grpc/grpc-js, the library the SDK's exporter uses) that answers
// each Export call as `answer` says — a gRPC status code to fail it, or 0 to
// accept it — and keeps the log records of the calls it accepted. For what
// a real collector would do, use collector.ts; this one fails on purpose.
import * as grpc from '@grpc/grpc-js';
import { logRecordsOf, type WireLogRecord } from './otlp-wire';

const EXPORT_PATH = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

export interface FakeCall {
  /** gRPC status code answered (0 = OK). */
  code: number;
  records: number;
}

export interface FakeCollector {
  readonly endpoint: string;
  /** Every call, in arrival order. */
  readonly calls: FakeCall[];
  /** The records of the accepted calls. */
  readonly accepted: WireLogRecord[];
  close(): Promise<void>;
}

/** `answer(i)` for the i-th call (0-based): a grpc status code, or 0 to accept. */
export async function startFakeCollector(answer: (call: number) => number): Promise<FakeCollector> {
  const server = new grpc.Server();
  const calls: FakeCall[] = [];
  const accepted: WireLogRecord[] = [];
  const identity = (b: Buffer): Buffer => b;
  server.addService(
    {
      export: {
        path: EXPORT_PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const records = logRecordsOf(call.request);
        const code = answer(calls.length);
        calls.push({ code, records: records.length });
        if (code === 0) {
          accepted.push(...records);
          callback(null, Buffer.alloc(0)); // an empty ExportLogsServiceResponse: full success
        } else {
          callback({ code, details: `scripted ${grpc.status[code]}` });
        }
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    accepted,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
