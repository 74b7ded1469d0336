/**
 * TLS, mutual TLS and bearer-token auth between the real CLI and the real
 * OpenTelemetry Collector, with certificates made by openssl for this test
 * (a CA, a server certificate for 127.0.0.1/localhost, a client
 * certificate). flowtap is configured only through the standard variables:
 * OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_KEY, _CLIENT_CERTIFICATE, _HEADERS.
 */
import { rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { TestCgroup } from '../helpers/cgroup';
import { startCollector, type CollectedLogRecord, type RunningCollector } from '../helpers/collector';
import { killAllFlowtaps, startFlowtap } from '../helpers/flowtap';
import { makePki, type Pki } from '../helpers/pki';
import { connectFrom, listen, waitFor } from '../helpers/traffic';

describe('TLS, mTLS and auth headers (real CLI, real kernel programs, real collector)', () => {
  let pki: Pki;
  let tls: RunningCollector;
  let mtls: RunningCollector;
  let auth: RunningCollector;
  let cg: TestCgroup;
  let port: number;
  let server: Server;
  const TOKEN = `token-${process.pid}`;
  // Records that cannot be delivered are kept for retry until shutdown gives up on them.
  const SHORT_SHUTDOWN = ['--shutdown-timeout-millis', '1000'];

  beforeAll(async () => {
    pki = makePki();
    const cert = { certFile: pki.serverCert, keyFile: pki.serverKey };
    [tls, mtls, auth] = await Promise.all([
      startCollector({ tls: cert }),
      startCollector({ tls: { ...cert, clientCaFile: pki.ca } }),
      startCollector({ tls: cert, bearerToken: TOKEN }),
    ]);
    ({ server, port } = await listen('127.0.0.1'));
  });
  afterAll(async () => {
    server.close();
    await Promise.all([tls, mtls, auth].map((c) => c?.close()));
    rmSync(pki.dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    cg = new TestCgroup('tls');
  });
  afterEach(async () => {
    killAllFlowtaps();
    await cg.destroy();
  });

  /**
   * Runs flowtap against `collector` (its gRPC endpoint, or `endpoint`: --endpoint's value) with `env`, makes one
   * connection, returns flowtap and a predicate for its records.
   */
  async function oneFlow(collector: RunningCollector, env: Record<string, string>, extraArgs: string[] = [], endpoint = collector.endpoint) {
    const run = `tls-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const ft = await startFlowtap(['--cgroup', cg.path, '--endpoint', endpoint, '--log-level', 'debug', ...extraArgs], {
      OTEL_BLRP_SCHEDULE_DELAY: '100',
      OTEL_METRIC_EXPORT_INTERVAL: '300',
      OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}`,
      ...env,
    });
    const [conn] = await connectFrom(cg, '127.0.0.1', port, 1);
    expect(conn.ok).toBe(true);
    const ours = (r: CollectedLogRecord) => r.resource['test.run'] === run && r.attributes['source.port'] === conn.localPort;
    return { ft, ours, run };
  }

  it('TLS: the collector certificate is checked against OTEL_EXPORTER_OTLP_CERTIFICATE; records and metrics arrive', async () => {
    expect(tls.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const { ft, ours, run } = await oneFlow(tls, { OTEL_EXPORTER_OTLP_CERTIFICATE: pki.ca });
    const [begin] = await tls.waitForLogRecords((r) => ours(r) && r.eventName === 'flowtap.flow.begin');
    expect(begin.attributes['destination.port']).toBe(port);
    await waitFor('metrics over TLS', () => tls.readMetricPoints().find((p) => p.resource['test.run'] === run));
    expect((await ft.stop()).code).toBe(0);
    expect(ft.logs().filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
  });

  it('TLS: a collector certificate from an unknown CA is refused; flowtap warns and keeps running', async () => {
    const { ft, ours } = await oneFlow(tls, {}, SHORT_SHUTDOWN);
    await waitFor('a warning', () => ft.logs().find((l) => l.msg === 'records not exported'));
    expect(ft.child.exitCode).toBeNull();
    expect((await ft.stop()).code).toBe(0);
    expect(tls.readLogRecords().filter(ours)).toEqual([]);
  });

  it('OTLP/HTTP over TLS: https:// with OTEL_EXPORTER_OTLP_CERTIFICATE arrives; mTLS takes the client certificate too', async () => {
    const http = { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_CERTIFICATE: pki.ca };
    expect(tls.httpEndpoint).toMatch(/^https:/);
    // --endpoint is the URL as given, as OTEL_EXPORTER_OTLP_LOGS_ENDPOINT is.
    const plain = await oneFlow(tls, http, [], `${tls.httpEndpoint}/v1/logs`);
    await tls.waitForLogRecords((r) => plain.ours(r) && r.eventName === 'flowtap.flow.end');
    expect((await plain.ft.stop()).code).toBe(0);
    expect(plain.ft.logs().filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);

    const mutual = await oneFlow(
      mtls,
      { ...http, OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.clientKey, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: pki.clientCert },
      [],
      `${mtls.httpEndpoint}/v1/logs`,
    );
    await mtls.waitForLogRecords((r) => mutual.ours(r) && r.eventName === 'flowtap.flow.end');
    expect((await mutual.ft.stop()).code).toBe(0);

    // An unknown CA over HTTP too: refused, warned, nothing arrives.
    const untrusted = await oneFlow(tls, { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' }, SHORT_SHUTDOWN, `${tls.httpEndpoint}/v1/logs`);
    const warning = await waitFor('a warning', () => untrusted.ft.logs().find((l) => l.msg === 'records not exported'));
    expect(String(warning.error)).toMatch(/certificate/i);
    expect((await untrusted.ft.stop()).code).toBe(0);
    expect(tls.readLogRecords().filter(untrusted.ours)).toEqual([]);
  });

  it('mTLS: the client certificate from OTEL_EXPORTER_OTLP_CLIENT_KEY/_CLIENT_CERTIFICATE is accepted; without it nothing arrives', async () => {
    const good = await oneFlow(mtls, {
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.ca,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: pki.clientKey,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: pki.clientCert,
    });
    await mtls.waitForLogRecords((r) => good.ours(r) && r.eventName === 'flowtap.flow.end');
    expect((await good.ft.stop()).code).toBe(0);

    const anonymous = await oneFlow(mtls, { OTEL_EXPORTER_OTLP_CERTIFICATE: pki.ca }, SHORT_SHUTDOWN);
    await waitFor('a warning', () => anonymous.ft.logs().find((l) => l.msg === 'records not exported'));
    expect((await anonymous.ft.stop()).code).toBe(0);
    expect(mtls.readLogRecords().filter(anonymous.ours)).toEqual([]);
  });

  it('auth header: the right bearer token is let in; a wrong one is refused, flowtap warns and keeps running', async () => {
    const good = await oneFlow(auth, {
      OTEL_EXPORTER_OTLP_CERTIFICATE: pki.ca,
      OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${TOKEN}`,
    });
    await auth.waitForLogRecords((r) => good.ours(r) && r.eventName === 'flowtap.flow.end');
    expect((await good.ft.stop()).code).toBe(0);

    const bad = await oneFlow(auth, { OTEL_EXPORTER_OTLP_CERTIFICATE: pki.ca, OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20wrong' }, SHORT_SHUTDOWN);
    const warning = await waitFor('a warning', () => bad.ft.logs().find((l) => l.msg === 'records not exported'));
    expect(String(warning.error)).toMatch(/unauthenticated|16/i);
    expect(bad.ft.child.exitCode).toBeNull();
    const stopped = await bad.ft.stop();
    expect(stopped.code).toBe(0);
    expect(auth.readLogRecords().filter(bad.ours)).toEqual([]);
    // nothing was counted as exported (every counter: the debug line before `stopped`, or the timeout's line)
    const last = bad.ft
      .logs()
      .filter((l) => l.msg === 'counters' || l.msg === 'shutdown timed out: exiting without flushing')
      .pop()!;
    expect(last.exportedRecords).toBe(0);
    expect(last.emitted).toBeGreaterThanOrEqual(1);
  });
});
