/**
 * Shutdown and overload with the real CLI, the real kernel programs on a
 * throwaway cgroup, real connections and the real OpenTelemetry Collector:
 *  - SIGTERM in the middle of a stream of connections loses nothing that was
 *    read: every record flowtap counted arrives at the collector;
 *  - SIGKILL leaves nothing attached (bpf_link: the kernel detaches when the
 *    last fd closes), as bpftool sees it;
 *  - a ring buffer too small for a burst loses events in the kernel, and the
 *    kernel counts every one of them: nothing is lost silently.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { TestCgroup } from '../helpers/cgroup';
import { type CollectedLogRecord } from '../helpers/collector';
import { expectStoppedMatches, finalLines, startFlowtap } from '../helpers/flowtap';
import { burstFrom, listen, useCliFixture, waitFor } from '../helpers/traffic';

/** Programs attached to `path` (bpftool's view). */
function attachedPrograms(path: string): { id: number; attach_type: string }[] {
  // bpftool prints nothing at all for a cgroup without programs
  const out = execFileSync('bpftool', ['-j', 'cgroup', 'show', path], { encoding: 'utf8' }).trim();
  return (out === '' ? [] : JSON.parse(out)) as { id: number; attach_type: string }[];
}

/** kB of resident memory now and at its peak. */
function memory(pid: number): { rssKb: number; hwmKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s*(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
}

function processState(pid: number): string {
  // pid (comm) state ...
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

describe('shutdown and overload (real CLI, real kernel programs, real collector)', () => {
  const fx = useCliFixture('shutdown');
  const { servers } = fx;

  const ofRun = (run: string) => (r: CollectedLogRecord) => r.resource['test.run'] === run;

  it('SIGTERM during a stream of connections: every record read reaches the collector, exit 0 within the timeout', async () => {
    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    const run = `sigterm-${process.pid}-${Date.now()}`;
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', fx.collector.endpoint, '--log-level', 'debug'], {
      OTEL_BLRP_SCHEDULE_DELAY: '200',
      OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}`,
    });
    const burst = burstFrom(fx.cg, '127.0.0.1', port, 0, 8);
    // records are flowing: some have arrived, more are in flight
    await fx.collector.waitForLogRecords(ofRun(run), 10_000, 100);
    const mem = memory(ft.child.pid!);
    const stopped = await ft.stop('SIGTERM');
    const made = await (burst.stop(), burst.done);
    expect(stopped.code).toBe(0);
    expect(stopped.millis).toBeLessThan(5000);

    const { counters: last, stopped: short } = finalLines(ft);
    expectStoppedMatches(last, short);
    expect(last).toBeDefined();
    const probe = last!.probe as Record<string, number>;
    // the kernel put every event it saw in the ring buffer, and all of them were read and emitted
    expect(probe.ringbuf_full_flow).toBe(0);
    expect(probe.handoff_dropped_records).toBe(0);
    expect(last!.flows).toBe(probe.flow_begin + probe.flow_end);
    expect(last!.emitted).toBe(last!.flows);
    expect(last).toMatchObject({ exportedRecords: last!.emitted, failedRecords: 0, droppedRecords: 0, decodeErrors: 0 });
    // connections were still being made when SIGTERM came: more than the records already at the collector
    expect(made.ok).toBeGreaterThan(100);

    const records = await waitFor('every exported record at the collector', () => {
      const r = fx.collector.readLogRecords().filter(ofRun(run));
      return r.length >= (last!.emitted as number) ? r : undefined;
    });
    expect(records).toHaveLength(last!.emitted as number);
    expect(records.filter((r) => r.eventName === 'flowtap.flow.begin')).toHaveLength(probe.flow_begin);
    // No record twice. A source port can come back within the run (the
    // server closes first, so the client's port is free again at once, and
    // other loopback traffic moves the kernel's port choice), so a record is
    // its event, source port and timestamp: a record sent twice repeats all three.
    const keys = new Set(records.map((r) => `${r.eventName} ${r.attributes['source.port']} ${r.timeUnixNano}`));
    expect(keys.size).toBe(records.length);
    // Every end belongs to a begin at the collector: same ports, and the
    // begin's timestamp is the end's minus its duration, to within 1 ms (the
    // kernel's duration is exact; the boot→wall offset of the two timestamps
    // is taken per batch and moves by a few µs between batches).
    const beginsByPort = new Map<string, bigint[]>();
    for (const r of records.filter((x) => x.eventName === 'flowtap.flow.begin')) {
      const k = `${r.attributes['source.port']} ${r.attributes['destination.port']}`;
      beginsByPort.set(k, [...(beginsByPort.get(k) ?? []), r.timeUnixNano]);
    }
    const orphanEnds = records
      .filter((r) => r.eventName === 'flowtap.flow.end')
      .filter((r) => {
        const begins = beginsByPort.get(`${r.attributes['source.port']} ${r.attributes['destination.port']}`) ?? [];
        const beginNs = r.timeUnixNano - BigInt(Math.round((r.attributes['flowtap.flow.duration'] as number) * 1e9));
        return !begins.some((b) => (b > beginNs ? b - beginNs : beginNs - b) <= 1_000_000n);
      });
    expect(orphanEnds).toEqual([]);
    console.log(`SIGTERM under load: ${records.length} records, exit in ${stopped.millis} ms, rss ${mem.rssKb} kB (peak ${mem.hwmKb} kB)`);
  });

  it('SIGKILL leaves no program attached (bpf_link)', async () => {
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--exporter', 'none']);
    // the packet hooks and the socket ones, all through bpf_links
    expect(
      attachedPrograms(fx.cg.path)
        .map((p) => p.attach_type)
        .sort(),
    ).toEqual([
      'cgroup_getsockopt',
      'cgroup_inet4_connect',
      'cgroup_inet4_post_bind',
      'cgroup_inet6_connect',
      'cgroup_inet6_post_bind',
      'cgroup_inet_egress',
      'cgroup_inet_ingress',
      'cgroup_inet_sock_release',
      'cgroup_sock_ops',
    ]);
    const killed = await ft.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    const left = await waitFor('the programs to be detached', () => (attachedPrograms(fx.cg.path).length === 0 ? [] : undefined), 3000);
    expect(left).toEqual([]);
  });

  it('a ring buffer too small for a burst: the kernel counts exactly the events that never reached the collector', async () => {
    const { server, port } = await listen('127.0.0.1');
    servers.push(server);
    const run = `overload-${process.pid}-${Date.now()}`;
    const ft = await startFlowtap(['--cgroup', fx.cg.path, '--endpoint', fx.collector.endpoint, '--ring-buffer-bytes', '4096', '--log-level', 'debug'], {
      OTEL_BLRP_SCHEDULE_DELAY: '100',
      OTEL_RESOURCE_ATTRIBUTES: `test.run=${run}`,
    });
    const pid = ft.child.pid!;
    // A stopped reader: the ring buffer (4096 bytes, about 50 events) overflows
    // for certain, whatever the machine's speed.
    process.kill(pid, 'SIGSTOP');
    await waitFor('flowtap to stop', () => (processState(pid) === 'T' ? true : undefined));
    const connections = 300;
    const made = await burstFrom(fx.cg, '127.0.0.1', port, connections, 16).done;
    expect(made).toEqual({ ok: connections, failed: 0 });
    process.kill(pid, 'SIGCONT');

    const stopped = await ft.stop('SIGTERM');
    expect(stopped.code).toBe(0);
    const { counters: last, stopped: short } = finalLines(ft);
    expectStoppedMatches(last, short);
    const probe = last.probe as Record<string, number>;
    const records = await waitFor('every exported record at the collector', () => {
      const r = fx.collector.readLogRecords().filter(ofRun(run));
      return r.length >= (last.exportedRecords as number) ? r : undefined;
    });
    const begins = records.filter((r) => r.eventName === 'flowtap.flow.begin').length;
    const ends = records.filter((r) => r.eventName === 'flowtap.flow.end').length;

    expect(begins).toBeLessThan(connections); // the burst did overflow the ring buffer
    expect(probe.ringbuf_full_flow).toBeGreaterThan(0);
    // Each connection is one begin and one end event (a begin lost in the
    // kernel still leaves its flow-table entry, so its end is tried too).
    // Every event the collector lacks was counted as ring buffer full:
    expect(probe.ringbuf_full_flow).toBe(connections - begins + (connections - ends));
    expect(probe.flow_begin).toBe(begins);
    expect(probe.flow_end).toBe(ends);
    expect(last).toMatchObject({ emitted: begins + ends, exportedRecords: begins + ends, failedRecords: 0, droppedRecords: 0 });
    // and said so, as a warning, not only in the counters
    const warning = ft.logs().find((l) => l.msg === 'events lost before decoding');
    expect(warning?.lost).toBe(probe.ringbuf_full_flow);

    // ... and the same number reached the collector as a metric
    const dropped = await waitFor('the final metrics', () =>
      fx.collector
        .readMetricPoints()
        .filter((p) => p.resource['test.run'] === run && p.name === 'flowtap.records.dropped' && p.attributes['flowtap.reason'] === 'ring_buffer_full')
        .pop(),
    );
    expect(Number(dropped.value)).toBe(probe.ringbuf_full_flow);
    console.log(`overload: ${connections} connections, ${begins} begins + ${ends} ends delivered, ${probe.ringbuf_full_flow} counted as ring buffer full`);
  });
});
