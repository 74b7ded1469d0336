/**
 * Soak: does flowtap stay flat over a long run at a steady, moderate rate?
 *
 * The real kernel path, end to end: flowtap (the CLI from dist/, defaults
 * apart from a summary line every sample) watches a throwaway cgroup in
 * which `loadgen tcp-client` opens and closes real TCP connections over
 * loopback at a fixed rate (server outside the cgroup, so each connection is
 * seen once: one begin and one end record), and a small DNS client asks a
 * DNS responder on 127.0.0.153:53 (in this process) for a new name every
 * query (TTL 30 s; every 10th asks for the name of 127.0.0.1, so the
 * connections' records carry a domain). flowtap exports to a real
 * OpenTelemetry Collector (records to a protobuf file, flowtap's own metrics
 * to a JSON file).
 *
 * Every SOAK_SAMPLE_SECONDS: flowtap's RSS (/proc/<pid>/status VmRSS), open
 * fds (/proc/<pid>/fd), V8 heap used and committed after the latest GC (node
 * --trace-gc on flowtap's stdout, which the OTLP exporter leaves unused), CPU
 * time, the summary line's counters, the load average.
 *
 * What "flat" means here (after the first SOAK_WARMUP_SECONDS):
 *   - RSS: the least-squares slope is below RSS_SLOPE_LIMIT_MIB_PER_MIN;
 *   - fds: the count varies by at most FD_SPREAD_LIMIT (a gRPC reconnect may
 *     hold one more socket for a moment; a leak grows without bound).
 * And "nothing lost silently": every connection made should give one begin
 * and one end record at the collector; connections × 2 − records at the
 * collector must equal what flowtap itself counted as lost (kernel ring
 * buffer, flow table, hand-off, queue, export, decode), exactly. The V8 heap
 * slope is reported but not judged: RSS includes it.
 *
 *   make soak    (env: SOAK_SECONDS=600 SOAK_RATE=500 SOAK_WORKERS=4
 *                 SOAK_DNS_RATE=20 SOAK_WARMUP_SECONDS=60 SOAK_SAMPLE_SECONDS=5)
 * Needs root (cgroup, program attach, port 53). Results: bench/out/soak.json
 * and bench/out/soak.md; the markdown and PASS/FAIL on stdout; exit 1 on FAIL.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { startCollector } from '../test/helpers/collector.ts';
import { startFlowtap } from '../test/helpers/flowtap.ts';
import { fields, forEachLogRecord, forEachProtoRequest } from '../test/helpers/otlp-wire.ts';
import { freePort } from '../test/helpers/ports.ts';
import { BUILD, Cgroup, OUT, ROOT, cpuSeconds, ensureDir, log, onCleanup, parseClient, run, sleep, start, type ClientResult, type Started } from './lib.mts';
import { rssMiB, scratchDir } from './pipeline-lib.mts';

export const RSS_SLOPE_LIMIT_MIB_PER_MIN = 1;
export const FD_SPREAD_LIMIT = 2;

export interface SoakOptions {
  seconds: number;
  /** TCP connections per second. */
  rate: number;
  workers: number;
  /** DNS queries per second (0: none). */
  dnsRate: number;
  warmupSeconds: number;
  sampleSeconds: number;
}

export interface Sample {
  /** Seconds since the load started (negative: before). */
  t: number;
  rssMiB: number;
  fds: number;
  /** V8 heap after the latest GC: used and committed (MiB); NaN before the first GC. */
  heapUsedMiB: number;
  heapCommittedMiB: number;
  gcs: number;
  cpuSeconds: number;
  load1: number;
  /** From the latest summary line. */
  emitted: number;
  exportedRecords: number;
  queueRecords: number;
  dnsNames: number;
}

export interface Trend {
  /** First sample after the warm-up, last sample, largest after the warm-up. */
  start: number;
  end: number;
  max: number;
  min: number;
  /** Least-squares slope over the samples after the warm-up, per minute. */
  slopePerMinute: number;
  /**
   * The same over the first and the second half of those samples: when they
   * disagree, the whole-run slope is within the run's noise (GC and
   * allocator sawtooth), and only a longer run can tell a slow leak.
   */
  halvesSlopePerMinute: [number, number];
}

export interface CollectorCount {
  records: number;
  begins: number;
  ends: number;
  /** Records of the same kind with the same timestamp as another: would be duplicates. */
  sameTimestamp: number;
}

