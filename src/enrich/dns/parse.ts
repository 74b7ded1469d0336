/**
 * DNS messages → their question (to match an answer to its query) and, for a
 * response, address/name facts, with the maintained dns-packet library (no
 * hand-written wire parser). Pure: bytes in, data out; never throws — every
 * rejection is returned with its reason so the caller can count it.
 */
import * as dnsPacket from 'dns-packet';
import { formatIPv4, formatIPv6, isIPv4Mapped } from '../../kernel/address';

/** Why a DNS message taught nothing. Used as a counter key. */
export type DnsSkipReason =
  | 'malformed' // dns-packet could not decode it (truncated, bad counts, pointer loops, ...)
  | 'no_question' // a message without a question to name or match it
  | 'rcode' // an error answer (NXDOMAIN, SERVFAIL, ...)
  | 'bad_name'; // a name that is not a valid host name (too long, empty label)

/** What an answer must repeat of its query (RFC 5452 §9.1): the ID and the question. */
export interface DnsQuestion {
  id: number;
  /** normalizeName of the question's name: the comparison ignores case. */
  name: string;
  /** dns-packet's text of the type and class ('A', 'IN', ...). */
  type: string;
  class: string;
}

/** An address and the names that lead to it, first the asked one. */
export interface DnsMapping {
  ip: string;
  /** The question's name, then each CNAME target in order, ending at the A/AAAA owner. */
  names: string[];
  /** Smallest TTL along the chain, in seconds. */
  ttlSeconds: number;
}

export type DnsParseResult =
  | { ok: true; kind: 'query'; question: DnsQuestion }
  /** rcode !== 0 (an error answer): mappings is empty. */
  | { ok: true; kind: 'response'; question: DnsQuestion; rcode: number; mappings: DnsMapping[] }
  | { ok: false; reason: DnsSkipReason };

/** The QR bit: set in a response (byte 2 of the header). */
export function isResponse(data: Uint8Array): boolean {
  return data.length > 2 && (data[2] & 0x80) !== 0;
}

/** The header's ID (the first two bytes), or undefined for a message shorter than that. */
export function messageId(data: Uint8Array): number | undefined {
  return data.length >= 2 ? (data[0] << 8) | data[1] : undefined;
}

/** Longest CNAME chain followed; longer (or looping) chains stop there. */
export const MAX_CNAME_HOPS = 16;

/** Lower-case, no trailing dot; undefined when it is not a usable host name. */
export function normalizeName(name: unknown): string | undefined {
  if (typeof name !== 'string') return undefined;
  let n = name.toLowerCase();
  if (n.endsWith('.')) n = n.slice(0, -1);
  if (n.length === 0 || n.length > 253) return undefined;
  for (const label of n.split('.')) if (label.length === 0 || label.length > 63) return undefined;
  return n;
}

