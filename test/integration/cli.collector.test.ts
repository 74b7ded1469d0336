/**
 * The real CLI (dist/cli.js) with the real kernel programs on a throwaway
 * cgroup, real sockets, and the real OpenTelemetry Collector: records are read
 * back from what the collector's file exporter wrote.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { findCgroup2Mount } from '../../src/config/cgroup';
import { CollectedLogRecord } from '../helpers/collector';
import { ATTRIBUTES_OF, EVENT_KINDS, EVENTS, type AttributeType } from '../../src/record/schema';
import { startFlowtap, runFlowtap } from '../helpers/flowtap';
import { freePort } from '../helpers/ports';
import { connectFrom, listen, useCliFixture } from '../helpers/traffic';

const FAST_EXPORT = { OTEL_BLRP_SCHEDULE_DELAY: '100' };

function hasType(type: AttributeType, v: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'int':
      return Number.isInteger(v);
    case 'double':
      return typeof v === 'number';
    case 'string[]':
      return Array.isArray(v) && v.every((x) => typeof x === 'string');
  }
}

/** How a record read back differs from what the schema declares for its event: keys it lacks, promises broken, types. */
function schemaProblems(r: { eventName: string; attributes: Record<string, unknown> }): string[] {
  const kind = EVENT_KINDS.find((k) => EVENTS[k].name === r.eventName);
  if (kind === undefined) return [`event ${r.eventName} is not in the schema`];
  const entries = ATTRIBUTES_OF[kind];
  const problems: string[] = [];
  for (const [key, value] of Object.entries(r.attributes)) {
    const a = entries.find((e) => e.key === key);
    if (a === undefined) problems.push(`${r.eventName} carries ${key}, which the schema lacks for it`);
    else if (!hasType(a.type, value)) problems.push(`${r.eventName} ${key}=${JSON.stringify(value)} is not ${a.type}`);
  }
  for (const a of entries) if (a.presence === 'always' && !(a.key in r.attributes)) problems.push(`${r.eventName} lacks ${a.key}, which the schema promises`);
  return problems;
}

/** A directory of the cgroup v2 tree as a path in the hierarchy, as /proc/<pid>/cgroup writes it. */
function cgroupPath(dir: string): string {
  const mount = findCgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'))!;
  return dir.slice(mount.length) || '/';
}

const TCP_BYTES = join(__dirname, '..', 'fixtures', 'tcp-bytes.py');

/**
 * A client that connects to argv[1]:argv[2], says who it is, waits for a line
 * on stdin, sends 1000 bytes, reads 3000, closes first (a FIN), says so and
 * waits for stdin to end: it runs until the test has seen both records.
 */
const CLIENT = `
import json, os, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
print(json.dumps({"pid": os.getpid(), "localPort": s.getsockname()[1], "exe": os.readlink("/proc/self/exe"), "argv": sys.orig_argv}), flush=True)
sys.stdin.readline()
s.sendall(b"x" * 1000)
got = 0
while got < 3000:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += len(chunk)
s.close()
print(json.dumps({"done": True, "got": got}), flush=True)
sys.stdin.read()
`;

/** The JSON lines a tcp-bytes.py process prints, one at a time. */
function linesOf(child: ChildProcess): () => Promise<Record<string, any>> {
  const it = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return async () => {
    const r = await it.next();
    if (r.done) throw new Error('tcp-bytes.py ended before its next line');
    return JSON.parse(r.value as string) as Record<string, any>;
  };
}

