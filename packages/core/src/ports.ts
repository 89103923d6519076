/**
 * ports.ts — which external ports each partition owns, and how a partition picks one.
 *
 * Contract:
 *  - `PortPlan` splits the configured range into per-partition slices, separately for the
 *    0-1023 and 1024-65535 classes (RFC 4787 REQ-3 / RFC 6056 keep the classes apart), so
 *    `owner(port)` tells any thread which partition an inbound packet belongs to. The plan
 *    is a pure function of (range, partitions): every thread computes the same one.
 *  - A partition's allocator state (in use, reusable-after time, last inside host, per
 *    external address and protocol family) lives in typed arrays that the caller places in
 *    shared memory; only the owning partition writes them.
 *  - Choice: `random` (RFC 6056 §3.3.1 "simple port randomization": random start, probe
 *    forward), `preserve` (the inside port when this partition owns it and it is free, else
 *    random), `sequential` (counting up, as Linux 2.0 counted from PORT_MASQ_BEGIN 60000).
 *  - A freed port waits `portReuseDelay` (RFC 6888 REQ-8: 120 s) before another inside host
 *    may have it; the same host may take it back at once (REQ-8's own exception).
 *  - Static forwards reserve their external ports; allocation never hands those out.
 *  - Exhaustion returns -1: the caller refuses the new flow; nothing live is evicted
 *    (RFC 6888 REQ-11).
 */

import type { Arena } from './arena.js';

export const PORT_FAMILIES = 3; // 0 tcp, 1 udp, 2 icmp identifiers
export function portFamily(proto: number): number {
  return proto === 6 ? 0 : proto === 17 ? 1 : 2;
}

export class PortPlan {
  readonly lo: number;
  readonly hi: number;
  readonly partitions: number;
  /** owner partition of each port (0xff = outside the range). */
  readonly ownerOf: Uint8Array;
  /** index of each port within its owner's slot list. */
  readonly slotOf: Uint16Array;
  /** per partition: the owned ports, low class first. */
  readonly owned: Uint16Array[];
  /** per partition: how many of `owned` are below 1024. */
  readonly lowCount: number[];

  constructor(lo: number, hi: number, partitions: number) {
    this.lo = lo;
    this.hi = hi;
    this.partitions = partitions;
    this.ownerOf = new Uint8Array(65536).fill(0xff);
    this.slotOf = new Uint16Array(65536);
    const lists: number[][] = Array.from({ length: partitions }, () => []);
    this.lowCount = new Array<number>(partitions).fill(0);
    const classes: Array<[number, number]> = [];
    if (lo <= 1023) classes.push([lo, Math.min(hi, 1023)]);
    if (hi >= 1024) classes.push([Math.max(lo, 1024), hi]);
    for (const [a, b] of classes) {
      const n = b - a + 1;
      for (let p = 0; p < partitions; p++) {
        // Contiguous slices: partition p owns [a + floor(n·p/P), a + floor(n·(p+1)/P)).
        const s = a + Math.floor((n * p) / partitions);
        const e = a + Math.floor((n * (p + 1)) / partitions);
        for (let port = s; port < e; port++) {
          this.ownerOf[port] = p;
          this.slotOf[port] = lists[p]!.length;
          lists[p]!.push(port);
          if (port < 1024) this.lowCount[p]!++;
        }
      }
    }
    this.owned = lists.map((l) => Uint16Array.from(l));
  }

  /** Slots per (external address, family) for partition p. */
  slots(p: number): number {
    return this.owned[p]!.length;
  }
}

/** Largest slice any partition has: the per-family stride of allocator arrays. */
export function maxSlots(plan: PortPlan): number {
  let m = 0;
  for (let p = 0; p < plan.partitions; p++) m = Math.max(m, plan.slots(p));
  return m;
}

/** The allocator's typed arrays for one partition (in shared memory, owner-written). */
export interface PortArrays {
  /** 1 = in use, 2 = reserved by a static forward. Index: (ext·FAMILIES + family)·stride + slot */
  inUse: Uint8Array;
  reuseAt: Float64Array;
  lastHost: Uint32Array;
  /** [0..2] sequential cursors per family, [3] xorshift state */
  cursor: Uint32Array;
}

export const enum PortMode {
  Random = 0,
  Preserve = 1,
  Sequential = 2,
}

export class PortAllocator {
  private readonly owned: Uint16Array;
  private readonly lowCount: number;
  private readonly stride: number;
  private readonly inUse: Uint8Array;
  private readonly reuseAt: Float64Array;
  private readonly lastHost: Uint32Array;
  private readonly cursor: Uint32Array;

