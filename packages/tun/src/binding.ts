/**
 * binding.ts — the TunBinding interface (what masq needs from a TUN driver binding) and the
 * loader of the native one (build/Release/masq_tun.node, from native/tun.c).
 *
 * Contract:
 *  - Control functions throw an Error whose `.code` is an errno name ('EPERM', 'ENOENT', ...),
 *    `.errno` the negative errno and `.syscall` the failing call; the message says what to do.
 *  - The hot-path functions readBatch and writeBatch never throw and never allocate: they return
 *    a count >= 0 or a negative errno (-EINVAL for bad arguments, checked before any I/O).
 *  - Buffers may be views over an ArrayBuffer or a SharedArrayBuffer.
 *  - Another implementation (a fake for tests, a different driver) can be installed with
 *    setBinding(); TunDevice and the exported batch functions use whatever is installed.
 *  - The native module is loaded on first use, not at import, so that code which only needs the
 *    types or constants does not depend on the compiled addon.
 */
import { createRequire } from 'node:module';

export interface OpenFlags {
  readonly multiQueue: boolean;
  readonly vnetHdr: boolean;
}

export interface OpenResult {
  /** The queue's file descriptor (O_NONBLOCK | O_CLOEXEC). */
  readonly fd: number;
  /** The interface name the kernel used (differs from the request only for a `%d` template). */
  readonly name: string;
}

export interface IfType {
  readonly name: string;
  /** IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE | IFF_VNET_HDR | IFF_PERSIST ... as TUNGETIFF reports. */
  readonly flags: number;
}

/** poll() result bits: 0 timeout, 1 the TUN fd is readable (or in error), 2 woken, 3 both. */
export type PollResult = 0 | 1 | 2 | 3;

export interface TunBinding {
  /** Open /dev/net/tun and attach to (or create) `name` with IFF_TUN | IFF_NO_PI. One call = one queue. */
  open(name: string, flags: OpenFlags): OpenResult;

  /**
   * Read up to `max` packets: packet i into buf[slotOffsets[i] ..+ slotCap), its length into
   * lengths[i]. Returns the count (0 when nothing is ready: EAGAIN), or -errno when the first
   * read fails. -EINVAL when any of the `max` slots does not fit in `buf` (checked up front).
   */
  readBatch(
    fd: number,
    buf: Uint8Array,
    slotOffsets: Uint32Array,
    slotCap: number,
    lengths: Uint32Array,
    max: number,
  ): number;

  /**
   * Write packets 0..count-1 (buf[offsets[i] ..+ lengths[i])). Returns how many were CONSUMED
   * (written or rejected by the kernel), stopping early only at EAGAIN or an fd-level error;
   * -errno when nothing was consumed because the fd failed (EBADF...); -EINVAL for a packet
   * outside `buf`. If `errors` (Uint32Array, length >= 2) is passed it is overwritten with
   * [packets rejected in this call (EINVAL/EIO/EMSGSIZE/ENOMEM/ENOBUFS), last rejection errno].
   */
  writeBatch(
    fd: number,
    buf: Uint8Array,
    offsets: Uint32Array,
    lengths: Uint32Array,
    count: number,
    errors?: Uint32Array,
  ): number;

  /** poll(2) for POLLIN on fd and wakeFd (-1: none). timeoutMs -1 waits forever. EINTR gives 0. */
  poll(fd: number, wakeFd: number, timeoutMs: number): PollResult;
  /**
   * poll(2) for POLLIN on fds[0..count) (count ≤ 30: the queues of a multi-queue TUN) and
   * wakeFd. Returns a mask: bit i for fds[i] readable (or in error), bit 30 when woken, 0 on
   * timeout or EINTR.
   */
  pollMany(fds: Int32Array, count: number, wakeFd: number, timeoutMs: number): number;

  /**
   * Park a worker in read(2) on its own queue (native/tun.c "parkRead"): `parkReadInit(fd)`
   * makes the fd blocking and returns 1 where that is safe (x86-64, and reads of it can still
   * be asked not to block: readBatch uses preadv2(RWF_NOWAIT)), else 0 and changes nothing.
   * `parkRead` stores the calling thread's id at ctl[tidIdx] and 2 at ctl[parkedIdx], and
   * sleeps in read(2) into buf[off, off + cap) unless ctl[bellIdx] !== bell; returns the
   * packet's length, 0 when rung (wakeThread) or interrupted, or -errno. `wakeThread(tid)`
   * interrupts it (a signal; a lost wake-up is impossible, see tun.c). `parkReadDone(fd)`
   * makes the fd non-blocking again. Absent in an older build of the addon.
   */
  parkReadInit?(fd: number): number;
  parkReadDone?(fd: number): number;
  parkRead?(fd: number, buf: Uint8Array, off: number, cap: number, ctl: Int32Array, parkedIdx: number, bellIdx: number, bell: number, tidIdx: number): number;
  wakeThread?(tid: number): void;

