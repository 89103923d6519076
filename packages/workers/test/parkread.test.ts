/**
 * parkread.test.ts — a worker parked in read(2) (the tun addon's parkRead, doorbell.ts
 * PARKED_IN_READ) loses no wake-up: a producer thread pushes 30,000 entries in random bursts and
 * rings after each, which interrupts the read with a signal; the consumer pops and parks in
 * read(2) on a FIFO whenever its ring is empty. A lost wake-up leaves it asleep with entries
 * waiting: a watchdog thread then ends the read by writing to the FIFO and counts the rescue.
 * The producer's own writes to the FIFO (every 64th burst) come back from parkRead as packets.
 * Also: the outcomes of one parkRead (rung before the read, interrupted in it, a packet), and
 * that ring() signals only a worker parked in read.
 */
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { writeSync } from 'node:fs';
import { getBinding, parkRead, parkReadInit, setBinding, type TunBinding } from '@masq/tun';
import { Ring, ringBuffer } from '../src/ring.js';
import { fifo } from './fifo.js';
import { ring, PARKED_IN_READ } from '../src/doorbell.js';
import { CTL_DOORBELL, CTL_PARKED, CTL_SLOTS, CTL_TID } from '../src/layout.js';

let native: TunBinding | null = null;
try {
  native = getBinding();
} catch (e) {
  console.warn(`parkRead tests skipped: the native addon is not built (${e instanceof Error ? e.message : String(e)})`);
}
const ptest = native?.parkRead !== undefined && process.arch === 'x64' ? test : test.skip;

// The watchdog's shared words (parkread-watchdog.ts), past the doorbell's.
const PROGRESS = 1;
const RESCUES = 2;
const DONE = 3;


ptest('30,000 entries in random bursts, the consumer parked in read(2): every one arrives, no wake-up is lost, packets come through', async (t) => {
  const count = 30_000;
  const { path, fd } = fifo(t, 'masq-parkread-');
  t.true(parkReadInit(fd), 'the FIFO takes RWF_NOWAIT reads: parkRead is on');
  const ringSab = ringBuffer(64);
  const ctlSab = new SharedArrayBuffer(CTL_SLOTS * 4);
  const ctl = new Int32Array(ctlSab);
  const rx = new Ring(ringSab);
  const seed = Date.now() & 0x7fffffff;
  t.log(`seed ${seed}`);
  const dog = new Worker(new URL('./parkread-watchdog.js', import.meta.url), { workerData: { ringSab, ctlSab, fifo: path } });
  const prod = new Worker(new URL('./doorbell-producer.js', import.meta.url), { workerData: { ringSab, ctlSab, count, seed, wakers: [-1], fifo: path } });
  const out = new Int32Array(64);
  const buf = new Uint8Array(256);
  let expect = 1;
  let parks = 0;
  let packets = 0;
  let bad = '';
  const deadline = Date.now() + 90_000;
  while (expect <= count && Date.now() < deadline) {
    const bell = Atomics.load(ctl, CTL_DOORBELL);
    const n = rx.pop(out, out.length);
    for (let i = 0; i < n; i++) {
      if (out[i] !== expect) t.fail(`entry ${out[i]} where ${expect} was due`);
      expect++;
    }
    Atomics.store(ctl, PROGRESS, expect);
    if (n > 0) continue;
    parks++;
    const r = parkRead(fd, buf, 0, buf.length, ctl, CTL_PARKED, CTL_DOORBELL, bell, CTL_TID);
    if (r < 0) t.fail(`parkRead: ${r}`);
    if (r > 0) {
      const s = Buffer.from(buf.subarray(0, r)).toString();
      if (!/^(P\d{3}|WWWW)+$/.test(s)) bad += s;
      packets += s.split('P').length - 1;
    }
  }
  Atomics.store(ctl, DONE, 1);
  await prod.terminate();
  await dog.terminate();
  t.is(expect, count + 1, 'every entry arrived');
  t.is(Atomics.load(ctl, RESCUES), 0, 'no wake-up was lost (the watchdog never had to end a read)');
  t.is(bad, '', 'what the FIFO carried came back whole');
  t.true(packets > 0, `packets read by parkRead: ${packets}`);
  t.true(parks > 100, `the consumer parked ${parks} times (the test must exercise sleeping)`);
  t.is(Atomics.load(ctl, CTL_PARKED), 0, 'not parked after the last wake');
});

ptest('one parkRead: rung before it reads, interrupted while it sleeps, a packet; ring() signals only a worker parked in read', async (t) => {
  const { fd } = fifo(t, 'masq-parkread-');
  t.true(parkReadInit(fd));
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_SLOTS * 4));
  const buf = new Uint8Array(64);
  // The doorbell already moved: no sleep, 0.
  Atomics.store(ctl, CTL_DOORBELL, 5);
  t.is(parkRead(fd, buf, 0, 64, ctl, CTL_PARKED, CTL_DOORBELL, 4, CTL_TID), 0);
  t.is(Atomics.load(ctl, CTL_PARKED), 0);
  t.true(Atomics.load(ctl, CTL_TID) > 0, 'the thread id is published');
  // A packet waiting: read at once.
  writeSync(fd, 'abc');
  t.is(parkRead(fd, buf, 8, 56, ctl, CTL_PARKED, CTL_DOORBELL, 5, CTL_TID), 3);
  t.is(Buffer.from(buf.subarray(8, 11)).toString(), 'abc');
  // Asleep in read: a ring from another thread interrupts it.
  const w = new Worker(
    `const { workerData } = require('node:worker_threads');
     const ctl = new Int32Array(workerData.sab);
     Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
     Atomics.add(ctl, workerData.bellIdx, 1);
     if (Atomics.load(ctl, workerData.parkedIdx) === ${PARKED_IN_READ}) require(workerData.addon).wakeThread(Atomics.load(ctl, workerData.tidIdx));`,
    { eval: true, workerData: { sab: ctl.buffer, bellIdx: CTL_DOORBELL, parkedIdx: CTL_PARKED, tidIdx: CTL_TID, addon: addonPath() } },
  );
  const t0 = Date.now();
  t.is(parkRead(fd, buf, 0, 64, ctl, CTL_PARKED, CTL_DOORBELL, 5, CTL_TID), 0, 'interrupted: 0, as rung');
  const slept = Date.now() - t0;
  t.true(slept >= 150 && slept < 5_000, `it slept until rung (${slept} ms)`);
  await w.terminate();
  // ring(): a signal only when parked in read.
  const calls: number[] = [];
  const real = native as TunBinding;
  const prev = setBinding({ ...real, wakeThread: (tid) => void calls.push(tid), wake: () => calls.push(-1) });
  try {
    ring(ctl, [-1], 0);
    t.deepEqual(calls, [], 'running: no call');
    Atomics.store(ctl, CTL_PARKED, PARKED_IN_READ);
    Atomics.store(ctl, CTL_TID, 4242);
    ring(ctl, [-1], 0);
    t.deepEqual(calls, [4242], 'parked in read: its thread is signalled');
    Atomics.store(ctl, CTL_PARKED, 0);
  } finally {
    setBinding(prev);
  }
});

/** Where the addon is, for a thread that loads it by itself. */
function addonPath(): string {
  return new URL('../../../tun/build/Release/masq_tun.node', import.meta.url).pathname;
}
