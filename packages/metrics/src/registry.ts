/**
 * registry.ts — the masq metrics as a prom-client Registry that reads a MetricsSource at
 * scrape time.
 *
 * Contract:
 *  - Nothing here runs on the packet path. Every metric has a `collect()` that rebuilds its
 *    series from one snapshot of the source per scrape (all collects of a scrape start in the
 *    same synchronous turn of `registry.metrics()`, so they share the snapshot; it is dropped
 *    at the next microtask).
 *  - Counters are prom-client Counters (exposed as `# TYPE ... counter`) refilled in collect
 *    with reset() + inc(value). The value is monotonic across scrapes (monotonic.ts), per
 *    partition and per worker, so one partition's restart from zero cannot pull a sum down.
 *  - Every label set is bounded and, where it is an enum, declared in full at 0 so that
 *    rate() and absent-series alerts work from the first scrape: direction (2), proto (4),
 *    TCP state (8), drop reason (every DropReason except None), address (≤ MAX_EXTERNALS),
 *    worker (≤ MAX_WORKER_SERIES), rank (≤ MAX_TOP_HOSTS), alg (the registered helpers,
 *    alg/registry.ts) × reason (AlgError).
 *  - `masq_sessions{proto,state}`: TCP sessions are split by state (TCP_STATE_NAMES), the
 *    other protocols carry state="all". No series double counts, so sum(masq_sessions) is the
 *    number of live sessions, like node_nf_conntrack_entries.
 *  - Names follow the Prometheus conventions (base units, `_total` on counters) and mirror
 *    node_exporter's conntrack collector where there is a counterpart (docs/METRICS.md).
 *  - With collectProcess, prom-client's process and Node.js metrics come too, prefixed `masq_`,
 *    minus the three gauges named `*_total` (PROCESS_METRICS_DROPPED), which break the naming
 *    rules; everything exposed passes `promtool check metrics`.
 *  - Gauge readings that are not finite are exposed as 0 (shared memory never holds them
 *    unless a writer is broken; NaN would poison every sum on the dashboard).
 */
import { C, COUNTER_SLOTS, MAX_EXTERNALS, PROTO_INDEX_NAMES, TCP_STATE_NAMES, algErrorSlot, bytesSlot, packetsSlot } from '@masq/core/counters';
import { DROP_REASON_COUNT, DROP_REASON_LABELS } from '@masq/core/drop';
import { ALG_ERROR_COUNT, ALG_ERROR_LABELS } from '@masq/core/alg/types';
import { algNames } from '@masq/core/alg/registry';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

import { MonotonicCounters } from './monotonic.js';
import type { IoStat, MetricsSource, TopHost, WorkerStat } from './source.js';

/** At most this many `worker` label values; further workers are not exposed. */
export const MAX_WORKER_SERIES = 256;
/** At most this many `masq_top_host_sessions` series. */
export const MAX_TOP_HOSTS = 10;

/** `direction` label values, index = Dir (Out = 0, In = 1). */
export const DIRECTION_LABELS = ['out', 'in'] as const;

/** Default process metrics removed from the registry (see createMasqRegistry). */
export const PROCESS_METRICS_DROPPED = [
  'masq_nodejs_active_handles_total',
  'masq_nodejs_active_requests_total',
  'masq_nodejs_active_resources_total',
] as const;

export interface MasqRegistryOptions {
  /** Add prom-client's process and Node.js metrics, prefixed `masq_`. Default true. */
  collectProcess?: boolean;
  /** How many top hosts to expose, 0..MAX_TOP_HOSTS. Default MAX_TOP_HOSTS. */
  topHosts?: number;
}

/** One scrape's reading of the source, counters already made monotonic. */
interface Snapshot {
  /** Partition blocks summed. */
  c: Float64Array;
  externals: readonly string[];
  sessionsLimit: number;
  portsLimit: number;
  workers: readonly WorkerStat[];
  io: IoStat;
  top: readonly TopHost[];
}

const IO_KEYS = [
  'tunReads',
  'tunReadErrors',
  'tunWrites',
  'tunWriteErrors',
  'ipv6Ignored',
  'batchSizeSum',
  'batchCount',
] as const satisfies readonly (keyof IoStat)[];

