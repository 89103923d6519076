/**
 * history.ts — the status page's rates over the last minutes: a bounded ring of samples
 * taken by the metrics actor every `intervalMs` from the shared counters, so that a page
 * opened now shows the minutes before it was opened.
 *
 * Contract:
 *  - `sample(tMs)` reads the source once (partition blocks summed, worker rows) and, from the
 *    second sample on, appends one point per series: the counter's increase since the last
 *    sample divided by the seconds between them. A counter that went down (a block replaced)
 *    counts as 0 for that interval, never as a negative rate.
 *  - At most `capacity` points are kept; the oldest goes first. Memory: capacity × series
 *    numbers (series: 8 packet, 2 byte, one per drop reason, one per worker).
 *  - `since(t)` returns the points with time > t, so a polling page fetches only what it
 *    has not seen (bounded by `capacity` in any case).
 *  - Series names: `packets.<out|in>.<tcp|udp|icmp|other>`, `bytes.<out|in>`,
 *    `drops.<reason label>`, `worker.<name>` (worker packets/s).
 */
import { C, PROTO_INDEX_NAMES, bytesSlot, packetsSlot, sumCounters } from '@masq/core';
import { DROP_REASON_COUNT, DROP_REASON_LABELS } from '@masq/core/drop';

import { DIRECTION_LABELS } from '../registry.js';
import type { MetricsSource } from '../source.js';

export interface HistorySlice {
  intervalMs: number;
  /** Sample times, ms since the epoch, ascending. */
  t: number[];
  /** Per series, one rate per time in `t` (per second). */
  series: Record<string, number[]>;
}

interface Reading {
  t: number;
  values: Map<string, number>;
}

export class RateHistory {
  private readonly times: number[] = [];
  private readonly series = new Map<string, number[]>();
  private last: Reading | null = null;

  constructor(
    private readonly source: MetricsSource,
    readonly capacity = 150,
    readonly intervalMs = 2000,
  ) {}

  private read(t: number): Reading {
    const values = new Map<string, number>();
    const c = sumCounters(this.source.partitions());
    for (let d = 0; d < DIRECTION_LABELS.length; d++) {
      for (let p = 0; p < PROTO_INDEX_NAMES.length; p++) {
        values.set(`packets.${DIRECTION_LABELS[d]}.${PROTO_INDEX_NAMES[p]}`, c[packetsSlot(d, p)]!);
        values.set(`bytes.${DIRECTION_LABELS[d]}.${PROTO_INDEX_NAMES[p]}`, c[bytesSlot(d, p)]!);
      }
    }
    for (let r = 1; r < DROP_REASON_COUNT; r++) values.set(`drops.${DROP_REASON_LABELS[r]}`, c[C.DROPS + r]!);
    for (const w of this.source.workers()) values.set(`worker.${w.worker}`, w.packets);
    return { t, values };
  }

  sample(t: number): void {
    const now = this.read(t);
    const prev = this.last;
    this.last = now;
    if (prev === null || now.t <= prev.t) return;
    const secs = (now.t - prev.t) / 1000;
    this.times.push(now.t);
    const n = this.times.length;
    for (const [name, v] of now.values) {
      let s = this.series.get(name);
      if (s === undefined) {
        // A series that appears late (a new worker) is 0 before it appeared.
        s = new Array<number>(n - 1).fill(0);
        this.series.set(name, s);
      }
      const before = prev.values.get(name) ?? v;
      const rate = (v - before) / secs;
      s.push(Number.isFinite(rate) && rate > 0 ? rate : 0);
    }
    for (const [name, s] of this.series) {
      if (s.length < n) s.push(0); // a series that disappeared reads 0
      if (!now.values.has(name) && s.every((x) => x === 0)) this.series.delete(name);
    }
    if (this.times.length > this.capacity) {
      this.times.shift();
      for (const s of this.series.values()) s.shift();
    }
  }

  since(t: number): HistorySlice {
    let i = 0;
    while (i < this.times.length && this.times[i]! <= t) i++;
    const series: Record<string, number[]> = {};
    for (const [name, s] of this.series) series[name] = s.slice(i);
    return { intervalMs: this.intervalMs, t: this.times.slice(i), series };
  }
}
