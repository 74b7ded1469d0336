/**
 * A real DNS server (dnsmasq from Debian) inside a test network namespace,
 * authoritative for a test zone written into its config. Only the test's own
 * namespace addresses are served and used.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from './processes';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Dnsmasq {
  stop(): Promise<void>;
  stderr(): string;
  /** SIGSTOP: queries wait in its socket until resume (to order forged answers around the real one). */
  pause(): void;
  /** SIGCONT: it answers what waited. */
  resume(): void;
}

/**
 * Starts dnsmasq in namespace `ns` listening on `listen`, port `port`.
 * `config` holds zone lines (host-record=, cname=, ...); `hosts` is an extra
 * hosts file (for a name with several addresses).
 */
export async function startDnsmasq(prefix: string[], listen: string[], config: string[], hosts = '', port = 53): Promise<Dnsmasq> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-dns-'));
  const hostsFile = join(dir, 'hosts');
  writeFileSync(hostsFile, hosts);
  const conf = [
    'no-resolv', // answer only from the zone below, never forward
    'no-hosts',
    `addn-hosts=${hostsFile}`,
    'no-poll',
    'bind-interfaces',
    ...listen.map((a) => `listen-address=${a}`),
    `port=${port}`,
    'local-ttl=300', // dnsmasq answers local names with TTL 0 by default
    'user=root',
    `pid-file=${join(dir, 'pid')}`,
    ...config,
  ].join('\n');
  const confFile = join(dir, 'dnsmasq.conf');
  writeFileSync(confFile, conf + '\n');
  const child: ChildProcess = spawn(prefix[0], [...prefix.slice(1), 'dnsmasq', '--keep-in-foreground', '--log-facility=-', `--conf-file=${confFile}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // ready when it logs that it started, or fail with its output
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`dnsmasq did not start: ${err}`)), 10000);
    const check = () => {
      if (/started, version/.test(err)) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    void exited.then(() => {
      clearTimeout(t);
      reject(new Error(`dnsmasq exited: ${err}`));
    });
  });
  await new Promise((r) => setTimeout(r, 100));
  return {
    stderr: () => err,
    // `ip netns exec` and the cgroup prefix exec dnsmasq: the child is dnsmasq itself
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 3000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
