/**
 * A Resource per workload, at a real collector (real kernel programs, real
 * CLI, real sockets): under the watched cgroup, cgroups shaped the way the
 * kubelet lays them out — the systemd driver's
 * kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope
 * and the cgroupfs driver's kubepods/besteffort/pod<uid>/<id>, a pod cgroup
 * without a container, and a plain cgroup — each with a client in it. Every
 * record arrives under the Resource of its own workload (container.id,
 * k8s.pod.uid, flowtap's service.name), the plain client's under flowtap's
 * own; none carries container.id as a record attribute.
 */
import { mkdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Server } from 'node:net';
import { TestCgroup } from '../helpers/cgroup';
import { startCollector, type CollectedLogRecord, type RunningCollector } from '../helpers/collector';
import { startFlowtap, killAllFlowtaps } from '../helpers/flowtap';
import { connectFrom, listen } from '../helpers/traffic';

const CONTAINER_SYSTEMD = '5a'.repeat(32);
const CONTAINER_CGROUPFS = 'c7'.repeat(32);
const POD_SYSTEMD = '1b2c3d4e-0001-4002-8003-00000000aaaa';
const POD_CGROUPFS = '1b2c3d4e-0001-4002-8003-00000000bbbb';
const POD_ALONE = '1b2c3d4e-0001-4002-8003-00000000cccc';
/** What the DaemonSet's downward API would give flowtap: its own pod. */
const OWN_POD = '1b2c3d4e-0001-4002-8003-00000000ffff';

describe('a Resource per workload, at a real collector', () => {
  let collector: RunningCollector;
  let root: TestCgroup;
  const servers: Server[] = [];
  const clients: TestCgroup[] = [];
  const made: string[] = [];

  /** mkdir -p under the watched root, remembered for removal (deepest first). */
  const mkdirs = (...parts: string[]): string => {
    let dir = root.path;
    for (const p of parts) {
      dir = join(dir, p);
      if (made.includes(dir)) continue;
      mkdirSync(dir);
      made.push(dir);
    }
    return dir;
  };

  afterEach(async () => {
    killAllFlowtaps();
    for (const s of servers.splice(0)) s.close();
    for (const c of clients.splice(0)) await c.destroy();
    for (const d of made.splice(0).reverse()) rmdirSync(d);
    await root?.destroy();
    await collector?.close();
  });

  it("puts each record under its workload's Resource (container.id, k8s.pod.uid, service.name); a client in no container under flowtap's own", async () => {
    collector = await startCollector({ flushIntervalMillis: 50 });
    root = new TestCgroup('workload');
    const systemd = mkdirs(
      'kubepods.slice',
      'kubepods-burstable.slice',
      `kubepods-burstable-pod${POD_SYSTEMD.replace(/-/g, '_')}.slice`,
      `cri-containerd-${CONTAINER_SYSTEMD}.scope`,
    );
    const cgroupfs = mkdirs('kubepods', 'besteffort', `pod${POD_CGROUPFS}`, CONTAINER_CGROUPFS);
    const podAlone = mkdirs('kubepods', 'burstable', `pod${POD_ALONE}`);
    // The clients' processes live in a cgroup inside each (a container's own sub-cgroup).
    const inSystemd = new TestCgroup('sys', systemd);
    const inCgroupfs = new TestCgroup('fs', cgroupfs);
    const inPod = new TestCgroup('pod', podAlone);
    const plain = new TestCgroup('plain', root.path);
    clients.push(inSystemd, inCgroupfs, inPod, plain);

    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    await startFlowtap(['--cgroup', root.path, '--endpoint', collector.endpoint], {
      OTEL_BLRP_SCHEDULE_DELAY: '50',
      OTEL_SERVICE_NAME: 'flowtap-under-test',
      OTEL_RESOURCE_ATTRIBUTES: `k8s.pod.uid=${OWN_POD},k8s.node.name=node-1`,
    });
    const cases = [
      { cg: inSystemd, want: { 'container.id': CONTAINER_SYSTEMD, 'k8s.pod.uid': POD_SYSTEMD } },
      { cg: inCgroupfs, want: { 'container.id': CONTAINER_CGROUPFS, 'k8s.pod.uid': POD_CGROUPFS } },
      { cg: inPod, want: { 'k8s.pod.uid': POD_ALONE } },
      { cg: plain, want: { 'k8s.pod.uid': OWN_POD } },
    ];
    const ports: number[][] = [];
    for (const c of cases) {
      const results = await connectFrom(c.cg, '127.0.0.1', port, 2);
      expect(results.every((r) => r.ok)).toBe(true);
      ports.push(results.map((r) => r.localPort));
    }
    const all = ports.flat();
    // begin and end of every connection
    const records = await collector.waitForLogRecords((r) => all.includes(r.attributes['source.port'] as number), 15_000, 2 * all.length);
    const of = (i: number): CollectedLogRecord[] => records.filter((r) => ports[i].includes(r.attributes['source.port'] as number));
    cases.forEach((c, i) => {
      const mine = of(i);
      expect(mine.map((r) => r.eventName).sort()).toEqual(['flowtap.flow.begin', 'flowtap.flow.begin', 'flowtap.flow.end', 'flowtap.flow.end']);
      for (const r of mine) {
        expect(r.resource).toMatchObject({ ...c.want, 'service.name': 'flowtap-under-test', 'k8s.node.name': 'node-1' });
        expect(r.attributes).not.toHaveProperty('container.id');
        if (!('container.id' in c.want)) expect(r.resource).not.toHaveProperty('container.id');
      }
    });
  });
});
