/**
 * ports.ts — which external ports each partition owns, and how a partition picks one.
 *
 * Contract:
 *  - `PortPlan` splits the configured range into per-partition slices, separately for the
 *    0-1023 and 1024-65535 classes, so `owner(port)` tells any thread which partition an
 *    inbound packet belongs to. The plan is a pure function of (range, partitions): every
 *    thread computes the same one.
 *  - The classes stay apart whatever the range (RFC 4787 REQ-3a, RFC 5382 REQ-3): a source
 *    port ≥ 1024 never gets an external port below 1024 (a privileged port is never handed to
 *    an unprivileged source, even when the range holds nothing else: then the flow is refused
 *    as port exhaustion). A source port below 1024 gets one below 1024 when the partition's
 *    slice has any; when the range has none it gets one ≥ 1024 (REQ-3a is a RECOMMENDED and
 *    refusing would break e.g. NTP clients bound to port 123; it gives nobody a privilege).
 *  - Parity (RFC 4787 REQ-4): TCP and UDP get an external port of the inside port's parity
 *    when the class holds a usable one (RTP/RTCP pairs keep their even/odd meaning); only when
 *    none of that parity is usable does another port do. ICMP identifiers have no parity.
 *  - Choice: `random` is RFC 6056 §3.3.4 Algorithm 4, "double-hash port selection":
 *        offset = F(ext, protocol, remote, remote port; key1)      (HalfSipHash-2-4)
 *        i      = G(ext, protocol, remote, remote port; key2) mod TABLE
 *        probe (offset + table[i] + k) mod n for k = 0, 1, …; table[i] advances past the
 *        probes used.
 *    The keys are 128 random bits from the platform's cryptographic generator, drawn once per
 *    partition (or derived from `seed` in tests) and kept in shared memory with the rest of the
 *    allocator state, so a restarted owner continues with the same keys. An observer who sees
 *    the ports allocated toward its own servers learns nothing about the ports used toward
 *    others (each destination has its own secret offset), and successive flows to the same
 *    destination still get distinct ports (the table counter).
 *    `preserve`: the inside port when this partition owns it and it is free, else `random`.
 *    `sequential`: counting up, as Linux 2.0 counted from PORT_MASQ_BEGIN 60000 (`--preset
 *    classic`; no parity, no hashing: the 1996 behaviour on purpose).
 *  - A partition's allocator state (in use, reusable-after time, last inside host, per
 *    external address and protocol family; cursors, keys, the Algorithm 4 table) lives in
 *    typed arrays that the caller places in shared memory; only the owning partition writes.
 *  - A freed port waits `portReuseDelay` (RFC 6888 REQ-8: 120 s) before another inside host
 *    may have it; the same host may take it back at once (REQ-8's own exception).
 *  - Static forwards reserve their external ports; allocation never hands those out.
 *  - Exhaustion returns -1: the caller refuses the new flow; nothing live is evicted
 *    (RFC 6888 REQ-11).
 */

import type { Arena } from './arena.js';
import { halfSipHash3, halfSipHash3Pair } from './keyedhash.js';
import { IpProto } from './wire/ipv4.js';

export const PORT_FAMILIES = 3; // 0 tcp, 1 udp, 2 icmp identifiers
export function portFamily(proto: number): number {
  return proto === IpProto.Tcp ? 0 : proto === IpProto.Udp ? 1 : 2;
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
  /** S_* words: sequential cursors, the keys, then the Algorithm 4 table (ALG4_TABLE words). */
  state: Uint32Array;
}

/** state words: [0..2] sequential cursor per family, [3] keys set, [4..7] keys, then the table. */
const S_KEYED = 3;
const S_KEY = 4;
const S_TABLE = 8;
/** Algorithm 4's table of counters (RFC 6056 §3.3.4 suggests a small table; a power of two). */
export const ALG4_TABLE = 64;

export const enum PortMode {
  Random = 0,
  Preserve = 1,
  Sequential = 2,
}

/**
 * x mod n for 0 ≤ x < 2^32 and 0 < n ≤ 65536, exact: a uint32 above 2^31 is no small integer
 * to V8, and `%` on it is a floating-point remainder call; the quotient here is a double
 * whose rounding cannot reach the next integer (a fraction of x/n is ≥ 1/n ≥ 2^-16, doubles
 * below 2^32 are 2^-20 apart).
 */
function umod(x: number, n: number): number {
  return x - Math.floor(x / n) * n;
}

/** Four key words from a test seed (deterministic; the gateway draws random keys instead). */
function keysFromSeed(seed: number, out: Uint32Array, at: number): void {
  for (let i = 0; i < 4; i++) out[at + i] = halfSipHash3(0x736f6d65, 0x646f7261, seed, i, 0x6d617371);
}

