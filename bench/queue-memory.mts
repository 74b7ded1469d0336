/**
 * Part 3c: what the export queue costs in memory while the collector is unreachable:
 * flowtap (the real CLI, --replay synthetic:<rate>) exports to a port nobody
 * listens on, so every record stays queued for a retry, up to the queue's
 * bound (--queue-max-records, default 200 000), beyond which the oldest are
 * dropped and counted. RSS is sampled each second with the number of records
 * held (the `summary` line: emitted − exported − failed − dropped); the cost
 * per held record is the RSS growth from the first second to the full queue,
 * over the records held then.
 *
 * A 60 s outage at 2 000 flows/s holds 120 000 records; this fills the
 * default queue faster (20 000/s): the memory per held record is the same.
 *
 */
import { freePort } from '../test/helpers/ports.ts';
import { log, summarize, type Summary } from './lib.mts';
import { replaySource, rssMiB, sleep, startFlowtap } from './pipeline-lib.mts';

export interface QueueMemoryRun {
  rep: number;
  /** RSS (MiB) after 1 s, with few records held. */
  rssStartMiB: number;
  /** RSS (MiB) once the queue was full. */
  rssFullMiB: number;
  heldFull: number;
  /** (rssFull − rssStart) / (heldFull − heldStart), bytes. */
  bytesPerHeldRecord: number;
  /** Records dropped (oldest first) after the queue was full: counted. */
  droppedAfterFull: number;
}

export interface QueueMemoryResult {
  rate: number;
  runs: QueueMemoryRun[];
  bytesPerHeldRecord: Summary;
  rssFullMiB: Summary;
  rssStartMiB: Summary;
  /** The command line of one run (the dead port as a placeholder). */
  command: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
async function runOnce(rep: number, rate: number): Promise<{ run: QueueMemoryRun; command: string }> {
  const deadPort = await freePort(); // nothing listens there
  const ft = await startFlowtap(replaySource(rate), `http://127.0.0.1:${deadPort}`, {
    cpus: '0',
    args: ['--summary-interval-seconds', '1', '--log-level', 'debug'],
  });
  const pid = ft.child.pid!;
  const held = (l: any): number => Number(l.emitted) - Number(l.exportedRecords) - Number(l.failedRecords) - Number(l.droppedRecords);
  const samples: { rss: number; held: number; dropped: number }[] = [];
  const seen = new Set<unknown>();
  const fullAfterSeconds = Math.ceil(200_000 / rate) + 3;
  for (let s = 0; s < fullAfterSeconds + 3; s++) {
    await sleep(1000);
    const summary = ft
      .logs()
      .filter((l) => l.msg === 'counters' && !seen.has(l.time))
      .pop() as any; // every counter, once per summary interval
    if (summary === undefined) continue;
    seen.add(summary.time);
    samples.push({ rss: rssMiB(pid), held: held(summary), dropped: Number(summary.droppedRecords) });
  }
  await ft.stop('SIGTERM', 20_000);
  const first = samples[0];
  const fullAt = samples.findIndex((x) => x.dropped > 0);
  const full = samples[fullAt > 0 ? fullAt - 1 : samples.length - 1];
  const last = samples[samples.length - 1];
  const run: QueueMemoryRun = {
    rep,
    rssStartMiB: first.rss,
    rssFullMiB: Math.max(...samples.slice(fullAt > 0 ? fullAt - 1 : 0).map((x) => x.rss)),
    heldFull: full.held,
    bytesPerHeldRecord: ((full.rss - first.rss) * 2 ** 20) / (full.held - first.held),
    droppedAfterFull: last.dropped,
  };
  return { run, command: ft.shown.replace('<port>', '<port nobody listens on>') };
}

export async function queueMemory(opts: { reps: number; rate: number }): Promise<QueueMemoryResult> {
  const runs: QueueMemoryRun[] = [];
  let command = '';
  for (let rep = 1; rep <= opts.reps; rep++) {
    const { run: r, command: c } = await runOnce(rep, opts.rate);
    command = c;
    runs.push(r);
    log(
      `queue-memory rep ${rep}: RSS ${r.rssStartMiB.toFixed(0)} → ${r.rssFullMiB.toFixed(0)} MiB holding ${r.heldFull} records ` +
        `(${r.bytesPerHeldRecord.toFixed(0)} B each); then ${r.droppedAfterFull} dropped, counted`,
    );
  }
  return {
    rate: opts.rate,
    runs,
    bytesPerHeldRecord: summarize(runs.map((r) => r.bytesPerHeldRecord)),
    rssFullMiB: summarize(runs.map((r) => r.rssFullMiB)),
    rssStartMiB: summarize(runs.map((r) => r.rssStartMiB)),
    command,
  };
}
