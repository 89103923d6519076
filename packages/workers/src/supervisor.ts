/**
 * supervisor.ts — the gateway's main thread: opens the TUN, lays out shared memory, starts
 * the actors (a piscina pool of fixed size hosting one translation actor per partition, the
 * timer actor and the metrics actor; a dedicated I/O thread), speaks to them over comlink
 * (listings, flushes, rule changes, counters), restarts a translation actor whose thread
 * died — its partition's sessions survive, the table being in shared memory — and shuts it
 * all down cleanly: stop reading, let the workers drain, release the TUN.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import fs from 'node:fs';
import { EventEmitter } from 'node:events';
import { Piscina } from 'piscina';
import {
  C,
  COUNTER_SLOTS,
  ConfigError,
  PortPlan,
  RuleSet,
  SessionTable,
  parseRules,
  partitionSizes,
  hostCountsFor,
  recountHosts,
  forwardPortCount,
  resolveConfig,
  ruleWarnings,
  sumCounters,
  countersOf,
  formatIPv4,
  type ConfigInput,
  type NatConfig,
  type SessionFilter,
  type TableSizes,
  type ExpectationRow,
  type Timeouts,
} from '@masq/core';
import { TunDevice, TunError, createWaker, wake, closeWaker, VNET_HDR_LEN } from '@masq/tun';
import { ring as ringDoorbell, wakeAll } from './doorbell.js';
import { allocateMemory, fillStack, slotHomes, slotSizeFor, CTL_STOP, WORKER_STAT, WORKER_STAT_STRIDE, type GatewayMemory } from './layout.js';
import type { GatewaySpec } from './spec.js';
import { DEFAULT_SCHED, type SchedPolicies } from './sched.js';
import type { PartitionControl } from './partition-actor.js';
import type { ActorTask } from './actor-entry.js';
import { Comlink, nodeEndpoint, type Remote } from './rpc.js';
import { nowMs } from './timer-actor.js';
import { ioUringRefusal, openTun, type OffloadLevel } from './tun-open.js';
import { tuneJit } from './jit.js';
import { steeringProgram, STEERING_MAX_EXTERNALS } from './steering.js';
import { encodeSection, readStateFile, writeStateFile, decodeSection, type EncodedSection, type StateLayout } from './state.js';

export interface GatewayOptions extends Omit<ConfigInput, 'partitions'> {
  tun: string;
  /**
   * A second, single-queue TUN for the outside side (--outside-tun): the routing sends the
   * traffic for the external addresses into it, and what is read there is inbound whatever its
   * source (RFC 4787 REQ-7). Without it, direction is guessed from the source and the rules.
   */
  outsideTun?: string;
  rulesText: string;
  workers?: number;
  /** Packet slots in the pool (default 8192) and their size (default 2048; MTU must fit). */
  slots?: number;
  slotSize?: number;
  mtu?: number;
  /**
   * TUN offloads (default on; tun-open.ts): IFF_VNET_HDR with TUN_F_CSUM|TUN_F_TSO4, and
   * TUN_F_USO4|USO6 where the kernel has them. The kernel hands over TCP (and UDP) super-packets
   * of up to 64 KiB with partial checksums and cuts them up again on write. Slots grow to
   * 64 KiB (the pool shrinks to 2048 of them). A level the kernel refuses falls back, logged.
   */
  offload?: boolean;
  /** Scheduling policy of the I/O thread and of the translation workers (sched.ts). */
  sched?: SchedPolicies;
  /**
   * Run to completion (default true): each worker reads its own TUN queue and hands over only
   * what another worker owns; false: the I/O thread reads every packet and hands each to its
   * worker (`--io-thread-reads`). Needs one queue per worker; otherwise the I/O thread reads.
   */
  runToCompletion?: boolean;
  /**
   * With run to completion and several workers (default true): masq's partition function as
   * the TUN's steering program (steering.ts), so a flow's packets reach its owner's queue from
   * the first one; false, or when the kernel refuses the program: the kernel's automatic flow
   * steering (`--no-steering`).
   */
  steering?: boolean;
  /**
   * With UDP segmentation offload on the TUN (default true): adjacent datagrams of one flow in
   * a worker's write batch go out as one UDP super-packet (coalesce.ts); false: one write per
   * datagram (`--no-udp-coalesce`).
   */
  udpCoalesce?: boolean;
  /**
   * With run to completion (default true): an idle worker sleeps in read(2) on its own queue
   * (tun addon parkRead; x86-64), so a packet costs a read and a write; false: poll(2), then
   * read(2) (`--no-park-read`).
   */
  parkRead?: boolean;
  /**
   * With run to completion (default true): each worker's queue through one io_uring (tun addon
   * uringOpen; Linux 6.7+): a multishot read into slots given to the kernel, and a pass's writes
   * and reads in one io_uring_enter(2), which is also where an idle worker sleeps. Probed at
   * start; where the kernel refuses, one log line and read(2)/write(2) as before; false:
   * those (`--no-io-uring`). Supersedes parkRead where it runs.
   */
  ioUring?: boolean;
  /**
   * State file (state.ts): restored at start when it exists and fits, written at stop and
   * every `stateInterval` ms while running (0: only at stop).
   */
  state?: string;
  stateInterval?: number;
  log?: (line: string) => void;
}

