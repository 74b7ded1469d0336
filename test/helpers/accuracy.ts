/**
 * Judging flowtap against the oracle: the records a scenario should produce
 * (from the flows in the packet capture), compared with the records the real
 * collector received, and the per-scenario result written for the report
 * (test/accuracy/report.ts → docs/accuracy.md). Independent of src/: record
 * fields are read by their attribute names as the collector wrote them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CollectedLogRecord } from './collector';
import type { OracleFlow } from './oracle';

export const RESULTS_FILE = process.env.FLOWTAP_ACCURACY_RESULTS ?? resolve(__dirname, '..', '..', 'build', 'accuracy.json');

export type Direction = 'incoming' | 'outgoing';

/** A record a scenario should produce. */
export interface ExpectedRecord {
  eventName: 'flowtap.flow.begin' | 'flowtap.flow.end' | 'flowtap.flow.attempt';
  direction: Direction;
  srcAddr: string;
  srcPort: number;
  dstAddr: string;
  dstPort: number;
  networkType: 'ipv4' | 'ipv6';
  closeReason?: 'fin' | 'rst';
  closedBy?: 'source' | 'destination';
  /**
   * An attempt's reasons the capture allows: `refused` for a SYN answered by
   * a RST; for a SYN never answered, `timed_out` or `abandoned` (the wire
   * does not show whether the kernel or the application gave up).
   */
  attemptReasons?: readonly string[];
  /** An attempt's SYNs on the wire (retransmissions included). */
  syns?: number;
  /** When given, flowtap.flow.destination.domains must equal it (and server.address its first name). */
  destinationDomains?: string[];
  /**
   * Capture time (seconds since the epoch) of the packet the record stands
   * for: a begin, the SYN-ACK as it passed the watched side (incoming: the
   * first one it sent; outgoing: the one the initiator accepted); an end,
   * the first FIN or RST; a refused attempt, the RST. Undefined for an
   * unanswered attempt: no packet marks when it was given up.
   */
  packetTime: number | undefined;
}

/**
 * How far (milliseconds, either way) a record's Timestamp may be from its
 * packet's capture time. flowtap stamps the record in the kernel when the
 * packet passes the cgroup hook (CLOCK_BOOTTIME) and converts that to wall
 * time with one anchor (CLOCK_REALTIME and CLOCK_BOOTTIME read together,
 * renewed every minute); tcpdump stamps the same packet with CLOCK_REALTIME
 * where it passes the interface. What separates them: the path between the
 * interface and the hook (the same softirq for a received packet, the same
 * call chain for a sent one: microseconds, plus the backlog wait of a
 * received packet stamped when queued, which a burst lengthens), and the
 * anchor's error (two clock reads microseconds apart, plus any slew of the
 * wall clock since the anchor was taken: NTP slews it by at most 500 ppm,
 * 0.5 ms for each second, a few ms over the longest scenario, none when
 * the clock is not being slewed). Measured: under 0.5 ms in every scenario,
 * the 10 000-connection burst included (docs/accuracy.md). A shifted
 * anchor, a unit or an epoch mix-up is off by far more.
 */
export const TIMESTAMP_BOUND_MILLIS = 5;

export interface ExpectOptions {
  /** Which records each established flow gives: the directions the watched cgroup sees it in. */
  directions: (flow: OracleFlow) => Direction[];
  /** Flows whose SYN-ACK is before this (seconds since the epoch) were open before flowtap attached: none. */
  since?: number;
  /** Names the DNS cache should hold for an address (the destination's domains); none: not checked. */
  domains?: (address: string) => string[] | undefined;
}

/** The records the capture says flowtap should produce, in capture order. */
export function expectedRecords(flows: readonly OracleFlow[], options: ExpectOptions): ExpectedRecord[] {
  const out: ExpectedRecord[] = [];
  for (const f of flows) {
    if (!f.established && f.synAcks === 0 && f.synTime !== undefined && options.directions(f).includes('outgoing')) {
      // A connect from the watched cgroup that failed: one attempt record.
      if (options.since !== undefined && f.synTime < options.since) continue;
      out.push({
        eventName: 'flowtap.flow.attempt',
        direction: 'outgoing',
        srcAddr: f.initiator,
        srcPort: f.initiatorPort,
        dstAddr: f.responder,
        dstPort: f.responderPort,
        networkType: f.family === 4 ? 'ipv4' : 'ipv6',
        destinationDomains: options.domains?.(f.responder),
        attemptReasons: f.refused ? ['refused'] : ['timed_out', 'abandoned'],
        syns: f.syns,
        packetTime: f.refused ? f.refusedTime : undefined,
      });
      continue;
    }
    if (!f.established || f.synAckTime === undefined) continue;
    if (options.since !== undefined && f.synAckTime < options.since) continue;
    const base = {
      srcAddr: f.initiator,
      srcPort: f.initiatorPort,
      dstAddr: f.responder,
      dstPort: f.responderPort,
      networkType: f.family === 4 ? ('ipv4' as const) : ('ipv6' as const),
      destinationDomains: options.domains?.(f.responder),
    };
    for (const direction of options.directions(f)) {
      // the responder's hook sees the SYN-ACK it sends first; the initiator's, only the one it accepts
      const synAck = direction === 'incoming' ? f.synAckTime : (f.acceptedSynAckTime ?? f.synAckTime);
      out.push({ eventName: 'flowtap.flow.begin', direction, ...base, packetTime: synAck });
      if (f.end !== undefined) {
        out.push({ eventName: 'flowtap.flow.end', direction, ...base, closeReason: f.end.reason, closedBy: f.end.by, packetTime: f.end.time });
      }
    }
  }
  return out;
}

