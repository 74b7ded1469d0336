/**
 * Least privilege with the real CLI and the real kernel programs: flowtap
 * runs as root with every capability dropped from its bounding set (capsh,
 * libcap2-bin) except the ones it needs, as in a container with
 * `capabilities: {drop: [ALL], add: [BPF, NET_ADMIN]}`, and reports
 * a real connection. Without any one of them it exits 1 with one line naming
 * the missing capability.
 *
 * What is needed, found this way on Linux 6.18: CAP_BPF (maps, socket
 * storage, program load), CAP_NET_ADMIN (attaching the cgroup_skb, cgroup
 * connect/post_bind and sockops programs). Not needed: CAP_PERFMON (the
 * programs add only constants to packet pointers, so the verifier's Spectre
 * v1 rules for !perfmon pass, and never compare a context pointer with
 * NULL), CAP_SYS_ADMIN, CAP_SYS_RESOURCE (BPF memory is charged to the
 * memory cgroup, not RLIMIT_MEMLOCK). Without CAP_PERFMON cgroup programs
 * may not call bpf_get_current_comm: flowtap says so once at start.
 */
import { execFileSync } from 'node:child_process';
import type { Server } from 'node:net';
import { TestCgroup } from '../helpers/cgroup';
import { killAllFlowtaps, runFlowtap, startFlowtap } from '../helpers/flowtap';
import { connectFrom, listen, waitFor } from '../helpers/traffic';

const NEEDED = ['cap_bpf', 'cap_net_admin'];

/** Every capability this system knows, from capsh's bounding set. */
function allCapabilities(): string[] {
  const line = execFileSync('capsh', ['--print'], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.startsWith('Bounding set ='))!;
  return line.slice('Bounding set ='.length).trim().split(',');
}

/** A command prefix that runs the rest with only `keep` left in the bounding (hence effective) set. */
function onlyCapabilities(keep: string[]): string[] {
  const drop = allCapabilities().filter((c) => !keep.includes(c));
  return ['capsh', `--drop=${drop.join(',')}`, '--', '-c', 'exec "$0" "$@"'];
}

describe('least privilege (real CLI under capsh, real kernel programs)', () => {
  let cg: TestCgroup;
  const servers: Server[] = [];

  beforeEach(() => {
    cg = new TestCgroup('caps');
  });
  afterEach(async () => {
    killAllFlowtaps();
    for (const s of servers.splice(0)) s.close();
    await cg.destroy();
  });

  it(`works with only ${NEEDED.join(', ')}: a flow is reported`, async () => {
    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    const ft = await startFlowtap(['--cgroup', cg.path, '--exporter', 'console'], { OTEL_BLRP_SCHEDULE_DELAY: '50' }, 15000, onlyCapabilities(NEEDED));
    const status = execFileSync('grep', ['^CapEff', `/proc/${ft.child.pid}/status`], { encoding: 'utf8' });
    // CAP_NET_ADMIN (12) and CAP_BPF (39), nothing else
    expect(status.trim()).toBe('CapEff:\t0000008000001000');
    // every program is loaded and attached: the packet hooks and the socket ones
    const attached = JSON.parse(execFileSync('bpftool', ['cgroup', 'show', cg.path, '-j'], { encoding: 'utf8' })) as { attach_type: string; name: string }[];
    expect(attached.map((a) => `${a.attach_type} ${a.name}`).sort()).toEqual([
      'cgroup_getsockopt flowtap_getsockopt',
      'cgroup_inet4_connect flowtap_connect4',
      'cgroup_inet4_post_bind flowtap_post_bind4',
      'cgroup_inet6_connect flowtap_connect6',
      'cgroup_inet6_post_bind flowtap_post_bind6',
      'cgroup_inet_egress flowtap_egress',
      'cgroup_inet_ingress flowtap_ingress',
      'cgroup_inet_sock_release flowtap_sock_release',
      'cgroup_sock_ops flowtap_sockops',
    ]);
    // and only the process name at connect/bind is left out, said once
    const leftOut = ft.logs().filter((l) => l.msg === 'kernel part left out');
    expect(leftOut).toHaveLength(1);
    expect(leftOut[0].missing).toMatch(/^bpf_get_current_comm .*\(it needs CAP_PERFMON\)$/);
    const [conn] = await connectFrom(cg, '127.0.0.1', port, 1);
    expect(conn.ok).toBe(true);
    const line = await waitFor('the flow on stdout', () =>
      ft
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { eventName: string; attributes: Record<string, unknown> })
        .find((r) => r.eventName === 'flowtap.flow.begin' && r.attributes['source.port'] === conn.localPort),
    );
    expect(line.attributes['destination.port']).toBe(port);
    expect((await ft.stop()).code).toBe(0);
  });

  it.each(NEEDED)('without %s: exit 1 with one line naming it', async (missing) => {
    const r = await runFlowtap(['--cgroup', cg.path, '--exporter', 'none'], {}, onlyCapabilities(NEEDED.filter((c) => c !== missing)));
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^flowtap: .*: missing ${missing.toUpperCase()} \\(flowtap needs CAP_BPF and CAP_NET_ADMIN, or root\\)$`));
  });

  it('without any capability: exit 1 naming both', async () => {
    const r = await runFlowtap(['--cgroup', cg.path, '--exporter', 'none'], {}, onlyCapabilities([]));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('missing CAP_BPF, CAP_NET_ADMIN');
  });
});
