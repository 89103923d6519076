/**
 * layout.ts — THE shared-memory protocol of the gateway. Every SharedArrayBuffer the threads
 * share, every slot of it, and who writes it, is declared here and nowhere else.
 *
 *   pool        packet slots: `slots` × `slotSize` bytes. A slot belongs to exactly one thread
 *               at a time; ownership moves with its index through the rings below. Every slot
 *               has ALG_HEADROOM bytes beyond the largest packet it is read with, so a
 *               protocol helper can grow a packet in place (slotSizeFor).
 *   lens        Int32Array[slots]: packet length in each slot (written by the slot's owner).
 *   control     Int32Array: STOP flag, per-partition doorbells and parked flags (see CTL_*,
 *               and doorbell.ts for the protocol).
 *   clock       Float64Array[1]: "now" in ms, written only by the timer actor (and once by the
 *               supervisor before any reader starts); read once per batch by every packet thread.
 *               Plain stores and loads, no Atomics (Atomics has no Float64): the ECMAScript memory
 *               model does not promise that an unordered Float64 access is tear-free, but V8 on
 *               the platforms masq runs on (x86-64, arm64) compiles an aligned Float64Array element
 *               access to one 8-byte load or store, which those CPUs perform single-copy atomic;
 *               the slot is 8-byte aligned (its own SharedArrayBuffer). A reader therefore sees the
 *               previous or the new time, never a mix, and a time one tick (TICK ms) late only
 *               delays an expiry or a timer refresh by that tick.
 *   rx[p]       ring I/O thread → partition p: entries (slot << 2 | direction).
 *   free[p]     ring partition p → I/O thread: recycled slot indices.
 *   handoff[a][b] ring partition a → partition b: hairpinned packets (slot << 2 | direction).
 *   nominate[p] ring timer → partition p: session ids that looked expired.
 *   held        Uint8[slots]: which partition's io_uring holds a slot (GatewayMemory.held).
 *   tables[p]   partition p's masquerade table (packages/core table.ts layout), written only by
 *               partition p's actor; read by the timer (nomination) and listings.
 *   pins        the pinned-endpoint table (core alg/pins.ts): region p written only by partition
 *               p, read by the I/O thread before it hashes an outbound packet.
 *   ioCounters  a core counters block (counters.ts) written only by the I/O thread (drops at
 *               classification, passes).
 *   workerStats, ioStats  statistics for the metrics actor (layout below), one writer per slot.
 *
 * Rings are single-producer/single-consumer, power-of-two sized (ring.ts).
 */
import { ringBuffer } from './ring.js';
import { pinBytes } from '@masq/core';

export const CTL_STOP = 0;
/** Per-partition doorbell counters start here: the I/O thread (or a peer) bumps them (doorbell.ts). */
export const CTL_DOORBELL = 16;
/**
 * Per-partition "parked" flags: 1 while partition p's worker sleeps in poll(2) on its doorbell
 * (woken through its eventfd), 2 while it sleeps in read(2) on its TUN queue (woken by a signal
 * to thread CTL_TID + p); doorbell.ts.
 */
export const CTL_PARKED = 16 + 64;
/** Per-partition thread ids: the kernel's id of the worker that last parked in read(2) (doorbell.ts). */
export const CTL_TID = 16 + 64 + 64;
/**
 * Per-partition io_uring state: URING_NONE, URING_OPEN (stored by the worker before its ring
 * holds any slot) or URING_CLOSED (stored by the addon once that ring's requests are cancelled
 * and it is closed: tun.c, by uringClose or the dead thread's clean-up hook). A restarted
 * worker takes back the slots `held` marks as its partition's only after URING_CLOSED.
 */
export const CTL_URING = 16 + 64 + 64 + 64;
export const URING_NONE = 0;
export const URING_OPEN = 1;
export const CTL_SLOTS = 16 + 64 + 64 + 64 + 64;

