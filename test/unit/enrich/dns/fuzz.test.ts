/**
 * Fuzz: generated and mutated DNS payloads through the real parse-and-cache
 * path (DnsCache.observe → query matching → dns-packet → cache). Each
 * payload follows the real query of the message it was made from, so a
 * mutation that keeps the ID and question is matched and parsed. No throw may
 * escape and the cache and the held queries must stay within their bounds.
 */
import * as dnsPacket from 'dns-packet';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DnsCache } from '../../../../src/enrich/dns/cache';
import { dnsEvent, queryFor, response } from './dnsfix';
import { prng } from '../../../helpers/prng';

function seeds(r: () => number): Buffer[] {
  const ip = () => `198.${18 + Math.floor(r() * 2)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`;
  const name = () => `h${Math.floor(r() * 1e6)}.fuzz.test`;
  const n = name();
  return [
    response(n, [
      { type: 'CNAME', name: n, ttl: 60, data: 'c1.fuzz.test' },
      { type: 'CNAME', name: 'c1.fuzz.test', ttl: 60, data: 'c2.fuzz.test' },
      { type: 'A', name: 'c2.fuzz.test', ttl: 60, data: ip() },
      { type: 'AAAA', name: 'c2.fuzz.test', ttl: 60, data: 'fd00::' + Math.floor(r() * 65535).toString(16) },
    ]),
    response(n, [{ type: 'A', name: n, ttl: Math.floor(r() * 5), data: ip() }]),
    dnsPacket.encode({ type: 'query', id: 3, questions: [{ type: 'A', name: n }] }),
  ];
}

function mutate(buf: Buffer, r: () => number): Buffer {
  const b = Buffer.from(buf);
  switch (Math.floor(r() * 7)) {
    case 0: // flip random bytes
      for (let i = 0, k = 1 + Math.floor(r() * 8); i < k; i++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      return b;
    case 1: // truncate
      return b.subarray(0, Math.floor(r() * b.length));
    case 2: // counts larger than the message
      b.writeUInt16BE(0xffff, 4 + 2 * Math.floor(r() * 4));
      return b;
    case 3: {
      // compression pointer to itself / forward
      const at = 12 + Math.floor(r() * Math.max(1, b.length - 13));
      b[at] = 0xc0;
      b[at + 1] = r() < 0.5 ? at : Math.min(255, at + 2);
      return b;
    }
    case 4: {
      // a name over 255 bytes
      const long = Buffer.concat([
        b.subarray(0, 12),
        Buffer.from(
          Array(6)
            .fill([63, ...Buffer.alloc(63, 97)])
            .flat(),
        ),
        Buffer.from([0, 0, 1, 0, 1]),
      ]);
      long.writeUInt16BE(1, 4);
      long.writeUInt16BE(0, 6);
      long[2] |= 0x80;
      return long;
    }
    case 5: {
      // random bytes of random length
      const out = Buffer.alloc(Math.floor(r() * 600));
      for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
      return out;
    }
    default: // splice two messages
      return Buffer.concat([b.subarray(0, Math.floor(r() * b.length)), b.subarray(Math.floor(r() * b.length))]);
  }
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

it('100 000 generated and mutated DNS payloads: no throw escapes, the cache stays bounded', () => {
  const r = prng(0x5eed);
  const cache = new DnsCache({ maxNames: 1000, maxNamesPerIp: 8, match: { maxPending: 500 } });
  const N = 100_000;
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  let maxSize = 0;
  let maxPending = 0;
  let now = 1_000_000;
  let thrown = 0;
  let s = seeds(r);
  for (let i = 0; i < N; i++) {
    if (i % 50 === 0) s = seeds(r);
    const base = s[Math.floor(r() * s.length)];
    const payload = r() < 0.1 ? base : mutate(base, r);
    try {
      cache.observe(queryFor(base), now);
      cache.observe(dnsEvent(payload, r() < 0.05), now);
      cache.namesFor(`198.18.0.${i & 255}`, now);
    } catch {
      thrown++;
    }
    now += 1;
    if (cache.size > maxSize) maxSize = cache.size;
    if (cache.pendingQueries > maxPending) maxPending = cache.pendingQueries;
  }
  expect(thrown).toBe(0);
  const skipped = Object.values(cache.stats.skipped).reduce((a, b) => a + b, 0);
  const unmatched = Object.values(cache.stats.unmatched).reduce((a, b) => a + b, 0);
  // every message is counted once: a query held, skipped, refused, or taught
  expect(cache.stats.queries + skipped + unmatched + cache.stats.responses).toBe(2 * N);
  expect(skipped + unmatched).toBeGreaterThan(N / 2); // most mutations are rejected, and counted
  expect(maxPending).toBeLessThanOrEqual(500);
  expect(cache.stats.responses).toBeGreaterThan(1000); // and valid ones still teach
  expect(maxSize).toBeLessThanOrEqual(1000);
  gc();
  // the cache holds at most 1000 short names: far below 50 MB of heap growth
  expect(process.memoryUsage().heapUsed - heap0).toBeLessThan(50 * 1024 * 1024);
});
