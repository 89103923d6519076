/**
 * doorbell.test.ts — the doorbell protocol (doorbell.ts) loses no wake-up: a producer thread
 * pushes 30,000 entries in random bursts and rings after each; the consumer pops and parks
 * with a 2 s timeout whenever its ring is empty. A lost wake-up shows as a park that timed out
 * while entries were waiting. Also: ring() makes no wake call while the worker is not parked;
 * park's three outcomes (rung, hint fd readable, timeout).
 */
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { getBinding, setBinding, type TunBinding } from '@masq/tun';
import { Ring, ringBuffer } from '../src/ring.js';
import { park, parkSaw, ring, PARK_HINT, PARK_RUNG, PARK_TIMEOUT } from '../src/doorbell.js';
import { CTL_DOORBELL, CTL_PARKED, CTL_SLOTS } from '../src/layout.js';

let native: TunBinding | null = null;
try {
  native = getBinding();
} catch (e) {
  console.warn(`doorbell tests skipped: the native addon is not built (${e instanceof Error ? e.message : String(e)})`);
}
const ntest = native ? test : test.skip;

ntest('30,000 entries in random bursts: every one arrives in order, no park times out with entries waiting', async (t) => {
  const count = 30_000;
  const ringSab = ringBuffer(64);
  const ctlSab = new SharedArrayBuffer(CTL_SLOTS * 4);
  const ctl = new Int32Array(ctlSab);
  const rx = new Ring(ringSab);
  const seed = Date.now() & 0x7fffffff;
  t.log(`seed ${seed}`);
  const b = native as TunBinding;
  const waker = b.eventfd();
  t.teardown(() => b.close(waker));
  const w = new Worker(new URL('./doorbell-producer.js', import.meta.url), { workerData: { ringSab, ctlSab, count, seed, wakers: [waker] } });
  const out = new Int32Array(64);
  let expect = 1;
  let parks = 0;
  let lost = 0;
  const deadline = Date.now() + 60_000;
  while (expect <= count && Date.now() < deadline) {
    const bell = Atomics.load(ctl, CTL_DOORBELL);
    const n = rx.pop(out, out.length);
    for (let i = 0; i < n; i++) {
      if (out[i] !== expect) t.fail(`entry ${out[i]} where ${expect} was due`);
      expect++;
    }
    if (n > 0) continue;
    parks++;
    if (park(ctl, 0, bell, waker, -1, 2_000) === PARK_TIMEOUT && !rx.isEmpty()) lost++;
  }
  await w.terminate();
  t.is(expect, count + 1, 'every entry arrived');
  t.is(lost, 0, 'no wake-up was lost');
  t.true(parks > 100, `the consumer parked ${parks} times (the test must exercise sleeping)`);
  t.is(Atomics.load(ctl, CTL_PARKED), 0, 'not parked after the last wake');
});

ntest('ring() wakes only a parked worker; park: rung at once when the doorbell moved, hint, timeout', (t) => {
  const calls: number[] = [];
  const real = native as TunBinding;
  const spy: TunBinding = {
    ...real,
    wake: (efd) => {
      calls.push(efd);
      real.wake(efd);
    },
  };
  const waker = real.eventfd();
  const hint = real.eventfd();
  const prev = setBinding(spy);
  try {
    const ctl = new Int32Array(new SharedArrayBuffer(CTL_SLOTS * 4));
    const wakers = [-1, -1, -1, waker];
    ring(ctl, wakers, 3);
    t.deepEqual(calls, [], 'worker 3 is running: no system call');
    t.is(Atomics.load(ctl, CTL_DOORBELL + 3), 1);
    Atomics.store(ctl, CTL_PARKED + 3, 1);
    ring(ctl, wakers, 3);
    t.deepEqual(calls, [waker], 'worker 3 is parked: woken');
    Atomics.store(ctl, CTL_PARKED + 3, 0);
    // The waker was written: a park with the current doorbell value returns at once, drained.
    t.is(park(ctl, 3, 2, waker, -1, 5_000), PARK_RUNG);
    t.is(real.drainWake(waker), 0, 'park drained the waker');
    const t0 = Date.now();
    t.is(park(ctl, 3, 0, waker, -1, 5_000), PARK_RUNG, 'the doorbell reads 2, not 0: no sleep');
    t.true(Date.now() - t0 < 1_000);
    t.is(Atomics.load(ctl, CTL_PARKED + 3), 0);
    t.is(park(ctl, 3, 2, waker, -1, 10), PARK_TIMEOUT, 'nothing rang: timed out');
    t.is(park(ctl, 3, 2, waker, hint, 10), PARK_TIMEOUT, 'the hint fd is not readable either');
    t.false(parkSaw.hintReadable);
    real.wake(hint);
    t.is(park(ctl, 3, 2, waker, hint, 5_000), PARK_HINT, 'only the hint fd is readable');
    t.true(parkSaw.hintReadable);
    t.is(park(ctl, 3, 2, waker, -1, 10), PARK_TIMEOUT, 'without the hint fd it sleeps');
    t.false(parkSaw.hintReadable);
    // Rung and the hint readable at once: RUNG, and parkSaw says the queue is readable too.
    real.wake(waker);
    t.is(park(ctl, 3, 2, waker, hint, 5_000), PARK_RUNG);
    t.true(parkSaw.hintReadable, 'the hint fd was readable as well');
    // The doorbell moved before the sleep: the hint was not polled, so "read and see".
    t.is(park(ctl, 3, 0, waker, hint, 5_000), PARK_RUNG);
    t.true(parkSaw.hintReadable);
    t.is(park(ctl, 3, 0, waker, -1, 5_000), PARK_RUNG);
    t.false(parkSaw.hintReadable, 'no hint fd: nothing to read');
  } finally {
    setBinding(prev);
    real.close(waker);
    real.close(hint);
  }
});
