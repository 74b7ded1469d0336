/**
 * Writes docs/benchmarks.md from one run's results (bench/out/results.json)
 * and the hand-written findings in bench/notes.md. Pure apart from the
 * machine description, which the caller collects.
 *
 *   node bench/report.mts [results.json]     the markdown of a results file, on stdout
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnRateResult } from './conn-rate.mts';
import type { PathResult } from './export-path.mts';
import type { KernelCostRep, KernelCostSummary } from './kernel-cost.mts';
import { POLL_MILLIS, COLLECTOR_FLUSH_MILLIS, REPLAY_DRAIN_MILLIS, type LatencyResult, type LatencyRun, type LatencySetting } from './latency.mts';
import { OUT, ROOT, summarize, type Summary } from './lib.mts';
import { MAX_LAG_SECONDS, RSS_RATE, type CeilingResult } from './pipeline-ceiling.mts';
import type { QueueMemoryResult } from './queue-memory.mts';

/** The parts bench/run.mts can run (BENCH_ONLY), in the order it runs them. */
export const PARTS = ['kernel', 'conn', 'ceiling', 'export-path', 'queue-memory', 'latency'] as const;
export type Part = (typeof PARTS)[number];

export interface Machine {
  date: string;
  nproc: number;
  kernel: string;
  cpu: string;
  memory: string;
  virtualization: string;
  node: string;
  tools: Record<string, string>;
  /** git HEAD, and whether bpf/ native/ src/ differ from it. */
  revision: string;
  /** /proc/loadavg's 1, 5 and 15 minute averages when the run started and ended. */
  loadStart: string;
  loadEnd?: string;
}

export interface BenchOptions {
  /** Repetitions of every measurement (part 1: kernelReps). */
  reps: number;
  kernelReps: number;
  kernelSeconds: number;
  connSeconds: number;
  workers: number;
  ceilingSeconds: number;
  ceilingRates: number[];
  exportPathRate: number;
  exportPathSeconds: number;
  queueMemoryRate: number;
  latencySeconds: number;
}

export interface BenchResults {
  machine: Machine;
  options: BenchOptions;
  /** The parts this run measured. */
  parts: Part[];
  /** Load average (1/5/15 min) when each part started and ended. */
  load: Partial<Record<Part, { start: string; end: string }>>;
  durationSeconds: number;
  kernel?: { reps: KernelCostRep[]; summaries: KernelCostSummary[] };
  conn?: ConnRateResult[];
  ceiling?: CeilingResult;
  exportPath?: PathResult;
  queueMemory?: QueueMemoryResult;
  latency?: LatencyResult;
}

/** Targets (from the issue). */
export const TARGET_BULK_RATIO = 1.25; // kernel ns/packet, bulk, over the empty program's
export const TARGET_RATE_RATIO = 0.97; // connections/s over no monitor's; and ahead of every peer
export const TARGET_CEILING = 150_000; // events/s with zero loss, flowtap on one CPU
export const TARGET_RSS_MB = 100; // at 50 000 events/s; MB = 10^6 bytes
export const TARGET_P99_MILLIS: Partial<Record<LatencySetting['label'], number>> = { defaults: 1500, 'low latency': 100 };

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');
const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');
/** "median (min …)" */
const mm = (s: Summary, fmt: (x: number) => string): string => `${fmt(s.median)} (min ${fmt(s.min)})`;
/** "median (min … max)" */
const mmr = (s: Summary, fmt: (x: number) => string): string => `${fmt(s.median)} (${fmt(s.min)} … ${fmt(s.max)})`;
const yesNo = (ok: boolean): string => (ok ? '**yes**' : '**no**');
const median = (values: number[]): number => summarize(values).median;
/** Three table cells: median | min | max. */
const cells = (s: Summary, fmt: (x: number) => string): string => `${fmt(s.median)} | ${fmt(s.min)} | ${fmt(s.max)}`;
const mbCells = (s: Summary): string => cells(s, (x) => f(mb(x), 0));
/** MiB (what /proc reports, in KiB) to MB (10^6 bytes, the target's unit). */
const mb = (mib: number): number => (mib * 2 ** 20) / 1e6;
const ms = (v: number): string => (Number.isFinite(v) ? `${v < 100 ? v.toFixed(1) : int(v)} ms` : 'n/a');
const kilo = (v: number): string => `${int(v / 1000)}k`;

type Put = (...lines: string[]) => void;

const WORKLOAD_TITLE = {
  bulk: 'bulk transfer (iperf3)',
  churn: 'connection churn (loadgen tcp-client)',
  dns: 'DNS queries and answers (loadgen dns-client)',
} as const;

const PART_TITLE: Record<Part, string> = {
  kernel: '1, kernel cost per packet',
  conn: '2, connection-rate overhead',
  ceiling: '3a, pipeline ceiling and RSS',
  'export-path': '3b, export path vs the stock SDK path',
  'queue-memory': '3c, export-queue memory',
  latency: '4, latency',
};

/** bench/notes.md's sections by their `## <name>` heading (kernel, conn, pipeline, latency). */
export function parseNotes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const section of text.split(/^## /m).slice(1)) {
    const nl = section.indexOf('\n');
    out[section.slice(0, nl).trim()] = section.slice(nl + 1).trim();
  }
  return out;
}

function renderNotes(p: Put, notes: Record<string, string>, name: string): void {
  if (!notes[name]) return;
  p('**Findings** (hand-written, kept across runs in `bench/notes.md`):', '', notes[name], '');
}

function loadLine(r: BenchResults, ...parts: Part[]): string {
  const l = parts.map((x) => r.load[x]).filter((x) => x !== undefined);
  return l.length ? `Load average (1/5/15 min) at the start of this part ${l[0].start}, at its end ${l[l.length - 1].end}.` : '';
}