export interface SoakResult {
  options: SoakOptions;
  when: string;
  /** The commit, and the files under src/ native/ bpf/ that differed from it (what dist/ was built from). */
  commit: string;
  uncommitted: string[];
  kernel: string;
  cpus: number;
  command: string;
  load: { before: string; after: string; load1Mean: number; load1Max: number };
  client: ClientResult;
  achievedRate: number;
  dns: { enabled: boolean; note?: string; queries: number; answers: number };
  samples: Sample[];
  rss: Trend;
  heapUsed: Trend;
  fds: Trend;
  flowtapCpuPercent: number;
  collector: CollectorCount;
  /** flowtap's `stopped` line. */
  stopped: Record<string, unknown>;
  /** Last values of flowtap's own metrics at the collector (name{attributes} → value). */
  metrics: Record<string, number>;
  expectedRecords: number;
  countedLosses: Record<string, number>;
  silentlyLost: number;
  verdict: { flat: boolean; nothingLostSilently: boolean; pass: boolean; reasons: string[] };
}

// --- pure parts ---------------------------------------------------------------------------------

/** Least-squares slope of y over x. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export function trend(samples: Sample[], warmupSeconds: number, value: (s: Sample) => number): Trend {
  const after = samples.filter((s) => s.t >= warmupSeconds && Number.isFinite(value(s)));
  const ys = after.map(value);
  const slopeOf = (part: Sample[]): number =>
    slope(
      part.map((s) => s.t / 60),
      part.map(value),
    );
  const mid = after.length > 0 ? (after[0].t + after[after.length - 1].t) / 2 : 0;
  return {
    start: ys[0] ?? NaN,
    end: ys[ys.length - 1] ?? NaN,
    max: Math.max(...ys),
    min: Math.min(...ys),
    slopePerMinute: slopeOf(after),
    halvesSlopePerMinute: [slopeOf(after.filter((s) => s.t <= mid)), slopeOf(after.filter((s) => s.t > mid))],
  };
}

/** The latest `--trace-gc` line's heap after the GC: "...: Scavenge 5.1 (6.3) -> 4.6 (7.3) MB, ...". */
const GC_LINE = /ms: .*? ([\d.]+) \(([\d.]+)\) -> ([\d.]+) \(([\d.]+)\) MB/g;

export function lastGc(text: string): { used: number; committed: number; count: number } | undefined {
  let last: RegExpExecArray | undefined;
  let count = 0;
  for (const m of text.matchAll(GC_LINE)) {
    last = m;
    count++;
  }
  return last === undefined ? undefined : { used: Number(last[3]), committed: Number(last[4]), count };
}

// --- the collector's protobuf file ----------------------------------------------------------------

/**
 * Log records in the file exporter's proto output (each
 * ExportLogsServiceRequest preceded by its length, 4 bytes big-endian), by
 * EventName (LogRecord field 12), and how many share a kind and a timestamp.
 */
export function countCollectorFile(path: string): CollectorCount {
  const times = { begin: [] as bigint[], end: [] as bigint[] };
  let records = 0;
  const onRequest = (buf: Buffer, from: number, to: number): void =>
    forEachLogRecord(buf, from, to, (b, s3, e3) => {
      records++;
      let time = 0n;
      let name = '';
      fields(b, s3, e3, (f4, w4, s4, e4) => {
        if (f4 === 1 && w4 === 1) time = b.readBigUInt64LE(s4);
        else if (f4 === 12 && w4 === 2) name = b.toString('utf8', s4, e4);
      });
      if (name === 'flowtap.flow.begin') times.begin.push(time);
      else if (name === 'flowtap.flow.end') times.end.push(time);
    });
  const truncated = forEachProtoRequest(path, onRequest);
  if (truncated > 0) throw new Error(`${path}: ${truncated} bytes of a truncated request at the end`);
  const same = (ts: bigint[]): number => {
    const sorted = BigUint64Array.from(ts).sort();
    let n = 0;
    for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) n++;
    return n;
  };
  return { records, begins: times.begin.length, ends: times.end.length, sameTimestamp: same(times.begin) + same(times.end) };
}

