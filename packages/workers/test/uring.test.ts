/**
 * uring.test.ts — a worker's queue through io_uring (the tun addon's uringOpen/uringPass,
 * partition-actor.ts), on a FIFO standing in for the TUN queue (a FIFO read of `cap` bytes
 * takes one fixed-size "packet"):
 *  - a pass reads what waits into the slots it was given, in the order given, and reports each
 *    packet's slot and length;
 *  - writes: each packet of a pass is written and its slot reported done; through the FIFO
 *    they come back as reads;
 *  - out of slots, the multishot read stops (ENOBUFS) and starts again when slots are given,
 *    losing nothing;
 *  - asleep in a pass: a ring of the doorbell wakes it (RUNG), a doorbell that moved before the
 *    pass keeps it from sleeping, nothing at all ends it at the timeout;
 *  - 30,000 entries in random bursts from another thread while the consumer sleeps in passes
 *    whenever its ring is empty: every entry arrives and no pass sleeps to its (2 s) timeout
 *    with a ring waiting — a lost wake-up would; the producer's FIFO packets come through;
 *  - a queue whose read fails is counted once and not read again: no busy loop;
 *  - closing the ring, by uringClose or by the clean-up hook of a thread that died with it
 *    open, cancels its requests and then marks it closed (ctl[CLOSED_IDX]): a packet that
 *    arrives afterwards is written into none of the slots it was given;
 *  - bad arguments: -EINVAL before any I/O; a closed handle: -EBADF.
 */
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { readSync, writeSync } from 'node:fs';
import { closeWaker, createWaker, getBinding, uringClose, uringOpen, uringPass, uringProbe, UringIo, URING_CLOSED, type TunBinding } from '@masq/tun';
import { Ring, ringBuffer } from '../src/ring.js';
import { fifo } from './fifo.js';
import { ring, PARKED_IN_POLL } from '../src/doorbell.js';
import { CTL_DOORBELL, CTL_PARKED, CTL_SLOTS, CTL_URING } from '../src/layout.js';

let native: TunBinding | null = null;
try {
  native = getBinding();
} catch (e) {
  console.warn(`io_uring tests skipped: the native addon is not built (${e instanceof Error ? e.message : String(e)})`);
}
// Runs wherever the kernel takes what the gateway needs (Linux 6.7+; the CI machine does).
const probe = native === null ? -38 : uringProbe();
if (native !== null && probe !== 0) console.warn(`io_uring tests skipped: this kernel refuses io_uring (${native.errnoName(probe)})`);
const utest = probe === 0 ? test : test.skip;

const EINVAL = -22;
const EBADF = -9;