/** The options that are the gateway's own; every other GatewayOptions key is the NAT configuration's. */
const GATEWAY_ONLY = ['tun', 'outsideTun', 'rulesText', 'workers', 'slots', 'slotSize', 'mtu', 'log', 'offload', 'runToCompletion', 'steering', 'sched', 'state', 'stateInterval', 'udpCoalesce', 'parkRead', 'ioUring'] as const satisfies readonly (keyof GatewayOptions)[];
type GatewayOnly = (typeof GATEWAY_ONLY)[number];
// A gateway option missing from the list would reach resolveConfig as a configuration key: a compile error here.
const everyKeyPlaced: Exclude<keyof GatewayOptions, GatewayOnly | keyof ConfigInput> extends never ? true : false = true;
void everyKeyPlaced;

/**
 * The NAT configuration inside gateway options, for resolveConfig (with `partitions` from
 * `workers`): one list of the gateway's own keys for Gateway.start and `masq run`'s settings.
 */
export function natConfigOf(opts: GatewayOptions): ConfigInput {
  const out: Record<string, unknown> = { ...opts };
  for (const k of GATEWAY_ONLY) delete out[k];
  return { ...(out as Omit<GatewayOptions, GatewayOnly>), partitions: opts.workers ?? 1 };
}

/** What the state file did, for `masq status` and the log. */
export interface StateStatus {
  file: string;
  /** At start: sessions restored, or null when nothing was. */
  restored: { sessions: number; mappings: number; bytes: number; ms: number; savedAgoMs: number; flushed: number } | null;
  /** At start: why the file was not used (missing is not a refusal). */
  refused: { kind: string; message: string; keptAs: string | null } | null;
  saves: number;
  saveErrors: number;
  /** The last save: sessions, file size, time taken, when, and the longest a worker's packet path was held for its copy (0 at stop). */
  lastSave: { sessions: number; bytes: number; ms: number; at: number; workerPauseMs: number } | null;
  lastError: string | null;
}

interface Slot {
  remote: Remote<PartitionControl> | null;
  port: MessagePort | null;
  task: Promise<string> | null;
}

/** Detach any steering program from the TUN; a failure means none is attached (or a kernel without TUNSETSTEERINGEBPF), which is what was wanted. */
function detachSteering(tun: TunDevice): void {
  try {
    tun.binding.setSteeringProgram?.(tun.fds[0]!, null);
  } catch {
    // Nothing attached: the kernel's own steering either way.
  }
}

/** Every forward must be to one of the external addresses (at start and at reload): ConfigError. */
function checkForwards(rules: RuleSet, externals: readonly number[], advice: string): void {
  for (const r of rules.rules) {
    if (r.kind === 'forward' && !externals.includes(r.extAddr)) throw new ConfigError(`forward: ${formatIPv4(r.extAddr)} is not one of the external addresses${advice}`);
  }
}

/** One worker's reading and slot figures (Gateway.workerReads). */
export interface WorkerReads {
  reads: number;
  handedOver: number;
  udpSupers: number;
  udpCoalesced: number;
  uringPasses: number;
  slotsReclaimed: number;
  homeSlots?: number;
  freeSlots?: number;
  kernelSlots?: number;
}

