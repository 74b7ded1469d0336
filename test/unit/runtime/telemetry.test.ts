import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType, InMemoryMetricExporter, type MetricData } from '@opentelemetry/sdk-metrics';
import { flowtapCounts, SelfTelemetry, type FlowtapCounts, type ProgramRunStats } from '../../../src/runtime/telemetry';

function counts(over: Partial<FlowtapCounts> = {}): FlowtapCounts {
  return {
    batches: 3,
    flows: 10,
    dnsEvents: 2,
    emitted: 10,
    decodeErrors: 1,
    processingErrors: 0,
    exportedRecords: 7,
    failedRecords: 2,
    droppedRecords: 1,
    retriedRecords: 12,
    queueRecords: 3,
    queueBytes: 1800,
    queueCapacity: 200000,
    dns: {
      names: 4,
      addresses: 2,
      pendingQueries: 1,
      responses: 2,
      queries: 3,
      queriesEvicted: 0,
      truncated: 0,
      skipped: { malformed: 1, no_question: 0, rcode: 0, bad_name: 0 },
      unmatched: { no_query: 6, wrong_server: 0, wrong_id: 2, wrong_question: 0, late: 0, duplicate: 1 },
      hits: 5,
      misses: 15,
      evictions: 3,
      expired: 1,
      zeroTtlNames: 3,
      zeroTtlHits: 2,
    },
    probe: {
      flow_begin: 6,
      flow_end: 4,
      dns: 2,
      ringbuf_full_flow: 9,
      ringbuf_full_dns: 8,
      flow_table_full: 0,
      flow_table_insert: 10,
      flow_table_delete: 4,
      flow_table_evictions: 2,
      skip_truncated: 1,
      skip_bad_ihl: 2,
      skip_fragment: 0,
      skip_ipv6_ext: 0,
      skip_load: 0,
      dns_tcp_multisegment: 0,
      synack_duplicate: 5,
      synack_unsolicited: 7,
      synack_pending: 30,
      synack_confirmed: 26,
      attempt_refused: 3,
      attempt_unreachable: 1,
      attempt_timed_out: 0,
      attempt_abandoned: 2,
      filtered: 0,
      handoff_dropped_records: 0,
      handoff_waits: 11,
      bad_records: 0,
    },
    ...over,
  };
}

/** Collects once and returns name → list of (attributes, value). */
async function collect(
  c: () => FlowtapCounts,
  programStats?: () => Record<string, ProgramRunStats>,
): Promise<Map<string, { attributes: Record<string, unknown>; value: number }[]>> {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const telemetry = new SelfTelemetry({
    exporter,
    resource: resourceFromAttributes({ 'service.name': 'flowtap' }),
    version: '0.0.0-test',
    exportIntervalMillis: 3_600_000,
    counts: c,
    programStats,
    flowTableEntries: () => 42,
  });
  await telemetry.forceFlush();
  const out = new Map<string, { attributes: Record<string, unknown>; value: number }[]>();
  const metrics: MetricData[] = exporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics));
  for (const m of metrics) {
    for (const p of m.dataPoints) {
      const list = out.get(m.descriptor.name) ?? [];
      list.push({ attributes: p.attributes, value: p.value as number });
      out.set(m.descriptor.name, list);
    }
  }
  await telemetry.shutdown();
  await telemetry.shutdown(); // idempotent
  return out;
}

function value(
  points: Map<string, { attributes: Record<string, unknown>; value: number }[]>,
  name: string,
  attrs: Record<string, unknown> = {},
): number | undefined {
  return points.get(name)?.find((p) => JSON.stringify(p.attributes) === JSON.stringify(attrs))?.value;
}

