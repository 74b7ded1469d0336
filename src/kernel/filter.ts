/**
 * Flow filters: which flows are reported. Pure parsers for the filter options
 * (port lists, CIDR lists, direction) and the probe options they become. The
 * filters themselves run in the kernel, on each SYN-ACK (bpf/flowtap.bpf.c);
 * the semantics are in docs/configuration.md:
 *
 * - ports match the responder's port (the server side: the service, never
 *   the initiator's ephemeral port);
 * - CIDRs match the peer's address (the end that is not the watched socket:
 *   the responder of an outgoing flow, the initiator of an incoming one);
 * - an empty include list means everything; exclude always wins;
 * - DNS answers are never filtered.
 */
import { isIP } from 'node:net';
import { formatIPv4, formatIPv6, isIPv4Mapped } from './address';

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

function port(text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new FilterSyntaxError(`'${text}' is not a port from 1 to 65535`);
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
  return `${formatAddress(masked)}/${len}`;
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