export function renderMarkdown(r: BenchResults, notes: Record<string, string> = {}): string {
  const out: string[] = [];
  const p: Put = (...lines) => void out.push(...lines);
  const m = r.machine;
  const missing = PARTS.filter((x) => !r.parts.includes(x));

  p(
    '# Benchmarks',
    '',
    '<!-- Generated by `make bench` (bench/run.mts, bench/report.mts, bench/notes.md). Do not edit by hand: the next run rewrites this file. -->',
    '',
    `Run of ${m.date} on ${m.nproc} CPUs (${m.cpu}; ${m.virtualization}), Linux ${m.kernel}, ${m.memory} RAM, Node.js ${m.node}.`,
    `flowtap ${m.revision}. Whole run: ${Math.round(r.durationSeconds)} s. Load average (1/5/15 min) at the start`,
    `${m.loadStart}, at the end ${m.loadEnd ?? 'n/a'} — other work may have shared the machine.`,
    ...(missing.length
      ? ['', `This run measured only part ${r.parts.map((x) => PART_TITLE[x]).join('; part ')} (BENCH_ONLY); \`make bench\` runs them all.`]
      : []),
    '',
    'Every figure is measured in the same run and repeated: flowtap next to an empty program on the same packets,',
    'next to no monitor and to its peers (interleaved), next to the stock OpenTelemetry SDK path, or next to its',
    'own defaults. Each cell gives the median over the repetitions and the minimum (for ratios: the minimum and the',
    'maximum). A target is judged on the median, from the figures in its row. Absolute numbers are only context:',
    'this machine is small and may be shared; the ratios and the pass/fail of each target are the result.',
    '',
  );

  // --- summary table
  p('## Summary', '', '| metric | flowtap | baseline / peers | ratio | target | met? |', '|---|---|---|---|---|---|');
  const ks = r.kernel?.summaries;
  if (ks) {
    for (const s of ks) {
      const target = s.workload === 'bulk' ? `≤ ${f(TARGET_BULK_RATIO)}×` : 'none (reported)';
      const met = s.workload === 'bulk' ? yesNo(s.ratio.median <= TARGET_BULK_RATIO) : '—';
      p(
        `| kernel ns per packet, ${WORKLOAD_TITLE[s.workload]} | ${mm(s.flowtapNs, (x) => f(x, 1))} ns | empty program ${mm(s.emptyNs, (x) => f(x, 1))} ns | ${mmr(s.ratio, (x) => f(x))}× | ${target} | ${met} |`,
      );
    }
  }
  for (const c of r.conn ?? []) renderConnSummary(p, c);
  if (r.ceiling) renderCeilingSummary(p, r.ceiling);
  if (r.exportPath) renderExportPathSummary(p, r.exportPath);
  if (r.queueMemory) {
    const q = r.queueMemory;
    p(`| RSS per record held while the collector is away, bytes | ${mm(q.bytesPerHeldRecord, int)} | — | — | none (reported) | — |`);
  }
  if (r.latency) renderLatencySummary(p, r.latency);
  p('');

  if (ks && r.kernel) renderKernel(p, r, ks);
  if (r.kernel) renderNotes(p, notes, 'kernel');
  if (r.conn?.length) {
    renderConn(p, r, r.conn);
    renderNotes(p, notes, 'conn');
  }
  if (r.ceiling || r.exportPath || r.queueMemory) {
    p('## 3. Pipeline: ceiling, memory, export path', '');
    p(
      'User space alone: the real CLI with `--replay synthetic:<rate>` — flow records in the ring-buffer layout of',
      '`bpf/flowtap.h`, made by `src/kernel/replay.ts` at `<rate>` in wall-clock time and lost (counted as `ringbuf_full_flow`)',
      'when flowtap falls a ring buffer behind — through the production decode → map → export queue → OTLP/gRPC,',
      'pinned to CPU 0 with taskset; the real collector on the last CPU. No kernel programs: parts 1 and 2 measure those.',
      '',
    );
    if (r.ceiling) renderCeiling(p, r, r.ceiling);
    if (r.exportPath) renderExportPath(p, r, r.exportPath);
    if (r.queueMemory) renderQueueMemory(p, r, r.queueMemory);
    renderNotes(p, notes, 'pipeline');
  }
  if (r.latency) {
    renderLatency(p, r, r.latency);
    renderNotes(p, notes, 'latency');
  }
  renderMethod(p, r);
  return out.join('\n') + '\n';
}

const PEER_TITLE = { conntrack: '`conntrack -E`', tcpdump: 'tcpdump (SYN-ACK filter)', bpftrace: 'bpftrace (inet_sock_set_state)' } as const;

/** Per repetition: value(the run `isA` picks) / value(the run `isB` picks), over the repetitions that have both. */
function ratioPerRep<T extends { rep: number }>(runs: T[], isA: (x: T) => boolean, isB: (x: T) => boolean, value: (x: T) => number): Summary {
  const reps = [...new Set(runs.map((x) => x.rep))];
  const values = reps
    .map((rep) => {
      const ra = runs.find((x) => x.rep === rep && isA(x));
      const rb = runs.find((x) => x.rep === rep && isB(x));
      return ra && rb ? value(ra) / value(rb) : NaN;
    })
    .filter(Number.isFinite);
  return summarize(values);
}