/** A ring on `fd` with `slots` slots of `cap` bytes, the exchange arrays, and a pass helper. */
function open(t: { teardown(f: () => void): void; is(a: unknown, b: unknown, m?: string): void }, fd: number, slots: number, cap: number, batch = 16) {
  const waker = createWaker();
  const pool = new Uint8Array(new SharedArrayBuffer(slots * cap));
  const a = {
    outOff: new Uint32Array(batch),
    outLen: new Uint32Array(batch),
    outSlot: new Int32Array(batch),
    give: new Int32Array(slots),
    got: new Int32Array(batch),
    gotLen: new Uint32Array(batch),
    done: new Int32Array(batch + 1),
    ctl: new Int32Array(new SharedArrayBuffer(CTL_SLOTS * 4)),
    io: new Int32Array(UringIo.LENGTH),
  };
  const h = uringOpen(fd, waker, pool, cap, 16, a);
  t.is(h >= 0, true, `uringOpen: ${h}`);
  t.teardown(() => {
    uringClose(h);
    closeWaker(waker);
  });
  a.io[UringIo.PARKED_IDX] = CTL_PARKED;
  a.io[UringIo.BELL_IDX] = CTL_DOORBELL;
  /** One pass: give `give`, write `writes` ([slot, length]), take up to `max`; sleep up to waitMs (-1: no). */
  const pass = (o: { give?: number[]; writes?: [number, number][]; max?: number; waitMs?: number; bell?: number } = {}): { got: [number, string][]; done: number[]; rung: number; r: number } => {
    const give = o.give ?? [];
    give.forEach((s, i) => (a.give[i] = s));
    const w = o.writes ?? [];
    w.forEach(([s, len], i) => {
      a.outOff[i] = s * cap;
      a.outLen[i] = len;
      a.outSlot[i] = s;
    });
    a.io[UringIo.NGIVE] = give.length;
    a.io[UringIo.NWRITE] = w.length;
    a.io[UringIo.MAXGOT] = o.max ?? batch;
    a.io[UringIo.WAIT_MS] = o.waitMs ?? -1;
    a.io[UringIo.BELL] = o.bell ?? Atomics.load(a.ctl, CTL_DOORBELL);
    const r = uringPass(h);
    const got: [number, string][] = [];
    for (let i = 0; i < Math.max(0, r); i++) got.push([a.got[i]!, Buffer.from(pool.subarray(a.got[i]! * cap, a.got[i]! * cap + a.gotLen[i]!)).toString()]);
    return { got, done: Array.from(a.done.subarray(0, a.io[UringIo.NDONE])), rung: a.io[UringIo.RUNG]!, r };
  };
  return { h, pool, a, pass, waker };
}

utest('a pass reads what waits into the slots it was given, in that order, with each length', (t) => {
  const { fd } = fifo(t, 'masq-uring-');
  const u = open(t, fd, 16, 4);
  for (let i = 0; i < 6; i++) writeSync(fd, `K${String(i).padStart(3, '0')}`);
  const p = u.pass({ give: [9, 3, 12, 1, 7, 5, 2, 8] });
  t.deepEqual(p.got, [[9, 'K000'], [3, 'K001'], [12, 'K002'], [1, 'K003'], [7, 'K004'], [5, 'K005']]);
  t.deepEqual(p.done, []);
  // Nothing more waits: a pass that does not sleep takes nothing.
  t.deepEqual(u.pass().got, []);
  // The two slots left in the kernel's ring take the next packets.
  writeSync(fd, 'K006K007');
  t.deepEqual(u.pass().got, [[2, 'K006'], [8, 'K007']]);
});

utest('writes: every packet of a pass is written and its slot reported done; through the FIFO they come back', (t) => {
  const { fd } = fifo(t, 'masq-uring-');
  const u = open(t, fd, 16, 4);
  ['W001', 'W002', 'W003'].forEach((s, i) => u.pool.set(Buffer.from(s), (10 + i) * 4));
  const p = u.pass({ give: [0, 1, 2, 3], writes: [[10, 4], [11, 4], [12, 4]] });
  t.deepEqual([...p.done].sort(), [10, 11, 12]);
  // The reads of what was written: in this pass or the next.
  const back = [...p.got, ...u.pass().got];
  t.deepEqual(back, [[0, 'W001'], [1, 'W002'], [2, 'W003']]);
});

utest('out of slots the multishot read stops and, given slots again, reads on: nothing lost', (t) => {
  const { fd } = fifo(t, 'masq-uring-');
  const u = open(t, fd, 16, 4);
  for (let i = 0; i < 5; i++) writeSync(fd, `S${String(i).padStart(3, '0')}`);
  t.deepEqual(u.pass({ give: [4, 6] }).got, [[4, 'S000'], [6, 'S001']]);
  t.deepEqual(u.pass().got, [], 'no slot: nothing read');
  t.deepEqual(u.pass({ give: [1, 2, 3] }).got, [[1, 'S002'], [2, 'S003'], [3, 'S004']]);
  // And at most `max` per pass, the rest the next time.
  for (let i = 5; i < 9; i++) writeSync(fd, `S${String(i).padStart(3, '0')}`);
  t.deepEqual(u.pass({ give: [10, 11, 12, 13], max: 3 }).got, [[10, 'S005'], [11, 'S006'], [12, 'S007']]);
  t.deepEqual(u.pass().got, [[13, 'S008']]);
});

