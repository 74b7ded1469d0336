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
  eventName: 'flowtap.flow.begin' | 'flowtap.flow.end';
  direction: Direction;
  srcAddr: string;
  srcPort: number;
  dstAddr: string;
  dstPort: number;
  networkType: 'ipv4' | 'ipv6';
  closeReason?: 'fin' | 'rst';
  closedBy?: 'source' | 'destination';
  /** When given, flowtap.flow.destination.domains must equal it (and server.address its first name). */
  destinationDomains?: string[];
}

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
      out.push({ eventName: 'flowtap.flow.begin', direction, ...base });
      if (f.end !== undefined) out.push({ eventName: 'flowtap.flow.end', direction, ...base, closeReason: f.end.reason, closedBy: f.end.by });
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
  const problems: string[] = [];
  for (const [k, v] of Object.entries(want)) if (a[k] !== v) problems.push(`${k}=${String(a[k])} (want ${String(v)})`);
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
  const result: Comparison = { expected: expected.length, seen: seen.length, matched: 0, missing: [], duplicate: [], unexpected: [], wrongField: [] };
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
    const problems = fieldProblems(e, r);
    if (problems.length > 0) result.wrongField.push({ record: r, problems });
  }
  for (const queue of pending.values()) result.missing.push(...queue);
  return result;
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
  /** Missing records that a flowtap counter accounts for, by counter. */
  accountedFor: Record<string, number>;
  /** Packets the capture lost (the oracle is incomplete when > 0). */
  captureDropped: number;
  /** Anything the reader should know (counters that moved, what the wire showed). */
  notes: string;
  durationMillis: number;
}

/** Adds or replaces one scenario's result in RESULTS_FILE (jest runs the files one by one). */
export function writeResult(result: ScenarioResult): void {
  const file = RESULTS_FILE;
  let doc: { generatedAt: string; kernel: string; results: ScenarioResult[] } = { generatedAt: '', kernel: '', results: [] };
  if (existsSync(file)) {
    try {
      doc = JSON.parse(readFileSync(file, 'utf8')) as typeof doc;
    } catch {
      /* a broken file is replaced */
    }
  }
  const at = doc.results.findIndex((r) => r.id === result.id);
  if (at >= 0) doc.results[at] = result; // a re-run keeps its row's place
  else doc.results.push(result);
  doc.generatedAt = new Date().toISOString();
  doc.kernel = readKernelRelease();
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
    if (items.length > 0) lines.push(`${label} (${items.length}): ${items.slice(0, max).map((x) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).join('\n  ')}`);
  };
  show('missing', c.missing);
  show('duplicate', c.duplicate.map((r) => ({ eventName: r.eventName, ...r.attributes })));
  show('unexpected', c.unexpected.map((r) => ({ eventName: r.eventName, ...r.attributes })));
  show('wrong field', c.wrongField.map((w) => w.problems));
  return lines.join('\n');
}
