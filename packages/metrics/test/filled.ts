/**
 * filled.ts — a statistics fixture with a distinct value in every exposed slot, so that a
 * series wired to the wrong slot shows. Used by the golden and end-to-end tests.
 */
import { C, algErrorSlot, bytesSlot, packetsSlot } from '@masq/core/counters';
import { ALG_ERROR_COUNT } from '@masq/core/alg/types';
import { DROP_REASON_COUNT } from '@masq/core/drop';

import { sharedMemorySource, type MetricsActorInit } from '../src/actor.js';
import type { MetricsSource } from '../src/source.js';
import { IO_STAT, WORKER_STAT, workerStatIndex } from '../src/statsLayout.js';
import { makeInit } from './helpers.js';

/**
 * The base value x of each exposed partition slot, by meaning rather than slot number, so
 * that the expected numbers do not move when counters.ts grows. Partition 0 holds x,
 * partition 1 holds 2x: the exposed sum is 3x. Slots not listed stay 0.
 */
export function partitionBaseValues(): Map<number, number> {
  const x = new Map<number, number>();
  for (let d = 0; d < 2; d++) for (let p = 0; p < 4; p++) x.set(packetsSlot(d, p), 100 + 10 * d + p);
  for (let d = 0; d < 2; d++) for (let p = 0; p < 4; p++) x.set(bytesSlot(d, p), 200 + 10 * d + p);
  for (let r = 1; r < DROP_REASON_COUNT; r++) x.set(C.DROPS + r, 300 + r);
  x.set(C.SESSIONS_CREATED, 400);
  for (let p = 0; p < 4; p++) x.set(C.SESSIONS_EXPIRED + p, 410 + p);
  x.set(C.SESSIONS_FLUSHED, 420);
  x.set(C.PORT_ALLOC_FAILURES, 430);
  for (let p = 0; p < 4; p++) x.set(C.LIVE_BY_PROTO + p, 500 + p);
  for (let st = 0; st < 8; st++) x.set(C.LIVE_TCP_STATE + st, 510 + st);
  x.set(C.LIVE_MAPPINGS, 530);
  for (let a = 0; a < 2; a++) x.set(C.PORTS_IN_USE + a, 540 + a);
  x.set(C.HAIRPINNED, 600);
  x.set(C.HANDOFFS, 610);
  x.set(C.ICMP_ERRORS_TRANSLATED, 620);
  x.set(C.FRAGMENTS, 630);
  x.set(C.PASSED, 640);
  x.set(C.ICMP_GENERATED, 650);
  x.set(C.EXPECTATIONS, 660);
  x.set(C.ALG_REWRITES + 1, 670);
  for (let r = 0; r < ALG_ERROR_COUNT; r++) x.set(algErrorSlot(1, r), 700 + r);
  return x;
}

/** The filled blocks (listen on 127.0.0.1, a free port). */
export function filledInit(): MetricsActorInit {
  const init = makeInit();
  const [p0, p1] = init.partitions;
  for (const [slot, x] of partitionBaseValues()) {
    p0![slot] = x;
    p1![slot] = 2 * x;
  }
  const w = init.workerStats;
  w[workerStatIndex(0, WORKER_STAT.RING_DEPTH)] = 3;
  w[workerStatIndex(0, WORKER_STAT.RING_CAPACITY)] = 1024;
  w[workerStatIndex(0, WORKER_STAT.BATCHES)] = 100;
  w[workerStatIndex(0, WORKER_STAT.PACKETS)] = 3200;
  w[workerStatIndex(0, WORKER_STAT.RESTARTS)] = 1;
  w[workerStatIndex(1, WORKER_STAT.RING_CAPACITY)] = 1024;
  w[workerStatIndex(1, WORKER_STAT.BATCHES)] = 50;
  w[workerStatIndex(1, WORKER_STAT.PACKETS)] = 800;
  const io = init.ioStats;
  io[IO_STAT.TUN_READS] = 5000;
  io[IO_STAT.TUN_READ_ERRORS] = 2;
  io[IO_STAT.TUN_WRITES] = 4990;
  io[IO_STAT.TUN_WRITE_ERRORS] = 1;
  io[IO_STAT.IPV6_IGNORED] = 7;
  io[IO_STAT.BATCH_SIZE_SUM] = 5000;
  io[IO_STAT.BATCH_COUNT] = 160;
  return init;
}

/** A source over filledInit() with three top hosts. */
export function filledSource(): MetricsSource {
  const src = sharedMemorySource(filledInit());
  src.setTopHosts([
    { host: '10.0.0.7', sessions: 12 },
    { host: '10.0.0.3', sessions: 40 },
    { host: '10.0.0.9', sessions: 12 },
  ]);
  return src;
}
