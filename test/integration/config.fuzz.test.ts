/**
 * Configuration fuzz: random combinations of flags and environment variables,
 * nasty values included (newlines, control characters, huge numbers, 3000
 * characters, ...).
 *  - 2000 cases through parseConfig in-process: each gives a Config or a
 *    one-line ConfigError, never another exception;
 *  - 64 cases through the real CLI (node dist/cli.js), 8 at a time: each must
 *    end the way the contract says — exit 2 with exactly one line on stderr
 *    naming the problem, or (for --help/--version) exit 0 — never a crash, a
 *    stack trace or a second line. (Each run costs a Node.js start with the
 *    OpenTelemetry SDK loaded, hence fewer.)
 *
 * Runs never attach anything: unless the run itself fuzzes --cgroup (with
 * values that cannot name a cgroup), it watches a directory that does not
 * exist, so a configuration that happens to be valid ends with the one-line
 * "--cgroup ... does not exist" error, exit 2, which is counted as valid.
 *
 * The seed is printed; FLOWTAP_FUZZ_SEED=<n> replays a run. What a run
 * should do is judged from the CLI's contract (what --help says: -h/--help
 * and -V/--version before a `--` ask for the usage text or the version; help
 * wins), not from src/'s own reading of the command line.
 */
import { spawn } from '../helpers/processes';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BATCH_ENV, ConfigError, METRICS_ENV, OPTIONS, OTLP_ENV, parseConfig } from '../../src/config/config';
import { CLI } from '../helpers/flowtap';
import { prng } from '../helpers/prng';
import { ROOT } from '../helpers/repo';

const CASES = 2000;
const RUNS = 64;
const PARALLEL = 8;
const MISSING_CGROUP = '/nonexistent-flowtap-fuzz';

const NASTY = [
  '',
  ' ',
  '0',
  '-1',
  '1',
  '7',
  '60',
  '4096',
  '65535',
  '65536',
  '2147483647',
  '2147483648',
  '9007199254740993',
  '1e3',
  '0x10',
  '1.5',
  'NaN',
  'Infinity',
  '-0',
  '+5',
  '08',
  ' 42 ',
  'true',
  'none',
  'otlp',
  'console',
  'grpc',
  'gzip',
  'both',
  'ingress',
  'http://127.0.0.1:1',
  'https://[::1]:1',
  'http://',
  'unix:///tmp/x',
  ':0',
  '127.0.0.1:0',
  '[::1]:99999',
  'localhost:',
  '10.0.0.0/8',
  '1-2',
  '80,443',
  'a=b',
  'a=b,c',
  'k=%zz',
  '=',
  ',',
  '--',
  '-',
  '-x',
  'é',
  '😀',
  '\u202e',
  'x'.repeat(3000),
  '\t',
  'a\nb',
  'a\rb',
  '"',
  "'",
  '\\',
  '$(id)',
  '%s%n',
  'DEBUG',
  'Warn',
];

/** Values that cannot name an existing directory from the fresh, empty cwd (and never 'pod'). */
const CGROUP_VALUES = ['', ' ', 'x', 'é', 'no/such/dir', '-', '\t', 'a\nb', 'x'.repeat(3000), `${MISSING_CGROUP}/x`];

interface Knob {
  flag?: string;
  env: readonly string[];
}

// Every flag and variable flowtap reads, except --cgroup (fuzzed apart) and
// --replay (a valid value would start a synthetic run instead of failing).
const KNOBS: Knob[] = [
  ...Object.values(OPTIONS)
    .filter((o) => o.flag !== 'cgroup' && o.flag !== 'replay')
    .map((o) => ({ flag: o.flag, env: o.env })),
  ...[...Object.values(BATCH_ENV), ...Object.values(OTLP_ENV), ...Object.values(METRICS_ENV)].map((s) => ({ env: s.env })),
  ...[
    'OTEL_EXPORTER_OTLP_PROTOCOL',
    'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL',
    'OTEL_EXPORTER_OTLP_METRICS_PROTOCOL',
    'OTEL_RESOURCE_ATTRIBUTES',
    'OTEL_SERVICE_NAME',
    'OTEL_EXPORTER_OTLP_HEADERS',
    'OTEL_EXPORTER_OTLP_LOGS_HEADERS',
    'OTEL_EXPORTER_OTLP_CERTIFICATE',
    'OTEL_EXPORTER_OTLP_CLIENT_KEY',
    'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE',
    'OTEL_EXPORTER_OTLP_INSECURE',
  ].map((name) => ({ env: [name] })),
];

interface Case {
  argv: string[];
  env: Record<string, string>;
}

