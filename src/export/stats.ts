/**
 * Counts what happened to emitted records and warns about failures at most
 * once per interval, so an unreachable collector gives one line every 30 s,
 * not one per batch; says once when exports succeed again.
 */
import type { Log } from '../runtime/log';
import type { ExportObserver } from './observed';

export const WARN_INTERVAL_MILLIS_DEFAULT = 30_000;

export interface ExportStatsOptions {
  log: Log;
  nowMs: () => number;
  /** Least time between two warnings. Default 30000. */
  warnIntervalMillis?: number;
  /** Included in warnings (the OTLP endpoint). */
  destination?: string;
  /** What is counted, in warnings: records (default), spans. */
  items?: string;
}

export class ExportStats implements ExportObserver {
  /** Records exported successfully. */
  exportedRecords = 0;
  /** Records whose export failed. */
  failedRecords = 0;
  /** Records dropped at a full batch queue. */
  droppedRecords = 0;
  /** Failed export attempts whose records stayed queued for a retry (a record sent three times counts twice). */
  retriedRecords = 0;
  /** When the first of the failed exports in a row failed; undefined while the last export succeeded. */
  failingSinceMs: number | undefined;
  /** When an export last succeeded. */
  lastSuccessMs: number | undefined;

  private readonly _log: Log;
  private readonly _nowMs: () => number;
  private readonly _intervalMs: number;
  private readonly _destination: string | undefined;
  private readonly _items: string;
  private _lastWarnMs = -Infinity;
  private _failedSinceWarn = 0;
  private _droppedSinceWarn = 0;
  private _retriedSinceWarn = 0;
  private _lastError: Error | undefined;

  constructor(options: ExportStatsOptions) {
    this._log = options.log;
    this._nowMs = options.nowMs;
    this._intervalMs = options.warnIntervalMillis ?? WARN_INTERVAL_MILLIS_DEFAULT;
    this._destination = options.destination;
    this._items = options.items ?? 'records';
  }

  exported(count: number): void {
    this.exportedRecords += count;
    const now = this._nowMs();
    this.lastSuccessMs = now;
    if (this.failingSinceMs !== undefined) {
      // One line when exports work again, however many warnings came before.
      this._log.info('exports recovered', {
        destination: this._destination,
        items: this._items,
        failingSeconds: Math.round((now - this.failingSinceMs) / 100) / 10,
      });
      this.failingSinceMs = undefined;
    }
  }

  failed(count: number, error: Error | undefined): void {
    this.failedRecords += count;
    this._failedSinceWarn += count;
    this.failingSinceMs ??= this._nowMs();
    this._lastError = error;
    this._maybeWarn();
  }

  retrying(count: number, error: Error | undefined): void {
    this.retriedRecords += count;
    this._retriedSinceWarn += count;
    this.failingSinceMs ??= this._nowMs();
    this._lastError = error;
    this._maybeWarn();
  }

  dropped(count: number): void {
    this.droppedRecords += count;
    this._droppedSinceWarn += count;
    this._maybeWarn();
  }

  private _maybeWarn(): void {
    const now = this._nowMs();
    if (now - this._lastWarnMs < this._intervalMs) return;
    this._lastWarnMs = now;
    this._log.warn(`${this._items} not exported`, {
      destination: this._destination,
      failedRecords: this._failedSinceWarn,
      droppedRecords: this._droppedSinceWarn,
      retriedRecords: this._retriedSinceWarn,
      error: this._lastError?.message,
      totalFailedRecords: this.failedRecords,
      totalDroppedRecords: this.droppedRecords,
    });
    this._failedSinceWarn = 0;
    this._droppedSinceWarn = 0;
    this._retriedSinceWarn = 0;
  }
}
