/**
 * The native addon (native/, build/flowtap.node) as TypeScript sees it: its
 * contract, loading it, and turning its errors into what the CLI tells the
 * user. The addon loads and attaches the programs and hands ring-buffer
 * batches to onBatch on the JS thread.
 */
import * as path from 'node:path';
import type { ClockAnchor } from './clock';
import { ABI_VERSION } from './layout';

export interface NativeProbeOptions {
  cgroupPath: string;
  ringBufferBytes?: number;
  flowTableEntries?: number;
  /** One batch of concatenated records (see decode.ts); called on the JS thread. */
  onBatch: (batch: Buffer, records: number) => void;
  /** An error after attach (e.g. the poll thread failed). */
  onError?: (error: Error) => void;
}

export interface NativeProbe {
  /** Kernel counters summed over CPUs, by name (bpf/flowtap.h FLOWTAP_COUNTER_NAMES). */
  counters(): Record<string, number>;
  programStats(): Record<string, unknown>;
  flowTableSize(): number;
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
 * Missing privilege → exit 1, naming the capabilities; anything else (no such
 * directory, not a cgroup v2 directory, a kernel that rejects the programs)
 * → exit 2. The addon's messages already say what failed and why; this adds
 * the flag or the capabilities when they are missing from it.
 */
export function describeProbeError(error: unknown, cgroupPath: string): ProbeFailure {
  const e = (error ?? {}) as NativeError;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(error);
  if (e.code !== undefined && PERMISSION_CODES.has(e.code)) {
    return { exitCode: 1, message: message.includes('CAP_') ? message : `${message}: ${CAPABILITY_HINT}` };
  }
  if (e.step === 'open_cgroup' || e.step?.startsWith('attach') === true) {
    return { exitCode: 2, message: `--cgroup ${cgroupPath}: ${message}` };
  }
  return { exitCode: 2, message: `${message} [step ${e.step ?? 'unknown'}, ${e.code ?? 'no errno'}]` };
}