/**
 * Statistics blocks, besides the partitions' own blocks (@masq/core counters.ts): the
 * worker-stats block and the io-stats block, read by the metrics actor (@masq/metrics, which
 * imports this layout; the gateway knows nothing of metrics).
 *
 * Worker-stats block: one row per worker, WORKER_STAT_STRIDE float64s apart, row w starting
 * at w * WORKER_STAT_STRIDE; the row order is the order of the worker names given to the
 * metrics actor.
 *
 *   slot  name              kind     written by
 *   0     RING_DEPTH        gauge    the worker itself, after each pop from its input ring
 *   1     RING_CAPACITY     gauge    the supervisor, once, when it creates the ring
 *   2     BATCHES           counter  the worker, after each batch
 *   3     PACKETS           counter  the worker, after each batch (+ packets in the batch)
 *   4     RESTARTS          counter  the supervisor, when it restarts the worker
 *   5     TUN_WRITES        counter  the worker, packets it wrote to the TUN
 *   6     TUN_WRITE_ERRORS  counter  the worker, packets the kernel refused
 *   7     TUN_READS         counter  the worker, packets it read from its own TUN queue
 *                                    (run to completion: spec.ts `runToCompletion`)
 *   8     TUN_READ_ERRORS   counter  the worker, failed reads of its queue
 *   9     IPV6_IGNORED      counter  the worker, IPv6 packets it read and discarded
 *   10    READ_BATCHES      counter  the worker, reads of its queue that returned packets
 *   11    HANDED_OVER       counter  the worker, packets read from its queue that another
 *                                    worker owns, handed over by ring (flow steering misses)
 *   12    UDP_SUPERS        counter  the worker, UDP super-packets it wrote (coalesce.ts; each
 *                                    one counts once in TUN_WRITES, as a TCP super-packet does)
 *   13    UDP_JOINED        counter  the worker, datagrams that went out inside those
 *   14    URING_PASSES      counter  the worker, its io_uring passes
 *   15    SLOTS_RECLAIMED   counter  the worker, at start: packet slots its dead predecessor's
 *                                    io_uring held, taken back once that ring was closed
 *
 * Io-stats block: IO_STAT_SLOTS float64s, written only by the I/O thread.
 *
 *   slot  name              kind
 *   0     TUN_READS         counter  packets read from the TUN device
 *   1     TUN_READ_ERRORS   counter  failed reads (not counting "would block")
 *   2     TUN_WRITES        counter  packets written to the TUN device
 *   3     TUN_WRITE_ERRORS  counter  failed writes (not counting "would block")
 *   4     IPV6_IGNORED      counter  IPv6 packets read and discarded
 *   5     BATCH_SIZE_SUM    counter  packets in all read batches
 *   6     BATCH_COUNT       counter  read batches
 *
 * Each slot has exactly one writer, which stores with plain `+=` / `=`; readers read at any
 * time without Atomics. That is safe for the same reason as the partition blocks: an aligned
 * 8-byte store is not torn (see the clock above), and a reader that sees a counter one batch
 * late only shifts an increment to the next scrape. A row is 128 bytes (two cache lines) so that
 * workers bumping their own rows never write the same line. Both blocks live in
 * SharedArrayBuffers; a copied array would never change. Counters survive worker restarts:
 * the supervisor keeps the block, the new worker continues from the old values.
 */
export const WORKER_STAT = {
  RING_DEPTH: 0,
  RING_CAPACITY: 1,
  BATCHES: 2,
  PACKETS: 3,
  RESTARTS: 4,
  /** Packets this worker wrote to the TUN (each worker writes its own translations). */
  TUN_WRITES: 5,
  /** Of those, packets the kernel refused. */
  TUN_WRITE_ERRORS: 6,
  /** Run to completion: packets this worker read from its own TUN queue. */
  TUN_READS: 7,
  TUN_READ_ERRORS: 8,
  IPV6_IGNORED: 9,
  /** Reads of its queue that returned packets (TUN_READS / READ_BATCHES: the mean batch). */
  READ_BATCHES: 10,
  /** Packets read from its queue that another worker owns (handed over by ring). */
  HANDED_OVER: 11,
  /** UDP super-packets written (coalesce.ts); each counts once in TUN_WRITES. */
  UDP_SUPERS: 12,
  /** Datagrams that went out inside those super-packets. */
  UDP_JOINED: 13,
  /** io_uring passes (one io_uring_enter(2) each: a batch of writes and the reads that came). */
  URING_PASSES: 14,
  /** Packet slots a dead predecessor's io_uring held, taken back at start (partition-actor.ts). */
  SLOTS_RECLAIMED: 15,
} as const;

/** Used slots per worker row. */
export const WORKER_STAT_SLOTS = 16;
/** Float64s from one row to the next: 16 × 8 bytes = two cache lines. */
export const WORKER_STAT_STRIDE = 16;

/** Index of `slot` in worker `worker`'s row. */
export function workerStatIndex(worker: number, slot: number): number {
  return worker * WORKER_STAT_STRIDE + slot;
}

/** Slot offsets within the io-stats block. */
export const IO_STAT = {
  TUN_READS: 0,
  TUN_READ_ERRORS: 1,
  TUN_WRITES: 2,
  TUN_WRITE_ERRORS: 3,
  IPV6_IGNORED: 4,
  BATCH_SIZE_SUM: 5,
  BATCH_COUNT: 6,
} as const;

export const IO_STAT_SLOTS = 7;

/** A zeroed worker-stats block for `workers` rows, over a SharedArrayBuffer. */
export function allocWorkerStats(workers: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(workers * WORKER_STAT_STRIDE * 8));
}

/** A zeroed io-stats block over a SharedArrayBuffer. */
export function allocIoStats(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(IO_STAT_SLOTS * 8));
}

/**
 * Room a protocol helper may grow a packet by, in place (a rewritten FTP `PORT`/`227` or
 * `EPRT` is at most 18 bytes longer than the shortest original; RTSP `Transport:` and DCC
 * lines a few more). translate() is told the slot's room and refuses (counts no_room) a
 * rewrite beyond it.
 */
export const ALG_HEADROOM = 256;