function renderKernel(p: Put, r: BenchResults, k: KernelCostSummary[]): void {
  const reps = r.kernel!.reps;
  p(
    '## 1. Kernel cost per packet',
    '',
    "flowtap's `cgroup_skb` ingress and egress programs and an empty `cgroup_skb` program (`bench/empty.bpf.c`,",
    '`return 1`) are attached to the same throwaway cgroup **at the same time**, so each packet of the workload',
    "runs through both; with `kernel.bpf_stats_enabled=1` the kernel sums each program's `run_time_ns` and",
    "`run_cnt`. The figure is flowtap's ns per run over the empty program's ns per run, on the same packets in",
    "the same seconds (the run counts are checked to match). The empty program's time is the floor every",
    "cgroup_skb program pays here: the call and bpf_stats' own two clock reads.",
    '',
    'The programs of one cgroup run in attach order, and whichever runs first is measurably slower (it pays',
    'for the cold start of the hook), so a third, **lead** empty program is attached first and absorbs that;',
    'flowtap and the measured empty program follow it in an order that alternates between repetitions',
    "(even: empty then flowtap; odd: flowtap then empty). The lead's own ns per run is shown for reference.",
    '',
    '| workload | hook | flowtap ns/run | empty ns/run | ratio | lead ns/run | runs per rep | IRQ-work interrupts per event |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const s of k) {
    const rs = reps.filter((x) => x.workload === s.workload);
    for (const hook of ['both', 'ingress', 'egress'] as const) {
      const ns = (pair: KernelCostRep['flowtap']) =>
        hook === 'both'
          ? (pair.ingress.runTimeNs + pair.egress.runTimeNs) / (pair.ingress.runCount + pair.egress.runCount)
          : pair[hook].runTimeNs / pair[hook].runCount;
      const fl = summarize(rs.map((x) => ns(x.flowtap)));
      const em = summarize(rs.map((x) => ns(x.empty)));
      const le = summarize(rs.map((x) => ns(x.lead)));
      const ratio = hook === 'both' ? s.ratio : hook === 'ingress' ? s.ratioIngress : s.ratioEgress;
      const runs = summarize(rs.map((x) => (hook === 'both' ? x.flowtap.ingress.runCount + x.flowtap.egress.runCount : x.flowtap[hook].runCount)));
      const events = (x: KernelCostRep) => (x.counters.flow_begin ?? 0) + (x.counters.flow_end ?? 0) + (x.counters.dns ?? 0);
      // Only where flowtap made events: elsewhere the count is other traffic's.
      const iwi = hook !== 'both' ? '' : median(rs.map(events)) < 1000 ? '—' : f(median(rs.map((x) => x.irqWork / events(x))), 2);
      p(
        `| ${hook === 'both' ? WORKLOAD_TITLE[s.workload] : ''} | ${hook} | ${mm(fl, (x) => f(x, 1))} | ${mm(em, (x) => f(x, 1))} | ${mmr(ratio, (x) => f(x))}× | ${f(le.median, 1)} | ${int(runs.median)} | ${iwi} |`,
      );
    }
  }
  p('', 'Per repetition (ratio, both hooks; order; what the workload did):', '');
  for (const s of k) {
    const rs = reps.filter((x) => x.workload === s.workload);
    const items = rs.map((x, i) => {
      const load = Object.entries(x.load)
        .map(([key, v]) => `${key} ${typeof v === 'number' ? (key === 'bitsPerSecond' ? `${f(v / 1e9, 1)}G` : int(v)) : v}`)
        .join(', ');
      return `${f(s.ratio.values[i], 3)} (${x.order}; ${load})`;
    });
    p(`- ${s.workload}: ${items.join('; ')}`);
  }
  const extraPer = (x: KernelCostRep, done: number) => {
    const run = (pair: KernelCostRep['flowtap']) => pair.ingress.runTimeNs + pair.egress.runTimeNs;
    const runs = x.flowtap.ingress.runCount + x.flowtap.egress.runCount;
    // flowtap's time over the empty program's for the same runs, per unit of work
    return (run(x.flowtap) - (run(x.empty) / (x.empty.ingress.runCount + x.empty.egress.runCount)) * runs) / done;
  };
  const churn = reps.filter((x) => x.workload === 'churn' && Number(x.load.connections) > 0);
  const dns = reps.filter((x) => x.workload === 'dns' && Number(x.load.answers) > 0);
  if (churn.length && dns.length) {
    p(
      '',
      `Per unit of work, flowtap's programs spend ${f(median(churn.map((x) => extraPer(x, Number(x.load.connections)))) / 1000, 2)} µs more than the empty program per`,
      `connection (churn) and ${f(median(dns.map((x) => extraPer(x, Number(x.load.answers)))) / 1000, 2)} µs more per DNS exchange, a query and its answer (medians over the repetitions).`,
    );
  }
  const mismatch = Math.max(...k.map((s) => s.runCountMismatch));
  p(
    '',
    `Largest difference between flowtap's and the empty program's run counts in a repetition: ${f(mismatch * 100, 3)}% (both saw the same packets).`,
    'IRQ-work interrupts (`IWI` in /proc/interrupts, all CPUs, during the workload) per flowtap event: each is one',
    'ring-buffer wake-up of the sleeping reader thread, delivered as a self-IPI — costly inside a VM.',
    '',
    loadLine(r, 'kernel'),
    '',
  );
}

export const VARIANT_TITLE: Record<string, string> = {
  shared: 'all CPUs shared',
  split: 'load on its own CPUs, monitor + collector on the last CPU',
};

const variantTitle = (c: ConnRateResult): string =>
  c.options.monitorCpus
    ? `load on CPU ${c.options.workloadCpus}, monitor + collector on CPU ${c.options.monitorCpus}`
    : (VARIANT_TITLE[c.options.label] ?? c.options.label);

