import { ExportStats } from '../../../src/export/stats';
import { createLog } from '../../../src/runtime/log';

function setup(): { stats: ExportStats; lines: Record<string, unknown>[]; advance: (ms: number) => void } {
  const lines: Record<string, unknown>[] = [];
  let now = 1_000_000;
  const log = createLog({ write: (s: string) => lines.push(JSON.parse(s)) }, 'info', () => new Date(now));
  const stats = new ExportStats({ log, nowMs: () => now, destination: 'http://collector:4317' });
  return { stats, lines, advance: (ms) => (now += ms) };
}

describe('ExportStats', () => {
  it('counts exported, failed and dropped records', () => {
    const { stats } = setup();
    stats.exported(10);
    stats.failed(3, new Error('x'));
    stats.dropped(2);
    stats.exported(1);
    expect([stats.exportedRecords, stats.failedRecords, stats.droppedRecords]).toEqual([11, 3, 2]);
  });

  it('warns at most once per 30 s, with what failed since the last warning', () => {
    const { stats, lines, advance } = setup();
    stats.failed(512, new Error('14 UNAVAILABLE: No connection established'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'warn',
      msg: 'records not exported',
      destination: 'http://collector:4317',
      failedRecords: 512,
      droppedRecords: 0,
      error: '14 UNAVAILABLE: No connection established',
    });
    advance(10_000);
    stats.failed(512, new Error('again'));
    stats.dropped(7);
    advance(19_999);
    stats.failed(1, new Error('still'));
    expect(lines).toHaveLength(1);
    advance(1);
    stats.failed(2, new Error('later'));
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({
      failedRecords: 512 + 1 + 2,
      droppedRecords: 7,
      error: 'later',
      totalFailedRecords: 512 + 512 + 1 + 2,
      totalDroppedRecords: 7,
    });
  });
});

describe('ExportStats failing streak (for /readyz)', () => {
  it('remembers when the failures in a row began, until an export succeeds', () => {
    const { stats, advance } = setup();
    expect(stats.failingSinceMs).toBeUndefined();
    stats.failed(1, new Error('x'));
    const since = stats.failingSinceMs;
    expect(since).toBe(1_000_000);
    advance(5000);
    stats.failed(1, new Error('x'));
    expect(stats.failingSinceMs).toBe(since);
    stats.exported(1);
    expect(stats.failingSinceMs).toBeUndefined();
    expect(stats.lastSuccessMs).toBe(1_005_000);
  });
});

describe('ExportStats recovery line', () => {
  it('says once, at info, when exports succeed again after failures, and how long they failed', () => {
    const { stats, lines, advance } = setup();
    stats.exported(5);
    expect(lines).toEqual([]); // nothing to recover from
    stats.retrying(5, new Error('14 UNAVAILABLE'));
    advance(12_340);
    stats.retrying(5, new Error('14 UNAVAILABLE'));
    advance(1000);
    stats.exported(5);
    stats.exported(5);
    const recovered = lines.filter((l) => l.msg === 'exports recovered');
    expect(recovered).toEqual([expect.objectContaining({ level: 'info', destination: 'http://collector:4317', items: 'records', failingSeconds: 13.3 })]);
    expect(lines.map((l) => l.msg)).toEqual(['records not exported', 'exports recovered']);
  });

  it('names spans when it counts spans', () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLog({ write: (s: string) => lines.push(JSON.parse(s)) }, 'info');
    const stats = new ExportStats({ log, nowMs: () => 0, items: 'spans' });
    stats.failed(2, new Error('x'));
    stats.exported(1);
    expect(lines.map((l) => [l.msg, l.items])).toEqual([
      ['spans not exported', undefined],
      ['exports recovered', 'spans'],
    ]);
  });
});
