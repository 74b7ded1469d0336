/**
 * Flow filters: which flows are reported. Pure parsers for the filter options
 * (port lists, CIDR lists, direction), and the exact settings the kernel
 * programs get for them (kernelFilters: rodata and CIDR map entries, which
 * the addon writes as they are). The filters themselves run in the kernel,
 * on each SYN-ACK (bpf/flowtap.bpf.c); the semantics are in
 * docs/configuration.md:
 *
 * - ports match the responder's port (the server side: the service, never
 *   the initiator's ephemeral port);
 * - CIDRs match the peer's address (the end that is not the watched socket:
 *   the responder of an outgoing flow, the initiator of an incoming one);
 * - an empty include list means everything; exclude always wins;
 * - DNS answers are never filtered.
 */
import { isIP } from 'node:net';
import { PORT_LIMIT } from '../config/limits';
import { formatIPv4, formatIPv6, isIPv4Mapped } from './address';
import * as L from './layout';

export const DIRECTIONS = ['incoming', 'outgoing', 'both'] as const;
export type DirectionFilter = (typeof DIRECTIONS)[number];

/** An inclusive range of TCP ports. */
export type PortRange = readonly [first: number, last: number];

/** The filters as the native addon takes them (options.filters). */
export interface ProbeFilters {
  direction: DirectionFilter;
  includePorts: PortRange[];
  excludePorts: PortRange[];
  /** "address/length", IPv4 or IPv6, host bits zero. */
  includeCidrs: string[];
  excludeCidrs: string[];
}

export class FilterSyntaxError extends Error {
  override name = 'FilterSyntaxError';
}

/** Items of a comma-separated list, trimmed; blanks between commas are refused. */
function items(raw: string): string[] {
  if (raw.trim() === '') return [];
  const list = raw.split(',').map((s) => s.trim());
  const blank = list.findIndex((s) => s === '');
  if (blank >= 0) throw new FilterSyntaxError(`empty item at position ${blank + 1}`);
  return list;
}

/** Whether `n` is a port a filter may name. */
export function isPort(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= PORT_LIMIT.min && n <= PORT_LIMIT.max;
}

function port(text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!isPort(n)) throw new FilterSyntaxError(`'${text}' is not a port from ${PORT_LIMIT.min} to ${PORT_LIMIT.max}`);
  return n;
}

/**
 * "22,80,8000-8100" → [[22,22],[80,80],[8000,8100]]. Ports 1 to 65535; a
 * range is first-last with first <= last. "" → []. Throws FilterSyntaxError.
 */
export function parsePortList(raw: string): PortRange[] {
  return items(raw).map((item) => {
    const m = /^(\d+)\s*-\s*(\d+)$/.exec(item);
    if (m === null) {
      const p = port(item);
      return [p, p] as const;
    }
    const [first, last] = [port(m[1]), port(m[2])];
    if (first > last) throw new FilterSyntaxError(`range '${item}' ends before it starts`);
    return [first, last] as const;
  });
}

/** The 4 or 16 bytes of an IPv4 or IPv6 address (no zone), or undefined. */
export function parseAddress(text: string): Uint8Array | undefined {
  const kind = isIP(text);
  if (kind === 4) return Uint8Array.from(text.split('.').map(Number));
  if (kind !== 6 || text.includes('%')) return undefined;
  let head = text;
  const tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted !== null) {
    head = dotted[1].endsWith('::') ? dotted[1] : dotted[1].slice(0, -1);
    const v4 = dotted[2].split('.').map(Number);
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
  }
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  let all: number[];
  if (head.includes('::')) {
    const [left, right] = head.split('::');
    const l = groups(left);
    const r = [...groups(right), ...tail];
    all = [...l, ...new Array<number>(Math.max(0, 8 - l.length - r.length)).fill(0), ...r];
  } else {
    all = [...groups(head), ...tail];
  }
  if (all.length !== 8) return undefined;
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** A prefix as bytes: the address (4 or 16 bytes, host bits zero) and its length in bits. */
export interface Prefix {
  addr: Uint8Array;
  len: number;
}

function formatAddress(b: Uint8Array): string {
  return b.length === 4 ? formatIPv4(b) : formatIPv6(b);
}

