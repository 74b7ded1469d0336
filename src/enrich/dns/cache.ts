/**
 * IP → names, learnt from the DNS responses the programs saw (never from
 * reverse lookups). For each address: the name that was asked first, then the
 * CNAME chain that led to it. TTLs are honoured (an expired mapping is never
 * returned), the whole cache and each address are bounded, and the oldest
 * addresses are evicted first.
 */
import type { DnsEvent } from '../../kernel/decode';
import { NO_NAMES, type DomainLookup } from './lookup';
import { DnsSkipReason, parseDnsResponse } from './parse';

export interface DnsCacheOptions {
  /** Names held across all addresses before the least recently updated address is evicted. Default 10 000. */
  maxNames?: number;
  /** Names held for one address (newest answers kept). Default 16. */
  maxNamesPerIp?: number;
}

export const DNS_CACHE_DEFAULTS = { maxNames: 10_000, maxNamesPerIp: 16 } as const;

export interface DnsCacheStats {
  /** Responses that taught at least nothing wrong (parsed, NOERROR). */
  responses: number;
  /** Responses that were cut at the kernel's copy bound. */
  truncated: number;
  /** Messages skipped, by reason. */
  skipped: Record<DnsSkipReason, number>;
  /** namesFor calls that found a name / found none. */
  hits: number;
  misses: number;
  /** Names dropped to keep the bounds, and names dropped because their TTL ran out. */
  evictions: number;
  expired: number;
}

interface Chain {
  names: string[];
  expiresAtMs: number;
}

export class DnsCache implements DomainLookup {
  private readonly maxNames: number;
  private readonly maxNamesPerIp: number;
  /** Map order is update order: the first key is the least recently updated address. */
  private readonly byIp = new Map<string, Chain[]>();
  private names = 0;
  readonly stats: DnsCacheStats = {
    responses: 0,
    truncated: 0,
    skipped: { malformed: 0, not_response: 0, no_question: 0, rcode: 0, bad_name: 0 },
    hits: 0,
    misses: 0,
    evictions: 0,
    expired: 0,
  };

  constructor(opts: DnsCacheOptions = {}) {
    this.maxNames = opts.maxNames ?? DNS_CACHE_DEFAULTS.maxNames;
    this.maxNamesPerIp = opts.maxNamesPerIp ?? DNS_CACHE_DEFAULTS.maxNamesPerIp;
    if (!(this.maxNames >= 1) || !(this.maxNamesPerIp >= 1)) throw new RangeError('DnsCache bounds must be >= 1');
  }

  /** Names currently held (all addresses). */
  get size(): number {
    return this.names;
  }

  /** Addresses currently held. */
  get addresses(): number {
    return this.byIp.size;
  }

  observe(event: DnsEvent, nowMs: number): void {
    if (event.truncated) this.stats.truncated++;
    const r = parseDnsResponse(event.data);
    if (!r.ok) {
      this.stats.skipped[r.reason]++;
      return;
    }
    this.stats.responses++;
    for (const m of r.mappings) this.add(m.ip, m.names, nowMs + m.ttlSeconds * 1000, nowMs);
  }

  namesFor(ip: string, nowMs: number): readonly string[] {
    const chains = this.byIp.get(ip);
    if (chains === undefined) {
      this.stats.misses++;
      return NO_NAMES;
    }
    this.dropExpired(ip, chains, nowMs);
    const out: string[] = [];
    for (const c of chains) for (const n of c.names) if (!out.includes(n)) out.push(n);
    if (out.length === 0) this.stats.misses++;
    else this.stats.hits++;
    return out;
  }

  private add(ip: string, names: string[], expiresAtMs: number, nowMs: number): void {
    if (expiresAtMs <= nowMs) return; // TTL 0: never usable
    const chains = this.byIp.get(ip) ?? [];
    // the same chain again refreshes it
    const same = chains.findIndex((c) => c.names.length === names.length && c.names.every((n, i) => n === names[i]));
    if (same >= 0) {
      this.names -= chains[same].names.length;
      chains.splice(same, 1);
    }
    const kept = names.slice(0, this.maxNamesPerIp);
    this.stats.evictions += names.length - kept.length;
    chains.unshift({ names: kept, expiresAtMs }); // newest answer first
    this.names += kept.length;
    // per-address bound: drop the oldest chains
    let perIp = 0;
    for (let i = 0; i < chains.length; i++) {
      perIp += chains[i].names.length;
      if (perIp > this.maxNamesPerIp) {
        for (const c of chains.splice(i)) {
          this.names -= c.names.length;
          this.stats.evictions += c.names.length;
        }
        break;
      }
    }
    this.byIp.delete(ip);
    this.byIp.set(ip, chains);
    this.dropExpired(ip, chains, nowMs);
    // whole-cache bound: evict the least recently updated addresses
    for (const [oldIp, oldChains] of this.byIp) {
      if (this.names <= this.maxNames) break;
      if (oldIp === ip && this.byIp.size === 1) break;
      for (const c of oldChains) {
        this.names -= c.names.length;
        this.stats.evictions += c.names.length;
      }
      this.byIp.delete(oldIp);
    }
  }

  private dropExpired(ip: string, chains: Chain[], nowMs: number): void {
    for (let i = chains.length - 1; i >= 0; i--) {
      if (chains[i].expiresAtMs <= nowMs) {
        this.names -= chains[i].names.length;
        this.stats.expired += chains[i].names.length;
        chains.splice(i, 1);
      }
    }
    if (chains.length === 0) this.byIp.delete(ip);
  }

  /** Removes every expired mapping (call now and then to bound memory of idle entries). */
  sweep(nowMs: number): void {
    for (const [ip, chains] of this.byIp) this.dropExpired(ip, chains, nowMs);
  }
}
