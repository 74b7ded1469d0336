/**
 * flowtap's own metrics (self-telemetry), exported over OTLP with the
 * OpenTelemetry metrics SDK: a MeterProvider with one
 * PeriodicExportingMetricReader. Every instrument is observable and reads the
 * counters that already exist — kernel and addon counters (probe.counters()),
 * the pipeline's stats, ExportStats and the DNS cache — once per collection,
 * in one batch callback. Nothing is counted twice: the values exported are the
 * very numbers the `stopped` and `summary` log lines show.
 *
 * Metric names, units and attributes are in semconv.ts and docs/reliability.md.
 */
import type { Attributes, BatchObservableResult, Meter, Observable } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import type { DnsCacheStats } from '../enrich/dns/cache';
import type { ProcessCacheStats } from '../enrich/process';
import type { PipelineStats } from '../pipeline';
import {
  FLOW_ATTEMPT_REASON_VALUE_ABANDONED,
  FLOW_ATTEMPT_REASON_VALUE_REFUSED,
  FLOW_ATTEMPT_REASON_VALUE_TIMED_OUT,
  FLOW_ATTEMPT_REASON_VALUE_UNREACHABLE,
  ATTR_FLOWTAP_BPF_PROGRAM,
  ATTR_FLOWTAP_DNS_RESULT,
  ATTR_FLOWTAP_ERROR_TYPE,
  ATTR_FLOWTAP_EVENT_TYPE,
  ATTR_FLOWTAP_LOOKUP_RESULT,
  ATTR_FLOWTAP_REASON,
  METRIC_FLOWTAP_BPF_PROGRAM_RUNS,
  METRIC_FLOWTAP_BPF_PROGRAM_RUN_TIME,
  METRIC_FLOWTAP_DNS_CACHE_ADDRESSES,
  METRIC_FLOWTAP_DNS_CACHE_EVICTIONS,
  METRIC_FLOWTAP_DNS_CACHE_LOOKUPS,
  METRIC_FLOWTAP_DNS_CACHE_NAMES,
  METRIC_FLOWTAP_DNS_RESPONSES,
  METRIC_FLOWTAP_DNS_RESPONSES_DROPPED,
  METRIC_FLOWTAP_ERRORS,
  METRIC_FLOWTAP_EXPORT_QUEUE_BYTES,
  METRIC_FLOWTAP_EXPORT_QUEUE_CAPACITY,
  METRIC_FLOWTAP_EXPORT_QUEUE_RECORDS,
  METRIC_FLOWTAP_FLOWS_FILTERED,
  METRIC_FLOWTAP_FLOWS_HALF_OPEN,
  METRIC_FLOWTAP_FLOW_EVENTS,
  METRIC_FLOWTAP_FLOW_TABLE_ENTRIES,
  METRIC_FLOWTAP_FLOW_TABLE_EVICTIONS,
  METRIC_FLOWTAP_FLOW_TABLE_FULL,
  METRIC_FLOWTAP_HANDOFF_WAITS,
  METRIC_FLOWTAP_PACKETS_SKIPPED,
  METRIC_FLOWTAP_PROCESS_CACHE_ENTRIES,
  METRIC_FLOWTAP_PROCESS_CACHE_EVICTIONS,
  METRIC_FLOWTAP_PROCESS_CACHE_LOOKUPS,
  METRIC_FLOWTAP_RECORDS_DROPPED,
  METRIC_FLOWTAP_RECORDS_EMITTED,
  METRIC_FLOWTAP_RECORDS_EXPORTED,
  METRIC_FLOWTAP_RECORDS_RETRIED,
  SCOPE_NAME,
} from '../record/semconv';

