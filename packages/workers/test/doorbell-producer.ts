/**
 * doorbell-producer.ts — the producer thread of doorbell.test.ts and parkread.test.ts: pushes
 * 1..count into a ring in bursts of random size with random short pauses (so the consumer
 * parks often), ringing the doorbell after each burst exactly as the I/O thread does. Given a
 * `fifo` (parkread.test.ts: the consumer parks in read(2) on it), every 64th burst also writes
 * a 4-byte "packet" there: P and three digits.
 */
import { workerData } from 'node:worker_threads';
import { openSync, writeSync } from 'node:fs';
import { Ring } from '../src/ring.js';
import { ring } from '../src/doorbell.js';

const { ringSab, ctlSab, count, seed, wakers, fifo } = workerData as { ringSab: SharedArrayBuffer; ctlSab: SharedArrayBuffer; count: number; seed: number; wakers: number[]; fifo?: string };
const fifoFd = fifo === undefined ? -1 : openSync(fifo, 'r+');
let bursts = 0;
const r = new Ring(ringSab);
const ctl = new Int32Array(ctlSab);
let s = seed >>> 0 || 1;
const rnd = (n: number): number => {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>> 0) % n;
};
let next = 1;
while (next <= count) {
  const burst = 1 + rnd(8);
  for (let i = 0; i < burst && next <= count; i++) {
    while (!r.push(next)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0.05);
    next++;
  }
  ring(ctl, wakers, 0);
  if (fifoFd >= 0 && ++bursts % 64 === 0) writeSync(fifoFd, `P${String(bursts % 1000).padStart(3, '0')}`);
  // Pause 0-~60 µs now and then, so the consumer drains the ring and parks.
  if (rnd(4) === 0) {
    const until = performance.now() + rnd(60) / 1000;
    while (performance.now() < until);
  }
}