utest('asleep in a pass: a packet or a ring wakes it; a doorbell that moved before keeps it awake; otherwise the timeout', async (t) => {
  const { path, fd } = fifo(t, 'masq-uring-');
  const u = open(t, fd, 16, 4);
  u.pass({ give: [0, 1, 2, 3] });
  // Nothing comes: it sleeps the whole timeout, not parked afterwards.
  let t0 = performance.now();
  let p = u.pass({ waitMs: 60 });
  t.true(performance.now() - t0 >= 50, `slept ${(performance.now() - t0).toFixed(1)} ms of 60`);
  t.deepEqual([p.r, p.rung, Atomics.load(u.a.ctl, CTL_PARKED)], [0, 0, 0]);
  // The doorbell moved since the caller looked: no sleep at all.
  const bell = Atomics.load(u.a.ctl, CTL_DOORBELL);
  ring(u.a.ctl, [u.waker], 0);
  t0 = performance.now();
  p = u.pass({ waitMs: 10_000, bell });
  t.true(performance.now() - t0 < 5_000, 'returned without sleeping');
  t.deepEqual([p.r, p.rung], [0, 0]);
  // Rung by another thread while asleep: parked as in poll(2), so ring() writes the eventfd.
  const ringer = new Worker(
    `const { workerData } = require('node:worker_threads');
     const ctl = new Int32Array(workerData.ctl);
     const until = Date.now() + 5000;
     while (Atomics.load(ctl, workerData.parked) !== ${PARKED_IN_POLL} && Date.now() < until);
     Atomics.add(ctl, workerData.bell, 1);
     require(workerData.addon).wake(workerData.waker);`,
    { eval: true, workerData: { ctl: u.a.ctl.buffer, parked: CTL_PARKED, bell: CTL_DOORBELL, waker: u.waker, addon: addonPath() } },
  );
  t0 = performance.now();
  p = u.pass({ waitMs: 10_000 });
  t.true(performance.now() - t0 < 9_000, `woken by the ring, not the timeout (${(performance.now() - t0).toFixed(1)} ms)`);
  t.deepEqual([p.r, p.rung], [0, 1]);
  await new Promise((r) => ringer.once('exit', r));
  // A packet wakes it too, and is read by the same call (written by another thread: this one sleeps).
  const writer = new Worker(
    `const fs = require('node:fs');
     const until = Date.now() + 30;
     while (Date.now() < until);
     fs.writeSync(fs.openSync(require('node:worker_threads').workerData, 'r+'), 'PKT1');`,
    { eval: true, workerData: path },
  );
  t0 = performance.now();
  p = u.pass({ waitMs: 10_000 });
  t.true(performance.now() - t0 < 9_000, 'woken by the packet, not the timeout');
  t.deepEqual([p.got, p.rung], [[[0, 'PKT1']], 0]);
  await new Promise((r) => writer.once('exit', r));
});

/** The native addon's path, for a worker that needs only wake(). */
function addonPath(): string {
  return new URL('../../../tun/build/Release/masq_tun.node', import.meta.url).pathname;
}