export interface Comparison {
  expected: number;
  seen: number;
  matched: number;
  /** Expected, never seen. */
  missing: ExpectedRecord[];
  /** Seen more often than expected (same event, direction and ports). */
  duplicate: CollectedLogRecord[];
  /** Seen, but no such record was expected at all. */
  unexpected: CollectedLogRecord[];
  /** Matched, with some field wrong: the record and what was wrong. */
  wrongField: { record: CollectedLogRecord; problems: string[] }[];
  /** The largest |Timestamp − packet capture time| of the matched records, in milliseconds (0 when none matched). */
  maxTimestampOffsetMillis: number;
}

/** A record's Timestamp minus its packet's capture time, in milliseconds. */
export function timestampOffsetMillis(e: ExpectedRecord, r: CollectedLogRecord): number {
  // an unanswered attempt has no packet to be compared with
  if (e.packetTime === undefined) return 0;
  // microseconds, as the capture gives them; an integer below 2^53 until the year 2255
  const packetUs = BigInt(Math.round(e.packetTime * 1e6));
  return Number(r.timeUnixNano - packetUs * 1000n) / 1e6;
}

const matchKey = (eventName: string, direction: unknown, srcPort: unknown, dstPort: unknown) => `${eventName}|${direction}|${srcPort}|${dstPort}`;

/** What is wrong in record r, expected e (empty: nothing). */
export function fieldProblems(e: ExpectedRecord, r: CollectedLogRecord): string[] {
  const a = r.attributes;
  const outgoing = e.direction === 'outgoing';
  const want: Record<string, unknown> = {
    'source.address': e.srcAddr,
    'destination.address': e.dstAddr,
    'client.address': e.srcAddr,
    'client.port': e.srcPort,
    'server.port': e.dstPort,
    'network.transport': 'tcp',
    'network.type': e.networkType,
    'network.local.address': outgoing ? e.srcAddr : e.dstAddr,
    'network.local.port': outgoing ? e.srcPort : e.dstPort,
    'network.peer.address': outgoing ? e.dstAddr : e.srcAddr,
    'network.peer.port': outgoing ? e.dstPort : e.srcPort,
  };
  if (e.eventName === 'flowtap.flow.end') {
    want['flowtap.flow.close_reason'] = e.closeReason;
    want['flowtap.flow.closed_by'] = e.closedBy;
  }
  if (e.eventName === 'flowtap.flow.attempt') want['flowtap.flow.attempt.syn_count'] = e.syns;
  const problems: string[] = [];
  for (const [k, v] of Object.entries(want)) if (a[k] !== v) problems.push(`${k}=${String(a[k])} (want ${String(v)})`);
  if (e.attemptReasons !== undefined && !e.attemptReasons.includes(String(a['flowtap.flow.attempt.reason']))) {
    problems.push(`flowtap.flow.attempt.reason=${String(a['flowtap.flow.attempt.reason'])} (want ${e.attemptReasons.join(' or ')})`);
  }
  const offset = timestampOffsetMillis(e, r);
  if (!(Math.abs(offset) <= TIMESTAMP_BOUND_MILLIS)) {
    problems.push(`timestamp ${r.timeUnixNano} is ${offset.toFixed(3)} ms from its packet's capture time ${e.packetTime} (bound ${TIMESTAMP_BOUND_MILLIS} ms)`);
  }
  if (e.destinationDomains !== undefined) {
    const got = JSON.stringify(a['flowtap.flow.destination.domains']);
    if (got !== JSON.stringify(e.destinationDomains)) problems.push(`flowtap.flow.destination.domains=${got} (want ${JSON.stringify(e.destinationDomains)})`);
    const server = e.destinationDomains[0] ?? e.dstAddr;
    if (a['server.address'] !== server) problems.push(`server.address=${String(a['server.address'])} (want ${server})`);
  } else if (a['server.address'] !== e.dstAddr && !(Array.isArray(a['flowtap.flow.destination.domains']) && a['flowtap.flow.destination.domains'].length > 0)) {
    problems.push(`server.address=${String(a['server.address'])} (want ${e.dstAddr})`);
  }
  if (e.eventName === 'flowtap.flow.end' && !(typeof a['flowtap.flow.duration'] === 'number' && a['flowtap.flow.duration'] >= 0)) {
    problems.push(`flowtap.flow.duration=${String(a['flowtap.flow.duration'])}`);
  }
  return problems;
}

