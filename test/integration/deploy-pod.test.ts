/**
 * `--cgroup pod` with the real CLI (dist/cli.js), the real kernel programs,
 * real cgroups and real loopback sockets: a "pod" cgroup with an app child and
 * a flowtap child, flowtap started inside its child with `--cgroup pod`, as a
 * sidecar container is. Records are read from its console output.
 *
 * The second case is the sidecar as deploy/kubernetes runs it on a cgroup v2
 * node: a private cgroup namespace (flowtap's /proc/self/cgroup says "0::/"),
 * the host hierarchy bind-mounted read-only at another path (the hostPath
 * volume), the pod UID in OTEL_RESOURCE_ATTRIBUTES (the downward API), and
 * only the manifest's capabilities with no_new_privs
 * (allowPrivilegeEscalation: false).
 */
import { spawn } from '../helpers/processes';
import { createServer, Server, AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmdirSync, existsSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCgroup, collect } from '../helpers/cgroup';
import { CLI, watchFlowtap, type WatchedFlowtap } from '../helpers/flowtap';
import { SIDECAR_CAPABILITIES } from '../helpers/kube';

const CLIENT = join(__dirname, '..', 'fixtures', 'tcp-client.js');
const FAST_EXPORT = { OTEL_BLRP_SCHEDULE_DELAY: '100' };

type Running = WatchedFlowtap;

/** SIGTERM and wait for exit 0 (flowtap flushes what it read); one that already exited must have exited 0. */
async function stop(ft: Running): Promise<void> {
  if (ft.child.exitCode !== null || ft.child.signalCode !== null) {
    expect({ code: ft.child.exitCode, signal: ft.child.signalCode }).toEqual({ code: 0, signal: null });
    return;
  }
  const exited = new Promise<number | null>((r) => ft.child.on('exit', (code) => r(code)));
  ft.child.kill('SIGTERM');
  expect(await exited).toBe(0);
}

function listen(): Promise<Server> {
  return new Promise((resolve) => {
    const srv = createServer((s) => {
      s.once('data', (d) => s.end(d));
      s.on('error', () => undefined);
    });
    srv.listen({ host: '127.0.0.1', port: 0 }, () => resolve(srv));
  });
}

async function connectFrom(cg: TestCgroup, port: number): Promise<number> {
  const out = await collect(cg.spawn(process.execPath, [CLIENT, '127.0.0.1', String(port), '1']));
  const r = JSON.parse(out.trim()) as { ok: boolean; localPort: number };
  expect(r.ok).toBe(true);
  return r.localPort;
}

async function until(what: () => boolean, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (!what() && Date.now() - t0 < timeoutMs) await new Promise((r) => setTimeout(r, 50));
}

/** Exactly one outgoing flowtap.flow.begin, from the app's port; nothing from outside the pod. */
async function expectOnlyTheAppsFlow(ft: Running, server: Server, app: TestCgroup, outside: TestCgroup): Promise<void> {
  const port = (server.address() as AddressInfo).port;
  const outsidePort = await connectFrom(outside, port);
  const appPort = await connectFrom(app, port);
  const begins = () => ft.records().filter((r) => r.eventName === 'flowtap.flow.begin');
  await until(() => begins().length >= 1 && ft.records().some((r) => r.eventName === 'flowtap.flow.end'), 10000);
  // what the outside client did is long past; give a stray record the time to arrive anyway
  await new Promise((r) => setTimeout(r, 500));
  await stop(ft);
  const all = begins();
  expect(all.map((r) => r.attributes['source.port'])).toEqual([appPort]);
  expect(all[0].attributes['flowtap.flow.direction']).toBe('outgoing');
  expect(all[0].attributes['destination.port']).toBe(port);
  expect(ft.records().some((r) => r.attributes['source.port'] === outsidePort || r.attributes['destination.port'] === outsidePort)).toBe(false);
}