/** The last value of each metric data point in the collector's OTLP JSON lines, as name{attributes}. */
export function lastMetricValues(path: string): Record<string, number> {
  const out: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return out;
  }
  /* eslint-disable @typescript-eslint/no-explicit-any */
  for (const line of text.split('\n').filter(Boolean)) {
    const req = JSON.parse(line) as any;
    for (const rm of req.resourceMetrics ?? [])
      for (const sm of rm.scopeMetrics ?? [])
        for (const m of sm.metrics ?? [])
          for (const p of (m.sum ?? m.gauge)?.dataPoints ?? []) {
            const attrs = (p.attributes ?? []).map((a: any) => `${a.key}=${Object.values(a.value)[0]}`).join(',');
            out[`${m.name}{${attrs}}`] = Number(p.asInt ?? p.asDouble ?? 0);
          }
  }
  return out;
}

// --- the DNS responder and client ---------------------------------------------------------------

const DNS_ADDRESS = '127.0.0.153';
const DNS_TTL_SECONDS = 30;
/** Every 10th query: the name the connections' address (127.0.0.1) has. */
const SERVICE_NAME = 'svc.soak.flowtap.test';

/** Answers each A query with one record: SERVICE_NAME → 127.0.0.1, any other name → a new 198.18.x.y. */
async function startDnsResponder(): Promise<Socket> {
  const sock = createSocket('udp4');
  let next = 0;
  sock.on('message', (q, peer) => {
    if (q.length < 17) return;
    let pos = 12;
    const labels: string[] = [];
    while (pos < q.length && q[pos] !== 0) {
      labels.push(q.toString('latin1', pos + 1, pos + 1 + q[pos]));
      pos += 1 + q[pos];
    }
    const questionEnd = pos + 5; // root label, QTYPE, QCLASS
    if (questionEnd > q.length) return;
    const k = next++;
    const address = labels.join('.') === SERVICE_NAME ? [127, 0, 0, 1] : [198, 18, (k >> 8) & 0xff, k & 0xff];
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, DNS_TTL_SECONDS, 0, 4, ...address]);
    const reply = Buffer.concat([q.subarray(0, questionEnd), answer]);
    reply[2] = 0x81; // QR, RD
    reply[3] = 0x80; // RA, NOERROR
    reply.writeUInt16BE(1, 6); // ANCOUNT
    reply.writeUInt16BE(0, 8);
    reply.writeUInt16BE(0, 10);
    sock.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(53, DNS_ADDRESS, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  return sock;
}

/** Runs in the cgroup: `node -e DNS_CLIENT <address> <rate> <seconds>`; prints "<queries> <answers>". */
const DNS_CLIENT = `
const dgram = require('node:dgram');
const [address, rate, seconds] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const sock = dgram.createSocket('udp4');
let sent = 0, answers = 0;
sock.on('message', () => answers++);
const query = (k) => {
  const name = k % 10 === 0 ? '${SERVICE_NAME}' : 'n' + k + '.soak.flowtap.test';
  const q = [k >> 8 & 0xff, k & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of name.split('.')) q.push(l.length, ...Buffer.from(l));
  q.push(0, 0, 1, 0, 1);
  return Buffer.from(q);
};
const t0 = Date.now();
const timer = setInterval(() => {
  const due = Math.min(Math.floor((Date.now() - t0) / 1000 * rate), rate * seconds);
  for (; sent < due; sent++) sock.send(query(sent), 53, address);
  if (sent >= rate * seconds) {
    clearInterval(timer);
    setTimeout(() => { process.stdout.write(sent + ' ' + answers + '\\n'); process.exit(0); }, 1000);
  }
}, 10);
`;

// --- the run ------------------------------------------------------------------------------------

function procLoad(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export async function soak(o: SoakOptions): Promise<SoakResult> {
  const loadgen = join(BUILD, 'loadgen');
  const loadBefore = procLoad();
  const commit = run('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']).trim();
  const uncommitted = run('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src', 'native', 'bpf'])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(3));

  // the collector: records to a protobuf file, flowtap's metrics to JSON lines
  const scratch = scratchDir('soak');
  const collector = await startCollector({ logs: 'proto', metrics: 'json', flushIntervalMillis: 1000, scratchBase: scratch.dir, stopTimeoutMillis: 30_000 });
  const { endpoint, logsPath: logsFile, metricsPath: metricsFile } = collector;

  // the TCP server outside the cgroup, the DNS responder in this process
  const tcpPort = await freePort();
  const server = start(loadgen, ['tcp-server', String(tcpPort)]);
  await server.waitFor(/ready/, 10_000);
  const dns: SoakResult['dns'] = { enabled: false, queries: 0, answers: 0 };
  let closeResponder = (): void => undefined;
  if (o.dnsRate > 0) {
    try {
      const responder = await startDnsResponder();
      dns.enabled = true;
      closeResponder = onCleanup(() => responder.close());
    } catch (e) {
      dns.note = `no DNS: ${DNS_ADDRESS}:53 could not be bound (${(e as Error).message})`;
      log(dns.note);
    }
  }

  // flowtap on a throwaway cgroup
  const cg = new Cgroup('soak');
  const flowtapArgs = ['--cgroup', cg.path, '--endpoint', endpoint, '--summary-interval-seconds', String(o.sampleSeconds), '--log-level', 'debug'];
  const ft = await startFlowtap(flowtapArgs, { OTEL_RESOURCE_ATTRIBUTES: 'bench.run=soak' }, 20_000, [], ['--trace-gc']);
  const pid = ft.child.pid!;
  const logs = (): Record<string, unknown>[] => jsonLines(ft.stderr());

  const samples: Sample[] = [];
  let t0 = performance.now();
  const sample = (): Sample => {
    const gc = lastGc(ft.stdout());
    const summary =
      logs()
        .filter((l) => l.msg === 'counters')
        .pop() ?? {}; // every counter, once per summary interval
    const s: Sample = {
      t: Math.round((performance.now() - t0) / 100) / 10,
      rssMiB: rssMiB(pid),
      fds: fdCount(pid),
      heapUsedMiB: gc?.used ?? NaN,
      heapCommittedMiB: gc?.committed ?? NaN,
      gcs: gc?.count ?? 0,
      cpuSeconds: cpuSeconds(pid),
      load1: Number(procLoad().split(' ')[0]),
      emitted: Number(summary.emitted ?? 0),
      exportedRecords: Number(summary.exportedRecords ?? 0),
      queueRecords: Number(summary.queueRecords ?? NaN),
      dnsNames: Number((summary.dns as { names?: number } | undefined)?.names ?? NaN),
    };
    samples.push(s);
    return s;
  };

  // one sample idle, then the load
  await sleep(o.sampleSeconds * 1000);
  sample();
  t0 = performance.now();
  samples[0].t = -o.sampleSeconds;
  const cpuAtStart = cpuSeconds(pid);
  const client = cg.start(loadgen, ['tcp-client', String(tcpPort), String(o.seconds), String(o.workers), String(o.rate)]);
  let dnsClient: Started | undefined;
  if (dns.enabled) dnsClient = cg.start(process.execPath, ['-e', DNS_CLIENT, DNS_ADDRESS, String(o.dnsRate), String(o.seconds)]);
  log(`soak: ${o.seconds} s at ${o.rate} connections/s (${o.workers} workers)${dns.enabled ? ` and ${o.dnsRate} DNS answers/s` : ''}; flowtap pid ${pid}`);

  let clientDone = false;
  void client.exited.then(() => (clientDone = true));
  let nextLog = 60;
  for (let k = 1; !clientDone; k++) {
    await sleep(Math.max(0, t0 + k * o.sampleSeconds * 1000 - performance.now()));
    if (clientDone) break;
    const s = sample();
    if (s.t >= nextLog) {
      nextLog += 60;
      log(
        `soak t=${s.t.toFixed(0)} s: RSS ${s.rssMiB.toFixed(1)} MiB, heap ${s.heapUsedMiB.toFixed(1)} MiB, fds ${s.fds}, ` +
          `records ${s.exportedRecords}/${s.emitted} exported, queue ${s.queueRecords}, load ${s.load1}`,
      );
    }
  }
  const clientLine = (await client.exited) === 0 ? client.stdout() : '';
  if (clientLine === '') throw new Error(`loadgen tcp-client failed: ${client.stderr().slice(-2000)}`);
  const clientResult = parseClient(clientLine);
  const cpuTotal = cpuSeconds(pid) - cpuAtStart;
  const wall = (performance.now() - t0) / 1000;
  if (dnsClient !== undefined) {
    await dnsClient.exited;
    const [q, a] = dnsClient.stdout().trim().split(' ').map(Number);
    dns.queries = q;
    dns.answers = a;
  }
  closeResponder();
  // let the last records leave (schedule delay 1 s), one more sample, then stop
  await sleep(3000);
  sample();
  const { code } = await ft.stop('SIGTERM', 20_000);
  if (code !== 0) throw new Error(`flowtap exited ${code}: ${ft.stderr().slice(-2000)}`);
  const stopped = logs().some((l) => l.msg === 'stopped')
    ? (logs()
        .filter((l) => l.msg === 'counters')
        .pop() ?? {})
    : {};
  await server.stop();
  // the collector flushes its files on SIGTERM
  await collector.stop();
  const loadAfter = procLoad();

  const count = countCollectorFile(logsFile);
  const metrics = lastMetricValues(metricsFile);
  scratch.remove();
  cg.remove();

  const probe = (stopped.probe ?? {}) as Record<string, number>;
  const countedLosses: Record<string, number> = {
    'probe.ringbuf_full_flow': probe.ringbuf_full_flow ?? 0,
    'probe.handoff_dropped_records': probe.handoff_dropped_records ?? 0,
    'probe.bad_records': probe.bad_records ?? 0,
    'probe.flow_table_full (end not reported)': probe.flow_table_full ?? 0,
    'probe.flow_table_evictions (end not reported)': probe.flow_table_evictions ?? 0,
    'probe.filtered': (probe.filtered ?? 0) * 2,
    decodeErrors: Number(stopped.decodeErrors ?? 0),
    processingErrors: Number(stopped.processingErrors ?? 0),
    droppedRecords: Number(stopped.droppedRecords ?? 0),
    failedRecords: Number(stopped.failedRecords ?? 0),
    'queueRecords (not flushed at exit)': Number(stopped.queueRecords ?? 0),
  };
  const expectedRecords = 2 * clientResult.done;
  const silentlyLost = expectedRecords - count.records - Object.values(countedLosses).reduce((a, b) => a + b, 0);

  const loadValues = samples.slice(1).map((s) => s.load1);

  const measured: Measured = {
    options: o,
    when: new Date().toISOString(),
    commit,
    uncommitted,
    kernel: release(),
    cpus: cpus().length,
    command: `SOAK_SECONDS=${o.seconds} SOAK_RATE=${o.rate} make soak`,
    load: {
      before: loadBefore,
      after: loadAfter,
      load1Mean: loadValues.reduce((a, b) => a + b, 0) / loadValues.length,
      load1Max: Math.max(...loadValues),
    },
    client: clientResult,
    achievedRate: clientResult.done / clientResult.seconds,
    dns,
    samples,
    flowtapCpuPercent: (100 * cpuTotal) / wall,
    collector: count,
    stopped,
    metrics,
    expectedRecords,
    countedLosses,
    silentlyLost,
  };
  return { ...measured, ...judge(measured) };
}