export class Gateway extends EventEmitter {
  readonly config: NatConfig;
  readonly tun: TunDevice;
  /** The outside TUN (--outside-tun), or null. */
  readonly outsideTun: TunDevice | null;
  readonly memory: GatewayMemory;
  readonly tables: SharedArrayBuffer[];
  readonly tableSizes: TableSizes;
  readonly warnings: string[];
  rulesText: string;
  private readonly pool: Piscina;
  private readonly spec: GatewaySpec;
  private readonly slots: Slot[] = [];
  private io: Worker | null = null;
  private ioPort: MessagePort | null = null;
  private timerTask: Promise<string> | null = null;
  private stopping = false;
  private restartTimes: number[] = [];
  private metricsPort: MessagePort | null = null;
  private metricsTask: Promise<string> | null = null;
  private readonly log: (line: string) => void;
  private readonly waker: number;
  /** The offloads the TUN really runs with (tun-open.ts): the request, less what the kernel refused. */
  readonly offload: OffloadLevel;
  /** Whether the workers read their own queues (see GatewayOptions.runToCompletion). */
  readonly runToCompletion: boolean;
  /** Who puts packets on the queues: masq's eBPF program, the kernel's flow steering, or nobody (one queue). */
  readonly steering: 'ebpf' | 'kernel' | 'none';
  /** Whether workers join adjacent datagrams of a flow into UDP super-packets (coalesce.ts). */
  readonly udpCoalesce: boolean;
  /** Whether the workers' queues go through io_uring (GatewayOptions.ioUring, probed). */
  readonly ioUring: boolean;
  private readonly workerWakers: number[];
  readonly startedAt = Date.now();
  /**
   * The V8 flag masq set for its process, or null: V8's own setting. tuneJit (jit.ts) applies
   * it here, in the constructor, before any actor starts: the inlining budget the core's fast
   * path needs (core jit.ts) is in force when its threads first optimize it.
   */
  readonly jitFlag = tuneJit();
  /** Null without --state. */
  readonly state: StateStatus | null = null;
  private readonly stateInterval: number;
  private stateTimer: NodeJS.Timeout | null = null;
  private saving: Promise<void> | null = null;
  /** Set once every actor is up: only a gateway that ran writes its state at stop. */
  private up = false;

  private constructor(opts: GatewayOptions, config: NatConfig, rules: RuleSet, tun: TunDevice, offload: OffloadLevel, outsideTun: TunDevice | null) {
    super();
    this.config = config;
    this.tun = tun;
    this.offload = offload;
    this.outsideTun = outsideTun;
    const vnet = offload !== 'off';
    this.rulesText = opts.rulesText;
    this.log = opts.log ?? (() => {});
    this.warnings = ruleWarnings(rules.rules, config.externals);
    // A slot holds the largest packet the TUN can hand over: its MTU (a persistent device may
    // have been given a jumbo MTU), or a 64 KiB super-packet with offloads, plus the vnet header.
    // (slotSizeFor adds the protocol helpers' headroom: a rewrite may grow a packet in place.)
    const slotSize = opts.slotSize ?? slotSizeFor(vnet ? 65536 : tun.mtu + 16, vnet ? VNET_HDR_LEN : 0);
    // Run to completion (partition-actor.ts) needs a queue per worker: a single-queue
    // persistent device with several workers falls back to the I/O thread reading it.
    const rtc = (opts.runToCompletion ?? true) && tun.fds.length === config.partitions;
    this.runToCompletion = rtc;
    const plan = new PortPlan(config.portLo, config.portHi, config.partitions);
    this.steering = tun.fds.length < 2 ? 'none' : rtc && (opts.steering ?? true) ? this.steer(tun, config, plan) : 'kernel';
    // A persistent device may still carry the program of an earlier run: the kernel's own steering, as asked.
    if (this.steering === 'kernel') detachSteering(tun);
    this.udpCoalesce = offload === 'csum+tso4+uso' && (opts.udpCoalesce ?? true);
    this.ioUring = rtc && (opts.ioUring ?? true) && this.probeUring();
    this.memory = allocateMemory(config.partitions, opts.slots ?? (vnet ? 2048 : 8192), slotSize, COUNTER_SLOTS);
    this.tableSizes = partitionSizes(config, forwardPortCount(rules.rules));
    this.tables = Array.from({ length: config.partitions }, () => new SessionTable(this.tableSizes, plan).memory.buffer);
    // The first time, before any reader starts (plain store: see the clock in layout.ts).
    new Float64Array(this.memory.clock)[0] = nowMs();
    this.stateInterval = opts.stateInterval ?? 60_000;
    // The per-host counts all partitions share (exact limits); counted again from restored tables.
    const hosts = hostCountsFor(config);
    if (opts.state !== undefined) this.state = this.restoreState(opts.state, plan);
    if (hosts !== null && this.state?.restored) recountHosts(hosts, this.tables.map((b) => new SessionTable(this.tableSizes, plan, b)));
    const ws = new Float64Array(this.memory.workerStats);
    for (let p = 0; p < config.partitions; p++) ws[p * WORKER_STAT_STRIDE + WORKER_STAT.RING_CAPACITY] = this.memory.ringCapacity;
    // The I/O thread reads (and needs slots) without run to completion, or for the outside TUN.
    const homes = slotHomes(config.partitions, this.memory.slots, rtc, !rtc || outsideTun !== null);
    if (rtc) for (let p = 0; p < config.partitions; p++) fillStack(this.memory, p, homes);
    this.waker = createWaker();
    this.workerWakers = Array.from({ length: config.partitions }, () => createWaker());
    this.spec = {
      config,
      rulesText: opts.rulesText,
      memory: this.memory,
      tables: this.tables,
      tableSizes: this.tableSizes,
      hosts: hosts?.buffer ?? null,
      writeFds: [...tun.fds],
      readFds: [...(rtc ? [] : tun.fds), ...(outsideTun?.fds ?? [])],
      outsideFrom: rtc ? 0 : tun.fds.length,
      runToCompletion: rtc,
      slotHomes: homes,
      ioWaker: this.waker,
      workerWakers: this.workerWakers,
      parkRead: opts.parkRead ?? true,
      ioUring: this.ioUring,
      udpCoalesce: this.udpCoalesce,
      vnetHdr: vnet ? VNET_HDR_LEN : 0,
      sched: opts.sched ?? DEFAULT_SCHED,
    };
    this.pool = new Piscina({
      filename: new URL('./actor-entry.js', import.meta.url).href,
      minThreads: config.partitions + 2,
      maxThreads: config.partitions + 2,
      // 'sync' atomics would freeze an idle worker's ports; actors park on their own doorbells
      // (doorbell.ts) and yield to their event loops.
      atomics: 'disabled',
      idleTimeout: 2 ** 31 - 1,
      concurrentTasksPerWorker: 1,
    });
  }

