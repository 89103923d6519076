/**
 * hosts-writer.ts — a worker thread for hosts.test.ts: one partition's writes to a shared
 * per-host count table (hosts.ts) over the buffer it is given: once all `writers` threads
 * have arrived at the start line (`start`, a shared counter), `rounds` times take one session
 * and one port of each host in `hosts` and give them back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HostCounts } from '../../src/hosts.js';

interface Job {
  buffer: SharedArrayBuffer;
  slots: number;
  writers: number;
  who: number;
  hosts: number[];
  rounds: number;
  start: SharedArrayBuffer;
}

const j = workerData as Job;
const hc = new HostCounts(j.slots, 0, 0, j.buffer, j.writers);
// Start together, so that the threads' sections really interleave.
const start = new Int32Array(j.start);
Atomics.add(start, 0, 1);
while (Atomics.load(start, 0) < j.writers);
let refused = 0;
for (let r = 0; r < j.rounds; r++) {
  for (const a of j.hosts) {
    if (!hc.reserve(a, 1, 1, j.who)) refused++;
    else hc.add(a, -1, -1, j.who);
  }
}
parentPort!.postMessage(refused);
