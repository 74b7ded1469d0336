/**
 * A real log store end to end: known traffic (a real DNS server, a real
 * resolver, the real kernel programs) recorded by two real flowtaps on the
 * same cgroup, one sending straight to VictoriaLogs over OTLP/HTTP, one over
 * OTLP/gRPC to the real collector running deploy/collector/victorialogs.yaml
 * (otlp_http exporter) into a second VictoriaLogs. Then every LogsQL query in
 * docs/queries.md, read from the file, runs against both, and each answer is
 * checked against the traffic.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as semconv from '../../src/record/semconv';
import { TestCgroup, collect } from '../helpers/cgroup';
import { collectorBinary } from '../helpers/collector';
import { freePorts } from '../helpers/ports';
import { startDnsmasq, type Dnsmasq } from '../helpers/dnsmasq';
import { killAllFlowtaps, startFlowtap, type RunningFlowtap } from '../helpers/flowtap';
import { TestNet } from '../helpers/netns';
import { startVictoriaLogs, type Row, type RunningVictoriaLogs } from '../helpers/victorialogs';

const ROOT = resolve(__dirname, '..', '..');
const QUERIES = join(ROOT, 'docs', 'queries.md');
const RESOLVE = join(__dirname, '..', 'fixtures', 'resolve-connect.js');
const SERVER = join(__dirname, '..', 'fixtures', 'tcp-server.js');
const CLIENT = join(__dirname, '..', 'fixtures', 'tcp-client.js');
const PORT = 8080;

/**
 * flowtap's own names as docs/queries.md writes them, and the name this build
 * emits for each (from src/record/semconv). Once the emitted names are these,
 * every pair is the same name twice.
 */
const NAMES: ReadonlyArray<readonly [documented: string, emitted: string]> = [
  ['flowtap.flow.destination.domains', semconv.ATTR_FLOWTAP_FLOW_DESTINATION_DOMAINS],
  ['flowtap.flow.source.domains', semconv.ATTR_FLOWTAP_FLOW_SOURCE_DOMAINS],
  ['flowtap.flow.direction', semconv.ATTR_FLOWTAP_FLOW_DIRECTION],
  ['flowtap.flow.duration', semconv.ATTR_FLOWTAP_FLOW_DURATION],
  ['flowtap.flow.begin', semconv.EVENT_FLOWTAP_FLOW_BEGIN],
  ['flowtap.flow.end', semconv.EVENT_FLOWTAP_FLOW_END],
];
const emitted = (documented: string): string => NAMES.find(([d]) => d === documented)?.[1] ?? documented;

interface DocQuery {
  heading: string;
  logsql: string;
}

/** Every ```logsql block of docs/queries.md, with the `## ` heading it is under. */
function documentedQueries(): DocQuery[] {
  const out: DocQuery[] = [];
  let heading = '';
  const lines = readFileSync(QUERIES, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith('## ')) heading = lines[i].slice(3).trim();
    if (lines[i].trim() !== '```logsql') continue;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i].trim() !== '```'; i++) body.push(lines[i]);
    out.push({ heading, logsql: body.join('\n').trim() });
  }
  return out;
}

