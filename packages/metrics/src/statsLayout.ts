/**
 * statsLayout.ts — the two statistics blocks the gateway writes for the metrics actor, besides
 * the partitions' own blocks (@masq/core/counters): the worker-stats block and the io-stats
 * block. Every slot is named here and nowhere else.
 *
 * Worker-stats block: one row per worker, WORKER_STAT_STRIDE float64s apart, row w starting
 * at w * WORKER_STAT_STRIDE; the row order is the order of the worker names given to the
 * metrics actor.
 *
 *   slot  name           kind     written by
 *   0     RING_DEPTH     gauge    the worker itself, after each pop from its input ring
 *   1     RING_CAPACITY  gauge    the supervisor, once, when it creates the ring
 *   2     BATCHES        counter  the worker, after each batch
 *   3     PACKETS        counter  the worker, after each batch (+ packets in the batch)
 *   4     RESTARTS       counter  the supervisor, when it restarts the worker
 *   5     TUN_WRITES        counter  the worker, packets it wrote to the TUN
 *   6     TUN_WRITE_ERRORS  counter  the worker, packets the kernel refused
 *   7     (padding)
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
 * Contract: each slot has exactly one writer, which stores with plain `+=` / `=`; readers
 * read at any time without Atomics. That is safe for the same reason as the partition
 * blocks: an aligned 8-byte store is not torn, and a reader that sees a counter one batch
 * late only shifts an increment to the next scrape. A row is 64 bytes (one cache line) so
 * that workers bumping their own rows never write the same line. Both blocks must live in
 * SharedArrayBuffers (allocWorkerStats / allocIoStats) when the metrics actor runs in a
 * worker thread; a copied array would never change. Counters survive worker restarts: the
 * supervisor keeps the block, the new worker continues from the old values.
 */
import type { IoStat, WorkerStat } from './source.js';

/** Slot offsets within one worker's row. */
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
} as const;

/** Used slots per worker row. */
export const WORKER_STAT_SLOTS = 7;
/** Float64s from one row to the next: 8 × 8 bytes = one cache line. */
export const WORKER_STAT_STRIDE = 8;

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

/** Read every worker's row; `names[w]` labels row w. */
export function readWorkerStats(block: Float64Array, names: readonly string[]): WorkerStat[] {
  const out: WorkerStat[] = [];
  for (let w = 0; w < names.length; w++) {
    const base = w * WORKER_STAT_STRIDE;
    out.push({
      worker: names[w]!,
      ringDepth: block[base + WORKER_STAT.RING_DEPTH]!,
      ringCapacity: block[base + WORKER_STAT.RING_CAPACITY]!,
      batches: block[base + WORKER_STAT.BATCHES]!,
      packets: block[base + WORKER_STAT.PACKETS]!,
      restarts: block[base + WORKER_STAT.RESTARTS]!,
    });
  }
  return out;
}

/** Read the io-stats block. */
export function readIoStats(block: Float64Array): IoStat {
  return {
    tunReads: block[IO_STAT.TUN_READS]!,
    tunReadErrors: block[IO_STAT.TUN_READ_ERRORS]!,
    tunWrites: block[IO_STAT.TUN_WRITES]!,
    tunWriteErrors: block[IO_STAT.TUN_WRITE_ERRORS]!,
    ipv6Ignored: block[IO_STAT.IPV6_IGNORED]!,
    batchSizeSum: block[IO_STAT.BATCH_SIZE_SUM]!,
    batchCount: block[IO_STAT.BATCH_COUNT]!,
  };
}
