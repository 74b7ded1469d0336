import { containerIdFromCgroupPath, ContainerIndex, CgroupTree, podUidFromCgroupPath } from '../../../src/enrich/container';

const ID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);

describe('containerIdFromCgroupPath', () => {
  it.each([
    ['containerd, systemd driver', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_5678.slice/cri-containerd-${ID}.scope`, ID],
    ['CRI-O', `/kubepods.slice/kubepods-pod1234.slice/crio-${ID}.scope`, ID],
    ['Docker, systemd driver', `/system.slice/docker-${ID}.scope`, ID],
    ['Docker, cgroupfs driver', `/docker/${ID}`, ID],
    ['kubelet cgroupfs driver', `/kubepods/besteffort/pod1234-5678/${ID}`, ID],
    ['Podman', `/machine.slice/libpod-${ID}.scope`, ID],
    ['a nested cgroup inside a container', `/system.slice/docker-${ID}.scope/app/worker`, ID],
    ['CRI-O conmon is not a container', `/kubepods.slice/crio-conmon-${ID}.scope`, undefined],
    ['a pod cgroup only', '/kubepods.slice/kubepods-pod1234.slice', undefined],
    ['a plain service', '/system.slice/ssh.service', undefined],
    ['63 hex digits', `/docker/${ID.slice(1)}`, undefined],
    ['upper case is not a runtime ID', `/docker/${ID.toUpperCase()}`, undefined],
  ])('%s', (_n, path, want) => expect(containerIdFromCgroupPath(path)).toBe(want));
});

describe('podUidFromCgroupPath', () => {
  const U = '0f3c2b9e-1d2a-4c5b-8e7f-6a5b4c3d2e1f';
  const S = U.replace(/-/g, '_');
  it.each([
    ['systemd, Guaranteed', `/kubepods.slice/kubepods-pod${S}.slice/cri-containerd-${ID}.scope`, U],
    ['systemd, Burstable', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${S}.slice/cri-containerd-${ID}.scope`, U],
    ['systemd, BestEffort', `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${S}.slice/crio-${ID}.scope`, U],
    ['systemd, the pod cgroup itself', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${S}.slice`, U],
    ['cgroupfs, Guaranteed', `/kubepods/pod${U}/${ID}`, U],
    ['cgroupfs, Burstable', `/kubepods/burstable/pod${U}/${ID}`, U],
    ['cgroupfs, BestEffort', `/kubepods/besteffort/pod${U}/${ID}`, U],
    ['under a nested kubelet root (kind, k3s)', `/kubelet.slice/kubelet-kubepods.slice/kubepods.slice/kubepods-pod${S}.slice/x`, U],
    ['no kubepods component', `/system.slice/pod${U}/${ID}`, undefined],
    ['the QoS slice only', '/kubepods.slice/kubepods-burstable.slice', undefined],
    ['systemd spelling with dashes is not the kubelet\'s', `/kubepods.slice/kubepods-pod${U}.slice`, undefined],
    ['a short UID', `/kubepods/pod${U.slice(1)}`, undefined],
    ['upper case', `/kubepods/pod${U.toUpperCase()}`, undefined],
  ])('%s', (_n, path, want) => expect(podUidFromCgroupPath(path)).toBe(want));
});

describe('ContainerIndex', () => {
  function fakeTree(dirs: Record<string, bigint>): CgroupTree & { walks: number } {
    const t = {
      walks: 0,
      subdirs(dir: string): string[] {
        if (dir === '/cg') t.walks++;
        const prefix = `${dir}/`;
        return Object.keys(dirs)
          .filter((d) => d.startsWith(prefix) && !d.slice(prefix.length).includes('/'))
          .map((d) => d.slice(prefix.length));
      },
      inode: (dir: string) => dirs[dir],
    };
    return t;
  }

  it('maps a socket cgroup id to the container ID in its path below the watched cgroup', () => {
    const tree = fakeTree({ '/cg': 1n, [`/cg/cri-containerd-${ID}.scope`]: 2n, '/cg/other': 3n });
    const idx = new ContainerIndex({ root: '/cg', tree, nowMs: () => 0 });
    expect(idx.containerIdFor(2n)).toBe(ID);
    expect(idx.containerIdFor(3n)).toBeUndefined();
    expect(idx.containerIdFor(0n)).toBeUndefined();
    expect(idx.stats).toEqual({ scans: 1, hits: 1, misses: 2 });
  });

  it('rescans for an unknown id at most once per interval, and finds new containers', () => {
    const dirs: Record<string, bigint> = { '/cg': 1n };
    const tree = fakeTree(dirs);
    let now = 0;
    const idx = new ContainerIndex({ root: '/cg', tree, nowMs: () => now, rescanIntervalMillis: 1000 });
    expect(idx.containerIdFor(9n)).toBeUndefined();
    dirs[`/cg/docker-${ID}.scope`] = 9n;
    now = 500;
    expect(idx.containerIdFor(9n)).toBeUndefined(); // too soon to rescan
    now = 1000;
    expect(idx.containerIdFor(9n)).toBe(ID);
    expect(tree.walks).toBe(2);
  });

  it('a container ID only in the watched root path itself is not reported for its children', () => {
    // sidecar mode: the watched cgroup is the pod; containers are its children
    const tree = fakeTree({ [`/cg`]: 1n, [`/cg/${ID}`]: 5n });
    const idx = new ContainerIndex({ root: '/cg', tree, nowMs: () => 0 });
    expect(idx.containerIdFor(1n)).toBeUndefined();
    expect(idx.containerIdFor(5n)).toBe(ID);
  });

  it('gives each cgroup of the walk its path below the cgroup v2 mount, from the same scan', () => {
    const tree = fakeTree({ '/sys/fs/cgroup/system.slice': 1n, '/sys/fs/cgroup/system.slice/app.service': 2n });
    const idx = new ContainerIndex({ root: '/sys/fs/cgroup/system.slice', tree, nowMs: () => 0, mountPoint: '/sys/fs/cgroup' });
    expect(idx.cgroupPathFor(2n)).toBe('/system.slice/app.service');
    expect(idx.cgroupPathFor(1n)).toBe('/system.slice');
    expect(idx.containerIdFor(2n)).toBeUndefined();
    expect(idx.cgroupPathFor(9n)).toBeUndefined();
    expect(idx.cgroupPathFor(0n)).toBeUndefined();
    expect(idx.stats.scans).toBe(1);
    const root = new ContainerIndex({ root: '/sys/fs/cgroup', tree: fakeTree({ '/sys/fs/cgroup': 1n }), nowMs: () => 0, mountPoint: '/sys/fs/cgroup' });
    expect(root.cgroupPathFor(1n)).toBe('/');
  });
});
