import type { ResourceDetector } from '@opentelemetry/resources';
import { createResource, parseResourceAttributes } from '../../../src/record/resource';

const host: ResourceDetector = { detect: () => ({ attributes: { 'host.name': 'node-1', 'host.id': Promise.resolve('abc') } }) };

describe('createResource', () => {
  it('defaults service.name to flowtap and carries host.name and the SDK attributes', async () => {
    const r = await createResource({}, [host]);
    expect(r.asyncAttributesPending).toBe(false);
    expect(r.attributes).toMatchObject({
      'service.name': 'flowtap',
      'host.name': 'node-1',
      'host.id': 'abc',
      'telemetry.sdk.language': 'nodejs',
      'telemetry.sdk.name': 'opentelemetry',
    });
  });

  it('OTEL_RESOURCE_ATTRIBUTES beats detection, OTEL_SERVICE_NAME beats everything', async () => {
    const r = await createResource(
      { OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,host.name=pinned,k8s.pod.name=web%2C1', OTEL_SERVICE_NAME: 'edge-flows' },
      [host],
    );
    expect(r.attributes['service.name']).toBe('edge-flows');
    expect(r.attributes['host.name']).toBe('pinned');
    expect(r.attributes['k8s.pod.name']).toBe('web,1');
    const r2 = await createResource({ OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs', OTEL_SERVICE_NAME: ' ' }, [host]);
    expect(r2.attributes['service.name']).toBe('from-attrs');
  });

  it('uses the package host detector by default', async () => {
    const r = await createResource({});
    expect(typeof r.attributes['host.name']).toBe('string');
  });
});

describe('parseResourceAttributes', () => {
  it('parses percent-encoded key=value lists, skipping empty entries', () => {
    expect(parseResourceAttributes(' a = 1 ,, b%3Dc=x%2Cy ,')).toEqual({ a: '1', 'b=c': 'x,y' });
    expect(parseResourceAttributes('')).toEqual({});
  });

  it.each([
    ['a', "entry \"a\" is not key=value (percent-encode ',' and '=')"],
    ['a=b=c', "entry \"a=b=c\" is not key=value (percent-encode ',' and '=')"],
    ['=v', 'entry "=v" has an empty key'],
    ['a=%zz', 'entry "a=%zz" is not valid percent-encoding'],
    [`a=${'x'.repeat(256)}`, 'value of "a" is longer than 255 characters'],
  ])('rejects %s', (raw, message) => {
    expect(() => parseResourceAttributes(raw)).toThrow(message);
  });
});
