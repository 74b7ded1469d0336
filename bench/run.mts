/**
 * `make bench`: the four parts, then docs/benchmarks.md rewritten from the
 * results, and the raw results in bench/out/results.json.
 *
 *   1 kernel        kernel cost per packet vs an empty program (bench/kernel-cost.mts)
 *   2 conn          connection-rate overhead vs no monitor and peers (bench/conn-rate.mts)
 *   3 ceiling       pipeline ceiling with zero loss on one CPU, RSS (bench/pipeline-ceiling.mts)
 *     export-path   events per CPU-second: export queue vs the stock SDK path (bench/export-path.mts)
 *     queue-memory  RSS per record held while the collector is away (bench/queue-memory.mts)
 *   4 latency       flow timestamp → collector arrival, defaults vs low latency (bench/latency.mts)
 *
 * Environment (all optional):
 *   BENCH_ONLY                 comma-separated parts to run (pipeline = ceiling,export-path,queue-memory);
 *                              default all. The doc then has only those parts.
 *   BENCH_NO_DOC               1: print the markdown instead of rewriting docs/benchmarks.md
 *   BENCH_OUT                  directory for results.json and the parts' files (default bench/out)
 *   BENCH_REPS                 repetitions per measurement (default 5; part 1 rounds up to even,
 *                              because it alternates the attach order)
 *   BENCH_KERNEL_SECONDS       seconds per kernel-cost measurement (default 3)
 *   BENCH_SECONDS              seconds per connection-rate measurement (default 4)
 *   BENCH_WORKERS              load generator client processes, parts 1-2 (default 4)
 *   BENCH_CEILING_SECONDS      seconds per rate of the ceiling search (default 10)
 *   BENCH_CEILING_RATES        the ceiling's rate ladder, events/s (default 50000,100000,125000,...,300000)
 *   BENCH_EXPORT_PATH_RATE     events/s of the export-path comparison (default 20000)
 *   BENCH_EXPORT_PATH_SECONDS  seconds per export-path run (default 10)
 *   BENCH_QUEUE_MEMORY_RATE    events/s while the collector is away (default 20000)
 *   BENCH_LATENCY_SECONDS      measured seconds per latency run, after a 2 s warm-up (default 10)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { connRate, type ConnRateOptions } from './conn-rate.mts';
import { exportPath } from './export-path.mts';
import { kernelCost } from './kernel-cost.mts';
import { exportLatency } from './latency.mts';
import { OUT, ROOT, ensureDir, loadAverage, log, run } from './lib.mts';
import { pipelineCeiling } from './pipeline-ceiling.mts';
import { collectorBinary } from './pipeline-lib.mts';
import { queueMemory } from './queue-memory.mts';
import { PARTS, readNotes, renderMarkdown, type BenchOptions, type BenchResults, type Machine, type Part } from './report.mts';

function envInt(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) {
    process.stderr.write(`bench: ${name} must be an integer >= ${min}, got '${raw}'\n`);
    process.exit(2);
  }
  return v;
}

function envRates(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const rates = raw.split(',').map((x) => Number(x.trim()));
  if (rates.some((r) => !Number.isInteger(r) || r < 1) || rates.some((r, i) => i > 0 && r <= rates[i - 1])) {
    process.stderr.write(`bench: ${name} must be rising integers >= 1, comma-separated, got '${raw}'\n`);
    process.exit(2);
  }
  return rates;
}

const GROUPS: Record<string, Part[]> = { pipeline: ['ceiling', 'export-path', 'queue-memory'] };

/** BENCH_ONLY: the parts to run, in PARTS order. */
function partsToRun(raw: string | undefined): Part[] {
  if (raw === undefined || raw.trim() === '') return [...PARTS];
  const wanted = new Set<Part>();
  for (const name of raw.split(',').map((x) => x.trim())) {
    const parts = GROUPS[name] ?? (PARTS.includes(name as Part) ? [name as Part] : undefined);
    if (parts === undefined) {
      process.stderr.write(`bench: BENCH_ONLY: '${name}' is not one of ${[...PARTS, ...Object.keys(GROUPS)].join(', ')}\n`);
      process.exit(2);
    }
    parts.forEach((p) => wanted.add(p));
  }
  return PARTS.filter((p) => wanted.has(p));
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return run(cmd, args).trim();
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() || 'unknown';
  }
}

