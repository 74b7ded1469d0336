import type { DnsEvent, FlowEvent } from '../../src/kernel/decode';
import type { DomainLookup } from '../../src/enrich/dns/lookup';
import { NoDomainLookup } from '../../src/enrich/dns/lookup';
import type { Workload } from '../../src/enrich/container';
import { ProcessCache } from '../../src/enrich/process';
import { Pipeline, type RecordSink } from '../../src/pipeline';
import { mapFlow, type FlowDomains, type FlowRecord } from '../../src/record/record';
import { dnsRecord, flowRecord, v4 } from './record/recordfix';

/** Records what the sink is told, as the reference mapping makes it. */
class Recorder implements RecordSink {
  records: (FlowRecord & { workload?: Workload; observedNs: bigint })[] = [];
  emitFlow(event: FlowEvent, domains: FlowDomains, timestampNs: bigint, workload: Workload | undefined, observedNs: bigint): void {
    this.records.push({ ...mapFlow(event, domains, timestampNs), workload, observedNs });
  }
}

const NOW_MS = 1_714_564_900_000;
const clock = { toWallNs: (boot: bigint): bigint => 1_714_564_800_000_000_000n + boot };

const begin = (tsNs: bigint, dst = [93, 184, 216, 34]): Buffer =>
  flowRecord({ tsNs, saddr: v4(10, 0, 0, 5), daddr: v4(dst[0], dst[1], dst[2], dst[3]), sport: 43512, dport: 443, family: 4, direction: 2 });

/** A /proc tree in memory: pid 4242 started at tick 100 (1 s after boot), running curl. */
const PROC: Record<string, string> = {
  '/proc/4242/stat': '4242 (curl) S 77 4242 77 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 100 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0',
  '/proc/4242/comm': 'curl\n',
  '/proc/4242/status': 'Name:\tcurl\nUid:\t1000\t1000\t1000\t1000\n',
  '/proc/4242/cmdline': 'curl\0http://example.com/\0',
};
const proc = { readFile: (path: string) => PROC[path], readLink: (path: string) => (path === '/proc/4242/exe' ? '/usr/bin/curl' : undefined) };

