import { containerIdFromCgroupPath, ContainerIndex, CgroupTree, podUidFromCgroupPath, workloadOfCgroup } from '../../../src/enrich/container';

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
    ["systemd spelling with dashes is not the kubelet's", `/kubepods.slice/kubepods-pod${U}.slice`, undefined],
    ['a short UID', `/kubepods/pod${U.slice(1)}`, undefined],
    ['upper case', `/kubepods/pod${U.toUpperCase()}`, undefined],
  ])('%s', (_n, path, want) => expect(podUidFromCgroupPath(path)).toBe(want));
});

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

describe('ContainerIndex', () => {
  it('maps a socket cgroup id to the container ID in its path below the watched cgroup', () => {
    const tree = fakeTree({ '/cg': 1n, [`/cg/cri-containerd-${ID}.scope`]: 2n, '/cg/other': 3n });
    const idx = new ContainerIndex({ root: '/cg', tree, nowMs: () => 0 });
    expect(idx.workloadFor(2n)?.containerId).toBe(ID);
    expect(idx.workloadFor(3n)).toBeUndefined();
    expect(idx.workloadFor(0n)).toBeUndefined();
    expect(idx.stats).toEqual({ scans: 1, hits: 1, misses: 2 });
  });

  it('rescans for an unknown id at most once per interval, and finds new containers', () => {
    const dirs: Record<string, bigint> = { '/cg': 1n };
    const tree = fakeTree(dirs);
    let now = 0;
    const idx = new ContainerIndex({ root: '/cg', tree, nowMs: () => now, rescanIntervalMillis: 1000 });
    expect(idx.workloadFor(9n)).toBeUndefined();
    dirs[`/cg/docker-${ID}.scope`] = 9n;
    now = 500;
    expect(idx.workloadFor(9n)).toBeUndefined(); // too soon to rescan
    now = 1000;
    expect(idx.workloadFor(9n)?.containerId).toBe(ID);
    expect(tree.walks).toBe(2);
  });

  it('a container ID only in the watched root path itself is not reported for its children', () => {
    // sidecar mode: the watched cgroup is the pod; containers are its children
    const tree = fakeTree({ [`/cg`]: 1n, [`/cg/${ID}`]: 5n });
    const idx = new ContainerIndex({ root: '/cg', tree, nowMs: () => 0 });
    expect(idx.workloadFor(1n)).toBeUndefined();
    expect(idx.workloadFor(5n)?.containerId).toBe(ID);
  });

  it('gives each socket its pod UID from the full path (sidecar: the watched cgroup is the pod) and shares one object per workload', () => {
    const root = '/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12345678_1234_1234_1234_123456789abc.slice';
    const uid = '12345678-1234-1234-1234-123456789abc';
    const dirs: Record<string, bigint> = { [root]: 1n, [`${root}/cri-containerd-${ID}.scope`]: 2n, [`${root}/cri-containerd-${ID}.scope/sub`]: 3n };
    const tree: CgroupTree = {
      subdirs: (dir) =>
        Object.keys(dirs)
          .filter((d) => d.startsWith(`${dir}/`) && !d.slice(dir.length + 1).includes('/'))
          .map((d) => d.slice(dir.length + 1)),
      inode: (dir) => dirs[dir],
    };
    let now = 0;
    const idx = new ContainerIndex({ root, tree, nowMs: () => now });
    expect(idx.workloadFor(1n)).toEqual({ podUid: uid });
    const w = idx.workloadFor(2n);
    expect(w).toEqual({ containerId: ID, podUid: uid });
    expect(idx.workloadFor(3n)).toBe(w); // a nested cgroup of the same container: the same object
    now = 5000;
    dirs[`${root}/other`] = 4n;
    expect(idx.workloadFor(4n)).toEqual({ podUid: uid }); // rescan
    expect(idx.workloadFor(2n)).toBe(w); // kept across the rescan
  });
});

describe('workloadOfCgroup', () => {
  it('reads the container ID below the watched cgroup and the pod UID from the full path; neither: undefined', () => {
    const uid = '0a1b2c3d-0000-1111-2222-333344445555';
    expect(workloadOfCgroup(`/sys/fs/cgroup/t/kubepods/besteffort/pod${uid}/${ID}`, `/kubepods/besteffort/pod${uid}/${ID}`)).toEqual({
      containerId: ID,
      podUid: uid,
    });
    expect(workloadOfCgroup(`/sys/fs/cgroup/kubepods/pod${uid}/${ID}`, `/${ID}`)).toEqual({ containerId: ID, podUid: uid });
    expect(workloadOfCgroup(`/sys/fs/cgroup/docker/${ID}`, `/docker/${ID}`)).toEqual({ containerId: ID });
    expect(workloadOfCgroup('/sys/fs/cgroup/user.slice', '/user.slice')).toBeUndefined();
  });

  it('gives each cgroup of the walk its path below the cgroup v2 mount, from the same scan', () => {
    const tree = fakeTree({ '/sys/fs/cgroup/system.slice': 1n, '/sys/fs/cgroup/system.slice/app.service': 2n });
    const idx = new ContainerIndex({ root: '/sys/fs/cgroup/system.slice', tree, nowMs: () => 0, mountPoint: '/sys/fs/cgroup' });
    expect(idx.cgroupPathFor(2n)).toBe('/system.slice/app.service');
    expect(idx.cgroupPathFor(1n)).toBe('/system.slice');
    expect(idx.workloadFor(2n)).toBeUndefined();
    expect(idx.cgroupPathFor(9n)).toBeUndefined();
    expect(idx.cgroupPathFor(0n)).toBeUndefined();
    expect(idx.stats.scans).toBe(1);
    const root = new ContainerIndex({ root: '/sys/fs/cgroup', tree: fakeTree({ '/sys/fs/cgroup': 1n }), nowMs: () => 0, mountPoint: '/sys/fs/cgroup' });
    expect(root.cgroupPathFor(1n)).toBe('/');
  });
});