function renderConnSummary(p: Put, c: ConnRateResult): void {
  const by = (mode: string) => c.summaries.find((s) => s.mode === mode)!;
  const ft = by('flowtap');
  const none = by('none');
  const v = variantTitle(c);
  p(
    `| connections/s, ${v} | ${mm(ft.rate, int)} | no monitor ${mm(none.rate, int)} | ${mmr(ft.ratio, (x) => f(x, 3))} | ≥ ${TARGET_RATE_RATIO} | ${yesNo(ft.ratio.median >= TARGET_RATE_RATIO)} |`,
  );
  for (const peer of ['conntrack', 'tcpdump', 'bpftrace'] as const) {
    const ps = by(peer);
    const vs = ratioPerRep(
      c.runs,
      (x) => x.mode === 'flowtap',
      (x) => x.mode === peer,
      (x) => x.rate,
    );
    p(
      `| connections/s vs ${PEER_TITLE[peer]}, ${v} | ${mmr(ft.ratio, (x) => f(x, 3))} of no monitor | ${mmr(ps.ratio, (x) => f(x, 3))} of no monitor | flowtap/${peer} ${mmr(vs, (x) => f(x, 3))} | > 1 (ahead) | ${yesNo(vs.median > 1)} |`,
    );
  }
  p(
    `| monitor CPU ms per 1000 connections, ${v} | ${mm(ft.cpuMsPer1000, (x) => f(x, 1))} (+ collector ${mm(ft.collectorCpuMsPer1000, (x) => f(x, 1))}) | conntrack ${mm(by('conntrack').cpuMsPer1000, (x) => f(x, 1))}, tcpdump ${mm(by('tcpdump').cpuMsPer1000, (x) => f(x, 1))}, bpftrace ${mm(by('bpftrace').cpuMsPer1000, (x) => f(x, 1))} | — | none (reported) | — |`,
  );
  const delivered = summarize(c.runs.filter((x) => x.mode === 'flowtap').map((x) => x.captured / (2 * x.connections)));
  p(`| flowtap records at the collector / expected, ${v} | ${mmr(delivered, (x) => `${f(x * 100, 1)}%`)} | 2 a connection | | none (reported) | — |`);
}

function renderConn(p: Put, r: BenchResults, results: ConnRateResult[]): void {
  const first = results[0].options;
  p(
    '## 2. Connection-rate overhead',
    '',
    `\`loadgen tcp-client\` (${first.workers} processes, in a throwaway cgroup) opens a TCP connection to \`loadgen tcp-server\``,
    `on 127.0.0.1, waits for the server's FIN, closes, and again, for ${first.seconds} s — under each monitor in turn. A`,
    'repetition runs every mode once, in an order rotated by one each repetition; each ratio is over the same',
    "repetition's no-monitor rate. flowtap watches the client's cgroup (the sidecar case: one flow a connection,",
    'a `flowtap.flow.begin` and a `flowtap.flow.end` record); the peers watch the whole host. The collector runs through every',
    "mode, so what it costs to receive flowtap's records is charged to flowtap's rate.",
    '',
    'Two placements, each a full set of repetitions: **all CPUs shared** (load generator, monitor and collector',
    'compete for every CPU: the figure the target is written for, and on a machine this small it mostly measures',
    'how much CPU the monitor burns) and **split** (load generator on all CPUs but the last, monitor and collector',
    'pinned to the last with taskset: what the workload itself pays — kernel hooks, wake-ups, cache — when the',
    'monitor has a CPU of its own, as a sidecar with its own CPU request would).',
    '',
    "CPU is the monitor process's own utime+stime from just before the load until it has caught up (flowtap: every",
    'record of the run at the collector, or 3 s without progress), per 1000 connections. Kernel work done in the',
    "load generator's context (flowtap's and bpftrace's BPF programs, conntrack's hooks, the packet tap) is not in",
    'it; it shows in the rate.',
    '',
  );
  for (const c of results) {
    const { runs, summaries } = c;
    p(
      `### ${variantTitle(c)}`,
      '',
      '| mode | connections/s | ratio to no monitor | monitor CPU ms / 1000 conn | collector CPU ms / 1000 conn | captured per connection | lost | catch-up s |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const x of summaries) {
      const rs = runs.filter((y) => y.mode === x.mode);
      const catchUp = median(rs.map((y) => y.catchUpSeconds));
      const dash = x.mode === 'none';
      p(
        `| ${x.mode} | ${mm(x.rate, int)} | ${mmr(x.ratio, (v) => f(v, 3))} | ${dash ? '—' : mm(x.cpuMsPer1000, (v) => f(v, 1))} | ${mm(x.collectorCpuMsPer1000, (v) => f(v, 1))} | ${dash ? '—' : f(x.capturedPerConnection.median, 2)} | ${dash ? '—' : int(x.lost)} | ${dash ? '—' : f(catchUp, 1)} |`,
      );
    }
    p('', 'Per repetition (connections/s, in the order the modes ran):', '');
    const reps = [...new Set(runs.map((x) => x.rep))];
    for (const rep of reps) {
      const rs = runs.filter((x) => x.rep === rep).sort((a, b) => a.position - b.position);
      p(`- rep ${rep + 1}: ${rs.map((x) => `${x.mode} ${int(x.rate)}`).join(', ')}`);
    }
    const notes = runs.filter((x) => x.mode === 'flowtap' && x.notes).map((x) => `rep ${x.rep + 1}: ${x.notes}`);
    if (notes.length) p('', "flowtap's counters per repetition:", '', ...notes.map((n) => `- ${n}`));
    if (!c.options.monitorCpus) {
      // The CPU arithmetic behind the shared placement's ratio.
      const none = summaries.find((x) => x.mode === 'none')!;
      const ft = summaries.find((x) => x.mode === 'flowtap')!;
      const nproc = r.machine.nproc;
      const budget = (nproc * 1e6) / none.rate.median; // µs of CPU a connection takes, all CPUs busy
      const own = ft.cpuMsPer1000.median + ft.collectorCpuMsPer1000.median; // ms/1000 = µs per connection
      const allowed = (budget * (1 - TARGET_RATE_RATIO)) / TARGET_RATE_RATIO;
      p(
        '',
        `Reading it: with every CPU busy, a connection costs ${f(budget, 1)} µs of CPU without a monitor (${nproc} CPUs / ${int(none.rate.median)} per s).`,
        `flowtap's process adds ${f(ft.cpuMsPer1000.median, 1)} µs and the collector ${f(ft.collectorCpuMsPer1000.median, 1)} µs a connection, which alone predicts a`,
        `ratio of ${f(budget / (budget + own), 2)} (measured: ${f(ft.ratio.median, 2)}; the rest is kernel-side work and contention). A ratio of ${TARGET_RATE_RATIO} leaves ${f(allowed, 1)} µs a connection`,
        "for flowtap's kernel programs, its process and its collector together.",
      );
    }
    const errors = summaries.filter((x) => x.errors > 0).map((x) => `${x.mode} ${x.errors}`);
    if (errors.length) p('', `Load generator errors (failed connects/reads): ${errors.join(', ')}.`);
    p('');
  }
  p(
    'captured: flowtap — records the collector logged (2 expected a connection); conntrack — event lines (NEW, and',
    'DESTROY when a reused 4-tuple replaces a TIME_WAIT entry); tcpdump — SYN-ACK packets; bpftrace — lines (one per',
    'socket reaching ESTABLISHED: 2 a connection). lost: flowtap — ring buffer full + flow table full + hand-off',
    'drops + records the exporter dropped or failed (from its `stopped` log line); tcpdump — dropped by kernel;',
    'conntrack — ENOBUFS warnings; bpftrace — lost events.',
    '',
    `Collector: ${results[0].collectorVersion}.`,
    '',
    loadLine(r, 'conn'),
    '',
  );
}

