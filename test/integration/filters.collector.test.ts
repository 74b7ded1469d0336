/**
 * Flow filters end to end: the real CLI with filter flags (or their FLOWTAP_*
 * variables), the real kernel programs on a throwaway cgroup, real sockets,
 * and the real collector. Filtered flows must be absent — no begin and no end
 * — and counted (`filtered` in the stopped line); the others present; DNS
 * answers never filtered.
 */
import { spawn } from '../helpers/processes';
import { createServer, Server, Socket } from 'node:net';
import { join } from 'node:path';
import { TestCgroup, collect } from '../helpers/cgroup';
import { startCollector, RunningCollector, CollectedLogRecord } from '../helpers/collector';
import { finalLines, startFlowtap, killAllFlowtaps } from '../helpers/flowtap';
import { TestLan, LanHost } from '../helpers/netns';
import { startDnsmasq, Dnsmasq } from '../helpers/dnsmasq';

const BURST = join(__dirname, '..', 'fixtures', 'tcp-burst.js');
const SERVER = join(__dirname, '..', 'fixtures', 'tcp-server.js');
const RESOLVE = join(__dirname, '..', 'fixtures', 'resolve-connect.js');
const RUN_ATTR = 'flowtap.test.run';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Target {
  host: string;
  port: number;
}

/** One echo server (first byte echoed, then closed), listening on every address, v4 and v6. */
function listen(port: number): Promise<Server> {
  const sockets = new Set<Socket>();
  return new Promise((resolve, reject) => {
    const srv = createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.once('data', (d) => s.end(d));
      s.on('error', () => undefined);
    });
    srv.once('error', reject);
    srv.on('close', () => sockets.forEach((s) => s.destroy()));
    srv.listen({ host: '::', port, ipv6Only: false }, () => resolve(srv));
  });
}

