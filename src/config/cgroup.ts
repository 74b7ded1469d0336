/**
 * Which cgroup v2 directory flowtap watches: the default (the cgroup v2 mount
 * root in /proc/self/mountinfo) and `--cgroup pod` (podcgroup.ts). Pure: the
 * text of the /proc files and a directory check come in as arguments.
 */
import { ConfigError } from './error';
import { cgroup2Mounts, findPodCgroup, PodCgroupError } from './podcgroup';

/** What `--cgroup pod` reads from the system (see podcgroup.ts); the CLI passes it in. */
export interface PodView {
  /** Text of /proc/self/cgroup, if it could be read. */
  procSelfCgroup: string | undefined;
  /** Whether `dir` is an existing directory. */
  isDirectory(dir: string): boolean;
}

/**
 * The cgroup v2 mount point in the text of /proc/self/mountinfo: the first
 * cgroup2 mount of the hierarchy's root ("/sys/fs/cgroup" on unified hosts,
 * "/sys/fs/cgroup/unified" on hybrid ones), else the first cgroup2 mount.
 */
export function findCgroup2Mount(mountinfo: string): string | undefined {
  const mounts = cgroup2Mounts(mountinfo);
  return (mounts.find((m) => m.root === '/') ?? mounts[0])?.mountPoint;
}

/** The --cgroup default: the cgroup v2 mount root. */
export function defaultCgroup(mountinfo: string | undefined): string {
  const mount = mountinfo === undefined ? undefined : findCgroup2Mount(mountinfo);
  if (mount === undefined) {
    throw new ConfigError('no cgroup v2 mount found in /proc/self/mountinfo: pass --cgroup <dir> or set FLOWTAP_CGROUP');
  }
  return mount;
}

/**
 * `--cgroup pod` resolved to the pod's directory; `source` is where 'pod'
 * came from ("--cgroup" or FLOWTAP_CGROUP), for the message.
 */
export function podCgroup(source: string, mountinfo: string | undefined, pod: PodView | undefined, podUid: string | undefined): string {
  try {
    return findPodCgroup({ procSelfCgroup: pod?.procSelfCgroup, mountinfo, podUid, isDirectory: pod?.isDirectory ?? (() => false) });
  } catch (e) {
    if (e instanceof PodCgroupError) throw new ConfigError(`${source.startsWith('--') ? `${source} pod` : `${source}=pod`}: ${e.message}`);
    throw e;
  }
}