type Judged = 'rss' | 'heapUsed' | 'fds' | 'verdict';
type Measured = Omit<SoakResult, Judged>;

/** The trends and the verdict, from what was measured (also for a saved result: --render). */
export function judge(r: Measured): Pick<SoakResult, Judged> {
  const { samples, options: o, collector: count, stopped, silentlyLost } = r;
  const rss = trend(samples, o.warmupSeconds, (s) => s.rssMiB);
  const heapUsed = trend(samples, o.warmupSeconds, (s) => s.heapUsedMiB);
  const fds = trend(samples, o.warmupSeconds, (s) => s.fds);
  const reasons: string[] = [];
  if (!(rss.slopePerMinute < RSS_SLOPE_LIMIT_MIB_PER_MIN))
    reasons.push(`RSS slope ${rss.slopePerMinute.toFixed(2)} MiB/min is not below ${RSS_SLOPE_LIMIT_MIB_PER_MIN}`);
  if (!(fds.max - fds.min <= FD_SPREAD_LIMIT)) reasons.push(`open fds ranged ${fds.min}..${fds.max} after the warm-up (more than ${FD_SPREAD_LIMIT} apart)`);
  if (silentlyLost !== 0) reasons.push(`${silentlyLost} records neither at the collector nor counted by flowtap`);
  if (count.records !== Number(stopped.exportedRecords))
    reasons.push(`collector has ${count.records} records, flowtap says it exported ${String(stopped.exportedRecords)}`);
  if (count.sameTimestamp !== 0) reasons.push(`${count.sameTimestamp} records share a kind and a timestamp with another (duplicates?)`);
  const flat = rss.slopePerMinute < RSS_SLOPE_LIMIT_MIB_PER_MIN && fds.max - fds.min <= FD_SPREAD_LIMIT;
  const nothingLostSilently = silentlyLost === 0 && count.records === Number(stopped.exportedRecords) && count.sameTimestamp === 0;
  return { rss, heapUsed, fds, verdict: { flat, nothingLostSilently, pass: flat && nothingLostSilently, reasons } };
}

