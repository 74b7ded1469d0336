import * as path from 'node:path';
import {
  describeProbeError,
  loadBinding,
  missingCapabilities,
  probeOptions,
  type AddonProbeOptions,
  type NativeError,
  type NativeProbeOptions,
} from '../../../src/kernel/probe';
import { ABI_VERSION, LAYOUT } from '../../../src/kernel/layout';
import { LIMITS } from '../../../src/config/limits';

function nativeError(message: string, code: string, step: string): NativeError {
  return Object.assign(new Error(message), { code, step, errno: 1 });
}

describe('describeProbeError', () => {
  it('missing privilege: exit 1, naming the capabilities', () => {
    expect(describeProbeError(nativeError('loading the eBPF programs was refused (EPERM)', 'EPERM', 'load'), '/sys/fs/cgroup')).toEqual({
      exitCode: 1,
      message: 'loading the eBPF programs was refused (EPERM): flowtap needs CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN before Linux 5.8), or root',
    });
    const attach = 'attaching to cgroup /x was refused (EACCES): flowtap needs CAP_NET_ADMIN';
    expect(describeProbeError(nativeError(attach, 'EACCES', 'attach_ingress'), '/x')).toEqual({ exitCode: 1, message: attach });
  });

  it('a bad --cgroup: exit 2, naming the flag', () => {
    expect(describeProbeError(nativeError('cgroup path /nope does not exist', 'ENOENT', 'open_cgroup'), '/nope')).toEqual({
      exitCode: 2,
      message: '--cgroup /nope: cgroup path /nope does not exist',
    });
    expect(describeProbeError(nativeError('/proc is not a cgroup v2 directory (it is on proc)', 'EINVAL', 'open_cgroup'), '/proc').exitCode).toBe(2);
  });

  it('a bad FLOWTAP_CGROUP: names the variable', () => {
    expect(describeProbeError(nativeError('cgroup path /nope does not exist', 'ENOENT', 'open_cgroup'), '/nope', [], 'FLOWTAP_CGROUP').message).toBe(
      'FLOWTAP_CGROUP /nope: cgroup path /nope does not exist',
    );
  });

  it('anything else: exit 2 with step and errno', () => {
    expect(describeProbeError(nativeError('the kernel rejected the eBPF programs (EINVAL):', 'EINVAL', 'load'), '/x')).toEqual({
      exitCode: 2,
      message: 'the kernel rejected the eBPF programs (EINVAL): [step load, EINVAL]',
    });
    expect(describeProbeError('weird', '/x')).toEqual({ exitCode: 2, message: 'weird [step unknown, no errno]' });
  });
});

describe('loadBinding', () => {
  const fake = {
    abiVersion: ABI_VERSION,
    counterNames: [],
    layout: () => ({ ...LAYOUT }),
    clockAnchor: () => ({ realtimeNs: 0n, boottimeNs: 0n }),
    Probe: class {},
  };

  it('loads build/flowtap.node below the package root', () => {
    const seen: string[] = [];
    const b = loadBinding('/opt/flowtap', (id) => (seen.push(id), fake));
    expect(b.abiVersion).toBe(fake.abiVersion);
    expect(b.counterNames).toBe(fake.counterNames);
    expect(b.layout()).toEqual(fake.layout());
    expect(seen).toEqual([path.join('/opt/flowtap', 'build', 'flowtap.node')]);
  });

  it("hands the addon's Probe checked, complete options, and refuses bad ones before it sees them", () => {
    const given: AddonProbeOptions[] = [];
    const made = { counters: () => ({}) };
    const addon = {
      ...fake,
      Probe: function Probe(o: AddonProbeOptions) {
        given.push(o);
        return made;
      },
    };
    const b = loadBinding('/opt/flowtap', () => addon);
    const onBatch = () => undefined;
    expect(new b.Probe({ cgroupPath: '/cg', onBatch })).toBe(made);
    expect(given).toHaveLength(1);
    expect(given[0]).toMatchObject({ cgroupPath: '/cg', ringBufferBytes: LIMITS.ringBufferBytes.default, onBatch });
    expect(() => new b.Probe({ cgroupPath: '/cg', ringBufferBytes: 3, onBatch })).toThrow(TypeError);
    expect(given).toHaveLength(1);
  });

  it('refuses an addon built from another record ABI', () => {
    expect(() => loadBinding('/opt/flowtap', () => ({ ...fake, abiVersion: ABI_VERSION + 1 }))).toThrow(
      `native addon /opt/flowtap/build/flowtap.node has record ABI ${ABI_VERSION + 1}, the decoder reads ${ABI_VERSION}: rebuild (make build)`,
    );
  });

  it('says how to build a missing addon', () => {
    expect(() =>
      loadBinding('/opt/flowtap', () => {
        throw new Error('Cannot find module');
      }),
    ).toThrow('cannot load the native addon /opt/flowtap/build/flowtap.node (run make build): Cannot find module');
  });
});

