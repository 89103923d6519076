/**
 * fragkeys.ts — the fragment-key table: where the fragments of one datagram, keyed by
 * (source, destination, protocol, IP ID, direction), are to go, for a bounded time. One probe
 * for its two users: the partition's table (table.ts: fragments → the session their first
 * fragment found) and the dispatcher (dispatch.ts: fragments → the partition their first
 * fragment went to). Each keeps its own value columns indexed by the slot this returns.
 *
 * Contract: the key columns and the expiry column are the caller's (plain typed arrays, or
 * carved from a table's SharedArrayBuffer), all of one power-of-two length. `put` probes at
 * most PROBE slots from the key's home: an expired slot or the key's own is reused, else the
 * soonest-expiring one is overwritten (bounded memory, never a failure). `find` returns the
 * slot of the live record for a key, or -1. Single writer; no allocation.
 *
 * References: RFC 791 (a datagram's fragments share source, destination, protocol and
 * identification), RFC 4787 REQ-14 (a NAT must handle out-of-order fragments; memory bounded).
 */
import { hash5 } from './hash.js';

/** Slots probed from a key's home. */
const PROBE = 8;

export class FragKeys {
  private readonly mask: number;

  constructor(
    private readonly src: Uint32Array,
    private readonly dst: Uint32Array,
    private readonly key: Uint32Array,
    private readonly expires: Float64Array,
  ) {
    this.mask = src.length - 1;
  }

  /** A table of `n` slots (a power of two) in plain typed arrays. */
  static alloc(n: number): FragKeys {
    return new FragKeys(new Uint32Array(n), new Uint32Array(n), new Uint32Array(n), new Float64Array(n));
  }

  /**
   * The slot for the fragments (src, dst, proto, ipId) travelling in direction `dir` (0 or 1)
   * until `expires`: the key and the expiry are written; the caller writes its values there.
   */
  put(src: number, dst: number, proto: number, ipId: number, dir: number, expires: number, now: number): number {
    const key = ((proto << 17) | (dir << 16) | ipId) >>> 0;
    const ex = this.expires;
    let i = hash5(proto, src, ipId, dst, dir) & this.mask;
    let victim = i;
    for (let k = 0; k < PROBE; k++) {
      const e = ex[i]!;
      if (e <= now || (this.src[i] === src && this.dst[i] === dst && this.key[i] === key)) {
        victim = i;
        break;
      }
      if (e < ex[victim]!) victim = i;
      i = (i + 1) & this.mask;
    }
    this.src[victim] = src;
    this.dst[victim] = dst;
    this.key[victim] = key;
    ex[victim] = expires;
    return victim;
  }

  /** The slot of the unexpired record for these fragments, or -1. */
  find(src: number, dst: number, proto: number, ipId: number, dir: number, now: number): number {
    const key = ((proto << 17) | (dir << 16) | ipId) >>> 0;
    let i = hash5(proto, src, ipId, dst, dir) & this.mask;
    for (let k = 0; k < PROBE; k++) {
      if (this.src[i] === src && this.dst[i] === dst && this.key[i] === key && this.expires[i]! > now) return i;
      i = (i + 1) & this.mask;
    }
    return -1;
  }

  /** Forget every record. */
  clear(): void {
    this.expires.fill(0);
  }

  /** Move every record's expiry by `delta` ms (a table restored under another clock). */
  rebase(delta: number): void {
    const ex = this.expires;
    for (let i = 0; i < ex.length; i++) if (ex[i]! > 0) ex[i]! += delta;
  }
}
