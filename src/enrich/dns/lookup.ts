/**
 * Stage 2 of the data path: domain names for IP addresses, learnt from the
 * DNS responses the programs saw (./cache). This is the seam the pipeline uses.
 */
import type { DnsEvent } from '../../kernel/decode';

/** The answer for an address with no names: one shared, frozen array (no allocation per miss). */
export const NO_NAMES: readonly string[] = Object.freeze([]);

export interface DomainLookup {
  /**
   * Names the cache holds for `ip` (text form as decode writes it) at time
   * `nowMs`: the name that was asked first, then its CNAME chain. Empty if
   * none. The caller may keep the array; implementations must not change it
   * afterwards.
   */
  namesFor(ip: string, nowMs: number): readonly string[];
  /**
   * The addresses of the resolvers whose answers gave `ip` the names
   * namesFor returns at `nowMs`, newest answer first, each once. Empty if
   * none. Same ownership rules as namesFor.
   */
  resolversFor(ip: string, nowMs: number): readonly string[];
  /**
   * Learns from one DNS message: a query waits for its answer, a response
   * that answers one teaches names. Called in ring-buffer order, so an answer
   * is known before any later flow in the same or a later batch.
   * `event.data` is a view into the batch: copy what must outlive the call.
   */
  observe(event: DnsEvent, nowMs: number): void;
}

/** Knows no names. */
export class NoDomainLookup implements DomainLookup {
  namesFor(_ip: string, _nowMs: number): readonly string[] {
    return NO_NAMES;
  }

  resolversFor(_ip: string, _nowMs: number): readonly string[] {
    return NO_NAMES;
  }

  observe(_event: DnsEvent, _nowMs: number): void {}
}
