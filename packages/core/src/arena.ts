/**
 * arena.ts — carves typed-array columns out of one SharedArrayBuffer.
 *
 * Contract: the same sequence of takes gives the same offsets, so a layout can be measured
 * (an Arena without a buffer counts bytes and hands out empty arrays) and then placed, and a
 * second thread handed the same buffer rebuilds identical views. Every column is 8-byte
 * aligned (64-byte, cache-line, where `align(64)` asks; SharedArrayBuffers start on a page). New SharedArrayBuffers are zero-filled, which every table here treats as "empty".
 */
export class Arena {
  private off = 0;
  constructor(readonly buffer: SharedArrayBuffer | null) {}

  private place(bytes: number): number {
    const at = this.off;
    this.off = (at + bytes + 7) & ~7;
    if (this.buffer && this.off > this.buffer.byteLength) throw new RangeError('arena: layout exceeds buffer');
    return at;
  }

  /** Start the next column on a multiple of `bytes` (a power of two: 64 for cache lines). */
  align(bytes: number): void {
    this.off = (this.off + bytes - 1) & ~(bytes - 1);
    if (this.buffer && this.off > this.buffer.byteLength) throw new RangeError('arena: layout exceeds buffer');
  }

  get size(): number {
    return this.off;
  }

  u8(n: number): Uint8Array {
    const at = this.place(n);
    return this.buffer ? new Uint8Array(this.buffer, at, n) : new Uint8Array(0);
  }
  u16(n: number): Uint16Array {
    const at = this.place(n * 2);
    return this.buffer ? new Uint16Array(this.buffer, at, n) : new Uint16Array(0);
  }
  u32(n: number): Uint32Array {
    const at = this.place(n * 4);
    return this.buffer ? new Uint32Array(this.buffer, at, n) : new Uint32Array(0);
  }
  i32(n: number): Int32Array {
    const at = this.place(n * 4);
    return this.buffer ? new Int32Array(this.buffer, at, n) : new Int32Array(0);
  }
  f64(n: number): Float64Array {
    const at = this.place(n * 8);
    return this.buffer ? new Float64Array(this.buffer, at, n) : new Float64Array(0);
  }
}

/** Build a layout twice: once to measure, once over a new (or given) buffer. */
export function placeLayout<T>(build: (a: Arena) => T, existing?: SharedArrayBuffer): { layout: T; buffer: SharedArrayBuffer } {
  const measure = new Arena(null);
  build(measure);
  const buffer = existing ?? new SharedArrayBuffer(measure.size);
  if (buffer.byteLength < measure.size) throw new RangeError(`arena: buffer of ${buffer.byteLength} bytes is smaller than the layout's ${measure.size}`);
  return { layout: build(new Arena(buffer)), buffer };
}

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
