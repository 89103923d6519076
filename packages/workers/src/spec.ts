/**
 * spec.ts — what every actor is started with (structured-clonable: plain data and
 * SharedArrayBuffers), and how an actor rebuilds the core objects over shared memory.
 */
import { PinTable, PortPlan, RuleSet, SessionTable, parseRules, hostCountsFor, type NatConfig, type TableSizes, Partition } from '@masq/core';
import type { GatewayMemory } from './layout.js';
import type { SchedPolicies } from './sched.js';

export interface GatewaySpec {
  config: NatConfig;
  rulesText: string;
  memory: GatewayMemory;
  tables: SharedArrayBuffer[];
  tableSizes: TableSizes;
  /** The per-host counts all partitions share (core hosts.ts); null when no host limit is set. */
  hosts: SharedArrayBuffer | null;
  /** TUN fds to write translated packets to (one per queue; worker p uses fds[p % n]). */
  writeFds: number[];
  /**
   * TUN fds the I/O thread reads: the inside TUN's queues (none when the workers read their
   * own: run to completion), then the outside TUN's (if any).
   */
  readFds: number[];
  /**
   * Index in `readFds` of the first outside-TUN fd (--outside-tun: packets from there are
   * inbound whatever their source, RFC 4787 REQ-7); `readFds.length` when there is none and
   * direction is guessed from the rules.
   */
  outsideFrom: number;
  /**
   * Run to completion: worker p reads its own queue (writeFds[p]), classifies, translates what
   * it owns and writes it back on the same queue; only packets that landed on another worker's
   * queue are handed over (partition-actor.ts). Needs one queue per worker.
   */
  runToCompletion: boolean;
  /** Slot homes (layout.ts slotHomes): reader r takes its reads from [b[r], b[r+1]); r = P is the I/O thread. */
  slotHomes: number[];
  /** eventfd that wakes the I/O thread from poll(). */
  ioWaker: number;
  /** eventfd per partition that wakes its parked worker (doorbell.ts). */
  workerWakers: number[];
  /**
   * Bytes of virtio_net_hdr in front of each packet in a slot: 10 with TUN offloads
   * (--offload: IFF_VNET_HDR, TUN_F_CSUM|TUN_F_TSO4), else 0. The header stays with the packet
   * from read to write.
   */
  vnetHdr: number;
  /**
   * Join adjacent datagrams of one flow in a write batch into UDP super-packets (coalesce.ts):
   * only with TUN_F_USO4 (the TUN takes GSO_UDP_L4 writes), unless `--no-udp-coalesce`.
   */
  udpCoalesce: boolean;
  /**
   * Run to completion: a worker sleeps in read(2) on its queue (the addon's parkRead, where it
   * has it) instead of poll(2) + read(2); false with `--no-park-read`.
   */
  parkRead: boolean;
  /**
   * Run to completion: a worker's queue through one io_uring (the addon's uringOpen, Linux
   * 6.7+): reads and writes of a pass in one system call. Supersedes parkRead. Set only when
   * the supervisor's probe found io_uring usable (the default; `--no-io-uring` turns it off).
   */
  ioUring: boolean;
  /** Scheduling policies of the packet threads (sched.ts). */
  sched: SchedPolicies;
}

export function planOf(spec: GatewaySpec): PortPlan {
  return new PortPlan(spec.config.portLo, spec.config.portHi, spec.config.partitions);
}

export function rulesOf(text: string): RuleSet {
  return new RuleSet(parseRules(text));
}

/** Rebuild partition p's table and translator over the shared buffer (restart-safe). */
export function partitionOf(spec: GatewaySpec, p: number, plan = planOf(spec), rules = rulesOf(spec.rulesText)): Partition {
  const table = new SessionTable(spec.tableSizes, plan, spec.tables[p]);
  const hosts = spec.hosts ? hostCountsFor(spec.config, spec.hosts) : null;
  return new Partition({ config: spec.config, rules, plan, index: p, table, pins: pinsOf(spec), hosts });
}

/** The pinned-endpoint table over the shared buffer (layout.ts `pins`). */
export function pinsOf(spec: GatewaySpec): PinTable {
  return new PinTable(spec.config.partitions, spec.memory.pins);
}
