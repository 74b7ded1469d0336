import { DnsCache } from '../../../../src/enrich/dns/cache';
import { dnsEvent, response } from './dnsfix';

const T0 = 1_000_000;

describe('DnsCache', () => {
  it('names an address with the asked name then the CNAME chain, and counts hits and misses', () => {
    const c = new DnsCache();
    c.observe(
      dnsEvent(
        response('www.flowtap.test', [
          { type: 'CNAME', name: 'www.flowtap.test', ttl: 60, data: 'edge.flowtap.test' },
          { type: 'CNAME', name: 'edge.flowtap.test', ttl: 60, data: 'svc.flowtap.test' },
          { type: 'A', name: 'svc.flowtap.test', ttl: 60, data: '198.18.0.2' },
        ]),
      ),
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
    c.observe(dnsEvent(response('one.test', [{ type: 'A', name: 'one.test', ttl: 60, data: '198.18.0.2' }])), T0);
    c.observe(dnsEvent(response('two.test', [{ type: 'A', name: 'two.test', ttl: 60, data: '198.18.0.2' }])), T0 + 1);
    c.observe(
      dnsEvent(
        response('multi.test', [
          { type: 'A', name: 'multi.test', ttl: 60, data: '198.18.0.7' },
          { type: 'A', name: 'multi.test', ttl: 60, data: '198.18.0.8' },
        ]),
      ),
      T0 + 2,
    );
    expect(c.namesFor('198.18.0.2', T0 + 3)).toEqual(['two.test', 'one.test']);
    expect(c.namesFor('198.18.0.7', T0 + 3)).toEqual(['multi.test']);
    expect(c.namesFor('198.18.0.8', T0 + 3)).toEqual(['multi.test']);
  });

  it('never returns an expired mapping; TTL 0 is never stored', () => {
    const c = new DnsCache();
    c.observe(dnsEvent(response('short.test', [{ type: 'A', name: 'short.test', ttl: 2, data: '198.18.0.4' }])), T0);
    c.observe(dnsEvent(response('zero.test', [{ type: 'A', name: 'zero.test', ttl: 0, data: '198.18.0.5' }])), T0);
    expect(c.namesFor('198.18.0.4', T0 + 1999)).toEqual(['short.test']);
    expect(c.namesFor('198.18.0.4', T0 + 2000)).toEqual([]);
    expect(c.namesFor('198.18.0.5', T0)).toEqual([]);
    expect(c.stats.expired).toBe(1);
    expect(c.size).toBe(0);
  });

  it('sweep() drops the expired names of addresses nobody looks up, and counts them', () => {
    const c = new DnsCache();
    c.observe(dnsEvent(response('a.test', [{ type: 'A', name: 'a.test', ttl: 2, data: '198.18.0.4' }])), T0);
    c.observe(dnsEvent(response('b.test', [{ type: 'A', name: 'b.test', ttl: 60, data: '198.18.0.5' }])), T0);
    c.sweep(T0 + 1999);
    expect([c.size, c.addresses, c.stats.expired]).toEqual([2, 2, 0]);
    c.sweep(T0 + 2000);
    expect([c.size, c.addresses, c.stats.expired]).toEqual([1, 1, 1]);
    expect(c.namesFor('198.18.0.5', T0 + 2000)).toEqual(['b.test']);
  });

  it('a repeated answer refreshes its TTL instead of adding a duplicate', () => {
    const c = new DnsCache();
    const msg = response('r.test', [{ type: 'A', name: 'r.test', ttl: 2, data: '198.18.0.4' }]);
    c.observe(dnsEvent(msg), T0);
    c.observe(dnsEvent(msg), T0 + 1500);
    expect(c.namesFor('198.18.0.4', T0 + 3000)).toEqual(['r.test']);
    expect(c.size).toBe(1);
  });

  it('bounds names per address and the whole cache, evicting the least recently updated address', () => {
    const c = new DnsCache({ maxNames: 5, maxNamesPerIp: 2 });
    for (const n of ['a', 'b', 'c']) c.observe(dnsEvent(response(`${n}.test`, [{ type: 'A', name: `${n}.test`, ttl: 60, data: '198.18.1.1' }])), T0);
    expect(c.namesFor('198.18.1.1', T0)).toEqual(['c.test', 'b.test']);
    for (let i = 2; i <= 6; i++) c.observe(dnsEvent(response(`h${i}.test`, [{ type: 'A', name: `h${i}.test`, ttl: 60, data: `198.18.1.${i}` }])), T0);
    expect(c.size).toBeLessThanOrEqual(5);
    expect(c.namesFor('198.18.1.1', T0)).toEqual([]); // oldest address went first
    expect(c.namesFor('198.18.1.6', T0)).toEqual(['h6.test']);
    expect(c.stats.evictions).toBe(3);
  });

  it('counts skipped messages by reason and truncated ones', () => {
    const c = new DnsCache();
    c.observe(dnsEvent(Buffer.from('garbage'), true), T0);
    c.observe(dnsEvent(response('nx.test', [], 'NXDOMAIN')), T0);
    expect(c.stats.skipped.malformed).toBe(1);
    expect(c.stats.skipped.rcode).toBe(1);
    expect(c.stats.truncated).toBe(1);
  });
});
