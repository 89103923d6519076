/**
 * route.ts — what a reader does with a packet it has read into a slot: classify it (core
 * Dispatcher: direction and owning partition) and send it on — to its partition, out
 * untranslated (an accept rule), dropped with its reason, or done with — and the same for the
 * held fragments that this classification released (dispatch.ts). Shared by the two readers
 * of the TUN: the I/O thread (io-thread.ts) and a worker running to completion
 * (partition-actor.ts readOwn); each gives its own sink.
 *
 * Contract: routeSlot(d, …, slot, len, side, sink) with lens[slot] = len, the slot's bytes
 * from `slot * slotSize` (a vnet header of H bytes first). Each slot it is given or that is
 * released reaches exactly one sink call, except a fragment the dispatcher holds (it comes back
 * through a later released() or expired()). A released later fragment of a datagram an accept
 * rule passed is checked here (full IPv4 header, checksum included) before it passes.
 * No allocation (released() returns a shared empty array when nothing was released).
 */
import { Dispatcher, DISPATCH_DROP, DISPATCH_HELD, DISPATCH_PASS, DropReason, type Side } from '@masq/core';

export interface RouteSink {
  /** Partition `p` owns the packet in `slot`, to be translated in direction `dir`. */
  toPartition(slot: number, p: number, dir: number): void;
  /** Out as it is (an `accept` rule). */
  pass(slot: number): void;
  /** Dropped: `reason` is a DropReason (IPv6 is ignored rather than dropped: the sink tells). */
  drop(slot: number, reason: number): void;
  /** Nothing to send: the slot is free again. */
  free(slot: number): void;
}

export function routeSlot(d: Dispatcher, pool: Uint8Array, lens: Int32Array, slotSize: number, H: number, slot: number, now: number, side: Side, sink: RouteSink): void {
  const off = slot * slotSize;
  const len = lens[slot]!;
  const p = len > H ? d.classify(pool, off + H, len - H, now, slot, side) : d.classify(pool, off, 0, now, slot, side);
  if (p >= 0) sink.toPartition(slot, p, d.dir);
  else if (p === DISPATCH_PASS) sink.pass(slot);
  else if (p === DISPATCH_DROP) sink.drop(slot, d.reason);
  else if (p !== DISPATCH_HELD) sink.free(slot);
  for (const r of d.released()) {
    if (r.partition !== DISPATCH_PASS) sink.toPartition(r.handle, r.partition, r.dir);
    else {
      // A later fragment of a datagram an accept rule passed: checked, then out as it is.
      const hl = lens[r.handle]!;
      const bad = hl > H ? d.laterFragmentCheck(pool, r.handle * slotSize + H, hl - H) : DropReason.Truncated;
      if (bad !== DropReason.None) sink.drop(r.handle, bad);
      else sink.pass(r.handle);
    }
  }
}
