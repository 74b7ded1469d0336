/**
 * `--cgroup pod`: the cgroup v2 directory of the pod flowtap runs in, found
 * from flowtap's own cgroup. A container runtime gives each container its own
 * cgroup inside the pod's (kubelet: kubepods.slice/kubepods-burstable.slice/
 * kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope with the
 * systemd driver, kubepods/burstable/pod<uid>/<id> with the cgroupfs driver),
 * so the pod is the parent of flowtap's own cgroup.
 *
 * Pure: the text of /proc/self/cgroup and /proc/self/mountinfo and a
 * directory check come in as arguments (cli.ts reads them).
 *
 * Two cases, told apart by /proc/self/cgroup:
 * - flowtap's cgroup path is visible ("0::/kubepods.slice/.../cri-containerd-1.scope"):
 *   the host cgroup namespace. The parent is mapped onto a cgroup2 mount
 *   that contains it.
 * - it is hidden ("0::/"): a private cgroup namespace, the default for
 *   unprivileged containers on cgroup v2 hosts (containerd, CRI-O, Docker).
 *   Paths in /proc/self/cgroup and in mountinfo's root field are then
 *   relative to flowtap's own cgroup, so a bind mount of the host's cgroup2
 *   root shows up with a root of only ".." ("/../../../..") — and names
 *   nothing of the way down. The pod's UID (k8s.pod.uid, from the downward
 *   API) then names the pod's directory, which is looked for in the places
 *   the kubelet puts it.
 * hostPID does not help with either: the cgroup namespace is a namespace of
 * its own.
 */
import * as path from 'node:path';

/** The --cgroup value that asks for the pod's cgroup. */
export const POD_CGROUP = 'pod';

/** What to tell the user when the pod's cgroup cannot be found: one line. */
export class PodCgroupError extends Error {
  override name = 'PodCgroupError';
}

export interface PodCgroupInput {
  /** Text of /proc/self/cgroup; undefined if it could not be read. */
  procSelfCgroup: string | undefined;
  /** Text of /proc/self/mountinfo; undefined if it could not be read. */
  mountinfo: string | undefined;
  /** The pod's UID (k8s.pod.uid), if known. */
  podUid?: string;
  /** Whether `dir` is an existing directory. */
  isDirectory(dir: string): boolean;
}

/** One cgroup2 mount: which hierarchy path (`root`, as mountinfo shows it) is seen at `mountPoint`. */
export interface Cgroup2Mount {
  root: string;
  mountPoint: string;
}

const HOW_TO_MOUNT =
  'mount the host cgroup v2 hierarchy into the container (Kubernetes: a hostPath volume of /sys/fs/cgroup ' +
  '— /sys/fs/cgroup/unified on hybrid hosts — mounted read-only at e.g. /host/sys/fs/cgroup)';
const OR_EXPLICIT = "or pass the pod's cgroup directory itself as --cgroup <dir> / FLOWTAP_CGROUP=<dir>";