  /** Whether io_uring can run the workers' queues here (tun addon uringProbe); one log line if not. */
  private probeUring(): boolean {
    const refused = ioUringRefusal();
    if (refused !== null) this.log(refused);
    return refused === null;
  }

  /** Validate everything, open the TUN, start every actor. Throws ConfigError/TunError with advice. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    // The gateway's own options are taken out; the rest is the NAT configuration.
    const config = resolveConfig(natConfigOf(opts));
    const rules = new RuleSet(parseRules(opts.rulesText));
    if (!rules.rules.some((r) => r.kind === 'masquerade')) throw new ConfigError('rules: no masquerade rule: nothing would be translated (--masquerade "all from 10.0.0.0/24 to 0.0.0.0/0")');
    checkForwards(rules, config.externals, ` (${config.externals.map(formatIPv4).join(', ')}); add it with --address`);
    if (opts.outsideTun !== undefined && opts.outsideTun === opts.tun) throw new ConfigError(`outside TUN: "${opts.outsideTun}" is the inside TUN too; give the outside side its own device`);
    // The I/O thread polls at most 30 fds: with an outside TUN, 29 inside queues at most.
    const { dev: tun, offload } = openTun({ name: opts.tun, mtu: opts.mtu, offload: opts.offload ?? true, workers: config.partitions, maxQueues: opts.outsideTun === undefined ? 30 : 29, log: opts.log });
    let outsideTun: TunDevice | null = null;
    try {
      // Single-queue, with the inside TUN's MTU (slots fit it) and offload level (one slot format).
      if (opts.outsideTun !== undefined) {
        const o = openTun({ name: opts.outsideTun, mtu: tun.mtu, offload: offload !== 'off', workers: 1, log: opts.log });
        outsideTun = o.dev;
        if (o.offload !== offload) throw new TunError('EINVAL', `outside TUN ${opts.outsideTun} runs with offloads ${o.offload}, the TUN ${opts.tun} with ${offload}: both must be the same (--no-offload for both)`);
      }
    } catch (e) {
      outsideTun?.release();
      tun.release();
      throw e;
    }
    const gw = new Gateway(opts, config, rules, tun, offload, outsideTun);
    try {
      await gw.startActors();
    } catch (e) {
      await gw.stop().catch(() => {});
      throw e;
    }
    gw.up = true;
    if (gw.state?.restored) {
      // The rules may have changed while the gateway was down: sessions no rule allows now go,
      // exactly as on a reload.
      gw.state.restored.flushed = await gw.setRules(gw.rulesText);
    }
    if (gw.state && gw.stateInterval > 0) {
      gw.stateTimer = setInterval(() => void gw.saveState(), gw.stateInterval);
      gw.stateTimer.unref();
    }
    return gw;
  }

  // ---------------------------------------------------------------- state file

  /** What must match between a saved and this gateway's memory (state.ts). */
  stateLayout(): StateLayout {
    return {
      partitions: this.config.partitions,
      portLo: this.config.portLo,
      portHi: this.config.portHi,
      externals: this.config.externals.map(formatIPv4),
      tableSizes: { ...this.tableSizes },
      tableBytes: this.tables[0]!.byteLength,
    };
  }

