/**
 * uring-dier.ts — a worker thread for uring.test.ts: opens an io_uring on the FIFO `fd`, gives
 * the kernel slots 0-3 of the shared `pool`, names ctl[closedIdx] for the closing mark, tells
 * the test it is armed, and then dies of an uncaught exception (as a crashed partition worker
 * does) without closing anything: its environment's clean-up hook must.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createWaker, uringOpen, uringPass, UringIo } from '@masq/tun';

const { fd, poolSab, ctlSab, closedIdx } = workerData as { fd: number; poolSab: SharedArrayBuffer; ctlSab: SharedArrayBuffer; closedIdx: number };
const a = {
  outOff: new Uint32Array(4),
  outLen: new Uint32Array(4),
  outSlot: new Int32Array(4),
  give: new Int32Array(16),
  got: new Int32Array(4),
  gotLen: new Uint32Array(4),
  done: new Int32Array(5),
  ctl: new Int32Array(ctlSab),
  io: new Int32Array(UringIo.LENGTH),
};
const h = uringOpen(fd, createWaker(), new Uint8Array(poolSab), 4, 16, a);
if (h < 0) throw new Error(`uringOpen: ${h}`);
a.io[UringIo.CLOSED_IDX] = closedIdx;
a.io[UringIo.PARKED_IDX] = -1;
a.io[UringIo.BELL_IDX] = -1;
[0, 1, 2, 3].forEach((s, i) => (a.give[i] = s));
a.io[UringIo.NGIVE] = 4;
a.io[UringIo.WAIT_MS] = -1;
a.io[UringIo.MAXGOT] = 4;
const r = uringPass(h);
parentPort!.postMessage({ armed: r });
setImmediate(() => {
  throw new Error('uring-dier: dying with its ring open');
});