/** The cgroup2 mounts in the text of /proc/self/mountinfo, in file order. */
export function cgroup2Mounts(mountinfo: string): Cgroup2Mount[] {
  const mounts: Cgroup2Mount[] = [];
  for (const line of mountinfo.split('\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const fields = line.trim().split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields[sep + 1] !== 'cgroup2') continue;
    mounts.push({ root: unescapeMountinfo(fields[3]), mountPoint: unescapeMountinfo(fields[4]) });
  }
  return mounts;
}

/** mountinfo writes space, tab, newline and backslash as \ooo octal. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The cgroup v2 path in /proc/self/cgroup (the "0::<path>" line), or undefined. */
export function ownCgroupPath(procSelfCgroup: string): string | undefined {
  for (const line of procSelfCgroup.split('\n')) {
    if (line.startsWith('0::')) {
      const p = line.slice(3).trim();
      if (p.startsWith('/')) return p;
    }
  }
  return undefined;
}

/** Whether a mountinfo root (or cgroup path) is only "/.." steps: the hierarchy root seen from a private namespace. */
function onlyUp(root: string): boolean {
  return /^(\/\.\.)+$/.test(root);
}

/**
 * Where the kubelet puts pod `uid`'s cgroup, relative to the hierarchy root:
 * the systemd and cgroupfs drivers, each QoS class, and the kubelet's
 * --cgroup-root of "/" and of "/kubelet" (kind).
 */
export function kubeletPodCgroups(uid: string): string[] {
  const out: string[] = [];
  for (const cgroupRoot of [[], ['kubelet']]) {
    for (const qos of [[], ['burstable'], ['besteffort']]) {
      // systemd escapes '-' in a unit name; the kubelet writes the UID with '_'.
      const systemdParts = [...cgroupRoot, 'kubepods', ...qos, `pod${uid.replace(/-/g, '_')}`];
      out.push(systemdParts.map((_p, i) => `${systemdParts.slice(0, i + 1).join('-')}.slice`).join('/'));
      out.push([...cgroupRoot, 'kubepods', ...qos, `pod${uid}`].join('/'));
    }
  }
  return out;
}

/** Whether a pod cgroup's directory name carries pod `uid` (either spelling). */
function namesPod(dir: string, uid: string): boolean {
  const name = path.posix.basename(dir);
  return name.includes(`pod${uid}`) || name.includes(`pod${uid.replace(/-/g, '_')}`);
}

/** `hierarchyPath` as seen through `mount`, or undefined when the mount does not contain it. */
function throughMount(mount: Cgroup2Mount, hierarchyPath: string): string | undefined {
  if (mount.root === '/') return path.posix.join(mount.mountPoint, hierarchyPath);
  if (hierarchyPath === mount.root) return mount.mountPoint;
  if (hierarchyPath.startsWith(`${mount.root}/`)) return path.posix.join(mount.mountPoint, hierarchyPath.slice(mount.root.length));
  return undefined;
}

/**
 * The pod's cgroup v2 directory, as a path flowtap can open. Throws a
 * PodCgroupError saying what is missing and how to provide it.
 */
export function findPodCgroup(input: PodCgroupInput): string {
  if (input.procSelfCgroup === undefined) throw new PodCgroupError(`cannot read /proc/self/cgroup; ${OR_EXPLICIT}`);
  const own = ownCgroupPath(input.procSelfCgroup);
  if (own === undefined) {
    throw new PodCgroupError(`no cgroup v2 entry ("0::/...") in /proc/self/cgroup: flowtap is not in a cgroup v2 hierarchy; ${OR_EXPLICIT}`);
  }
  const uid = input.podUid;
  if (uid !== undefined && !/^[A-Za-z0-9_-]+$/.test(uid)) {
    throw new PodCgroupError(`k8s.pod.uid '${uid}' in OTEL_RESOURCE_ATTRIBUTES is not a pod UID (expected e.g. 0f3c2b9e-1d2a-4c5b-8e7f-6a5b4c3d2e1f)`);
  }
  const mounts = input.mountinfo === undefined ? [] : cgroup2Mounts(input.mountinfo);

  if (own === '/' || own.startsWith('/../') || own === '/..') return hiddenOwnCgroup(own, mounts, uid, input.isDirectory);

  const parent = path.posix.dirname(own);
  if (parent === '/') {
    throw new PodCgroupError(
      `flowtap's own cgroup ${own} is directly below the cgroup v2 root, so its parent is the whole host: ` +
        'run flowtap in its own container cgroup inside the pod, or pass the cgroup v2 mount as --cgroup <dir> to watch the whole host',
    );
  }
  for (const mount of mounts) {
    const dir = throughMount(mount, parent);
    const self = throughMount(mount, own);
    if (dir === undefined || self === undefined || !input.isDirectory(self)) continue;
    if (uid !== undefined && !namesPod(dir, uid)) {
      throw new PodCgroupError(
        `the parent of flowtap's own cgroup is ${parent}, which is not the cgroup of pod ${uid} (k8s.pod.uid): ` +
          `flowtap must run in its own container of that pod; ${OR_EXPLICIT}`,
      );
    }
    return dir;
  }
  throw new PodCgroupError(
    `the parent of flowtap's own cgroup ${own} is not visible in any cgroup v2 mount of /proc/self/mountinfo: ${HOW_TO_MOUNT}; ${OR_EXPLICIT}`,
  );
}

/** A private cgroup namespace: only the pod's UID can name the pod's directory under a host mount. */
function hiddenOwnCgroup(own: string, mounts: Cgroup2Mount[], uid: string | undefined, isDirectory: (dir: string) => boolean): string {
  const why =
    `flowtap's own cgroup path is hidden ("0::${own}" in /proc/self/cgroup: a private cgroup namespace, ` +
    'which containers on cgroup v2 hosts get by default, or the root cgroup)';
  const cgroupnsHost = 'or run it in the host cgroup namespace (docker run --cgroupns=host; hostPID does not change it)';
  // The host's hierarchy root, deepest first (a bind of the real root shows the most "..").
  const hostRoots = mounts.filter((m) => onlyUp(m.root)).sort((a, b) => b.root.length - a.root.length);
  if (hostRoots.length === 0) {
    throw new PodCgroupError(
      `${why} and no mount of the host cgroup v2 hierarchy is visible: ${HOW_TO_MOUNT} and set k8s.pod.uid in ` +
        `OTEL_RESOURCE_ATTRIBUTES from the downward API (metadata.uid); ${cgroupnsHost}; ${OR_EXPLICIT}`,
    );
  }
  const where = hostRoots.map((m) => m.mountPoint).join(', ');
  if (uid === undefined) {
    throw new PodCgroupError(
      `${why}: set k8s.pod.uid in OTEL_RESOURCE_ATTRIBUTES from the downward API (metadata.uid) so that flowtap ` +
        `can find the pod's cgroup under ${where}; ${cgroupnsHost}; ${OR_EXPLICIT}`,
    );
  }
  for (const mount of hostRoots) {
    for (const rel of kubeletPodCgroups(uid)) {
      const dir = path.posix.join(mount.mountPoint, rel);
      if (isDirectory(dir)) return dir;
    }
  }
  throw new PodCgroupError(
    `${why}, and no cgroup of pod ${uid} (k8s.pod.uid) is under ${where} where the kubelet puts it ` +
      `(kubepods.slice/kubepods[-<qos>].slice/kubepods[-<qos>]-pod<uid>.slice or kubepods[/<qos>]/pod<uid>); ${OR_EXPLICIT}`,
  );
}