/**
 * One prefix: "10.0.0.0/8", "fd00::/8", or a bare address (one host). An
 * IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) becomes its IPv4 prefix:
 * flowtap never sees IPv4-mapped addresses (an IPv4 flow on a dual-stack
 * socket is IPv4). Host bits must be zero. Returns the canonical text.
 */
export function parseCidr(item: string): string {
  const { addr, len } = parsePrefix(item);
  return `${formatAddress(addr)}/${len}`;
}

/** parseCidr's prefix as bytes. Throws FilterSyntaxError. */
export function parsePrefix(item: string): Prefix {
  const slash = item.indexOf('/');
  const addrText = slash < 0 ? item : item.slice(0, slash);
  let addr = parseAddress(addrText);
  if (addr === undefined) throw new FilterSyntaxError(`'${item}' is not an IPv4 or IPv6 address or prefix`);
  const max = addr.length * 8;
  let len = max;
  if (slash >= 0) {
    const lenText = item.slice(slash + 1);
    len = /^\d{1,3}$/.test(lenText) ? Number(lenText) : NaN;
    if (!(len <= max)) throw new FilterSyntaxError(`'${item}': the prefix length must be 0 to ${max}`);
  }
  if (addr.length === 16 && isIPv4Mapped(addr) && len >= 96) {
    addr = addr.slice(12);
    len -= 96;
  }
  const masked = Uint8Array.from(addr, (byte, i) => {
    const keep = len - i * 8;
    return keep >= 8 ? byte : keep <= 0 ? 0 : byte & (0xff << (8 - keep));
  });
  if (masked.some((byte, i) => byte !== addr[i])) {
    throw new FilterSyntaxError(`'${item}' has host bits set (did you mean ${formatAddress(masked)}/${len}?)`);
  }
  return { addr: masked, len };
}

/** "10.0.0.0/8, fd00::/8" → canonical prefixes. "" → []. Throws FilterSyntaxError. */
export function parseCidrList(raw: string): string[] {
  return items(raw).map(parseCidr);
}

/** The probe's filters from the configuration (the fields of the same names). */
export function probeFilters(c: ProbeFilters): ProbeFilters {
  return {
    direction: c.direction,
    includePorts: c.includePorts,
    excludePorts: c.excludePorts,
    includeCidrs: c.includeCidrs,
    excludeCidrs: c.excludeCidrs,
  };
}

/** Whether any filter is set (for the log). */
export function filtersActive(f: ProbeFilters): boolean {
  return f.direction !== 'both' || [f.includePorts, f.excludePorts, f.includeCidrs, f.excludeCidrs].some((l) => l.length > 0);
}

/**
 * What the kernel programs get for the filters, byte for byte: the rodata
 * values of bpf/flowtap.bpf.c (cfg_*) and the entries of the two LPM tries.
 * The addon writes them as they are.
 */
export interface KernelFilters {
  /** cfg_filter: 1 when any check below is on (off: the SYN-ACK path pays one load, no lookup). */
  filter: number;
  /** cfg_directions: FLOWTAP_DIR_BIT of each direction reported. */
  directions: number;
  /** cfg_port_filter: 1 to consult portSkip. */
  portFilter: number;
  /** cfg_port_skip: bit p (byte p >> 3, bit p & 7, little-endian u64 words) set = responder port p is left out. */
  portSkip: Buffer;
  /** cfg_cidr4_filter / cfg_cidr6_filter: 1 to look the peer up in cidr4 / cidr6. */
  cidr4Filter: number;
  cidr6Filter: number;
  /** cfg_cidr_unmatched: the verdict for a peer no prefix matches. */
  cidrUnmatched: number;
  /** The cidr4 / cidr6 entries: struct flowtap_cidr{4,6}_key back to back, and one u32 verdict per key. */
  cidr4Keys: Buffer;
  cidr4Values: Buffer;
  cidr6Keys: Buffer;
  cidr6Values: Buffer;
}

/** Bit of a direction (enum flowtap_direction) in cfg_directions, as FLOWTAP_DIR_BIT. */
const dirBit = (dir: number): number => 1 << dir;
const BOTH_DIRECTIONS = dirBit(L.DIR_INCOMING) | dirBit(L.DIR_OUTGOING);