describe('flowtap CLI → real OpenTelemetry Collector (real kernel programs, real sockets)', () => {
  const fx = useCliFixture('cli');
  const { servers } = fx;

  it('one flowtap.flow.begin record per connection, with every contract attribute, and exit 0 within 5 s of SIGTERM', async () => {
    const { server: v4, port: p4 } = await listen('127.0.0.1');
    const { server: v6, port: p6 } = await listen('::1');
    servers.push(v4, v6);
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', fx.collector.endpoint], {
      ...FAST_EXPORT,
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,k8s.pod.name=demo',
    });
    const c4 = await connectFrom(fx.cg, '127.0.0.1', p4, 3);
    const c6 = await connectFrom(fx.cg, '::1', p6, 2);
    expect([...c4, ...c6].every((r) => r.ok)).toBe(true);

    const isOurs = (r: CollectedLogRecord) => r.attributes['destination.port'] === p4 || r.attributes['destination.port'] === p6;
    await fx.collector.waitForLogRecords((r) => isOurs(r) && r.eventName === 'flowtap.flow.end', 15000, 5);
    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    expect(stopped.millis).toBeLessThan(5000);

    const begins = fx.collector.readLogRecords().filter((r) => isOurs(r) && r.eventName === 'flowtap.flow.begin');
    expect(begins).toHaveLength(5);
    const expected = [
      ...c4.map((c) => ({ addr: '127.0.0.1', port: c.localPort, dport: p4, type: 'ipv4' })),
      ...c6.map((c) => ({ addr: '::1', port: c.localPort, dport: p6, type: 'ipv6' })),
    ];
    for (const e of expected) {
      const rec = begins.filter((r) => r.attributes['source.port'] === e.port);
      expect(rec).toHaveLength(1);
      const r = rec[0];
      expect(r.severityNumber).toBe(9);
      expect(r.severityText).toBeFalsy();
      expect(r.body).toBe(`outgoing tcp ${e.type === 'ipv6' ? `[${e.addr}]` : e.addr}:${e.port} -> ${e.type === 'ipv6' ? `[${e.addr}]` : e.addr}:${e.dport}`);
      // /proc's part: the client may have exited before its begin was read (then only the kernel's fields); when there, right.
      const {
        'process.executable.path': exe,
        'process.command_args': args,
        'process.parent_pid': ppid,
        'process.executable.name': name,
        ...attributes
      } = r.attributes;
      if (exe !== undefined)
        expect([exe, name, args, ppid]).toEqual([process.execPath, basename(process.execPath), expect.arrayContaining([process.execPath]), process.pid]);
      else expect(name).toBe(readFileSync('/proc/self/comm', 'utf8').trim()); // the connecting thread's name, as node names its main thread
      expect(attributes).toEqual({
        'flowtap.flow.direction': 'outgoing',
        'source.address': e.addr,
        'source.port': e.port,
        'destination.address': e.addr,
        'destination.port': e.dport,
        'flowtap.flow.source.domains': [],
        'flowtap.flow.destination.domains': [],
        'client.address': e.addr,
        'client.port': e.port,
        'server.address': e.addr,
        'server.port': e.dport,
        'network.transport': 'tcp',
        'network.type': e.type,
        'network.local.address': e.addr,
        'network.local.port': e.port,
        'network.peer.address': e.addr,
        'network.peer.port': e.dport,
        // The client (a node process in the cgroup): what it is is the next test's subject.
        'flowtap.flow.id': expect.stringMatching(/^[0-9a-f]{16}$/),
        'process.pid': expect.any(Number),
        'process.user.id': process.getuid!(),
        'flowtap.process.cgroup.path': cgroupPath(fx.cg.path),
        'flowtap.flow.handshake.duration': expect.any(Number),
        'flowtap.flow.handshake.syn_count': 1,
      });
      // the SYN-ACK passed the hook before user space read it, both within this test
      expect(r.timeUnixNano).toBeLessThanOrEqual(r.observedTimeUnixNano);
      expect(Number(r.timeUnixNano / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
      expect(r.resource['service.name']).toBe('flowtap');
      expect(r.resource['host.name']).toBe(hostname());
      expect(r.resource['deployment.environment.name']).toBe('test');
      expect(r.resource['k8s.pod.name']).toBe('demo');
    }
    const ends = fx.collector.readLogRecords().filter((r) => isOurs(r) && r.eventName === 'flowtap.flow.end');
    expect(ends).toHaveLength(5);
    for (const r of ends) {
      expect(r.attributes['flowtap.flow.close_reason']).toBe('fin');
      expect(r.attributes['flowtap.flow.closed_by']).toBe('destination');
      expect(typeof r.attributes['flowtap.flow.duration']).toBe('number');
    }
    // What the real collector got is what the schema declares for each event, no more, no less.
    expect([...begins, ...ends].flatMap(schemaProblems)).toEqual([]);
    expect(schemaProblems({ eventName: 'flowtap.flow.begin', attributes: { ...begins[0].attributes, 'flowtap.flow.duration': 1 } })).toEqual([
      'flowtap.flow.begin carries flowtap.flow.duration, which the schema lacks for it',
    ]);
  });

  it.each([
    ['IPv4', '127.0.0.1'],
    ['IPv6', '::1'],
  ])('%s: the records say which process connected, the bytes each way of a FIN-closed flow, and one flow id on begin and end', async (_name, host) => {
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', fx.collector.endpoint, '--log-level', 'debug'], FAST_EXPORT);
    const server = spawn('python3', [TCP_BYTES, 'server', host, '0', '3000', '1000', 'wait'], { stdio: ['ignore', 'pipe', 'inherit'] }); // outside the cgroup
    try {
      const { port } = await linesOf(server)();
      const client = fx.cg.spawn('python3', ['-c', CLIENT, host, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
      const next = linesOf(client);
      const c = await next();
      const ours = (r: CollectedLogRecord) => r.attributes['source.port'] === c.localPort && r.attributes['destination.port'] === port;
      await fx.collector.waitForLogRecords((r) => ours(r) && r.eventName === 'flowtap.flow.begin', 15000, 1);
      client.stdin!.write('go\n');
      expect(await next()).toEqual({ done: true, got: 3000 });
      await fx.collector.waitForLogRecords((r) => ours(r) && r.eventName === 'flowtap.flow.end', 15000, 1);
      client.stdin!.end();
      expect((await ft.stop()).code).toBe(0);
      const records = fx.collector.readLogRecords().filter(ours);
      const begin = records.filter((r) => r.eventName === 'flowtap.flow.begin');
      const end = records.filter((r) => r.eventName === 'flowtap.flow.end');
      expect([begin.length, end.length]).toEqual([1, 1]);
      for (const r of [begin[0], end[0]]) {
        expect(r.attributes).toMatchObject({
          'process.pid': c.pid,
          'process.executable.name': basename(c.exe),
          'process.executable.path': c.exe,
          'process.command_args': c.argv,
          'process.user.id': process.getuid!(),
          'process.parent_pid': process.pid,
          'flowtap.process.cgroup.path': cgroupPath(fx.cg.path),
          'flowtap.flow.handshake.syn_count': 1,
        });
        expect(r.attributes['flowtap.flow.handshake.duration']).toBeGreaterThan(0);
        expect(r.attributes['flowtap.flow.handshake.duration']).toBeLessThan(0.1);
      }
      expect(begin[0].attributes['flowtap.flow.id']).toMatch(/^[0-9a-f]{16}$/);
      expect(end[0].attributes['flowtap.flow.id']).toBe(begin[0].attributes['flowtap.flow.id']);
      // Sent and received by the watched socket, the client: it sent 1000 and read 3000, then closed first.
      expect(end[0].attributes).toMatchObject({
        'flowtap.flow.close_reason': 'fin',
        'flowtap.flow.closed_by': 'source',
        'flowtap.flow.bytes_sent': 1000,
        'flowtap.flow.bytes_received': 3000,
        'flowtap.flow.retransmitted_segments': 0,
      });
      expect(end[0].attributes['flowtap.flow.segments_sent']).toBeGreaterThanOrEqual(4);
      expect(end[0].attributes['flowtap.flow.segments_received']).toBeGreaterThanOrEqual(2);
      const srtt = end[0].attributes['flowtap.flow.rtt.smoothed'] as number;
      const minRtt = end[0].attributes['flowtap.flow.rtt.min'] as number;
      expect(srtt).toBeGreaterThan(0);
      expect(srtt).toBeLessThan(1);
      expect(minRtt).toBeGreaterThan(0);
      expect(minRtt).toBeLessThanOrEqual(srtt + 1e-6);
      expect(begin[0].attributes).not.toHaveProperty('flowtap.flow.bytes_sent');
      expect(records.flatMap(schemaProblems)).toEqual([]);
      // The process cache's counters are in the debug counters line: the client looked up once, then answered from the cache.
      const counters = ft
        .logs()
        .filter((l) => l.msg === 'counters')
        .pop();
      expect(counters?.processes).toMatchObject({ reused: 0, evictions: 0 });
      const { hits, misses, entries } = counters!.processes as { hits: number; misses: number; entries: number };
      expect(misses).toBeGreaterThanOrEqual(1);
      expect(hits).toBeGreaterThanOrEqual(1);
      expect(entries).toBeGreaterThanOrEqual(1);
    } finally {
      server.kill('SIGKILL');
    }
  });

  it('--exporter console prints exactly one JSON line per flow start, with the contract keys', async () => {
    const { server: srv, port } = await listen('127.0.0.1');
    servers.push(srv);
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--exporter', 'console'], FAST_EXPORT);
    const conns = await connectFrom(fx.cg, '127.0.0.1', port, 4);
    const lines = () =>
      ft
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, any>);
    const t0 = Date.now();
    while (lines().filter((l) => l.eventName === 'flowtap.flow.end').length < 4 && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 50));
    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    const begins = lines().filter((l) => l.eventName === 'flowtap.flow.begin');
    expect(begins.map((l) => l.attributes['source.port']).sort()).toEqual(conns.map((c) => c.localPort).sort());
    for (const l of begins) {
      expect(Object.keys(l).sort()).toEqual(['attributes', 'body', 'eventName', 'resource', 'severityNumber', 'timestamp']);
      expect(l.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
      expect(l.severityNumber).toBe(9);
      expect(l.attributes['destination.port']).toBe(port);
      expect(l.resource['service.name']).toBe('flowtap');
    }
    expect(lines().flatMap((l) => schemaProblems({ eventName: l.eventName, attributes: l.attributes }))).toEqual([]);
    expect(ft.logs().some((l) => l.msg === 'ready')).toBe(true);
  });

  it('an unreachable collector is not fatal: flowtap keeps running, warns, and still exits 0 on SIGTERM', async () => {
    const { server: srv, port } = await listen('127.0.0.1');
    servers.push(srv);
    const endpoint = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', endpoint], {
      ...FAST_EXPORT,
      OTEL_EXPORTER_OTLP_TIMEOUT: '500',
    });
    await connectFrom(fx.cg, '127.0.0.1', port, 2);
    const t0 = Date.now();
    while (!ft.logs().some((l) => l.level === 'warn') && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 100));
    expect(ft.child.exitCode).toBeNull();
    // the warning is the export's: records not exported to that endpoint, because nothing answers there
    const warnings = ft.logs().filter((l) => l.level === 'warn');
    expect(warnings.length).toBeGreaterThanOrEqual(1);
    expect(warnings[0]).toMatchObject({ msg: 'records not exported', destination: endpoint, failedRecords: 0, droppedRecords: 0 });
    expect(String(warnings[0].error)).toMatch(/ECONNREFUSED|UNAVAILABLE|No connection established/);
    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
  });
});