  /**
   * A worker's TUN queue through one io_uring (native/tun.c "uringOpen"; Linux 6.7+): a
   * multishot read into slots of `pool` the worker gives the kernel (buffer id = slot, slot i
   * at i × slotCap), a multishot poll on `wakeFd`, and writes, one io_uring_enter(2) per pass.
   * The arrays are registered once and exchanged through `io` (UringIo): uringPass(h) takes
   * no other argument. Returns a handle ≥ 0 or -errno (-EINVAL for a kernel without multishot
   * reads, -EPERM/-ENOSYS where io_uring is disabled). Only the thread that opened it may pass;
   * it is closed by uringClose or when that thread's environment goes away. Absent in an older
   * build of the addon.
   */
  uringOpen?(
    fd: number,
    wakeFd: number,
    pool: Uint8Array,
    slotCap: number,
    nbuf: number,
    outOff: Uint32Array,
    outLen: Uint32Array,
    outSlot: Int32Array,
    give: Int32Array,
    got: Int32Array,
    gotLen: Uint32Array,
    done: Int32Array,
    ctl: Int32Array,
    io: Int32Array,
  ): number;
  /** One pass (see UringIo): packets read (slots in `got`, lengths in `gotLen`) or -errno. */
  uringPass?(h: number): number;
  uringClose?(h: number): number;

  /** A non-blocking eventfd for waking a thread blocked in poll(). */
  eventfd(): number;
  /** Make the eventfd readable. Any thread may call it. */
  wake(efd: number): void;
  /** sched_yield(2): let another runnable thread on this CPU go first. Returns 0. */
  yieldCpu(): number;
  /**
   * sched_setscheduler(2) on the calling thread: 0 = SCHED_OTHER, 3 = SCHED_BATCH (static
   * priority 0, no privilege needed). Throws EINVAL for any other policy.
   */
  setThreadPolicy(policy: number): void;
  /** Reset the eventfd; returns the number of wakes that were pending (0 if none). */
  drainWake(efd: number): number;
  close(fd: number): void;

  setMtu(name: string, mtu: number): void;
  getMtu(name: string): number;
  setUp(name: string, up: boolean): void;
  setTxQueueLen(name: string, n: number): void;
  getTxQueueLen(name: string): number;
  /** `addr` is a uint32 in host order (10.0.0.1 = 0x0a000001); sets address and netmask. */
  setAddress(name: string, addr: number, prefixLen: number): void;
  /** SIOCGIFFLAGS: IFF_UP, IFF_RUNNING, ... */
  getFlags(name: string): number;
  /** TUNSETOFFLOAD with TUN_F_* bits (passed by value). */
  setOffload(fd: number, flags: number): void;
  /**
   * Load a BPF_PROG_TYPE_SOCKET_FILTER program (struct bpf_insn[], 8 bytes each) and attach it
   * to the device of `fd` with TUNSETSTEERINGEBPF: each packet goes to queue (its return value
   * modulo the queues). null detaches it. Throws a TunError (with the verifier's log) when the
   * kernel refuses. Optional: stand-in bindings may leave it out.
   */
  setSteeringProgram?(fd: number, insns: Uint8Array | null): void;
  /** TUNSETVNETHDRSZ (>= 10). */
  setVnetHdrSize(fd: number, n: number): void;
  /** TUNGETIFF on an attached fd. */
  getIfType(fd: number): IfType;
  /** 'EAGAIN' for 11 or -11: for logging the negative returns of the batch calls. */
  errnoName(errno: number): string;
}

const NATIVE_PATH = '../../build/Release/masq_tun.node';

let native: TunBinding | null = null;
let active: TunBinding | null = null;

/** Load (once) and return the native binding. Throws with build instructions if it is missing. */
export function loadNativeBinding(): TunBinding {
  if (native) return native;
  const require = createRequire(import.meta.url);
  try {
    native = require(NATIVE_PATH) as TunBinding;
  } catch (e: unknown) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new Error(
      `@masq/tun: cannot load the native addon (${NATIVE_PATH}): ${detail}. ` +
        'Build it with: pnpm --filter @masq/tun run build:native',
      { cause: e },
    );
  }
  return native;
}

/** The binding in use: the one installed by setBinding(), else the native one. */
export function getBinding(): TunBinding {
  return active ?? (active = loadNativeBinding());
}

/** Install another binding (null restores the native one). Returns the previous one, if any. */
export function setBinding(b: TunBinding | null): TunBinding | null {
  const prev = active;
  active = b;
  return prev;
}
