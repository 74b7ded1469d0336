/**
 * Flows as spans, end to end: the real CLI (real kernel programs on a
 * throwaway cgroup, real sockets) with `--spans otlp` sends each ended flow
 * to a real Jaeger (built from Go modules by deploy/setup/jaeger.sh), and the
 * spans are read back through Jaeger's HTTP query API. The records on stdout
 * (`--exporter console`) are the oracle: each span must carry its record's
 * end time, duration and attributes.
 */
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { collect } from '../helpers/cgroup';
import { startFlowtap, type RunningFlowtap } from '../helpers/flowtap';
import { startJaeger, tagsOf, type JaegerSpan, type RunningJaeger } from '../helpers/jaeger';
import { connectFrom, listen, useCliFixture, waitFor } from '../helpers/traffic';
import { EVENT_FLOWTAP_FLOW_BEGIN, EVENT_FLOWTAP_FLOW_END } from '../../src/record/semconv';

const CLIENT = join(__dirname, '..', 'fixtures', 'tcp-client.js');
const SERVER = join(__dirname, '..', 'fixtures', 'tcp-server.js');

interface ConsoleRecord {
  timestamp: string;
  eventName: string;
  attributes: Record<string, string | number | string[]>;
}

/** Epoch ns of an ISO-8601 time with 9 fractional digits. */
function isoToNs(iso: string): bigint {
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{9})Z$/.exec(iso)!;
  return BigInt(Date.parse(`${m[1]}Z`)) * 1_000_000n + BigInt(m[2]);
}

function records(ft: RunningFlowtap): ConsoleRecord[] {
  return ft
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as ConsoleRecord);
}

const flowKey = (a: Record<string, unknown>): string => `${a['source.port']}>${a['destination.port']}`;