describe('flowtap CLI bad input', () => {
  it.each([
    [['--exporter', 'foo'], {}, /--exporter/],
    [['--ring-buffer-bytes', '3'], {}, /--ring-buffer-bytes/],
    [['--no-such-flag'], {}, /no-such-flag/],
    [[], { OTEL_LOGS_EXPORTER: 'kafka' }, /OTEL_LOGS_EXPORTER/],
    [[], { OTEL_BLRP_MAX_QUEUE_SIZE: 'lots' }, /OTEL_BLRP_MAX_QUEUE_SIZE/],
    [['--endpoint', 'not a url'], {}, /--endpoint/],
    [['--exclude-ports', '22,ssh'], {}, /--exclude-ports/],
    [[], { FLOWTAP_INCLUDE_CIDRS: '10.0.0.1/8' }, /FLOWTAP_INCLUDE_CIDRS .*did you mean 10\.0\.0\.0\/8/],
    [['--direction', 'sideways'], {}, /--direction/],
    [['--include-ports', ''], {}, /^flowtap: invalid --include-ports '': .*not an empty list/],
    [
      [],
      { OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent-flowtap/ca.pem' },
      /^flowtap: cannot read OTEL_EXPORTER_OTLP_CERTIFICATE '\/nonexistent-flowtap\/ca\.pem': no such file$/,
    ],
    [
      [],
      { OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY: '/proc/self' },
      /^flowtap: cannot read OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY '\/proc\/self': a directory, not a file$/,
    ],
    [[], { OTEL_EXPORTER_OTLP_HEADERS: 'garbage' }, /^flowtap: invalid OTEL_EXPORTER_OTLP_HEADERS: entry 1 of 1 is not key=value/],
    [[], { OTEL_EXPORTER_OTLP_INSECURE: 'maybe' }, /^flowtap: invalid OTEL_EXPORTER_OTLP_INSECURE 'maybe': expected true or false$/],
  ])('%j %j exits 2 with one line naming it', async (args, env, re) => {
    const r = await runFlowtap(args as string[], env as Record<string, string>);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(re);
  });

  it('a cgroup that cannot be opened is reported under the name it came from', async () => {
    const missing = '/sys/fs/cgroup/does-not-exist-flowtap';
    const fromEnv = await runFlowtap(['--exporter', 'none'], { FLOWTAP_CGROUP: missing });
    expect(fromEnv.code).toBe(2);
    expect(fromEnv.stderr).toBe(`flowtap: FLOWTAP_CGROUP ${missing}: cgroup path ${missing} does not exist\n`);
    const fromFlag = await runFlowtap(['--exporter', 'none', '--cgroup', missing], { FLOWTAP_CGROUP: '/elsewhere' });
    expect(fromFlag.stderr).toBe(`flowtap: --cgroup ${missing}: cgroup path ${missing} does not exist\n`);
  });

  it('credentials in the endpoint and the headers never reach a log line', async () => {
    const deadPort = await freePort(); // nothing listens there
    const ft = await startFlowtap(['--replay', 'synthetic:200', '--endpoint', `http://flowtap:s3cret-pw@127.0.0.1:${deadPort}`, '--log-level', 'debug'], {
      ...FAST_EXPORT,
      OTEL_EXPORTER_OTLP_TIMEOUT: '300',
      OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20s3cret-token',
    });
    const t0 = Date.now();
    while (!ft.logs().some((l) => l.level === 'warn') && Date.now() - t0 < 10000) await new Promise((r) => setTimeout(r, 100));
    const stopped = await ft.stop();
    expect(stopped.code).toBe(0);
    const ready = ft.logs().find((l) => l.msg === 'ready');
    expect(ready?.endpoint).toBe(`http://***@127.0.0.1:${deadPort}`);
    expect(ft.logs().some((l) => l.level === 'warn')).toBe(true); // the failing export was logged...
    expect(ft.stderr()).not.toContain('s3cret'); // ...without the password or the token
  });

  it('a path that is not a cgroup v2 directory is refused clearly (exit 2)', async () => {
    const r = await runFlowtap(['--cgroup', '/tmp', '--exporter', 'none']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a cgroup v2 directory/);
    const missing = await runFlowtap(['--cgroup', '/sys/fs/cgroup/does-not-exist-flowtap', '--exporter', 'none']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/does not exist/);
  });
});