// --- part 3 ------------------------------------------------------------------------------------

function renderCeilingSummary(p: Put, c: CeilingResult): void {
  const at = Number.isFinite(c.cpuCoresAtCeiling.median) ? ` at ${f(c.cpuCoresAtCeiling.median)} cores` : '';
  p(
    `| highest steady rate with zero loss into the real collector, flowtap pinned to 1 CPU, events/s | ${c.ceiling.max === 0 ? 'no rate passed' : `${mm(c.ceiling, int)}${at}`} | — | — | ≥ ${int(TARGET_CEILING)} on ≤ 1 core | ${yesNo(c.ceiling.median >= TARGET_CEILING)} |`,
  );
  const metric = `RSS at ${int(RSS_RATE)} events/s, MB (max over a run)`;
  if (c.rssAt50k) {
    const ratio = c.rssAt50kOverIdle ? `${mmr(c.rssAt50kOverIdle, (x) => f(x))}×` : '—';
    p(
      `| ${metric} | ${mm(c.rssAt50k, (x) => f(mb(x), 0))} | near idle (${int(c.idleRate)}/s) ${mm(c.rssIdle, (x) => f(mb(x), 0))} | ${ratio} | ≤ ${TARGET_RSS_MB} MB | ${yesNo(mb(c.rssAt50k.median) <= TARGET_RSS_MB)} |`,
    );
  } else if (c.options.rates.includes(RSS_RATE)) {
    p(
      `| ${metric} | n/a: no run at ${int(RSS_RATE)}/s kept up | near idle (${int(c.idleRate)}/s) ${mm(c.rssIdle, (x) => f(mb(x), 0))} | — | ≤ ${TARGET_RSS_MB} MB | ${yesNo(false)} |`,
    );
  }
}

function renderCeiling(p: Put, r: BenchResults, c: CeilingResult): void {
  p(
    '### 3a. Highest steady rate with zero loss, on one CPU',
    '',
    'The collector is an otlp receiver → file exporter (protobuf, flush every 200 ms); after each run its file is',
    'read back and every record counted. A rate **passes** when, over the run: flowtap lost nothing (no ring-buffer',
    'loss, no queue drop, no failed export, no decode or processing error, every record exported — its `stopped`',
    "line, no shutdown timeout); the collector's file holds every record (distinct timestamps = records emitted);",
    `and flowtap kept up (records not yet exported, from its \`summary\` line each second, stayed under ${MAX_LAG_SECONDS} s of input`,
    'through the second half of the run). Each repetition first runs near idle (for the RSS baseline), then climbs',
    `${c.options.rates.map(kilo).join(', ')} events/s (${c.options.seconds} s each) until a rate fails; its ceiling is the last rate that passed.`,
    `RSS is VmRSS, sampled every 250 ms, the maximum over a run (at ${int(RSS_RATE)}/s: runs that passed only, a run that fell behind holds`,
    "its backlog); MB = 10^6 bytes. \"Other work on flowtap's CPU\" is that CPU's busy time (/proc/stat, steal included) less flowtap's own.",
    '',
    '| | median | min | max | target |',
    '|---|---|---|---|---|',
    `| highest rate with zero loss (events/s) | ${cells(c.ceiling, int)} | ≥ ${int(TARGET_CEILING)} |`,
    `| flowtap CPU at that rate (cores; pinned to one) | ${cells(c.cpuCoresAtCeiling, f)} | ≤ 1 |`,
    `| collector CPU at that rate (cores, its own CPU) | ${cells(c.collectorCpuCoresAtCeiling, f)} | |`,
    `| RSS near idle, ${int(c.idleRate)} events/s (MB) | ${mbCells(c.rssIdle)} | |`,
  );
  if (c.rssAt50k) p(`| RSS at ${int(RSS_RATE)} events/s (MB) | ${mbCells(c.rssAt50k)} | ≤ ${TARGET_RSS_MB} |`);
  if (c.cpuCoresAt50k) p(`| CPU at ${int(RSS_RATE)} events/s (cores) | ${cells(c.cpuCoresAt50k, f)} | |`);
  p('', `Ceiling per repetition: ${c.ceilings.map(int).join(', ')} events/s.`);

  // What the figures say about the gaps, from the figures.
  const reading: string[] = [];
  if (c.otherOnFlowtapCpu.median >= 0.05) {
    reading.push(
      `Other work (processes, interrupts, the hypervisor's steal) took ${f(c.otherOnFlowtapCpu.median)} of flowtap's CPU in the median run (up to ${f(c.otherOnFlowtapCpu.max)}): ` +
        'the ceiling is lower than flowtap alone on a quiet CPU would reach.',
    );
  }
  if (c.collectorCpuCoresAtCeiling.median >= 0.9) {
    reading.push(
      `At the ceiling the collector used ${f(c.collectorCpuCoresAtCeiling.median)} of its CPU: the rate that failed may have been the collector's limit as much as flowtap's.`,
    );
  } else if (c.cpuCoresAtCeiling.median >= 0.9) {
    reading.push(`At the ceiling flowtap used ${f(c.cpuCoresAtCeiling.median)} of its CPU: its own CPU per event is what sets the ceiling.`);
  }
  if (c.rssAt50k) {
    const at50 = mb(c.rssAt50k.median);
    const idle = mb(c.rssIdle.median);
    reading.push(
      `Of the ${f(at50, 0)} MB at ${int(RSS_RATE)} events/s, ${f(idle, 0)} MB is there near idle (the runtime, the SDK and gRPC, the DNS cache and flow buffers), ` +
        `${f(at50 - idle, 0)} MB comes with the rate` +
        (at50 > TARGET_RSS_MB ? `; the target needs ${f(at50 - TARGET_RSS_MB, 0)} MB less.` : '.'),
    );
  }
  if (reading.length) p('', `Reading it: ${reading.join(' ')}`);

  p(
    '',
    "| rep | rate (events/s) | result | flowtap CPU (cores) | other work on flowtap's CPU | collector CPU (cores) | RSS max / median (MB) | backlog max (s) |",
    '|---|---|---|---|---|---|---|---|',
  );
  const steps = [...c.idleSteps, ...c.steps].sort((a, b) => a.rep - b.rep || a.rate - b.rate);
  for (const s of steps) {
    p(
      `| ${s.rep} | ${int(s.rate)}${s.rate === c.idleRate ? ' (near idle)' : ''} | ${s.passed ? 'pass' : `fail: ${s.reason}`} | ${f(s.cpuCores)} | ${f(s.otherOnFlowtapCpu)} | ${f(s.collectorCpuCores)} | ` +
        `${f(mb(s.rssMaxMiB), 0)} / ${f(mb(s.rssMedianMiB), 0)} | ${f(s.maxLagSeconds)} |`,
    );
  }
  p('', loadLine(r, 'ceiling'), '');
}

