/**
 * parkread-watchdog.ts — the watchdog thread of parkread.test.ts (its producer is
 * doorbell-producer.ts): when the consumer's progress word has not moved for 2 s while the ring
 * holds entries, a wake-up was lost: it writes "WWWW" to the FIFO the consumer parks on (which
 * ends the read) and counts the rescue in ctl[RESCUES].
 */
import { workerData } from 'node:worker_threads';
import { openSync, writeSync } from 'node:fs';
import { Ring } from '../src/ring.js';

export const PROGRESS = 1;
export const RESCUES = 2;
export const DONE = 3;

const { ringSab, ctlSab, fifo } = workerData as { ringSab: SharedArrayBuffer; ctlSab: SharedArrayBuffer; fifo: string };
const r = new Ring(ringSab);
const ctl = new Int32Array(ctlSab);
const fd = openSync(fifo, 'r+');
const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

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