/**
 * Matches seen records to expected ones by event, direction and both ports
 * (the same 4-tuple reopened matches in order), then checks the other fields.
 */
export function compare(expected: readonly ExpectedRecord[], seen: readonly CollectedLogRecord[]): Comparison {
  const pending = new Map<string, ExpectedRecord[]>();
  for (const e of expected) {
    const k = matchKey(e.eventName, e.direction, e.srcPort, e.dstPort);
    pending.set(k, [...(pending.get(k) ?? []), e]);
  }
  const expectedKeys = new Set(pending.keys());
  const result: Comparison = {
    expected: expected.length,
    seen: seen.length,
    matched: 0,
    missing: [],
    duplicate: [],
    unexpected: [],
    wrongField: [],
    maxTimestampOffsetMillis: 0,
  };
  const ordered = [...seen].sort((x, y) => (x.timeUnixNano < y.timeUnixNano ? -1 : x.timeUnixNano > y.timeUnixNano ? 1 : 0));
  for (const r of ordered) {
    const a = r.attributes;
    const k = matchKey(r.eventName, a['flowtap.flow.direction'], a['source.port'], a['destination.port']);
    const queue = pending.get(k);
    if (queue === undefined || queue.length === 0) {
      (expectedKeys.has(k) ? result.duplicate : result.unexpected).push(r);
      continue;
    }
    const e = queue.shift()!;
    result.matched++;
    result.maxTimestampOffsetMillis = Math.max(result.maxTimestampOffsetMillis, Math.abs(timestampOffsetMillis(e, r)));
    const problems = fieldProblems(e, r);
    if (problems.length > 0) result.wrongField.push({ record: r, problems });
  }
  for (const queue of pending.values()) result.missing.push(...queue);
  return result;
}

type FlowEventName = ExpectedRecord['eventName'];

/**
 * The loss rule: which missing records each of flowtap's loss counters can
 * stand for. A missing record is accepted only as one unit of a counter that
 * names that loss; each unit stands for one record. Flow counters never
 * excuse a wrong DNS name, and the DNS counter never a missing record.
 */
export const LOSS_RULES: Readonly<Record<string, { explains: readonly FlowEventName[]; why: string }>> = {
  // the kernel: a flow the table could not hold is still begun (better a
  // possible duplicate than a missed flow), but its end is never sent; an
  // evicted flow had its begin sent and loses its end
  flow_table_full: { explains: ['flowtap.flow.end'], why: 'flow table full: the begin is sent, the end never' },
  flow_table_evictions: { explains: ['flowtap.flow.end'], why: 'evicted from the flow table before its end' },
  ringbuf_full_flow: { explains: ['flowtap.flow.begin', 'flowtap.flow.end'], why: 'a flow record the full ring buffer refused' },
  // the addon and user space
  handoff_dropped_records: { explains: ['flowtap.flow.begin', 'flowtap.flow.end'], why: 'a record the addon dropped before JavaScript took it' },
  bad_records: { explains: ['flowtap.flow.begin', 'flowtap.flow.end'], why: 'a record user space could not read' },
  // the exporter
  droppedRecords: { explains: ['flowtap.flow.begin', 'flowtap.flow.end'], why: 'a record the full export queue dropped' },
  failedRecords: { explains: ['flowtap.flow.begin', 'flowtap.flow.end'], why: 'a record whose export failed for good' },
};

/** DNS answers lost before user space: the one counter that excuses a flow with the wrong (or no) destination name. */
export const DNS_LOSS_COUNTER = 'ringbuf_full_dns';

const DOMAIN_PROBLEM = /^(flowtap\.flow\.destination\.domains|server\.address)=/;

export interface Accounting {
  /** Counter → records it accounts for (missing records; for DNS_LOSS_COUNTER, records with a wrong name). */
  accountedFor: Record<string, number>;
  /** Missing records no counter names. */
  missing: ExpectedRecord[];
  /** Wrong-field records not excused by DNS_LOSS_COUNTER. */
  wrongField: Comparison['wrongField'];
}