/** Whether every address under `inner` is under `outer` (same family). */
function covers(outer: Prefix, inner: Prefix): boolean {
  if (outer.addr.length !== inner.addr.length || outer.len > inner.len) return false;
  for (let bit = 0; bit < outer.len; bit++) {
    const mask = 0x80 >> (bit & 7);
    if ((outer.addr[bit >> 3] & mask) !== (inner.addr[bit >> 3] & mask)) return false;
  }
  return true;
}

/**
 * The kernel's filter settings for `f`. The kernel does one longest-prefix
 * lookup per SYN-ACK, so each prefix of either list stores the final verdict
 * for the addresses whose longest match it is: reported when some include
 * prefix covers it (or there is none) and no exclude prefix does. Addresses
 * no prefix matches get cidrUnmatched: left out as soon as there is an
 * include list. Ports: with an include list every port not in it is
 * skipped; an excluded port is skipped whatever the include list says.
 */
export function kernelFilters(f: ProbeFilters): KernelFilters {
  const directions = f.direction === 'incoming' ? dirBit(L.DIR_INCOMING) : f.direction === 'outgoing' ? dirBit(L.DIR_OUTGOING) : BOTH_DIRECTIONS;

  const portSkip = Buffer.alloc(L.PORT_SKIP_BYTES);
  const portFilter = f.includePorts.length > 0 || f.excludePorts.length > 0 ? 1 : 0;
  if (portFilter === 1) {
    const skip = new Uint8Array(L.PORT_SKIP_BYTES * 8).fill(f.includePorts.length > 0 ? 1 : 0);
    for (const [first, last] of f.includePorts) skip.fill(0, first, last + 1);
    for (const [first, last] of f.excludePorts) skip.fill(1, first, last + 1);
    // u64 words in host (little-endian) order: bit p of the bitmap is bit (p & 7) of byte p >> 3.
    skip.forEach((s, p) => {
      if (s === 1) portSkip[p >> 3] |= 1 << (p & 7);
    });
  }

  const include = f.includeCidrs.map(parsePrefix);
  const exclude = f.excludeCidrs.map(parsePrefix);
  const same = (a: Prefix, b: Prefix) => a.len === b.len && covers(a, b);
  const prefixes: Prefix[] = [];
  for (const p of [...include, ...exclude]) if (!prefixes.some((q) => same(q, p))) prefixes.push(p);
  const entries = prefixes.map((p) => {
    const included = include.length === 0 || include.some((q) => covers(q, p));
    const excluded = exclude.some((q) => covers(q, p));
    return { prefix: p, verdict: included && !excluded ? L.VERDICT_REPORT : L.VERDICT_SKIP };
  });
  const table = (bytes: number) => {
    const chosen = entries.filter((e) => e.prefix.addr.length === bytes);
    const keySize = bytes === 4 ? L.CIDR4_KEY_SIZE : L.CIDR6_KEY_SIZE;
    const keys = Buffer.alloc(chosen.length * keySize);
    const values = Buffer.alloc(chosen.length * 4);
    chosen.forEach((e, i) => {
      keys.writeUInt32LE(e.prefix.len, i * keySize);
      keys.set(e.prefix.addr, i * keySize + L.CIDR_KEY_ADDR);
      values.writeUInt32LE(e.verdict, i * 4);
    });
    return { keys, values, on: chosen.length > 0 ? 1 : 0 };
  };
  const v4 = table(4);
  const v6 = table(16);
  const cidrUnmatched = include.length === 0 ? L.VERDICT_REPORT : L.VERDICT_SKIP;
  const filter = directions !== BOTH_DIRECTIONS || portFilter === 1 || v4.on === 1 || v6.on === 1 || cidrUnmatched !== L.VERDICT_REPORT ? 1 : 0;
  return {
    filter,
    directions,
    portFilter,
    portSkip,
    cidr4Filter: v4.on,
    cidr6Filter: v6.on,
    cidrUnmatched,
    cidr4Keys: v4.keys,
    cidr4Values: v4.values,
    cidr6Keys: v6.keys,
    cidr6Values: v6.values,
  };
}
