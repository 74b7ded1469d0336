import { OTLPExporterError } from '@opentelemetry/otlp-exporter-base';
import { classifyHttpError, displayUrl } from '../../../../src/export/otlp/http-sender';

describe('OTLP/HTTP send errors', () => {
  const url = 'https://user:s3cret@collector:4318/v1/logs';

  it('never shows the credentials of a URL', () => {
    expect(displayUrl(url)).toBe('https://collector:4318/v1/logs');
    for (const e of [
      new OTLPExporterError('Unauthorized', 401, 'no'),
      new Error('Export failed with retryable status'),
      Object.assign(new Error('boom'), { code: 'ECONNREFUSED' }),
    ]) {
      expect(classifyHttpError(e, url).error.message).not.toMatch(/s3cret|user/);
    }
  });

  it('a status the receiver would answer again is final; the 404 says where logs go', () => {
    const r = classifyHttpError(new OTLPExporterError('Not Found', 404, '404 page not found\n'), url);
    expect(r.retryable).toBe(false);
    expect(r.error.message).toMatch(
      /^OTLP\/HTTP https:\/\/collector:4318\/v1\/logs answered 404 Not Found: 404 page not found \(an OTLP\/HTTP receiver takes logs at \.\.\.\/v1\/logs;/,
    );
    expect(classifyHttpError(new OTLPExporterError('Bad Request', 400), url)).toMatchObject({ retryable: false });
  });

  it('throttling that outlasted the request, refused connections and timeouts go back to the queue', () => {
    expect(classifyHttpError(new Error('Export failed with retryable status'), url).retryable).toBe(true);
    expect(classifyHttpError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), url).retryable).toBe(true);
    expect(classifyHttpError(new Error('Request timed out'), url).retryable).toBe(true);
    expect(classifyHttpError(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), url).retryable).toBe(false);
  });

  it('an answer in HTTP/2 frames names the gRPC port', () => {
    const settings = Buffer.from('000006040000000000000500004000', 'hex');
    const e = Object.assign(new Error('Parse Error: Expected HTTP/'), { code: 'HPE_INVALID_CONSTANT', rawPacket: settings });
    expect(classifyHttpError(e, url)).toMatchObject({ retryable: false });
    expect(classifyHttpError(e, url).error.message).toMatch(/answered with HTTP\/2 frames: it is an OTLP\/gRPC port/);
    const other = Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_CONSTANT', rawPacket: Buffer.from('SSH-2.0-OpenSSH\r\n') });
    expect(classifyHttpError(other, url).error.message).toMatch(/did not answer in HTTP\/1\.1 \(HPE_INVALID_CONSTANT\)/);
  });
});
