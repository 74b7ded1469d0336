/**
 * The watched cgroup removed and created again at the same path (what
 * restarting a systemd unit does), with the real CLI, the real kernel
 * programs and the real collector: /readyz fails with the reason within
 * seconds, the programs are attached to the new cgroup, and its connections
 * are recorded again. The `ready` line counts the cgroup's processes.
 */
import { mkdirSync } from 'node:fs';
import { request } from 'node:http';
import { startFlowtap } from '../helpers/flowtap';
import { connectFrom, listen, useCliFixture, waitFor } from '../helpers/traffic';
import { EVENT_FLOWTAP_FLOW_BEGIN } from '../../src/record/semconv';

function readyz(address: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address)!;
  return new Promise((resolve, reject) => {
    const req = request({ host: m[1], port: Number(m[2]), path: '/readyz' }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function readyzUntil(address: string, status: number, withinMillis: number): Promise<{ status: number; body: Record<string, unknown>; millis: number }> {
  const start = Date.now();
  for (;;) {
    const r = await readyz(address);
    if (r.status === status || Date.now() - start > withinMillis) return { ...r, millis: Date.now() - start };
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe('the watched cgroup removed and created again (real CLI, real kernel programs, real collector)', () => {
  const fx = useCliFixture('follow');

  it('/readyz says the cgroup is gone within seconds; flowtap attaches to the new one and records its flows', async () => {
    const { server, port } = await listen('127.0.0.1');
    fx.servers.push(server);
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', fx.collector.endpoint, '--health-address', '127.0.0.1:0'], {
      OTEL_BLRP_SCHEDULE_DELAY: '100',
      OTEL_METRICS_EXPORTER: 'none',
    });
    const ready = ft.logs().find((l) => l.msg === 'ready')!;
    expect(ready.cgroupProcesses).toBe(0); // nothing runs in the fresh cgroup yet
    const health = ready.healthAddress as string;
    const isOurs = (r: { eventName: string; attributes: Record<string, unknown> }, sport: number): boolean =>
      r.eventName === EVENT_FLOWTAP_FLOW_BEGIN && r.attributes['source.port'] === sport;

    const [first] = await connectFrom(fx.cg, '127.0.0.1', port, 1);
    await fx.collector.waitForLogRecords((r) => isOurs(r, first.localPort), 15_000, 1);

    // Removed: every process out (there is none left), then the directory.
    fx.cg.destroySync();
    const gone = await readyzUntil(health, 503, 5_000);
    expect(gone).toMatchObject({ status: 503, body: { reason: 'watched cgroup removed' } });
    expect(gone.millis).toBeLessThan(3_000);
    await waitFor('the removal line', () => ft.logs().find((l) => String(l.msg).startsWith('watched cgroup removed')));

    // Created again at the same path: attached again, and ready.
    mkdirSync(fx.cg.path);
    const back = await readyzUntil(health, 200, 5_000);
    expect(back.status).toBe(200);
    expect(back.millis).toBeLessThan(3_000);
    const attached = await waitFor('the attach line', () => ft.logs().find((l) => l.msg === 'watched cgroup is back: programs attached again'));
    expect(attached.cgroup).toBe(fx.cg.path);

    const [second] = await connectFrom(fx.cg, '127.0.0.1', port, 1);
    await fx.collector.waitForLogRecords((r) => isOurs(r, second.localPort), 15_000, 1);
    expect(fx.collector.readLogRecords().filter((r) => isOurs(r, second.localPort))).toHaveLength(1);

    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    // The kernel counters carry on across the two attachments: both flows' begins.
    expect(ft.logs().find((l) => l.msg === 'stopped')!.flowsBegun).toBe(2);
  });
});
