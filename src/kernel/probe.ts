/**
 * The native addon (native/, build/flowtap.node) as TypeScript sees it: its
 * contract, loading it, and turning its errors into what the CLI tells the
 * user. The addon loads and attaches the programs and hands ring-buffer
 * batches to onBatch on the JS thread.
 */
import * as path from 'node:path';
import type { ClockAnchor } from './clock';
import { describeLimit, LIMITS, PORT_LIMIT, withinLimit, type Setting } from '../config/limits';
import { DIRECTIONS, FilterSyntaxError, isPort, kernelFilters, parseCidr, type KernelFilters, type PortRange, type ProbeFilters } from './filter';
import { ABI_VERSION } from './layout';

export interface NativeProbeOptions {
  cgroupPath: string;
  /** Each number below: limits.ts has its range and its default (used when absent). */
  ringBufferBytes?: number;
  flowTableEntries?: number;
  /** Wake the reader once this many bytes wait; 0 = every record. */
  wakeupBytes?: number;
  /** The reader's poll timeout: how long a record can wait when fewer than wakeupBytes do. */
  pollIntervalMillis?: number;
  /** Bytes read and not yet taken by onBatch; above it the reader pauses (the kernel keeps, or counts, the rest). */
  maxPendingBytes?: number;
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

/**
 * What the addon's Probe takes: every value checked and defaulted
 * (probeOptions), the filters as the kernel's settings (kernelFilters). The
 * addon checks only the types, and holds no default of its own.
 */
export interface AddonProbeOptions {
  cgroupPath: string;
  ringBufferBytes: number;
  flowTableEntries: number;
  wakeupBytes: number;
  pollIntervalMillis: number;
  maxPendingBytes: number;
  filters: KernelFilters;
  onBatch: (batch: Buffer, records: number) => void;
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

/** build/flowtap.node as it is. */
export interface AddonBinding {
  abiVersion: number;
  counterNames: string[];
  /** sizeof/offsetof of the shared structs ("flowtap_hdr", "flowtap_hdr.ts_ns", ...) and the shared constants. */
  layout(): Record<string, number>;
  clockAnchor(): ClockAnchor;
  /** Throws a NativeError, or a TypeError naming an argument of the wrong type. */
  Probe: new (options: AddonProbeOptions) => NativeProbe;
}

/** The addon with its Probe taking NativeProbeOptions: checked here (a TypeError naming the option), then handed over. */
export interface NativeBinding extends Omit<AddonBinding, 'Probe'> {
  /** Throws a TypeError for a bad option, a NativeError for a failure to open, load or attach. */
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
  let addon: AddonBinding;
  try {
    addon = load(file) as AddonBinding;
  } catch (e) {
    throw new Error(`cannot load the native addon ${file} (run make build): ${(e as Error).message}`);
  }
  if (addon.abiVersion !== ABI_VERSION) {
    throw new Error(`native addon ${file} has record ABI ${addon.abiVersion}, the decoder reads ${ABI_VERSION}: rebuild (make build)`);
  }
  // Called with new, a function that returns an object gives that object: the addon's probe.
  const Probe = function Probe(options: NativeProbeOptions): NativeProbe {
    return new addon.Probe(probeOptions(options));
  } as unknown as NativeBinding['Probe'];
  return {
    abiVersion: addon.abiVersion,
    counterNames: addon.counterNames,
    layout: () => addon.layout(),
    clockAnchor: () => addon.clockAnchor(),
    Probe,
  };
}

/** "got 1000" / "got a string": the end of a TypeError message. */
function got(v: unknown): string {
  if (typeof v === 'number') return `got ${v}`;
  if (typeof v === 'string') return `got "${v}"`;
  if (v === null || v === undefined) return `got ${v}`;
  if (Array.isArray(v)) return 'got an array';
  return `got ${typeof v === 'object' ? 'an object' : `a ${typeof v}`}`;
}

function numberOption(options: NativeProbeOptions, name: keyof NativeProbeOptions, setting: Setting): number {
  const v = options[name];
  if (v === undefined) return setting.default;
  if (!withinLimit(setting, v)) throw new TypeError(`options.${name} must be ${describeLimit(setting)}, ${got(v)}`);
  return v;
}

function portsOption(filters: Record<string, unknown>, name: string): PortRange[] {
  const v = filters[name];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new TypeError(`options.filters.${name} must be an array, ${got(v)}`);
  return v.map((item: unknown, i): PortRange => {
    if (isPort(item)) return [item, item];
    if (Array.isArray(item) && item.length === 2 && isPort(item[0]) && isPort(item[1]) && item[0] <= item[1]) return [item[0], item[1]];
    throw new TypeError(
      `options.filters.${name}[${i}] must be a port (${PORT_LIMIT.min} to ${PORT_LIMIT.max}) or a [first, last] range of them, first <= last, ${got(item)}`,
    );
  });
}

function cidrsOption(filters: Record<string, unknown>, name: string): string[] {
  const v = filters[name];
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new TypeError(`options.filters.${name} must be an array, ${got(v)}`);
  return v.map((item: unknown, i) => {
    const why = typeof item === 'string' ? cidrProblem(item) : 'not a string';
    if (why !== undefined)
      throw new TypeError(`options.filters.${name}[${i}] must be an IPv4 or IPv6 prefix "address/length" with zero host bits, ${got(item)} (${why})`);
    return item as string;
  });
}

function cidrProblem(item: string): string | undefined {
  try {
    parseCidr(item);
    return undefined;
  } catch (e) {
    if (e instanceof FilterSyntaxError) return e.message;
    throw e;
  }
}

function filtersOption(options: NativeProbeOptions): ProbeFilters {
  const v: unknown = options.filters;
  if (v === undefined) return { direction: 'both', includePorts: [], excludePorts: [], includeCidrs: [], excludeCidrs: [] };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`options.filters must be an object when given, ${got(v)}`);
  const f = v as Record<string, unknown>;
  const direction = f.direction ?? 'both';
  if (!(DIRECTIONS as readonly unknown[]).includes(direction)) {
    throw new TypeError(`options.filters.direction must be "incoming", "outgoing" or "both", ${got(direction)}`);
  }
  return {
    direction: direction as ProbeFilters['direction'],
    includePorts: portsOption(f, 'includePorts'),
    excludePorts: portsOption(f, 'excludePorts'),
    includeCidrs: cidrsOption(f, 'includeCidrs'),
    excludeCidrs: cidrsOption(f, 'excludeCidrs'),
  };
}

/**
 * The addon's options for `options`: each number checked against limits.ts
 * (its default when absent), the filters turned into the kernel's settings.
 * Throws a TypeError naming the option. Pure.
 */
export function probeOptions(options: NativeProbeOptions): AddonProbeOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError(`options must be an object, ${got(options)}`);
  if (typeof options.cgroupPath !== 'string' || options.cgroupPath === '') {
    throw new TypeError(`options.cgroupPath must be a non-empty string, ${options.cgroupPath === '' ? 'got an empty string' : got(options.cgroupPath)}`);
  }
  return {
    cgroupPath: options.cgroupPath,
    ringBufferBytes: numberOption(options, 'ringBufferBytes', LIMITS.ringBufferBytes),
    flowTableEntries: numberOption(options, 'flowTableEntries', LIMITS.flowTableEntries),
    wakeupBytes: numberOption(options, 'wakeupBytes', LIMITS.ringBufferWakeupBytes),
    pollIntervalMillis: numberOption(options, 'pollIntervalMillis', LIMITS.ringBufferPollMillis),
    maxPendingBytes: numberOption(options, 'maxPendingBytes', LIMITS.maxPendingBytes),
    filters: kernelFilters(filtersOption(options)),
    onBatch: options.onBatch,
    onError: options.onError,
  };
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
 * `cgroupSource` is where the cgroup came from: --cgroup or FLOWTAP_CGROUP.
 */
export function describeProbeError(error: unknown, cgroupPath: string, missing: readonly string[] = [], cgroupSource = '--cgroup'): ProbeFailure {
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
    const line = `${cgroupSource} ${cgroupPath}: ${message}`.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
    return { exitCode: 2, message: line };
  }
  return { exitCode: 2, message: `${message} [step ${e.step ?? 'unknown'}, ${e.code ?? 'no errno'}]` };
}