function renderExportPathSummary(p: Put, e: PathResult): void {
  const stock = e.summaries[0];
  const best = e.summaries[e.summaries.length - 1];
  if (!best.ratioToStock) return;
  p(
    `| events per CPU-second at ${int(e.rate)}/s, ${best.variant} | ${mm(best.eventsPerCpuSecond, kilo)} | ${stock.variant}: ${mm(stock.eventsPerCpuSecond, kilo)} | ${mmr(best.ratioToStock, (x) => f(x))}× | none (reported) | — |`,
  );
}

function renderExportPath(p: Put, r: BenchResults, e: PathResult): void {
  p(
    '### 3b. Export path: the export queue vs the stock SDK path',
    '',
    `The same synthetic events (${int(e.rate)}/s, ${e.seconds} s a run) through the production pipeline into the same real collector,`,
    'each run its own process (`bench/export-path-harness.mts`) on CPU 0, the order of the variants rotated each repetition:',
    'the stock SDK path (`Logger.emit` with the flow attributes → `BatchLogRecordProcessor` → `OTLPLogExporter` over gRPC)',
    "and flowtap's export queue (each record encoded straight to OTLP protobuf → the SDK's gRPC export delegate). Events",
    "per CPU-second of the whole process (decode, map, export, GC); the ratio is to the stock path's run in the same repetition.",
    '',
    '| path | events per CPU-second | × the stock path | RSS max (MB) | lost |',
    '|---|---|---|---|---|',
  );
  for (const s of e.summaries) {
    const lost = e.runs.filter((x) => x.variant === s.variant).reduce((sum, x) => sum + x.lost, 0);
    p(
      `| ${s.variant} | ${mm(s.eventsPerCpuSecond, kilo)} | ${s.ratioToStock ? `${mmr(s.ratioToStock, (x) => f(x))}×` : '1'} | ${mm(s.rssMaxMiB, (x) => f(mb(x), 0))} | ${int(lost)} |`,
    );
  }
  for (const prof of e.profiles) {
    p('', `Where the CPU goes, ${prof.variant} (one more run under \`node --cpu-prof\`'s profiler; share of the non-idle samples):`, '');
    p('| | % |', '|---|---|');
    for (const x of prof.top) p(`| ${x.what} | ${f(x.percent, 1)} |`);
  }
  p('', loadLine(r, 'export-path'), '');
}

function renderQueueMemory(p: Put, r: BenchResults, q: QueueMemoryResult): void {
  const held120k = (q.bytesPerHeldRecord.median * 120_000) / 1e6;
  p(
    '### 3c. Export-queue memory while the collector is away',
    '',
    `flowtap (\`--replay synthetic:${q.rate}\`) exporting to a port nobody listens on: every record stays queued for a retry`,
    'until the default bound (200 000 records), then the oldest are dropped and counted. RSS and the records held',
    '(from the `summary` line) are sampled each second; the cost per held record is the RSS growth from the first second',
    'to the full queue over the records held then.',
    '',
    '| | median | min | max |',
    '|---|---|---|---|',
    `| RSS with the queue nearly empty (MB) | ${mbCells(q.rssStartMiB)} |`,
    `| RSS with the queue full (MB) | ${mbCells(q.rssFullMiB)} |`,
    `| RSS per record held (bytes) | ${cells(q.bytesPerHeldRecord, int)} |`,
    '',
    `A 60 s outage at 2 000 flows/s (120 000 records) so costs about ${f(held120k, 0)} MB on top of the steady RSS.`,
    '',
    loadLine(r, 'queue-memory'),
    '',
  );
}

// --- part 4 ------------------------------------------------------------------------------------