describe('SelfTelemetry', () => {
  it('observes every counter once per collection, from the counts it is given', async () => {
    const read = jest.fn(() => counts());
    const p = await collect(read);
    // one read per collection: forceFlush() and shutdown() each collect once
    expect(read).toHaveBeenCalledTimes(2);
    expect(value(p, 'flowtap.flow.events', { 'flowtap.event.type': 'begin' })).toBe(6);
    expect(value(p, 'flowtap.flow.events', { 'flowtap.event.type': 'end' })).toBe(4);
    for (const [reason, n] of [
      ['refused', 3],
      ['unreachable', 1],
      ['timed_out', 0],
      ['abandoned', 2],
    ] as const)
      expect(value(p, 'flowtap.flow.events', { 'flowtap.event.type': 'attempt', 'flowtap.reason': reason })).toBe(n);
    expect(value(p, 'flowtap.flows.half_open')).toBe(4);
    expect(value(p, 'flowtap.records.emitted')).toBe(10);
    expect(value(p, 'flowtap.records.exported')).toBe(7);
    expect(value(p, 'flowtap.records.dropped', { 'flowtap.reason': 'ring_buffer_full' })).toBe(9);
    expect(value(p, 'flowtap.records.dropped', { 'flowtap.reason': 'queue_full' })).toBe(1);
    expect(value(p, 'flowtap.records.dropped', { 'flowtap.reason': 'export_failed' })).toBe(2);
    expect(value(p, 'flowtap.records.dropped', { 'flowtap.reason': 'handoff' })).toBe(0);
    expect(value(p, 'flowtap.records.retried')).toBe(12);
    expect(value(p, 'flowtap.export_queue.records')).toBe(3);
    expect(value(p, 'flowtap.export_queue.bytes')).toBe(1800);
    expect(value(p, 'flowtap.export_queue.capacity')).toBe(200000);
    expect(value(p, 'flowtap.dns.responses.dropped', { 'flowtap.reason': 'ring_buffer_full' })).toBe(8);
    expect(value(p, 'flowtap.errors', { 'error.type': 'decode' })).toBe(1);
    expect(value(p, 'flowtap.packets.skipped', { 'flowtap.reason': 'bad_ihl' })).toBe(2);
    expect(value(p, 'flowtap.packets.skipped', { 'flowtap.reason': 'synack_duplicate' })).toBe(5);
    expect(value(p, 'flowtap.packets.skipped', { 'flowtap.reason': 'synack_unsolicited' })).toBe(7);
    expect(value(p, 'flowtap.handoff.waits')).toBe(11);
    expect(value(p, 'flowtap.dns.cache.names')).toBe(4);
    expect(value(p, 'flowtap.dns.cache.addresses')).toBe(2);
    // 5 hits, 2 of them named by a TTL-0 answer: counted apart, so the results add up to the lookups
    expect(value(p, 'flowtap.dns.cache.lookups', { 'flowtap.lookup.result': 'hit' })).toBe(3);
    expect(value(p, 'flowtap.dns.cache.lookups', { 'flowtap.lookup.result': 'hit_zero_ttl' })).toBe(2);
    expect(value(p, 'flowtap.dns.cache.lookups', { 'flowtap.lookup.result': 'miss' })).toBe(15);
    expect(value(p, 'flowtap.dns.cache.evictions', { 'flowtap.reason': 'expired' })).toBe(1);
    expect(value(p, 'flowtap.dns.responses', { 'flowtap.dns.result': 'parsed' })).toBe(2);
    expect(value(p, 'flowtap.dns.responses', { 'flowtap.dns.result': 'malformed' })).toBe(1);
    expect(value(p, 'flowtap.dns.responses', { 'flowtap.dns.result': 'no_query' })).toBe(6);
    expect(value(p, 'flowtap.dns.responses', { 'flowtap.dns.result': 'wrong_id' })).toBe(2);
    expect(value(p, 'flowtap.dns.responses', { 'flowtap.dns.result': 'duplicate' })).toBe(1);
    expect(value(p, 'flowtap.flow_table.entries')).toBe(42);
    expect(value(p, 'flowtap.flow_table.evictions')).toBe(2);
  });

  it('observes the /proc process cache when there is one, and nothing of it otherwise', async () => {
    const processes = { hits: 30, misses: 4, gone: 2, reused: 1, changed: 1, evictions: 3, entries: 4 };
    const p = await collect(() => counts({ processes }));
    expect(value(p, 'flowtap.process.cache.entries')).toBe(4);
    expect(value(p, 'flowtap.process.cache.lookups', { 'flowtap.lookup.result': 'hit' })).toBe(30);
    expect(value(p, 'flowtap.process.cache.lookups', { 'flowtap.lookup.result': 'miss' })).toBe(4);
    expect(value(p, 'flowtap.process.cache.lookups', { 'flowtap.lookup.result': 'gone' })).toBe(2);
    expect(value(p, 'flowtap.process.cache.lookups', { 'flowtap.lookup.result': 'reused' })).toBe(1);
    expect(value(p, 'flowtap.process.cache.evictions')).toBe(3);
    const none = await collect(() => counts());
    expect(none.has('flowtap.process.cache.entries')).toBe(false);
    expect(none.has('flowtap.process.cache.lookups')).toBe(false);
  });

  it('derives the flow table size from the counters when not told it', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const t = new SelfTelemetry({ exporter, resource: resourceFromAttributes({}), version: '1', counts: () => counts() });
    await t.forceFlush();
    const entries = exporter.getMetrics()[0].scopeMetrics[0].metrics.find((m) => m.descriptor.name === 'flowtap.flow_table.entries')!;
    expect(entries.dataPoints[0].value).toBe(10 - 4 - 2);
    await t.shutdown();
  });

  it('reports program run time only when the kernel measured it', async () => {
    const off = await collect(
      () => counts(),
      () => ({ ingress: { runTimeNs: 0, runCount: 0 }, egress: { runTimeNs: 0, runCount: 0 } }),
    );
    expect(off.get('flowtap.bpf.program.run_time')).toBeUndefined();
    const on = await collect(
      () => counts(),
      () => ({ ingress: { runTimeNs: 500, runCount: 10 }, egress: { runTimeNs: 0, runCount: 0 } }),
    );
    expect(value(on, 'flowtap.bpf.program.run_time', { 'flowtap.bpf.program': 'ingress' })).toBe(500);
    expect(value(on, 'flowtap.bpf.program.runs', { 'flowtap.bpf.program': 'ingress' })).toBe(10);
    expect(value(on, 'flowtap.bpf.program.runs', { 'flowtap.bpf.program': 'egress' })).toBeUndefined();
  });

  it('reports no export queue gauges when there is no export queue (console path)', async () => {
    const p = await collect(() => counts({ queueRecords: undefined, queueBytes: undefined, queueCapacity: undefined }));
    expect(p.get('flowtap.export_queue.records')).toBeUndefined();
    expect(p.get('flowtap.export_queue.bytes')).toBeUndefined();
    expect(p.get('flowtap.export_queue.capacity')).toBeUndefined();
    expect(value(p, 'flowtap.records.retried')).toBe(12);
  });

  it('skips counters the probe could not report (unreadable counters are {})', async () => {
    const p = await collect(() => counts({ probe: {} }));
    expect(p.get('flowtap.flow.events')).toBeUndefined();
    expect(value(p, 'flowtap.records.emitted')).toBe(10);
    expect(value(p, 'flowtap.records.dropped', { 'flowtap.reason': 'queue_full' })).toBe(1);
  });

  it('exports counters as cumulative monotonic sums and cache sizes as gauges', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const t = new SelfTelemetry({ exporter, resource: resourceFromAttributes({}), version: '1', counts: () => counts() });
    await t.forceFlush();
    const metrics = exporter.getMetrics()[0].scopeMetrics[0];
    expect(metrics.scope.name).toBe('flowtap');
    const byName = new Map(metrics.metrics.map((m) => [m.descriptor.name, m]));
    const exported = byName.get('flowtap.records.exported')!;
    expect(exported.dataPointType).toBe(DataPointType.SUM);
    expect((exported as { isMonotonic?: boolean }).isMonotonic).toBe(true);
    expect(exported.descriptor.unit).toBe('{record}');
    expect(byName.get('flowtap.dns.cache.names')!.dataPointType).toBe(DataPointType.GAUGE);
    expect(byName.get('flowtap.records.retried')!.dataPointType).toBe(DataPointType.SUM);
    expect(byName.get('flowtap.export_queue.records')!.dataPointType).toBe(DataPointType.GAUGE);
    expect(byName.get('flowtap.export_queue.bytes')!.descriptor.unit).toBe('By');
    await t.shutdown();
  });
});