export class PortAllocator {
  private readonly owned: Uint16Array;
  private readonly lowCount: number;
  private readonly stride: number;
  private readonly inUse: Uint8Array;
  private readonly reuseAt: Float64Array;
  private readonly lastHost: Uint32Array;
  private readonly state: Uint32Array;
  /** G's output (halfSipHash3Pair writes it here: no allocation). */
  private readonly g = new Uint32Array(1);
  /** Each class's ports are consecutive in `owned` (port = first port of the class + index). */
  private readonly consecutive: boolean;

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
    this.state = arrays.state;
    let consecutive = true;
    for (let i = 1; i < this.owned.length; i++) {
      if (i !== this.lowCount && this.owned[i] !== this.owned[i - 1]! + 1) consecutive = false;
    }
    this.consecutive = consecutive;
  }

  /**
   * Key the allocator unless its (shared) state already has keys: a restarted owner keeps
   * them. `seed` 0 draws 128 bits from the cryptographic generator; any other value derives
   * the keys from it (tests, replayable runs).
   */
  seedIfFresh(seed: number): void {
    if (this.state[S_KEYED] === 0) this.seed(seed);
  }

  /** Set the keys now (see seedIfFresh) and clear the Algorithm 4 table. */
  seed(seed: number): void {
    const st = this.state;
    if (seed !== 0) keysFromSeed(seed >>> 0, st, S_KEY);
    else globalThis.crypto.getRandomValues(st.subarray(S_KEY, S_KEY + 4));
    st.fill(0, S_TABLE, S_TABLE + ALG4_TABLE);
    st[S_KEYED] = 1;
  }

  static arrays(plan: PortPlan, externals: number, a: Arena): PortArrays {
    const n = externals * PORT_FAMILIES * maxSlots(plan);
    return {
      inUse: a.u8(n),
      reuseAt: a.f64(n),
      lastHost: a.u32(n),
      state: a.u32(S_TABLE + ALG4_TABLE),
    };
  }

  private base(ext: number, family: number): number {
    return (ext * PORT_FAMILIES + family) * this.stride;
  }

  private usable(i: number, host: number, now: number): boolean {
    return this.inUse[i] === 0 && (this.reuseAt[i]! <= now || this.lastHost[i] === host);
  }

  /**
   * Allocate an external port (or ICMP identifier) for inside host `host`, inside port
   * `inPort`, on external address index `ext`, for a flow toward (`rem`, `remPort`). Returns
   * the port, or -1 when the slice (of the right class) is exhausted.
   */
  allocate(ext: number, proto: number, host: number, inPort: number, now: number, rem = 0, remPort = 0): number {
    const family = portFamily(proto);
    const base = this.base(ext, family);
    const owned = this.owned;
    // The class of the inside port picks the class of the external port (see the header).
    let from = 0;
    let to = owned.length;
    if (family !== 2) {
      if (inPort >= 1024) from = this.lowCount;
      else if (this.lowCount > 0) to = this.lowCount;
    }
    const n = to - from;
    if (n <= 0) return -1;
    if (this.mode === PortMode.Sequential) {
      const start = this.state[family]! % n;
      for (let k = 0; k < n; k++) {
        let s = start + k;
        if (s >= n) s -= n;
        if (this.usable(base + from + s, host, now)) {
          this.state[family] = (s + 1) % n;
          return this.take(base, from + s, host);
        }
      }
      return -1;
    }
    if (this.mode === PortMode.Preserve && this.plan.ownerOf[inPort] === this.partition) {
      const s = this.plan.slotOf[inPort]!;
      if (s >= from && s < to && this.usable(base + s, host, now)) return this.take(base, s, host);
    }
    // RFC 6056 Algorithm 4.
    const st = this.state;
    const w1 = ((remPort << 16) | (proto << 8) | (ext & 0xff)) >>> 0;
    // offset = F (key words 0-1, last message word 0), table index = G (key words 2-3, last
    // word 1): HalfSipHash-2-4 both, computed side by side (keyedhash.ts).
    const offset = halfSipHash3Pair(st[S_KEY]!, st[S_KEY + 1]!, st[S_KEY + 2]!, st[S_KEY + 3]!, rem, w1, 0, 1, this.g);
    const ti = S_TABLE + (this.g[0]! & (ALG4_TABLE - 1));
    const start = umod(umod(offset, n) + umod(st[ti]!, n), n);
    // Parity first (TCP, UDP), then any port of the class. A class's ports are consecutive
    // in `owned` (PortPlan slices each class in one piece; checked in the constructor), so a
    // slot's parity is that of the class's first port plus the slot's distance from it: the
    // probe reads no `owned` entry for the slots it skips.
    const parity = family === 2 ? -1 : inPort & 1;
    const first = owned[from]!;
    for (let pass = parity < 0 ? 1 : 0; pass < 2; pass++) {
      for (let k = 0; k < n; k++) {
        let s = start + k;
        if (s >= n) s -= n;
        const slot = from + s;
        if (pass === 0 && ((this.consecutive ? first + s : owned[slot]!) & 1) !== parity) continue;
        if (this.usable(base + slot, host, now)) {
          st[ti] = (st[ti]! + k + 1) >>> 0;
          return this.take(base, slot, host);
        }
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
