/**
 * doorbell.ts — how a thread that has put work in a translation worker's ring wakes it, and
 * how an idle worker sleeps until then.
 *
 * Owns: the doorbell protocol over two control words per partition p (layout.ts):
 * CTL_DOORBELL + p, a counter every producer bumps after publishing ring entries, and
 * CTL_PARKED + p, 1 while worker p sleeps (or is about to).
 *
 * Contract:
 *  - ring(ctl, p): call after the ring entries are published (ring.ts's tail store). Bumps the
 *    counter; wakes worker p only when it has declared itself parked, so a busy worker costs
 *    its producers no system call.
 *  - park(ctl, p, bell, timeoutUs): worker p, having read `bell` from the counter BEFORE it
 *    last looked at its rings and found them empty, sleeps until the counter moves or the
 *    timeout passes. Returns false when it timed out.
 *  - wakeAll(ctl, partitions): wake every worker whatever it is doing (shutdown).
 *  No wake-up is lost: the worker stores PARKED = 1 and then the kernel compares the counter
 *  with `bell` atomically inside futex(FUTEX_WAIT); a producer adds to the counter and then
 *  loads PARKED. Both are sequentially consistent (Atomics, and the futex system call), so
 *  either the producer sees PARKED = 1 and wakes the futex, or the worker's compare sees the new
 *  counter and does not sleep.
 *
 * The sleep is a bare futex from @masq/tun's addon rather than Atomics.wait/notify: V8 emulates
 * those with one process-wide mutex and a condition variable per waiter (3-4 futex calls per
 * hand-off, ~4 µs more per wake on this machine). The two are not interchangeable: every
 * waiter and waker of a doorbell goes through this module.
 */
import { getBinding } from '@masq/tun';
import { CTL_DOORBELL, CTL_PARKED } from './layout.js';

/** Signal worker p that its rings have new entries. */
export function ring(ctl: Int32Array, p: number): void {
  Atomics.add(ctl, CTL_DOORBELL + p, 1);
  if (Atomics.load(ctl, CTL_PARKED + p) !== 0) getBinding().futexWake(ctl, CTL_DOORBELL + p, 1);
}

/**
 * Sleep while the doorbell still reads `bell`, at most timeoutUs. Returns true when woken (or
 * the doorbell had already moved), false on timeout.
 */
export function park(ctl: Int32Array, p: number, bell: number, timeoutUs: number): boolean {
  Atomics.store(ctl, CTL_PARKED + p, 1);
  const r = getBinding().futexWait(ctl, CTL_DOORBELL + p, bell, timeoutUs);
  Atomics.store(ctl, CTL_PARKED + p, 0);
  return r !== 1;
}

/** Wake every worker (shutdown: they then see CTL_STOP). */
export function wakeAll(ctl: Int32Array, partitions: number): void {
  for (let p = 0; p < partitions; p++) {
    Atomics.add(ctl, CTL_DOORBELL + p, 1);
    getBinding().futexWake(ctl, CTL_DOORBELL + p, 1);
  }
}
