import { DnsQueryMatcher } from '../../../../src/enrich/dns/match';
import type { DnsQuestion } from '../../../../src/enrich/dns/parse';
import { ENDS, dnsEvent, queryEvent } from './dnsfix';

const MS = 1_000_000n;
const q = (id: number, name = 'a.test'): DnsQuestion => ({ id, name, type: 'A', class: 'IN' });
const none = Buffer.alloc(0); // the matcher reads the event's ends, times and flags, not its bytes
const sent = (tsNs: bigint, ends = ENDS) => queryEvent(none, tsNs, ends);
const back = (tsNs: bigint, ends = ENDS) => dnsEvent(none, false, tsNs, ends);

describe('DnsQueryMatcher', () => {
  it('matches each query once, by socket, server, ID and question', () => {
    const m = new DnsQueryMatcher();
    m.query(sent(0n), q(1));
    expect(m.expects(back(1n))).toBe(true);
    expect(m.expects(back(1n, { ...ENDS, clientPort: 40001 }))).toBe(false);
    expect(m.answer(back(1n), q(1))).toEqual({ ok: true });
    expect(m.answer(back(2n), q(1))).toEqual({ ok: false, reason: 'duplicate' });
    expect(m.pending).toBe(1); // answered, held until it ages out
  });

  it('the window is inclusive; held for two windows, then forgotten', () => {
    const m = new DnsQueryMatcher({ windowMs: 50 });
    m.query(sent(0n), q(1));
    m.query(sent(0n), q(2));
    expect(m.answer(back(50n * MS), q(1))).toEqual({ ok: true });
    expect(m.answer(back(50n * MS + 1n), q(2))).toEqual({ ok: false, reason: 'late' });
    expect(m.answer(back(100n * MS), q(2))).toEqual({ ok: false, reason: 'late' });
    expect(m.expects(back(100n * MS + 1n))).toBe(false);
    expect(m.pending).toBe(0);
  });

  it('holds at most maxPending queries, oldest out first, through many evictions', () => {
    const m = new DnsQueryMatcher({ maxPending: 10 });
    for (let i = 0; i < 5000; i++) m.query(sent(BigInt(i), { ...ENDS, clientPort: 10000 + (i % 7) }), q(i));
    expect(m.pending).toBe(10);
    expect(m.evicted).toBe(4990);
    // the newest ten still match; an evicted one no longer does
    for (let i = 4990; i < 5000; i++) expect(m.answer(back(5000n, { ...ENDS, clientPort: 10000 + (i % 7) }), q(i))).toEqual({ ok: true });
    expect(m.answer(back(5000n, { ...ENDS, clientPort: 10000 + (4989 % 7) }), q(4989))).toEqual({ ok: false, reason: 'wrong_id' });
  });

  it('tells a wrong server (address or port) from a wrong ID, and both from no query', () => {
    const m = new DnsQueryMatcher();
    m.query(sent(0n), q(7));
    expect(m.answer(back(1n, { ...ENDS, server: '198.18.0.99' }), q(7))).toEqual({ ok: false, reason: 'wrong_server' });
    expect(m.answer(back(1n, { ...ENDS, serverPort: 5353 }), q(7))).toEqual({ ok: false, reason: 'wrong_server' });
    expect(m.answer(back(1n, { ...ENDS, server: '198.18.0.99' }), q(8))).toEqual({ ok: false, reason: 'wrong_server' });
    expect(m.answer(back(1n), q(8))).toEqual({ ok: false, reason: 'wrong_id' });
    expect(m.answer(back(1n), q(7, 'b.test'))).toEqual({ ok: false, reason: 'wrong_question' });
    expect(m.answer(back(1n, { ...ENDS, tcp: true }), q(7))).toEqual({ ok: false, reason: 'no_query' });
    expect(m.answer(back(1n), q(7))).toEqual({ ok: true });
  });

  it('refuses bounds below 1', () => {
    expect(() => new DnsQueryMatcher({ windowMs: 0 })).toThrow(RangeError);
    expect(() => new DnsQueryMatcher({ maxPending: 0 })).toThrow(RangeError);
  });
});
