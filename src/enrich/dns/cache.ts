/**
 * IP → names, learnt from the DNS responses the programs saw (never from
 * reverse lookups), and only from a response that answers a query they saw
 * (./match): a forged answer nobody asked for teaches nothing, it is counted
 * by why it was refused. For each address: the name that was asked first,
 * then the CNAME chain that led to it, and the resolver (the address that
 * answered). TTLs are honoured (an expired mapping is never returned), the
 * whole cache and each address are bounded, and the oldest addresses are
 * evicted first.
 *
 * An answer with TTL 0 (dnsmasq's and Consul's default for local names) may
 * not be cached by the asker, which connects right after it: it is held for a
 * short window (zeroTtlSeconds) so the flows that begin just after it are
 * named, then expires like any other answer; both holding and using one are
 * counted.
 */
import type { DnsEvent } from '../../kernel/decode';
import { NO_NAMES, type DomainLookup } from './lookup';
import { DnsQueryMatcher, DNS_UNMATCHED_REASONS, type DnsMatchOptions, type DnsUnmatchedReason } from './match';
import { DnsSkipReason, isResponse, parseDnsMessage } from './parse';

export interface DnsCacheOptions {
  /** Names held across all addresses before the least recently updated address is evicted. Default 10 000. */
  maxNames?: number;
  /** Names held for one address (newest answers kept). Default 16. */
  maxNamesPerIp?: number;
  /** How long, and how many, queries wait for their answer (DNS_MATCH_DEFAULTS). */
  match?: DnsMatchOptions;
  /** Seconds a TTL-0 answer names the flows that begin after it; 0: a TTL-0 answer is never used. Default 5. */
  zeroTtlSeconds?: number;
}

/**
 * zeroTtlSeconds: a resolver answering TTL 0 is local (dnsmasq, Consul), so
 * the asker connects within milliseconds; 5 s covers a slow asker between
 * the answer and its connect (a loaded host, a fallback to the other
 * address family) while a name held that briefly cannot follow an address
 * another service reuses much later.
 */
export const DNS_CACHE_DEFAULTS = { maxNames: 10_000, maxNamesPerIp: 16, zeroTtlSeconds: 5 } as const;

export interface DnsCacheStats {
  /** Responses that answered a query and taught at least nothing wrong (parsed, NOERROR). */
  responses: number;
  /** Queries seen (each waits for one answer). */
  queries: number;
  /** Queries dropped unanswered-or-not to keep the bound before they aged out. */
  queriesEvicted: number;
  /** Responses that were cut at the kernel's copy bound. */
  truncated: number;
  /** Messages skipped, by reason (an error answer only once it answered its query). */
  skipped: Record<DnsSkipReason, number>;
  /** Responses refused because they answer no query seen, by reason: a poisoning attempt shows here. */
  unmatched: Record<DnsUnmatchedReason, number>;
  /** namesFor calls that found a name / found none. */
  hits: number;
  misses: number;
  /** Names dropped to keep the bounds, and names dropped because their TTL ran out. */
  evictions: number;
  expired: number;
  /** Names from TTL-0 answers held for the zero-TTL window. */
  zeroTtlNames: number;
  /** namesFor calls (hits) that returned a name whose newest answer had TTL 0: flows named thanks to the window. */
  zeroTtlHits: number;
}

interface Chain {
  names: string[];
  /** The address of the resolver that answered (the response's source). */
  resolver: string;
  expiresAtMs: number;
  /** From a TTL-0 answer, held for the zero-TTL window. */
  zeroTtl: boolean;
}

export class DnsCache implements DomainLookup {
  private readonly maxNames: number;
  private readonly maxNamesPerIp: number;
  private readonly zeroTtlMs: number;
  /** Map order is update order: the first key is the least recently updated address. */
  private readonly byIp = new Map<string, Chain[]>();
  private names = 0;
  private readonly matcher: DnsQueryMatcher;
  readonly stats: DnsCacheStats = {
    responses: 0,
    queries: 0,
    queriesEvicted: 0,
    truncated: 0,
    skipped: { malformed: 0, no_question: 0, rcode: 0, bad_name: 0 },
    unmatched: Object.fromEntries(DNS_UNMATCHED_REASONS.map((r) => [r, 0])) as Record<DnsUnmatchedReason, number>,
    hits: 0,
    misses: 0,
    evictions: 0,
    expired: 0,
    zeroTtlNames: 0,
    zeroTtlHits: 0,
  };