const WORKER_COUNTER_KEYS = ['batches', 'packets', 'restarts', 'reads', 'handedOver', 'udpSupers', 'udpJoined', 'uringPasses', 'slotsReclaimed'] as const satisfies readonly (keyof WorkerStat)[];

/** Slots of the partition block that are gauges; every other slot is a counter. */
function gaugeSlotMask(): Uint8Array {
  const mask = new Uint8Array(COUNTER_SLOTS);
  const ranges: [number, number][] = [
    [C.LIVE_BY_PROTO, PROTO_INDEX_NAMES.length],
    [C.LIVE_TCP_STATE, TCP_STATE_NAMES.length],
    [C.LIVE_MAPPINGS, 1],
    [C.PORTS_IN_USE, MAX_EXTERNALS],
    [C.EXPECTATIONS, 1],
  ];
  for (const [start, n] of ranges) mask.fill(1, start, start + n);
  return mask;
}

function finiteOr0(v: number): number {
  return Number.isFinite(v) ? v : 0;
}

/** Reads the source once per scrape and keeps the counters monotonic. */
class ScrapeReader {
  private readonly isGauge = gaugeSlotMask();
  private readonly partitions: MonotonicCounters[] = [];
  private readonly workerCounters = new Map<string, MonotonicCounters>();
  private readonly ioCounters = new MonotonicCounters(IO_KEYS.length);
  private cached: Snapshot | null = null;

  constructor(
    private readonly source: MetricsSource,
    private readonly topN: number,
  ) {}

  snapshot(): Snapshot {
    if (this.cached !== null) return this.cached;
    const s = this.read();
    this.cached = s;
    queueMicrotask(() => {
      this.cached = null;
    });
    return s;
  }

  private read(): Snapshot {
    const src = this.source;
    return {
      c: this.readPartitions(src.partitions()),
      externals: src.externals().slice(0, MAX_EXTERNALS),
      sessionsLimit: finiteOr0(src.sessionsLimit()),
      portsLimit: finiteOr0(src.portsLimitPerAddress()),
      workers: this.readWorkers(src.workers()),
      io: this.readIo(src.io()),
      top: this.readTop(),
    };
  }

  private readPartitions(blocks: readonly Float64Array[]): Float64Array {
    const n = COUNTER_SLOTS;
    const out = new Float64Array(n);
    for (let p = 0; p < blocks.length; p++) {
      const b = blocks[p]!;
      if (b.length < n) {
        throw new Error(`partition ${p}: statistics block has ${b.length} slots, expected at least ${n}`);
      }
      let m = this.partitions[p];
      if (m === undefined) this.partitions[p] = m = new MonotonicCounters(n);
      for (let s = 0; s < n; s++) out[s]! += this.isGauge[s] ? finiteOr0(b[s]!) : m.read(s, b[s]!);
    }
    // A partition no longer listed still contributes what it counted.
    for (let p = blocks.length; p < this.partitions.length; p++) {
      const m = this.partitions[p]!;
      for (let s = 0; s < n; s++) if (!this.isGauge[s]) out[s]! += m.value(s);
    }
    return out;
  }

  private readWorkers(raw: readonly WorkerStat[]): WorkerStat[] {
    const out: WorkerStat[] = [];
    const seen = new Set<string>();
    for (const w of raw) {
      if (out.length >= MAX_WORKER_SERIES) break;
      if (seen.has(w.worker)) continue;
      seen.add(w.worker);
      let m = this.workerCounters.get(w.worker);
      if (m === undefined) this.workerCounters.set(w.worker, (m = new MonotonicCounters(WORKER_COUNTER_KEYS.length)));
      out.push({
        worker: w.worker,
        ringDepth: finiteOr0(w.ringDepth),
        ringCapacity: finiteOr0(w.ringCapacity),
        batches: m.read(0, w.batches),
        packets: m.read(1, w.packets),
        restarts: m.read(2, w.restarts),
        reads: m.read(3, w.reads),
        handedOver: m.read(4, w.handedOver),
        udpSupers: m.read(5, w.udpSupers),
        udpJoined: m.read(6, w.udpJoined),
        uringPasses: m.read(7, w.uringPasses),
        slotsReclaimed: m.read(8, w.slotsReclaimed),
      });
    }
    // Forget workers that are gone, so the map stays as bounded as the label set.
    for (const name of this.workerCounters.keys()) if (!seen.has(name)) this.workerCounters.delete(name);
    return out;
  }