describe('flowtapCounts', () => {
  it("copies every part, keeping the pipeline's DNS event count apart from the cache", () => {
    const pipeline = { batches: 1, flows: 2, dns: 3, emitted: 2, decodeErrors: 0, processingErrors: 0 };
    const dnsStats = counts().dns;
    const probe = { flow_begin: 1 };
    const c = flowtapCounts({
      pipeline,
      exportStats: { exportedRecords: 2, failedRecords: 0, droppedRecords: 0, retriedRecords: 5 },
      exportQueue: { heldRecords: 7, heldBytes: 4200, maxRecords: 100 },
      dnsCache: { size: 4, addresses: 2, pendingQueries: 1, stats: dnsStats },
      probe,
    });
    expect(c).toMatchObject({ retriedRecords: 5, queueRecords: 7, queueBytes: 4200, queueCapacity: 100 });
    expect(c.dnsEvents).toBe(3);
    expect(c.dns.names).toBe(4);
    expect(c.dns.pendingQueries).toBe(1);
    expect(c.flows).toBe(2);
    probe.flow_begin = 99;
    dnsStats.skipped.malformed = 99;
    dnsStats.unmatched.no_query = 99;
    expect(c.probe.flow_begin).toBe(1);
    expect(c.dns.skipped.malformed).toBe(1);
    expect(c.dns.unmatched.no_query).toBe(6);
    const noQueue = flowtapCounts({
      pipeline,
      exportStats: { exportedRecords: 2, failedRecords: 0, droppedRecords: 0, retriedRecords: 0 },
      dnsCache: { size: 4, addresses: 2, pendingQueries: 1, stats: dnsStats },
      probe,
    });
    expect('queueRecords' in noQueue).toBe(false);
    expect('processes' in noQueue).toBe(false);
    const processes = { hits: 1, misses: 1, gone: 0, reused: 0, changed: 0, evictions: 0, entries: 1 };
    expect(
      flowtapCounts({
        pipeline,
        exportStats: { exportedRecords: 0, failedRecords: 0, droppedRecords: 0, retriedRecords: 0 },
        dnsCache: { size: 0, addresses: 0, pendingQueries: 0, stats: dnsStats },
        processCache: { stats: processes },
        probe,
      }).processes,
    ).toEqual(processes);
  });
});
