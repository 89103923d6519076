/**
 * source.ts — what the metrics registry reads at scrape time: the MetricsSource interface
 * the gateway fills in, and the shapes of its worker and I/O readings.
 *
 * Contract:
 *  - Every method is called at scrape time only, from the metrics actor's thread; none is
 *    ever called on the packet path. They must be cheap (no table scans) and must not throw.
 *  - `partitions()` returns the partitions' statistics blocks (layout: @masq/core/counters).
 *    The registry sums them itself; the blocks are read, never written.
 *  - Counters in `workers()` and `io()` only grow. A reading below the previous one is taken
 *    as a restart from zero (see monotonic.ts), never exposed as a decrease.
 *  - Labels derived from these values are bounded: externals by MAX_EXTERNALS, workers by
 *    MAX_WORKER_SERIES, top hosts by MAX_TOP_HOSTS (see registry.ts).
 */

/** One worker's readings (one row of the worker-stats block, see statsLayout.ts). */
export interface WorkerStat {
  /** The `worker` label: a stable, configured name (the gateway uses the worker number, "0"). */
  worker: string;
  /** Batches waiting in the worker's input ring (a gauge, sampled by the producer). */
  ringDepth: number;
  /** Capacity of that ring in batches. */
  ringCapacity: number;
  /** Batches the worker has processed (counter). */
  batches: number;
  /** Packets in those batches (counter). */
  packets: number;
  /** Times the supervisor restarted this worker (counter). */
  restarts: number;
  /** Packets read from its own TUN queue (run to completion; counter). */
  reads: number;
  /** Of those, packets another worker owns, handed over (counter). */
  handedOver: number;
  /** UDP super-packets the worker wrote, joining adjacent datagrams of a flow (counter). */
  udpSupers: number;
  /** Datagrams that went out inside them (counter). */
  udpJoined: number;
  /** io_uring passes, one io_uring_enter(2) each (counter; 0 without io_uring). */
  uringPasses: number;
  /** Packet slots taken back at restarts from a dead predecessor's io_uring (counter). */
  slotsReclaimed: number;
}

/** The I/O thread's readings (the io-stats block, see statsLayout.ts). All counters. */
export interface IoStat {
  /** Packets read from the TUN device. */
  tunReads: number;
  /** Failed reads (errors other than "would block"). */
  tunReadErrors: number;
  /** Packets written to the TUN device. */
  tunWrites: number;
  /** Failed writes (errors other than "would block"). */
  tunWriteErrors: number;
  /** IPv6 packets read and discarded before translation. */
  ipv6Ignored: number;
  /** Packets in all read batches (sum of batch sizes). */
  batchSizeSum: number;
  /** Read batches. batchSizeSum / batchCount is the mean batch size. */
  batchCount: number;
}

/** One inside host and its live session count. */
export interface TopHost {
  /** The inside address as a dotted quad. */
  host: string;
  sessions: number;
}

export interface MetricsSource {
  /** The partitions' statistics blocks (each at least COUNTER_SLOTS long). */
  partitions(): readonly Float64Array[];
  /** External addresses, index = the PORTS_IN_USE slot offset. */
  externals(): readonly string[];
  /** Session table capacity summed over partitions. */
  sessionsLimit(): number;
  /** Ports available for allocation on each external address. */
  portsLimitPerAddress(): number;
  workers(): readonly WorkerStat[];
  io(): IoStat;
  /** Inside hosts with the most live sessions, in any order; the registry keeps the top N. */
  topHosts?(): readonly TopHost[];
}
