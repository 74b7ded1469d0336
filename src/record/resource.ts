/**
 * The Resource every record carries: defaults < detected host <
 * OTEL_RESOURCE_ATTRIBUTES < OTEL_SERVICE_NAME.
 *
 * The package's envDetector/resourceAttributesEnvDetector read process.env
 * themselves and drop a malformed OTEL_RESOURCE_ATTRIBUTES silently (a debug
 * diag line); here the environment is passed in, and the parser below follows
 * the same rules but throws, so config.ts can reject a bad value at start-up.
 */
import {
  defaultResource,
  detectResources,
  hostDetector,
  resourceFromAttributes,
  type Resource,
  type ResourceDetector,
} from '@opentelemetry/resources';
import { envString, type Env } from '../config/env';
import { ATTR_SERVICE_NAME, SERVICE_NAME_DEFAULT } from './semconv';

/** Longest key or value the SDK's env detector accepts. */
const MAX_LENGTH = 255;

/**
 * Parses OTEL_RESOURCE_ATTRIBUTES ("k1=v1,k2=v2", ',' and '=' percent-encoded
 * inside keys and values). Throws an Error saying what is wrong.
 */
export function parseResourceAttributes(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const kv = entry.split('=');
    if (kv.length !== 2) throw new Error(`entry "${entry}" is not key=value (percent-encode ',' and '=')`);
    const rawKey = kv[0].trim();
    if (rawKey === '') throw new Error(`entry "${entry}" has an empty key`);
    let key: string;
    let value: string;
    try {
      key = decodeURIComponent(rawKey);
      value = decodeURIComponent(kv[1].trim());
    } catch {
      throw new Error(`entry "${entry}" is not valid percent-encoding`);
    }
    if (key.length > MAX_LENGTH) throw new Error(`key "${key}" is longer than ${MAX_LENGTH} characters`);
    if (value.length > MAX_LENGTH) throw new Error(`value of "${key}" is longer than ${MAX_LENGTH} characters`);
    out[key] = value;
  }
  return out;
}

/**
 * Builds the resource. `detectors` default to the package's host detector
 * (host.name, host.arch, host.id); its async attributes are awaited so
 * exporters can read `resource.attributes` at once.
 */
export async function createResource(
  env: Env,
  detectors: ResourceDetector[] = [hostDetector],
): Promise<Resource> {
  const fromEnv = resourceFromAttributes(parseResourceAttributes(envString(env, 'OTEL_RESOURCE_ATTRIBUTES') ?? ''));
  const serviceName = envString(env, 'OTEL_SERVICE_NAME');
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: SERVICE_NAME_DEFAULT }))
    .merge(detectResources({ detectors }))
    .merge(fromEnv)
    .merge(serviceName === undefined ? null : resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }));
  await resource.waitForAsyncAttributes?.();
  return resource;
}