describe('missingCapabilities', () => {
  const status = (capEff: string) => `Name:\tnode\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\nCapBnd:\t000001ffffffffff\n`;

  it('names the required capabilities missing from CapEff', () => {
    expect(missingCapabilities(status('000001ffffffffff'))).toEqual([]);
    // CAP_BPF (39) + CAP_NET_ADMIN (12)
    expect(missingCapabilities(status('0000008000001000'))).toEqual([]);
    expect(missingCapabilities(status('0000008000000000'))).toEqual(['CAP_NET_ADMIN']);
    expect(missingCapabilities(status('0000000000000000'))).toEqual(['CAP_BPF', 'CAP_NET_ADMIN']);
  });

  it('knows nothing without a CapEff line', () => {
    expect(missingCapabilities(undefined)).toEqual([]);
    expect(missingCapabilities('Name:\tnode\n')).toEqual([]);
  });
});

describe('describeProbeError with the missing capabilities', () => {
  it('one line naming what is missing, without the verifier log', () => {
    const verifier = 'the kernel rejected the eBPF programs (EACCES):\nlibbpf: prog load failed\n0: R1=ctx()';
    expect(describeProbeError(nativeError(verifier, 'EACCES', 'load'), '/x', ['CAP_BPF'])).toEqual({
      exitCode: 1,
      message: 'the kernel rejected the eBPF programs (EACCES): missing CAP_BPF (flowtap needs CAP_BPF and CAP_NET_ADMIN, or root)',
    });
    const attach = 'attaching to cgroup /x was refused (EPERM): flowtap needs CAP_NET_ADMIN';
    expect(describeProbeError(nativeError(attach, 'EPERM', 'attach_ingress'), '/x', ['CAP_NET_ADMIN']).message).toBe(
      'attaching to cgroup /x was refused (EPERM): missing CAP_NET_ADMIN (flowtap needs CAP_BPF and CAP_NET_ADMIN, or root)',
    );
  });

  it('an error that is not about permission is unchanged', () => {
    expect(describeProbeError(nativeError('cgroup path /nope does not exist', 'ENOENT', 'open_cgroup'), '/nope', ['CAP_BPF']).exitCode).toBe(2);
  });
});