utest('30,000 entries in random bursts, the consumer asleep in passes: every one arrives, no wake-up lost, packets come through', async (t) => {
  const count = 30_000;
  const { path, fd } = fifo(t, 'masq-uring-');
  const u = open(t, fd, 64, 4);
  u.pass({ give: Array.from({ length: 16 }, (_, i) => i) });
  const ringSab = ringBuffer(64);
  const rx = new Ring(ringSab);
  const seed = Date.now() & 0x7fffffff;
  t.log(`seed ${seed}`);
  const prod = new Worker(new URL('./doorbell-producer.js', import.meta.url), { workerData: { ringSab, ctlSab: u.a.ctl.buffer, count, seed, wakers: [u.waker], fifo: path } });
  const out = new Int32Array(64);
  let expect = 1;
  let passes = 0;
  let timeouts = 0;
  let packets = 0;
  let bad = '';
  const deadline = Date.now() + 90_000;
  while (expect <= count && Date.now() < deadline) {
    const bell = Atomics.load(u.a.ctl, CTL_DOORBELL);
    const n = rx.pop(out, out.length);
    for (let i = 0; i < n; i++) {
      if (out[i] !== expect) t.fail(`entry ${out[i]} where ${expect} was due`);
      expect++;
    }
    if (n > 0) continue;
    passes++;
    const t0 = performance.now();
    const p = u.pass({ waitMs: 2_000, bell });
    if (p.r < 0) t.fail(`uringPass: ${p.r}`);
    // Each packet's slot goes straight back to the kernel's ring.
    for (const [slot, s] of p.got) {
      if (!/^P\d{3}$/.test(s)) bad += s;
      packets++;
      u.a.give[0] = slot;
      u.a.io[UringIo.NGIVE] = 1;
      u.a.io[UringIo.NWRITE] = 0;
      u.a.io[UringIo.WAIT_MS] = -1;
      u.a.io[UringIo.MAXGOT] = 0;
      uringPass(u.h);
    }
    if (p.r === 0 && p.rung === 0 && performance.now() - t0 >= 1_900 && rx.depth() > 0) timeouts++;
  }
  await new Promise((r) => prod.once('exit', r));
  t.log(`${passes} passes asleep or not, ${packets} FIFO packets`);
  t.is(expect, count + 1, 'every entry arrived');
  t.is(timeouts, 0, 'no pass slept to its timeout with entries waiting (a lost wake-up)');
  t.is(bad, '', 'the FIFO packets intact');
  t.true(packets > 0, 'the FIFO packets came through the multishot read');
  t.true(passes > 100, `the consumer slept often enough to test anything: ${passes}`);
});

utest('a queue whose read fails is counted once and not read again: the next pass sleeps, it does not spin', (t) => {
  // An eventfd read into 4-byte slots fails (EINVAL: it needs 8), as a TUN read fails once the
  // device has gone (EBADFD), and stays readable: read again, it would fail in every pass.
  const efd = createWaker();
  t.teardown(() => closeWaker(efd));
  getBinding().wake(efd);
  const u = open(t, efd, 16, 4);
  let fails = 0;
  let errno = 0;
  for (let i = 0; i < 5; i++) {
    const p = i === 0 ? u.pass({ give: [0, 1, 2] }) : u.pass();
    t.deepEqual(p.got, []);
    fails += u.a.io[UringIo.RERR]!;
    if (u.a.io[UringIo.RERR]! > 0) errno = u.a.io[UringIo.RERRNO]!;
  }
  t.deepEqual([fails, errno], [1, 22], 'one failed read, EINVAL');
  const t0 = performance.now();
  const q = u.pass({ give: [3], waitMs: 60 });
  t.true(performance.now() - t0 >= 50, `slept ${(performance.now() - t0).toFixed(1)} ms of 60 instead of reading the failed queue again`);
  t.deepEqual([q.r, u.a.io[UringIo.RERR]], [0, 0]);
});

/** What the FIFO holds now (its first `n` bytes), read without the ring. */
function drain(fd: number, n: number): string {
  const b = Buffer.alloc(n);
  return b.subarray(0, readSync(fd, b, 0, n, null)).toString();
}

utest('uringClose cancels the ring\'s requests, then marks it closed: a packet after that lands in no slot it was given', (t) => {
  const { fd } = fifo(t, 'masq-uring-');
  const u = open(t, fd, 16, 4);
  u.a.io[UringIo.CLOSED_IDX] = CTL_URING;
  t.deepEqual(u.pass({ give: [0, 1, 2, 3] }).got, []);
  t.is(Atomics.load(u.a.ctl, CTL_URING), 0, 'not marked while open');
  uringClose(u.h);
  t.is(Atomics.load(u.a.ctl, CTL_URING), URING_CLOSED);
  writeSync(fd, 'LATE');
  t.is(drain(fd, 4), 'LATE', 'the packet stayed in the queue: no read was left');
  t.true(u.pool.every((x) => x === 0), 'no given slot was written');
});

