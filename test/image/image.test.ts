/**
 * The container image (deploy/Dockerfile) with real parts and no container
 * engine: podman builds it (--isolation=chroot) from Debian bookworm + official
 * Node.js 24 base images made here with debootstrap (deploy/image/build.sh),
 * its root filesystem is exported (podman create + podman export), and its
 * ENTRYPOINT + CMD and Env, as `podman image inspect` reports them, are run
 * the way a container runtime runs a container: in a private mount namespace,
 * chrooted into that root filesystem mounted read-only (as
 * readOnlyRootFilesystem), with a fresh /proc, the host's /dev, a read-only
 * sysfs with the host's cgroup2 mount at /sys/fs/cgroup and its bpffs at
 * /sys/fs/bpf, a throwaway cgroup mounted read-only where the CMD's --cgroup
 * looks (the DaemonSet's hostPath volume), every capability dropped but
 * CAP_BPF and CAP_NET_ADMIN (capsh), no_new_privs, and the host network (the
 * collector listens on loopback). Real kernel programs, real loopback TCP
 * connections from a process in that cgroup, the real collector.
 *
 * Unlike a runtime it keeps the host's PID, UTS, IPC, network and cgroup
 * namespaces, and starts in / rather than in the image's WorkingDir (capsh
 * --chroot changes to the new root).
 *
 *   FLOWTAP_IMAGE=<name>  test that image (already in podman's storage)
 *                         instead of building one
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import type { Server } from 'node:net';
import { join, posix, resolve } from 'node:path';
import { BINDING_PATH } from '../../src/kernel/probe';
import { cgroup2Mount, TestCgroup } from '../helpers/cgroup';
import { startCollector, type RunningCollector } from '../helpers/collector';
import { connectFrom, listen, waitFor } from '../helpers/traffic';

const ROOT = resolve(__dirname, '..', '..');
const BUILD_SCRIPT = join(ROOT, 'deploy', 'image', 'build.sh');
const BUILD_TIMEOUT_MILLIS = 25 * 60_000;
const NEEDED = ['cap_bpf', 'cap_net_admin'];
const CONNECTIONS = 5;
const FAST_EXPORT = { OTEL_BLRP_SCHEDULE_DELAY: '50' };

interface BuildReport {
  image: string;
  id: string;
  sizeBytes: number;
  baseSeconds: number;
  buildSeconds: number;
}

interface ImageConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
}

/** Runs deploy/image/build.sh (its progress goes to our stderr) and parses its JSON line. */
function buildImage(): Promise<BuildReport> {
  return new Promise((resolveBuild, reject) => {
    const child = spawn(BUILD_SCRIPT, [], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code !== 0) return reject(new Error(`${BUILD_SCRIPT} exited ${code ?? signal} (its output is above)`));
      try {
        resolveBuild(JSON.parse(out.trim().split('\n').pop()!) as BuildReport);
      } catch (e) {
        reject(new Error(`${BUILD_SCRIPT} printed no JSON report: ${(e as Error).message}; stdout: ${out}`));
      }
    });
  });
}

