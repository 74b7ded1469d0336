/**
 * The real CLI (dist/cli.js, --replay: synthetic events, no kernel programs)
 * exporting through the SDK's gRPC transport to a real gRPC server that
 * answers as scripted (test/helpers/fake-collector.ts): retryable statuses
 * are retried until accepted, and nothing is lost; a status that cannot
 * succeed on a retry is counted as failed, and nothing else is lost.
 */
import { startFakeCollector, type FakeCollector } from '../helpers/fake-collector';
import { expectStoppedMatches, finalLines, killAllFlowtaps, startFlowtap } from '../helpers/flowtap';

const RESOURCE_EXHAUSTED = 8;
const UNAVAILABLE = 14;
const INVALID_ARGUMENT = 3;

/* eslint-disable @typescript-eslint/no-explicit-any */
type Stopped = Record<string, any>;

async function runAgainst(fake: FakeCollector, seconds: number): Promise<{ stopped: Stopped; warnings: Record<string, unknown>[] }> {
  const ft = await startFlowtap(['--replay', 'synthetic:500', '--endpoint', fake.endpoint, '--metrics', 'none', '--log-level', 'debug'], {
    OTEL_BLRP_SCHEDULE_DELAY: '100',
  });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { code } = await ft.stop();
  expect(code).toBe(0);
  // every counter: the debug line before the short `stopped` one
  const { counters, stopped } = finalLines(ft);
  expectStoppedMatches(counters, stopped);
  return { stopped: counters as Stopped, warnings: ft.logs().filter((l) => l.level === 'warn') };
}

describe('flowtap CLI → a gRPC server that fails on purpose (--replay, real gRPC)', () => {
  let fake: FakeCollector | undefined;

  afterEach(async () => {
    killAllFlowtaps();
    await fake?.close();
    fake = undefined;
  });

  it('RESOURCE_EXHAUSTED and UNAVAILABLE answers are retried with backoff until accepted: every record arrives once', async () => {
    // 2 x RESOURCE_EXHAUSTED, 2 x UNAVAILABLE, then accept everything.
    fake = await startFakeCollector((i) => (i < 2 ? RESOURCE_EXHAUSTED : i < 4 ? UNAVAILABLE : 0));
    const { stopped, warnings } = await runAgainst(fake, 8);

    expect(fake.calls.slice(0, 4).map((c) => c.code)).toEqual([RESOURCE_EXHAUSTED, RESOURCE_EXHAUSTED, UNAVAILABLE, UNAVAILABLE]);
    expect(fake.calls.slice(4).every((c) => c.code === 0)).toBe(true);
    // The refused batches were sent again: their records arrived, once each.
    const times = new Set(fake.accepted.map((r) => r.timeUnixNano));
    expect(times.size).toBe(fake.accepted.length);
    expect(fake.accepted.length).toBe(stopped.emitted);
    expect(stopped.emitted).toBeGreaterThan(2000);
    expect(stopped).toMatchObject({ exportedRecords: stopped.emitted, failedRecords: 0, droppedRecords: 0 });
    // one throttled warning for the outage, naming the status
    expect(warnings.some((w) => w.msg === 'records not exported' && /RESOURCE_EXHAUSTED/.test(String(w.error)) && Number(w.retriedRecords) > 0)).toBe(true);
  }, 30_000);

  it('an answer that cannot succeed on a retry (INVALID_ARGUMENT) counts that batch as failed; nothing else is lost', async () => {
    fake = await startFakeCollector((i) => (i === 0 ? INVALID_ARGUMENT : 0));
    const { stopped } = await runAgainst(fake, 3);

    const refused = fake.calls[0];
    expect(refused.code).toBe(INVALID_ARGUMENT);
    expect(fake.calls.filter((c) => c.code !== 0)).toHaveLength(1); // not retried
    expect(stopped.failedRecords).toBe(refused.records);
    expect(stopped.droppedRecords).toBe(0);
    expect(fake.accepted.length + refused.records).toBe(stopped.emitted);
    expect(stopped.exportedRecords).toBe(fake.accepted.length);
  }, 30_000);
});
