/**
 * Real kernel programs + native addon + real sockets: the cgroup_skb programs
 * are loaded and attached to a throwaway cgroup, a client or server process is
 * put into it, real TCP connections are made (loopback, and veth between test
 * network namespaces), and the exact set of decoded events is asserted.
 */
import { createServer, Server, AddressInfo } from 'node:net';
import { ChildProcess, execFileSync } from 'node:child_process';
import { spawn } from '../helpers/processes';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { TestCgroup, collect } from '../helpers/cgroup';
import { TestNet } from '../helpers/netns';
import { loadBinding } from '../../src/kernel/probe';
import type { FlowEvent } from '../../src/kernel/decode';
import { FlowEventRecorder } from '../helpers/event-recorder';

const NODE = process.execPath;
const CLIENT = join(__dirname, '..', 'fixtures', 'tcp-client.js');
const SERVER = join(__dirname, '..', 'fixtures', 'tcp-server.js');

interface ClientResult {
  ok: boolean;
  error?: string;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

class Recorder extends FlowEventRecorder {
  begins(): FlowEvent[] {
    return this.events.filter((e) => e.type === 'begin');
  }
  ends(): FlowEvent[] {
    return this.events.filter((e) => e.type === 'end');
  }
  /** Waits until pred holds, then a quiet period so that extra events would show. */
  async settle(pred: () => boolean, timeoutMs = 5000, quietMs = 300): Promise<void> {
    const t0 = Date.now();
    while (!pred()) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out; events: ${JSON.stringify(this.events, replacer)}`);
      await sleep(20);
    }
    await sleep(quietMs);
  }
}

function replacer(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function listen(host: string): Promise<Server> {
  return new Promise((resolve) => {
    const srv = createServer((s) => {
      s.once('data', (d) => s.end(d));
      s.on('error', () => undefined);
    });
    srv.listen({ host, port: 0, ipv6Only: false }, () => resolve(srv));
  });
}

function parseLines<T>(out: string): T[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

async function runClient(cg: TestCgroup, host: string, port: number, count: number, prefix: string[] = [], timeoutMs = 3000): Promise<ClientResult[]> {
  const argv = [...prefix, NODE, CLIENT, host, String(port), String(count), String(timeoutMs)];
  return parseLines<ClientResult>(await collect(cg.spawn(argv[0], argv.slice(1))));
}

describe('real kernel programs on a throwaway cgroup (native addon, real sockets)', () => {
  let cg: TestCgroup;
  let rec: Recorder;
  let servers: Server[] = [];

  beforeEach(() => {
    cg = new TestCgroup('kernel');
    rec = new Recorder(cg.path);
  });
  afterEach(async () => {
    await rec.probe.close();
    for (const s of servers) s.close();
    servers = [];
    await cg.destroy();
  });

  it.each([
    ['IPv4 loopback', '127.0.0.1', '127.0.0.1', 4],
    ['IPv6 loopback', '::1', '::1', 6],
    ['IPv4 to a dual-stack :: listener', '::', '127.0.0.1', 4],
  ])('%s: a client in the cgroup gives one outgoing begin per connection', async (_name, listenHost, connectHost, family) => {
    const srv = await listen(listenHost);
    servers.push(srv);
    const port = (srv.address() as AddressInfo).port;
    const results = await runClient(cg, connectHost, port, 3);
    expect(results.every((r) => r.ok)).toBe(true);
    await rec.settle(() => rec.begins().length >= 3 && rec.ends().length >= 3);

    const expected = results.map((r) => ({
      type: 'begin',
      family,
      direction: 'outgoing',
      srcAddr: connectHost,
      srcPort: r.localPort,
      dstAddr: connectHost,
      dstPort: port,
    }));
    const seen = rec.begins().map((e) => ({
      type: e.type,
      family: e.family,
      direction: e.direction,
      srcAddr: e.srcAddr,
      srcPort: e.srcPort,
      dstAddr: e.dstAddr,
      dstPort: e.dstPort,
    }));
    expect(seen).toEqual(expected);
    // the socket's cgroup is the monitored one
    for (const e of rec.begins()) expect(e.cgroupId).toBe(cg.id);
    // the server closes first (it echoes and ends): one end per flow, closed by the responder
    expect(rec.ends().map((e) => [e.srcPort, e.dstPort, e.closeReason, e.closedBy])).toEqual(results.map((r) => [r.localPort, port, 'fin', 'destination']));
    expect(rec.decodeErrors).toBe(0);
    const c = rec.probe.counters();
    expect(c.flow_begin).toBe(3);
    expect(c.ringbuf_full_flow).toBe(0);
  });

  it('a server in the cgroup gives one incoming begin per accepted connection, source = the remote client', async () => {
    const server = cg.spawn(NODE, [SERVER, '127.0.0.1']);
    const port = await new Promise<number>((resolve) => server.stdout!.once('data', (d) => resolve(JSON.parse(String(d)).listening)));
    const ports: number[] = [];
    for (let i = 0; i < 2; i++) {
      ports.push(
        await new Promise<number>((resolve, reject) => {
          const s = require('node:net').connect({ host: '127.0.0.1', port }, () => {
            const lp = s.localPort as number;
            s.write('x');
            s.resume();
            s.on('end', () => {
              s.end();
              resolve(lp);
            });
          });
          s.on('error', reject);
        }),
      );
    }
    await rec.settle(() => rec.begins().length >= 2);
    expect(rec.begins().map((e) => [e.direction, e.srcAddr, e.srcPort, e.dstAddr, e.dstPort])).toEqual(
      ports.map((p) => ['incoming', '127.0.0.1', p, '127.0.0.1', port]),
    );
    server.kill();
  });

  it('client and server both in the cgroup give two records for one flow, opposite directions', async () => {
    const server = cg.spawn(NODE, [SERVER, '::1']);
    const port = await new Promise<number>((resolve) => server.stdout!.once('data', (d) => resolve(JSON.parse(String(d)).listening)));
    const [r] = await runClient(cg, '::1', port, 1);
    expect(r.ok).toBe(true);
    await rec.settle(() => rec.begins().length >= 2);
    const got = rec
      .begins()
      .map((e) => [e.direction, e.srcAddr, e.srcPort, e.dstAddr, e.dstPort])
      .sort();
    expect(got).toEqual([
      ['incoming', '::1', r.localPort, '::1', port],
      ['outgoing', '::1', r.localPort, '::1', port],
    ]);
    server.kill();
  });

  it('a client that aborts with RST ends its flow: close_reason rst, closed_by source', async () => {
    const srv = await listen('127.0.0.1');
    servers.push(srv);
    const port = (srv.address() as AddressInfo).port;
    const out = await collect(cg.spawn(NODE, [CLIENT, '127.0.0.1', String(port), '2'], { env: { ...process.env, RESET: '1' } }));
    const results = parseLines<ClientResult>(out);
    await rec.settle(() => rec.ends().length >= 2);
    expect(rec.begins()).toHaveLength(2);
    expect(rec.ends().map((e) => [e.srcPort, e.dstPort, e.direction, e.closeReason, e.closedBy])).toEqual(
      results.map((r) => [r.localPort, port, 'outgoing', 'rst', 'source']),
    );
    for (const e of rec.ends()) expect(e.beginTsNs! > 0n && e.beginTsNs! <= e.tsNs).toBe(true);
  });

  it('a refused connection (RST, no SYN-ACK) gives no begin and no end: one refused attempt', async () => {
    const srv = await listen('127.0.0.1');
    const port = (srv.address() as AddressInfo).port;
    await new Promise((r) => srv.close(r)); // the port is now closed
    const [r] = await runClient(cg, '127.0.0.1', port, 1);
    expect(r.error).toBe('ECONNREFUSED');
    await sleep(300);
    expect(rec.events.map((e) => [e.type, e.attemptReason, e.direction, e.dstAddr, e.dstPort])).toEqual([
      ['attempt', 'refused', 'outgoing', '127.0.0.1', port],
    ]);
  });

  it('a port that never answers (SYN dropped by nftables in a test namespace) gives no event; the same link with a listener does', async () => {
    const net = new TestNet();
    try {
      net.nft(net.b, 'table inet ftdrop {\n chain in {\n type filter hook input priority 0;\n tcp dport 9 drop\n }\n}\n');
      const server = net.spawnIn(net.b, NODE, [SERVER, '0.0.0.0', '8080']);
      await new Promise((resolve) => server.stdout!.once('data', resolve));
      const [dropped] = await runClient(cg, net.b.ipv4, 9, 1, ['ip', 'netns', 'exec', net.a.ns], 1500);
      expect(dropped.error).toBe('timeout');
      const [ok] = await runClient(cg, net.b.ipv4, 8080, 1, ['ip', 'netns', 'exec', net.a.ns]);
      expect(ok.ok).toBe(true);
      await rec.settle(() => rec.begins().length >= 1);
      expect(rec.begins().map((e) => [e.direction, e.srcAddr, e.srcPort, e.dstAddr, e.dstPort])).toEqual([
        ['outgoing', net.a.ipv4, ok.localPort, net.b.ipv4, 8080],
      ]);
      server.kill();
    } finally {
      net.destroy();
    }
  });

  it("the server's FIN arrives while the client's own FIN still waits behind unsent data (FIN_WAIT1): the flow ends once, closed by the destination, and the client's later FIN ends nothing", async () => {
    // Small buffers on both sides: the client fills the server's receive window
    // and its own send buffer, then shuts down writing; its FIN is queued, not sent.
    const serverPy = [
      'import socket, sys',
      'l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)',
      "l.bind(('127.0.0.1', 0)); l.listen(1)",
      'print(l.getsockname()[1], flush=True)',
      'c, _ = l.accept()',
      'sys.stdin.readline(); c.shutdown(socket.SHUT_WR); print("fin", flush=True)',
      'sys.stdin.readline()',
      'while c.recv(65536): pass',
      'c.close(); print("closed", flush=True)',
    ].join('\n');
    const clientPy = [
      'import socket, sys',
      's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)',
      "s.connect(('127.0.0.1', int(sys.argv[1]))); s.setblocking(False)",
      'try:',
      '    while True: s.send(b"x" * 65536)',
      'except BlockingIOError: pass',
      's.shutdown(socket.SHUT_WR); print(s.getsockname()[1], flush=True)',
      's.setblocking(True)',
      'while s.recv(65536): pass',
      'sys.stdin.readline(); s.close()',
    ].join('\n');
    // the next line a fixture prints (it prints one per step, then waits)
    const lines = (child: ChildProcess) => {
      const it = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      return async (): Promise<string> => {
        const next = await it.next();
        if (next.done) throw new Error('the fixture exited before its next line');
        return next.value;
      };
    };
    const server = spawn('python3', ['-c', serverPy], { stdio: ['pipe', 'pipe', 'pipe'] }); // outside the cgroup
    try {
      const serverLine = lines(server);
      const port = Number(await serverLine());
      const client = cg.spawn('python3', ['-c', clientPy, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
      try {
        const clientPort = Number(await lines(client)());
        await rec.settle(() => rec.begins().length >= 1);
        const ss = execFileSync('ss', ['-Htn', 'state', 'fin-wait-1', `sport = :${clientPort}`], { encoding: 'utf8' });
        expect(ss.trim().split('\n').filter(Boolean)).toHaveLength(1); // the client's FIN is queued
        server.stdin!.write('fin\n');
        expect(await serverLine()).toBe('fin');
        await rec.settle(() => rec.ends().length >= 1);
        expect(rec.ends().map((e) => [e.direction, e.srcPort, e.dstPort, e.closeReason, e.closedBy])).toEqual([
          ['outgoing', clientPort, port, 'fin', 'destination'],
        ]);
        // the server drains: the client's queued data and FIN leave (from CLOSING), ending nothing more
        server.stdin!.write('go\n');
        expect(await serverLine()).toBe('closed');
        client.stdin!.write('go\n');
        await new Promise((r) => client.once('exit', r));
        await sleep(300);
        expect(rec.begins()).toHaveLength(1);
        expect(rec.ends()).toHaveLength(1);
        const c = rec.probe.counters();
        expect([c.flow_begin, c.flow_end, c.flow_table_insert, c.flow_table_delete, c.flow_table_evictions]).toEqual([1, 1, 1, 1, 0]);
      } finally {
        client.kill('SIGKILL');
      }
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('a flow established before attach gives no begin and no end', async () => {
    await rec.probe.close();
    const srv = await listen('127.0.0.1');
    servers.push(srv);
    const port = (srv.address() as AddressInfo).port;
    const client = cg.spawn(NODE, [CLIENT, '127.0.0.1', String(port), '1'], { env: { ...process.env, HOLD: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    const done = collect(client);
    await new Promise((resolve) => client.stdout!.once('data', resolve)); // connected
    rec = new Recorder(cg.path); // attach now
    client.stdin!.write('go\n');
    const [r] = parseLines<ClientResult>(await done).filter((x) => 'ok' in x);
    expect(r.ok).toBe(true);
    await sleep(400);
    expect(rec.events).toEqual([]);
  });
});

describe('native addon: options are checked before anything is loaded', () => {
  const binding = loadBinding(join(__dirname, '..', '..'));
  it.each([0, 1001, 2.5, '50'])('pollIntervalMillis %j → TypeError', (pollIntervalMillis) => {
    expect(() => new binding.Probe({ cgroupPath: '/nonexistent', pollIntervalMillis: pollIntervalMillis as number, onBatch: () => undefined })).toThrow(
      /options\.pollIntervalMillis must be an integer from 1 to 1000/,
    );
  });

  it.each([
    [{ direction: 'up' }, /options\.filters\.direction must be "incoming", "outgoing" or "both", got "up"/],
    [{ excludePorts: [22, [9000, 8000]] }, /options\.filters\.excludePorts\[1\] must be a port/],
    [{ includePorts: '22' }, /options\.filters\.includePorts must be an array/],
    [{ includeCidrs: ['10.0.0.1/8'] }, /options\.filters\.includeCidrs\[0\] must be an IPv4 or IPv6 prefix .* got "10\.0\.0\.1\/8"/],
    [{ excludeCidrs: ['fd00::/129'] }, /options\.filters\.excludeCidrs\[0\]/],
    [[], /options\.filters must be an object/],
  ])('%j → TypeError', (filters, re) => {
    let error: Error | undefined;
    try {
      new binding.Probe({ cgroupPath: '/nonexistent', filters: filters as never, onBatch: () => undefined });
    } catch (e) {
      error = e as Error;
    }
    // the addon's TypeError comes from Node's realm, not jest's: compare by name
    expect(error?.name).toBe('TypeError');
    expect(error?.message).toMatch(re);
  });
});
