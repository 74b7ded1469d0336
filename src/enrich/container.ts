/**
 * The workload of a flow (container.id, k8s.pod.uid), from the cgroup of its
 * local socket. The kernel record carries the socket's cgroup v2 id (its
 * directory's inode number); this module maps it to a directory of the
 * watched tree and reads a container ID out of its path below the watched
 * cgroup the way container runtimes name their cgroups, and a pod UID out of
 * its full path the way the kubelet names pod cgroups. Pure parsing apart
 * from the injected directory walk.
 */

/** A 64-hex-digit container ID in one cgroup path component, as runtimes write it:
 *  containerd `cri-containerd-<id>.scope`, CRI-O `crio-<id>.scope`,
 *  Docker `docker-<id>.scope` (systemd driver) or `<id>` (cgroupfs driver),
 *  Podman `libpod-<id>.scope`, the kubelet's cgroupfs driver `pod<uid>/<id>`. */
const COMPONENT = /^(?:(?:cri-containerd|crio|docker|libpod)-)?([0-9a-f]{64})(?:\.scope)?$/;

/**
 * The container ID named by the deepest matching component of a cgroup path,
 * or undefined. `crio-conmon-<id>` (CRI-O's monitor process) is not a container.
 */
export function containerIdFromCgroupPath(path: string): string | undefined {
  const parts = path.split('/');
  for (let i = parts.length - 1; i >= 0; i--) {
    const m = COMPONENT.exec(parts[i]);
    if (m) return m[1];
  }
  return undefined;
}

/** A pod UID as the API server writes it (RFC 4122, lower case). */
const uidPattern = (sep: string): string => [8, 4, 4, 4, 12].map((n) => `[0-9a-f]{${n}}`).join(sep);
/**
 * The kubelet's pod cgroup in one path component, for every QoS class:
 * systemd driver `kubepods-pod<uid>.slice` (Guaranteed),
 * `kubepods-burstable-pod<uid>.slice`, `kubepods-besteffort-pod<uid>.slice`,
 * the UID's dashes written as underscores (systemd reserves '-' as the slice
 * separator); cgroupfs driver `pod<uid>` under kubepods/, kubepods/burstable/
 * or kubepods/besteffort/.
 */
const POD_COMPONENT = new RegExp(`^(?:kubepods-(?:burstable-|besteffort-)?pod(${uidPattern('_')})\\.slice|pod(${uidPattern('-')}))$`);

/**
 * k8s.pod.uid named by a kubelet pod cgroup in `path` (the deepest one), or
 * undefined. Only below a kubepods component: a `pod<uid>` directory
 * elsewhere is not the kubelet's.
 */
export function podUidFromCgroupPath(path: string): string | undefined {
  const parts = path.split('/');
  const kube = parts.findIndex((p) => p === 'kubepods' || p === 'kubepods.slice');
  if (kube < 0) return undefined;
  for (let i = parts.length - 1; i > kube; i--) {
    const m = POD_COMPONENT.exec(parts[i]);
    if (m) return (m[1] ?? m[2]).replace(/_/g, '-');
  }
  return undefined;
}

/** The directory walk, injected (node:fs in production, a fake in tests). */
export interface CgroupTree {
  /** Sub-directories of dir (names only); [] when it cannot be read. */
  subdirs(dir: string): string[];
  /** The inode number of dir (its cgroup v2 id), or undefined. */
  inode(dir: string): bigint | undefined;
}

/**
 * Who a socket belongs to: what its cgroup path names. The exporters give
 * each workload its own Resource (src/record/resource.ts). Objects are
 * shared: every socket of one workload gets the same one while its cgroups
 * stay, so a sink can tell a switch by identity.
 */
export interface Workload {
  readonly containerId?: string;
  readonly podUid?: string;
}

/** One string per distinct workload (a cache key). */
export function workloadKey(w: Workload): string {
  return `${w.containerId ?? ''}/${w.podUid ?? ''}`;
}

