import { exportState, stoppedFields, summaryFields, totalsOf } from '../../../src/runtime/summary';
import { flowtapCounts } from '../../../src/runtime/telemetry';

function counts(begin: number, end: number, exported: number, failed: number, dropped: number, noQuery = 0, late = 0) {
  return flowtapCounts({
    pipeline: { batches: 3, flows: begin + end, dns: 0, emitted: begin + end, decodeErrors: 0, processingErrors: 0 },
    exportStats: { exportedRecords: exported, failedRecords: failed, droppedRecords: dropped, retriedRecords: 0 },
    dnsCache: { size: 0, addresses: 0, stats: { hits: 0, misses: 0, evictions: 0, skipped: {}, unmatched: { no_query: noQuery, late } } } as never,
    probe: { flow_begin: begin, flow_end: end, ringbuf_full_flow: 0 },
  });
}

describe('summary and stopped lines', () => {
  it('the summary gives what happened in the interval, in a few named numbers', () => {
    const prev = totalsOf(counts(100, 90, 180, 1, 0, 2, 0));
    const now = totalsOf(counts(220, 208, 418, 4, 0, 5, 1));
    expect(summaryFields(prev, now, 10, 'ok')).toEqual({
      seconds: 10,
      begun: 120,
      ended: 118,
      exported: 238,
      failed: 3,
      dropped: 0,
      dnsRefused: 4,
      export: 'ok',
    });
    // insertion order is the order a person reads
    expect(Object.keys(summaryFields(prev, now, 10, 'ok'))).toEqual(['seconds', 'begun', 'ended', 'exported', 'failed', 'dropped', 'dnsRefused', 'export']);
  });

  it('adds the spans when spans are exported', () => {
    const t = totalsOf(counts(1, 1, 2, 0, 0));
    const spans = { prev: { exportedRecords: 4, failedRecords: 0, droppedRecords: 1 }, now: { exportedRecords: 10, failedRecords: 2, droppedRecords: 1 } };
    expect(summaryFields(t, t, 5, 'failing', spans)).toMatchObject({ begun: 0, export: 'failing', exportedSpans: 6, failedSpans: 2, droppedSpans: 0 });
  });

  it('export state follows the failing streak', () => {
    expect(exportState(undefined)).toBe('ok');
    expect(exportState(123)).toBe('failing');
  });

  it('stopped: uptime and totals only', () => {
    expect(stoppedFields(totalsOf(counts(5, 5, 10, 0, 0, 3, 1)), 65.2)).toEqual({
      uptimeSeconds: 65.2,
      flowsBegun: 5,
      flowsEnded: 5,
      exportedRecords: 10,
      failedRecords: 0,
      droppedRecords: 0,
      dnsAnswersRefused: 4,
    });
    expect(stoppedFields(totalsOf(counts(5, 5, 10, 0, 0)), 1, { exportedRecords: 5, failedRecords: 0, droppedRecords: 0 })).toMatchObject({
      exportedSpans: 5,
      failedSpans: 0,
      droppedSpans: 0,
    });
  });

  it('an unreadable probe (no counters) counts no flows', () => {
    const c = counts(0, 0, 0, 0, 0);
    c.probe = {};
    expect(totalsOf(c)).toMatchObject({ begun: 0, ended: 0 });
  });
});