describe('filters (real CLI flags, real kernel programs, real sockets, real collector)', () => {
  let collector: RunningCollector;
  let servers: Server[] = [];
  let ports: number[] = [];
  let run = 0;

  beforeAll(async () => {
    collector = await startCollector();
    // three servers on consecutive free ports, on loopback (every 127/8 address and ::1)
    for (let attempt = 0; attempt < 20 && servers.length < 3; attempt++) {
      const base = 20_000 + Math.floor(Math.random() * 40_000);
      try {
        servers = [await listen(base), await listen(base + 1), await listen(base + 2)];
        ports = [base, base + 1, base + 2];
      } catch {
        for (const s of servers) s.close();
        servers = [];
      }
    }
    expect(servers).toHaveLength(3);
  });

  afterAll(async () => {
    killAllFlowtaps();
    for (const s of servers) s.close();
    await collector?.close();
  });

  afterEach(() => killAllFlowtaps());

  /**
   * Starts flowtap with `args`/`env` on a new cgroup, connects from inside it
   * to each target once (client in the cgroup), plus `extra` traffic; stops
   * flowtap and returns the run's records and its probe counters.
   */
  async function filtered(
    args: string[],
    targets: Target[],
    env: Record<string, string> = {},
    extra?: (cg: TestCgroup) => Promise<void>,
  ): Promise<{ records: CollectedLogRecord[]; probe: Record<string, number> }> {
    const id = `run${++run}`;
    const cg = new TestCgroup('filter');
    try {
      const ft = await startFlowtap(['--cgroup', cg.path, '--endpoint', collector.endpoint, '--log-level', 'debug', ...args], {
        OTEL_BLRP_SCHEDULE_DELAY: '100',
        OTEL_RESOURCE_ATTRIBUTES: `${RUN_ATTR}=${id}`,
        ...env,
      });
      for (const t of targets) {
        const r = JSON.parse(await collect(cg.spawn(process.execPath, [BURST, JSON.stringify({ host: t.host, port: t.port })]))) as { ok: number };
        expect(r.ok).toBe(1);
      }
      await extra?.(cg);
      await sleep(500);
      const stopped = await ft.stop();
      expect(stopped.code).toBe(0);
      await sleep(300);
      const line = finalLines(ft).counters as { probe: Record<string, number> };
      return { records: collector.readLogRecords().filter((r) => r.resource[RUN_ATTR] === id), probe: line.probe };
    } finally {
      await cg.destroy();
    }
  }

  /** "event address:port" of each record, sorted. */
  const seen = (records: CollectedLogRecord[]) =>
    records
      .map((r) => `${r.eventName === 'flowtap.flow.begin' ? 'begin' : 'end'} ${r.attributes['destination.address']}:${r.attributes['destination.port']}`)
      .sort();
  const both = (t: Target) => [`begin ${t.host}:${t.port}`, `end ${t.host}:${t.port}`];

  it('--exclude-ports: flows to a listed responder port are left out (no begin, no end) and counted', async () => {
    const [p0, p1, p2] = ports;
    const targets = [p0, p1, p2, p1].map((port) => ({ host: '127.0.0.1', port }));
    const { records, probe } = await filtered(['--exclude-ports', `${p1},${p2 + 100}-${p2 + 200}`], targets);
    expect(seen(records)).toEqual([...both(targets[0]), ...both(targets[2])].sort());
    expect(probe.filtered).toBe(2);
    expect(probe.flow_begin).toBe(2);
    expect(probe.flow_end).toBe(2);
  });

  it('--include-ports with --exclude-ports (FLOWTAP_* variables): only included ports, exclude wins', async () => {
    const [p0, p1, p2] = ports;
    const targets = [p0, p1, p2].map((port) => ({ host: '::1', port }));
    const { records, probe } = await filtered([], targets, { FLOWTAP_INCLUDE_PORTS: `${p0}-${p1}`, FLOWTAP_EXCLUDE_PORTS: String(p1) });
    expect(seen(records)).toEqual(both(targets[0]));
    expect(probe.filtered).toBe(2);
  });

  it('--exclude-cidrs: flows to peers in IPv4 and IPv6 prefixes are left out; others reported', async () => {
    const port = ports[0];
    const targets = ['127.0.0.2', '127.0.0.3', '127.0.1.9', '::1'].map((host) => ({ host, port }));
    const { records, probe } = await filtered(['--exclude-cidrs', '127.0.0.2,127.0.1.0/24,::1/128'], targets);
    expect(seen(records)).toEqual(both(targets[1]));
    expect(probe.filtered).toBe(3);
  });

  it('--include-cidrs: only peers in the prefixes (other families too are left out); --exclude-cidrs still wins inside them', async () => {
    const port = ports[0];
    const targets = ['127.0.0.2', '127.0.0.3', '127.0.5.1', '::1'].map((host) => ({ host, port }));
    const { records, probe } = await filtered(['--include-cidrs', '127.0.0.0/24', '--exclude-cidrs', '127.0.0.3'], targets);
    expect(seen(records)).toEqual(both(targets[0]));
    expect(probe.filtered).toBe(3);
    // an exclude prefix wider than the include one: exclude wins everywhere under it
    const wide = await filtered(['--include-cidrs', '127.0.0.2', '--exclude-cidrs', '127.0.0.0/8'], targets.slice(0, 1));
    expect(seen(wide.records)).toEqual([]);
    expect(wide.probe.filtered).toBe(1);
  });

  it('--direction outgoing / incoming: with both ends in the cgroup, only that side is reported', async () => {
    // a server inside the cgroup, so each flow is seen twice: incoming (server) and outgoing (client)
    for (const direction of ['outgoing', 'incoming'] as const) {
      let server: ReturnType<TestCgroup['spawn']> | undefined;
      let port = 0;
      const { records, probe } = await filtered(['--direction', direction], [], {}, async (cg) => {
        server = cg.spawn(process.execPath, [SERVER, '127.0.0.1']);
        port = await new Promise<number>((resolve) => server!.stdout!.once('data', (d) => resolve(JSON.parse(String(d)).listening)));
        for (let i = 0; i < 3; i++) await collect(cg.spawn(process.execPath, [BURST, JSON.stringify({ host: '127.0.0.1', port })]));
      });
      expect(records).toHaveLength(6);
      for (const r of records) {
        expect(r.attributes['flowtap.flow.direction']).toBe(direction);
        expect(r.attributes['destination.port']).toBe(port);
      }
      expect(probe.filtered).toBe(3);
    }
  });

  it('incoming flows: ports match the local (responder) port, CIDRs the remote initiator', async () => {
    let port = 0;
    // the initiator's own port is listed too: ports never match the initiator's side
    const clientPort = 10_000 + Math.floor(Math.random() * 10_000);
    const { records, probe } = await filtered(['--exclude-cidrs', '127.0.0.2', '--exclude-ports', String(clientPort)], [], {}, async (cg) => {
      const server = cg.spawn(process.execPath, [SERVER, '0.0.0.0']);
      port = await new Promise<number>((resolve) => server.stdout!.once('data', (d) => resolve(JSON.parse(String(d)).listening)));
      // clients outside the cgroup, from two source addresses, from clientPort
      for (const localAddress of ['127.0.0.2', '127.0.0.3']) {
        const out = await collect(
          spawn(process.execPath, [BURST, JSON.stringify({ host: '127.0.0.1', port, localAddress, localPort: clientPort })], {
            stdio: ['ignore', 'pipe', 'pipe'],
          }),
        );
        expect(JSON.parse(out)).toMatchObject({ ok: 1 });
      }
    });
    expect(
      records
        .map((r) => [
          r.eventName,
          r.attributes['flowtap.flow.direction'],
          r.attributes['source.address'],
          r.attributes['source.port'],
          r.attributes['destination.port'],
        ])
        .sort(),
    ).toEqual([
      ['flowtap.flow.begin', 'incoming', '127.0.0.3', clientPort, port],
      ['flowtap.flow.end', 'incoming', '127.0.0.3', clientPort, port],
    ]);
    expect(probe.filtered).toBe(1);
  });

  describe('DNS answers are never filtered', () => {
    let lan: TestLan;
    let dns: Dnsmasq;
    let A: LanHost;
    let B: LanHost;
    let C: LanHost;
    let server: ReturnType<TestLan['spawnIn']>;

    beforeAll(async () => {
      lan = new TestLan(3);
      [A, B, C] = lan.hosts;
      dns = await startDnsmasq(C.prefix, [C.ipv4], [`host-record=svc.flowtap.test,${B.ipv4}`, 'cname=www.flowtap.test,svc.flowtap.test']);
      server = lan.spawnIn(B, process.execPath, [SERVER, '0.0.0.0', '8080']);
      await new Promise((resolve) => server.stdout!.once('data', resolve));
    });
    afterAll(async () => {
      server?.kill('SIGKILL');
      await dns?.stop();
      lan?.destroy();
    });

    it('filters that exclude the DNS server (its address and port 53) still learn names from its answers', async () => {
      // the flow to the DNS server is left out, and the answers still name the flow that is reported
      let localPort = 0;
      const { records, probe } = await filtered(['--exclude-cidrs', `${C.ipv4}/32`, '--exclude-ports', '53'], [], {}, async (cg) => {
        const r = JSON.parse(await collect(cg.spawn('ip', ['netns', 'exec', A.ns, process.execPath, RESOLVE, C.ipv4, 'www.flowtap.test', '4', '8080'])));
        expect(r).toMatchObject({ ok: true, address: B.ipv4 });
        localPort = r.localPort;
        // DNS over TCP to the excluded server: the TCP flow is filtered, its answer is not
        const dig = await collect(cg.spawn('ip', ['netns', 'exec', A.ns, 'dig', '+tcp', '+short', `@${C.ipv4}`, 'svc.flowtap.test', 'A']));
        expect(dig.trim()).toBe(B.ipv4);
      });
      const begins = records.filter((r) => r.eventName === 'flowtap.flow.begin');
      expect(begins).toHaveLength(1);
      expect(begins[0].attributes['source.port']).toBe(localPort);
      expect(begins[0].attributes['flowtap.flow.destination.domains']).toEqual(['www.flowtap.test', 'svc.flowtap.test']);
      expect(probe.filtered).toBe(1); // the DNS-over-TCP flow
      expect(probe.dns).toBeGreaterThanOrEqual(2); // the UDP answer and the TCP one
    });
  });
});