  constructor(
    readonly plan: PortPlan,
    readonly partition: number,
    arrays: PortArrays,
    private readonly mode: PortMode,
    private readonly reuseDelay: number,
  ) {
    this.owned = plan.owned[partition]!;
    this.lowCount = plan.lowCount[partition]!;
    this.stride = maxSlots(plan);
    this.inUse = arrays.inUse;
    this.reuseAt = arrays.reuseAt;
    this.lastHost = arrays.lastHost;
    this.cursor = arrays.cursor;
  }

  /** Seed the randomizer unless this (shared) state already runs: a restarted owner continues. */
  seedIfFresh(s: number): void {
    if (this.cursor[3] === 0) this.cursor[3] = s >>> 0 || 0x9e3779b9;
  }

  static arrays(plan: PortPlan, externals: number, a: Arena): PortArrays {
    const n = externals * PORT_FAMILIES * maxSlots(plan);
    return {
      inUse: a.u8(n),
      reuseAt: a.f64(n),
      lastHost: a.u32(n),
      cursor: a.u32(4),
    };
  }

  seed(s: number): void {
    this.cursor[3] = s >>> 0 || 0x9e3779b9;
  }

  private rand(): number {
    // xorshift32: the state lives in shared memory so a restarted owner continues the sequence.
    let x = this.cursor[3]!;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.cursor[3] = x >>> 0;
    return x >>> 0;
  }

  private base(ext: number, family: number): number {
    return (ext * PORT_FAMILIES + family) * this.stride;
  }

  private usable(i: number, host: number, now: number): boolean {
    return this.inUse[i] === 0 && (this.reuseAt[i]! <= now || this.lastHost[i] === host);
  }

  /**
   * Allocate an external port (or ICMP identifier) for inside host `host`, inside port
   * `inPort`, on external address index `ext`. Returns the port, or -1 when the slice is
   * exhausted.
   */
  allocate(ext: number, proto: number, host: number, inPort: number, now: number): number {
    const family = portFamily(proto);
    const base = this.base(ext, family);
    const owned = this.owned;
    // Class of the inside port picks the class of the external port when both exist.
    let from = 0;
    let to = owned.length;
    if (family !== 2 && this.lowCount > 0 && this.lowCount < owned.length) {
      if (inPort < 1024) to = this.lowCount;
      else from = this.lowCount;
    }
    const n = to - from;
    if (n <= 0) return -1;
    if (this.mode === PortMode.Preserve && this.plan.ownerOf[inPort] === this.partition) {
      const s = this.plan.slotOf[inPort]!;
      if (s >= from && s < to && this.usable(base + s, host, now)) return this.take(base, s, host);
    }
    let start: number;
    if (this.mode === PortMode.Sequential) {
      start = (this.cursor[family]! % n);
      this.cursor[family] = (start + 1) % n;
    } else {
      start = this.rand() % n;
    }
    for (let k = 0; k < n; k++) {
      let s = start + k;
      if (s >= n) s -= n;
      const i = base + from + s;
      if (this.usable(i, host, now)) {
        if (this.mode === PortMode.Sequential) this.cursor[family] = (s + 1) % n;
        return this.take(base, from + s, host);
      }
    }
    return -1;
  }

  private take(base: number, slot: number, host: number): number {
    this.inUse[base + slot] = 1;
    this.lastHost[base + slot] = host;
    return this.owned[slot]!;
  }

  /** Release a port this partition owns; it rests for the reuse delay. */
  release(ext: number, proto: number, port: number, now: number): void {
    if (this.plan.ownerOf[port] !== this.partition) return;
    const i = this.base(ext, portFamily(proto)) + this.plan.slotOf[port]!;
    if (this.inUse[i] !== 1) return;
    this.inUse[i] = 0;
    this.reuseAt[i] = now + this.reuseDelay;
  }

  /** Reserve a port for a static forward (never allocated dynamically). */
  reserve(ext: number, proto: number, port: number): void {
    if (this.plan.ownerOf[port] !== this.partition) return;
    this.inUse[this.base(ext, portFamily(proto)) + this.plan.slotOf[port]!] = 2;
  }

  /** Undo `reserve` (rule removed); the port rests like a freed one. */
  unreserve(ext: number, proto: number, port: number, now: number): void {
    if (this.plan.ownerOf[port] !== this.partition) return;
    const i = this.base(ext, portFamily(proto)) + this.plan.slotOf[port]!;
    if (this.inUse[i] === 2) {
      this.inUse[i] = 0;
      this.reuseAt[i] = now + this.reuseDelay;
    }
  }

  isInUse(ext: number, proto: number, port: number): boolean {
    if (this.plan.ownerOf[port] !== this.partition) return false;
    return this.inUse[this.base(ext, portFamily(proto)) + this.plan.slotOf[port]!] !== 0;
  }
}
