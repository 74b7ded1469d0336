/**
 * flowtap's own metrics, health endpoints and summary line, with the real CLI,
 * the real kernel programs on a throwaway cgroup, real sockets, and the real
 * OpenTelemetry Collector: the metrics are read back from what the
 * collector's file exporter wrote, and compared with known traffic and with
 * flowtap's own `stopped` line. The retry tests send the records elsewhere —
 * a scripted gRPC receiver that answers UNAVAILABLE (fake-collector.ts), or a
 * second real collector that is down at first — while the metrics go to the
 * real collector, which stays up.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { startCollector, type CollectedMetricPoint, type RunningCollector } from '../helpers/collector';
import { startFakeCollector, type FakeCollector } from '../helpers/fake-collector';
import { expectStoppedMatches, finalLines, startFlowtap, type RunningFlowtap } from '../helpers/flowtap';
import { freePort } from '../helpers/ports';
import { connectFrom, enableBpfStats, listen, useCliFixture, waitFor } from '../helpers/traffic';

function httpGet(address: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
  return new Promise((resolve, reject) => {
    const req = request({ host: m[1], port: Number(m[2]), path }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** TCP sockets in LISTEN state that belong to process `pid` (its fds, matched against /proc/<pid>/net/tcp{,6}). */
function listeningSockets(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode (field 9)
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) out.push(`${table} ${f[1]}`);
    }
  }
  return out;
}

const UNAVAILABLE = 14;

/** The last value of each metric (name + attributes) in file order. */
function lastValues(points: CollectedMetricPoint[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of points) out.set(`${p.name}${JSON.stringify(p.attributes)}`, Number(p.value));
  return out;
}

