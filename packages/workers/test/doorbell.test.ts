/**
 * doorbell.test.ts — the doorbell protocol (doorbell.ts) loses no wake-up: a producer thread
 * pushes 30,000 entries in random bursts and rings after each; the consumer pops and parks
 * with a 2 s timeout whenever its ring is empty. A lost wake-up shows as a park that timed out
 * while entries were waiting. Also: ring() makes no wake call while the worker is not parked.
 */
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { getBinding, setBinding, type TunBinding } from '@masq/tun';
import { Ring, ringBuffer } from '../src/ring.js';
import { park, ring } from '../src/doorbell.js';
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
  const w = new Worker(new URL('./doorbell-producer.js', import.meta.url), { workerData: { ringSab, ctlSab, count, seed } });
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
    if (!park(ctl, 0, bell, 2_000_000) && !rx.isEmpty()) lost++;
  }
  await w.terminate();
  t.is(expect, count + 1, 'every entry arrived');
  t.is(lost, 0, 'no wake-up was lost');
  t.true(parks > 100, `the consumer parked ${parks} times (the test must exercise sleeping)`);
  t.is(Atomics.load(ctl, CTL_PARKED), 0, 'not parked after the last wake');
});

ntest('ring() wakes only a parked worker; park returns at once when the doorbell already moved', (t) => {
  const calls: number[] = [];
  const real = native as TunBinding;
  const spy: TunBinding = {
    ...real,
    futexWake: (a, i, n) => {
      calls.push(i);
      return real.futexWake(a, i, n);
    },
  };
  const prev = setBinding(spy);
  try {
    const ctl = new Int32Array(new SharedArrayBuffer(CTL_SLOTS * 4));
    ring(ctl, 3);
    t.deepEqual(calls, [], 'worker 3 is running: no system call');
    t.is(Atomics.load(ctl, CTL_DOORBELL + 3), 1);
    Atomics.store(ctl, CTL_PARKED + 3, 1);
    ring(ctl, 3);
    t.deepEqual(calls, [CTL_DOORBELL + 3], 'worker 3 is parked: woken');
    Atomics.store(ctl, CTL_PARKED + 3, 0);
    const t0 = Date.now();
    t.true(park(ctl, 3, 0, 5_000_000), 'the doorbell reads 2, not 0: no sleep');
    t.true(Date.now() - t0 < 1_000);
    t.false(park(ctl, 3, 2, 10_000), 'nothing rang: timed out');
  } finally {
    setBinding(prev);
  }
});
