/**
 * flowtap's own Resource: defaults < detected host <
 * OTEL_RESOURCE_ATTRIBUTES < OTEL_SERVICE_NAME; and each workload's (the
 * container and pod of a flow's local socket): flowtap's own with the
 * workload's container.id and k8s.pod.uid over it. A record without a
 * workload carries flowtap's own.
 *
 * The package's envDetector/resourceAttributesEnvDetector read process.env
 * themselves and drop a malformed OTEL_RESOURCE_ATTRIBUTES silently (a debug
 * diag line); here the environment is passed in, and the parser below follows
 * the same rules but throws, so config.ts can reject a bad value at start-up.
 */
import { defaultResource, detectResources, hostDetector, resourceFromAttributes, type Resource, type ResourceDetector } from '@opentelemetry/resources';
import type { Attributes } from '@opentelemetry/api';
import { envString, type Env } from '../config/env';
import type { Workload } from '../enrich/container';
import { ATTR_CONTAINER_ID, ATTR_K8S_POD_UID, ATTR_SERVICE_NAME, SERVICE_NAME_DEFAULT } from './semconv';

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
export async function createResource(env: Env, detectors: ResourceDetector[] = [hostDetector]): Promise<Resource> {
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

/** A workload's own resource attributes (the part over flowtap's Resource). */
export function workloadAttributes(workload: Workload): Attributes {
  const out: Attributes = {};
  if (workload.containerId !== undefined) out[ATTR_CONTAINER_ID] = workload.containerId;
  if (workload.podUid !== undefined) out[ATTR_K8S_POD_UID] = workload.podUid;
  return out;
}

/**
 * The attributes of workloadResource(base, workload), in the order the SDK's
 * Resource.merge gives them (the workload's first, then the rest of base's):
 * the OTLP encoder writes them in this order.
 */
export function workloadResourceAttributes(base: Attributes, workload: Workload): Attributes {
  const own = workloadAttributes(workload);
  return { ...own, ...base, ...own };
}

/**
 * The Resource of a workload's records: `base` (flowtap's own) with the
 * workload's attributes over it, so a k8s.pod.uid in OTEL_RESOURCE_ATTRIBUTES
 * (flowtap's own pod on a DaemonSet) yields to the socket's.
 */
export function workloadResource(base: Resource, workload: Workload | undefined): Resource {
  return workload === undefined ? base : base.merge(resourceFromAttributes(workloadAttributes(workload)));
}
