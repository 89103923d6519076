/**
 * translate/prefetch.ts — the batch hint before translating: each packet's lookup key and
 * index probe in tight loops, so that cache and TLB misses overlap instead of stalling one
 * translate() each (JavaScript's only way to prefetch), and the candidate session the fast
 * path then checks against the key instead of hashing and probing again.
 *
 * Contract: reads only; any bytes at all are safe (out-of-range reads give undefined, which
 * hashes to junk, and a candidate is always checked against the packet's key like any lookup).
 * At most 64 packets per call. No allocation.
 */
import { hash5 } from '../hash.js';
import { Direction } from '../verdict.js';
import type { Partition } from '../translate.js';
import { IpProto } from '../wire/ipv4.js';

/**
 * A read-only hint before translating a batch: computes each packet's lookup key, and loads
 * its index entry (the first from the home slot whose hash tag matches), then the session
 * records those entries name (one 64-byte line each), in tight loops. Packet k is at offs[k]
 * in direction dirs[k]; at most 64 per call. Returns a value only so the loads cannot be
 * optimised away.
 */
export function prefetch(pt: Partition, b: Uint8Array, offs: Uint32Array, dirs: Uint8Array, n: number): number {
  const t = pt.table;
  const slots = pt.pfSlots;
  const hashes = pt.pfHashes;
  const m = Math.min(n, slots.length);
  pt.pfBuf = b;
  pt.pfCount = m;
  pt.pfNext = 0;
  pt.pfOffs.set(offs.subarray(0, m));
  for (let k = 0; k < m; k++) {
    const o = offs[k]!;
    const l4 = o + ((b[o]! & 0x0f) << 2);
    const p = b[o + 9]!;
    const src = ((b[o + 12]! << 24) | (b[o + 13]! << 16) | (b[o + 14]! << 8) | b[o + 15]!) >>> 0;
    const dst = ((b[o + 16]! << 24) | (b[o + 17]! << 16) | (b[o + 18]! << 8) | b[o + 19]!) >>> 0;
    let sp: number;
    let dp: number;
    if (p === IpProto.Icmp) {
      sp = (b[l4 + 4]! << 8) | b[l4 + 5]!;
      dp = 0;
    } else {
      sp = (b[l4]! << 8) | b[l4 + 1]!;
      dp = (b[l4 + 2]! << 8) | b[l4 + 3]!;
    }
    // Outbound key: inside 5-tuple; inbound: (external, ext port, remote, remote port).
    hashes[k] = dirs[k] === Direction.Out ? hash5(p, src, sp, dst, dp) : hash5(p, dst, p === IpProto.Icmp ? sp : dp, src, p === IpProto.Icmp ? 0 : sp);
  }
  let sink = 0;
  // The first entry from the home slot on whose hash tag matches (table.ts findSession*): a
  // displaced session is found too, with the probe's slots in the same line.
  for (let k = 0; k < m; k++) slots[k] = t.probeSession(hashes[k]!, dirs[k] === Direction.Out);
  for (let k = 0; k < m; k++) sink += t.touchSession(slots[k]!);
  return sink;
}

/** The last prefetch's candidate session for the packet at b[off] (next in order), or 0. */
export function candidate(pt: Partition, b: Uint8Array, off: number): number {
  const k = pt.pfNext;
  if (k >= pt.pfCount || pt.pfOffs[k] !== off || pt.pfBuf !== b) return 0;
  pt.pfNext = k + 1;
  return pt.pfSlots[k]!;
}
