/**
 * statsLayout.ts — reading the two statistics blocks the gateway writes for the metrics actor
 * (the worker-stats and io-stats blocks). Their layout, every slot and its one writer, is
 * declared with the rest of the gateway's shared memory in @masq/workers layout.ts and
 * re-exported here for the actor and its tests.
 */
import type { IoStat, WorkerStat } from './source.js';
import { IO_STAT, WORKER_STAT, WORKER_STAT_STRIDE } from '@masq/workers/layout';

export { IO_STAT, IO_STAT_SLOTS, WORKER_STAT, WORKER_STAT_SLOTS, WORKER_STAT_STRIDE, allocIoStats, allocWorkerStats, workerStatIndex } from '@masq/workers/layout';

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
      reads: block[base + WORKER_STAT.TUN_READS]!,
      handedOver: block[base + WORKER_STAT.HANDED_OVER]!,
      udpSupers: block[base + WORKER_STAT.UDP_SUPERS]!,
      udpJoined: block[base + WORKER_STAT.UDP_JOINED]!,
      uringPasses: block[base + WORKER_STAT.URING_PASSES]!,
      slotsReclaimed: block[base + WORKER_STAT.SLOTS_RECLAIMED]!,
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
