import { cgroup2Mounts, findPodCgroup, kubeletPodCgroups, ownCgroupPath, PodCgroupError, type PodCgroupInput } from '../../../src/config/podcgroup';

const UID = '0f3c2b9e-1d2a-4c5b-8e7f-6a5b4c3d2e1f';
const UID_ = UID.replace(/-/g, '_');
const CID = 'a3f1c9e07b2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e3f';

/** mountinfo of a container on a unified (cgroup v2 only) host, in the host cgroup namespace. */
const UNIFIED = [
  '1510 1400 0:310 / / ro,relatime master:500 - overlay overlay rw,lowerdir=/var/lib/containerd/l1,upperdir=/var/lib/containerd/u,workdir=/var/lib/containerd/w',
  '1511 1510 0:312 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '1515 1510 0:313 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro',
  '1516 1515 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot',
].join('\n');

/** A hybrid host (v1 controllers, v2 at /sys/fs/cgroup/unified). */
const HYBRID = [
  '23 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate',
  '33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd',
].join('\n');

/**
 * A sidecar in a private cgroup namespace (containerd on a cgroup v2 host):
 * the runtime's own cgroup2 mount shows its root as "/", the hostPath volume
 * of the host's /sys/fs/cgroup shows the hierarchy root as "/../../../..".
 */
const PRIVATE_WITH_HOSTPATH = [
  '1516 1515 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot',
  '1530 1510 0:26 /../../../.. /host/sys/fs/cgroup ro,relatime master:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
].join('\n');

const PRIVATE_ONLY = PRIVATE_WITH_HOSTPATH.split('\n')[0];

function cgroupFile(v2: string): string {
  // cgroup v2 only hosts have just the 0:: line; hybrid ones list v1 hierarchies too.
  return `0::${v2}\n`;
}

/** Only these directories exist. */
function dirs(...existing: string[]): (dir: string) => boolean {
  const set = new Set(existing);
  return (dir) => set.has(dir);
}

function find(input: Partial<PodCgroupInput> & Pick<PodCgroupInput, 'procSelfCgroup'>): string {
  return findPodCgroup({ mountinfo: UNIFIED, isDirectory: () => true, ...input });
}