/** Every counter flowtap keeps, as the `stopped` and `summary` log lines show them. */
export interface FlowtapCounts {
  /** Batches from the addon. */
  batches: number;
  /** Flow events decoded (begin and end). */
  flows: number;
  /** DNS events decoded. */
  dnsEvents: number;
  /** Records emitted to the SDK. */
  emitted: number;
  decodeErrors: number;
  processingErrors: number;
  /** ExportStats: records exported, failed after retries, dropped at a full queue. */
  exportedRecords: number;
  failedRecords: number;
  droppedRecords: number;
  /** ExportStats: records of failed attempts that stay queued for a retry (a record sent three times counts twice). */
  retriedRecords: number;
  /** The export queue (OTLP path only; absent on the console path): records held, their encoded bytes, the bound. */
  queueRecords?: number;
  queueBytes?: number;
  queueCapacity?: number;
  /** The DNS cache: names and addresses held, queries waiting for (or holding, until they age out) their answer, and its stats. */
  dns: { names: number; addresses: number; pendingQueries: number } & DnsCacheStats;
  /** The /proc process cache (src/enrich/process.ts); absent when it is not used (another pid namespace, --replay). */
  processes?: ProcessCacheStats;
  /** probe.counters(): kernel counters (bpf/flowtap.h) and the addon's own; {} when unreadable. */
  probe: Record<string, number>;
}

/** The parts FlowtapCounts is made of. */
export interface CountSources {
  pipeline: PipelineStats;
  exportStats: { exportedRecords: number; failedRecords: number; droppedRecords: number; retriedRecords: number };
  /** The OTLP export queue (queue.ts); undefined on the console path, whose SDK queue does not say. */
  exportQueue?: { heldRecords: number; heldBytes: number; maxRecords: number };
  dnsCache: { size: number; addresses: number; pendingQueries: number; stats: DnsCacheStats };
  processCache?: { stats: ProcessCacheStats };
  probe: Record<string, number>;
}

/** One snapshot of every counter (a pure copy: later changes do not show in it). */
export function flowtapCounts(s: CountSources): FlowtapCounts {
  const { dns: dnsEvents, ...pipeline } = s.pipeline;
  return {
    ...pipeline,
    dnsEvents,
    exportedRecords: s.exportStats.exportedRecords,
    failedRecords: s.exportStats.failedRecords,
    droppedRecords: s.exportStats.droppedRecords,
    retriedRecords: s.exportStats.retriedRecords,
    ...(s.exportQueue === undefined
      ? {}
      : { queueRecords: s.exportQueue.heldRecords, queueBytes: s.exportQueue.heldBytes, queueCapacity: s.exportQueue.maxRecords }),
    dns: {
      names: s.dnsCache.size,
      addresses: s.dnsCache.addresses,
      pendingQueries: s.dnsCache.pendingQueries,
      ...s.dnsCache.stats,
      skipped: { ...s.dnsCache.stats.skipped },
      unmatched: { ...s.dnsCache.stats.unmatched },
    },
    ...(s.processCache === undefined ? {} : { processes: s.processCache.stats }),
    probe: { ...s.probe },
  };
}

/** probe.programStats(): run time and count of one program (0 unless kernel.bpf_stats_enabled=1). */
export interface ProgramRunStats {
  runTimeNs: number;
  runCount: number;
}

export interface SelfTelemetryOptions {
  /** Where metrics go (the OTLP/gRPC metric exporter in production). */
  exporter: PushMetricExporter;
  resource: Resource;
  /** Instrumentation scope version (flowtap's version). */
  version: string;
  /** OTEL_METRIC_EXPORT_INTERVAL: ms between two exports. Default 60000. */
  exportIntervalMillis?: number;
  /** OTEL_METRIC_EXPORT_TIMEOUT: ms one collection + export may take, at most the interval. Default 30000. */
  exportTimeoutMillis?: number;
  /** Read once per collection. */
  counts(): FlowtapCounts;
  /** Read once per collection; a program with runCount 0 (stats disabled) is not reported. */
  programStats?(): Record<string, ProgramRunStats>;
  /**
   * Read once per collection: entries in the kernel flow table. Default: from
   * the counters (flow_table_insert - flow_table_delete - flow_table_evictions),
   * which costs no second walk of the table.
   */
  flowTableEntries?(): number | undefined;
}

/** Kernel counters of packets the programs looked at and skipped, by reason. */
const SKIP_COUNTERS: Record<string, string> = {
  skip_truncated: 'truncated',
  skip_bad_ihl: 'bad_ihl',
  skip_fragment: 'fragment',
  skip_ipv6_ext: 'ipv6_ext',
  skip_load: 'load_failed',
  dns_tcp_multisegment: 'dns_tcp_multisegment',
  synack_duplicate: 'synack_duplicate',
  synack_unsolicited: 'synack_unsolicited',
};

