/**
 * The container image (deploy/Dockerfile) with real parts and no container
 * engine: podman builds it (--isolation=chroot) from a Debian bookworm +
 * official Node.js 24 build image made here with debootstrap
 * (deploy/image/build.sh), its root filesystem is exported (podman create +
 * podman export, extended attributes kept: node's file capabilities live in
 * one), and its ENTRYPOINT + CMD, Env and User, as `podman image inspect`
 * reports them, are run the way a container runtime runs a container: in a
 * private mount namespace, chrooted into that root filesystem mounted
 * read-only (as readOnlyRootFilesystem), with a fresh /proc, the host's /dev,
 * a read-only sysfs with the host's cgroup2 mount at /sys/fs/cgroup and its
 * bpffs at /sys/fs/bpf, a throwaway cgroup mounted read-only where the CMD's
 * --cgroup looks (the DaemonSet's hostPath volume), the host network (the
 * collector listens on loopback), and as the image's non-root user with a
 * bounding set of only CAP_BPF and CAP_NET_ADMIN (capsh), as
 * `securityContext.capabilities` {drop: [ALL], add: [BPF, NET_ADMIN]} or
 * `docker run --cap-drop ALL --cap-add ...` give. Two ways runtimes start a
 * non-root process, both run:
 *   - permitted set = the added capabilities before the exec, no_new_privs
 *     (containerd and CRI-O with allowPrivilegeEscalation: false)
 *   - permitted set empty before the exec, no no_new_privs (the file
 *     capabilities alone; `docker run --user`)
 * And mutual TLS with the collector TLS Secret laid out and mounted as the
 * Helm chart mounts it. Real kernel programs, real loopback TCP connections
 * from a process in that cgroup, the real collector.
 *
 * Unlike a runtime it keeps the host's PID, UTS, IPC, network and cgroup
 * namespaces, and starts in / rather than in the image's WorkingDir (capsh
 * --chroot changes to the new root).
 *
 *   FLOWTAP_IMAGE=<name>  test that image (already in podman's storage)
 *                         instead of building one
 */
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { spawn } from '../helpers/processes';
import {
  accessSync,
  chmodSync,
  closeSync,
  copyFileSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
} from 'node:fs';
import type { Server } from 'node:net';
import { join, posix, resolve } from 'node:path';
import { BINDING_PATH } from '../../src/kernel/probe';
import { cgroup2Mount, TestCgroup } from '../helpers/cgroup';
import { FLOWTAP_USER } from '../helpers/kube';
import { makePki } from '../helpers/pki';
import { startCollector, type RunningCollector } from '../helpers/collector';
import { connectFrom, listen, waitFor } from '../helpers/traffic';

const ROOT = resolve(__dirname, '..', '..');
const BUILD_SCRIPT = join(ROOT, 'deploy', 'image', 'build.sh');
const BUILD_TIMEOUT_MILLIS = 25 * 60_000;
const NEEDED = ['cap_bpf', 'cap_net_admin'];
/** CapEff/CapPrm with exactly CAP_NET_ADMIN (12) and CAP_BPF (39). */
const NEEDED_MASK = '0000008000001000';
/** At most this size: node, its libraries and /opt/flowtap are about 126 MB; a distribution base image would not fit. */
const MAX_IMAGE_BYTES = 160e6;
const CONNECTIONS = 5;
const FAST_EXPORT = { OTEL_BLRP_SCHEDULE_DELAY: '50' };
/** Where the Helm chart mounts the collector TLS Secret (values.yaml tls.mountPath). */
const TLS_MOUNT = '/etc/flowtap/tls';

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

/** Where the host's own tools are: the image's PATH does not have them. */
const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A host command's path, looked up on HOST_PATH. */
function hostCommand(name: string): string {
  return execFileSync('/bin/sh', ['-c', 'command -v "$0"', name], { encoding: 'utf8', env: { PATH: HOST_PATH } }).trim();
}

const byNumber = (a: number, b: number) => a - b;

/** The records' source.port values, in ascending order. */
function sortedPorts(records: { attributes: Record<string, unknown> }[]): number[] {
  return records.map((r) => r.attributes['source.port'] as number).sort(byNumber);
}

