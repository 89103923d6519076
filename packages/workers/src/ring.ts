/**
 * ring.ts — single-producer/single-consumer rings of int32 entries over a SharedArrayBuffer.
 *
 * Layout (Int32Array): [HEAD] consumer's index, [TAIL] producer's index, each on its own
 * 64-byte line to avoid false sharing, entries from DATA on; capacity is a power of two.
 * Indices are free-running int32 counters (wrap-around safe with `| 0` arithmetic).
 *
 * Ordering: the producer writes the entry, then Atomics.store(TAIL) — a sequentially
 * consistent store that publishes the entry write before the new tail is visible. The
 * consumer Atomics.load(TAIL) first, then reads entries, then Atomics.store(HEAD) so the
 * producer sees the space only after the entries were read.
 */
const HEAD = 0;
const TAIL = 16;
const DATA = 32;

export function ringBuffer(capacity: number): SharedArrayBuffer {
  if (capacity & (capacity - 1)) throw new RangeError('ring capacity must be a power of two');
  return new SharedArrayBuffer((DATA + capacity) * 4);
}

export class Ring {
  readonly a: Int32Array;
  readonly mask: number;
  constructor(buf: SharedArrayBuffer) {
    this.a = new Int32Array(buf);
    this.mask = this.a.length - DATA - 1;
  }
  get capacity(): number {
    return this.mask + 1;
  }
  /** Entries waiting (approximate from a third thread). */
  depth(): number {
    return (Atomics.load(this.a, TAIL) - Atomics.load(this.a, HEAD)) | 0;
  }
  /** Producer: append one entry; false when full. */
  push(v: number): boolean {
    const a = this.a;
    const tail = a[TAIL]!; // own index: plain read
    if (((tail - Atomics.load(a, HEAD)) | 0) > this.mask) return false;
    a[DATA + (tail & this.mask)] = v;
    Atomics.store(a, TAIL, (tail + 1) | 0);
    return true;
  }
  /** Consumer: move up to `max` entries into out[0..]; returns the count. */
  pop(out: Int32Array, max: number): number {
    const a = this.a;
    const head = a[HEAD]!;
    let n = (Atomics.load(a, TAIL) - head) | 0;
    if (n > max) n = max;
    for (let i = 0; i < n; i++) out[i] = a[DATA + ((head + i) & this.mask)]!;
    if (n > 0) Atomics.store(a, HEAD, (head + n) | 0);
    return n;
  }
  isEmpty(): boolean {
    return Atomics.load(this.a, TAIL) === this.a[HEAD];
  }
}
