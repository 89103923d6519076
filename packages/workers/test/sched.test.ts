/**
 * sched.test.ts — `--sched`: the text form (every accepted spelling, every refusal says what
 * is wrong), and that applyThreadPolicy really changes the calling thread's policy — and only
 * that thread's — as the kernel reports it in /proc (field 41 of .../task/TID/stat).
 */
import test from 'ava';
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { getBinding } from '@masq/tun';
import { DEFAULT_SCHED, SchedSyntaxError, formatSched, parseSched, policyNumber } from '../src/sched.js';

let built = true;
try {
  getBinding();
} catch (e) {
  built = false;
  console.warn(`thread policy tests skipped: the native addon is not built (${e instanceof Error ? e.message : String(e)})`);
}
const ntest = built ? test : test.skip;

test('parseSched: one policy for both, per-thread parts, defaults fill the gaps', (t) => {
  t.deepEqual(DEFAULT_SCHED, { io: 'batch', workers: 'batch' });
  t.deepEqual(parseSched('batch'), { io: 'batch', workers: 'batch' });
  t.deepEqual(parseSched(' normal '), { io: 'normal', workers: 'normal' });
  t.deepEqual(parseSched('io=normal'), { io: 'normal', workers: 'batch' });
  t.deepEqual(parseSched('workers=normal'), { io: 'batch', workers: 'normal' });
  t.deepEqual(parseSched('workers = normal, io = batch'), { io: 'batch', workers: 'normal' });
  t.is(formatSched(parseSched('io=normal,workers=normal')), 'normal');
  t.is(formatSched(parseSched('io=normal')), 'io=normal,workers=batch');
  t.is(policyNumber('normal'), 0);
  t.is(policyNumber('batch'), 3);
});

test('parseSched refuses what it does not know, saying what is wrong', (t) => {
  const bad = (s: string, re: RegExp): void => {
    const e = t.throws(() => parseSched(s), { instanceOf: SchedSyntaxError });
    t.regex(e.message, re, s);
  };
  bad('', /^empty: use "normal", "batch", or "io=POLICY,workers=POLICY"/);
  bad('fifo', /^"fifo" is not a policy or THREADS=POLICY/);
  bad('io=fifo', /^"fifo" is not a policy/);
  bad('timer=batch', /^"timer": the threads are "io" and "workers"/);
  bad('io=batch,io=normal', /^"io" is given twice/);
  bad('io=batch,', /^"" is not a policy or THREADS=POLICY/);
  bad('BATCH', /is not a policy/);
});

/** The policy of thread `tid` of this process, from /proc (field 41 of stat). */
function policyOf(tid: number): number {
  const st = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return Number(f[41 - 3]);
}

ntest('applyThreadPolicy sets the calling thread only; normal sets it back', async (t) => {
  const tids = (): number[] => fs.readdirSync('/proc/self/task').map(Number);
  const before = new Set(tids());
  t.true([...before].every((tid) => policyOf(tid) === 0), 'every thread starts under SCHED_OTHER');
  // A worker thread sets itself to batch, reports, waits, sets itself back, reports.
  const w = new Worker(new URL('./sched-thread.js', import.meta.url));
  t.teardown(() => void w.terminate());
  const next = (): Promise<string> => new Promise((resolve) => w.once('message', resolve));
  t.is(await next(), 'batch');
  const fresh = tids().filter((tid) => !before.has(tid));
  const batch = fresh.filter((tid) => policyOf(tid) === 3);
  t.is(batch.length, 1, 'exactly the worker thread is SCHED_BATCH');
  t.true([...before].every((tid) => policyOf(tid) === 0), 'no other thread changed');
  w.postMessage('back');
  t.is(await next(), 'normal');
  t.is(policyOf(batch[0]!), 0);
});

ntest('the binding refuses other policies (real-time ones) with EINVAL', (t) => {
  const b = getBinding();
  for (const p of [1, 2, 5, 6, -1]) {
    const e = t.throws(() => b.setThreadPolicy(p));
    t.is((e as unknown as { code: string }).code, 'EINVAL', String(p));
  }
});