describe('self-telemetry, health and summary (real CLI, real kernel programs, real collector)', () => {
  const fx = useCliFixture('telemetry');
  const { servers } = fx;

  it('metrics at the collector match the traffic and the stopped line; summary lines; health endpoints', async () => {
    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    const run = `telemetry-${process.pid}-${Date.now()}`;
    const stopStats = await enableBpfStats();
    let ft: RunningFlowtap;
    try {
      ft = await startFlowtap(
        [
          '--cgroup',
          fx.cg.path,
          '--endpoint',
          fx.collector.endpoint,
          '--summary-interval-seconds',
          '1',
          '--health-address',
          '127.0.0.1:0',
          '--log-level',
          'debug',
        ],
        { OTEL_BLRP_SCHEDULE_DELAY: '100', OTEL_METRIC_EXPORT_INTERVAL: '500', OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}` },
      );
      const ready = ft.logs().find((l) => l.msg === 'ready')!;
      expect(ready.metrics).toBe(fx.collector.endpoint);
      const health = ready.healthAddress as string;
      expect(health).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(await httpGet(health, '/healthz')).toEqual({ status: 200, body: { status: 'ok', probe: 'attached', reader: 'ok' } });
      expect(await httpGet(health, '/readyz')).toMatchObject({ status: 200, body: { status: 'ready' } });

      const conns = await connectFrom(fx.cg, '127.0.0.1', port, 5);
      expect(conns.every((c) => c.ok)).toBe(true);
      await fx.collector.waitForLogRecords((r) => r.resource['test.run'] === run && r.eventName === 'flowtap.flow.end', 10_000, 5);
      // readiness now also reports the last successful export
      expect((await httpGet(health, '/readyz')).body.lastExportSuccess).toEqual(expect.any(String));
      // the summary lines count what happened in each interval: together, the 5 flows and their 10 records
      const sum = (key: string) =>
        ft
          .logs()
          .filter((l) => l.msg === 'summary')
          .reduce((n, l) => n + Number(l[key]), 0);
      await waitFor('summary lines counting every record', () => (sum('exported') === 10 ? true : undefined));
      expect({ begun: sum('begun'), ended: sum('ended'), failed: sum('failed'), dropped: sum('dropped') }).toEqual({
        begun: 5,
        ended: 5,
        failed: 0,
        dropped: 0,
      });
      for (const l of ft.logs().filter((x) => x.msg === 'summary')) {
        expect(Object.keys(l)).toEqual(['time', 'level', 'msg', 'seconds', 'begun', 'ended', 'exported', 'failed', 'dropped', 'dnsRefused', 'export']);
        expect(l).toMatchObject({ level: 'info', seconds: 1, export: 'ok' });
      }
    } finally {
      stopStats();
    }

    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    const { counters: last, stopped: short } = finalLines(ft);
    expectStoppedMatches(last, short);
    expect(short).toMatchObject({ flowsBegun: 5, flowsEnded: 5, exportedRecords: 10, failedRecords: 0, droppedRecords: 0 });
    const probe = last.probe as Record<string, number>;
    // summary lines came once a second (--summary-interval-seconds 1) from ready to stop, none missing: a second
    // apart (timers are late under load, never early), the first a second after ready, the stop within a second after the last
    const summaries = ft.logs().filter((l) => l.msg === 'summary');
    const times = [ft.logs().find((l) => l.msg === 'ready')!, ...summaries, last].map((l) => Date.parse(l.time as string));
    for (let i = 1; i < times.length; i++) {
      if (i < times.length - 1) expect(times[i] - times[i - 1]).toBeGreaterThanOrEqual(900);
      expect(times[i] - times[i - 1]).toBeLessThanOrEqual(1800);
    }

    const ours = () => fx.collector.readMetricPoints().filter((p) => p.resource['test.run'] === run);
    // the final export (at shutdown) carries the stopped line's numbers
    await waitFor('the final metrics', () => (lastValues(ours()).get('flowtap.records.exported{}') === last.exportedRecords ? true : undefined));
    const points = ours();
    const v = lastValues(points);
    const get = (name: string, attrs: Record<string, string> = {}) => v.get(`${name}${JSON.stringify(attrs)}`);

    expect(last).toMatchObject({ flows: 10, emitted: 10, exportedRecords: 10, failedRecords: 0, droppedRecords: 0, decodeErrors: 0 });
    expect(get('flowtap.flow.events', { 'flowtap.event.type': 'begin' })).toBe(5);
    expect(get('flowtap.flow.events', { 'flowtap.event.type': 'end' })).toBe(5);
    expect(get('flowtap.records.emitted')).toBe(10);
    expect(get('flowtap.records.exported')).toBe(10);
    for (const reason of ['ring_buffer_full', 'handoff', 'queue_full', 'export_failed']) {
      expect(get('flowtap.records.dropped', { 'flowtap.reason': reason })).toBe(0);
    }
    // nothing failed, so nothing was retried, and the queue is empty again
    expect(last).toMatchObject({ retriedRecords: 0, queueRecords: 0, queueBytes: 0, queueCapacity: 200000 });
    expect(get('flowtap.records.retried')).toBe(0);
    expect(get('flowtap.export_queue.records')).toBe(0);
    expect(get('flowtap.export_queue.bytes')).toBe(0);
    expect(get('flowtap.export_queue.capacity')).toBe(200000);
    expect(get('flowtap.errors', { 'error.type': 'decode' })).toBe(0);
    expect(get('flowtap.errors', { 'error.type': 'processing' })).toBe(0);
    expect(get('flowtap.dns.responses.dropped', { 'flowtap.reason': 'ring_buffer_full' })).toBe(0);
    // no DNS in this test: every lookup (source and destination of 10 records) missed
    expect(get('flowtap.dns.cache.lookups', { 'flowtap.lookup.result': 'miss' })).toBe(20);
    expect(get('flowtap.dns.cache.lookups', { 'flowtap.lookup.result': 'hit' })).toBe(0);
    expect(get('flowtap.dns.cache.names')).toBe(0);
    // whole packets on loopback: none skipped as truncated, by the metric and by the probe's own counter
    expect(get('flowtap.packets.skipped', { 'flowtap.reason': 'truncated' })).toBe(0);
    expect(probe.skip_truncated).toBe(0);
    // the programs ran while statistics were on, at least for the 5 SYN-ACKs and FINs
    for (const program of ['ingress', 'egress']) {
      expect(get('flowtap.bpf.program.runs', { 'flowtap.bpf.program': program })).toBeGreaterThan(0);
      expect(get('flowtap.bpf.program.run_time', { 'flowtap.bpf.program': program })).toBeGreaterThan(0);
    }
    // every flow ended, so the flow table is empty again at the final export
    expect(get('flowtap.flow_table.entries')).toBe(0);
    // OTEL_METRIC_EXPORT_INTERVAL=500 was honoured: several exports, not one per minute
    const exports = new Set(points.filter((p) => p.name === 'flowtap.records.exported').map((p) => p.timeUnixNano));
    expect(exports.size).toBeGreaterThanOrEqual(2);
    const sample = points.find((p) => p.name === 'flowtap.records.exported')!;
    expect(sample).toMatchObject({ kind: 'sum', unit: '{record}', scope: { name: 'flowtap' } });
    expect(sample.resource['service.name']).toBe('flowtap');
  });

  it('records of failed sends are counted as retried: the metric equals the records of every failed call the receiver saw', async () => {
    // Records go to a gRPC receiver that answers the first three calls
    // UNAVAILABLE; metrics go to the real collector, which stays up.
    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    const fake: FakeCollector = await startFakeCollector((call) => (call < 3 ? UNAVAILABLE : 0));
    try {
      const run = `retried-${process.pid}-${Date.now()}`;
      const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', fake.endpoint, '--log-level', 'debug'], {
        OTEL_BLRP_SCHEDULE_DELAY: '100',
        OTEL_METRIC_EXPORT_INTERVAL: '300',
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: fx.collector.endpoint,
        OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}`,
      });
      const conns = await connectFrom(fx.cg, '127.0.0.1', port, 5);
      expect(conns.every((c) => c.ok)).toBe(true);
      await waitFor('the 10 records accepted after three UNAVAILABLE answers', () => (fake.accepted.length >= 10 ? true : undefined), 20_000);
      expect((await ft.stop()).code).toBe(0);

      const failedCalls = fake.calls.filter((c) => c.code !== 0);
      expect(failedCalls.map((c) => c.code)).toEqual([UNAVAILABLE, UNAVAILABLE, UNAVAILABLE]);
      const retriedAtReceiver = failedCalls.reduce((n, c) => n + c.records, 0);
      expect(retriedAtReceiver).toBeGreaterThanOrEqual(3); // the first batch, three times
      // every record arrived once
      expect(fake.accepted).toHaveLength(10);
      const { counters: stopped, stopped: short } = finalLines(ft);
      expectStoppedMatches(stopped, short);
      expect(stopped).toMatchObject({ exportedRecords: 10, failedRecords: 0, droppedRecords: 0, queueRecords: 0, queueBytes: 0 });
      expect(stopped.retriedRecords).toBe(retriedAtReceiver);

      const ours = () => fx.collector.readMetricPoints().filter((p) => p.resource['test.run'] === run);
      await waitFor('the final metrics', () => (lastValues(ours()).get('flowtap.records.exported{}') === 10 ? true : undefined));
      const points = ours();
      const v = lastValues(points);
      expect(v.get('flowtap.records.retried{}')).toBe(retriedAtReceiver);
      expect(v.get('flowtap.export_queue.records{}')).toBe(0);
      // while the receiver failed, the records waited in the queue, and the gauges said so
      const heldWhileFailing = points.filter((p) => p.name === 'flowtap.export_queue.records' && Number(p.value) > 0);
      expect(heldWhileFailing.length).toBeGreaterThan(0);
      const bytesThen = points.filter((p) => p.name === 'flowtap.export_queue.bytes' && heldWhileFailing.some((h) => h.timeUnixNano === p.timeUnixNano));
      expect(bytesThen.every((p) => Number(p.value) > 0)).toBe(true);
      const retriedSeries = points.filter((p) => p.name === 'flowtap.records.retried').map((p) => Number(p.value));
      expect(retriedSeries).toEqual([...retriedSeries].sort((a, b) => a - b)); // cumulative: never goes down
      const sample = points.find((p) => p.name === 'flowtap.records.retried')!;
      expect(sample).toMatchObject({ kind: 'sum', unit: '{record}' });
    } finally {
      await fake.close();
    }
  });

  it('a collector that is down at first: every record is held (the queue gauge says how many), retried, and delivered once it comes up', async () => {
    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    // Records go to a second real collector, stopped before flowtap starts; metrics to the suite's, which stays up.
    const down: RunningCollector = await startCollector();
    try {
      await down.stop();
      const run = `down-${process.pid}-${Date.now()}`;
      const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', down.endpoint, '--summary-interval-seconds', '1', '--log-level', 'debug'], {
        OTEL_BLRP_SCHEDULE_DELAY: '100',
        OTEL_METRIC_EXPORT_INTERVAL: '300',
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: fx.collector.endpoint,
        OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}`,
      });
      const conns = await connectFrom(fx.cg, '127.0.0.1', port, 5);
      expect(conns.every((c) => c.ok)).toBe(true);
      const ours = () => fx.collector.readMetricPoints().filter((p) => p.resource['test.run'] === run);
      // all 10 records emitted, none deliverable: the queue gauge at the collector shows exactly them
      await waitFor('the queue gauge at 10 records', () =>
        ours().some((p) => p.name === 'flowtap.export_queue.records' && Number(p.value) === 10) ? true : undefined,
      );
      const retriedWhileDown = await waitFor('a retried count while down', () => {
        const n = lastValues(ours()).get('flowtap.records.retried{}');
        return n !== undefined && n > 0 ? n : undefined;
      });
      expect(lastValues(ours()).get('flowtap.records.exported{}')).toBe(0);

      await down.restart();
      await down.waitForLogRecords((r) => r.resource['test.run'] === run, 20_000, 10);
      expect((await ft.stop()).code).toBe(0);
      const { counters: stopped, stopped: short } = finalLines(ft);
      expectStoppedMatches(stopped, short);
      expect(stopped).toMatchObject({ exportedRecords: 10, failedRecords: 0, droppedRecords: 0, queueRecords: 0 });
      expect(stopped.retriedRecords as number).toBeGreaterThanOrEqual(retriedWhileDown);
      // a person reading the log saw the exports failing, then one line when they worked again
      expect(ft.logs().some((l) => l.msg === 'summary' && l.export === 'failing')).toBe(true);
      expect(ft.logs().filter((l) => l.msg === 'exports recovered')).toEqual([
        expect.objectContaining({ level: 'info', destination: down.endpoint, items: 'records' }),
      ]);
      // the collector that was down got every record once
      const records = down.readLogRecords().filter((r) => r.resource['test.run'] === run);
      expect(records).toHaveLength(10);
      expect(new Set(records.map((r) => `${r.eventName} ${String(r.attributes['source.port'])}`)).size).toBe(10);

      await waitFor('the final metrics', () => (lastValues(ours()).get('flowtap.records.exported{}') === 10 ? true : undefined));
      const v = lastValues(ours());
      expect(v.get('flowtap.records.retried{}')).toBe(stopped.retriedRecords);
      expect(v.get('flowtap.export_queue.records{}')).toBe(0);
      expect(v.get('flowtap.export_queue.bytes{}')).toBe(0);
    } finally {
      await down.close();
    }
  });

  it('/readyz fails while exports keep failing, /healthz stays ok', async () => {
    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    const deadPort = await freePort(); // nothing listens there
    const ft = await startFlowtap(
      ['--cgroup', fx.cg.path, '--endpoint', `http://127.0.0.1:${deadPort}`, '--health-address', '127.0.0.1:0', '--ready-export-failure-seconds', '1'],
      { OTEL_BLRP_SCHEDULE_DELAY: '100', OTEL_EXPORTER_OTLP_TIMEOUT: '300', OTEL_METRICS_EXPORTER: 'none' },
    );
    const health = ft.logs().find((l) => l.msg === 'ready')!.healthAddress as string;
    expect((await httpGet(health, '/readyz')).status).toBe(200);
    await connectFrom(fx.cg, '127.0.0.1', port, 1);
    let readyz = await httpGet(health, '/readyz');
    const deadline = Date.now() + 10_000;
    while (readyz.status === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      readyz = await httpGet(health, '/readyz');
    }
    expect(readyz).toMatchObject({ status: 503, body: { status: 'not ready', reason: 'exports failing' } });
    expect(readyz.body.exportFailingSeconds).toBeGreaterThanOrEqual(1);
    expect(await httpGet(health, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(ft.child.exitCode).toBeNull();
    expect((await ft.stop()).code).toBe(0);
  });

  it('/readyz counts a stall from the first unanswered request, not from its deadline', async () => {
    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    // Accepts connections, reads, never answers: the request's own deadline is 20 s away.
    const silentServer = createServer((sock) => sock.on('error', () => undefined));
    servers.push(silentServer);
    await new Promise<void>((r) => silentServer.listen({ host: '127.0.0.1', port: 0 }, r));
    const silent = { port: (silentServer.address() as AddressInfo).port };
    const ft = await startFlowtap(
      ['--cgroup', fx.cg.path, '--endpoint', `http://127.0.0.1:${silent.port}`, '--health-address', '127.0.0.1:0', '--ready-export-failure-seconds', '2'],
      { OTEL_BLRP_SCHEDULE_DELAY: '100', OTEL_EXPORTER_OTLP_TIMEOUT: '20000', OTEL_METRICS_EXPORTER: 'none' },
    );
    const health = ft.logs().find((l) => l.msg === 'ready')!.healthAddress as string;
    expect((await httpGet(health, '/readyz')).status).toBe(200);
    const sentAt = Date.now();
    await connectFrom(fx.cg, '127.0.0.1', port, 1);
    let readyz = await httpGet(health, '/readyz');
    while (readyz.status === 200 && Date.now() < sentAt + 15_000) {
      await new Promise((r) => setTimeout(r, 100));
      readyz = await httpGet(health, '/readyz');
    }
    const notReadyAfterMs = Date.now() - sentAt;
    expect(readyz).toMatchObject({ status: 503, body: { status: 'not ready', reason: 'exports unanswered' } });
    // 2 s of stall plus the batch delay and polling; far from the 20 s deadline (plus 2 s) it took before.
    expect(notReadyAfterMs).toBeGreaterThanOrEqual(2_000);
    expect(notReadyAfterMs).toBeLessThan(6_000);
    expect(await httpGet(health, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect((await ft.stop()).code).toBe(0);
  });

  it('opens no listening socket without --health-address, and writes no summary line by default', async () => {
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', fx.collector.endpoint], { OTEL_METRIC_EXPORT_INTERVAL: '200' });
    // metrics and records are being exported meanwhile: client sockets only
    await new Promise((r) => setTimeout(r, 600));
    expect(listeningSockets(ft.child.pid!)).toEqual([]);
    expect(ft.logs().find((l) => l.msg === 'ready')!.healthAddress).toBeUndefined();
    expect((await ft.stop()).code).toBe(0);
    expect(ft.logs().filter((l) => l.msg === 'summary')).toEqual([]);

    // the check itself finds the health socket when there is one
    const on = await startFlowtap(['--cgroup', fx.cg.path, '--exporter', 'none', '--health-address', '127.0.0.1:0']);
    expect(listeningSockets(on.child.pid!)).toHaveLength(1);
    expect((await on.stop()).code).toBe(0);
  });
});