describe('flowtap --spans otlp → real Jaeger (real kernel programs, real sockets)', () => {
  const fx = useCliFixture('spans');
  let jaeger: RunningJaeger;
  beforeAll(async () => {
    jaeger = await startJaeger();
  }, 600_000); // the first run builds Jaeger (about 4 minutes)
  afterAll(async () => {
    await jaeger?.close();
  });

  it('each ended flow is one span: kind, start and end, attributes and an error status on a reset; an open flow has none until it ends', async () => {
    const service = `flowtap-spans-${process.pid}-${Date.now()}`;
    const { server, port } = await listen('127.0.0.1');
    fx.servers.push(server);
    const inside: ChildProcess = fx.cg.spawn(process.execPath, [SERVER, '127.0.0.1', '0']);
    const innerPort = await new Promise<number>((resolve) =>
      inside.stdout!.once('data', (d) => resolve((JSON.parse(String(d)) as { listening: number }).listening)),
    );

    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--exporter', 'console', '--spans', 'otlp', '--spans-endpoint', jaeger.otlpEndpoint], {
      OTEL_SERVICE_NAME: service,
      OTEL_BLRP_SCHEDULE_DELAY: '100',
    });
    expect(ft.logs().find((l) => l.msg === 'ready')).toMatchObject({ spans: jaeger.otlpEndpoint });

    // A connection held open: its begin is a record, but it is no span yet.
    const held = fx.cg.spawn(process.execPath, [CLIENT, '127.0.0.1', String(port), '1', '20000'], {
      env: { ...process.env, HOLD: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const heldDone = collect(held);
    const heldAt = await new Promise<{ localPort: number }>((resolve) =>
      held.stdout!.once('data', (d) => resolve((JSON.parse(String(d)) as { connected: { localPort: number } }).connected)),
    );

    const fin = await connectFrom(fx.cg, '127.0.0.1', port, 2); // outgoing, closed with FIN
    const rst = await collect(fx.cg.spawn(process.execPath, [CLIENT, '127.0.0.1', String(port), '1'], { env: { ...process.env, RESET: '1' } })); // outgoing, reset
    const rstPort = (JSON.parse(rst.trim()) as { localPort: number }).localPort;
    const incoming = await new Promise<number>((resolve, reject) => {
      // from this process, outside the cgroup, to the server inside: incoming
      const s = connect({ host: '127.0.0.1', port: innerPort }, () => s.write('x'));
      s.on('data', () => undefined);
      s.on('end', () => {
        const p = s.localPort!;
        s.end();
        resolve(p);
      });
      s.on('error', reject);
    });
    expect(fin.every((c) => c.ok)).toBe(true);

    const ends = await waitFor('4 flow end records', () => {
      const e = records(ft).filter((r) => r.eventName === EVENT_FLOWTAP_FLOW_END);
      return e.length >= 4 ? e : undefined;
    });
    expect(ends).toHaveLength(4);
    let found: JaegerSpan[] = [];
    let processes: Record<string, { serviceName: string }> = {};
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      const traces = await jaeger.traces(service);
      found = traces.flatMap((t) => t.spans);
      processes = Object.assign({}, ...traces.map((t) => t.processes));
      if (found.length >= 4) break;
    }
    expect(found).toHaveLength(4);
    // one trace per flow, the span its root
    expect(new Set(found.map((s) => s.traceID)).size).toBe(4);
    for (const p of Object.values(processes)) expect(p.serviceName).toBe(service);

    const byFlow = new Map(found.map((s) => [flowKey(tagsOf(s)), s]));
    const begins = new Map(
      records(ft)
        .filter((r) => r.eventName === EVENT_FLOWTAP_FLOW_BEGIN)
        .map((r) => [flowKey(r.attributes), r]),
    );
    const kinds: string[] = [];
    for (const record of ends) {
      const span = byFlow.get(flowKey(record.attributes));
      if (span === undefined) throw new Error(`no span for the flow ${flowKey(record.attributes)}; spans: ${[...byFlow.keys()].join(' ')}`);
      const tags = tagsOf(span);
      const a = record.attributes;
      const endNs = isoToNs(record.timestamp);
      const durationNs = BigInt(Math.round((a['flowtap.flow.duration'] as number) * 1e9));
      const startNs = endNs - durationNs;
      // Jaeger keeps microseconds
      expect(BigInt(span.startTime)).toBe(startNs / 1000n);
      expect(BigInt(span.startTime + span.duration)).toBeGreaterThanOrEqual(endNs / 1000n - 1n);
      expect(BigInt(span.startTime + span.duration)).toBeLessThanOrEqual(endNs / 1000n);
      // the span starts when the flow began: the kernel stamps the flow table
      // entry (begin_ts) a few microseconds before its begin record
      const begin = begins.get(flowKey(a));
      expect(begin).toBeDefined();
      const beforeBeginRecord = isoToNs(begin!.timestamp) - startNs;
      expect(beforeBeginRecord).toBeGreaterThanOrEqual(0n);
      expect(beforeBeginRecord).toBeLessThan(1_000_000n);
      // every scalar attribute of the record, as a span tag
      for (const [k, v] of Object.entries(a)) {
        if (Array.isArray(v)) expect(JSON.parse(String(tags[k]))).toEqual(v);
        else expect(tags[k]).toBe(v);
      }
      const outgoing = a['flowtap.flow.direction'] === 'outgoing';
      expect(tags['span.kind']).toBe(outgoing ? 'client' : 'server');
      expect(span.operationName).toBe(`${a['flowtap.flow.direction']} 127.0.0.1:${a['destination.port']}`);
      kinds.push(`${tags['span.kind']}:${a['flowtap.flow.close_reason']}`);
      if (a['flowtap.flow.close_reason'] === 'rst') {
        expect(a['source.port']).toBe(rstPort);
        expect(tags.error).toBe(true);
        expect(tags['otel.status_code']).toBe('ERROR');
        expect(tags['otel.status_description']).toBe('connection reset');
      } else {
        expect(tags.error).toBeUndefined();
        expect(tags['otel.status_code']).toBeUndefined();
      }
    }
    expect(kinds.sort()).toEqual(['client:fin', 'client:fin', 'client:rst', 'server:fin']);
    expect(ends.find((r) => r.attributes['source.port'] === incoming)).toBeDefined();
    expect(begins.has(`${heldAt.localPort}>${port}`)).toBe(true);
    expect([...byFlow.keys()]).not.toContain(`${heldAt.localPort}>${port}`);

    // The held flow ends: now it is a span.
    held.stdin!.write('go\n');
    await heldDone;
    const heldSpan = await (async () => {
      for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        const s = (await jaeger.traces(service)).flatMap((t) => t.spans).find((x) => tagsOf(x)['source.port'] === heldAt.localPort);
        if (s !== undefined) return s;
      }
      return undefined;
    })();
    expect(heldSpan).toBeDefined();
    expect(tagsOf(heldSpan!)['span.kind']).toBe('client');

    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    // the short stopped line counts the spans apart from the records: 5 flows, 5 spans, 10 records
    expect(ft.logs().find((l) => l.msg === 'stopped')).toMatchObject({
      flowsBegun: 5,
      flowsEnded: 5,
      exportedRecords: 10,
      exportedSpans: 5,
      failedSpans: 0,
      droppedSpans: 0,
    });
    inside.kill();
  });

  it('over OTLP/HTTP too (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf): a FIN-closed and a reset flow, each one span with its kind, times and status', async () => {
    const service = `flowtap-spans-http-${process.pid}-${Date.now()}`;
    const { server, port } = await listen('127.0.0.1');
    fx.servers.push(server);
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--exporter', 'console', '--spans', 'otlp'], {
      OTEL_SERVICE_NAME: service,
      OTEL_BLRP_SCHEDULE_DELAY: '100',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf',
      // the base URL: the spans go to <it>/v1/traces by the specification's rule
      OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpHttpEndpoint,
    });
    expect(ft.logs().find((l) => l.msg === 'ready')).toMatchObject({ spans: `${jaeger.otlpHttpEndpoint}/v1/traces` });
    const [fin] = await connectFrom(fx.cg, '127.0.0.1', port, 1);
    const rst = await collect(fx.cg.spawn(process.execPath, [CLIENT, '127.0.0.1', String(port), '1'], { env: { ...process.env, RESET: '1' } }));
    const rstPort = (JSON.parse(rst.trim()) as { localPort: number }).localPort;
    let found: JaegerSpan[] = [];
    for (const deadline = Date.now() + 20_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      found = (await jaeger.traces(service)).flatMap((t) => t.spans);
      if (found.length >= 2) break;
    }
    expect(found).toHaveLength(2);
    const byPort = new Map(found.map((x) => [tagsOf(x)['source.port'], x]));
    const ends = records(ft).filter((r) => r.eventName === EVENT_FLOWTAP_FLOW_END);
    for (const [sport, error] of [
      [fin.localPort, false],
      [rstPort, true],
    ] as const) {
      const span = byPort.get(sport)!;
      expect(span).toBeDefined();
      const t = tagsOf(span);
      expect(t['span.kind']).toBe('client');
      expect(t.error === true).toBe(error);
      // its end is the end record's timestamp, to Jaeger's microsecond
      const end = ends.find((r) => r.attributes['source.port'] === sport)!;
      const endNs = isoToNs(end.timestamp);
      expect(BigInt(span.startTime + span.duration)).toBeGreaterThanOrEqual(endNs / 1000n - 1n);
      expect(BigInt(span.startTime + span.duration)).toBeLessThanOrEqual(endNs / 1000n);
    }
    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    expect(ft.logs().find((l) => l.msg === 'stopped')).toMatchObject({ exportedSpans: 2, failedSpans: 0, droppedSpans: 0 });
  });
});
