import { resourceFromAttributes } from '@opentelemetry/resources';
import { createSpanExport, spansEndpoint, spansEndpointForLog, type SpansConfig } from '../../../src/export/spans';
import { OtlpSpanExport } from '../../../src/export/otlp/span-sink';
import { OtlpGrpcSender } from '../../../src/export/otlp/grpc-sender';
import { OtlpHttpSender } from '../../../src/export/otlp/http-sender';
import { spanSender } from '../../../src/export/spans';

const base: SpansConfig = {
  spans: 'otlp',
  spansEndpoint: undefined,
  endpoint: 'http://collector:4317',
  otlp: { protocol: 'grpc', tracesProtocol: 'grpc', timeoutMillis: 1000, compression: 'none' },
  batch: { scheduledDelayMillis: 100, exportTimeoutMillis: 1000, maxExportBatchSize: 10 },
  queueMaxRecords: 100,
};

describe('span export set-up', () => {
  it('goes to the spans endpoint, else the records one', () => {
    expect(spansEndpoint(base)).toBe('http://collector:4317');
    expect(spansEndpoint({ ...base, spansEndpoint: 'http://jaeger:4317' })).toBe('http://jaeger:4317');
  });

  it('sends over the spans protocol: gRPC, or OTLP/HTTP', async () => {
    const grpc = spanSender(base);
    expect(grpc).toBeInstanceOf(OtlpGrpcSender);
    const http = spanSender({ ...base, spansEndpoint: 'http://jaeger:4318/v1/traces', otlp: { ...base.otlp, tracesProtocol: 'http/protobuf' } });
    expect(http).toBeInstanceOf(OtlpHttpSender);
    await Promise.all([grpc.shutdown(), http.shutdown()]);
  });

  it('never shows credentials of the endpoint in a log line', () => {
    expect(spansEndpointForLog({ ...base, spansEndpoint: 'https://user:s3cret@jaeger:4317' })).toBe('https://***@jaeger:4317/');
    expect(spansEndpointForLog({ ...base, spansEndpoint: 'https://jaeger:4317' })).toBe('https://jaeger:4317');
  });

  it('is made only for --spans otlp, with the queue sizes of the records', async () => {
    const resource = resourceFromAttributes({ 'service.name': 'flowtap' });
    expect(createSpanExport({ ...base, spans: 'none' }, resource, { name: 'flowtap' }, undefined)).toBeUndefined();
    const made = createSpanExport(base, resource, { name: 'flowtap' }, undefined);
    expect(made).toBeInstanceOf(OtlpSpanExport);
    expect(made!.queue.maxRecords).toBe(100);
    await made!.shutdown();
  });
});
