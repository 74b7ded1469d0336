/**
 * What the pipeline adds to a flow, as the CLI sets it up from the host: the
 * DNS cache, the cgroup walk (workload and cgroup path of a socket) and the
 * /proc cache — the last only where flowtap's /proc shows the kernel's pids.
 */
import { findCgroup2Mount } from '../config/cgroup';
import type { Config } from '../config/config';
import { ContainerIndex } from '../enrich/container';
import { DnsCache } from '../enrich/dns/cache';
import { pidNamespaceIsInitial, PROCESS_CACHE_LIMITS, ProcessCache } from '../enrich/process';
import { cgroupTree, procReader, readLink, readText } from './host';

export interface Enrichment {
  dnsCache: DnsCache;
  containers: ContainerIndex;
  /** undefined: /proc does not show the kernel's pids (or --replay). */
  processCache: ProcessCache | undefined;
}

export function createEnrichment(config: Config, nowBootNs: () => bigint): Enrichment {
  const containers = new ContainerIndex({
    root: config.cgroup,
    tree: cgroupTree,
    nowMs: Date.now,
    mountPoint: findCgroup2Mount(readText('/proc/self/mountinfo') ?? ''),
  });
  // The kernel's pids are the initial pid namespace's: /proc answers for them only there (and not for a replay's).
  const sharesPids = config.replay === undefined && pidNamespaceIsInitial(readLink('/proc/self/ns/pid'));
  return {
    dnsCache: new DnsCache({ maxNames: config.dnsCacheNames, maxNamesPerIp: config.dnsNamesPerAddress, zeroTtlSeconds: config.dnsZeroTtlSeconds }),
    containers,
    processCache: sharesPids ? new ProcessCache({ proc: procReader, ...PROCESS_CACHE_LIMITS, nowBootNs }) : undefined,
  };
}
