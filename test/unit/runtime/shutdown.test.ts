import type { NativeProbe } from '../../../src/kernel/probe';
import { createLog } from '../../../src/runtime/log';
import { shutdownSequence, type ShutdownParts } from '../../../src/runtime/shutdown';
import type { FlowtapCounts } from '../../../src/runtime/telemetry';

/** Parts that record what happens, in order; `hang` keeps the record export's flush from ever resolving. */
function parts(timeoutMillis: number, hang = false) {
  const steps: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const log = createLog({ write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) }, 'info');
  const step = (name: string) => async () => {
    steps.push(name);
  };
  let exited: (code: number) => void = () => undefined;
  const exit = new Promise<number>((resolve) => (exited = resolve));
  const p: ShutdownParts = {
    config: { exporter: 'otlp', shutdownTimeoutMillis: timeoutMillis },
    log,
    monitor: { warnLoss: () => steps.push('warnLoss'), stop: () => steps.push('monitor.stop') },
    probe: { close: step('probe.close') } as unknown as NativeProbe,
    records: {
      forceFlush: hang ? () => new Promise<void>(() => undefined) : step('records.forceFlush'),
      shutdown: step('records.shutdown'),
      emitFlow: () => undefined,
    },
    telemetry: { shutdown: step('telemetry.shutdown') },
    health: { close: step('health.close') },
    counts: () =>
      ({
        emitted: 3,
        exportedRecords: 4,
        failedRecords: 1,
        droppedRecords: 0,
        dns: { unmatched: { no_query: 2 } },
        probe: { flow_begin: 3, flow_end: 2 },
      }) as unknown as FlowtapCounts,
    spanTotals: () => undefined,
    startedMs: 1_000,
    nowMs: () => 13_340,
    pendingRecords: () => 2,
    onStopping: () => steps.push('stopping'),
    exit: (code) => {
      steps.push(`exit ${code}`);
      exited(code);
    },
  };
  return { p, steps, lines, exit };
}

describe('shutdownSequence', () => {
  it('stops in order: timers, probe (drains), records flushed, stopped line, last metrics, health, exit 0', async () => {
    const { p, steps, lines, exit } = parts(5000);
    void shutdownSequence(p)('SIGTERM');
    expect(await exit).toBe(0);
    expect(steps).toEqual([
      'stopping',
      'monitor.stop',
      'probe.close',
      'records.forceFlush',
      'records.shutdown',
      'warnLoss',
      'telemetry.shutdown',
      'health.close',
      'exit 0',
    ]);
    expect(lines.map((l) => l.msg)).toEqual(['stopping', 'stopped']);
    expect(lines[0].reason).toBe('SIGTERM');
    // A short line: the uptime and the totals (every counter is in the debug 'counters' line).
    const { time: _t, level: _l, msg: _m, ...stopped } = lines[1];
    expect(stopped).toEqual({
      uptimeSeconds: 12.3,
      flowsBegun: 3,
      flowsEnded: 2,
      exportedRecords: 4,
      failedRecords: 1,
      droppedRecords: 0,
      dnsAnswersRefused: 2,
    });
  });

  it('a second request exits at once, without flushing', async () => {
    const { p, steps, lines } = parts(50, true);
    const stop = shutdownSequence(p);
    void stop('SIGTERM');
    await new Promise((r) => setImmediate(r));
    void stop('SIGINT');
    expect(steps).toContain('exit 0');
    expect(steps).not.toContain('records.shutdown');
    expect(lines.map((l) => l.msg)).toEqual(['stopping', 'second stop request: exiting without flushing']);
    await new Promise((r) => setTimeout(r, 80)); // the first request's deadline, which the real exit would have cut short
  });

  it('past the timeout: says what was not flushed and exits 0 anyway', async () => {
    const { p, steps, lines, exit } = parts(20, true);
    void shutdownSequence(p)('SIGTERM');
    expect(await exit).toBe(0);
    expect(steps).not.toContain('records.shutdown');
    const timedOut = lines.find((l) => l.msg === 'shutdown timed out: exiting without flushing');
    expect(timedOut).toMatchObject({ level: 'warn', timeoutMillis: 20, unflushedRecords: 2, emitted: 3 });
  });
});
