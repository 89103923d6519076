/**
 * @masq/tun — masq's own binding to Linux TUN devices: multi-queue, batched reads and writes
 * into (Shared)ArrayBuffer slots, poll with an eventfd waker, interface configuration.
 *
 * Owns: the TunBinding interface and its native implementation (binding.ts, native/tun.c),
 * TunDevice (device.ts), the virtio_net_hdr layout (vnet.ts), TunError (errors.ts).
 *
 * The I/O thread's calls are exported here as plain functions over the installed binding.
 * Their contract (see TunBinding): readBatch/writeBatch never throw and return a count or a
 * negative errno; poll/wake/drainWake throw only on misuse (a bad fd).
 */
import { getBinding, type PollResult } from './binding.js';

export {
  getBinding,
  loadNativeBinding,
  setBinding,
  type IfType,
  type OpenFlags,
  type OpenResult,
  type PollResult,
  type TunBinding,
} from './binding.js';
export { MAX_QUEUES, TunDevice, type OffloadOptions, type TunOpenOptions } from './device.js';
export {
  checkIfName,
  IFF_MULTI_QUEUE,
  IFF_NAPI,
  IFF_NOARP,
  IFF_NO_PI,
  IFF_PERSIST,
  IFF_POINTOPOINT,
  IFF_RUNNING,
  IFF_TAP,
  IFF_TUN,
  IFF_UP,
  IFF_VNET_HDR,
  TunError,
} from './errors.js';
export * from './vnet.js';

/** poll() result bits. */
export const POLL_TIMEOUT = 0;
export const POLL_READABLE = 1;
export const POLL_WOKEN = 2;

/** Linux errno values that the batch calls return negated. */
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const ENOBUFS = 105;
export const EBADFD = 77;

/** See TunBinding.readBatch. */
export function readBatch(
  fd: number,
  buf: Uint8Array,
  slotOffsets: Uint32Array,
  slotCap: number,
  lengths: Uint32Array,
  max: number,
): number {
  return getBinding().readBatch(fd, buf, slotOffsets, slotCap, lengths, max);
}

/** See TunBinding.writeBatch. `errors` receives [rejected count, last rejection errno]. */
export function writeBatch(
  fd: number,
  buf: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  count: number,
  errors?: Uint32Array,
): number {
  return getBinding().writeBatch(fd, buf, offsets, lengths, count, errors);
}

/** See TunBinding.poll. Blocks the calling thread up to timeoutMs (-1: forever). */
export function poll(fd: number, wakeFd: number, timeoutMs: number): PollResult {
  return getBinding().poll(fd, wakeFd, timeoutMs);
}

/** See TunBinding.pollMany: one thread waiting on every queue of a multi-queue TUN. */
export function pollMany(fds: Int32Array, count: number, wakeFd: number, timeoutMs: number): number {
  return getBinding().pollMany(fds, count, wakeFd, timeoutMs);
}

/** Bit of pollMany's result for the waker. */
export const POLL_MANY_WOKEN = 1 << 30;

/** An eventfd to wake a thread blocked in poll(). Close it with closeWaker(). */
export function createWaker(): number {
  return getBinding().eventfd();
}

/** Wake the thread polling on `efd`. Callable from any thread. */
export function wake(efd: number): void {
  getBinding().wake(efd);
}

/**
 * Park-read (see TunBinding.parkRead): true when `fd` is now blocking for parkRead; false
 * where the addon or the machine does not have it (nothing changed: the caller keeps poll(2)).
 */
export function parkReadInit(fd: number): boolean {
  const b = getBinding();
  return b.parkReadInit !== undefined && b.parkRead !== undefined && b.parkReadInit(fd) === 1;
}
export function parkReadDone(fd: number): void {
  getBinding().parkReadDone?.(fd);
}
/** See TunBinding.parkRead; only after parkReadInit(fd) returned true. */
export function parkRead(fd: number, buf: Uint8Array, off: number, cap: number, ctl: Int32Array, parkedIdx: number, bellIdx: number, bell: number, tidIdx: number): number {
  return getBinding().parkRead!(fd, buf, off, cap, ctl, parkedIdx, bellIdx, bell, tidIdx);
}
/** Interrupt a thread parked in parkRead (any thread may call it). */
export function wakeThread(tid: number): void {
  getBinding().wakeThread?.(tid);
}