/** A whole-word replacement of each `from` in `text` (longest first, so no name is replaced inside another). */
function substitute(text: string, pairs: ReadonlyArray<readonly [string, string]>): string {
  const sorted = [...pairs].sort((a, b) => b[0].length - a[0].length);
  const pattern = new RegExp(sorted.map(([from]) => from.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('|'), 'g');
  return text.replace(pattern, (m) => sorted.find(([from]) => from === m)![1]);
}

/** The collector running the shipped config, its receivers moved to free loopback ports. */
async function startShippedCollector(victoriaLogsBase: string): Promise<{ endpoint: string; child: ChildProcess; output: () => string }> {
  const [grpc, http] = await freePorts(2);
  const child = spawn(
    await collectorBinary(),
    [
      '--config',
      join(ROOT, 'deploy', 'collector', 'victorialogs.yaml'),
      '--config',
      `yaml:receivers::otlp::protocols::grpc::endpoint: 127.0.0.1:${grpc}`,
      '--config',
      `yaml:receivers::otlp::protocols::http::endpoint: 127.0.0.1:${http}`,
      '--config',
      'yaml:service::telemetry::metrics::level: none',
      // The batch processor's default 200 ms and the exporter's queue: records reach VictoriaLogs within a second.
    ],
    { env: { PATH: process.env.PATH ?? '', VICTORIALOGS_ENDPOINT: victoriaLogsBase }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const deadline = Date.now() + 30_000;
  while (!out.includes('Everything is ready')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the collector did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { endpoint: `http://127.0.0.1:${grpc}`, child, output: () => out };
}

describe('flowtap → VictoriaLogs (directly over OTLP/HTTP, and through the collector): every query of docs/queries.md', () => {
  let net: TestNet;
  let cg: TestCgroup;
  let dns: Dnsmasq;
  let server: ChildProcess;
  let direct: RunningVictoriaLogs;
  let viaCollector: RunningVictoriaLogs;
  let collector: Awaited<ReturnType<typeof startShippedCollector>>;
  let flowtaps: RunningFlowtap[];
  const ip = (n: number) => net.v4(n);
  const queries = documentedQueries();
  /** Placeholders of docs/queries.md → this test's names and addresses. */
  let placeholders: [string, string][];

  beforeAll(async () => {
    net = new TestNet();
    for (const n of [3, 4]) net.addAddress(net.b, ip(n));
    dns = await startDnsmasq(
      net.b.prefix,
      [net.b.ipv4],
      [`host-record=web.flowtap.test,${ip(2)}`, `host-record=api.flowtap.test,${ip(3)}`, `host-record=db.flowtap.test,${ip(4)}`],
    );
    server = net.spawnIn(net.b, process.execPath, [SERVER, '::', String(PORT)]);
    await new Promise((r) => server.stdout!.once('data', r));
    [direct, viaCollector] = await Promise.all([startVictoriaLogs(), startVictoriaLogs()]);
    collector = await startShippedCollector(viaCollector.otlpBaseUrl);
    cg = new TestCgroup('vlogs');
    const common = ['--cgroup', cg.path, '--metrics', 'none'];
    flowtaps = await Promise.all([
      startFlowtap([...common, '--endpoint', direct.otlpLogsUrl], { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_BLRP_SCHEDULE_DELAY: '100' }),
      startFlowtap([...common, '--endpoint', collector.endpoint], { OTEL_BLRP_SCHEDULE_DELAY: '100' }),
    ]);
    placeholders = [
      ['api.example.com', 'api.flowtap.test'],
      ['192.0.2.0/24', `${ip(2)}/31`], // .2 and .3: web and api, not db
    ];

    // The known traffic: web 3 flows, api 2, db 1 held open ~1.5 s.
    const resolveConnect = async (name: string, port = PORT) => {
      const child = cg.spawn('ip', ['netns', 'exec', net.a.ns, process.execPath, RESOLVE, net.b.ipv4, name, '4', String(port)]);
      expect(JSON.parse((await collect(child)).trim())).toMatchObject({ ok: true });
    };
    for (let i = 0; i < 3; i++) await resolveConnect('web.flowtap.test');
    for (let i = 0; i < 2; i++) await resolveConnect('api.flowtap.test');
    await resolveConnect('db.flowtap.test', 0); // resolve only: the DNS cache names ip(4)
    const hold = cg.spawn('ip', ['netns', 'exec', net.a.ns, process.execPath, CLIENT, ip(4), String(PORT), '1', '10000'], {
      env: { ...process.env, HOLD: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const result = collect(hold);
    await new Promise((r) => hold.stdout!.once('data', r)); // connected
    await new Promise((r) => setTimeout(r, 1500));
    hold.stdin!.write('\n');
    expect(JSON.parse((await result).trim().split('\n').pop()!)).toMatchObject({ ok: true });

    // One failed attempt: a connect to a port nothing listens on (refused), by a node process that
    // stays a moment after it, so its /proc entry names it when flowtap reads the record.
    const refused = cg.spawn('ip', [
      'netns',
      'exec',
      net.a.ns,
      process.execPath,
      '-e',
      `require('net').connect(${PORT + 1}, ${JSON.stringify(ip(2))}).on('error', (e) => { console.log(JSON.stringify({ error: e.code })); setTimeout(() => {}, 1500); })`,
    ]);
    expect(JSON.parse((await collect(refused)).trim())).toEqual({ error: 'ECONNREFUSED' });

    // A flow from 30 hours ago, written straight into VictoriaLogs (flowtap cannot date a record in the past):
    // api's address was seen before, so it is not "first seen in the last hour".
    const old = JSON.stringify({
      _time: new Date(Date.now() - 30 * 3600_000).toISOString(),
      _msg: 'an older flow',
      event_name: emitted('flowtap.flow.begin'),
      'source.address': net.a.ipv4,
      'destination.address': ip(3),
      'destination.port': String(PORT),
    });
    for (const vl of [direct, viaCollector]) {
      const res = await fetch(`${vl.url}/insert/jsonline?_stream_fields=event_name`, {
        method: 'POST',
        headers: { 'content-type': 'application/stream+json' },
        body: `${old}\n`,
      });
      expect(res.status).toBe(200);
    }

    // Everything arrived: 6 begins and 6 ends of today, and the old one.
    for (const vl of [direct, viaCollector]) {
      for (const event of ['flowtap.flow.begin', 'flowtap.flow.end']) {
        await vl.waitForRows(`_time:1h event_name:="${emitted(event)}" destination.port:=${PORT}`, 6, 20_000);
      }
      await vl.waitForRows(`_time:2d _msg:="an older flow"`, 1);
      await vl.waitForRows(`_time:1h event_name:="${emitted('flowtap.flow.attempt')}"`, 1, 20_000);
    }
  }, 120_000);

  afterAll(async () => {
    killAllFlowtaps();
    if (collector !== undefined && collector.child.exitCode === null) {
      const exited = new Promise((r) => collector.child.once('exit', r));
      collector.child.kill('SIGTERM');
      await exited;
    }
    if (server !== undefined && server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill();
      await exited;
    }
    await dns?.stop();
    await Promise.all([direct?.close(), viaCollector?.close()]);
    await cg?.destroy();
    net?.destroy();
  });

  /** The answer each question of docs/queries.md must give after the traffic above. */
  const expectations: Record<string, (rows: Row[]) => void> = {
    'Top destinations by domain': (rows) => {
      const domains = emitted('flowtap.flow.destination.domains');
      expect(rows.map((r) => [r[domains], r.flows])).toEqual([
        ['web.flowtap.test', '3'],
        ['api.flowtap.test', '2'],
        ['db.flowtap.test', '1'],
      ]);
    },
    'Who connected to a given domain': (rows) => {
      expect(rows).toEqual([{ 'source.address': net.a.ipv4, flows: '2' }]);
    },
    'Who connected to a given CIDR': (rows) => {
      expect(rows.map((r) => [r['source.address'], r['destination.address'], r.flows])).toEqual([
        [net.a.ipv4, ip(2), '3'],
        [net.a.ipv4, ip(3), '2'],
      ]);
    },
    'Destinations first seen in the last hour': (rows) => {
      expect(rows.map((r) => [r['destination.address'], r.recent]).sort()).toEqual([
        [ip(2), '3'],
        [ip(4), '1'],
      ]);
    },
    'The longest flows': (rows) => {
      const duration = emitted('flowtap.flow.duration');
      expect(rows).toHaveLength(6);
      expect(rows[0]).toMatchObject({ 'destination.address': ip(4), [emitted('flowtap.flow.destination.domains')]: '["db.flowtap.test"]' });
      const seconds = rows.map((r) => Number(r[duration]));
      expect(seconds[0]).toBeGreaterThanOrEqual(1.4);
      expect(seconds.slice(1).every((s) => s < 1)).toBe(true);
      expect(seconds).toEqual([...seconds].sort((a, b) => b - a));
    },
    'Failed attempts by process': (rows) => {
      expect(rows).toEqual([{ 'process.executable.name': 'node', attempts: '1' }]);
    },
    'Bytes by peer': (rows) => {
      // each flow: the client sends one byte, the server echoes it and closes
      expect(rows.map((r) => [r['destination.address'], r.sent, r.received])).toEqual([
        [ip(2), '3', '3'],
        [ip(3), '2', '2'],
        [ip(4), '1', '1'],
      ]);
    },
  };

  it('docs/queries.md has one query per question, and this test an answer for each', () => {
    expect(queries.map((q) => q.heading).sort()).toEqual(Object.keys(expectations).sort());
  });

  it.each([
    ['directly over OTLP/HTTP', () => direct],
    ['through the collector (deploy/collector/victorialogs.yaml)', () => viaCollector],
  ])('%s: each query answers what the traffic was', async (_route, vl) => {
    for (const q of queries) {
      const logsql = substitute(q.logsql, [...NAMES, ...placeholders]);
      const rows = await vl().query(logsql);
      try {
        expectations[q.heading](rows);
      } catch (e) {
        throw new Error(`"${q.heading}": ${logsql}\n${(e as Error).message}`);
      }
    }
  });

  it('a query VictoriaLogs cannot parse is refused: an answer above is never a silent parse failure', async () => {
    await expect(direct.query('_time:1h | stats by (source.address count()')).rejects.toMatchObject({ status: 400 });
  });

  it('both routes stored the same flows', async () => {
    const q = `_time:1h destination.port:=${PORT} | stats by (event_name, destination.address) count() n | sort by (event_name, destination.address)`;
    const [a, b] = await Promise.all([direct.query(q), viaCollector.query(q)]);
    expect(a).toEqual(b);
    expect(a.length).toBe(6); // 2 events x 3 addresses
    for (const f of flowtaps) expect(f.logs().filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
  });
});
