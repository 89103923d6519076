/**
 * parkread-helper.ts — the second thread of parkread.test.ts, in one of two roles:
 *  - producer: pushes 1..count into a ring in bursts of random size with random short pauses,
 *    ringing the doorbell after each burst exactly as a peer worker does (doorbell.ts ring:
 *    a signal to a worker parked in read(2)); every 64th burst it also writes a 4-byte
 *    "packet" (P + 3 digits) to the FIFO the consumer parks on;
 *  - watchdog: when the consumer's progress word has not moved for 2 s while the ring holds
 *    entries, a wake-up was lost: it writes "WWWW" to the FIFO (which ends the read) and
 *    counts the rescue in ctl[RESCUES].
 */
import { workerData } from 'node:worker_threads';
import { openSync, writeSync } from 'node:fs';
import { Ring } from '../src/ring.js';
import { ring } from '../src/doorbell.js';

export const PROGRESS = 1;
export const RESCUES = 2;
export const DONE = 3;

const { role, ringSab, ctlSab, count, seed, fifo } = workerData as { role: 'producer' | 'watchdog'; ringSab: SharedArrayBuffer; ctlSab: SharedArrayBuffer; count: number; seed: number; fifo: string };
const r = new Ring(ringSab);
const ctl = new Int32Array(ctlSab);
const fd = openSync(fifo, 'r+');
const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

if (role === 'producer') {
  let s = seed >>> 0 || 1;
  const rnd = (n: number): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
  let next = 1;
  let bursts = 0;
  while (next <= count) {
    const burst = 1 + rnd(8);
    for (let i = 0; i < burst && next <= count; i++) {
      while (!r.push(next)) sleep(0.05);
      next++;
    }
    ring(ctl, [-1], 0);
    if (++bursts % 64 === 0) writeSync(fd, `P${String(bursts % 1000).padStart(3, '0')}`);
    if (rnd(4) === 0) {
      const until = performance.now() + rnd(60) / 1000;
      while (performance.now() < until);
    }
  }
} else {
  let last = -1;
  let since = Date.now();
  while (Atomics.load(ctl, DONE) === 0) {
    sleep(100);
    const p = Atomics.load(ctl, PROGRESS);
    if (p !== last) {
      last = p;
      since = Date.now();
    } else if (!r.isEmpty() && Date.now() - since > 2_000) {
      Atomics.add(ctl, RESCUES, 1);
      writeSync(fd, 'WWWW');
      since = Date.now();
    }
  }
}
