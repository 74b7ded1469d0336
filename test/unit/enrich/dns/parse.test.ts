import * as dnsPacket from 'dns-packet';
import { parseDnsMessage, canonicalIPv6, normalizeName } from '../../../../src/enrich/dns/parse';
import { query, response } from './dnsfix';

/** The mappings of a response, or the rejection. */
function parseDnsResponse(msg: Buffer): unknown {
  const r = parseDnsMessage(msg);
  if (!r.ok) return r;
  if (r.kind !== 'response') throw new Error(`not a response: ${JSON.stringify(r)}`);
  return { ok: true, mappings: r.mappings };
}

describe('parseDnsMessage (dns-packet)', () => {
  it('maps each address to the asked name, then its CNAME chain in order, with the smallest TTL', () => {
    const msg = response('WWW.Example.COM.', [
      { type: 'CNAME', name: 'www.example.com', ttl: 300, data: 'edge.example.net' },
      { type: 'CNAME', name: 'edge.example.net', ttl: 60, data: 'origin.example.org.' },
      { type: 'A', name: 'origin.example.org', ttl: 120, data: '198.18.0.5' },
      { type: 'A', name: 'origin.example.org', ttl: 30, data: '198.18.0.6' },
    ]);
    expect(parseDnsResponse(msg)).toEqual({
      ok: true,
      mappings: [
        { ip: '198.18.0.5', names: ['www.example.com', 'edge.example.net', 'origin.example.org'], ttlSeconds: 60 },
        { ip: '198.18.0.6', names: ['www.example.com', 'edge.example.net', 'origin.example.org'], ttlSeconds: 30 },
      ],
    });
  });

  it('writes AAAA answers in RFC 5952 form (not the library text form)', () => {
    const msg = response('v6.test', [{ type: 'AAAA', name: 'v6.test', ttl: 10, data: 'fd00:0:0:1::2' }], 'NOERROR', 'AAAA');
    expect(parseDnsResponse(msg)).toEqual({ ok: true, mappings: [{ ip: 'fd00:0:0:1::2', names: ['v6.test'], ttlSeconds: 10 }] });
  });

  it('an IPv4-mapped AAAA answer is written as IPv4', () => {
    const msg = response('m.test', [{ type: 'AAAA', name: 'm.test', ttl: 10, data: '::ffff:198.18.0.9' }], 'NOERROR', 'AAAA');
    expect(parseDnsResponse(msg)).toEqual({ ok: true, mappings: [{ ip: '198.18.0.9', names: ['m.test'], ttlSeconds: 10 }] });
  });

  it('ignores answers that are not on the chain of the asked name, and other record types', () => {
    const msg = response('a.test', [
      { type: 'A', name: 'a.test', ttl: 10, data: '198.18.0.1' },
      { type: 'A', name: 'unrelated.test', ttl: 10, data: '198.18.0.2' },
      { type: 'TXT', name: 'a.test', ttl: 10, data: 'hello' },
    ]);
    expect(parseDnsResponse(msg)).toEqual({ ok: true, mappings: [{ ip: '198.18.0.1', names: ['a.test'], ttlSeconds: 10 }] });
  });

  it('stops at a CNAME loop', () => {
    const msg = response('x.test', [
      { type: 'CNAME', name: 'x.test', ttl: 10, data: 'y.test' },
      { type: 'CNAME', name: 'y.test', ttl: 10, data: 'x.test' },
    ]);
    expect(parseDnsResponse(msg)).toEqual({ ok: true, mappings: [] });
  });

  it('reads the ID and question of a response, and its rcode', () => {
    expect(parseDnsMessage(response('NX.test.', [], 'NXDOMAIN', 'AAAA', 0xbeef))).toEqual({
      ok: true,
      kind: 'response',
      question: { id: 0xbeef, name: 'nx.test', type: 'AAAA', class: 'IN' },
      rcode: 3,
      mappings: [],
    });
  });

  it('reads the ID and question of a query, also when the kernel cut what follows the question', () => {
    const q = dnsPacket.encode({
      type: 'query',
      id: 0x1234,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', name: 'Q.test', class: 'IN' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: [{ code: 12, data: Buffer.alloc(200) }] } as dnsPacket.Answer],
    });
    const want = { ok: true, kind: 'query', question: { id: 0x1234, name: 'q.test', type: 'A', class: 'IN' } };
    expect(parseDnsMessage(q)).toEqual(want);
    expect(parseDnsMessage(q.subarray(0, 12 + 8 + 4))).toEqual(want); // header, "\x01q\x04test\0", type, class
    expect(parseDnsMessage(q.subarray(0, 12 + 8 + 2))).toEqual({ ok: false, reason: 'malformed' });
    expect(parseDnsMessage(query('a.test', 'AAAA', 5))).toEqual({ ok: true, kind: 'query', question: { id: 5, name: 'a.test', type: 'AAAA', class: 'IN' } });
  });

  it.each([
    ['a query without a question', dnsPacket.encode({ type: 'query', id: 2, questions: [] }), 'no_question'],
    ['random bytes', Buffer.from([1, 2, 3]), 'malformed'],
    ['empty', Buffer.alloc(0), 'malformed'],
  ])('rejects %s with reason %s', (_n, msg, reason) => {
    expect(parseDnsResponse(msg as Buffer)).toEqual({ ok: false, reason });
  });

  it('rejects a compression-pointer loop as malformed', () => {
    const msg = Buffer.from(response('a.test', []));
    // question name at offset 12: replace it with a pointer to itself
    msg[12] = 0xc0;
    msg[13] = 12;
    expect(parseDnsResponse(msg)).toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('name and address normalisation', () => {
  it.each([
    ['Example.COM.', 'example.com'],
    ['a.b', 'a.b'],
    ['', undefined],
    ['a..b', undefined],
    ['x'.repeat(64) + '.test', undefined],
    [('a'.repeat(63) + '.').repeat(4) + 'com', undefined],
  ])('normalizeName(%j) = %j', (inp, out) => expect(normalizeName(inp)).toBe(out));

  it.each([
    ['fd00:0:0:1::2', 'fd00:0:0:1::2'],
    ['FD00::1', 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['0:0:1:0:0:0:0:1', '0:0:1::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['1::2::3', undefined],
    ['12345::', undefined],
    ['1:2:3:4:5:6:7', undefined],
  ])('canonicalIPv6(%j) = %j', (inp, out) => expect(canonicalIPv6(inp)).toBe(out));
});