  /** The buffers a state file carries besides the tables (counter bases). */
  private counterSections(): Array<[string, SharedArrayBuffer]> {
    return [
      ['io-counters', this.memory.ioCounters],
      ['worker-stats', this.memory.workerStats],
      ['io-stats', this.memory.ioStats],
    ];
  }

  /**
   * Fill the (new, empty) tables from the state file, before any actor starts. A file that is
   * missing, damaged or does not fit leaves the tables empty; a refused file is renamed to
   * FILE.refused so that the next save does not destroy the evidence.
   */
  private restoreState(file: string, plan: PortPlan): StateStatus {
    const st: StateStatus = { file, restored: null, refused: null, saves: 0, saveErrors: 0, lastSave: null, lastError: null };
    const t0 = performance.now();
    const expected = new Map<string, number>();
    this.tables.forEach((b, p) => expected.set(`table.${p}`, b.byteLength));
    for (const [name, b] of this.counterSections()) expected.set(name, b.byteLength);
    const r = readStateFile(file, this.stateLayout(), expected);
    const refuse = (kind: string, message: string): StateStatus => {
      for (const b of [...this.tables, ...this.counterSections().map(([, x]) => x)]) new Uint8Array(b).fill(0);
      let keptAs: string | null = `${file}.refused`;
      try {
        fs.renameSync(file, keptAs);
      } catch {
        keptAs = null;
      }
      st.refused = { kind, message, keptAs };
      this.log(`state: ${message}; starting with an empty table${keptAs ? ` (the file is kept as ${keptAs})` : ''}`);
      return st;
    };
    if (!r.ok) {
      if (r.kind === 'missing') {
        this.log(`state: ${r.message}; starting with an empty table (it is written at stop${this.stateInterval > 0 ? ` and every ${Math.round(this.stateInterval / 1000)} s` : ''})`);
        return st;
      }
      return refuse(r.kind, r.message);
    }
    const now = new Float64Array(this.memory.clock)[0]!;
    let sessions = 0;
    let mappings = 0;
    for (const [name, b] of this.counterSections()) decodeSection(r.sections.get(name)!.encoded, new Uint8Array(b));
    for (let p = 0; p < this.tables.length; p++) {
      const sec = r.sections.get(`table.${p}`)!;
      decodeSection(sec.encoded, new Uint8Array(this.tables[p]!));
      const t = new SessionTable(this.tableSizes, plan, this.tables[p]);
      const problem = t.headerProblem();
      if (problem !== null) return refuse('corrupt', `${file} does not hold a valid table for worker ${p}: ${problem}`);
      t.rebaseClock(now - sec.meta.clock);
      sessions += t.sessionCount;
      mappings += t.mappingCount;
    }
    st.restored = { sessions, mappings, bytes: r.size, ms: Math.round(performance.now() - t0), savedAgoMs: Math.max(0, Date.now() - r.meta.savedAt), flushed: 0 };
    this.log(`state: restored ${sessions} session(s) and ${mappings} mapping(s) from ${file} (saved ${(st.restored.savedAgoMs / 1000).toFixed(1)} s ago; ${r.size} bytes read in ${st.restored.ms} ms)`);
    return st;
  }

  /**
   * Write the state file. While running, each partition copies its own table between two
   * batches (it is the only writer, so the copy is consistent); once stopped, the tables are
   * read here directly. One save at a time.
   */
  async saveState(): Promise<void> {
    const st = this.state;
    if (!st) return;
    if (this.saving) return this.saving;
    const run = async (): Promise<void> => {
      const t0 = performance.now();
      try {
        const clock = new Float64Array(this.memory.clock)[0]!;
        let tables: EncodedSection[];
        let pauseMs = 0;
        if (this.stopping) {
          tables = this.tables.map((b, p) => encodeSection(`table.${p}`, new Uint8Array(b), clock));
        } else {
          tables = [];
          for (let p = 0; p < this.slots.length; p++) {
            const s = await this.remote(p).snapshot();
            pauseMs = Math.max(pauseMs, s.ms);
            tables.push(s.section);
          }
        }
        const sections = [...tables, ...this.counterSections().map(([name, b]) => encodeSection(name, new Uint8Array(b), 0))];
        const bytes = await writeStateFile(st.file, this.stateLayout(), sections);
        let sessions = 0;
        for (const c of this.partitionCounters()) sessions += c[C.LIVE_BY_PROTO]! + c[C.LIVE_BY_PROTO + 1]! + c[C.LIVE_BY_PROTO + 2]! + c[C.LIVE_BY_PROTO + 3]!;
        st.saves++;
        st.lastSave = { sessions, bytes, ms: Math.round(performance.now() - t0), at: Date.now(), workerPauseMs: Math.round(pauseMs * 10) / 10 };
      } catch (e) {
        st.saveErrors++;
        st.lastError = e instanceof Error ? e.message : String(e);
        this.log(`state: saving ${st.file} failed: ${st.lastError}`);
      }
    };
    this.saving = run().finally(() => {
      this.saving = null;
    });
    return this.saving;
  }