  constructor(opts: DnsCacheOptions = {}) {
    this.maxNames = opts.maxNames ?? DNS_CACHE_DEFAULTS.maxNames;
    this.maxNamesPerIp = opts.maxNamesPerIp ?? DNS_CACHE_DEFAULTS.maxNamesPerIp;
    this.zeroTtlMs = (opts.zeroTtlSeconds ?? DNS_CACHE_DEFAULTS.zeroTtlSeconds) * 1000;
    if (!(this.maxNames >= 1) || !(this.maxNamesPerIp >= 1)) throw new RangeError('DnsCache bounds must be >= 1');
    if (!(this.zeroTtlMs >= 0)) throw new RangeError('DnsCache zeroTtlSeconds must be >= 0');
    this.matcher = new DnsQueryMatcher(opts.match);
  }

  /** Queries waiting for (or holding, until they age out) their answer. */
  get pendingQueries(): number {
    return this.matcher.pending;
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
    const response = isResponse(event.data);
    if (response) {
      if (event.truncated) this.stats.truncated++;
      // a response to a socket that asked nothing: refused before parsing (a flood costs little)
      if (!this.matcher.expects(event)) {
        this.stats.unmatched.no_query++;
        return;
      }
    }
    const r = parseDnsMessage(event.data);
    if (!r.ok) {
      this.stats.skipped[r.reason]++;
      return;
    }
    if (r.kind === 'query') {
      this.stats.queries++;
      this.matcher.query(event, r.question);
      this.stats.queriesEvicted = this.matcher.evicted;
      return;
    }
    const m = this.matcher.answer(event, r.question);
    if (!m.ok) {
      this.stats.unmatched[m.reason]++;
      return;
    }
    if (r.rcode !== 0) {
      this.stats.skipped.rcode++;
      return;
    }
    this.stats.responses++;
    for (const x of r.mappings) this.add(x.ip, x.names, event.srcAddr, nowMs + x.ttlSeconds * 1000, nowMs);
  }

  namesFor(ip: string, nowMs: number): readonly string[] {
    const chains = this.byIp.get(ip);
    if (chains === undefined) {
      this.stats.misses++;
      return NO_NAMES;
    }
    this.dropExpired(ip, chains, nowMs);
    const out: string[] = [];
    let zeroTtl = false;
    for (const c of chains) {
      for (const n of c.names) {
        if (out.includes(n)) continue;
        out.push(n);
        zeroTtl ||= c.zeroTtl;
      }
    }
    if (out.length === 0) this.stats.misses++;
    else this.stats.hits++;
    if (zeroTtl) this.stats.zeroTtlHits++;
    return out;
  }

  resolversFor(ip: string, nowMs: number): readonly string[] {
    const chains = this.byIp.get(ip);
    if (chains === undefined) return NO_NAMES;
    this.dropExpired(ip, chains, nowMs);
    const out: string[] = [];
    for (const c of chains) if (!out.includes(c.resolver)) out.push(c.resolver);
    return out.length === 0 ? NO_NAMES : out;
  }

  private add(ip: string, names: string[], resolver: string, ttlExpiresAtMs: number, nowMs: number): void {
    const zeroTtl = ttlExpiresAtMs <= nowMs;
    if (zeroTtl && this.zeroTtlMs === 0) return; // TTL 0 and no window: never usable
    const expiresAtMs = zeroTtl ? nowMs + this.zeroTtlMs : ttlExpiresAtMs;
    const chains = this.byIp.get(ip) ?? [];
    // the same chain again from the same resolver refreshes it
    const same = chains.findIndex((c) => c.resolver === resolver && c.names.length === names.length && c.names.every((n, i) => n === names[i]));
    if (same >= 0) {
      this.names -= chains[same].names.length;
      chains.splice(same, 1);
    }
    const kept = names.slice(0, this.maxNamesPerIp);
    this.stats.evictions += names.length - kept.length;
    chains.unshift({ names: kept, resolver, expiresAtMs, zeroTtl }); // newest answer first
    this.names += kept.length;
    if (zeroTtl) this.stats.zeroTtlNames += kept.length;
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