describe('--cgroup pod: real CLI inside a simulated pod (real kernel programs, real cgroups, real loopback sockets)', () => {
  let server: Server;
  const cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    server = await listen();
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });
  afterEach(async () => {
    // children before parents: a cgroup with children cannot be removed
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function cgroup(label: string, parent?: TestCgroup): TestCgroup {
    const cg = new TestCgroup(label, parent?.path);
    cleanups.push(() => cg.destroy());
    return cg;
  }

  it('host cgroup namespace: watches the parent of its own cgroup — the app sibling is seen, a cgroup outside the pod is not', async () => {
    const pod = cgroup('pod');
    const app = cgroup('app', pod);
    const self = cgroup('flowtap', pod);
    const outside = cgroup('outside');

    const ft = watchFlowtap(self.spawn(process.execPath, [CLI, '--cgroup', 'pod', '--exporter', 'console'], { env: { ...process.env, ...FAST_EXPORT } }));
    cleanups.push(() => void ft.child.kill('SIGKILL'));
    const ready = await ft.ready;
    expect(ready.cgroup).toBe(pod.path);
    await expectOnlyTheAppsFlow(ft, server, app, outside);
  });

  it('private cgroup namespace, read-only bind mount of the hierarchy, k8s.pod.uid, only the manifest capabilities: finds the pod as the sidecar manifest runs it', async () => {
    const uid = '0f3c2b9e-1d2a-4c5b-8e7f-6a5b4c3d2e1f'.replace(/^0f/, Math.random().toString(16).slice(2, 4));
    // A cgroup standing in for the host's hierarchy root, with the kubelet's systemd-driver layout below it.
    const host = cgroup('host');
    const slices = [
      'kubepods.slice',
      'kubepods.slice/kubepods-burstable.slice',
      `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice`,
    ];
    for (const s of slices) {
      mkdirSync(join(host.path, s));
      cleanups.push(() => {
        if (existsSync(join(host.path, s))) rmdirSync(join(host.path, s));
      });
    }
    const podRel = slices[slices.length - 1];
    const podDir = join(host.path, podRel);
    const app = new TestCgroup('app', podDir);
    cleanups.push(() => app.destroy());
    const self = new TestCgroup('flowtap', podDir);
    cleanups.push(() => self.destroy());
    const outside = cgroup('outside', host); // on the same "node", not in the pod

    const mnt = mkdtempSync(join(tmpdir(), 'flowtap-hostcgroup-'));
    cleanups.push(() => rmSync(mnt, { recursive: true, force: true }));
    const caps = ['-all', ...SIDECAR_CAPABILITIES.map((c) => `+${c.toLowerCase()}`)].join(',');
    // The shell joins the flowtap cgroup, then unshares a cgroup namespace (rooted
    // there) and a mount namespace, mounts the "host" hierarchy read-only like a
    // hostPath volume, drops every capability but the manifest's, and execs flowtap.
    const script =
      'echo $$ > "$1/cgroup.procs" && exec unshare --cgroup --mount sh -c ' +
      '\'mount --bind -o ro "$0" "$1" && exec setpriv --bounding-set "$2" --inh-caps -all --no-new-privs -- "$3" "$4" --cgroup pod --exporter console\' ' +
      '"$2" "$3" "$4" "$5" "$6"';
    const child = spawn('/bin/sh', ['-c', script, 'sh', self.path, host.path, mnt, caps, process.execPath, CLI], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...FAST_EXPORT, OTEL_RESOURCE_ATTRIBUTES: `k8s.pod.uid=${uid},k8s.pod.name=demo` },
    });
    cleanups.push(() => void child.kill('SIGKILL'));
    const ft = watchFlowtap(child);
    const ready = await ft.ready;
    expect(ready.cgroup).toBe(join(mnt, podRel));
    // it really ran in a private cgroup namespace and with only those capabilities
    expect(readlinkSync(`/proc/${child.pid}/ns/cgroup`)).not.toBe(readlinkSync('/proc/self/ns/cgroup'));
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    expect(status).toMatch(/^CapEff:\s+0000008000001000$/m); // CAP_NET_ADMIN (12), CAP_BPF (39)
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);

    await expectOnlyTheAppsFlow(ft, server, app, outside);
    expect(ft.records()[0].resource['k8s.pod.uid']).toBe(uid);
  });
});