  private async startActors(): Promise<void> {
    this.timerTask = this.pool.run({ kind: 'timer', spec: this.spec } satisfies ActorTask);
    this.timerTask.catch((e: unknown) => this.log(`timer actor failed: ${String(e)}`));
    for (let p = 0; p < this.config.partitions; p++) {
      this.slots.push({ remote: null, port: null, task: null });
      this.startPartition(p);
    }
    await Promise.all(this.slots.map((s) => s.remote!.ping()));
    const { port1, port2 } = new MessageChannel();
    this.ioPort = port1;
    this.io = new Worker(new URL('./io-thread.js', import.meta.url), { workerData: { spec: this.spec, port: port2 }, transferList: [port2] });
    this.io.on('error', (e) => {
      this.log(`I/O thread failed: ${e.message}`);
      this.emit('fatal', e);
    });
    await new Promise<void>((resolve, reject) => {
      this.io!.once('online', resolve);
      this.io!.once('error', reject);
    });
  }

  private startPartition(p: number): void {
    const { port1, port2 } = new MessageChannel();
    const slot = this.slots[p]!;
    slot.port = port1;
    // Every control message rings the worker's doorbell after it is posted, so a parked worker
    // wakes and yields to its event loop at once (partition-actor.ts), not at its park timeout.
    const ep = nodeEndpoint(port1);
    const ctl = new Int32Array(this.memory.control);
    slot.remote = Comlink.wrap<PartitionControl>({
      postMessage: (msg: unknown, transfer?: Parameters<typeof ep.postMessage>[1]) => {
        ep.postMessage(msg, transfer);
        ringDoorbell(ctl, this.workerWakers, p);
      },
      addEventListener: ep.addEventListener.bind(ep),
      removeEventListener: ep.removeEventListener.bind(ep),
    });
    const task = this.pool.run({ kind: 'partition', spec: this.spec, index: p, port: port2 } satisfies ActorTask, { transferList: [port2] }) as Promise<string>;
    slot.task = task;
    task.then(
      () => {},
      (e: unknown) => {
        if (this.stopping) return;
        const stats = new Float64Array(this.memory.workerStats);
        stats[p * WORKER_STAT_STRIDE + WORKER_STAT.RESTARTS]!++;
        this.log(`worker ${p} died (${e instanceof Error ? e.message : String(e)}); restarting it on its partition's shared table`);
        // Replies the dead worker posted just before it died may still be queued on port1:
        // close it only once they have been delivered.
        setTimeout(() => port1.close(), 1000).unref();
        this.emit('restart', p);
        // A worker that keeps dying right after start would spin: give up after 5 in 10 s.
        const t = Date.now();
        this.restartTimes = this.restartTimes.filter((x) => t - x < 10_000);
        this.restartTimes.push(t);
        if (this.restartTimes.length > 5) {
          this.emit('fatal', new Error(`worker ${p} keeps failing: ${e instanceof Error ? e.message : String(e)}`));
          return;
        }
        setTimeout(() => {
          if (!this.stopping) this.startPartition(p);
        }, 10);
      },
    );
  }

  private remote(p: number): Remote<PartitionControl> {
    const r = this.slots[p]?.remote;
    if (!r) throw new Error(`no worker ${p}`);
    return r;
  }

  get partitions(): number {
    return this.config.partitions;
  }

  /** Attach masq's steering program (steering.ts) to the TUN; on refusal one log line and the kernel's steering. */
  private steer(tun: TunDevice, config: NatConfig, plan: PortPlan): 'ebpf' | 'kernel' {
    const prog = steeringProgram(config.externals, plan, config.partitions);
    const attach = tun.binding.setSteeringProgram;
    let why: string;
    if (prog === null) why = `more than ${STEERING_MAX_EXTERNALS} external addresses`;
    else if (attach === undefined) why = 'the TUN binding cannot attach one';
    else {
      try {
        attach.call(tun.binding, tun.fds[0]!, prog);
        return 'ebpf';
      } catch (e) {
        why = e instanceof Error ? e.message : String(e);
      }
    }
    this.log(`masq: TUN ${tun.name}: no steering program (${why}); the kernel's flow steering places flows on queues (a flow's first packets may be handed over)`);
    return 'kernel';
  }