describe('probeOptions', () => {
  const base: NativeProbeOptions = { cgroupPath: '/cg', onBatch: () => undefined };
  const typeError = (o: Partial<NativeProbeOptions> & Record<string, unknown>): string => {
    try {
      probeOptions({ ...base, ...o } as NativeProbeOptions);
    } catch (e) {
      expect(e).toBeInstanceOf(TypeError);
      return (e as Error).message;
    }
    throw new Error('no TypeError');
  };

  it('fills in every default from limits.ts', () => {
    const o = probeOptions(base);
    expect(o).toMatchObject({
      cgroupPath: '/cg',
      ringBufferBytes: LIMITS.ringBufferBytes.default,
      flowTableEntries: LIMITS.flowTableEntries.default,
      wakeupBytes: LIMITS.ringBufferWakeupBytes.default,
      pollIntervalMillis: LIMITS.ringBufferPollMillis.default,
      maxPendingBytes: LIMITS.maxPendingBytes.default,
    });
    expect(o.ringBufferBytes).toBe(8 * 1024 * 1024);
    expect(o.filters.filter).toBe(0);
  });

  it.each<[keyof NativeProbeOptions, keyof typeof LIMITS, string]>([
    ['ringBufferBytes', 'ringBufferBytes', 'a power of two from 4096 to 1073741824 (bytes)'],
    ['flowTableEntries', 'flowTableEntries', 'an integer from 1 to 16777216'],
    ['wakeupBytes', 'ringBufferWakeupBytes', 'an integer from 0 to 1073741824 (bytes)'],
    ['pollIntervalMillis', 'ringBufferPollMillis', 'an integer from 1 to 1000 (milliseconds)'],
    ['maxPendingBytes', 'maxPendingBytes', 'an integer from 1 to 9007199254740991 (bytes)'],
  ])('%s: takes min and max, refuses one past each', (name, limit, expected) => {
    const { min, max } = LIMITS[limit] as { min: number; max: number };
    expect(probeOptions({ ...base, [name]: min })[name as keyof AddonProbeOptions]).toBe(min);
    expect(probeOptions({ ...base, [name]: max })[name as keyof AddonProbeOptions]).toBe(max);
    const below = LIMITS[limit] === LIMITS.ringBufferBytes ? min / 2 : min - 1;
    const above = LIMITS[limit] === LIMITS.ringBufferBytes ? max * 2 : max + 1;
    expect(typeError({ [name]: below })).toBe(`options.${name} must be ${expected}, got ${below}`);
    if (Number.isSafeInteger(above)) expect(typeError({ [name]: above })).toBe(`options.${name} must be ${expected}, got ${above}`);
    expect(typeError({ [name]: 2.5 })).toMatch(new RegExp(`^options\\.${name} must be`));
    expect(typeError({ [name]: '64' })).toBe(`options.${name} must be ${expected}, got "64"`);
  });

  it('ring buffer: a power of two only', () => {
    expect(typeError({ ringBufferBytes: 4096 * 3 })).toMatch(/must be a power of two/);
  });

  it('checks the cgroup path and the filters, naming each', () => {
    expect(typeError({ cgroupPath: '' })).toBe('options.cgroupPath must be a non-empty string, got an empty string');
    expect(typeError({ filters: [] as never })).toBe('options.filters must be an object when given, got an array');
    expect(typeError({ filters: { direction: 'up' as never } })).toBe('options.filters.direction must be "incoming", "outgoing" or "both", got "up"');
    expect(typeError({ filters: { includePorts: [0] } })).toMatch(/^options\.filters\.includePorts\[0\] must be a port \(1 to 65535\)/);
    expect(typeError({ filters: { includePorts: [65536] } })).toMatch(/^options\.filters\.includePorts\[0\]/);
    expect(typeError({ filters: { excludePorts: [[9000, 8000]] } })).toMatch(/^options\.filters\.excludePorts\[0\]/);
    expect(typeError({ filters: { excludeCidrs: ['10.0.0.0/8', 'fd00::/129'] } })).toMatch(
      /^options\.filters\.excludeCidrs\[1\] must be an IPv4 or IPv6 prefix .*got "fd00::\/129" \('fd00::\/129': the prefix length must be 0 to 128\)$/,
    );
    const o = probeOptions({ ...base, filters: { includePorts: [1, [65535, 65535]], excludeCidrs: ['::/0'] } });
    expect(o.filters.portFilter).toBe(1);
    expect(o.filters.cidr6Filter).toBe(1);
  });
});
