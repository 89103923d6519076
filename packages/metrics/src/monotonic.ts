/**
 * monotonic.ts — turns raw counter readings from shared memory into values that never
 * decrease from one scrape to the next.
 *
 * Contract: `read(i, raw)` returns base[i] + raw. A reading below the previous one means the
 * writer restarted from zero (a block re-created instead of kept), so the previous reading is
 * folded into base[i] first: what was counted before the restart stays counted. A reading
 * that is not a finite number ≥ 0 is ignored (the previous one stands). A restart followed by
 * counting past the old value before the next scrape is invisible; that loses only what was
 * counted before the restart, and cannot happen when blocks are kept across restarts, as the
 * gateway does.
 */
export class MonotonicCounters {
  private last: Float64Array;
  private base: Float64Array;

  constructor(slots: number) {
    this.last = new Float64Array(slots);
    this.base = new Float64Array(slots);
  }

  /** Feed slot i's raw reading; returns the monotonic value. */
  read(i: number, raw: number): number {
    const prev = this.last[i]!;
    if (!Number.isFinite(raw) || raw < 0) return this.base[i]! + prev;
    if (raw < prev) this.base[i]! += prev;
    this.last[i] = raw;
    return this.base[i]! + raw;
  }

  /** The value of slot i as of the last reading (for a writer that has gone away). */
  value(i: number): number {
    return this.base[i]! + this.last[i]!;
  }
}