const settingTitle = (l: LatencyResult, label: LatencySetting['label'], source: 'kernel' | 'replay'): string => {
  const s = l.settings.find((x) => x.label === label)!;
  const what = [...Object.entries(s.env).map(([key, v]) => `${key}=${v}`), ...(source === 'kernel' ? s.kernelArgs : [])].join(' ');
  return what ? `${label} (\`${what}\`)` : label;
};

/** Per repetition: the p99 (or CPU) of setting a over setting b, same source. */
const settingRatio = (runs: LatencyRun[], source: string, a: string, b: string, of: (x: LatencyRun) => number): Summary =>
  ratioPerRep(
    runs,
    (x) => x.source === source && x.setting === a,
    (x) => x.source === source && x.setting === b,
    of,
  );

function renderLatencySummary(p: Put, l: LatencyResult): void {
  // Judged on the kernel source: the SYN-ACK's own timestamp to the collector.
  const source = l.summaries.some((s) => s.source === 'kernel') ? 'kernel' : 'replay';
  const what = source === 'kernel' ? 'SYN-ACK' : 'synthetic event (no kernel)';
  const by = (label: string) => l.summaries.find((s) => s.source === source && s.setting === label);
  const defaults = by('defaults');
  for (const s of l.summaries.filter((x) => x.source === source)) {
    const target = TARGET_P99_MILLIS[s.setting];
    const vsDefaults = s.setting !== 'defaults' && defaults;
    p(
      `| latency p99, ${what} → collector at ${int(l.rate)} flows/s, ${settingTitle(l, s.setting, source)} | ${mm(s.p99, ms)} (p50 ${ms(s.p50.median)}) | ` +
        `${vsDefaults ? `defaults ${ms(defaults.p99.median)}` : '—'} | ${
          vsDefaults
            ? `${mmr(
                settingRatio(l.runs, source, s.setting, 'defaults', (x) => x.p99Millis),
                (x) => f(x, 3),
              )}×`
            : '—'
        } | ` +
        `${target ? `≤ ${ms(target)}` : 'none (reported)'} | ${target ? yesNo(s.p99.median <= target) : '—'} |`,
    );
  }
  for (const s of l.summaries.filter((x) => x.source === source && x.setting !== 'defaults')) {
    if (!defaults) break;
    p(
      `| flowtap CPU at ${int(l.rate)} flows/s, ${s.setting} vs defaults, cores | ${mm(s.cpuCores, (x) => f(x, 3))} | defaults ${mm(defaults.cpuCores, (x) => f(x, 3))} | ` +
        `${mmr(
          settingRatio(l.runs, source, s.setting, 'defaults', (x) => x.cpuCores),
          (x) => f(x),
        )}× | none (reported) | — |`,
    );
  }
}

function renderLatency(p: Put, r: BenchResults, l: LatencyResult): void {
  p(
    '## 4. Latency: flow timestamp → collector',
    '',
    `From a flow's own timestamp to the record's arrival at the real collector, at ${int(l.rate)} flows/s, ${l.seconds} s measured after a`,
    `${l.warmupSeconds} s warm-up per run; flowtap on CPU 0, the collector (otlp → file, OTLP JSON, flush every ${COLLECTOR_FLUSH_MILLIS} ms) on the last CPU.`,
    'Two sources:',
    '',
    "- **kernel** — flowtap's programs on a throwaway cgroup in which `loadgen tcp-client` opens connections at that",
    "  rate (its RATE: a fixed schedule) to `loadgen tcp-server` on 127.0.0.1; the timestamp is the SYN-ACK's at the hook. The whole",
    "  path: ring buffer, its reader's wake-up, decode → map → export → collector. The targets are judged on this one.",
    `- **replay** — \`--replay synthetic:${l.rate}\`: user space alone; the synthetic ring buffer is drained every ${REPLAY_DRAIN_MILLIS} ms.`,
    '',
    `Arrival is when this runner, polling the collector's file every ${POLL_MILLIS} ms, first sees the record, so each figure`,
    `includes up to ~${COLLECTOR_FLUSH_MILLIS + POLL_MILLIS} ms of file buffering and polling: they err on the late side. Only \`flowtap.flow.begin\` records`,
    'with a timestamp in the measured window count; "records" says how many of the window\'s flows reached the collector.',
    'Settings alternate their order each repetition.',
    '',
    '| source | setting | p50 | p99 | p99 target | records / flows (median) | flowtap CPU (cores) |',
    '|---|---|---|---|---|---|---|',
  );
  for (const s of l.summaries) {
    const rs = l.runs.filter((x) => x.source === s.source && x.setting === s.setting);
    const target = TARGET_P99_MILLIS[s.setting];
    p(
      `| ${s.source} | ${settingTitle(l, s.setting, s.source)} | ${mm(s.p50, ms)} | ${mm(s.p99, ms)} | ${s.source === 'kernel' && target ? `≤ ${ms(target)}` : ''} | ` +
        `${int(median(rs.map((x) => x.records)))} / ${int(median(rs.map((x) => x.expected)))} | ${mm(s.cpuCores, (x) => f(x, 3))} |`,
    );
  }
  p('', '| rep | source | setting | records / flows | p50 | p99 | max |', '|---|---|---|---|---|---|---|');
  for (const x of l.runs)
    p(`| ${x.rep} | ${x.source} | ${x.setting} | ${int(x.records)} / ${int(x.expected)} | ${ms(x.p50Millis)} | ${ms(x.p99Millis)} | ${ms(x.maxMillis)} |`);
  p('', loadLine(r, 'latency'), '');
}

// --- how to run --------------------------------------------------------------------------------