export function renderSoak(r: SoakResult): string {
  const o = r.options;
  const f1 = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '–');
  const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '–');
  const row = (what: string, t: Trend, fmt: (n: number) => string, unit: string): string =>
    `| ${what} | ${fmt(t.start)} | ${fmt(t.end)} | ${fmt(t.min)} | ${fmt(t.max)} | ${f2(t.slopePerMinute)} ${unit}/min | ` +
    `${f2(t.halvesSlopePerMinute[0])} / ${f2(t.halvesSlopePerMinute[1])} |`;
  const [h1, h2] = r.rss.halvesSlopePerMinute;
  const halvesDisagree = Math.sign(h1) !== Math.sign(h2) || Math.max(h1, h2) >= RSS_SLOPE_LIMIT_MIB_PER_MIN;
  const idle = r.samples[0];
  const losses = Object.entries(r.countedLosses)
    .filter(([, n]) => n !== 0)
    .map(([k, n]) => `${k} ${n}`);
  const stoppedProbe = (r.stopped.probe ?? {}) as Record<string, number>;
  const m = (name: string): string => (r.metrics[name] === undefined ? '–' : String(r.metrics[name]));
  return [
    '## Soak',
    '',
    `${(o.seconds / 60).toFixed(o.seconds % 60 === 0 ? 0 : 1)} minutes of the real kernel path: \`loadgen tcp-client\` in a throwaway cgroup ` +
      `opening and closing TCP connections over loopback at ${o.rate}/s (${o.workers} workers, fixed schedule)` +
      (r.dns.enabled
        ? `, and ${o.dnsRate} DNS answers/s from 127.0.0.153:53, each a new name (TTL ${DNS_TTL_SECONDS} s; every 10th the name of 127.0.0.1)`
        : '') +
      '; flowtap (`node --trace-gc dist/cli.js`, default settings, summary line every ' +
      `${o.sampleSeconds} s) exporting to a real OpenTelemetry Collector. Sampled every ${o.sampleSeconds} s; ` +
      `trends over the samples after the first ${o.warmupSeconds} s.`,
    '',
    `Command: \`${r.command}\` — ${r.when.slice(0, 16).replace('T', ' ')} UTC, commit ${r.commit}` +
      (r.uncommitted.length > 0 ? ` (with uncommitted changes to ${r.uncommitted.join(', ')})` : '') +
      `, Linux ${r.kernel}, ${r.cpus} CPUs. ` +
      `Load average (1/5/15 min) before: ${r.load.before}, after: ${r.load.after}; 1-min load during the run: mean ${f1(r.load.load1Mean)}, max ${f1(r.load.load1Max)}.`,
    '',
    `| after warm-up | start | end | min | max | least-squares slope | slope, 1st / 2nd half |`,
    '|---|---|---|---|---|---|---|',
    row('RSS (MiB)', r.rss, f1, 'MiB'),
    row('V8 heap used after GC (MiB)', r.heapUsed, f1, 'MiB'),
    row('open fds', r.fds, (n) => String(n), 'fds'),
    '',
    ...(halvesDisagree
      ? [
          `The RSS slopes of the two halves (${f2(h1)} and ${f2(h2)} MiB/min) disagree: over this run the RSS trend is within its own ` +
            `noise (${f1(r.rss.min)}–${f1(r.rss.max)} MiB), so a leak slower than about ${f1(Math.max(Math.abs(h1), Math.abs(h2)))} MiB/min ` +
            'cannot be ruled out; a longer run (SOAK_SECONDS=3600) would tell.',
          '',
        ]
      : []),
    `Before the load (idle, attached): RSS ${f1(idle.rssMiB)} MiB, heap ${f1(idle.heapUsedMiB)} MiB, ${idle.fds} fds. ` +
      `flowtap used ${f1(r.flowtapCpuPercent)} % of one CPU during the load.`,
    '',
    `Traffic and records: ${r.client.done} connections made (${f1(r.achievedRate)}/s achieved, ${r.client.errors} client errors); ` +
      `the kernel reported ${stoppedProbe.flow_begin ?? '–'} begins and ${stoppedProbe.flow_end ?? '–'} ends; ` +
      `the collector has ${r.collector.records} records (${r.collector.begins} begins, ${r.collector.ends} ends; ` +
      `${r.collector.sameTimestamp} sharing a timestamp); flowtap says it exported ${String(r.stopped.exportedRecords)}. ` +
      `Expected ${r.expectedRecords} (2 per connection); counted by flowtap as lost: ${losses.length === 0 ? 'none' : losses.join(', ')}; ` +
      `lost without a count: ${r.silentlyLost}. Retried: ${String(r.stopped.retriedRecords)} records.` +
      (r.dns.enabled
        ? ` DNS: ${r.dns.queries} queries, ${r.dns.answers} answers; the cache held ${f1(r.samples[r.samples.length - 1].dnsNames)} names at the end.`
        : ` ${r.dns.note ?? 'No DNS.'}`),
    '',
    `flowtap's own metrics at the collector (last values): flowtap.records.exported ${m('flowtap.records.exported{}')}, ` +
      `flowtap.records.retried ${m('flowtap.records.retried{}')}, flowtap.export_queue.records ${m('flowtap.export_queue.records{}')}, ` +
      `flowtap.records.dropped{queue_full} ${m('flowtap.records.dropped{flowtap.reason=queue_full}')}, ` +
      `flowtap.records.dropped{ring_buffer_full} ${m('flowtap.records.dropped{flowtap.reason=ring_buffer_full}')}.`,
    '',
    `Flat means: RSS slope after the warm-up below ${RSS_SLOPE_LIMIT_MIB_PER_MIN} MiB/min, and the open fd count within ${FD_SPREAD_LIMIT} of its ` +
      'minimum after the warm-up. Nothing lost silently means: 2 × connections − records at the collector = what flowtap counted as lost, ' +
      'the collector has exactly the records flowtap says it exported, and no two records of a kind share a timestamp.',
    '',
    `**${r.verdict.pass ? 'PASS' : 'FAIL'}**: ${r.verdict.flat ? 'flat' : 'not flat'}, ` +
      `${r.verdict.nothingLostSilently ? 'nothing lost silently' : 'records unaccounted for'}` +
      (r.verdict.reasons.length > 0 ? ` (${r.verdict.reasons.join('; ')})` : '') +
      (r.verdict.flat && halvesDisagree ? '. Flat by the whole-run slope; the halves above say how firm that is.' : '.'),
    '',
  ].join('\n');
}

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} must be a non-negative number, got '${raw}'`);
  return v;
}

if (import.meta.main && process.argv[2] === '--render') {
  // Re-judge and re-render a saved result: node bench/soak.mts --render bench/out/soak.json
  const saved = JSON.parse(readFileSync(process.argv[3], 'utf8')) as SoakResult;
  const result = { ...saved, ...judge(saved) };
  process.stdout.write(renderSoak(result));
  process.stdout.write(`${result.verdict.pass ? 'PASS' : 'FAIL'}\n`);
} else if (import.meta.main) {
  const options: SoakOptions = {
    seconds: envNumber('SOAK_SECONDS', 600),
    rate: envNumber('SOAK_RATE', 500),
    workers: envNumber('SOAK_WORKERS', 4),
    dnsRate: envNumber('SOAK_DNS_RATE', 20),
    warmupSeconds: envNumber('SOAK_WARMUP_SECONDS', 60),
    sampleSeconds: envNumber('SOAK_SAMPLE_SECONDS', 5),
  };
  const result = await soak(options);
  ensureDir(OUT);
  const md = renderSoak(result);
  writeFileSync(join(OUT, 'soak.json'), JSON.stringify(result, null, 2) + '\n');
  writeFileSync(join(OUT, 'soak.md'), md);
  process.stdout.write(md);
  process.stdout.write(`${result.verdict.pass ? 'PASS' : 'FAIL'}\n`);
  process.exitCode = result.verdict.pass ? 0 : 1;
}