/**
 * Applies the loss rule to a comparison, given flowtap's counters (the probe's
 * and the exporter's, by name). Counters that name one kind of record are
 * used before those that name both, so a general counter is kept for the
 * records only it can explain.
 */
export function accountFor(c: Comparison, counters: Readonly<Record<string, number | undefined>>): Accounting {
  const budget = new Map<string, number>();
  for (const name of Object.keys(LOSS_RULES)) if ((counters[name] ?? 0) > 0) budget.set(name, counters[name]!);
  const order = Object.entries(LOSS_RULES).sort((x, y) => x[1].explains.length - y[1].explains.length);
  const accountedFor: Record<string, number> = {};
  const missing: ExpectedRecord[] = [];
  for (const e of c.missing) {
    const rule = order.find(([name, r]) => r.explains.includes(e.eventName) && (budget.get(name) ?? 0) > 0);
    if (rule === undefined) {
      missing.push(e);
      continue;
    }
    budget.set(rule[0], budget.get(rule[0])! - 1);
    accountedFor[rule[0]] = (accountedFor[rule[0]] ?? 0) + 1;
  }
  // a lost answer leaves every flow to its addresses unnamed: any number of them
  const dnsLost = (counters[DNS_LOSS_COUNTER] ?? 0) > 0;
  const wrongField = c.wrongField.filter((w) => !(dnsLost && w.problems.every((p) => DOMAIN_PROBLEM.test(p))));
  if (wrongField.length < c.wrongField.length) accountedFor[DNS_LOSS_COUNTER] = c.wrongField.length - wrongField.length;
  return { accountedFor, missing, wrongField };
}

/** One row of docs/accuracy.md. */
export interface ScenarioResult {
  /** Stable id, e.g. "ipv4-veth-client". */
  id: string;
  /** What the scenario does, one line. */
  title: string;
  /** The ground truth: flows established on the wire during the scenario (both records of a flow seen twice count once). */
  flows: number;
  expected: number;
  seen: number;
  missing: number;
  duplicate: number;
  unexpected: number;
  wrongField: number;
  /** Records that a flowtap counter accounts for, by counter (accountFor). */
  accountedFor: Record<string, number>;
  /** The largest |Timestamp − packet capture time| of the matched records, in milliseconds. */
  maxTimestampOffsetMillis?: number;
  /** Packets the capture lost (the oracle is incomplete when > 0). */
  captureDropped: number;
  /** Anything the reader should know (counters that moved, what the wire showed). */
  notes: string;
  durationMillis: number;
}

/** RESULTS_FILE: the results, and the rules they were judged by. */
export interface ResultsDoc {
  generatedAt: string;
  kernel: string;
  timestampBoundMillis: number;
  lossRules: typeof LOSS_RULES;
  dnsLossCounter: string;
  results: ScenarioResult[];
}

/** Adds or replaces one scenario's result in RESULTS_FILE (jest runs the files one by one). */
export function writeResult(result: ScenarioResult): void {
  const file = RESULTS_FILE;
  let doc: ResultsDoc = { generatedAt: '', kernel: '', timestampBoundMillis: 0, lossRules: {}, dnsLossCounter: '', results: [] };
  if (existsSync(file)) {
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as typeof doc;
    } catch {
      /* a broken file is replaced */
    }
  }
  const at = doc.results.findIndex((r) => r.id === result.id);
  if (at >= 0)
    doc.results[at] = result; // a re-run keeps its row's place
  else doc.results.push(result);
  doc.generatedAt = new Date().toISOString();
  doc.kernel = readKernelRelease();
  // the rules the results were judged by, for the report to state them as they are
  doc.timestampBoundMillis = TIMESTAMP_BOUND_MILLIS;
  doc.lossRules = LOSS_RULES;
  doc.dnsLossCounter = DNS_LOSS_COUNTER;
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
}

function readKernelRelease(): string {
  try {
    return readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** A short text of a comparison's problems, for a failing assertion. */
export function explain(c: Comparison, max = 5): string {
  const lines: string[] = [`expected ${c.expected}, seen ${c.seen}, matched ${c.matched}`];
  const show = (label: string, items: unknown[]) => {
    if (items.length > 0)
      lines.push(
        `${label} (${items.length}): ${items
          .slice(0, max)
          .map((x) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))
          .join('\n  ')}`,
      );
  };
  show('missing', c.missing);
  show(
    'duplicate',
    c.duplicate.map((r) => ({ eventName: r.eventName, ...r.attributes })),
  );
  show(
    'unexpected',
    c.unexpected.map((r) => ({ eventName: r.eventName, ...r.attributes })),
  );
  show(
    'wrong field',
    c.wrongField.map((w) => w.problems),
  );
  return lines.join('\n');
}