function renderMethod(p: Put, r: BenchResults): void {
  const m = r.machine;
  const o = r.options;
  p(
    '## How to run, and the exact commands',
    '',
    '```sh',
    'make bench          # build, then bench/run.mts; rewrites this file (raw results: bench/out/results.json)',
    'BENCH_ONLY=pipeline,latency BENCH_REPS=1 BENCH_NO_DOC=1 make bench   # some parts, markdown on stdout (see bench/run.mts)',
    'node bench/report.mts bench/out/results.json                         # this file again, from a results file',
    '```',
    '',
    'Root, cgroup v2. The runner undoes everything it changed (sysctl, nft table, attached and pinned programs,',
    'cgroups, mounts, scratch files), also when it fails. All traffic is on 127.0.0.1.',
    '',
  );
  if (r.kernel) {
    p(
      'Part 1, per workload and repetition (`<cg>` = a new cgroup under the cgroup2 mount; kernel.bpf_stats_enabled set to 1',
      'and restored):',
      '',
      '```sh',
      'sysctl -w kernel.bpf_stats_enabled=1',
      'clang -g -O2 -target bpf -c bench/empty.bpf.c -o build/bench/empty.bpf.o',
      'bpftool prog loadall build/bench/empty.bpf.o /sys/fs/bpf/flowtap-bench-<pid>-lead    # and ...-empty',
      'bpftool cgroup attach <cg> ingress pinned /sys/fs/bpf/flowtap-bench-<pid>-lead/empty_ingress multi   # egress alike',
      "# then, in the repetition's order: the empty pair (as above, ...-empty) and flowtap's programs",
      '# (new Probe({cgroupPath: <cg>}) from build/flowtap.node: bpf_link attach), read with probe.programStats()',
      '# and bpftool prog show pinned ... --json (run_time_ns, run_cnt) before and after the workload:',
      `iperf3 -s -B 127.0.0.1 -p <port>                               # outside the cgroup`,
      `iperf3 -c 127.0.0.1 -p <port> -t ${o.kernelSeconds} -J                     # in <cg>`,
      `build/bench/loadgen tcp-server <port>  ;  build/bench/loadgen tcp-client <port> ${o.kernelSeconds} ${o.workers}   # client in <cg>`,
      `build/bench/loadgen dns-server 53      ;  build/bench/loadgen dns-client 53 ${o.kernelSeconds} ${o.workers}       # client in <cg>`,
      '```',
      '',
    );
  }
  if (r.conn) {
    p(
      'Part 2, per placement, mode and repetition (split placement: each command below prefixed with',
      '`taskset -c <cpus>`, the load generator on all CPUs but the last, the rest on the last; tracefs mounted for',
      'bpftrace if it is not, and unmounted after):',
      '',
      '```sh',
      `build/bench/loadgen tcp-server <port>                                   # outside the cgroup, whole part`,
      `build/bench/loadgen tcp-client <port> ${o.connSeconds} ${o.workers}                         # in <cg>: the measurement`,
      '$(deploy/setup/collector.sh) --config <dir>/config.yaml   # <dir> under bench/out/conn-rate-<placement>; otlp → batch → debug (basic, no log sampling)',
      'node dist/cli.js --cgroup <cg> --exporter otlp --endpoint http://127.0.0.1:<grpc port>',
      "nft 'add table inet flowtap_bench'",
      "nft 'add chain inet flowtap_bench out { type filter hook output priority 0 ; policy accept ; }'",
      "nft 'add rule inet flowtap_bench out ct state new counter'",
      'conntrack -E -e NEW,DESTROY > bench/out/conn-rate-<placement>/conntrack.out     # then: nft delete table ...; conntrack -F',
      "tcpdump -i lo -n -w bench/out/conn-rate-<placement>/synack.pcap 'tcp[tcpflags] & (tcp-syn|tcp-ack) == (tcp-syn|tcp-ack)'",
      'bpftrace bench/inet_sock_set_state.bt > bench/out/conn-rate-<placement>/bpftrace.out',
      '```',
      '',
    );
  }
  // Parts 3 and 4: the command lines as they ran (ports, scratch dirs and the cgroup as placeholders).
  const block = (title: string, lines: string[]): void => void p(title, '', '```sh', ...lines, '```', '');
  if (r.ceiling) block('Part 3a, per repetition and rate (`<dir>`: a scratch directory on /dev/shm):', r.ceiling.commands);
  if (r.exportPath) block('Part 3b, per repetition and variant (one collector for the part):', r.exportPath.commands);
  if (r.queueMemory) block('Part 3c, per repetition:', [r.queueMemory.command]);
  if (r.latency) {
    for (const [source, lines] of Object.entries(r.latency.commands))
      block(`Part 4, ${source} source, per repetition and setting (shown: low latency):`, lines);
  }
  const reps: string[] = [];
  if (r.kernel) reps.push(`part 1 ${o.kernelReps} per workload, ${o.kernelSeconds} s each`);
  if (r.conn) reps.push(`part 2 ${o.reps} per mode, ${o.connSeconds} s each`);
  if (r.ceiling) reps.push(`part 3a ${o.reps}, ${o.ceilingSeconds} s per rate`);
  if (r.exportPath) reps.push(`part 3b ${o.reps} per variant, ${o.exportPathSeconds} s each`);
  if (r.queueMemory) reps.push(`part 3c ${o.reps}`);
  if (r.latency) reps.push(`part 4 ${o.reps} per source and setting, ${o.latencySeconds} s measured each`);
  p(
    `Repetitions: ${reps.join('; ')}.`,
    '',
    `Tools: ${Object.entries(m.tools)
      .map(([key, v]) => `${key} ${v}`)
      .join('; ')}.`,
    '',
  );
}

export const NOTES_FILE = join(ROOT, 'bench', 'notes.md');

export const readNotes = (): Record<string, string> => parseNotes(readFileSync(NOTES_FILE, 'utf8'));

if (import.meta.main) {
  const file = process.argv[2] ?? join(OUT, 'results.json');
  process.stdout.write(renderMarkdown(JSON.parse(readFileSync(file, 'utf8')) as BenchResults, readNotes()));
}