/**
 * The fields of uringPass's exchange array (tun.c IO_*). In: NWRITE packets to write
 * (outOff/outLen/outSlot), NGIVE slots (give) for the kernel to read into, MAXGOT the most
 * packets to take, WAIT_MS -1 not to sleep, else the longest sleep when nothing has arrived,
 * while ctl[BELL_IDX] still reads BELL (ctl[PARKED_IDX] = 1 meanwhile: a ring writes the
 * eventfd). Out: NDONE slots (done) whose writes completed, RUNG 1 when the eventfd fired,
 * WERR/WERRNO writes rejected and the last errno, RERR/RERRNO reads failed and the last errno
 * (a failed read ends the reading for good: the queue is not read again). CLOSED_IDX (in;
 * uringOpen sets it to -1, none; each pass reads it): a ctl word where the ring's closing
 * stores URING_CLOSED once every request of the ring is cancelled — by uringClose or, when
 * the thread dies, its clean-up hook — so no slot it was given is written any more: a
 * restarted worker waits for it before taking those slots back.
 */
export const UringIo = {
  NWRITE: 0,
  NGIVE: 1,
  WAIT_MS: 2,
  PARKED_IDX: 3,
  BELL_IDX: 4,
  BELL: 5,
  MAXGOT: 6,
  NDONE: 7,
  RUNG: 8,
  WERR: 9,
  WERRNO: 10,
  RERR: 11,
  RERRNO: 12,
  CLOSED_IDX: 13,
  LENGTH: 14,
} as const;

/** What a ring's closing stores in ctl[io[UringIo.CLOSED_IDX]] (tun.c U_CLOSED). */
export const URING_CLOSED = 2;

/** -ENOSYS: what the io_uring calls return for a binding without io_uring. */
const ENOSYS = 38;

/** See TunBinding.uringOpen: a handle, or -errno (-ENOSYS when the binding has no io_uring). */
export function uringOpen(
  fd: number,
  wakeFd: number,
  pool: Uint8Array,
  slotCap: number,
  nbuf: number,
  a: { outOff: Uint32Array; outLen: Uint32Array; outSlot: Int32Array; give: Int32Array; got: Int32Array; gotLen: Uint32Array; done: Int32Array; ctl: Int32Array; io: Int32Array },
): number {
  const b = getBinding();
  if (b.uringOpen === undefined || b.uringPass === undefined) return -ENOSYS;
  return b.uringOpen(fd, wakeFd, pool, slotCap, nbuf, a.outOff, a.outLen, a.outSlot, a.give, a.got, a.gotLen, a.done, a.ctl, a.io);
}
/**
 * Whether this kernel runs what uringOpen needs (a ring with DEFER_TASKRUN, a provided-buffer
 * ring, a multishot read and poll), tried on two eventfds: 0, or -errno as uringOpen would
 * return it. -ENOSYS (-38) when the binding has no io_uring.
 */
export function uringProbe(): number {
  const b = getBinding();
  const rfd = b.eventfd();
  const wfd = b.eventfd();
  try {
    const h = uringOpen(rfd, wfd, new Uint8Array(128), 64, 1, { outOff: new Uint32Array(1), outLen: new Uint32Array(1), outSlot: new Int32Array(1), give: new Int32Array(1), got: new Int32Array(1), gotLen: new Uint32Array(1), done: new Int32Array(2), ctl: new Int32Array(1), io: new Int32Array(UringIo.LENGTH) });
    if (h >= 0) uringClose(h);
    return h >= 0 ? 0 : h;
  } finally {
    b.close(rfd);
    b.close(wfd);
  }
}
export function uringPass(h: number): number {
  return getBinding().uringPass!(h);
}
export function uringClose(h: number): void {
  getBinding().uringClose?.(h);
}

/** Reset the waker; returns the number of pending wakes. */
export function drainWake(efd: number): number {
  return getBinding().drainWake(efd);
}

/** sched_yield(2) for a thread that waits briefly on another (see TunBinding.yieldCpu). */
export function yieldCpu(): number {
  return getBinding().yieldCpu();
}

/** Scheduling policies a packet thread may run under (see TunBinding.setThreadPolicy). */
export const SCHED_OTHER = 0;
export const SCHED_BATCH = 3;

/** Set the calling thread's scheduling policy (SCHED_OTHER or SCHED_BATCH). */
export function setThreadPolicy(policy: typeof SCHED_OTHER | typeof SCHED_BATCH): void {
  getBinding().setThreadPolicy(policy);
}

export function closeWaker(efd: number): void {
  getBinding().close(efd);
}

/** 'EAGAIN' for -11: name the negative return of a batch call for logs and counters. */
export function errnoName(errno: number): string {
  return getBinding().errnoName(errno);
}