function findError(input: Partial<PodCgroupInput> & Pick<PodCgroupInput, 'procSelfCgroup'>): string {
  try {
    find(input);
  } catch (e) {
    expect(e).toBeInstanceOf(PodCgroupError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('no PodCgroupError');
}

describe('ownCgroupPath', () => {
  it('reads the 0:: line of a unified host', () => {
    expect(ownCgroupPath('0::/system.slice/containerd.service\n')).toBe('/system.slice/containerd.service');
  });
  it('reads the 0:: line among v1 hierarchies on a hybrid host', () => {
    const text = ['12:pids:/kubepods/burstable/pod1/c1', '1:name=systemd:/kubepods/burstable/pod1/c1', '0::/kubepods/burstable/pod1/c1', ''].join('\n');
    expect(ownCgroupPath(text)).toBe('/kubepods/burstable/pod1/c1');
  });
  it('has none on a cgroup v1 only host', () => {
    expect(ownCgroupPath('4:memory:/docker/abc\n1:name=systemd:/docker/abc\n')).toBeUndefined();
  });
});

describe('cgroup2Mounts', () => {
  it('lists cgroup2 mounts with their roots and unescaped mount points, skipping other types', () => {
    const text = [HYBRID, '40 22 0:29 /kubepods.slice /host/pods\\040dir ro - cgroup2 cgroup2 rw'].join('\n');
    expect(cgroup2Mounts(text)).toEqual([
      { root: '/', mountPoint: '/sys/fs/cgroup/unified' },
      { root: '/kubepods.slice', mountPoint: '/host/pods dir' },
    ]);
  });
});

describe('kubeletPodCgroups', () => {
  it('covers the systemd and cgroupfs drivers, every QoS class, and the kind --cgroup-root', () => {
    const all = kubeletPodCgroups(UID);
    expect(all).toEqual(
      expect.arrayContaining([
        `kubepods.slice/kubepods-pod${UID_}.slice`,
        `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
        `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`,
        `kubepods/pod${UID}`,
        `kubepods/burstable/pod${UID}`,
        `kubepods/besteffort/pod${UID}`,
        `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice`,
        `kubelet/kubepods/burstable/pod${UID}`,
      ]),
    );
    expect(all).toHaveLength(12);
  });
});

describe('findPodCgroup in the host cgroup namespace (the own cgroup path is visible)', () => {
  it.each<[string, string, string]>([
    [
      'containerd, systemd driver, Burstable',
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${CID}.scope`,
      `/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
    ],
    [
      'containerd, systemd driver, Guaranteed',
      `/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${CID}.scope`,
      `/sys/fs/cgroup/kubepods.slice/kubepods-pod${UID_}.slice`,
    ],
    [
      'CRI-O, systemd driver, BestEffort',
      `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${CID}.scope`,
      `/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`,
    ],
    [
      'cri-dockerd (Docker Engine), systemd driver',
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/docker-${CID}.scope`,
      `/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
    ],
    ['cgroupfs driver, Burstable', `/kubepods/burstable/pod${UID}/${CID}`, `/sys/fs/cgroup/kubepods/burstable/pod${UID}`],
    ['cgroupfs driver, Guaranteed', `/kubepods/pod${UID}/${CID}`, `/sys/fs/cgroup/kubepods/pod${UID}`],
  ])('%s: the parent of its own container cgroup', (_name, own, pod) => {
    expect(find({ procSelfCgroup: cgroupFile(own) })).toBe(pod);
    // with the pod UID known, it is checked against the directory name
    expect(find({ procSelfCgroup: cgroupFile(own), podUid: UID })).toBe(pod);
  });

  it('Docker without Kubernetes: the parent of docker-<id>.scope (no pod UID to check)', () => {
    expect(find({ procSelfCgroup: cgroupFile(`/system.slice/docker-${CID}.scope`) })).toBe('/sys/fs/cgroup/system.slice');
  });

  it('a hybrid host: under /sys/fs/cgroup/unified, from the 0:: line among the v1 ones', () => {
    const own = `/kubepods/besteffort/pod${UID}/${CID}`;
    const text = [`5:memory:${own}`, `1:name=systemd:${own}`, `0::${own}`].join('\n');
    expect(find({ procSelfCgroup: text, mountinfo: HYBRID })).toBe(`/sys/fs/cgroup/unified/kubepods/besteffort/pod${UID}`);
  });

  it('the host cgroupfs mounted at another path: the mount that holds the own cgroup wins', () => {
    const own = `/kubepods/burstable/pod${UID}/${CID}`;
    const mountinfo = [
      // the runtime's mount of the container's own subtree only
      `1516 1515 0:26 ${own} /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw`,
      '1530 1510 0:26 / /host/sys/fs/cgroup ro,relatime - cgroup2 cgroup2 rw',
    ].join('\n');
    const isDirectory = dirs(`/host/sys/fs/cgroup${own}`, `/host/sys/fs/cgroup/kubepods/burstable/pod${UID}`);
    expect(find({ procSelfCgroup: cgroupFile(own), mountinfo, isDirectory })).toBe(`/host/sys/fs/cgroup/kubepods/burstable/pod${UID}`);
  });

  it('a bind mount of a subtree that holds the pod is used through its root', () => {
    const own = `/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${CID}.scope`;
    const mountinfo = '1530 1510 0:26 /kubepods.slice /host/kubepods ro,relatime - cgroup2 cgroup2 rw';
    expect(find({ procSelfCgroup: cgroupFile(own), mountinfo })).toBe(`/host/kubepods/kubepods-pod${UID_}.slice`);
  });

  it('skips a cgroup2 mount in which the own cgroup does not exist', () => {
    const own = `/kubepods/pod${UID}/${CID}`;
    const mountinfo = ['1 0 0:26 / /stale ro - cgroup2 cgroup2 rw', '2 0 0:26 / /host/cgroup ro - cgroup2 cgroup2 rw'].join('\n');
    expect(find({ procSelfCgroup: cgroupFile(own), mountinfo, isDirectory: dirs(`/host/cgroup${own}`) })).toBe(`/host/cgroup/kubepods/pod${UID}`);
  });

  it('refuses a parent that is not the cgroup of the pod named by k8s.pod.uid', () => {
    const message = findError({ procSelfCgroup: cgroupFile(`/system.slice/docker-${CID}.scope`), podUid: UID });
    expect(message).toContain(`not the cgroup of pod ${UID}`);
    expect(message).toContain('--cgroup <dir>');
  });

  it('refuses to turn "pod" into the whole host', () => {
    expect(findError({ procSelfCgroup: cgroupFile('/flowtap') })).toMatch(/directly below the cgroup v2 root/);
  });

  it('says how to mount the host hierarchy when no mount holds the own cgroup', () => {
    const message = findError({ procSelfCgroup: cgroupFile(`/kubepods/pod${UID}/${CID}`), isDirectory: () => false });
    expect(message).toContain('hostPath volume of /sys/fs/cgroup');
    expect(message).toContain('FLOWTAP_CGROUP=<dir>');
  });
});

describe('findPodCgroup in a private cgroup namespace ("0::/")', () => {
  const HOST = '/host/sys/fs/cgroup';

  it.each<[string, string]>([
    ['systemd driver, Burstable', `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`],
    ['systemd driver, Guaranteed', `kubepods.slice/kubepods-pod${UID_}.slice`],
    ['cgroupfs driver, BestEffort', `kubepods/besteffort/pod${UID}`],
    [
      'kind (kubelet --cgroup-root=/kubelet)',
      `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice`,
    ],
  ])('%s: found by k8s.pod.uid under the hostPath mount of the host hierarchy', (_name, rel) => {
    const isDirectory = dirs(`${HOST}/${rel}`);
    expect(find({ procSelfCgroup: cgroupFile('/'), mountinfo: PRIVATE_WITH_HOSTPATH, podUid: UID, isDirectory })).toBe(`${HOST}/${rel}`);
  });

  it('looks under the real hierarchy root first (the mount with the most "..")', () => {
    const mountinfo = [PRIVATE_WITH_HOSTPATH, '1531 1510 0:26 /../.. /other ro - cgroup2 cgroup2 rw'].join('\n');
    const rel = `kubepods/pod${UID}`;
    expect(find({ procSelfCgroup: cgroupFile('/'), mountinfo, podUid: UID, isDirectory: dirs(`/other/${rel}`, `${HOST}/${rel}`) })).toBe(`${HOST}/${rel}`);
  });

  it('without a host mount: names what to mount, the host cgroup namespace, and the explicit way', () => {
    const message = findError({ procSelfCgroup: cgroupFile('/'), mountinfo: PRIVATE_ONLY, podUid: UID });
    expect(message).toContain('private cgroup namespace');
    expect(message).toContain('hostPath volume of /sys/fs/cgroup');
    expect(message).toContain('/host/sys/fs/cgroup');
    expect(message).toContain('k8s.pod.uid');
    expect(message).toContain('--cgroupns=host');
    expect(message).toContain('hostPID does not change it');
    expect(message).toContain('--cgroup <dir> / FLOWTAP_CGROUP=<dir>');
  });

  it('without k8s.pod.uid: asks for it from the downward API', () => {
    const message = findError({ procSelfCgroup: cgroupFile('/'), mountinfo: PRIVATE_WITH_HOSTPATH });
    expect(message).toContain('set k8s.pod.uid in OTEL_RESOURCE_ATTRIBUTES from the downward API (metadata.uid)');
    expect(message).toContain(HOST);
  });

  it('when the pod is not where the kubelet puts it: says where it looked', () => {
    const message = findError({ procSelfCgroup: cgroupFile('/'), mountinfo: PRIVATE_WITH_HOSTPATH, podUid: UID, isDirectory: () => false });
    expect(message).toContain(`no cgroup of pod ${UID}`);
    expect(message).toContain(HOST);
    expect(message).toContain('FLOWTAP_CGROUP=<dir>');
  });

  it('a cgroup outside the namespace root ("0::/../x") is hidden too', () => {
    const rel = `kubepods/pod${UID}`;
    expect(find({ procSelfCgroup: cgroupFile('/../sibling'), mountinfo: PRIVATE_WITH_HOSTPATH, podUid: UID, isDirectory: dirs(`${HOST}/${rel}`) })).toBe(
      `${HOST}/${rel}`,
    );
  });
});

describe('findPodCgroup input errors', () => {
  it('an unreadable /proc/self/cgroup', () => {
    expect(findError({ procSelfCgroup: undefined })).toMatch(/cannot read \/proc\/self\/cgroup/);
  });
  it('a process outside cgroup v2 (cgroup v1 only host)', () => {
    expect(findError({ procSelfCgroup: '4:memory:/docker/abc\n1:name=systemd:/docker/abc\n' })).toMatch(/no cgroup v2 entry/);
  });
  it('a pod UID that could walk out of the hierarchy', () => {
    expect(findError({ procSelfCgroup: cgroupFile('/'), mountinfo: PRIVATE_WITH_HOSTPATH, podUid: '../../etc' })).toMatch(/is not a pod UID/);
  });
});