/** Kernel counters of failed connection attempts, by flowtap.flow.attempt.reason. */
const ATTEMPT_COUNTERS: Record<string, string> = {
  attempt_refused: FLOW_ATTEMPT_REASON_VALUE_REFUSED,
  attempt_unreachable: FLOW_ATTEMPT_REASON_VALUE_UNREACHABLE,
  attempt_timed_out: FLOW_ATTEMPT_REASON_VALUE_TIMED_OUT,
  attempt_abandoned: FLOW_ATTEMPT_REASON_VALUE_ABANDONED,
};

type Instrument = Observable<Attributes>;

export class SelfTelemetry {
  private readonly _provider: MeterProvider;
  private _shutdown: Promise<void> | undefined;

  constructor(options: SelfTelemetryOptions) {
    const interval = options.exportIntervalMillis ?? 60_000;
    const reader = new PeriodicExportingMetricReader({
      exporter: options.exporter,
      exportIntervalMillis: interval,
      exportTimeoutMillis: Math.min(options.exportTimeoutMillis ?? 30_000, interval),
    });
    this._provider = new MeterProvider({ resource: options.resource, readers: [reader] });
    register(this._provider.getMeter(SCOPE_NAME, options.version), options);
  }

  /** Collects and exports now. Never rejects. */
  async forceFlush(): Promise<void> {
    try {
      await this._provider.forceFlush();
    } catch {
      // export failures already reached the SDK's error handler
    }
  }

  /** Exports a last time (the final counts), then stops. Idempotent; never rejects. */
  shutdown(): Promise<void> {
    this._shutdown ??= this._provider.shutdown().catch(() => undefined);
    return this._shutdown;
  }
}