/** RFC 5952 text of an IPv6 address given in any valid text form; undefined if invalid. */
export function canonicalIPv6(text: string): string | undefined {
  const bytes = new Uint8Array(16);
  let s = text;
  // an embedded dotted quad in the last 32 bits
  const lastColon = s.lastIndexOf(':');
  if (s.indexOf('.', lastColon) >= 0) {
    const q = s
      .slice(lastColon + 1)
      .split('.')
      .map(Number);
    if (q.length !== 4 || q.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return undefined;
    s = `${s.slice(0, lastColon + 1)}${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const groups = halves.length === 2 ? [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail] : head;
  if (groups.length !== 8 || (halves.length === 2 && head.length + tail.length > 7)) return undefined;
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return undefined;
    const v = parseInt(groups[i], 16);
    bytes[2 * i] = v >> 8;
    bytes[2 * i + 1] = v & 0xff;
  }
  return isIPv4Mapped(bytes) ? formatIPv4(bytes, 12) : formatIPv6(bytes);
}

/**
 * Guard before dns-packet: the header's record counts must fit in the message
 * (a question takes at least 5 bytes, a resource record at least 11). Without
 * it, a hostile message claiming 65 535 records costs dns-packet ~0.5 ms of
 * CPU, because reads past the end of a Buffer yield undefined instead of
 * throwing and the decoder keeps looping.
 */
function countsFit(d: Uint8Array): boolean {
  if (d.length < 12) return false;
  const qd = (d[4] << 8) | d[5];
  const rr = ((d[6] << 8) | d[7]) + ((d[8] << 8) | d[9]) + ((d[10] << 8) | d[11]);
  return 12 + qd * 5 + rr * 11 <= d.length;
}

function ttlOf(a: { ttl?: number }): number {
  const t = a.ttl;
  return typeof t === 'number' && Number.isFinite(t) && t >= 0 ? t : 0;
}

/**
 * Parses one DNS message. Of a query only the question is read (the kernel
 * copies just the start of a query: what follows the question may be cut).
 * Of a response with NOERROR, A, AAAA and CNAME answers of class IN are used,
 * everything else is ignored.
 */
export function parseDnsMessage(data: Uint8Array): DnsParseResult {
  const query = !isResponse(data);
  let bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (query && bytes.length >= 12) {
    // the question only: a copy whose answer/authority/additional counts are 0
    bytes = Buffer.from(bytes);
    bytes.fill(0, 6, 12);
  }
  if (!countsFit(bytes)) return { ok: false, reason: 'malformed' };
  let pkt: dnsPacket.Packet;
  try {
    pkt = dnsPacket.decode(bytes);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const q = pkt.questions?.[0];
  if (!q) return { ok: false, reason: 'no_question' };
  const asked = normalizeName(q.name);
  if (!asked) return { ok: false, reason: 'bad_name' };
  const question: DnsQuestion = { id: pkt.id ?? 0, name: asked, type: String(q.type), class: String(q.class ?? 'IN') };
  if (query) return { ok: true, kind: 'query', question };
  const rcode = (pkt.flags ?? 0) & 0xf;
  if (rcode !== 0) return { ok: true, kind: 'response', question, rcode, mappings: [] };

  // CNAME owner → {target, ttl}; address owner → [{ip, ttl}]
  const cnames = new Map<string, { target: string; ttl: number }>();
  const addrs = new Map<string, { ip: string; ttl: number }[]>();
  for (const a of pkt.answers ?? []) {
    if ((a as { class?: string }).class !== undefined && (a as { class?: string }).class !== 'IN') continue;
    const owner = normalizeName(a.name);
    if (!owner) continue;
    if (a.type === 'CNAME') {
      const target = normalizeName(a.data);
      if (target && !cnames.has(owner)) cnames.set(owner, { target, ttl: ttlOf(a) });
    } else if (a.type === 'A' || a.type === 'AAAA') {
      const raw = typeof a.data === 'string' ? a.data : '';
      const ip = a.type === 'A' ? (/^\d{1,3}(\.\d{1,3}){3}$/.test(raw) ? raw : undefined) : canonicalIPv6(raw);
      if (!ip) continue;
      const list = addrs.get(owner) ?? [];
      list.push({ ip, ttl: ttlOf(a) });
      addrs.set(owner, list);
    }
  }

  // Follow the chain from the asked name; every hop's addresses get the chain so far.
  const mappings: DnsMapping[] = [];
  const chain = [asked];
  let ttl = Number.MAX_SAFE_INTEGER;
  let name = asked;
  for (let hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
    for (const { ip, ttl: t } of addrs.get(name) ?? []) {
      mappings.push({ ip, names: [...chain], ttlSeconds: Math.min(ttl, t) });
    }
    const next = cnames.get(name);
    if (!next || chain.includes(next.target)) break;
    ttl = Math.min(ttl, next.ttl);
    chain.push(next.target);
    name = next.target;
  }
  return { ok: true, kind: 'response', question, rcode, mappings };
}