describe('Pipeline', () => {
  it("hands the sink each flow's workload, by the socket's cgroup id", () => {
    const logger = new Recorder();
    const w: Workload = { containerId: 'c'.repeat(64), podUid: '0a1b2c3d-0000-1111-2222-333344445555' };
    const asked: bigint[] = [];
    const containers = { workloadFor: (id: bigint) => (asked.push(id), id === 7n ? w : undefined) };
    const p = new Pipeline({ sink: logger, clock, domains: new NoDomainLookup(), containers, nowMs: () => NOW_MS, nowNs: () => BigInt(NOW_MS) * 1_000_000n });
    p.onBatch(
      Buffer.concat([
        flowRecord({ tsNs: 1n, saddr: v4(10, 0, 0, 5), daddr: v4(10, 0, 0, 6), sport: 1, dport: 2, family: 4, direction: 2, cgroupId: 7n }),
        begin(5n),
      ]),
      2,
    );
    expect(logger.records.map((r) => r.workload)).toEqual([w, undefined]);
    expect(asked[0]).toBe(7n);
  });

  it('gives the record the process /proc describes, the resolvers that named its addresses and its cgroup path', () => {
    const logger = new Recorder();
    const processes = new ProcessCache({ proc, maxEntries: 8, maxAgeNs: 10_000_000_000n, nowBootNs: () => 5_000_000_000n });
    const domains: DomainLookup = {
      observe: () => undefined,
      namesFor: (ip) => (ip === '93.184.216.34' ? ['example.com'] : []),
      resolversFor: (ip) => (ip === '93.184.216.34' ? ['198.18.0.53'] : ['198.18.9.9']),
    };
    const cgroupPaths = { cgroupPathFor: (id: bigint) => (id === 7n ? '/system.slice/app.service' : undefined) };
    const p = new Pipeline({ sink: logger, clock, domains, processes, cgroupPaths, nowMs: () => NOW_MS, nowNs: () => 0n });
    const withProcess = (pid: number, capturedNs: bigint): Buffer =>
      flowRecord({
        tsNs: 3_000_000_000n,
        saddr: v4(10, 0, 0, 5),
        daddr: v4(93, 184, 216, 34),
        sport: 1,
        dport: 443,
        family: 4,
        direction: 2,
        cgroupId: 7n,
        process: { pid, uid: 1000, comm: 'curl', tsNs: capturedNs },
      });
    p.onBatch(Buffer.concat([withProcess(4242, 2_000_000_000n), withProcess(4242, 500_000_000n), withProcess(999, 2_000_000_000n), begin(1n)]));
    const [found, reused, gone, none] = logger.records.map((r) => r.attributes);
    expect(found).toMatchObject({
      'process.pid': 4242,
      'process.executable.name': 'curl',
      'process.executable.path': '/usr/bin/curl',
      'process.command_args': ['curl', 'http://example.com/'],
      'process.user.id': 1000,
      'process.parent_pid': 77,
      'flowtap.process.cgroup.path': '/system.slice/app.service',
      'flowtap.flow.destination.resolvers': ['198.18.0.53'],
    });
    // The source address has no names: no resolvers for it, whatever the cache holds.
    expect(found).not.toHaveProperty('flowtap.flow.source.resolvers');
    // Captured before pid 4242 started (1 s after boot): another process, so only the kernel's fields.
    expect(reused['process.pid']).toBe(4242);
    expect(reused).not.toHaveProperty('process.executable.path');
    expect(gone).not.toHaveProperty('process.parent_pid');
    expect(gone['process.executable.name']).toBe('curl');
    expect(none).not.toHaveProperty('process.pid');
    expect(none).not.toHaveProperty('flowtap.process.cgroup.path');
    expect(processes.stats).toMatchObject({ misses: 1, reused: 1, gone: 1, entries: 1 });
  });

  it('decodes, maps and emits each flow with its wall-clock ns timestamp', () => {
    const logger = new Recorder();
    const p = new Pipeline({ sink: logger, clock, domains: new NoDomainLookup(), nowMs: () => NOW_MS, nowNs: () => BigInt(NOW_MS) * 1_000_000n });
    p.onBatch(Buffer.concat([begin(123_456_789n), begin(5n)]), 2);
    expect(logger.records).toHaveLength(2);
    expect(logger.records[0]).toEqual({
      eventName: 'flowtap.flow.begin',
      timestampNs: 1_714_564_800_123_456_789n,
      observedNs: BigInt(NOW_MS) * 1_000_000n,
      severityNumber: 9,
      body: 'outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443',
      attributes: expect.objectContaining({ 'server.address': '93.184.216.34', 'flowtap.flow.destination.domains': [] }),
    });
    expect(p.stats).toEqual({ batches: 1, flows: 2, dns: 0, emitted: 2, decodeErrors: 0, processingErrors: 0 });
  });

  it('hands a DNS answer to the lookup before a later flow of the same batch', () => {
    const order: string[] = [];
    const domains: DomainLookup = {
      observe: (ev: DnsEvent, nowMs: number) => {
        order.push(`observe ${ev.data[0]} at ${nowMs}`);
      },
      namesFor: (ip: string) => {
        order.push(`namesFor ${ip}`);
        return ip === '93.184.216.34' ? ['example.com'] : [];
      },
      resolversFor: () => [],
    };
    const logger = new Recorder();
    const p = new Pipeline({ sink: logger, clock, domains, nowMs: () => NOW_MS, nowNs: () => BigInt(NOW_MS) * 1_000_000n });
    p.onBatch(Buffer.concat([dnsRecord({ data: Buffer.from([42]) }), begin(1n)]));
    expect(order).toEqual([`observe 42 at ${NOW_MS}`, 'namesFor 10.0.0.5', 'namesFor 93.184.216.34']);
    expect(logger.records[0].body).toBe('outgoing tcp 10.0.0.5:43512 -> 93.184.216.34:443 (example.com)');
    expect(logger.records[0].attributes?.['server.address']).toBe('example.com');
    expect(p.stats.dns).toBe(1);
  });

  it('counts records the walk never reached as decode errors', () => {
    const p = new Pipeline({ sink: new Recorder(), clock, domains: new NoDomainLookup(), nowMs: () => NOW_MS, nowNs: () => BigInt(NOW_MS) * 1_000_000n });
    const broken = begin(2n);
    broken.writeUInt16LE(9999, 10);
    p.onBatch(Buffer.concat([begin(1n), broken, begin(3n), begin(4n)]), 4);
    expect(p.stats.emitted).toBe(1);
    expect(p.stats.decodeErrors).toBe(3);
    p.onBatch(Buffer.concat([begin(1n), broken]));
    expect(p.stats.decodeErrors).toBe(4);
  });

  it('never throws: a failing event is counted and reported, the rest go on', () => {
    const errors: unknown[] = [];
    const domains: DomainLookup = {
      observe: () => {
        throw new Error('bad dns');
      },
      namesFor: () => [],
      resolversFor: () => [],
    };
    const logger = new Recorder();
    const p = new Pipeline({ sink: logger, clock, domains, nowMs: () => NOW_MS, nowNs: () => BigInt(NOW_MS) * 1_000_000n, onError: (e) => errors.push(e) });
    expect(() => p.onBatch(Buffer.concat([dnsRecord({ data: Buffer.from([1]) }), begin(1n)]))).not.toThrow();
    expect(p.stats.processingErrors).toBe(1);
    expect((errors[0] as Error).message).toBe('bad dns');
    expect(logger.records).toHaveLength(1);
  });
});
