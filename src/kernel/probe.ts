/**
 * The native addon (native/, build/flowtap.node) as TypeScript sees it: its
 * contract, loading it, and turning its errors into what the CLI tells the
 * user. The addon loads and attaches the programs and hands ring-buffer
 * batches to onBatch on the JS thread.
 */
import * as path from 'node:path';
import type { ClockAnchor } from './clock';
import type { ProbeFilters } from './filter';
import { ABI_VERSION } from './layout';

export interface NativeProbeOptions {
  cgroupPath: string;
  ringBufferBytes?: number;
  flowTableEntries?: number;
  /** Wake the reader once this many bytes wait (default 65536); 0 = every record. */
  wakeupBytes?: number;
  /** The reader's poll timeout, 1 to 1000 ms (default 50): how long a record can wait when fewer than wakeupBytes do. */
  pollIntervalMillis?: number;
  /**
   * Which flows are reported, applied in the kernel (filter.ts). Ports may
   * also be given as single numbers. Absent fields: no such filter.
   */
  filters?: Partial<Omit<ProbeFilters, 'includePorts' | 'excludePorts'>> & {
    includePorts?: ReadonlyArray<number | readonly [number, number]>;
    excludePorts?: ReadonlyArray<number | readonly [number, number]>;
  };
  /** One batch of concatenated records (see decode.ts); called on the JS thread. */
  onBatch: (batch: Buffer, records: number) => void;
  /** An error after attach (e.g. the poll thread failed). */
  onError?: (error: Error) => void;
}

export interface NativeProbe {
  /**
   * Kernel counters summed over CPUs, by name (bpf/flowtap.h
   * FLOWTAP_COUNTER_NAMES); flow_table_evictions (inserts - deletes - entries,
   * a lower bound that is exact while the table is quiet); the addon's own.
   */
  counters(): Record<string, number>;
  programStats(): Record<string, unknown>;
  flowTableSize(): number;
  /**
   * The parts of the kernel programs (bpf/sock.h) this kernel, with this
   * process's privileges, cannot run: what is missing and what the records
   * are without because of it. [] when everything runs.
   */
  leftOut?(): { missing: string; leavesOut: string }[];
  /** Detaches, drains the ring buffer (remaining batches reach onBatch first), joins the poll thread. */
  close(): Promise<void>;
}

export interface NativeBinding {
  abiVersion: number;
  counterNames: string[];
  /** sizeof/offsetof of the shared structs: "flowtap_hdr", "flowtap_hdr.ts_ns", ... */
  layout(): Record<string, number>;
  clockAnchor(): ClockAnchor;
  /** Throws a NativeError. */
  Probe: new (options: NativeProbeOptions) => NativeProbe;
}

/** What the addon throws: an errno name and the loader step that failed. */
export interface NativeError extends Error {
  code?: string;
  errno?: number;
  step?: string;
}

/** Where the addon is built, relative to the package root. */
export const BINDING_PATH = path.join('build', 'flowtap.node');

/**
 * Loads the addon from `packageRoot` and checks it was built from the same
 * bpf/flowtap.h as the decoder. `load` is require (injected for tests).
 */
export function loadBinding(packageRoot: string, load: (id: string) => unknown = require): NativeBinding {
  const file = path.join(packageRoot, BINDING_PATH);
  let binding: NativeBinding;
  try {
    binding = load(file) as NativeBinding;
  } catch (e) {
    throw new Error(`cannot load the native addon ${file} (run make build): ${(e as Error).message}`);
  }
  if (binding.abiVersion !== ABI_VERSION) {
    throw new Error(`native addon ${file} has record ABI ${binding.abiVersion}, the decoder reads ${ABI_VERSION}: rebuild (make build)`);
  }
  return binding;
}

/** What the CLI says and the exit status for an error opening the probe. */
export interface ProbeFailure {
  exitCode: 1 | 2;
  message: string;
}

const PERMISSION_CODES = new Set(['EPERM', 'EACCES']);
const CAPABILITY_HINT = 'flowtap needs CAP_BPF and CAP_NET_ADMIN (CAP_SYS_ADMIN before Linux 5.8), or root';

/**
 * What loading and attaching needs (found by running the CLI under capsh on
 * Linux 6.18, test/integration/privilege.test.ts): CAP_BPF to create the maps
 * and load the programs, CAP_NET_ADMIN to attach cgroup_skb programs. The
 * programs add only constants to packet pointers, so the verifier does not
 * need CAP_PERFMON (bpf/flowtap.bpf.c, fast_l4_pass). No CAP_SYS_RESOURCE:
 * BPF memory is charged to the memory cgroup, not RLIMIT_MEMLOCK, since
 * Linux 5.11. Capability numbers from linux/capability.h.
 */
export const REQUIRED_CAPABILITIES: readonly (readonly [name: string, bit: number])[] = [
  ['CAP_BPF', 39],
  ['CAP_NET_ADMIN', 12],
];

/**
 * The required capabilities missing from the effective set in the text of
 * /proc/self/status (its CapEff line); [] when that cannot be read.
 */
export function missingCapabilities(procSelfStatus: string | undefined): string[] {
  const hex = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(procSelfStatus ?? '')?.[1];
  if (hex === undefined) return [];
  const effective = BigInt(`0x${hex}`);
  return REQUIRED_CAPABILITIES.filter(([, bit]) => ((effective >> BigInt(bit)) & 1n) === 0n).map(([name]) => name);
}

/**
 * Missing privilege → exit 1, naming the capabilities; anything else (no such
 * directory, not a cgroup v2 directory, a kernel that rejects the programs)
 * → exit 2. The addon's messages already say what failed and why; this adds
 * the flag or the capabilities when they are missing from it. `missing`
 * (missingCapabilities) turns a refusal into one line naming what is missing.
 */
export function describeProbeError(error: unknown, cgroupPath: string, missing: readonly string[] = []): ProbeFailure {
  const e = (error ?? {}) as NativeError;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
  if (e.code !== undefined && PERMISSION_CODES.has(e.code)) {
    if (missing.length > 0) {
      // The first line says what was refused; the rest (a verifier log) only repeats why.
      const names = REQUIRED_CAPABILITIES.map(([name]) => name);
      const first = message.split('\n')[0].replace(/:\s*(flowtap needs .*)?$/, '');
      return {
        exitCode: 1,
        message: `${first}: missing ${missing.join(', ')} (flowtap needs ${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}, or root)`,
      };
    }
    return { exitCode: 1, message: message.includes('CAP_') ? message : `${message}: ${CAPABILITY_HINT}` };
  }
  if (e.step === 'open_cgroup' || e.step?.startsWith('attach') === true) {
    // One line even for a path with a newline in it.
    const line = `--cgroup ${cgroupPath}: ${message}`.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    return { exitCode: 2, message: line };
  }
  return { exitCode: 2, message: `${message} [step ${e.step ?? 'unknown'}, ${e.code ?? 'no errno'}]` };
}
