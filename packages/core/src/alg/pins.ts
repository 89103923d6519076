/**
 * alg/pins.ts — the pinned-endpoint table: inside endpoints whose outbound packets must go to
 * a partition other than the one their hash names, because that partition holds their
 * session (a helper's related flow: the data connection of an active-mode FTP client is
 * opened from outside toward a port of the control session's slice, so its session lives with
 * the control session, while the client's own packets hash by its data port).
 *
 * Layout (one SharedArrayBuffer, Int32 words): word 0 = total pins (all partitions, a quick
 * "nothing pinned" test for the reader); then per partition a region of PIN_SLOTS entries of
 * two words: A = proto << 16 | inside port (0 empty, -1 tombstone), B = inside address.
 *
 * Contract: partition p is the only writer of region p (one writer per partition); word 0 is
 * changed only with Atomics.add/sub. The reader (the I/O thread's Dispatcher) probes every
 * region with Atomics loads. Open addressing, linear probing, tombstones on removal; a region
 * that empties is swept clean by its owner.
 */
import { hash3 } from '../hash.js';

export const PIN_SLOTS = 1024;
const MASK = PIN_SLOTS - 1;
const TOMB = -1;
const HEAD = 16;

/** Bytes of a pin table for `partitions`. */
export function pinBytes(partitions: number): number {
  return (HEAD + partitions * (PIN_SLOTS * 2 + 2)) * 4;
}

export class PinTable {
  readonly buffer: SharedArrayBuffer;
  private readonly w: Int32Array;
  private readonly partitions: number;

  constructor(partitions: number, buffer?: SharedArrayBuffer) {
    this.partitions = partitions;
    this.buffer = buffer ?? new SharedArrayBuffer(pinBytes(partitions));
    this.w = new Int32Array(this.buffer);
  }

  private base(p: number): number {
    return HEAD + p * (PIN_SLOTS * 2 + 2) + 2;
  }

  /** Pins held by partition p (its own count, word before its region). */
  count(p: number): number {
    return Atomics.load(this.w, this.base(p) - 2);
  }

  /** Owner p: pin (proto, inA, inP) to p. Returns false when the region is full. */
  pin(p: number, proto: number, inA: number, inP: number): boolean {
    const w = this.w;
    const base = this.base(p);
    const a = (proto << 16) | inP;
    let i = hash3(proto, inA, inP) & MASK;
    let free = -1;
    for (let k = 0; k < PIN_SLOTS; k++) {
      const e = w[base + 2 * i]!;
      if (e === a && w[base + 2 * i + 1] === (inA | 0)) return true;
      if (e === TOMB && free < 0) free = i;
      if (e === 0) {
        if (free < 0) free = i;
        break;
      }
      i = (i + 1) & MASK;
    }
    if (free < 0) return false;
    // The address is stored before the key word that publishes the entry: a reader that sees
    // the key (Atomics are sequentially consistent) sees the address that belongs to it. The
    // count goes up first so that a reader that sees the entry does not skip the table.
    Atomics.add(w, 0, 1);
    Atomics.store(w, base - 2, w[base - 2]! + 1);
    Atomics.store(w, base + 2 * free + 1, inA | 0);
    Atomics.store(w, base + 2 * free, a);
    return true;
  }

  /** Owner p: remove the pin of (proto, inA, inP), if any. */
  unpin(p: number, proto: number, inA: number, inP: number): void {
    const w = this.w;
    const base = this.base(p);
    const a = (proto << 16) | inP;
    let i = hash3(proto, inA, inP) & MASK;
    for (let k = 0; k < PIN_SLOTS; k++) {
      const e = w[base + 2 * i]!;
      if (e === 0) return;
      if (e === a && w[base + 2 * i + 1] === (inA | 0)) {
        Atomics.store(w, base + 2 * i, TOMB);
        const left = w[base - 2]! - 1;
        Atomics.store(w, base - 2, left);
        Atomics.sub(w, 0, 1);
        // An empty region loses its tombstones (a reader racing this sees empty or tombstone:
        // both mean "not here").
        if (left === 0) for (let j = 0; j < PIN_SLOTS; j++) Atomics.store(w, base + 2 * j, 0);
        return;
      }
      i = (i + 1) & MASK;
    }
  }

  /** Reader: the partition (proto, inA, inP) is pinned to, or -1. */
  lookup(proto: number, inA: number, inP: number): number {
    const w = this.w;
    if (Atomics.load(w, 0) === 0) return -1;
    const a = (proto << 16) | inP;
    const h = hash3(proto, inA, inP) & MASK;
    for (let p = 0; p < this.partitions; p++) {
      const base = this.base(p);
      if (Atomics.load(w, base - 2) === 0) continue;
      let i = h;
      for (let k = 0; k < PIN_SLOTS; k++) {
        const e = Atomics.load(w, base + 2 * i);
        if (e === 0) break;
        if (e === a && Atomics.load(w, base + 2 * i + 1) === (inA | 0)) return p;
        i = (i + 1) & MASK;
      }
    }
    return -1;
  }
}