function machine(): Machine {
  const firstLine = (s: string) => s.split('\n')[0];
  const head = tryRun('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']);
  const dirty = tryRun('git', ['-C', ROOT, 'status', '--porcelain', '--', 'bpf', 'native', 'src']) !== '';
  const hypervisor = /\bhypervisor\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: Number(tryRun('nproc', [])),
    kernel: tryRun('uname', ['-r']),
    cpu: cpus()[0]?.model ?? 'unknown',
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    virtualization: hypervisor ? 'a virtual machine' : 'bare metal',
    node: process.version,
    tools: {
      clang: firstLine(tryRun('clang', ['--version'])).replace(/^.*version /, ''),
      bpftool: firstLine(tryRun('bpftool', ['version'])).replace(/^bpftool /, ''),
      iperf3: firstLine(tryRun('iperf3', ['--version'])).replace(/^iperf /, ''),
      conntrack: firstLine(tryRun('conntrack', ['--version'])).replace(/^conntrack /, ''),
      tcpdump: firstLine(tryRun('tcpdump', ['--version'])).replace(/^tcpdump version /, ''),
      bpftrace: firstLine(tryRun('bpftrace', ['--version'])).replace(/^bpftrace /, ''),
      collector: firstLine(tryRun(collectorBinary(), ['--version'])),
    },
    revision: `${head}${dirty ? ' with uncommitted changes in bpf/ native/ src/' : ''}`,
    loadStart: loadAverage(),
  };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: must run as root (cgroups, BPF, sysctl, nft, tcpdump)\n');
    process.exit(1);
  }
  const reps = envInt('BENCH_REPS', 5, 1);
  const options: BenchOptions = {
    reps,
    kernelReps: reps + (reps % 2),
    kernelSeconds: envInt('BENCH_KERNEL_SECONDS', 3, 1),
    connSeconds: envInt('BENCH_SECONDS', 4, 1),
    workers: envInt('BENCH_WORKERS', 4, 1),
    ceilingSeconds: envInt('BENCH_CEILING_SECONDS', 10, 2),
    ceilingRates: envRates('BENCH_CEILING_RATES', [50_000, 100_000, 125_000, 150_000, 175_000, 200_000, 250_000, 300_000]),
    exportPathRate: envInt('BENCH_EXPORT_PATH_RATE', 20_000, 1),
    exportPathSeconds: envInt('BENCH_EXPORT_PATH_SECONDS', 10, 1),
    queueMemoryRate: envInt('BENCH_QUEUE_MEMORY_RATE', 20_000, 1),
    latencySeconds: envInt('BENCH_LATENCY_SECONDS', 10, 1),
  };
  const parts = partsToRun(process.env.BENCH_ONLY);
  ensureDir(OUT);
  const t0 = Date.now();
  const results: BenchResults = { machine: machine(), options, parts, load: {}, durationSeconds: 0 };

  const measure: Record<Part, () => Promise<void>> = {
    kernel: async () => {
      log(`part 1: kernel cost per packet (${options.kernelReps} reps × 3 workloads × ${options.kernelSeconds} s)`);
      results.kernel = await kernelCost({ reps: options.kernelReps, seconds: options.kernelSeconds, workers: options.workers });
    },
    conn: async () => {
      const n = cpus().length;
      const base = { reps, seconds: options.connSeconds, workers: options.workers };
      // shared: everything competes for every CPU (the machine's capacity);
      // split: the load generator on all CPUs but the last, monitors and the
      // collector on the last (what the workload itself pays when the monitor
      // has a CPU of its own).
      const variants: ConnRateOptions[] = [{ ...base, label: 'shared' }];
      if (n >= 2) variants.push({ ...base, label: 'split', workloadCpus: n === 2 ? '0' : `0-${n - 2}`, monitorCpus: String(n - 1) });
      results.conn = [];
      for (const v of variants) {
        log(`part 2 (${v.label}): connection-rate overhead (${v.reps} reps × 5 modes × ${v.seconds} s)`);
        results.conn.push(await connRate(v));
      }
    },
    ceiling: async () => {
      log(
        `part 3: pipeline ceiling (${reps} reps, each near idle then up ${options.ceilingRates.join(', ')} events/s until one fails, ${options.ceilingSeconds} s each)`,
      );
      results.ceiling = await pipelineCeiling({ reps, seconds: options.ceilingSeconds, rates: options.ceilingRates });
    },
    'export-path': async () => {
      log(
        `part 3: export path vs the stock SDK path (${reps} reps × 3 variants × ${options.exportPathSeconds} s at ${options.exportPathRate}/s, then 2 profiled runs)`,
      );
      results.exportPath = await exportPath({ reps, rate: options.exportPathRate, seconds: options.exportPathSeconds });
    },
    'queue-memory': async () => {
      log(`part 3: export queue memory with the collector away (${reps} reps at ${options.queueMemoryRate}/s)`);
      results.queueMemory = await queueMemory({ reps, rate: options.queueMemoryRate });
    },
    latency: async () => {
      log(`part 4: latency at 1000 flows/s (${reps} reps × 6 source/setting runs × ${options.latencySeconds} s)`);
      results.latency = await exportLatency({ reps, seconds: options.latencySeconds });
    },
  };
  const save = (): void => writeFileSync(join(OUT, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  for (const part of parts) {
    const start = loadAverage();
    await measure[part]();
    results.load[part] = { start, end: loadAverage() };
    save(); // a long run that fails later keeps what it measured
  }
  results.durationSeconds = (Date.now() - t0) / 1000;
  results.machine.loadEnd = loadAverage();

  save();
  const markdown = renderMarkdown(results, readNotes());
  if (process.env.BENCH_NO_DOC === '1') {
    process.stdout.write(markdown);
  } else {
    writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), markdown);
    log(`wrote docs/benchmarks.md and ${join(OUT, 'results.json')}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
