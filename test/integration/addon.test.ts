/**
 * The real addon (build/flowtap.node) takes checked, complete options
 * (src/kernel/probe.ts probeOptions) and checks only their types: a wrong
 * type is a TypeError naming the argument; a value out of flowtap's ranges
 * but of the right type goes through to the kernel side. Nothing here gets
 * far enough to load programs: the cgroup does not exist.
 */
import { join } from 'node:path';
import { probeOptions, type AddonBinding, type AddonProbeOptions } from '../../src/kernel/probe';

const addon = require(join(__dirname, '..', '..', 'build', 'flowtap.node')) as AddonBinding;
const MISSING = '/nonexistent-flowtap-addon';

function attempt(over: (o: AddonProbeOptions) => AddonProbeOptions): Error {
  const base = probeOptions({ cgroupPath: MISSING, onBatch: () => undefined });
  try {
    new addon.Probe(over(base));
  } catch (e) {
    return e as Error;
  }
  throw new Error('the addon took it');
}

describe('native addon: types only', () => {
  it.each<[string, (o: AddonProbeOptions) => AddonProbeOptions, RegExp]>([
    ['cgroupPath', (o) => ({ ...o, cgroupPath: 7 as never }), /^options\.cgroupPath must be a string, got 7$/],
    [
      'ringBufferBytes',
      (o) => ({ ...o, ringBufferBytes: '8' as never }),
      /^options\.ringBufferBytes must be a uint32 \(a whole number from 0 to 4294967295\), got a string$/,
    ],
    ['flowTableEntries', (o) => ({ ...o, flowTableEntries: 2 ** 32 }), /^options\.flowTableEntries must be a uint32 .*got 4294967296$/],
    ['pollIntervalMillis', (o) => ({ ...o, pollIntervalMillis: 1.5 }), /^options\.pollIntervalMillis must be a uint32/],
    ['maxPendingBytes', (o) => ({ ...o, maxPendingBytes: -1 }), /^options\.maxPendingBytes must be a safe integer/],
    ['filters', (o) => ({ ...o, filters: undefined as never }), /^options\.filters must be an object, got undefined$/],
    [
      'filters.directions',
      (o) => ({ ...o, filters: { ...o.filters, directions: 256 } }),
      /^options\.filters\.directions must be a uint8 \(a whole number from 0 to 255\), got 256$/,
    ],
    [
      'filters.portSkip',
      (o) => ({ ...o, filters: { ...o.filters, portSkip: Buffer.alloc(10) } }),
      /^options\.filters\.portSkip must be a Buffer of 8192 bytes, got 10 bytes$/,
    ],
    [
      'filters.cidr4Keys',
      (o) => ({ ...o, filters: { ...o.filters, cidr4Keys: Buffer.alloc(7) } }),
      /^options\.filters\.cidr4Keys must be a Buffer of a multiple of 8 bytes, got 7 bytes$/,
    ],
    [
      'filters.cidr6Values',
      (o) => ({ ...o, filters: { ...o.filters, cidr6Keys: Buffer.alloc(20) } }),
      /^options\.filters\.cidr6Values must be a Buffer of 4 bytes, got 0 bytes$/,
    ],
    [
      'filters.cidr4Values',
      (o) => ({ ...o, filters: { ...o.filters, cidr4Values: Buffer.alloc(4) } }),
      /^options\.filters\.cidr4Values must be a Buffer of 0 bytes, got 4 bytes$/,
    ],
    ['onBatch', (o) => ({ ...o, onBatch: undefined as never }), /^options\.onBatch must be a function, got undefined$/],
  ])('%s of the wrong type: a TypeError naming it', (_name, over, re) => {
    const e = attempt(over);
    // the addon's TypeError comes from Node's realm, not jest's: compare by name
    expect(e.name).toBe('TypeError');
    expect(e.message).toMatch(re);
  });

  it('no range check of its own: values flowtap would refuse, of the right types, reach the cgroup', () => {
    const e = attempt((o) => ({ ...o, pollIntervalMillis: 0, ringBufferBytes: 3, flowTableEntries: 0 })) as Error & { step?: string };
    expect(e.name).toBe('Error');
    expect(e.step).toBe('open_cgroup');
    expect(e.message).toBe(`cgroup path ${MISSING} does not exist`);
  });
});