function makeCase(rand: () => number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const value = (): string => (rand() < 0.85 ? pick(NASTY) : String(Math.floor(rand() * 2 ** (1 + Math.floor(rand() * 40)))));
  const argv: string[] = [];
  const env: Record<string, string> = {};
  const n = Math.floor(rand() * 5);
  for (let i = 0; i < n; i++) {
    const knob = pick(KNOBS);
    const v = value();
    if (knob.flag !== undefined && rand() < 0.6) {
      if (rand() < 0.5) argv.push(`--${knob.flag}=${v}`);
      else argv.push(`--${knob.flag}`, v);
    } else {
      env[pick(knob.env)] = v;
    }
  }
  if (rand() < 0.15)
    argv.splice(Math.floor(rand() * (argv.length + 1)), 0, pick(['--nope', 'positional', '-z', '--exporter', '--', '-h', '--version', '--help=1']));
  // never a real cgroup: a garbage --cgroup/FLOWTAP_CGROUP, or one that does not exist.
  // A blank variable counts as unset (as the SDK reads env), which would fall back to
  // the host's cgroup root and attach for real, so the variable only gets non-blank ones.
  if (rand() < 0.1) {
    if (rand() < 0.5) argv.unshift(`--cgroup=${pick(CGROUP_VALUES)}`);
    else env.FLOWTAP_CGROUP = pick(CGROUP_VALUES.filter((v) => v.trim() !== ''));
  } else {
    argv.unshift(`--cgroup=${MISSING_CGROUP}`);
  }
  return { argv, env };
}

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(c: Case, cwd: string): Promise<Outcome> {
  return new Promise((resolve) => {
    // a clean environment: only what the case sets, plus what node needs to start
    const env = { PATH: process.env.PATH ?? '', ...c.env };
    const child = spawn(process.execPath, [CLI, ...c.argv], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** What the command line asks for by the contract: -h/--help or -V/--version before any `--`; help wins. */
function asksFor(argv: readonly string[]): 'help' | 'version' | undefined {
  const options = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length);
  if (options.some((a) => a === '-h' || a === '--help')) return 'help';
  if (options.some((a) => a === '-V' || a === '--version')) return 'version';
  return undefined;
}

/** What is wrong with an outcome, or undefined when it is what the contract says. */
function judge(c: Case, o: Outcome): string | undefined {
  const info = asksFor(c.argv);
  if (o.code === 0) {
    // --help/--version win over everything else... unless parseArgs refuses the command line first (exit 2, below)
    if (info === undefined) return 'exit 0 without asking for help or the version';
    if (o.stderr !== '') return `exit 0 (${info}) with stderr`;
    if (info === 'help') return o.stdout.startsWith('Usage: flowtap ') ? undefined : 'exit 0 (help) without the usage text';
    return o.stdout === `${VERSION}\n` ? undefined : `exit 0 (version) printing ${JSON.stringify(o.stdout.slice(0, 80))}, not ${VERSION}`;
  }
  if (/"msg":"ready"/.test(o.stderr)) return 'attached to a real cgroup (the case should never name one)';
  if (o.code !== 2) return `exit ${o.code ?? o.signal}`;
  if (o.stdout !== '') return 'wrote to stdout';
  if (!/^flowtap: [^\n]+\n$/.test(o.stderr)) return 'not exactly one line on stderr';
  if (/\n\s+at |TypeError|RangeError|ReferenceError|SyntaxError/.test(o.stderr)) return 'a stack trace or a JS error';
  return undefined;
}

const MOUNTINFO = '29 24 0:26 / /sys/fs/cgroup rw,relatime shared:9 - cgroup2 cgroup2 rw\n';

/** FLOWTAP_FUZZ_SEED when set (a whole number, 0 to 2^32 − 1), else a new one. */
function seedFromEnv(): number {
  const raw = process.env.FLOWTAP_FUZZ_SEED;
  if (raw === undefined || raw === '') return Date.now() % 2 ** 31;
  const seed = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || seed > 2 ** 32 - 1) throw new Error(`FLOWTAP_FUZZ_SEED=${JSON.stringify(raw)}: want a whole number from 0 to 4294967295`);
  return seed;
}

// One seed for both tests, printed up front so that a hang or a crash can be replayed too.
const SEED = seedFromEnv();
process.stderr.write(`config fuzz: seed ${SEED} (replay with FLOWTAP_FUZZ_SEED=${SEED})\n`);

describe('configuration fuzz', () => {
  it(`${CASES} random flag/env combinations through parseConfig: a Config or one ConfigError line`, () => {
    const seed = SEED;
    const rand = prng(seed);
    const failures: string[] = [];
    let valid = 0;
    for (let i = 0; i < CASES; i++) {
      const c = makeCase(rand);
      try {
        parseConfig(c.argv, c.env, MOUNTINFO, { procSelfCgroup: undefined, isDirectory: () => false });
        valid++;
      } catch (e) {
        const ok = e instanceof ConfigError && e.message !== '' && !/[\n\r]/.test(e.message);
        if (!ok) failures.push(`${String(e)}: argv ${JSON.stringify(c.argv)} env ${JSON.stringify(c.env)}`);
      }
    }
    if (failures.length > 0) throw new Error(`seed ${seed}: ${failures.length} of ${CASES} cases:\n${failures.slice(0, 10).join('\n')}`);
    expect(valid).toBeGreaterThan(CASES / 20);
  });

  it(`${RUNS} random flag/env combinations: exit 2 with exactly one line, or help/version`, async () => {
    const seed = SEED;
    const rand = prng(seed);
    const cases = Array.from({ length: RUNS }, () => makeCase(rand));
    const cwd = mkdtempSync(join(tmpdir(), 'flowtap-fuzz-'));
    const failures: string[] = [];
    let valid = 0;
    try {
      for (let i = 0; i < cases.length; i += PARALLEL) {
        const batch = cases.slice(i, i + PARALLEL);
        const outcomes = await Promise.all(batch.map((c) => run(c, cwd)));
        batch.forEach((c, j) => {
          const o = outcomes[j];
          if (o.stderr.includes(MISSING_CGROUP) && o.stderr.includes('does not exist')) valid++;
          const wrong = judge(c, o);
          if (wrong !== undefined) {
            failures.push(`${wrong}: argv ${JSON.stringify(c.argv)} env ${JSON.stringify(c.env)}\n  stderr: ${JSON.stringify(o.stderr.slice(0, 600))}`);
          }
        });
      }
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
    if (failures.length > 0) throw new Error(`seed ${seed}: ${failures.length} of ${RUNS} runs broke the contract:\n${failures.slice(0, 10).join('\n')}`);
    // the fuzz also reached past validation (a configuration that happened to be valid)
    expect(valid).toBeGreaterThan(0);
  });
});
