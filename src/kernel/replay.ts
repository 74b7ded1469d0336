/**
 * A kernel-independent event source for benchmarks and tests: synthetic flow
 * records in the ring-buffer layout of bpf/flowtap.h (written with ./layout's
 * constants), handed to the same onBatch the native probe calls, so decode →
 * map → export run exactly as in production.
 *
 * It models the kernel side too: records are "produced" at a fixed rate in
 * wall-clock time (each stamped with its production time) into a ring buffer
 * of the configured size; the JS thread drains it on a timer. When the JS
 * thread falls behind by more than the ring holds, the excess is lost and
 * counted as ringbuf_full_flow, like a failed bpf_ringbuf_reserve.
 */
import type { ClockAnchor } from './clock';
import * as L from './layout';
import type { NativeProbe } from './probe';

/** `synthetic:<events per second>` */
export interface ReplaySpec {
  kind: 'synthetic';
  ratePerSecond: number;
}

const SYNTHETIC = /^synthetic:(\d+)$/;
export const MAX_REPLAY_RATE = 10_000_000;

/** Parses `synthetic:<rate>`; undefined when `raw` is not that form. */
export function parseReplaySpec(raw: string): ReplaySpec | undefined {
  const m = SYNTHETIC.exec(raw.trim());
  if (m === null) return undefined;
  const rate = Number(m[1]);
  if (!Number.isSafeInteger(rate) || rate < 1 || rate > MAX_REPLAY_RATE) return undefined;
  return { kind: 'synthetic', ratePerSecond: rate };
}

/** Distinct flows in the template; the records repeat them with fresh timestamps. */
export const SYNTHETIC_FLOWS = 4096;

/**
 * The template: SYNTHETIC_FLOWS flow-begin records, every 8th IPv6, every 4th
 * incoming, ports and addresses varied so no two bodies are alike.
 */
export function syntheticTemplate(flows = SYNTHETIC_FLOWS): Buffer {
  const buf = Buffer.alloc(flows * L.FLOW_SIZE);
  for (let i = 0; i < flows; i++) {
    const off = i * L.FLOW_SIZE;
    buf[off + L.HDR_TYPE] = L.EV_FLOW_BEGIN;
    buf[off + L.HDR_VERSION] = L.ABI_VERSION;
    buf.writeUInt16LE(L.FLOW_SIZE, off + L.HDR_SIZE_FIELD);
    const v6 = i % 8 === 7;
    const s = off + L.FLOW_SADDR;
    const d = off + L.FLOW_DADDR;
    if (v6) {
      // fd00::/8 ULA, as the tests use
      buf[s] = 0xfd;
      buf[s + 15] = 1 + (i % 250);
      buf[d] = 0xfd;
      buf[d + 1] = 1;
      buf[d + 14] = (i >> 8) & 0xff;
      buf[d + 15] = i & 0xff;
    } else {
      // 198.18.0.0/15 benchmarking range
      buf[s] = 198;
      buf[s + 1] = 18;
      buf[s + 2] = 0;
      buf[s + 3] = 1 + (i % 250);
      buf[d] = 198;
      buf[d + 1] = 19;
      buf[d + 2] = (i >> 8) & 0xff;
      buf[d + 3] = i & 0xff;
    }
    buf.writeUInt16LE(32768 + ((i * 7919) % 28000), off + L.FLOW_SPORT);
    buf.writeUInt16LE([443, 80, 8443, 5432][i % 4], off + L.FLOW_DPORT);
    buf[off + L.FLOW_FAMILY] = v6 ? 6 : 4;
    buf[off + L.FLOW_DIRECTION] = i % 4 === 3 ? L.DIR_INCOMING : L.DIR_OUTGOING;
    buf.writeBigUInt64LE(BigInt(1 + (i % 3)), off + L.FLOW_CGROUP_ID);
  }
  return buf;
}

/**
 * `count` records starting at flow number `first` of `template`, with
 * timestamps `tsNs(k)` for the k-th record of the batch.
 */
