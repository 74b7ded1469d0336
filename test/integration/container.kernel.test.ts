/**
 * container.id from the socket's cgroup on the console (SDK) path (real
 * kernel programs, real CLI, real sockets): a watched cgroup with a child
 * named the way containerd names a container's cgroup; a client in that
 * child gets container.id on its records' Resource, a client in a plain
 * child gets flowtap's own Resource.
 */
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:net';
import { TestCgroup } from '../helpers/cgroup';
import { startFlowtap, killAllFlowtaps } from '../helpers/flowtap';
import { connectFrom, listen, waitFor } from '../helpers/traffic';

const ID = '3f1e'.repeat(16);

describe('container.id (real kernel programs, real CLI, real sockets)', () => {
  let root: TestCgroup;
  const servers: Server[] = [];

  afterEach(async () => {
    killAllFlowtaps();
    for (const s of servers.splice(0)) s.close();
    await root?.destroy();
  });

  it('names the container whose cgroup holds the socket, and only that one', async () => {
    root = new TestCgroup('container');
    const containerDir = join(root.path, `cri-containerd-${ID}.scope`);
    mkdirSync(containerDir);
    const app = new TestCgroup('plain', root.path);
    const inContainer = new TestCgroup('inner', containerDir); // a nested cgroup inside the container
    try {
      const { server, port } = await listen('127.0.0.1');
      servers.push(server);
      const ft = await startFlowtap(['--cgroup', root.path, '--exporter', 'console'], { OTEL_BLRP_SCHEDULE_DELAY: '50' });
      const [c1] = await connectFrom(inContainer, '127.0.0.1', port, 1);
      const [c2] = await connectFrom(app, '127.0.0.1', port, 1);
      const records = () =>
        ft
          .stdout()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { eventName: string; attributes: Record<string, unknown>; resource: Record<string, unknown> })
          .filter((r) => r.eventName === 'flowtap.flow.begin');
      const flowOf = (port: number) => () => {
        const found = records().filter((r) => r.attributes['source.port'] === port);
        return found.length > 0 ? found : undefined;
      };
      const r1s = await waitFor('the container flow', flowOf(c1.localPort));
      const r2s = await waitFor('the plain flow', flowOf(c2.localPort));
      expect(r1s).toHaveLength(1);
      expect(r2s).toHaveLength(1);
      const [r1, r2] = [r1s[0], r2s[0]];
      expect(r1.resource['container.id']).toBe(ID);
      expect(r1.attributes).not.toHaveProperty('container.id');
      expect(r2.resource).not.toHaveProperty('container.id');
      expect(r2.resource['service.name']).toBe(r1.resource['service.name']);
      expect((await ft.stop()).code).toBe(0);
    } finally {
      await inContainer.destroy();
      await app.destroy();
      rmdirSync(containerDir);
    }
  });
});