utest('a thread that dies with its ring open: its clean-up hook cancels and closes the ring and marks it closed; a packet after that lands in no given slot', async (t) => {
  const { fd } = fifo(t, 'masq-uring-');
  const poolSab = new SharedArrayBuffer(16 * 4);
  const ctlSab = new SharedArrayBuffer(CTL_SLOTS * 4);
  const ctl = new Int32Array(ctlSab);
  const w = new Worker(new URL('./uring-dier.js', import.meta.url), { workerData: { fd, poolSab, ctlSab, closedIdx: CTL_URING } });
  const armed = new Promise<{ armed: number }>((resolve) => w.once('message', resolve));
  const died = new Promise<Error>((resolve) => w.once('error', resolve));
  const exited = new Promise((r) => w.once('exit', r));
  t.is((await armed).armed, 0, 'the dying thread armed its read with four slots');
  t.regex((await died).message, /dying with its ring open/);
  await exited;
  t.is(Atomics.load(ctl, CTL_URING), URING_CLOSED, 'the clean-up hook marked the ring closed');
  writeSync(fd, 'GONE');
  t.is(drain(fd, 4), 'GONE', 'the packet stayed in the queue');
  t.true(new Uint8Array(poolSab).every((x) => x === 0), 'no slot the dead ring was given was written');
});

utest('bad arguments: -EINVAL before any I/O; a closed handle: -EBADF', (t) => {
  const { fd } = fifo(t, 'masq-uring-');
  const u = open(t, fd, 16, 4);
  writeSync(fd, 'X001');
  // A slot outside the pool, given or written: refused, and nothing read meanwhile.
  t.is(u.pass({ give: [16] }).r, EINVAL);
  t.is(u.pass({ writes: [[-1, 4]] }).r, EINVAL);
  u.a.outOff[0] = 15 * 4;
  u.a.outLen[0] = 8; // past the pool's end
  u.a.outSlot[0] = 15;
  u.a.io[UringIo.NWRITE] = 1;
  u.a.io[UringIo.NGIVE] = 0;
  t.is(uringPass(u.h), EINVAL);
  u.a.io[UringIo.NWRITE] = 17; // more than the arrays hold
  t.is(uringPass(u.h), EINVAL);
  // Then a good pass reads the packet that waited.
  t.deepEqual(u.pass({ give: [0] }).got, [[0, 'X001']]);
  t.deepEqual(u.pass({ give: [1] }).got, [], 'nothing more');
  // A handle that was closed, or never was.
  const h2 = open(t, fd, 16, 4).h;
  uringClose(h2);
  t.is(uringPass(h2), EBADF);
  t.is(uringPass(63), EBADF);
  // uringOpen refuses a bad layout.
  const w = createWaker();
  t.teardown(() => closeWaker(w));
  const arrs = { outOff: new Uint32Array(4), outLen: new Uint32Array(4), outSlot: new Int32Array(4), give: new Int32Array(4), got: new Int32Array(4), gotLen: new Uint32Array(4), done: new Int32Array(4), ctl: new Int32Array(8), io: new Int32Array(UringIo.LENGTH) };
  t.is(uringOpen(fd, w, new Uint8Array(64), 4, 3, arrs), EINVAL, 'nbuf not a power of two');
  t.is(uringOpen(fd, w, new Uint8Array(64), 4, 16, { ...arrs, done: new Int32Array(2) }), EINVAL, 'done[] smaller than a pass of writes');
  t.is(uringOpen(fd, w, new Uint8Array(64), 4, 16, { ...arrs, io: new Int32Array(3) }), EINVAL, 'io[] too short');
});
