import { request } from 'node:http';
import { evaluateHealth, HealthServer, type HealthInputs } from '../../../src/runtime/health';

const RUNNING: HealthInputs = { ready: true, stopping: false, attached: true };

describe('evaluateHealth', () => {
  it('live and ready while attached, ready, and exports succeed', () => {
    const h = evaluateHealth({ ...RUNNING, lastExportSuccessMs: 1000 }, 5000, 60_000);
    expect(h.healthz).toEqual({ ok: true, body: { status: 'ok', probe: 'attached', reader: 'ok' } });
    expect(h.readyz).toEqual({ ok: true, body: { status: 'ready', exportFailingSeconds: 0, lastExportSuccess: '1970-01-01T00:00:01.000Z' } });
  });

  it('not ready before the ready line and while stopping; still live while stopping', () => {
    expect(evaluateHealth({ ...RUNNING, ready: false }, 0, 60_000).readyz.body).toMatchObject({ status: 'not ready', reason: 'starting' });
    const stopping = evaluateHealth({ ...RUNNING, stopping: true, attached: false }, 0, 60_000);
    expect(stopping.readyz).toMatchObject({ ok: false, body: { reason: 'stopping' } });
    expect(stopping.healthz.ok).toBe(true);
  });

  it('not live once the ring-buffer reader failed', () => {
    const h = evaluateHealth({ ...RUNNING, pollError: 'epoll_wait failed' }, 0, 60_000);
    expect(h.healthz).toEqual({ ok: false, body: { status: 'failing', probe: 'attached', reader: 'failed', error: 'epoll_wait failed' } });
    expect(h.readyz.body).toMatchObject({ reason: 'ring-buffer reader failed' });
  });

  it('not ready once every export failed for longer than the limit', () => {
    const failing = { ...RUNNING, exportFailingSinceMs: 10_000 };
    expect(evaluateHealth(failing, 70_000, 60_000).readyz).toMatchObject({ ok: true, body: { exportFailingSeconds: 60 } });
    expect(evaluateHealth(failing, 70_001, 60_000).readyz).toMatchObject({ ok: false, body: { reason: 'exports failing', exportFailingSeconds: 60 } });
    expect(evaluateHealth(failing, 70_001, 60_000).healthz.ok).toBe(true);
  });

  it('not ready while the watched cgroup is gone; live meanwhile', () => {
    const h = evaluateHealth({ ...RUNNING, cgroupRemovedSinceMs: 1_000 }, 2_000, 60_000);
    expect(h.readyz).toMatchObject({ ok: false, body: { status: 'not ready', reason: 'watched cgroup removed' } });
    expect(h.healthz.ok).toBe(true);
  });

  it('counts a stall from the first unanswered request, not from its deadline', () => {
    // An endpoint that accepts and never answers: no failure yet, one request waiting since 10 s.
    const waiting = { ...RUNNING, exportUnansweredSinceMs: 10_000 };
    expect(evaluateHealth(waiting, 20_000, 10_000).readyz).toMatchObject({ ok: true, body: { exportFailingSeconds: 10 } });
    expect(evaluateHealth(waiting, 20_001, 10_000).readyz).toMatchObject({ ok: false, body: { reason: 'exports unanswered', exportFailingSeconds: 10 } });
    // Failures in a row that began before the request now waiting: the earlier start counts, named as failing.
    const both = { ...RUNNING, exportFailingSinceMs: 5_000, exportUnansweredSinceMs: 12_000 };
    expect(evaluateHealth(both, 15_001, 10_000).readyz).toMatchObject({ ok: false, body: { reason: 'exports failing', exportFailingSeconds: 10 } });
    // A request answered long ago and one waiting briefly: ready.
    expect(evaluateHealth({ ...RUNNING, exportUnansweredSinceMs: 19_000, lastExportSuccessMs: 1_000 }, 20_000, 10_000).readyz.ok).toBe(true);
  });
});

function get(address: string, path: string, method = 'GET'): Promise<{ status: number; body: string; type: string | undefined }> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
  return new Promise((resolve, reject) => {
    const req = request({ host: m[1], port: Number(m[2]), path, method }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HealthServer', () => {
  it('serves /healthz and /readyz as JSON with 200/503, 404 elsewhere, 405 for other methods', async () => {
    let inputs: HealthInputs = { ...RUNNING, ready: false };
    const server = new HealthServer({ host: '127.0.0.1', port: 0, inputs: () => inputs, nowMs: () => 0, exportFailureMillis: 1000 });
    await server.listen();
    try {
      const address = server.address();
      expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
      const notReady = await get(address, '/readyz');
      expect(notReady.status).toBe(503);
      expect(notReady.type).toBe('application/json');
      expect(JSON.parse(notReady.body)).toMatchObject({ status: 'not ready', reason: 'starting' });
      inputs = RUNNING;
      expect((await get(address, '/readyz?verbose=1')).status).toBe(200);
      const live = await get(address, '/healthz');
      expect(live.status).toBe(200);
      expect(JSON.parse(live.body)).toEqual({ status: 'ok', probe: 'attached', reader: 'ok' });
      expect((await get(address, '/healthz', 'HEAD')).body).toBe('');
      expect((await get(address, '/')).status).toBe(404);
      expect((await get(address, '/healthz', 'POST')).status).toBe(405);
    } finally {
      await server.close();
      await server.close();
    }
  });

  it('rejects listen() with the error when the port is taken', async () => {
    const a = new HealthServer({ host: '127.0.0.1', port: 0, inputs: () => RUNNING, nowMs: () => 0, exportFailureMillis: 1 });
    await a.listen();
    const port = Number(a.address().split(':')[1]);
    const b = new HealthServer({ host: '127.0.0.1', port, inputs: () => RUNNING, nowMs: () => 0, exportFailureMillis: 1 });
    await expect(b.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await a.close();
    await b.close();
  });
});