/**
 * Slot size for packets of up to `maxPacket` bytes behind `vnetHdr` bytes of virtio header:
 * the packet, the header, ALG_HEADROOM, rounded up to a cache line, at least 2048.
 */
export function slotSizeFor(maxPacket: number, vnetHdr: number): number {
  return Math.max(2048, (maxPacket + vnetHdr + ALG_HEADROOM + 63) & ~63);
}

/**
 * Capacity of each worker-to-worker ring. They carry hairpin hand-offs and, when workers read
 * their own TUN queues, the packets that landed on another worker's queue and the slots going
 * back to the worker they came from (an entry ~slot). Room for a fair share of the pool many
 * times over; a producer that still finds one full sends a slot back by way of the I/O thread
 * (its free ring holds every slot), so no slot is ever lost.
 */
export function handoffCapacity(partitions: number, slots: number): number {
  let c = 1024;
  while (c < slots && c < (4 * slots) / partitions) c *= 2;
  return c;
}

/**
 * The slots each reader takes its reads from: reader r in 0..partitions-1 is worker r (when
 * it reads its own queue), reader `partitions` is the I/O thread; reader r's home is
 * [bounds[r], bounds[r+1]). A slot goes back to its home's free stack when done with.
 */
export function slotHomes(partitions: number, slots: number, workersRead: boolean, ioReads: boolean): number[] {
  const readers = (workersRead ? partitions : 0) + (ioReads ? 1 : 0);
  const share = Math.floor(slots / Math.max(1, readers));
  const b: number[] = [0];
  for (let r = 1; r <= partitions; r++) b.push(workersRead ? (r === partitions && !ioReads ? slots : r * share) : 0);
  b.push(slots);
  return b;
}

/** Where a worker's slot stack (GatewayMemory.stacks) starts: [0] is its depth. */
export const STACK_DATA = 2;

/** Fill worker p's stack with its home (done once, by the supervisor, before any worker starts). */
export function fillStack(mem: GatewayMemory, p: number, homes: readonly number[]): void {
  const st = new Int32Array(mem.stacks[p]!);
  let sp = 0;
  for (let i = homes[p + 1]! - 1; i >= homes[p]!; i--) st[STACK_DATA + sp++] = i;
  st[0] = sp;
}

export interface GatewayMemory {
  slots: number;
  slotSize: number;
  ringCapacity: number;
  partitions: number;
  pool: SharedArrayBuffer;
  lens: SharedArrayBuffer;
  control: SharedArrayBuffer;
  clock: SharedArrayBuffer;
  rx: SharedArrayBuffer[];
  free: SharedArrayBuffer[];
  handoff: SharedArrayBuffer[][];
  /**
   * Per worker: its free-slot stack when it reads its own queue (Int32: [0] the depth, the
   * slots from [STACK_DATA] on). In shared memory so a restarted worker carries on with the
   * stack its predecessor left at a yield point, instead of re-filling its home and handing out
   * slots that are still in flight.
   */
  stacks: SharedArrayBuffer[];
  /**
   * Uint8 per slot: 1 + the partition whose io_uring holds the slot (given for a read, or
   * submitted as a write), 0 otherwise; written by that partition's worker only. What a dead
   * worker's ring held is found here by its successor (partition-actor.ts takeBackHeld).
   */
  held: SharedArrayBuffer;
  nominate: SharedArrayBuffer[];
  pins: SharedArrayBuffer;
  ioCounters: SharedArrayBuffer;
  workerStats: SharedArrayBuffer;
  ioStats: SharedArrayBuffer;
}

export function allocateMemory(partitions: number, slots: number, slotSize: number, counterSlots: number): GatewayMemory {
  // The rx ring of one partition may hold every slot; the free ring likewise.
  const ringCapacity = slots;
  return {
    slots,
    slotSize,
    ringCapacity,
    partitions,
    pool: new SharedArrayBuffer(slots * slotSize),
    lens: new SharedArrayBuffer(slots * 4),
    control: new SharedArrayBuffer(CTL_SLOTS * 4),
    clock: new SharedArrayBuffer(8),
    rx: Array.from({ length: partitions }, () => ringBuffer(ringCapacity)),
    free: Array.from({ length: partitions }, () => ringBuffer(ringCapacity)),
    handoff: Array.from({ length: partitions }, () => Array.from({ length: partitions }, () => ringBuffer(handoffCapacity(partitions, slots)))),
    nominate: Array.from({ length: partitions }, () => ringBuffer(4096)),
    stacks: Array.from({ length: partitions }, () => new SharedArrayBuffer((STACK_DATA + slots) * 4)),
    held: new SharedArrayBuffer(slots),
    pins: new SharedArrayBuffer(pinBytes(partitions)),
    ioCounters: new SharedArrayBuffer(counterSlots * 8),
    workerStats: new SharedArrayBuffer(partitions * WORKER_STAT_STRIDE * 8),
    ioStats: new SharedArrayBuffer(IO_STAT_SLOTS * 8),
  };
}
