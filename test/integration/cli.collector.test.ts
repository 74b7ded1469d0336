/**
 * The real CLI (dist/cli.js) with the real kernel programs on a throwaway
 * cgroup, real sockets, and the real OpenTelemetry Collector: records are read
 * back from what the collector's file exporter wrote.
 */
import { hostname } from 'node:os';
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
      expect(r.attributes).toEqual({
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
    [[], { OTEL_EXPORTER_OTLP_CERTIFICATE: '/nonexistent-flowtap/ca.pem' }, /^flowtap: cannot read OTEL_EXPORTER_OTLP_CERTIFICATE '\/nonexistent-flowtap\/ca\.pem': no such file$/],
    [[], { OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY: '/proc/self' }, /^flowtap: cannot read OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY '\/proc\/self': a directory, not a file$/],
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
