/**
 * `make bench`: part 1 (kernel cost per packet) and part 2 (connection-rate
 * overhead), then docs/benchmarks.md rewritten from the results, and the raw
 * results in bench/out/results.json.
 *
 * Environment (all optional):
 *   BENCH_REPS             repetitions per measurement (default 5; part 1 rounds up to even,
 *                          because it alternates the attach order)
 *   BENCH_SECONDS          seconds per connection-rate measurement (default 4)
 *   BENCH_KERNEL_SECONDS   seconds per kernel-cost measurement (default 3)
 *   BENCH_WORKERS          load generator client processes (default 4)
 *   BENCH_ONLY             kernel | conn: run one part (the doc then has only that part)
 *   BENCH_NO_DOC           1: do not rewrite docs/benchmarks.md
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { connRate, type ConnRateOptions } from './conn-rate.mts';
import { kernelCost } from './kernel-cost.mts';
import { OUT, ROOT, ensureDir, log, run } from './lib.mts';
import { renderMarkdown, type BenchResults, type Machine } from './report.mts';

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

function tryRun(cmd: string, args: string[]): string {
  try {
    return run(cmd, args).trim();
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    return `${err.stdout ?? ''}${err.stderr ?? ''}`.trim() || 'unknown';
  }
}

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

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
  const options = {
    kernelReps: reps + (reps % 2),
    kernelSeconds: envInt('BENCH_KERNEL_SECONDS', 3, 1),
    connReps: reps,
    connSeconds: envInt('BENCH_SECONDS', 4, 1),
    workers: envInt('BENCH_WORKERS', 4, 1),
  };
  const only = process.env.BENCH_ONLY;
  ensureDir(OUT);
  const t0 = Date.now();
  const results: BenchResults = { machine: machine(), options, durationSeconds: 0 };

  if (only === undefined || only === '' || only === 'kernel') {
    log(`part 1: kernel cost per packet (${options.kernelReps} reps × 3 workloads × ${options.kernelSeconds} s)`);
    results.kernel = await kernelCost({ reps: options.kernelReps, seconds: options.kernelSeconds, workers: options.workers });
  }
  if (only === undefined || only === '' || only === 'conn') {
    const n = cpus().length;
    const base = { reps: options.connReps, seconds: options.connSeconds, workers: options.workers };
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
  }
  results.durationSeconds = (Date.now() - t0) / 1000;
  results.machine.loadEnd = loadAverage();

  writeFileSync(join(OUT, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  const markdown = renderMarkdown(results);
  if (process.env.BENCH_NO_DOC === '1') {
    process.stdout.write(markdown);
  } else {
    writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), markdown);
    log('wrote docs/benchmarks.md and bench/out/results.json');
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