  async flush(filter: SessionFilter = {}): Promise<number> {
    const n = await Promise.all(this.slots.map((_, p) => this.remote(p).flush(filter)));
    return n.reduce((a, b) => a + b, 0);
  }

  /** Session ids are per partition: (partition, id). */
  async deleteSession(partition: number, id: number): Promise<boolean> {
    return this.remote(partition).deleteSession(id);
  }

  /** Apply a new rule text live; returns sessions flushed because no rule allows them now. */
  async setRules(rulesText: string): Promise<number> {
    const rules = new RuleSet(parseRules(rulesText));
    checkForwards(rules, this.config.externals, '');
    this.rulesText = rulesText;
    this.spec.rulesText = rulesText;
    this.ioPort?.postMessage({ type: 'rules', rulesText, externals: this.config.externals });
    this.metricsPort?.postMessage({ type: 'rules', rulesText });
    wake(this.waker);
    const n = await Promise.all(this.slots.map((_, p) => this.remote(p).applyRules(rulesText)));
    return n.reduce((a, b) => a + b, 0);
  }

  /**
   * New idle timeouts, live: every partition uses them for sessions created or refreshed from
   * now on (a session keeps the deadline it has until its next packet). The spec shares this
   * config object, so a restarted worker starts with them too. The I/O thread's fragment hold
   * time keeps its start value.
   */
  async setTimeouts(t: Timeouts): Promise<void> {
    this.config.timeouts = { ...t };
    await Promise.all(this.slots.map((_, p) => this.remote(p).setTimeouts({ ...t })));
  }

