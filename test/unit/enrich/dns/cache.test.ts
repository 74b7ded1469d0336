import { DNS_CACHE_DEFAULTS, DnsCache } from '../../../../src/enrich/dns/cache';
import { ENDS, dnsEvent, observeAnswered, query, queryEvent, response } from './dnsfix';

const T0 = 1_000_000;

describe('DnsCache', () => {
  it('names an address with the asked name then the CNAME chain, and counts hits and misses', () => {
    const c = new DnsCache();
    observeAnswered(
      c,
      response('www.flowtap.test', [
        { type: 'CNAME', name: 'www.flowtap.test', ttl: 60, data: 'edge.flowtap.test' },
        { type: 'CNAME', name: 'edge.flowtap.test', ttl: 60, data: 'svc.flowtap.test' },
        { type: 'A', name: 'svc.flowtap.test', ttl: 60, data: '198.18.0.2' },
      ]),
      T0,
    );
    expect(c.namesFor('198.18.0.2', T0 + 1)).toEqual(['www.flowtap.test', 'edge.flowtap.test', 'svc.flowtap.test']);
    expect(c.namesFor('198.18.0.3', T0 + 1)).toEqual([]);
    expect(c.stats.hits).toBe(1);
    expect(c.stats.misses).toBe(1);
    expect(c.size).toBe(3);
  });

  it('keeps several names per address (newest answer first) and several addresses per name', () => {
    const c = new DnsCache();
    observeAnswered(c, response('one.test', [{ type: 'A', name: 'one.test', ttl: 60, data: '198.18.0.2' }]), T0);
    observeAnswered(c, response('two.test', [{ type: 'A', name: 'two.test', ttl: 60, data: '198.18.0.2' }]), T0 + 1);
    observeAnswered(
      c,
      response('multi.test', [
        { type: 'A', name: 'multi.test', ttl: 60, data: '198.18.0.7' },
        { type: 'A', name: 'multi.test', ttl: 60, data: '198.18.0.8' },
      ]),
      T0 + 2,
    );
    expect(c.namesFor('198.18.0.2', T0 + 3)).toEqual(['two.test', 'one.test']);
    expect(c.namesFor('198.18.0.7', T0 + 3)).toEqual(['multi.test']);
    expect(c.namesFor('198.18.0.8', T0 + 3)).toEqual(['multi.test']);
  });

  it('never returns an expired mapping', () => {
    const c = new DnsCache();
    observeAnswered(c, response('short.test', [{ type: 'A', name: 'short.test', ttl: 2, data: '198.18.0.4' }]), T0);
    expect(c.namesFor('198.18.0.4', T0 + 1999)).toEqual(['short.test']);
    expect(c.namesFor('198.18.0.4', T0 + 2000)).toEqual([]);
    expect(c.stats.expired).toBe(1);
    expect(c.size).toBe(0);
  });

  it('a TTL-0 answer names the flows that begin within the zero-TTL window, not after, and is counted', () => {
    const c = new DnsCache({ zeroTtlSeconds: 3 });
    observeAnswered(c, response('zero.test', [{ type: 'A', name: 'zero.test', ttl: 0, data: '198.18.0.5' }]), T0);
    observeAnswered(c, response('long.test', [{ type: 'A', name: 'long.test', ttl: 60, data: '198.18.0.6' }]), T0);
    expect(c.stats.zeroTtlNames).toBe(1);
    expect(c.namesFor('198.18.0.5', T0)).toEqual(['zero.test']);
    expect(c.namesFor('198.18.0.5', T0 + 2999)).toEqual(['zero.test']);
    expect(c.namesFor('198.18.0.6', T0 + 2999)).toEqual(['long.test']); // a hit, not by a TTL-0 answer
    expect([c.stats.hits, c.stats.zeroTtlHits]).toEqual([3, 2]);
    expect(c.namesFor('198.18.0.5', T0 + 3000)).toEqual([]);
    expect([c.stats.hits, c.stats.zeroTtlHits, c.stats.misses, c.stats.expired]).toEqual([3, 2, 1, 1]);
    expect(c.size).toBe(1);
  });

  it('the default zero-TTL window is DNS_CACHE_DEFAULTS.zeroTtlSeconds; 0 turns it off', () => {
    const d = new DnsCache();
    observeAnswered(d, response('zero.test', [{ type: 'A', name: 'zero.test', ttl: 0, data: '198.18.0.5' }]), T0);
    expect(d.namesFor('198.18.0.5', T0 + DNS_CACHE_DEFAULTS.zeroTtlSeconds * 1000 - 1)).toEqual(['zero.test']);
    expect(d.namesFor('198.18.0.5', T0 + DNS_CACHE_DEFAULTS.zeroTtlSeconds * 1000)).toEqual([]);
    const off = new DnsCache({ zeroTtlSeconds: 0 });
    observeAnswered(off, response('zero.test', [{ type: 'A', name: 'zero.test', ttl: 0, data: '198.18.0.5' }]), T0);
    expect(off.namesFor('198.18.0.5', T0)).toEqual([]);
    expect([off.size, off.stats.zeroTtlNames, off.stats.zeroTtlHits]).toEqual([0, 0, 0]);
    expect(() => new DnsCache({ zeroTtlSeconds: -1 })).toThrow(RangeError);
  });

  it('a TTL-0 answer counts only when it answers a query seen', () => {
    const c = new DnsCache({ zeroTtlSeconds: 3 });
    c.observe(dnsEvent(response('forged.test', [{ type: 'A', name: 'forged.test', ttl: 0, data: '198.18.0.9' }])), T0);
    expect(c.namesFor('198.18.0.9', T0)).toEqual([]);
    expect([c.stats.unmatched.no_query, c.stats.zeroTtlNames, c.stats.zeroTtlHits]).toEqual([1, 0, 0]);
  });

  it('a TTL-0 answer after a cached one for the same address comes first, and its hit is counted', () => {
    const c = new DnsCache({ zeroTtlSeconds: 3 });
    observeAnswered(c, response('old.test', [{ type: 'A', name: 'old.test', ttl: 60, data: '198.18.0.5' }]), T0);
    observeAnswered(c, response('zero.test', [{ type: 'A', name: 'zero.test', ttl: 0, data: '198.18.0.5' }], 'NOERROR', 'A', 2), T0 + 1);
    expect(c.namesFor('198.18.0.5', T0 + 2)).toEqual(['zero.test', 'old.test']);
    expect(c.namesFor('198.18.0.5', T0 + 3001)).toEqual(['old.test']);
    expect([c.stats.hits, c.stats.zeroTtlHits]).toEqual([2, 1]);
  });

  it('sweep() drops the expired names of addresses nobody looks up, and counts them', () => {
    const c = new DnsCache();
    observeAnswered(c, response('a.test', [{ type: 'A', name: 'a.test', ttl: 2, data: '198.18.0.4' }]), T0);
    observeAnswered(c, response('b.test', [{ type: 'A', name: 'b.test', ttl: 60, data: '198.18.0.5' }]), T0);
    c.sweep(T0 + 1999);
    expect([c.size, c.addresses, c.stats.expired]).toEqual([2, 2, 0]);
    c.sweep(T0 + 2000);
    expect([c.size, c.addresses, c.stats.expired]).toEqual([1, 1, 1]);
    expect(c.namesFor('198.18.0.5', T0 + 2000)).toEqual(['b.test']);
  });

  it('a repeated answer refreshes its TTL instead of adding a duplicate', () => {
    const c = new DnsCache();
    const msg = response('r.test', [{ type: 'A', name: 'r.test', ttl: 2, data: '198.18.0.4' }]);
    observeAnswered(c, msg, T0);
    observeAnswered(c, msg, T0 + 1500);
    expect(c.namesFor('198.18.0.4', T0 + 3000)).toEqual(['r.test']);
    expect(c.size).toBe(1);
  });

  it('bounds names per address and the whole cache, evicting the least recently updated address', () => {
    const c = new DnsCache({ maxNames: 5, maxNamesPerIp: 2 });
    for (const n of ['a', 'b', 'c']) observeAnswered(c, response(`${n}.test`, [{ type: 'A', name: `${n}.test`, ttl: 60, data: '198.18.1.1' }]), T0);
    expect(c.namesFor('198.18.1.1', T0)).toEqual(['c.test', 'b.test']);
    for (let i = 2; i <= 6; i++) observeAnswered(c, response(`h${i}.test`, [{ type: 'A', name: `h${i}.test`, ttl: 60, data: `198.18.1.${i}` }]), T0);
    expect(c.size).toBeLessThanOrEqual(5);
    expect(c.namesFor('198.18.1.1', T0)).toEqual([]); // oldest address went first
    expect(c.namesFor('198.18.1.6', T0)).toEqual(['h6.test']);
    expect(c.stats.evictions).toBe(3);
  });

  it('counts skipped messages by reason and truncated responses', () => {
    const c = new DnsCache();
    c.observe(dnsEvent(Buffer.from('garbage')), T0);
    observeAnswered(c, response('nx.test', [], 'NXDOMAIN'), T0);
    observeAnswered(c, response('cut.test', [{ type: 'A', name: 'cut.test', ttl: 60, data: '198.18.0.9' }]), T0, undefined, true);
    expect(c.stats.skipped.malformed).toBe(1);
    expect(c.stats.skipped.rcode).toBe(1);
    expect(c.stats.truncated).toBe(1);
    expect(c.stats.queries).toBe(2);
    expect(c.stats.responses).toBe(1);
  });

  it('keeps the resolver that answered with each name and exposes it per address, newest first', () => {
    const c = new DnsCache();
    const a = { ...ENDS, server: '198.18.0.53' };
    const b = { ...ENDS, server: 'fd00::53', client: 'fd00::1' };
    observeAnswered(c, response('one.test', [{ type: 'A', name: 'one.test', ttl: 60, data: '198.18.0.2' }]), T0, a);
    observeAnswered(c, response('two.test', [{ type: 'A', name: 'two.test', ttl: 60, data: '198.18.0.2' }], 'NOERROR', 'A', 2), T0 + 1, b);
    observeAnswered(c, response('three.test', [{ type: 'A', name: 'three.test', ttl: 60, data: '198.18.0.2' }], 'NOERROR', 'A', 3), T0 + 2, a);
    observeAnswered(c, response('short.test', [{ type: 'A', name: 'short.test', ttl: 1, data: '198.18.0.3' }]), T0, b);
    expect(c.namesFor('198.18.0.2', T0 + 3)).toEqual(['three.test', 'two.test', 'one.test']);
    expect(c.resolversFor('198.18.0.2', T0 + 3)).toEqual(['198.18.0.53', 'fd00::53']);
    expect(c.resolversFor('198.18.0.3', T0 + 999)).toEqual(['fd00::53']);
    // an expired name takes its resolver with it
    expect(c.resolversFor('198.18.0.3', T0 + 1000)).toEqual([]);
    expect(c.resolversFor('198.18.0.99', T0)).toEqual([]);
  });

  it('the same chain from two resolvers keeps both; from one resolver again it refreshes', () => {
    const c = new DnsCache();
    const msg = response('r.test', [{ type: 'A', name: 'r.test', ttl: 60, data: '198.18.0.4' }]);
    observeAnswered(c, msg, T0, { ...ENDS, server: '198.18.0.53' });
    observeAnswered(c, msg, T0, { ...ENDS, server: '198.18.0.54' });
    observeAnswered(c, msg, T0, { ...ENDS, server: '198.18.0.53' });
    expect(c.namesFor('198.18.0.4', T0)).toEqual(['r.test']);
    expect(c.resolversFor('198.18.0.4', T0)).toEqual(['198.18.0.53', '198.18.0.54']);
    expect(c.size).toBe(2);
  });
});