export function syntheticBatch(template: Buffer, first: number, count: number, tsNs: (k: number) => bigint): Buffer {
  const flows = template.length / L.FLOW_SIZE;
  const out = Buffer.allocUnsafe(count * L.FLOW_SIZE);
  let src = first % flows;
  for (let k = 0; k < count; k++) {
    const off = k * L.FLOW_SIZE;
    template.copy(out, off, src * L.FLOW_SIZE, (src + 1) * L.FLOW_SIZE);
    out.writeBigUInt64LE(tsNs(k), off + L.HDR_TS_NS);
    if (++src === flows) src = 0;
  }
  return out;
}

/** A clock pair from JS alone: CLOCK_REALTIME (µs precision) and CLOCK_MONOTONIC as the "boot" clock. */
export function jsClockAnchor(): ClockAnchor {
  const boottimeNs = process.hrtime.bigint();
  const realtimeNs = BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
  return { realtimeNs, boottimeNs };
}

export interface ReplayProbeOptions {
  spec: ReplaySpec;
  /** Ring buffer bytes: how far the JS thread may fall behind before records are lost. */
  ringBufferBytes: number;
  onBatch: (batch: Buffer, records: number) => void;
  /** The "boot" clock records are stamped with (jsClockAnchor's boottimeNs clock). Default process.hrtime.bigint. */
  nowNs?: () => bigint;
  /** How often the ring is drained. Default 10 ms (the addon wakes per event; this is coarser on purpose). */
  drainIntervalMillis?: number;
}

/** Bytes one hand-over may hold, as the addon's kBatchHandOverBytes. */
const HANDOVER_BYTES = 256 * 1024;

/** The native probe's contract, fed by a synthetic producer. */
export class ReplayProbe implements NativeProbe {
  private readonly _template = syntheticTemplate();
  private readonly _onBatch: ReplayProbeOptions['onBatch'];
  private readonly _nowNs: () => bigint;
  private readonly _nsPerEvent: number;
  private readonly _ringRecords: number;
  private readonly _startNs: bigint;
  private readonly _timer: NodeJS.Timeout;
  /** Records produced so far (delivered + lost). */
  private _produced = 0;
  private _delivered = 0;
  private _lost = 0;
  private _batches = 0;
  private _closed = false;

  constructor(options: ReplayProbeOptions) {
    this._onBatch = options.onBatch;
    this._nowNs = options.nowNs ?? (() => process.hrtime.bigint());
    this._nsPerEvent = 1e9 / options.spec.ratePerSecond;
    this._ringRecords = Math.max(1, Math.floor(options.ringBufferBytes / L.FLOW_SIZE));
    this._startNs = this._nowNs();
    this._timer = setInterval(() => this._drain(), options.drainIntervalMillis ?? 10);
  }

  /** Produces what is due by now, drops what the ring cannot hold, hands the rest over in batches. */
  private _drain(): void {
    const now = this._nowNs();
    const due = Math.floor(Number(now - this._startNs) / this._nsPerEvent);
    let backlog = due - this._produced;
    if (backlog > this._ringRecords) {
      // The ring was full for these: they were never written.
      const lost = backlog - this._ringRecords;
      this._lost += lost;
      this._produced += lost;
      backlog = this._ringRecords;
    }
    const perBatch = Math.floor(HANDOVER_BYTES / L.FLOW_SIZE);
    while (backlog > 0) {
      const count = Math.min(backlog, perBatch);
      const first = this._produced;
      const batch = syntheticBatch(this._template, first, count, (k) => this._startNs + BigInt(Math.floor((first + k) * this._nsPerEvent)));
      this._produced += count;
      this._delivered += count;
      this._batches++;
      backlog -= count;
      this._onBatch(batch, count);
    }
  }

  counters(): Record<string, number> {
    return {
      flow_begin: this._delivered,
      ringbuf_full_flow: this._lost,
      batches: this._batches,
    };
  }

  programStats(): Record<string, unknown> {
    return {};
  }

  flowTableSize(): number {
    return 0;
  }

  /** Stops producing; what is already due is handed over first. */
  close(): Promise<void> {
    if (!this._closed) {
      this._closed = true;
      clearInterval(this._timer);
      this._drain();
    }
    return Promise.resolve();
  }
}