/** Whether the file starts with the ELF magic number. */
function isElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    return readSync(fd, head, 0, 4, 0) === 4 && head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
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
  /** Capabilities left in the bounding set (the runtime's capabilities.add). */
  keep: string[];
  /** Run as root instead of the image's User (runAsUser: 0): the bounding set is then the effective set. */
  root?: boolean;
  /** The permitted set before the exec is `keep` (containerd, CRI-O) rather than empty; default true. */
  permitted?: boolean;
  /** no_new_privs (allowPrivilegeEscalation: false); default true. */
  noNewPrivs?: boolean;
  /** Extra environment, as `docker run -e`. */
  env?: Record<string, string>;
  /** Host directory mounted read-only at the CMD's --cgroup directory; none when absent. */
  hostCgroup?: string;
  /** Another host directory mounted read-only in the image (as a Secret volume is). */
  volume?: { source: string; target: string };
}

describe('container image: deploy/Dockerfile built by podman from a debootstrapped build image, ENTRYPOINT + CMD run chrooted as its non-root user with only CAP_BPF + CAP_NET_ADMIN in the bounding set (real kernel programs, real collector)', () => {
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
  /** Directories made in the root filesystem for mount points (the first one mkdir made of each), removed after each test. */
  const madeMountPoints = new Set<string>();
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
    // The image's / as a runtime lays it out: mkdtemp's 0700 would keep the non-root user out.
    chmodSync(rootfs, 0o755);
    const name = `flowtap-image-test-${process.pid}`;
    podman(['create', '--name', name, image]);
    try {
      execFileSync('/bin/bash', ['-c', `set -o pipefail; podman export "$0" | tar --numeric-owner --xattrs --xattrs-include='*' -x -C "$1"`, name, rootfs]);
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
    for (const dir of madeMountPoints) rmSync(dir, { recursive: true, force: true });
    madeMountPoints.clear();
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

  /** The image's User as [uid, gid]: numeric, so that runAsNonRoot can be checked against it. */
  function imageUser(): [number, number] {
    const m = /^(\d+):(\d+)$/.exec(config.User ?? '');
    if (m === null) throw new Error(`the image's User ${JSON.stringify(config.User)} is not uid:gid`);
    return [Number(m[1]), Number(m[2])];
  }

  /** The ELF interpreter node asks for (readelf), e.g. /lib64/ld-linux-x86-64.so.2. */
  function interpreterOf(file: string): string {
    const m = /Requesting program interpreter: (\S+)\]/.exec(execFileSync('readelf', ['-l', file], { encoding: 'utf8' }));
    if (m === null) throw new Error(`${file} names no ELF interpreter`);
    return m[1];
  }

  /** Starts the image's ENTRYPOINT + CMD as a runtime would (see the top of this file). */
  function runImage(options: RunOptions): Running {
    const entrypoint = config.Entrypoint ?? [];
    const cmd = config.Cmd ?? [];
    if (entrypoint.length === 0) throw new Error('the image has no ENTRYPOINT');
    const env = { ...envObject(config.Env ?? []), ...options.env };
    const shell = resolveInImage(rootfs, entrypoint[0], env.PATH);
    const target = options.hostCgroup === undefined ? '' : cmdCgroupDir();
    // The mount points, made as a runtime makes them, and only while something is mounted there.
    if (target !== '') mkdirSync(join(rootfs, target), { recursive: true });
    else if (!imageHasCgroupDir) rmSync(join(rootfs, cmdCgroupDir()), { recursive: true, force: true });
    const made = options.volume ? mkdirSync(join(rootfs, options.volume.target), { recursive: true }) : undefined;
    if (made !== undefined) madeMountPoints.add(made);
    const drop = allCapabilities().filter((c) => !options.keep.includes(c));
    const [uid, gid] = options.root ? [0, 0] : imageUser();
    const permitted = options.permitted ?? true;
    // capsh, in order: chroot, bounding set, then (non-root) the runtime's setuid: the
    // permitted set kept across it (--keep=1) and cut to `keep`, or emptied by it.
    const capsh = [
      `--drop=${drop.join(',')}`,
      ...(uid === 0
        ? []
        : [
            ...(permitted ? ['--keep=1'] : []),
            `--gid=${gid}`,
            `--groups=${gid}`,
            `--uid=${uid}`,
            ...(permitted ? [`--caps=${options.keep.join(',')}=p`] : []),
          ]),
      ...((options.noNewPrivs ?? true) ? ['--no-new-privs'] : []),
      `--shell=${shell}`,
      '--',
    ];
    // $1 root filesystem, $2 host cgroup2 mount, $3 host cgroup dir for the CMD (or ''), $4 where,
    // $5 another volume (or ''), $6 where; the rest capsh's arguments, the entrypoint's arguments last.
    // The environment is the image's (its PATH too): the host's tools are looked up on the host's PATH.
    const script = `set -e
image_path=$PATH
PATH=${HOST_PATH}
capsh=$(command -v capsh)
r=$1 cg2=$2 src=$3 dst=$4 vsrc=$5 vdst=$6
shift 6
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
mount --rbind /dev "$r/dev"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount --bind "$cg2" "$r/sys/fs/cgroup"
mount -o remount,bind,ro "$r/sys/fs/cgroup"
mount --bind /sys/fs/bpf "$r/sys/fs/bpf"
if [ -n "$src" ]; then mount --bind "$src" "$r$dst"; mount -o remount,bind,ro "$r$dst"; fi
if [ -n "$vsrc" ]; then mount --bind "$vsrc" "$r$vdst"; mount -o remount,bind,ro "$r$vdst"; fi
mount -o remount,bind,ro "$r"
PATH=$image_path
exec "$capsh" --chroot="$r" "$@"`;
    const child = spawn(
      hostCommand('unshare'),
      [
        '--mount',
        '--propagation',
        'private',
        '/bin/sh',
        '-c',
        script,
        'sh',
        rootfs,
        cgroup2Mount(),
        options.hostCgroup ?? '',
        target,
        options.volume?.source ?? '',
        options.volume?.target ?? '',
        ...capsh,
        ...entrypoint.slice(1),
        ...cmd,
      ],
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

  it(`runs as uid:gid ${FLOWTAP_USER}:${FLOWTAP_USER}, node carries cap_bpf,cap_net_admin=ep, and the image holds only the runtime: Node.js 24, its and the addon's libraries, production packages, no shell, tools or sources; under ${MAX_IMAGE_BYTES / 1e6} MB`, () => {
    expect(config.User).toBe(`${FLOWTAP_USER}:${FLOWTAP_USER}`);
    const passwd = readFileSync(join(rootfs, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(new RegExp(`^flowtap:x:${FLOWTAP_USER}:${FLOWTAP_USER}:`, 'm'));
    const entrypoint = config.Entrypoint ?? [];
    const env = envObject(config.Env ?? []);
    const node = resolveInImage(rootfs, entrypoint[0], env.PATH);
    // The capabilities are an extended attribute of the file (security.capability), nothing else has any.
    expect(execFileSync('getcap', [join(rootfs, node)], { encoding: 'utf8' }).trim()).toBe(`${join(rootfs, node)} cap_net_admin,cap_bpf=ep`);
    expect(execFileSync('getcap', ['-r', rootfs], { encoding: 'utf8' }).trim().split('\n')).toHaveLength(1);
    expect(execFileSync('chroot', [rootfs, node, '--version'], { encoding: 'utf8' })).toMatch(/^v24\./);

    // The script the entrypoint runs (dist/cli.js) lives in the package root's dist/.
    const script = entrypoint.find((a) => a.endsWith('.js'));
    expect(script).toBeDefined();
    const pkgRoot = posix.dirname(posix.dirname(script!));
    const pkg = JSON.parse(readFileSync(join(rootfs, pkgRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

    // No ldd in the image: its own dynamic loader lists what the addon loads, and from where.
    const loader = interpreterOf(join(rootfs, node));
    const libs = execFileSync('chroot', [rootfs, loader, '--list', posix.join(pkgRoot, BINDING_PATH)], { encoding: 'utf8' });
    expect(libs).not.toContain('not found');
    for (const lib of ['libbpf.so.1', 'libelf.so.1', 'libz.so.1', 'libstdc++.so.6', 'libc.so.6'])
      expect(libs).toMatch(new RegExp(`^\\s*${lib.replace(/[.+]/g, '\\$&')} => /`, 'm'));

    // Production packages, as the lockfile it was built from says: every one there, no dev-only one.
    const modules = join(rootfs, pkgRoot, 'node_modules');
    for (const name of Object.keys(pkg.dependencies)) expect(existsSync(join(modules, name, 'package.json'))).toBe(true);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean }>;
    };
    const installed = Object.entries(lock.packages).filter(([p]) => p.startsWith('node_modules/'));
    const devOnly = installed.filter(([, e]) => e.dev === true).map(([p]) => p);
    const production = installed.filter(([, e]) => !e.dev && !e.optional && !e.devOptional).map(([p]) => p);
    expect(devOnly.length).toBeGreaterThan(0);
    expect(devOnly.filter((p) => existsSync(join(rootfs, pkgRoot, p)))).toEqual([]);
    expect(production.filter((p) => !existsSync(join(rootfs, pkgRoot, p, 'package.json')))).toEqual([]);
    expect(walk(modules).filter((f) => /\.d\.[cm]?ts$|\.map$/.test(f))).toEqual([]);

    for (const dir of ['src', 'bpf', 'native', 'test', 'bench', 'tools']) expect(existsSync(join(rootfs, pkgRoot, dir))).toBe(false);
    // Executable programs (ELF, not a shared library): node, and nothing else (no shell, no package manager, no libc tools).
    const executables = walk(rootfs)
      .filter((f) => !/\.so(\.\d+)*$|\.node$/.test(f) && lstatSync(f).isFile() && (lstatSync(f).mode & 0o111) !== 0)
      .filter(isElf);
    expect(executables.map((f) => f.slice(rootfs.length))).toEqual([node]);
    expect(existsSync(join(rootfs, 'usr/include'))).toBe(false);
    expect(sizeBytes).toBeLessThan(MAX_IMAGE_BYTES);
  });

  /** The lines of /proc/<pid>/status that say who a process is and what it may do. */
  function credentials(pid: number): Record<string, string> {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Object.fromEntries(
      status
        .split('\n')
        .filter((l) => /^(Uid|Gid|Groups|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):/.test(l))
        .map((l) => [
          l.slice(0, l.indexOf(':')),
          l
            .slice(l.indexOf(':') + 1)
            .trim()
            .replace(/\s+/g, ' '),
        ]),
    );
  }

  it(`console exporter, as containerd and CRI-O start it (non-root, capabilities.add in the bounding and permitted sets, no_new_privs): ${CONNECTIONS} connections from a throwaway cgroup give exactly ${CONNECTIONS} flowtap.flow.begin records with their ports; chrooted, read-only root`, async () => {
    cg = new TestCgroup('image');
    const ft = runImage({ keep: NEEDED, hostCgroup: cg.path, env: { OTEL_LOGS_EXPORTER: 'console', ...FAST_EXPORT } });
    const ready = await ft.ready;
    expect(ready.cgroup).toBe(cmdCgroupDir());
    const pid = ft.child.pid!;
    expect(credentials(pid)).toEqual({
      Uid: Array(4).fill(FLOWTAP_USER).join(' '),
      Gid: Array(4).fill(FLOWTAP_USER).join(' '),
      Groups: String(FLOWTAP_USER),
      CapInh: '0000000000000000',
      CapPrm: NEEDED_MASK,
      CapEff: NEEDED_MASK,
      CapBnd: NEEDED_MASK,
      CapAmb: '0000000000000000',
      NoNewPrivs: '1',
    });
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

  it(`OTLP to the real collector (the image's default exporter), as \`docker run --user\` starts it (permitted set empty before the exec: the file capabilities alone): exactly ${CONNECTIONS} flowtap.flow.begin records arrive, with their ports`, async () => {
    cg = new TestCgroup('image-otlp');
    const ft = runImage({
      keep: NEEDED,
      permitted: false,
      noNewPrivs: false,
      hostCgroup: cg.path,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, ...FAST_EXPORT },
    });
    await ft.ready;
    const status = credentials(ft.child.pid!);
    expect([status.Uid, status.CapEff, status.CapBnd, status.NoNewPrivs]).toEqual([Array(4).fill(FLOWTAP_USER).join(' '), NEEDED_MASK, NEEDED_MASK, '0']);
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

  it("mutual TLS to the real collector as the Helm chart configures it: the Secret's ca.crt, tls.crt and tls.key (mode 0444) mounted read-only, named by OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY; exactly the records arrive", async () => {
    const pki = makePki();
    const secret = mkdtempSync('/var/tmp/flowtap-image-secret-');
    let mtls: RunningCollector | undefined;
    try {
      // A Secret volume: the Secret's keys as files, defaultMode 0444, in a directory others may enter.
      chmodSync(secret, 0o755);
      for (const [key, file] of [
        ['ca.crt', pki.ca],
        ['tls.crt', pki.clientCert],
        ['tls.key', pki.clientKey],
      ] as const) {
        copyFileSync(file, join(secret, key));
        chmodSync(join(secret, key), 0o444);
      }
      mtls = await startCollector({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.ca } });
      cg = new TestCgroup('image-mtls');
      const ft = runImage({
        keep: NEEDED,
        hostCgroup: cg.path,
        volume: { source: secret, target: TLS_MOUNT },
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: mtls.endpoint,
          OTEL_EXPORTER_OTLP_CERTIFICATE: `${TLS_MOUNT}/ca.crt`,
          OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: `${TLS_MOUNT}/tls.crt`,
          OTEL_EXPORTER_OTLP_CLIENT_KEY: `${TLS_MOUNT}/tls.key`,
          ...FAST_EXPORT,
        },
      });
      await ft.ready;
      expect(mtls.endpoint).toMatch(/^https:/);
      const conns = await connectFrom(cg, '127.0.0.1', port, CONNECTIONS);
      expect(conns.map((c) => c.ok)).toEqual(Array(CONNECTIONS).fill(true));
      const isBegin = (r: { eventName: string }) => r.eventName === 'flowtap.flow.begin';
      await mtls.waitForLogRecords(isBegin, 15_000, CONNECTIONS);
      await stop(ft);
      expect(sortedPorts(mtls.readLogRecords().filter(isBegin))).toEqual(conns.map((c) => c.localPort).sort(byNumber));
      expect(ft.logs().filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    } finally {
      await mtls?.close();
      rmSync(secret, { recursive: true, force: true });
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });

  it.each(NEEDED.flatMap((c) => [[c, 'non-root', FLOWTAP_USER] as const, [c, 'root', 0] as const]))(
    'with %s missing from the bounding set, as %s: the kernel refuses to start node (EPERM: it gets all of its file capabilities or does not run)',
    (missing, _who, uid) => {
      // setpriv, unlike capsh, says why an exec failed; node runs from the image's root with the host's loader.
      const node = join(rootfs, resolveInImage(rootfs, (config.Entrypoint ?? [])[0], envObject(config.Env ?? []).PATH));
      const as = (keep: string[]) =>
        spawnSync(
          hostCommand('setpriv'),
          [
            `--reuid=${uid}`,
            `--regid=${uid}`,
            '--clear-groups',
            '--inh-caps=-all',
            `--bounding-set=-all,${keep.map((c) => `+${c.slice(4)}`).join(',')}`,
            node,
            '--version',
          ],
          {
            encoding: 'utf8',
          },
        );
      const refused = as(NEEDED.filter((c) => c !== missing));
      expect(refused.stderr).toContain('Operation not permitted');
      expect(refused.status).toBe(126);
      expect(refused.stdout).toBe('');
      // the same with both: it runs
      expect(as(NEEDED).stdout).toMatch(/^v24\./);
    },
  );

  it('non-root with no_new_privs and a permitted set emptied before the exec: node starts without capabilities and flowtap exits 1 with one line naming both', async () => {
    cg = new TestCgroup('image-nnp');
    const ft = runImage({ keep: NEEDED, permitted: false, noNewPrivs: true, hostCgroup: cg.path, env: { OTEL_LOGS_EXPORTER: 'none' } });
    expect((await ft.exited).code).toBe(1);
    expect(ft.stderr().trim()).toMatch(/^flowtap: .*: missing CAP_BPF, CAP_NET_ADMIN \(flowtap needs CAP_BPF and CAP_NET_ADMIN, or root\)$/);
  });

  it("default command without the host's cgroup hierarchy mounted: exits 2 with one line naming --cgroup and the directory", async () => {
    const ft = runImage({ keep: NEEDED, env: { OTEL_LOGS_EXPORTER: 'none' } });
    expect((await ft.exited).code).toBe(2);
    expect(ft.stderr().trim()).toBe(`flowtap: --cgroup ${cmdCgroupDir()}: cgroup path ${cmdCgroupDir()} does not exist`);
  });
});
