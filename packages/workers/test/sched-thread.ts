/**
 * sched-thread.ts — a worker thread for sched.test.ts: puts itself under SCHED_BATCH, says so,
 * and on the next message puts itself back under SCHED_OTHER and says so.
 */
import { parentPort } from 'node:worker_threads';
import { applyThreadPolicy } from '../src/sched.js';

applyThreadPolicy('batch', 'test thread');
parentPort?.postMessage('batch');
parentPort?.once('message', () => {
  applyThreadPolicy('normal', 'test thread');
  parentPort?.postMessage('normal');
});