describe('DnsCache takes only answers to queries it saw', () => {
  const A = (name: string, ip: string, id = 1) => response(name, [{ type: 'A', name, ttl: 60, data: ip }], 'NOERROR', 'A', id);
  const MS = 1_000_000n;

  it('a forged answer to a socket that asked nothing teaches nothing, and is counted as no_query', () => {
    const c = new DnsCache();
    c.observe(dnsEvent(A('bank.example', '127.0.0.77')), T0);
    expect(c.namesFor('127.0.0.77', T0)).toEqual([]);
    expect(c.stats.unmatched.no_query).toBe(1);
    expect(c.stats.responses).toBe(0);
  });

  it('refuses a wrong ID, a wrong server, a wrong question; then takes the real answer once', () => {
    const c = new DnsCache();
    c.observe(queryEvent(query('bank.example', 'A', 7)), T0);
    c.observe(dnsEvent(A('bank.example', '198.18.0.66', 8)), T0); // wrong ID
    c.observe(dnsEvent(A('bank.example', '198.18.0.66', 7), false, 0n, { ...ENDS, server: '198.18.0.99' }), T0); // wrong server address
    c.observe(dnsEvent(A('bank.example', '198.18.0.66', 7), false, 0n, { ...ENDS, serverPort: 5353 }), T0); // wrong server port
    c.observe(dnsEvent(A('other.example', '198.18.0.66', 7)), T0); // wrong question name
    c.observe(dnsEvent(response('bank.example', [{ type: 'AAAA', name: 'bank.example', ttl: 60, data: 'fd00::66' }], 'NOERROR', 'AAAA', 7)), T0); // wrong type
    c.observe(dnsEvent(A('bank.example', '198.18.0.66', 7), false, 0n, { ...ENDS, tcp: true }), T0); // other transport: another socket
    expect(c.namesFor('198.18.0.66', T0)).toEqual([]);
    expect(c.namesFor('fd00::66', T0)).toEqual([]);
    c.observe(dnsEvent(A('BANK.example', '198.18.0.5', 7)), T0); // the real answer (0x20 case)
    c.observe(dnsEvent(A('bank.example', '198.18.0.66', 7)), T0); // right ID after the real answer
    expect(c.namesFor('198.18.0.5', T0)).toEqual(['bank.example']);
    expect(c.namesFor('198.18.0.66', T0)).toEqual([]);
    expect(c.stats.unmatched).toEqual({ no_query: 1, wrong_server: 2, wrong_id: 1, wrong_question: 2, late: 0, duplicate: 1 });
    expect(c.stats.responses).toBe(1);
  });

  it('an answer after the window is late; after two windows the query is gone (no_query)', () => {
    const c = new DnsCache({ match: { windowMs: 100 } });
    c.observe(queryEvent(query('slow.test', 'A', 3), 1000n * MS), T0);
    c.observe(dnsEvent(A('slow.test', '198.18.0.8', 3), false, 1101n * MS), T0);
    c.observe(queryEvent(query('slower.test', 'A', 4), 2000n * MS), T0);
    c.observe(dnsEvent(A('slower.test', '198.18.0.9', 4), false, 2201n * MS), T0);
    expect(c.stats.unmatched).toMatchObject({ late: 1, no_query: 1 });
    expect(c.namesFor('198.18.0.8', T0)).toEqual([]);
    // in time: taken
    c.observe(queryEvent(query('quick.test', 'A', 5), 3000n * MS), T0);
    c.observe(dnsEvent(A('quick.test', '198.18.0.10', 5), false, 3100n * MS), T0);
    expect(c.namesFor('198.18.0.10', T0)).toEqual(['quick.test']);
    expect(c.pendingQueries).toBe(1);
  });

  it('a local server: the query arrives (ingress) and its answer leaves (egress)', () => {
    const c = new DnsCache();
    const q = queryEvent(query('in.test', 'A', 9));
    // seen arriving at the server inside: from the remote client to the local server
    c.observe({ ...q, egress: false }, T0);
    const r = dnsEvent(A('in.test', '198.18.0.12', 9));
    c.observe({ ...r, egress: false }, T0); // not an answer to that query: it passed the same hook
    c.observe({ ...r, egress: true }, T0);
    expect(c.namesFor('198.18.0.12', T0)).toEqual(['in.test']);
    expect(c.stats.unmatched.no_query).toBe(1);
  });

  it('two queries on one socket (A and AAAA) are answered each once, in any order', () => {
    const c = new DnsCache();
    c.observe(queryEvent(query('both.test', 'A', 20)), T0);
    c.observe(queryEvent(query('both.test', 'AAAA', 21)), T0);
    c.observe(dnsEvent(response('both.test', [{ type: 'AAAA', name: 'both.test', ttl: 60, data: 'fd00::20' }], 'NOERROR', 'AAAA', 21)), T0);
    c.observe(dnsEvent(A('both.test', '198.18.0.20', 20)), T0);
    expect(c.namesFor('198.18.0.20', T0)).toEqual(['both.test']);
    expect(c.namesFor('fd00::20', T0)).toEqual(['both.test']);
    expect(c.stats.unmatched).toEqual({ no_query: 0, wrong_server: 0, wrong_id: 0, wrong_question: 0, late: 0, duplicate: 0 });
  });

  it('an error answer uses its query up: a forged NOERROR after it is a duplicate', () => {
    const c = new DnsCache();
    c.observe(queryEvent(query('nx.test', 'A', 30)), T0);
    c.observe(dnsEvent(response('nx.test', [], 'NXDOMAIN', 'A', 30)), T0);
    c.observe(dnsEvent(A('nx.test', '198.18.0.30', 30)), T0);
    expect(c.namesFor('198.18.0.30', T0)).toEqual([]);
    expect(c.stats.skipped.rcode).toBe(1);
    expect(c.stats.unmatched.duplicate).toBe(1);
  });

  it('a flood of forged answers and of queries: nothing named, held queries bounded, everything counted', () => {
    const c = new DnsCache({ match: { maxPending: 100 } });
    for (let i = 0; i < 1000; i++) c.observe(queryEvent(query(`q${i}.test`, 'A', i & 0xffff), BigInt(i) * 1000n), T0);
    expect(c.pendingQueries).toBe(100);
    expect(c.stats.queriesEvicted).toBe(900);
    // guessing IDs against the 100 held: from the right server, but every question is wrong
    for (let id = 0; id < 65536; id++) c.observe(dnsEvent(A('bank.example', '127.0.0.77', id)), T0);
    expect(c.namesFor('127.0.0.77', T0)).toEqual([]);
    expect(c.stats.unmatched.wrong_question).toBe(100);
    expect(c.stats.unmatched.wrong_id).toBe(65536 - 100);
    expect(c.pendingQueries).toBe(100);
    // and the real answer to a held query is still taken
    c.observe(dnsEvent(A('q999.test', '198.18.0.99', 999)), T0);
    expect(c.namesFor('198.18.0.99', T0)).toEqual(['q999.test']);
  });
});
