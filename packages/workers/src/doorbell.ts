/**
 * doorbell.ts — how a thread that has put work in a translation worker's ring wakes it, and
 * how an idle worker sleeps until then.
 *
 * Owns: the doorbell protocol over two control words per partition p (layout.ts):
 * CTL_DOORBELL + p, a counter every producer bumps after publishing ring entries, and
 * CTL_PARKED + p, 1 while worker p sleeps (or is about to); and worker p's waker, an eventfd
 * (spec.workerWakers[p]) that the supervisor creates and closes.
 *
 * Contract:
 *  - ring(ctl, wakers, p): call after the ring entries are published (ring.ts's tail store).
 *    Bumps the counter; wakes worker p only when it has declared itself parked, so a busy
 *    worker costs its producers no system call.
 *  - park(ctl, p, bell, waker, hint, timeoutMs): worker p, having read `bell` from the counter
 *    BEFORE it last looked at its rings and found them empty, sleeps until the counter moves,
 *    its waker is written, `hint` (a TUN queue fd, or -1) becomes readable, or the timeout
 *    passes. Returns PARK_TIMEOUT, PARK_RUNG (the counter moved or the waker was written) or
 *    PARK_HINT (only the hint fd woke it: a packet is on the TUN queue and the I/O thread is
 *    about to hand it over).
 *  - wakeAll(ctl, wakers): wake every worker (shutdown).
 *  - A run-to-completion worker may instead sleep in read(2) on its own TUN queue (the addon's
 *    parkRead: one system call per packet fewer than poll + read). It stores PARKED = 2 and its
 *    thread id (CTL_TID); ring() then interrupts it with a signal (wakeThread) instead of
 *    writing its eventfd. The same order of stores and loads makes it lose no wake-up; the
 *    addon's header explains how the signal cannot fall between the check and the read.
 *  No wake-up is lost: the worker stores PARKED = 1, then compares the counter with `bell`, and
 *  only then sleeps in poll(2) on its eventfd; a producer adds to the counter and then loads
 *  PARKED. Both are sequentially consistent (Atomics), so either the producer sees PARKED = 1
 *  and writes the eventfd (which stays readable until drained: a write before the poll still
 *  wakes it), or the worker sees the new counter and does not sleep.
 *
 * The hint: with a multi-queue TUN, the kernel steers a flow's packets to the queue that last
 * wrote that flow (its automatic flow steering hashes both directions alike), which is the
 * queue of the worker that owns it. A worker that also polls its own queue is woken by the
 * kernel at the same moment as the I/O thread, instead of after it: the two wake-ups overlap
 * and the hand-off finds the worker already running (measured: ~20 µs → ~4 µs from the I/O
 * thread's read to the worker's translate). The I/O thread still reads every packet.
 */
import { drainWake, pollMany, wake, wakeThread, POLL_MANY_WOKEN } from '@masq/tun';
import { CTL_DOORBELL, CTL_PARKED, CTL_TID } from './layout.js';

/** CTL_PARKED value of a worker asleep in poll(2) (park below): woken through its eventfd. */
export const PARKED_IN_POLL = 1;
/** CTL_PARKED value of a worker asleep in read(2) on its TUN queue (tun addon parkRead): woken by wakeThread. */
export const PARKED_IN_READ = 2;

/**
 * How long an idle worker sleeps at most (ms): its poll(2) timeout; a worker asleep in read(2)
 * has none, and the timer actor rings it this often instead. Nothing waits on it: packets,
 * hand-offs, returned slots, expiry nominations and control messages all ring the doorbell; it
 * bounds how late a held fragment or an expectation is dropped on an idle gateway, and how long
 * work scheduled on a worker's event loop waits (20 ms: 50 wake-ups a second instead of the
 * 1,000 of a 1 ms park).
 */
export const IDLE_PARK_MS = 20;

export const PARK_TIMEOUT = 0;
export const PARK_RUNG = 1;
export const PARK_HINT = 2;

/** Signal worker p that its rings have new entries. */
export function ring(ctl: Int32Array, wakers: readonly number[], p: number): void {
  Atomics.add(ctl, CTL_DOORBELL + p, 1);
  const parked = Atomics.load(ctl, CTL_PARKED + p);
  if (parked === PARKED_IN_POLL) wake(wakers[p]!);
  else if (parked === PARKED_IN_READ) wakeThread(Atomics.load(ctl, CTL_TID + p));
}

const hintFds = new Int32Array(1);

/**
 * What the last park() learnt about its hint fd, for a caller that reads the hint fd itself
 * (run to completion): true when poll(2) reported it readable (with or without the waker), or
 * when park returned before polling (the counter had moved: unknown, so "read and see").
 */
export const parkSaw = { hintReadable: false };

/** Sleep while the doorbell still reads `bell` (see the contract above). */
export function park(ctl: Int32Array, p: number, bell: number, waker: number, hint: number, timeoutMs: number): number {
  Atomics.store(ctl, CTL_PARKED + p, PARKED_IN_POLL);
  if (Atomics.load(ctl, CTL_DOORBELL + p) !== bell) {
    Atomics.store(ctl, CTL_PARKED + p, 0);
    parkSaw.hintReadable = hint >= 0;
    return PARK_RUNG;
  }
  hintFds[0] = hint;
  const r = pollMany(hintFds, hint >= 0 ? 1 : 0, waker, timeoutMs);
  Atomics.store(ctl, CTL_PARKED + p, 0);
  parkSaw.hintReadable = (r & 1) !== 0;
  if (r & POLL_MANY_WOKEN) {
    drainWake(waker);
    return PARK_RUNG;
  }
  if (r !== 0) return PARK_HINT;
  return Atomics.load(ctl, CTL_DOORBELL + p) !== bell ? PARK_RUNG : PARK_TIMEOUT;
}

/** Wake every worker (shutdown: they then see CTL_STOP). */
export function wakeAll(ctl: Int32Array, wakers: readonly number[]): void {
  for (let p = 0; p < wakers.length; p++) {
    ring(ctl, wakers, p);
    // And the eventfd whatever ring() found: a worker about to park in poll(2) returns at once.
    wake(wakers[p]!);
  }
}