/** The workload a cgroup directory names, or undefined when it names none. `below` is its path under the watched cgroup. */
export function workloadOfCgroup(fullPath: string, below: string): Workload | undefined {
  const containerId = containerIdFromCgroupPath(below);
  const podUid = podUidFromCgroupPath(fullPath);
  if (containerId === undefined && podUid === undefined) return undefined;
  const w: { containerId?: string; podUid?: string } = {};
  if (containerId !== undefined) w.containerId = containerId;
  if (podUid !== undefined) w.podUid = podUid;
  return w;
}

export interface ContainerIndexOptions {
  /** The watched cgroup directory. */
  root: string;
  tree: CgroupTree;
  /** Wall-clock ms, for rate-limiting rescans. */
  nowMs: () => number;
  /** Least time between two rescans triggered by unknown ids. Default 1000. */
  rescanIntervalMillis?: number;
  /** Directories walked at most per scan. Default 100 000. */
  maxDirectories?: number;
  /**
   * The cgroup v2 mount point (`/sys/fs/cgroup`): cgroupPathFor gives paths
   * below it, as /proc/<pid>/cgroup writes them. Default: the watched directory's
   * paths as they are.
   */
  mountPoint?: string;
}

/**
 * cgroup id → workload for the watched cgroup and those below it. A flow from
 * a cgroup not seen yet triggers a rescan of the tree (at most once per
 * rescanIntervalMillis), so containers started after flowtap are found.
 * A rescan keeps the Workload objects of workloads still there.
 */
export class ContainerIndex {
  private byId = new Map<bigint, Workload | undefined>();
  private pathById = new Map<bigint, string>();
  private lastScanMs = -Infinity;
  private readonly opts: Required<ContainerIndexOptions>;
  /** Scans done, and lookups that found a workload / did not. */
  readonly stats = { scans: 0, hits: 0, misses: 0 };

  constructor(opts: ContainerIndexOptions) {
    this.opts = { rescanIntervalMillis: 1000, maxDirectories: 100_000, mountPoint: '', ...opts };
  }

  /**
   * The path of cgroup `cgroupId` in the cgroup v2 hierarchy (below
   * mountPoint), for the watched cgroup and those below it; found by the
   * same walk as containerIdFor (and rescanned by the same rule).
   */
  cgroupPathFor(cgroupId: bigint): string | undefined {
    if (cgroupId === 0n) return undefined;
    if (!this.byId.has(cgroupId) && this.opts.nowMs() - this.lastScanMs >= this.opts.rescanIntervalMillis) this.scan();
    return this.pathById.get(cgroupId);
  }

  /** The workload of the socket whose cgroup id is `cgroupId`, if its path names one. */
  workloadFor(cgroupId: bigint): Workload | undefined {
    if (cgroupId === 0n) return this.miss();
    if (!this.byId.has(cgroupId) && this.opts.nowMs() - this.lastScanMs >= this.opts.rescanIntervalMillis) this.scan();
    const id = this.byId.get(cgroupId);
    if (id === undefined) return this.miss();
    this.stats.hits++;
    return id;
  }

  private miss(): undefined {
    this.stats.misses++;
    return undefined;
  }

  /** Walks the watched tree, breadth first, bounded. */
  scan(): void {
    this.lastScanMs = this.opts.nowMs();
    this.stats.scans++;
    const next = new Map<bigint, Workload | undefined>();
    const known = new Map<string, Workload>();
    for (const w of this.byId.values()) if (w !== undefined) known.set(workloadKey(w), w);
    const paths = new Map<bigint, string>();
    const mount = this.opts.mountPoint;
    const queue = [this.opts.root];
    for (let n = 0; n < queue.length && n < this.opts.maxDirectories; n++) {
      const dir = queue[n];
      const ino = this.opts.tree.inode(dir);
      if (ino !== undefined) {
        let w = workloadOfCgroup(dir, dir.slice(this.opts.root.length));
        if (w !== undefined) {
          const key = workloadKey(w);
          w = known.get(key) ?? w;
          known.set(key, w);
        }
        next.set(ino, w);
        paths.set(ino, mount !== '' && (dir === mount || dir.startsWith(`${mount}/`)) ? dir.slice(mount.length) || '/' : dir);
      }
      for (const sub of this.opts.tree.subdirs(dir)) queue.push(`${dir}/${sub}`);
    }
    this.byId = next;
    this.pathById = paths;
  }
}
