/**
 * OTLP over HTTP (binary protobuf) from the real CLI (dist/cli.js, --replay:
 * synthetic events, no kernel programs) into the real collector's OTLP/HTTP
 * receiver, configured only through the standard variables; into a small
 * local HTTP server that answers 503 and 429 with Retry-After before it
 * accepts; and into the wrong port both ways (HTTP to gRPC, gRPC to HTTP),
 * which must end in one clear error, not endless retries.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { startCollector, type RunningCollector } from '../helpers/collector';
import { expectStoppedMatches, finalLines, killAllFlowtaps, startFlowtap } from '../helpers/flowtap';
import { logRecordsOf, type WireLogRecord } from '../helpers/otlp-wire';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Logged = Record<string, any>;

/** Runs the CLI on synthetic events for `seconds`, stops it, returns its last counters (the debug line with every counter) and warnings. */
async function run(env: Record<string, string>, seconds: number, args: string[] = []): Promise<{ counts: Logged; warnings: Logged[] }> {
  const ft = await startFlowtap(['--replay', 'synthetic:300', '--metrics', 'none', '--shutdown-timeout-millis', '3000', '--log-level', 'debug', ...args], {
    OTEL_BLRP_SCHEDULE_DELAY: '100',
    ...env,
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { code } = await ft.stop();
  expect(code).toBe(0);
  const logs = ft.logs() as Logged[];
  const { counters, stopped } = finalLines(ft);
  expectStoppedMatches(counters, stopped);
  return { counts: counters as Logged, warnings: logs.filter((l) => l.level === 'warn' || l.level === 'error') };
}

/** A test with a run id in OTEL_RESOURCE_ATTRIBUTES: the collector's records of that run. */
function runId(): string {
  return `http-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

describe('OTLP/HTTP into the real collector (real CLI, --replay)', () => {
  let collector: RunningCollector;
  let authed: RunningCollector;
  const TOKEN = `token-${process.pid}`;

  beforeAll(async () => {
    [collector, authed] = await Promise.all([startCollector({ flushIntervalMillis: 50 }), startCollector({ flushIntervalMillis: 50, bearerToken: TOKEN })]);
  });
  afterAll(async () => {
    await Promise.all([collector?.close(), authed?.close()]);
  });
  afterEach(() => killAllFlowtaps());

  it('OTEL_EXPORTER_OTLP_ENDPOINT + /v1/logs, gzip: every record arrives once, counted as exported', async () => {
    const id = runId();
    const { counts, warnings } = await run(
      {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpEndpoint,
        OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
        OTEL_RESOURCE_ATTRIBUTES: `test.run=${id}`,
      },
      3,
    );
    expect(warnings).toEqual([]);
    expect(counts.emitted).toBeGreaterThan(500);
    expect(counts).toMatchObject({ exportedRecords: counts.emitted, failedRecords: 0, droppedRecords: 0 });
    const ours = await collector.waitForLogRecords((r) => r.resource['test.run'] === id, 10_000, counts.emitted);
    expect(ours).toHaveLength(counts.emitted);
    expect(new Set(ours.map((r) => r.timeUnixNano)).size).toBe(ours.length);
  }, 30_000);

  it('OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is used as given; OTEL_EXPORTER_OTLP_LOGS_HEADERS carries the bearer token', async () => {
    const id = runId();
    const env = {
      OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: `${authed.httpEndpoint}/v1/logs`,
      OTEL_RESOURCE_ATTRIBUTES: `test.run=${id}`,
    };
    const good = await run({ ...env, OTEL_EXPORTER_OTLP_LOGS_HEADERS: `authorization=Bearer ${TOKEN}` }, 2);
    expect(good.warnings).toEqual([]);
    expect(good.counts).toMatchObject({ exportedRecords: good.counts.emitted, failedRecords: 0 });
    await authed.waitForLogRecords((r) => r.resource['test.run'] === id, 10_000, good.counts.emitted);

    // A wrong token: 401, not retried, every record counted as failed, the token in no log line.
    const bad = await run({ ...env, OTEL_EXPORTER_OTLP_LOGS_HEADERS: 'authorization=Bearer wrong-secret' }, 2);
    expect(bad.counts).toMatchObject({ exportedRecords: 0, failedRecords: bad.counts.emitted, droppedRecords: 0 });
    const warning = bad.warnings.find((w) => w.msg === 'records not exported');
    expect(String(warning?.error)).toMatch(/^OTLP\/HTTP http:\/\/127\.0\.0\.1:\d+\/v1\/logs answered 401 Unauthorized/);
    expect(bad.warnings.every((w) => Number(w.retriedRecords ?? 0) === 0)).toBe(true);
    expect(JSON.stringify(bad.warnings)).not.toContain('wrong-secret');
  }, 30_000);

  it('a path that is not an OTLP/HTTP logs receiver: the 404 says where logs go', async () => {
    const { counts, warnings } = await run({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: collector.httpEndpoint }, 2);
    expect(counts).toMatchObject({ exportedRecords: 0, failedRecords: counts.emitted });
    expect(String(warnings[0]?.error)).toMatch(/answered 404 Not Found.*takes logs at \.\.\.\/v1\/logs/);
  }, 30_000);

  it('HTTP to the gRPC port: one clear error, every record failed, nothing retried', async () => {
    const { counts, warnings } = await run({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint }, 2);
    expect(counts.emitted).toBeGreaterThan(0);
    expect(counts).toMatchObject({ exportedRecords: 0, failedRecords: counts.emitted, droppedRecords: 0 });
    expect(warnings.map((w) => w.error)).toContain(
      `OTLP/HTTP ${collector.endpoint}/v1/logs answered with HTTP/2 frames: it is an OTLP/gRPC port (4317 by default); ` +
        'set OTEL_EXPORTER_OTLP_PROTOCOL=grpc or use the OTLP/HTTP port (4318 by default)',
    );
    expect(warnings.every((w) => Number(w.retriedRecords ?? 0) === 0)).toBe(true);
  }, 30_000);

  it('gRPC to the HTTP port: one clear error, every record failed, nothing retried', async () => {
    const { counts, warnings } = await run({}, 2, ['--endpoint', collector.httpEndpoint]);
    expect(counts.emitted).toBeGreaterThan(0);
    expect(counts).toMatchObject({ exportedRecords: 0, failedRecords: counts.emitted, droppedRecords: 0 });
    expect(warnings.map((w) => w.error)).toContain(
      `OTLP/gRPC ${collector.httpEndpoint}/ did not answer in HTTP/2: it looks like an OTLP/HTTP port (4318 by default); ` +
        'set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf or use the OTLP/gRPC port (4317 by default)',
    );
    expect(warnings.every((w) => Number(w.retriedRecords ?? 0) === 0)).toBe(true);
  }, 30_000);
});

interface Received {
  atMillis: number;
  status: number;
  headers: IncomingMessage['headers'];
  records: WireLogRecord[];
}

/** An OTLP/HTTP logs receiver that answers the i-th request with `answer(i, records)` (status, headers), keeping what it got. */
async function startScriptedReceiver(answer: (i: number, records: WireLogRecord[]) => { status: number; headers?: Record<string, string> }): Promise<{
  url: string;
  received: Received[];
  server: Server;
}> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
      const records = logRecordsOf(body);
      const { status, headers } = answer(received.length, records);
      received.push({ atMillis: Date.now(), status, headers: req.headers, records });
      // An empty ExportLogsServiceResponse is zero bytes of protobuf.
      res.writeHead(status, { 'content-type': 'application/x-protobuf', ...headers });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/v1/logs`, received, server };
}

describe('OTLP/HTTP retries (real CLI, a local HTTP server that throttles, then accepts)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    killAllFlowtaps();
    await new Promise((r) => (server === undefined ? r(undefined) : server.close(r)));
    server = undefined;
  });

  it('503 and 429 with Retry-After: 1 are retried after the second asked for; every record arrives once; gzip and headers sent', async () => {
    // The first batch is answered 503, then 429, then accepted; every other batch at once.
    let first: bigint | undefined;
    let seen = 0;
    const receiver = await startScriptedReceiver((_i, records) => {
      first ??= records[0].timeUnixNano;
      if (records[0].timeUnixNano !== first) return { status: 200 };
      seen++;
      return seen === 1 ? { status: 503, headers: { 'retry-after': '1' } } : seen === 2 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 };
    });
    server = receiver.server;
    const { counts } = await run(
      {
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=flowtap-test',
      },
      5,
    );
    const r = receiver.received;
    const tries = r.filter((x) => x.records[0].timeUnixNano === first);
    expect(tries.map((x) => x.status)).toEqual([503, 429, 200]);
    // The throttled request is sent again, the same records, after what Retry-After asked for.
    expect(tries[1].records.map((x) => x.timeUnixNano)).toEqual(tries[0].records.map((x) => x.timeUnixNano));
    expect(tries[2].records.map((x) => x.timeUnixNano)).toEqual(tries[0].records.map((x) => x.timeUnixNano));
    expect(tries[1].atMillis - tries[0].atMillis).toBeGreaterThanOrEqual(950);
    expect(tries[2].atMillis - tries[1].atMillis).toBeGreaterThanOrEqual(950);
    expect(r.filter((x) => x.status !== 200)).toHaveLength(2);
    expect(r.every((x) => x.headers['content-encoding'] === 'gzip' && x.headers['x-tenant'] === 'flowtap-test')).toBe(true);
    expect(r.every((x) => x.headers['content-type'] === 'application/x-protobuf')).toBe(true);
    const accepted = r.filter((x) => x.status === 200).flatMap((x) => x.records);
    expect(new Set(accepted.map((x) => x.timeUnixNano)).size).toBe(accepted.length);
    expect(accepted.length).toBe(counts.emitted);
    expect(counts).toMatchObject({ exportedRecords: counts.emitted, failedRecords: 0, droppedRecords: 0 });
  }, 30_000);

  it('503 until the request timeout runs out goes back to the export queue, which sends it again later', async () => {
    // Retry-After 2 s does not fit in a 1 s request timeout: the transport gives up at once, the queue retries.
    const receiver = await startScriptedReceiver((i) => (i < 3 ? { status: 503, headers: { 'retry-after': '2' } } : { status: 200 }));
    server = receiver.server;
    const { counts, warnings } = await run(
      { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_TIMEOUT: '1000' },
      6,
    );
    const r = receiver.received;
    expect(r.filter((x) => x.status === 503)).toHaveLength(3);
    expect(counts).toMatchObject({ exportedRecords: counts.emitted, failedRecords: 0, droppedRecords: 0 });
    const accepted = r.filter((x) => x.status === 200).flatMap((x) => x.records);
    expect(accepted.length).toBe(counts.emitted);
    expect(warnings.some((w) => /answered 429\/502\/503\/504 until the request's timeout/.test(String(w.error)) && Number(w.retriedRecords) > 0)).toBe(true);
  }, 30_000);
});