  private readIo(raw: IoStat): IoStat {
    const m = this.ioCounters;
    return {
      tunReads: m.read(0, raw.tunReads),
      tunReadErrors: m.read(1, raw.tunReadErrors),
      tunWrites: m.read(2, raw.tunWrites),
      tunWriteErrors: m.read(3, raw.tunWriteErrors),
      ipv6Ignored: m.read(4, raw.ipv6Ignored),
      batchSizeSum: m.read(5, raw.batchSizeSum),
      batchCount: m.read(6, raw.batchCount),
    };
  }

  private readTop(): TopHost[] {
    if (this.topN === 0 || this.source.topHosts === undefined) return [];
    return this.source
      .topHosts()
      .filter((h) => Number.isFinite(h.sessions) && h.sessions > 0)
      .sort((a, b) => b.sessions - a.sessions || (a.host < b.host ? -1 : a.host > b.host ? 1 : 0))
      .slice(0, this.topN);
  }
}

type Labels<L extends string> = Partial<Record<L, string | number>>;
type Emit<L extends string> = (labels: Labels<L>, value: number) => void;

/**
 * Build the registry. `source` is read at scrape time only; the registry holds no other
 * state than the monotonic bookkeeping.
 */
export function createMasqRegistry(source: MetricsSource, options: MasqRegistryOptions = {}): Registry {
  const { collectProcess = true, topHosts = MAX_TOP_HOSTS } = options;
  if (!Number.isInteger(topHosts) || topHosts < 0 || topHosts > MAX_TOP_HOSTS) {
    throw new RangeError(`topHosts must be an integer from 0 to ${MAX_TOP_HOSTS}, got ${topHosts}`);
  }
  const registry = new Registry();
  const reader = new ScrapeReader(source, topHosts);

  function counter<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (emit: Emit<L>, s: Snapshot) => void,
  ): void {
    new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        const s = reader.snapshot();
        this.reset();
        fill((labels, v) => this.inc(labels, v), s);
      },
    });
  }

  function gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (emit: Emit<L>, s: Snapshot) => void,
  ): void {
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        const s = reader.snapshot();
        this.reset();
        fill((labels, v) => this.set(labels, finiteOr0(v)), s);
      },
    });
  }

  const slot = (s: Snapshot, i: number): number => s.c[i]!;

  // Sessions and mappings (node_nf_conntrack_entries / _entries_limit).
  gauge('masq_sessions', 'Live sessions by protocol; TCP split by state, other protocols state="all".', ['proto', 'state'], (emit, s) => {
    for (let st = 0; st < TCP_STATE_NAMES.length; st++) emit({ proto: 'tcp', state: TCP_STATE_NAMES[st] }, slot(s, C.LIVE_TCP_STATE + st));
    for (let p = 1; p < PROTO_INDEX_NAMES.length; p++) emit({ proto: PROTO_INDEX_NAMES[p], state: 'all' }, slot(s, C.LIVE_BY_PROTO + p));
  });
  gauge('masq_sessions_limit', 'Session table capacity, all partitions together.', [], (emit, s) => emit({}, s.sessionsLimit));
  gauge('masq_mappings', 'Live endpoint-independent mappings (inside endpoint to external endpoint).', [], (emit, s) =>
    emit({}, slot(s, C.LIVE_MAPPINGS)),
  );
  counter('masq_sessions_created_total', 'Sessions created.', [], (emit, s) => emit({}, slot(s, C.SESSIONS_CREATED)));
  counter('masq_sessions_expired_total', 'Sessions removed because their timer ran out, by protocol.', ['proto'], (emit, s) => {
    for (let p = 0; p < PROTO_INDEX_NAMES.length; p++) emit({ proto: PROTO_INDEX_NAMES[p] }, slot(s, C.SESSIONS_EXPIRED + p));
  });
  counter('masq_sessions_flushed_total', 'Sessions removed by a flush, a delete or a rule change.', [], (emit, s) =>
    emit({}, slot(s, C.SESSIONS_FLUSHED)),
  );

  // Traffic.
  counter('masq_packets_total', 'Packets translated, by direction (out: inside to outside) and protocol.', ['direction', 'proto'], (emit, s) => {
    for (let d = 0; d < DIRECTION_LABELS.length; d++)
      for (let p = 0; p < PROTO_INDEX_NAMES.length; p++)
        emit({ direction: DIRECTION_LABELS[d], proto: PROTO_INDEX_NAMES[p] }, slot(s, packetsSlot(d, p)));
  });
  counter('masq_bytes_total', 'Bytes of IPv4 packets translated (IP header included), by direction and protocol.', ['direction', 'proto'], (emit, s) => {
    for (let d = 0; d < DIRECTION_LABELS.length; d++)
      for (let p = 0; p < PROTO_INDEX_NAMES.length; p++)
        emit({ direction: DIRECTION_LABELS[d], proto: PROTO_INDEX_NAMES[p] }, slot(s, bytesSlot(d, p)));
  });
  counter('masq_drops_total', 'Packets dropped, by reason.', ['reason'], (emit, s) => {
    for (let r = 1; r < DROP_REASON_COUNT; r++) emit({ reason: DROP_REASON_LABELS[r] }, slot(s, C.DROPS + r));
  });
  counter('masq_passed_packets_total', 'Packets forwarded untranslated by an accept rule.', [], (emit, s) => emit({}, slot(s, C.PASSED)));
  counter('masq_hairpinned_packets_total', 'Packets from an inside host to an external address of the gateway, looped back inside.', [], (emit, s) =>
    emit({}, slot(s, C.HAIRPINNED)),
  );
  counter('masq_handoffs_total', 'Packets handed from one partition to the partition that owns their session.', [], (emit, s) =>
    emit({}, slot(s, C.HANDOFFS)),
  );
  counter('masq_icmp_errors_translated_total', 'ICMP error messages translated along with the packet they quote.', [], (emit, s) =>
    emit({}, slot(s, C.ICMP_ERRORS_TRANSLATED)),
  );
  counter('masq_icmp_errors_generated_total', 'ICMP error messages generated by the gateway itself.', [], (emit, s) =>
    emit({}, slot(s, C.ICMP_GENERATED)),
  );
  counter('masq_fragments_total', 'IPv4 fragments handled.', [], (emit, s) => emit({}, slot(s, C.FRAGMENTS)));

  // Protocol helpers (ALGs): alg = every registered helper's name, reason = AlgError.
  counter('masq_alg_rewrites_total', 'Payload rewrites by a protocol helper (an FTP PORT/EPRT/227/229 line, an RTSP Transport header, a DCC offer).', ['alg'], (emit, s) => {
    const names = algNames();
    for (let a = 0; a < names.length; a++) emit({ alg: names[a] }, slot(s, C.ALG_REWRITES + a + 1));
  });
  counter('masq_alg_errors_total', 'Lines a protocol helper left unmodified or flows it refused, by helper and reason.', ['alg', 'reason'], (emit, s) => {
    const names = algNames();
    for (let a = 0; a < names.length; a++)
      for (let r = 0; r < ALG_ERROR_COUNT; r++) emit({ alg: names[a], reason: ALG_ERROR_LABELS[r] }, slot(s, algErrorSlot(a + 1, r)));
  });
  gauge('masq_expectations', 'Pending expectations: related flows (e.g. FTP data connections) a protocol helper admits once.', [], (emit, s) =>
    emit({}, slot(s, C.EXPECTATIONS)),
  );

  // Ports.
  counter('masq_port_allocation_failures_total', 'New mappings refused because no external port was free.', [], (emit, s) =>
    emit({}, slot(s, C.PORT_ALLOC_FAILURES)),
  );
  gauge('masq_ports_in_use', 'External ports allocated, by external address.', ['address'], (emit, s) => {
    for (let a = 0; a < s.externals.length; a++) emit({ address: s.externals[a] }, slot(s, C.PORTS_IN_USE + a));
  });
  gauge('masq_ports_limit', 'Ports available for allocation on each external address.', ['address'], (emit, s) => {
    for (const address of s.externals) emit({ address }, s.portsLimit);
  });

  // Workers.
  gauge('masq_worker_ring_depth', "Batches waiting in the worker's input ring.", ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.ringDepth);
  });
  gauge('masq_worker_ring_capacity', "Capacity of the worker's input ring, in batches.", ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.ringCapacity);
  });
  counter('masq_worker_batches_total', 'Batches processed by the worker.', ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.batches);
  });
  counter('masq_worker_packets_total', 'Packets processed by the worker; divided by masq_worker_batches_total, the mean batch size.', ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.packets);
  });
  counter('masq_worker_tun_reads_total', "Packets the worker read from its own TUN queue (run to completion; 0 with --io-thread-reads).", ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.reads);
  });
  counter('masq_worker_handoffs_total', "Packets the worker read from its queue that another worker owns, handed over by ring: the kernel's flow steering missing its owner.", ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.handedOver);
  });
  counter('masq_worker_udp_supers_total', 'UDP super-packets the worker wrote to the TUN: adjacent datagrams of one flow joined into one write, cut back into the same datagrams by the kernel (--no-udp-coalesce: 0).', ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.udpSupers);
  });
  counter('masq_worker_udp_coalesced_total', 'Datagrams that went out inside those UDP super-packets.', ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.udpJoined);
  });
  counter('masq_worker_uring_passes_total', "The worker's io_uring passes: one system call each, writing a batch and taking the packets that arrived (0 with --no-io-uring or where the kernel refuses io_uring).", ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.uringPasses);
  });
  counter('masq_worker_restarts_total', 'Times the supervisor restarted the worker.', ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.restarts);
  });
  counter('masq_worker_slots_reclaimed_total', "Packet slots a restarted worker took back from its dead predecessor's io_uring (given to the kernel for reads, or written), once that ring was cancelled and closed.", ['worker'], (emit, s) => {
    for (const w of s.workers) emit({ worker: w.worker }, w.slotsReclaimed);
  });

  // TUN I/O.
  counter('masq_tun_reads_total', 'Packets read from the TUN device.', [], (emit, s) => emit({}, s.io.tunReads));
  counter('masq_tun_read_errors_total', 'Failed reads from the TUN device.', [], (emit, s) => emit({}, s.io.tunReadErrors));
  counter('masq_tun_writes_total', 'Packets written to the TUN device.', [], (emit, s) => emit({}, s.io.tunWrites));
  counter('masq_tun_write_errors_total', 'Failed writes to the TUN device.', [], (emit, s) => emit({}, s.io.tunWriteErrors));
  counter('masq_ipv6_ignored_total', 'IPv6 packets read from the TUN device and discarded.', [], (emit, s) => emit({}, s.io.ipv6Ignored));
  counter('masq_io_batches_total', 'Read batches taken from the TUN device.', [], (emit, s) => emit({}, s.io.batchCount));
  counter('masq_io_batch_packets_total', 'Packets in the read batches taken from the TUN device; divided by masq_io_batches_total, the mean batch size.', [], (emit, s) =>
    emit({}, s.io.batchSizeSum),
  );

  // Top talkers, bounded to topHosts series.
  gauge('masq_top_host_sessions', 'Live sessions of the inside hosts with the most sessions (rank 1 = most).', ['rank', 'host'], (emit, s) => {
    for (let i = 0; i < s.top.length; i++) emit({ rank: String(i + 1), host: s.top[i]!.host }, s.top[i]!.sessions);
  });

  if (collectProcess) {
    collectDefaultMetrics({ register: registry, prefix: 'masq_' });
    // These prom-client gauges end in _total, which the exposition conventions (and
    // `promtool check metrics`) reserve for counters; the per-type gauges of the same name
    // without _total remain, and sum() over them gives the same number.
    for (const name of PROCESS_METRICS_DROPPED) registry.removeSingleMetric(name);
  }
  return registry;
}
