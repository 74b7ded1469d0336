/**
 * Collector outages, with the real CLI (dist/cli.js) and the real
 * OpenTelemetry Collector. The events come from --replay synthetic:2000: the
 * same decode → map → export code as the kernel path, at a steady 2 000
 * flows/s that two busy CPUs could not promise with real connections. Each
 * synthetic record's timestamp is its production time, 500 µs apart, so a
 * missing record is a gap in the timestamps the collector wrote.
 */
import { readFileSync } from 'node:fs';
import { startCollector, type RunningCollector } from '../helpers/collector';
import { expectStoppedMatches, finalLines, killAllFlowtaps, startFlowtap, type RunningFlowtap } from '../helpers/flowtap';

const RATE = 2000;
const SPACING_NS = 1_000_000_000n / BigInt(RATE);
const OUTAGE_MILLIS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n;

/* eslint-disable @typescript-eslint/no-explicit-any */
/** The distinct timestamps of every record in the collector's file, sorted, and how many records there were. */
function collectedTimes(path: string): { times: bigint[]; records: number } {
  const seen = new Set<bigint>();
  let records = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    let request: any;
    try {
      request = JSON.parse(line);
    } catch {
      // A collector killed mid-write leaves half a line, and its next run
      // appends to it: keep the request that starts last on the line.
      const last = line.lastIndexOf('{"resourceLogs"');
      try {
        request = JSON.parse(line.slice(last));
      } catch {
        continue;
      }
    }
    for (const rl of request.resourceLogs ?? []) {
      for (const sl of rl.scopeLogs ?? []) {
        for (const lr of sl.logRecords ?? []) {
          records++;
          seen.add(BigInt(lr.timeUnixNano));
        }
      }
    }
  }
  return { times: [...seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), records };
}

/** Records missing between the first and the last timestamp, and where: [after, before] of each gap. */
function gaps(times: bigint[]): { missing: number; at: [bigint, bigint][] } {
  let missing = 0;
  const at: [bigint, bigint][] = [];
  for (let i = 1; i < times.length; i++) {
    const d = times[i] - times[i - 1];
    if (d * 4n > SPACING_NS * 6n) {
      missing += Number((d + SPACING_NS / 2n) / SPACING_NS) - 1;
      at.push([times[i - 1], times[i]]);
    }
  }
  return { missing, at };
}

/** Every counter at the end (the debug `counters` line), once the short `stopped` line was checked against it. */
function stoppedLine(ft: RunningFlowtap): Record<string, any> {
  const { counters, stopped } = finalLines(ft);
  expectStoppedMatches(counters, stopped);
  return counters;
}

async function startReplay(collector: RunningCollector): Promise<RunningFlowtap> {
  const ft = await startFlowtap(['--replay', `synthetic:${RATE}`, '--endpoint', collector.endpoint, '--metrics', 'none', '--log-level', 'debug'], {
    OTEL_BLRP_SCHEDULE_DELAY: '200',
  });
  await collector.waitForLogRecords(RATE, 15_000); // flowing
  return ft;
}

describe('collector outages: flowtap CLI (--replay) → real OpenTelemetry Collector', () => {
  let collector: RunningCollector | undefined;

  afterEach(async () => {
    killAllFlowtaps();
    await collector?.close();
    collector = undefined;
  });

  it(
    'a 60 s outage at 2 000 flows/s loses nothing: every record made during it arrives after the restart',
    async () => {
      collector = await startCollector();
      const ft = await startReplay(collector);

      await collector.stop();
      const outageFrom = nowNs();
      await sleep(OUTAGE_MILLIS);
      const outageTo = nowNs();
      await collector.restart();
      await sleep(8_000); // the queue drains while new records keep coming
      const { code } = await ft.stop();
      expect(code).toBe(0);

      const s = stoppedLine(ft);
      expect(s.droppedRecords).toBe(0);
      expect(s.failedRecords).toBe(0);
      expect(s.probe.ringbuf_full_flow).toBe(0);
      expect(s.emitted).toBe(s.probe.flow_begin);
      expect(s.exportedRecords).toBe(s.emitted);

      const { times } = collectedTimes(collector.logsPath);
      expect(gaps(times)).toEqual({ missing: 0, at: [] });
      expect(times.length).toBe(s.emitted); // all of them, each at least once
      const during = times.filter((t) => t >= outageFrom && t <= outageTo).length;
      expect(during).toBeGreaterThanOrEqual((RATE * OUTAGE_MILLIS * 0.98) / 1000);

      // warned while it lasted, at most once per 30 s
      const warnings = ft.logs().filter((l) => l.msg === 'records not exported');
      expect(warnings.length).toBeGreaterThanOrEqual(1);
      expect(warnings.length).toBeLessThanOrEqual(Math.ceil(OUTAGE_MILLIS / 30_000) + 1);
      expect(warnings.every((w) => Number(w.failedRecords) === 0 && Number(w.droppedRecords) === 0)).toBe(true);
      // and said once that exports work again, after about the outage
      const recovered = ft.logs().filter((l) => l.msg === 'exports recovered');
      expect(recovered).toHaveLength(1);
      expect(recovered[0]).toMatchObject({ level: 'info', destination: collector.endpoint, items: 'records' });
      expect(Number(recovered[0].failingSeconds)).toBeGreaterThanOrEqual((OUTAGE_MILLIS / 1000) * 0.9);
    },
    OUTAGE_MILLIS + 90_000,
  );

  it('kill -9 of the collector mid-stream: flowtap loses nothing; only records the collector acknowledged and had not yet written are missing', async () => {
    collector = await startCollector({ flushIntervalMillis: 100 });
    const ft = await startReplay(collector);
    await sleep(3_000);

    const killedAt = nowNs();
    await collector.kill();
    await sleep(5_000);
    await collector.restart();
    await sleep(6_000);
    const { code } = await ft.stop();
    expect(code).toBe(0);

    const s = stoppedLine(ft);
    expect(s.droppedRecords).toBe(0);
    expect(s.failedRecords).toBe(0);
    expect(s.exportedRecords).toBe(s.emitted); // flowtap had every record acknowledged

    const { times } = collectedTimes(collector.logsPath);
    const lost = gaps(times);
    // The collector's loss: records it acknowledged but held in its file
    // exporter's buffer (flush_interval 100 ms) when it died. They can only
    // be from the last moments before the kill, and few.
    expect(lost.missing).toBeLessThanOrEqual(RATE * 2);
    for (const [after, before] of lost.at) {
      expect(after).toBeGreaterThan(killedAt - 3_000_000_000n);
      expect(before).toBeLessThan(killedAt + 1_000_000_000n);
    }
    expect(times.length + lost.missing).toBe(s.emitted);
  }, 60_000);
});
