import * as path from 'node:path';
import { describeProbeError, loadBinding, missingCapabilities, type NativeError } from '../../../src/kernel/probe';
import { ABI_VERSION, LAYOUT } from '../../../src/kernel/layout';

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

  it('anything else: exit 2 with step and errno', () => {
    expect(describeProbeError(nativeError('the kernel rejected the eBPF programs (EINVAL):', 'EINVAL', 'load'), '/x')).toEqual({
      exitCode: 2,
      message: 'the kernel rejected the eBPF programs (EINVAL): [step load, EINVAL]',
    });
    expect(describeProbeError('weird', '/x')).toEqual({ exitCode: 2, message: 'weird [step unknown, no errno]' });
  });
});

describe('loadBinding', () => {
  const fake = { abiVersion: ABI_VERSION, counterNames: [], layout: () => ({ ...LAYOUT }), clockAnchor: () => ({ realtimeNs: 0n, boottimeNs: 0n }), Probe: class {} };

  it('loads build/flowtap.node below the package root', () => {
    const seen: string[] = [];
    const b = loadBinding('/opt/flowtap', (id) => (seen.push(id), fake));
    expect(b).toBe(fake);
    expect(seen).toEqual([path.join('/opt/flowtap', 'build', 'flowtap.node')]);
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
