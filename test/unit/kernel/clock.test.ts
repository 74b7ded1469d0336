import { BootClock, bootToWallNs, hrTimeToIso, hrTimeToNs, nsToHrTime, nsToIso } from '../../../src/kernel/clock';

describe('bootToWallNs', () => {
  it('adds the boot time elapsed since the anchor to the anchor wall time', () => {
    const anchor = { realtimeNs: 1_700_000_000_000_000_000n, boottimeNs: 5_000_000_000n };
    expect(bootToWallNs(5_000_000_000n, anchor)).toBe(1_700_000_000_000_000_000n);
    expect(bootToWallNs(6_000_000_123n, anchor)).toBe(1_700_000_001_000_000_123n);
    expect(bootToWallNs(4_999_999_999n, anchor)).toBe(1_699_999_999_999_999_999n);
  });
});

describe('BootClock', () => {
  it('re-anchors on the first conversion after each interval, not before', () => {
    let now = 1_000;
    const anchors = [
      { realtimeNs: 1_000_000_000_000n, boottimeNs: 0n },
      { realtimeNs: 2_000_000_000_000n, boottimeNs: 0n },
    ];
    let taken = 0;
    const clock = new BootClock({ anchor: () => anchors[Math.min(taken++, 1)], nowMs: () => now });
    expect(taken).toBe(1);
    expect(clock.toWallNs(5n)).toBe(1_000_000_000_005n);
    now += 59_999;
    expect(clock.toWallNs(5n)).toBe(1_000_000_000_005n);
    expect(taken).toBe(1);
    now += 1;
    expect(clock.toWallNs(5n)).toBe(2_000_000_000_005n);
    expect(taken).toBe(2);
  });

  it('honours a custom interval and re-anchors when the clock steps back', () => {
    let now = 10_000;
    let taken = 0;
    const clock = new BootClock({
      anchor: () => ({ realtimeNs: BigInt(++taken) * 1_000n, boottimeNs: 0n }),
      nowMs: () => now,
      reanchorIntervalMillis: 10,
    });
    now += 10;
    expect(clock.toWallNs(0n)).toBe(2_000n);
    now -= 5_000;
    expect(clock.toWallNs(0n)).toBe(3_000n);
  });
});

describe('time formats', () => {
  it('converts ns to HrTime and back without losing the last digits', () => {
    const ns = 1_714_564_800_123_456_789n;
    expect(nsToHrTime(ns)).toEqual([1_714_564_800, 123_456_789]);
    expect(hrTimeToNs(nsToHrTime(ns))).toBe(ns);
  });

  it('writes ISO-8601 with 9 fractional digits', () => {
    expect(nsToIso(1_714_564_800_123_456_789n)).toBe('2024-05-01T12:00:00.123456789Z');
    expect(nsToIso(1_714_564_800_000_000_007n)).toBe('2024-05-01T12:00:00.000000007Z');
    expect(hrTimeToIso([0, 0])).toBe('1970-01-01T00:00:00.000000000Z');
  });
});