  /**
   * Enable exactly these protocol helpers (names validated by the caller), live: sessions
   * created from now on get a helper from the new set; sessions already watched keep theirs.
   * The spec shares this config object, so a restarted worker starts with them too.
   */
  async setAlg(names: readonly string[], ports: Readonly<Record<string, readonly number[]>> = {}): Promise<void> {
    const copy = (): Record<string, number[]> => Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, [...v]]));
    this.config.alg = [...names];
    this.config.algPorts = copy();
    await Promise.all(this.slots.map((_, p) => this.remote(p).setAlg([...names], copy())));
  }

  /** The pending expectations of protocol helpers, all partitions. */
  async listExpectations(): Promise<ExpectationRow[]> {
    const parts = await Promise.all(this.slots.map((_, p) => this.remote(p).expectations()));
    return parts.flat();
  }

  /** Counters of all partitions plus the I/O thread, summed (live shared memory). */
  counters(): Float64Array {
    return sumCounters([...this.partitionCounters(), new Float64Array(this.memory.ioCounters)]);
  }

  partitionCounters(): Float64Array[] {
    return this.tables.map(countersOf);
  }

  /**
   * Per worker: packets it read from its own TUN queue, and of those, handed to another worker;
   * UDP super-packets it wrote (coalesce.ts) and the datagrams inside them; its io_uring
   * passes and the slots it took back after restarts. Workers that read their own queues also
   * report their packet slots: `homeSlots` they read into, `freeSlots` on their free stack (as
   * of their last yield) and `kernelSlots` their io_uring holds (layout.ts `held`). On an idle
   * gateway free + kernel = home: every slot is accounted for.
   */
  workerReads(): WorkerReads[] {
    const ws = new Float64Array(this.memory.workerStats);
    const homes = this.spec.slotHomes;
    // Slots each worker's io_uring holds: one pass over `held` (1 + the worker's index, 0 none).
    const kernel = new Array<number>(this.tables.length + 1).fill(0);
    if (this.runToCompletion) for (const m of new Uint8Array(this.memory.held)) kernel[m]!++;
    return this.tables.map((_, p) => {
      const row = p * WORKER_STAT_STRIDE;
      const r: WorkerReads = { reads: ws[row + WORKER_STAT.TUN_READS]!, handedOver: ws[row + WORKER_STAT.HANDED_OVER]!, udpSupers: ws[row + WORKER_STAT.UDP_SUPERS]!, udpCoalesced: ws[row + WORKER_STAT.UDP_JOINED]!, uringPasses: ws[row + WORKER_STAT.URING_PASSES]!, slotsReclaimed: ws[row + WORKER_STAT.SLOTS_RECLAIMED]! };
      if (!this.runToCompletion) return r;
      return { ...r, homeSlots: homes[p + 1]! - homes[p]!, freeSlots: new Int32Array(this.memory.stacks[p]!, 0, 1)[0]!, kernelSlots: kernel[p + 1]! };
    });
  }

  /**
   * Start the metrics actor (prom-client in its own thread, reading the counters from shared
   * memory at scrape time) listening on `addr`. `module` is the URL of the module that exports
   * `runMetricsActor` (the CLI composes @masq/metrics in; this package does not import it).
   * Resolves with the bound address.
   */
  async startMetrics(module: string, addr: { host: string; port: number }, allowAll = false): Promise<{ host: string; port: number }> {
    const { port1, port2 } = new MessageChannel();
    const init = {
      partitions: [...this.partitionCounters(), new Float64Array(this.memory.ioCounters)],
      workerNames: Array.from({ length: this.config.partitions }, (_, i) => String(i)),
      workerStats: new Float64Array(this.memory.workerStats),
      ioStats: new Float64Array(this.memory.ioStats),
      externals: this.config.externals.map(formatIPv4),
      sessionsLimit: this.config.maxSessions,
      portsLimitPerAddress: this.config.portHi - this.config.portLo + 1,
      listen: { ...addr, allowAll },
      // The status page at / reads the partitions' tables from shared memory on the metrics
      // thread (never through the workers) and shows the rule text in force.
      status: {
        tables: { buffers: this.tables, sizes: this.tableSizes, portLo: this.config.portLo, portHi: this.config.portHi, clock: this.memory.clock },
        rulesText: this.rulesText,
      },
    };
    this.metricsPort = port1;
    this.metricsTask = this.pool.run({ kind: 'metrics', module, init, port: port2 } satisfies ActorTask, { transferList: [port2] }) as Promise<string>;
    this.metricsTask.catch(() => {});
    const bound = await new Promise<{ host: string; port: number }>((resolve, reject) => {
      port1.on('message', (m: { type: string; host?: string; port?: number; message?: string }) => {
        if (m.type === 'listening') resolve({ host: m.host!, port: m.port! });
        else if (m.type === 'error') reject(new Error(m.message));
      });
    });
    // The metrics actor counts the top inside hosts itself, from the shared tables.
    return bound;
  }

  /** For tests and `masq debug crash-worker`: make worker p's thread die. */
  async crashWorker(p: number): Promise<void> {
    // The worker acknowledges before it dies, but the acknowledgement may race its death:
    // wait for it at most a second.
    await Promise.race([this.remote(p).crash(), new Promise((r) => setTimeout(r, 1000))]);
  }

  /** Wait until every partition answers on the control plane. */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((_, p) => this.remote(p).ping()));
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    if (this.stateTimer) clearInterval(this.stateTimer);
    // A periodic save in progress asks the workers for copies: let it finish first.
    if (this.saving) await this.saving;
    this.stopping = true;
    const ctl = new Int32Array(this.memory.control);
    Atomics.store(ctl, CTL_STOP, 1);
    try {
      wake(this.waker);
    } catch {
      /* already closed */
    }
    wakeAll(ctl, this.workerWakers);
    const settle = <T>(pr: Promise<T> | null): Promise<unknown> => (pr ? pr.catch(() => undefined) : Promise.resolve());
    if (this.metricsPort) {
      this.metricsPort.postMessage({ type: 'stop' });
      await Promise.race([settle(this.metricsTask), new Promise((r) => setTimeout(r, 2000))]);
      this.metricsPort.close();
    }
    if (this.io) {
      const io = this.io;
      await Promise.race([new Promise((r) => io.once('exit', r)), new Promise((r) => setTimeout(r, 2000))]);
      await io.terminate();
    }
    await Promise.race([Promise.all([settle(this.timerTask), ...this.slots.map((s) => settle(s.task))]), new Promise((r) => setTimeout(r, 3000))]);
    for (const s of this.slots) s.port?.close();
    this.ioPort?.close();
    await this.pool.destroy();
    if (this.state && this.up) {
      await this.saveState();
      const ls = this.state.lastSave;
      if (ls && this.state.saveErrors === 0) this.log(`state: saved ${ls.sessions} session(s) to ${this.state.file}: ${ls.bytes} bytes in ${ls.ms} ms`);
    }
    try {
      closeWaker(this.waker);
      for (const w of this.workerWakers) closeWaker(w);
    } catch {
      /* ignore */
    }
    // A persistent device (ip tuntap add) outlives masq: leave it without our program.
    if (this.steering === 'ebpf') detachSteering(this.tun);
    this.tun.release();
    this.outsideTun?.release();
  }
}