/** Creates the instruments and the one callback that observes them all. */
function register(meter: Meter, options: SelfTelemetryOptions): void {
  const counter = (name: string, unit: string, description: string): Instrument => meter.createObservableCounter(name, { unit, description });
  const gauge = (name: string, unit: string, description: string): Instrument => meter.createObservableGauge(name, { unit, description });

  const flowEvents = counter(METRIC_FLOWTAP_FLOW_EVENTS, '{event}', 'Flow events the kernel programs put in the ring buffer');
  const dnsResponsesCaptured = counter(
    METRIC_FLOWTAP_DNS_RESPONSES,
    '{response}',
    'DNS responses read, by how the cache used them: parsed, skipped (by reason), or refused as answering no query seen (by reason)',
  );
  const emitted = counter(METRIC_FLOWTAP_RECORDS_EMITTED, '{record}', 'Log records handed to the OpenTelemetry SDK');
  const exported = counter(METRIC_FLOWTAP_RECORDS_EXPORTED, '{record}', 'Log records the exporter delivered');
  const dropped = counter(METRIC_FLOWTAP_RECORDS_DROPPED, '{record}', 'Flow records lost, by where they were lost');
  const retried = counter(
    METRIC_FLOWTAP_RECORDS_RETRIED,
    '{record}',
    'Records of export attempts that failed and were queued again for a retry (a record sent three times counts twice)',
  );
  const queueRecords = gauge(
    METRIC_FLOWTAP_EXPORT_QUEUE_RECORDS,
    '{record}',
    'Records held for export: the open batch, waiting (also for a retry) and in flight',
  );
  const queueBytes = gauge(METRIC_FLOWTAP_EXPORT_QUEUE_BYTES, 'By', 'Encoded OTLP bytes of the records held for export');
  const queueCapacity = gauge(
    METRIC_FLOWTAP_EXPORT_QUEUE_CAPACITY,
    '{record}',
    'Records the export queue holds at most (--queue-max-records); beyond it the oldest are dropped',
  );
  const dnsDropped = counter(METRIC_FLOWTAP_DNS_RESPONSES_DROPPED, '{response}', 'DNS responses lost before user space');
  const errors = counter(METRIC_FLOWTAP_ERRORS, '{error}', 'Records user space could not read or process');
  const skipped = counter(METRIC_FLOWTAP_PACKETS_SKIPPED, '{packet}', 'Packets the kernel programs skipped, by reason');
  const filtered = counter(METRIC_FLOWTAP_FLOWS_FILTERED, '{flow}', 'Flows left out by a filter');
  const halfOpen = gauge(
    METRIC_FLOWTAP_FLOWS_HALF_OPEN,
    '{flow}',
    'Incoming handshakes whose SYN-ACK left and whose ACK has not come (or never will: a flood of spoofed SYNs): they begin no flow',
  );
  const tableFull = counter(METRIC_FLOWTAP_FLOW_TABLE_FULL, '{flow}', 'Flows the kernel flow table could not hold (their end is not reported)');
  const tableEvictions = counter(
    METRIC_FLOWTAP_FLOW_TABLE_EVICTIONS,
    '{flow}',
    'Flows evicted from the full flow table before their end (their end is not reported)',
  );
  const waits = counter(METRIC_FLOWTAP_HANDOFF_WAITS, '{wait}', 'Times the reader paused the ring buffer until JavaScript caught up');
  const cacheNames = gauge(METRIC_FLOWTAP_DNS_CACHE_NAMES, '{name}', 'Names the DNS cache holds');
  const cacheAddresses = gauge(METRIC_FLOWTAP_DNS_CACHE_ADDRESSES, '{address}', 'Addresses the DNS cache holds');
  const lookups = counter(METRIC_FLOWTAP_DNS_CACHE_LOOKUPS, '{lookup}', 'DNS cache lookups, by result');
  const evictions = counter(METRIC_FLOWTAP_DNS_CACHE_EVICTIONS, '{name}', 'Names removed from the DNS cache, by reason');
  const runTime = counter(METRIC_FLOWTAP_BPF_PROGRAM_RUN_TIME, 'ns', 'Time the kernel programs ran (needs kernel.bpf_stats_enabled=1)');
  const runs = counter(METRIC_FLOWTAP_BPF_PROGRAM_RUNS, '{run}', 'Times the kernel programs ran (needs kernel.bpf_stats_enabled=1)');
  const tableEntries = gauge(METRIC_FLOWTAP_FLOW_TABLE_ENTRIES, '{flow}', 'Entries in the kernel flow table');
  const processEntries = gauge(METRIC_FLOWTAP_PROCESS_CACHE_ENTRIES, '{process}', 'Processes the /proc cache holds');
  const processLookups = counter(METRIC_FLOWTAP_PROCESS_CACHE_LOOKUPS, '{lookup}', 'Process cache lookups, by result');
  const processEvictions = counter(METRIC_FLOWTAP_PROCESS_CACHE_EVICTIONS, '{process}', 'Processes dropped from the full /proc cache');

  const instruments = [
    flowEvents,
    dnsResponsesCaptured,
    emitted,
    exported,
    dropped,
    retried,
    queueRecords,
    queueBytes,
    queueCapacity,
    dnsDropped,
    errors,
    skipped,
    filtered,
    halfOpen,
    tableFull,
    tableEvictions,
    waits,
    cacheNames,
    cacheAddresses,
    lookups,
    evictions,
    runTime,
    runs,
    tableEntries,
    processEntries,
    processLookups,
    processEvictions,
  ];

  meter.addBatchObservableCallback((result: BatchObservableResult) => {
    const c = options.counts();
    const k = c.probe;
    const observe = (instrument: Instrument, value: number | undefined, attributes?: Attributes): void => {
      if (value !== undefined && Number.isFinite(value)) result.observe(instrument, value, attributes);
    };
    observe(flowEvents, k.flow_begin, { [ATTR_FLOWTAP_EVENT_TYPE]: 'begin' });
    observe(flowEvents, k.flow_end, { [ATTR_FLOWTAP_EVENT_TYPE]: 'end' });
    for (const [counter, reason] of Object.entries(ATTEMPT_COUNTERS))
      observe(flowEvents, k[counter], { [ATTR_FLOWTAP_EVENT_TYPE]: 'attempt', [ATTR_FLOWTAP_REASON]: reason });
    observe(emitted, c.emitted);
    observe(exported, c.exportedRecords);
    observe(dropped, k.ringbuf_full_flow, { [ATTR_FLOWTAP_REASON]: 'ring_buffer_full' });
    observe(dropped, k.handoff_dropped_records, { [ATTR_FLOWTAP_REASON]: 'handoff' });
    observe(dropped, c.droppedRecords, { [ATTR_FLOWTAP_REASON]: 'queue_full' });
    observe(dropped, c.failedRecords, { [ATTR_FLOWTAP_REASON]: 'export_failed' });
    observe(retried, c.retriedRecords);
    observe(queueRecords, c.queueRecords);
    observe(queueBytes, c.queueBytes);
    observe(queueCapacity, c.queueCapacity);
    observe(dnsDropped, k.ringbuf_full_dns, { [ATTR_FLOWTAP_REASON]: 'ring_buffer_full' });
    observe(errors, c.decodeErrors, { [ATTR_FLOWTAP_ERROR_TYPE]: 'decode' });
    observe(errors, c.processingErrors, { [ATTR_FLOWTAP_ERROR_TYPE]: 'processing' });
    observe(errors, k.bad_records, { [ATTR_FLOWTAP_ERROR_TYPE]: 'bad_record' });
    for (const [name, reason] of Object.entries(SKIP_COUNTERS)) observe(skipped, k[name], { [ATTR_FLOWTAP_REASON]: reason });
    observe(filtered, k.filtered);
    observe(halfOpen, k.synack_pending === undefined || k.synack_confirmed === undefined ? undefined : k.synack_pending - k.synack_confirmed);
    observe(tableFull, k.flow_table_full);
    observe(tableEvictions, k.flow_table_evictions);
    observe(waits, k.handoff_waits);
    observe(dnsResponsesCaptured, c.dns.responses, { [ATTR_FLOWTAP_DNS_RESULT]: 'parsed' });
    for (const [reason, n] of Object.entries(c.dns.skipped)) observe(dnsResponsesCaptured, n, { [ATTR_FLOWTAP_DNS_RESULT]: reason });
    // refused: answers to no query seen (no_query, wrong_server, wrong_id, wrong_question, late, duplicate)
    for (const [reason, n] of Object.entries(c.dns.unmatched)) observe(dnsResponsesCaptured, n, { [ATTR_FLOWTAP_DNS_RESULT]: reason });
    observe(cacheNames, c.dns.names);
    observe(cacheAddresses, c.dns.addresses);
    // a hit named by a TTL-0 answer (the zero-TTL window) is counted apart: the results still add up to the lookups
    observe(lookups, c.dns.hits - c.dns.zeroTtlHits, { [ATTR_FLOWTAP_LOOKUP_RESULT]: 'hit' });
    observe(lookups, c.dns.zeroTtlHits, { [ATTR_FLOWTAP_LOOKUP_RESULT]: 'hit_zero_ttl' });
    observe(lookups, c.dns.misses, { [ATTR_FLOWTAP_LOOKUP_RESULT]: 'miss' });
    observe(evictions, c.dns.evictions, { [ATTR_FLOWTAP_REASON]: 'bound' });
    observe(evictions, c.dns.expired, { [ATTR_FLOWTAP_REASON]: 'expired' });
    if (c.processes !== undefined) {
      observe(processEntries, c.processes.entries);
      observe(processLookups, c.processes.hits, { [ATTR_FLOWTAP_LOOKUP_RESULT]: 'hit' });
      observe(processLookups, c.processes.misses, { [ATTR_FLOWTAP_LOOKUP_RESULT]: 'miss' });
      observe(processLookups, c.processes.gone, { [ATTR_FLOWTAP_LOOKUP_RESULT]: 'gone' });
      observe(processLookups, c.processes.reused, { [ATTR_FLOWTAP_LOOKUP_RESULT]: 'reused' });
      observe(processEvictions, c.processes.evictions);
    }
    if (options.programStats !== undefined) {
      for (const [program, s] of Object.entries(options.programStats())) {
        if (s.runCount <= 0) continue; // kernel.bpf_stats_enabled=0: nothing measured
        observe(runTime, s.runTimeNs, { [ATTR_FLOWTAP_BPF_PROGRAM]: program });
        observe(runs, s.runCount, { [ATTR_FLOWTAP_BPF_PROGRAM]: program });
      }
    }
    const derived =
      k.flow_table_insert === undefined || k.flow_table_delete === undefined || k.flow_table_evictions === undefined
        ? undefined
        : k.flow_table_insert - k.flow_table_delete - k.flow_table_evictions;
    observe(tableEntries, options.flowTableEntries === undefined ? derived : options.flowTableEntries());
  }, instruments);
}