function podman(args: string[]): string {
  return execFileSync('podman', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Every capability this system knows, from capsh's bounding set. */
function allCapabilities(): string[] {
  const line = execFileSync('capsh', ['--print'], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.startsWith('Bounding set ='));
  if (line === undefined) throw new Error('capsh --print shows no bounding set');
  return line.slice('Bounding set ='.length).trim().split(',');
}

/** "K=V" lines (an image's Env) as an object. */
function envObject(lines: readonly string[]): Record<string, string> {
  return Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Where a runtime finds `command` in the root filesystem: as given when it has a slash, else on the image's PATH. */
function resolveInImage(rootfs: string, command: string, path: string | undefined): string {
  if (command.includes('/')) return command;
  for (const dir of (path ?? '').split(':').filter(Boolean)) {
    const candidate = posix.join(dir, command);
    try {
      accessSync(join(rootfs, candidate), constants.X_OK);
      return candidate;
    } catch {
      /* not there */
    }
  }
  throw new Error(`the image's entrypoint '${command}' is not on its PATH (${path ?? 'unset'})`);
}

const byNumber = (a: number, b: number) => a - b;

/** The records' source.port values, in ascending order. */
function sortedPorts(records: { attributes: Record<string, unknown> }[]): number[] {
  return records.map((r) => r.attributes['source.port'] as number).sort(byNumber);
}

/** Every file under dir (not following symlinks). */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
}

interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  logs(): Record<string, unknown>[];
  /** Console-exporter records on stdout. */
  records(): { eventName: string; attributes: Record<string, unknown>; resource: Record<string, unknown> }[];
  ready: Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

interface RunOptions {
  /** Capabilities left in the bounding (hence effective) set. */
  keep: string[];
  /** Extra environment, as `docker run -e`. */
  env?: Record<string, string>;
  /** Host directory mounted read-only at the CMD's --cgroup directory; none when absent. */
  hostCgroup?: string;
}

describe('container image: deploy/Dockerfile built by podman from debootstrapped bases, ENTRYPOINT + CMD run chrooted with only CAP_BPF + CAP_NET_ADMIN (real kernel programs, real collector)', () => {
  let image: string;
  let report: BuildReport | undefined;
  let config: ImageConfig;
  let sizeBytes: number | undefined;
  let rootfs: string;
  let exportSeconds: number;
  /** Whether the image itself has the CMD's --cgroup directory (else the tests make the mount point). */
  let imageHasCgroupDir: boolean;
  let buildSeconds: number;
  let collector: RunningCollector;
  let server: Server;
  let port: number;
  const running = new Set<ChildProcess>();
  let cg: TestCgroup | undefined;

  beforeAll(async () => {
    const t0 = Date.now();
    if (process.env.FLOWTAP_IMAGE) {
      image = process.env.FLOWTAP_IMAGE;
    } else {
      report = await buildImage();
      image = report.image;
    }
    buildSeconds = (Date.now() - t0) / 1000;
    const [inspected] = JSON.parse(podman(['image', 'inspect', image])) as { Config: ImageConfig; Size: number }[];
    config = inspected.Config;
    sizeBytes = inspected.Size;

    const t1 = Date.now();
    rootfs = mkdtempSync('/var/tmp/flowtap-image-rootfs-');
    const name = `flowtap-image-test-${process.pid}`;
    podman(['create', '--name', name, image]);
    try {
      execFileSync('/bin/bash', ['-c', 'set -o pipefail; podman export "$0" | tar --numeric-owner -x -C "$1"', name, rootfs]);
    } finally {
      podman(['rm', '--force', name]);
    }
    exportSeconds = (Date.now() - t1) / 1000;
    imageHasCgroupDir = existsSync(join(rootfs, cmdCgroupDir()));

    collector = await startCollector();
    ({ server, port } = await listen('127.0.0.1'));
  }, BUILD_TIMEOUT_MILLIS);

  afterEach(async () => {
    for (const c of running) c.kill('SIGKILL');
    running.clear();
    await cg?.destroy();
    cg = undefined;
  });

  afterAll(async () => {
    await collector?.close();
    server?.close();
    if (rootfs) {
      // The mounts live in each run's private mount namespace; were one left in ours,
      // deleting the tree would delete what it shows (the host's /dev, a cgroup).
      const leaked = readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .map((l) => l.split(' ')[4])
        .filter((m) => m !== undefined && (m === rootfs || m.startsWith(`${rootfs}/`)));
      if (leaked.length > 0) throw new Error(`mounts left under ${rootfs}, not removing it: ${leaked.join(', ')}`);
      rmSync(rootfs, { recursive: true, force: true });
    }
    if (sizeBytes === undefined) return; // beforeAll failed: its error says why
    const built = report ? `bases ${report.baseSeconds} s + image ${report.buildSeconds} s` : `given as FLOWTAP_IMAGE`;
    console.log(
      `image-test: ${image}: size ${(sizeBytes / 1e6).toFixed(1)} MB (podman image inspect Size, ${sizeBytes} bytes); ` +
        `build ${buildSeconds.toFixed(1)} s (${built}); root filesystem export ${exportSeconds?.toFixed(1)} s`,
    );
  });

  /** The CMD's --cgroup directory: where the image expects the host's cgroup v2 hierarchy. */
  function cmdCgroupDir(): string {
    const cmd = config.Cmd ?? [];
    const i = cmd.indexOf('--cgroup');
    if (i < 0 || !posix.isAbsolute(cmd[i + 1] ?? '')) throw new Error(`the image's CMD ${JSON.stringify(cmd)} names no absolute --cgroup directory`);
    return cmd[i + 1];
  }

  /** Starts the image's ENTRYPOINT + CMD as a runtime would (see the top of this file). */
  function runImage(options: RunOptions): Running {
    const entrypoint = config.Entrypoint ?? [];
    const cmd = config.Cmd ?? [];
    if (entrypoint.length === 0) throw new Error('the image has no ENTRYPOINT');
    const env = { ...envObject(config.Env ?? []), ...options.env };
    const shell = resolveInImage(rootfs, entrypoint[0], env.PATH);
    const target = options.hostCgroup === undefined ? '' : cmdCgroupDir();
    // The mount point, made as a runtime makes it, and only while something is mounted there.
    if (target !== '') mkdirSync(join(rootfs, target), { recursive: true });
    else if (!imageHasCgroupDir) rmSync(join(rootfs, cmdCgroupDir()), { recursive: true, force: true });
    const drop = allCapabilities().filter((c) => !options.keep.includes(c));
    // $1 root filesystem, $2 host cgroup2 mount, $3 host cgroup dir for the CMD (or ''), $4 where,
    // $5 capabilities to drop, $6 the entrypoint's executable; the rest its arguments.
    const script = `set -e
r=$1 cg2=$2 src=$3 dst=$4 drop=$5 exe=$6
shift 6
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount --bind "$cg2" "$r/sys/fs/cgroup"
mount -o remount,bind,ro "$r/sys/fs/cgroup"
mount --bind /sys/fs/bpf "$r/sys/fs/bpf"
if [ -n "$src" ]; then mount --bind "$src" "$r$dst"; mount -o remount,bind,ro "$r$dst"; fi
mount -o remount,bind,ro "$r"
exec capsh --chroot="$r" --drop="$drop" --no-new-privs --shell="$exe" -- "$@"`;
    const child = spawn(
      'unshare',
      ['--mount', '--propagation', 'private', '/bin/sh', '-c', script, 'sh', rootfs, cgroup2Mount(), options.hostCgroup ?? '', target, drop.join(','), shell, ...entrypoint.slice(1), ...cmd],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      child.once('exit', (code, signal) => {
        running.delete(child);
        r({ code, signal });
      }),
    );
    const logs = () =>
      err
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const ready = new Promise<Record<string, unknown>>((resolveReady, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready after 20 s; stderr: ${err}`)), 20_000);
      const check = () => {
        const line = logs().find((l) => l.msg === 'ready');
        if (line) {
          clearTimeout(timer);
          resolveReady(line);
        }
      };
      child.stderr!.on('data', check);
      void exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`exited (${code ?? signal}) before ready; stderr: ${err}`));
      });
    });
    ready.catch(() => undefined);
    return {
      child,
      stdout: () => out,
      stderr: () => err,
      logs,
      records: () =>
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      ready,
      exited,
    };
  }

  /** SIGTERM; flowtap must flush and exit 0 (DESIGN: within 5 s). */
  async function stop(ft: Running): Promise<void> {
    ft.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      ft.exited,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no exit within 10 s of SIGTERM; stderr: ${ft.stderr()}`)), 10_000))),
    ]);
    clearTimeout(timer);
    expect(result).toEqual({ code: 0, signal: null });
  }

  it('runs as root, its entrypoint is on the image, and it carries only the runtime: Node.js 24, the addon with its libraries resolved, production packages, no build tools or sources', () => {
    expect(['', '0', '0:0', 'root']).toContain(config.User ?? '');
    const entrypoint = config.Entrypoint ?? [];
    const env = envObject(config.Env ?? []);
    const node = resolveInImage(rootfs, entrypoint[0], env.PATH);
    expect(execFileSync('chroot', [rootfs, node, '--version'], { encoding: 'utf8' })).toMatch(/^v24\./);

    // The script the entrypoint runs (dist/cli.js) lives in the package root's dist/.
    const script = entrypoint.find((a) => a.endsWith('.js'));
    expect(script).toBeDefined();
    const pkgRoot = posix.dirname(posix.dirname(script!));
    const pkg = JSON.parse(readFileSync(join(rootfs, pkgRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

    const ldd = execFileSync('chroot', [rootfs, 'ldd', posix.join(pkgRoot, BINDING_PATH)], { encoding: 'utf8' });
    expect(ldd).not.toContain('not found');
    for (const lib of ['libbpf.so.1', 'libelf.so.1', 'libz.so.1']) expect(ldd).toMatch(new RegExp(`^\\s*${lib.replace(/\./g, '\\.')} => /`, 'm'));

    // Production packages, as the lockfile it was built from says: every one there, no dev-only one.
    const modules = join(rootfs, pkgRoot, 'node_modules');
    for (const name of Object.keys(pkg.dependencies)) expect(existsSync(join(modules, name, 'package.json'))).toBe(true);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }> };
    const installed = Object.entries(lock.packages).filter(([p]) => p.startsWith('node_modules/'));
    const devOnly = installed.filter(([, e]) => e.dev === true).map(([p]) => p);
    const production = installed.filter(([, e]) => !e.dev && !e.optional && !e.devOptional).map(([p]) => p);
    expect(devOnly.length).toBeGreaterThan(0);
    expect(devOnly.filter((p) => existsSync(join(rootfs, pkgRoot, p)))).toEqual([]);
    expect(production.filter((p) => !existsSync(join(rootfs, pkgRoot, p, 'package.json')))).toEqual([]);
    expect(walk(modules).filter((f) => /\.d\.[cm]?ts$|\.map$/.test(f))).toEqual([]);

    for (const dir of ['src', 'bpf', 'native', 'test', 'bench', 'tools']) expect(existsSync(join(rootfs, pkgRoot, dir))).toBe(false);
    const pathDirs = (env.PATH ?? '').split(':').filter(Boolean);
    const tools = ['clang', 'llc', 'gcc', 'g++', 'cc', 'make', 'bpftool', 'tsc'].filter((t) => pathDirs.some((d) => existsSync(join(rootfs, d, t))));
    expect(tools).toEqual([]);
    expect(existsSync(join(rootfs, 'usr/include/bpf/libbpf.h'))).toBe(false);
  });

  it(`console exporter: ${CONNECTIONS} connections from a throwaway cgroup give exactly ${CONNECTIONS} flowtap.flow.begin records with their ports; only CAP_BPF + CAP_NET_ADMIN, chrooted, read-only root`, async () => {
    cg = new TestCgroup('image');
    const ft = runImage({ keep: NEEDED, hostCgroup: cg.path, env: { OTEL_LOGS_EXPORTER: 'console', ...FAST_EXPORT } });
    const ready = await ft.ready;
    expect(ready.cgroup).toBe(cmdCgroupDir());
    const pid = ft.child.pid!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    expect(status).toMatch(/^CapEff:\s+0000008000001000$/m); // CAP_NET_ADMIN (12), CAP_BPF (39), nothing else
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(readlinkSync(`/proc/${pid}/root`)).toBe(rootfs);
    expect(readFileSync(`/proc/${pid}/mounts`, 'utf8')).toMatch(/^\S+ \/ \S+ ro[,\s]/m);

    const conns = await connectFrom(cg, '127.0.0.1', port, CONNECTIONS);
    expect(conns.map((c) => c.ok)).toEqual(Array(CONNECTIONS).fill(true));
    const begins = () => ft.records().filter((r) => r.eventName === 'flowtap.flow.begin');
    await waitFor(`${CONNECTIONS} flowtap.flow.begin records on stdout`, () => (begins().length >= CONNECTIONS ? true : undefined), 15_000);
    await stop(ft); // flushes everything it read: a late duplicate would show below
    expect(sortedPorts(begins())).toEqual(conns.map((c) => c.localPort).sort(byNumber));
    for (const r of begins()) {
      expect(r.attributes['destination.port']).toBe(port);
      expect(r.attributes['flowtap.flow.direction']).toBe('outgoing');
    }
  });

  it(`OTLP to the real collector (the image's default exporter): exactly ${CONNECTIONS} flowtap.flow.begin records arrive, with their ports`, async () => {
    cg = new TestCgroup('image-otlp');
    const ft = runImage({ keep: NEEDED, hostCgroup: cg.path, env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, ...FAST_EXPORT } });
    await ft.ready;
    const conns = await connectFrom(cg, '127.0.0.1', port, CONNECTIONS);
    expect(conns.map((c) => c.ok)).toEqual(Array(CONNECTIONS).fill(true));
    const isBegin = (r: { eventName: string }) => r.eventName === 'flowtap.flow.begin';
    await collector.waitForLogRecords(isBegin, 15_000, CONNECTIONS);
    await stop(ft);
    const begins = collector.readLogRecords().filter(isBegin);
    expect(sortedPorts(begins)).toEqual(conns.map((c) => c.localPort).sort(byNumber));
    for (const r of begins) {
      expect(r.attributes['destination.port']).toBe(port);
      expect(r.resource['service.name']).toBe('flowtap');
    }
  });

  it.each(NEEDED)('without %s: exits 1 with one line saying it is missing and that flowtap needs CAP_BPF and CAP_NET_ADMIN', async (missing) => {
    cg = new TestCgroup('image-caps');
    const ft = runImage({ keep: NEEDED.filter((c) => c !== missing), hostCgroup: cg.path, env: { OTEL_LOGS_EXPORTER: 'none' } });
    expect((await ft.exited).code).toBe(1);
    const lines = ft.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^flowtap: .*: missing ${missing.toUpperCase()} \\(flowtap needs CAP_BPF and CAP_NET_ADMIN, or root\\)$`));
  });

  it("default command without the host's cgroup hierarchy mounted: exits 2 with one line naming --cgroup and the directory", async () => {
    const ft = runImage({ keep: NEEDED, env: { OTEL_LOGS_EXPORTER: 'none' } });
    expect((await ft.exited).code).toBe(2);
    expect(ft.stderr().trim()).toBe(`flowtap: --cgroup ${cmdCgroupDir()}: cgroup path ${cmdCgroupDir()} does not exist`);
  });
});
