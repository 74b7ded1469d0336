/**
 * Part 3b: the export path, side by side: the stock SDK path (Logger.emit with the 17
 * flow attributes → BatchLogRecordProcessor → OTLPLogExporter over gRPC) and
 * flowtap's export queue (each record encoded straight to OTLP protobuf →
 * the SDK's gRPC export delegate), at the same event rate into the same real
 * collector, each run in its own process (bench/export-path-harness.mts:
 * synthetic source → production Pipeline → the path), pinned to CPU 0.
 * Reported: CPU per event and the ratio of the two within each repetition,
 * RSS, and where the CPU goes (node --cpu-prof of one extra run per path).
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { ROOT, log, runToEnd, shownCommand, start, summarize, type Summary } from './lib.mts';
import { scratchDir, startFileCollector } from './pipeline-lib.mts';

export interface PathVariant {
  label: string;
  path: 'sdk' | 'queue';
  batch: number;
}

export const VARIANTS: PathVariant[] = [
  { label: 'stock SDK path (batch 512, the SDK default)', path: 'sdk', batch: 512 },
  { label: 'export queue, batch 512', path: 'queue', batch: 512 },
  { label: 'export queue, batch 2048 (flowtap default)', path: 'queue', batch: 2048 },
];

export interface PathRun {
  rep: number;
  variant: string;
  cpuCores: number;
  /** Events per CPU-second. */
  eventsPerCpuSecond: number;
  rssMaxMiB: number;
  lost: number;
}

export interface ProfileShare {
  what: string;
  /** Share of the non-idle samples, percent. */
  percent: number;
}

export interface PathResult {
  rate: number;
  seconds: number;
  runs: PathRun[];
  summaries: { variant: string; eventsPerCpuSecond: Summary; rssMaxMiB: Summary; ratioToStock?: Summary }[];
  profiles: { variant: string; top: ProfileShare[] }[];
  /** Command lines: the collector, and the harness for each variant. */
  commands: string[];
}

const HARNESS = join(ROOT, 'bench', 'export-path-harness.mts');

async function runHarness(
  v: PathVariant,
  rate: number,
  seconds: number,
  endpoint: string,
  profileFile?: string,
): Promise<{ result: Record<string, number>; command: string }> {
  const args = [HARNESS, v.path, String(rate), String(seconds), endpoint, String(v.batch), ...(profileFile ? [profileFile] : [])];
  const harness = start(process.execPath, args, { cpus: '0' });
  const out = await runToEnd(harness, `export-path harness (${v.label})`);
  return {
    result: JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>,
    command: shownCommand(harness.commandLine, [[endpoint, 'http://127.0.0.1:<port>']]),
  };
}

/** Where a .cpuprofile's non-idle time went, by package or flowtap module. */
function profileShares(file: string): ProfileShare[] {
  /* eslint-disable @typescript-eslint/no-explicit-any */
  const prof = JSON.parse(readFileSync(file, 'utf8')) as any;
  const byId = new Map<number, any>(prof.nodes.map((n: any) => [n.id, n]));
  const totals = new Map<string, number>();
  let busy = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byId.get(prof.samples[i]);
    const url: string = node.callFrame.url ?? '';
    const fn: string = node.callFrame.functionName;
    if (fn === '(idle)') continue;
    const dt: number = prof.timeDeltas[i] ?? 0;
    busy += dt;
    let what: string;
    if (fn === '(garbage collector)' || fn === '(program)') what = fn;
    else if (url.includes('/node_modules/')) {
      const parts = url.replace(/.*\/node_modules\//, '').split('/');
      what = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    } else if (url.includes('/dist/')) what = `flowtap ${url.replace(/.*\/dist\//, '').replace(/\.js$/, '')}`;
    else if (url.startsWith('node:')) what = url.startsWith('node:internal/http2') ? 'node http2' : url.includes('buffer') ? 'node buffer' : 'node (other)';
    else what = fn === '' ? '(native)' : 'other';
    totals.set(what, (totals.get(what) ?? 0) + dt);
  }
  return [...totals.entries()]
    .map(([what, t]) => ({ what, percent: (100 * t) / busy }))
    .sort((a, b) => b.percent - a.percent)
    .slice(0, 10);
}

export async function exportPath(opts: { reps: number; rate: number; seconds: number }): Promise<PathResult> {
  const n = cpus().length;
  const { dir, remove } = scratchDir('export-path');
  // One collector for every run: nothing is read back here (pipeline-ceiling counts records).
  const collector = await startFileCollector(dir, { format: 'proto', flushIntervalMillis: 1000, cpus: n > 1 ? String(n - 1) : undefined });
  const runs: PathRun[] = [];
  const commands = new Map<string, string>([['collector', collector.command]]);
  try {
    for (let rep = 1; rep <= opts.reps; rep++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + rep - 1) % VARIANTS.length]); // rotate the order
      for (const v of order) {
        const { result: r, command } = await runHarness(v, opts.rate, opts.seconds, collector.endpoint);
        commands.set(v.label, command);
        const run: PathRun = {
          rep,
          variant: v.label,
          cpuCores: r.cpuCores,
          eventsPerCpuSecond: opts.rate / r.cpuCores,
          rssMaxMiB: r.rssMaxMiB,
          lost: r.dropped + r.failed + r.ringBufferLost + (r.emitted - r.exported - r.dropped - r.failed),
        };
        runs.push(run);
        log(
          `export-path rep ${rep} ${v.label}: ${Math.round(run.eventsPerCpuSecond)} events per CPU-second, rss ${run.rssMaxMiB.toFixed(0)} MiB, lost ${run.lost}`,
        );
      }
    }
    const profiles: PathResult['profiles'] = [];
    for (const v of [VARIANTS[0], VARIANTS[VARIANTS.length - 1]]) {
      const { dir: profDir, remove: removeProf } = scratchDir('export-path-prof');
      const file = join(profDir, 'run.cpuprofile');
      await runHarness(v, opts.rate, opts.seconds, collector.endpoint, file);
      profiles.push({ variant: v.label, top: profileShares(file) });
      removeProf();
    }
    const stock = VARIANTS[0].label;
    const summaries = VARIANTS.map((v) => {
      const rs = runs.filter((r) => r.variant === v.label);
      const ratios =
        v.label === stock
          ? undefined
          : summarize(rs.map((r) => r.eventsPerCpuSecond / runs.find((s) => s.rep === r.rep && s.variant === stock)!.eventsPerCpuSecond));
      return {
        variant: v.label,
        eventsPerCpuSecond: summarize(rs.map((r) => r.eventsPerCpuSecond)),
        rssMaxMiB: summarize(rs.map((r) => r.rssMaxMiB)),
        ratioToStock: ratios,
      };
    });
    return { rate: opts.rate, seconds: opts.seconds, runs, summaries, profiles, commands: [...commands.values()] };
  } finally {
    await collector.stop();
    remove();
  }
}
