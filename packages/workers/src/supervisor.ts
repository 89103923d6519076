/**
 * supervisor.ts — the gateway's main thread: opens the TUN, lays out shared memory, starts
 * the actors (a piscina pool of fixed size hosting one translation actor per partition, the
 * timer actor and the metrics actor; a dedicated I/O thread), speaks to them over comlink
 * (listings, flushes, rule changes, counters), restarts a translation actor whose thread
 * died — its partition's sessions survive, the table being in shared memory — and shuts it
 * all down cleanly: stop reading, let the workers drain, release the TUN.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { EventEmitter } from 'node:events';
import { Piscina } from 'piscina';
import {
  COUNTER_SLOTS,
  ConfigError,
  PortPlan,
  RuleSet,
  SessionTable,
  parseRules,
  partitionSizes,
  forwardPortCount,
  resolveConfig,
  ruleWarnings,
  sumCounters,
  countersOf,
  formatIPv4,
  type ConfigInput,
  type NatConfig,
  type SessionFilter,
  type SessionRow,
  type TableSizes,
  type Timeouts,
} from '@masq/core';
import { TunDevice, TunError, createWaker, wake, closeWaker, VNET_HDR_LEN } from '@masq/tun';
import { wakeAll } from './doorbell.js';
import { allocateMemory, CTL_STOP, WORKER_STAT, WORKER_STAT_STRIDE, type GatewayMemory } from './layout.js';
import type { GatewaySpec } from './spec.js';
import { DEFAULT_SCHED, type SchedPolicies } from './sched.js';
import type { PartitionControl } from './partition-actor.js';
import type { ActorTask } from './actor-entry.js';
import { Comlink, nodeEndpoint, type Remote } from './rpc.js';
import { nowMs } from './timer-actor.js';

export interface GatewayOptions extends Omit<ConfigInput, 'partitions'> {
  tun: string;
  rulesText: string;
  workers?: number;
  /** Packet slots in the pool (default 8192) and their size (default 2048; MTU must fit). */
  slots?: number;
  slotSize?: number;
  mtu?: number;
  /**
   * TUN offloads: IFF_VNET_HDR with TUN_F_CSUM|TUN_F_TSO4. The kernel hands over TCP
   * super-packets of up to 64 KiB with partial checksums and cuts them up again on write.
   * Slots grow to 64 KiB (the pool shrinks to 1024 of them).
   */
  offload?: boolean;
  /** Scheduling policy of the I/O thread and of the translation workers (sched.ts). */
  sched?: SchedPolicies;
  log?: (line: string) => void;
}

interface Slot {
  remote: Remote<PartitionControl> | null;
  port: MessagePort | null;
  task: Promise<string> | null;
}

export class Gateway extends EventEmitter {
  readonly config: NatConfig;
  readonly tun: TunDevice;
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
  private topTimer: NodeJS.Timeout | null = null;
  private readonly log: (line: string) => void;
  private readonly waker: number;
  private readonly workerWakers: number[];
  readonly startedAt = Date.now();

  private constructor(opts: GatewayOptions, config: NatConfig, rules: RuleSet, tun: TunDevice) {
    super();
    this.config = config;
    this.tun = tun;
    this.rulesText = opts.rulesText;
    this.log = opts.log ?? (() => {});
    this.warnings = ruleWarnings(rules.rules, config.externals);
    // A slot holds the largest packet the TUN can hand over: its MTU (a persistent device may
    // have been given a jumbo MTU), or a 64 KiB super-packet with offloads, plus the vnet header.
    const slotSize = opts.slotSize ?? (opts.offload ? 65536 + 16 : Math.max(2048, (tun.mtu + 16 + 63) & ~63));
    this.memory = allocateMemory(config.partitions, opts.slots ?? (opts.offload ? 1024 : 8192), slotSize, COUNTER_SLOTS);
    this.tableSizes = partitionSizes(config, forwardPortCount(rules.rules));
    const plan = new PortPlan(config.portLo, config.portHi, config.partitions);
    this.tables = Array.from({ length: config.partitions }, () => new SessionTable(this.tableSizes, plan).memory.buffer);
    new Float64Array(this.memory.clock)[0] = nowMs();
    const ws = new Float64Array(this.memory.workerStats);
    for (let p = 0; p < config.partitions; p++) ws[p * WORKER_STAT_STRIDE + WORKER_STAT.RING_CAPACITY] = this.memory.ringCapacity;
    this.waker = createWaker();
    this.workerWakers = Array.from({ length: config.partitions }, () => createWaker());
    this.spec = {
      config,
      rulesText: opts.rulesText,
      memory: this.memory,
      tables: this.tables,
      tableSizes: this.tableSizes,
      writeFds: [...tun.fds],
      readFds: [...tun.fds],
      ioWaker: this.waker,
      workerWakers: this.workerWakers,
      vnetHdr: opts.offload ? VNET_HDR_LEN : 0,
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

  /** Validate everything, open the TUN, start every actor. Throws ConfigError/TunError with advice. */
  static async start(opts: GatewayOptions): Promise<Gateway> {
    const { tun: _tun, rulesText: _rt, workers, slots: _sl, slotSize: _ss, mtu: _mtu, log: _log, offload: _off, sched: _sched, ...cfgIn } = opts;
    void _tun; void _rt; void _sl; void _ss; void _mtu; void _log; void _off; void _sched;
    const config = resolveConfig({ ...cfgIn, partitions: workers ?? 1 });
    const rules = new RuleSet(parseRules(opts.rulesText));
    if (!rules.rules.some((r) => r.kind === 'masquerade')) throw new ConfigError('rules: no masquerade rule: nothing would be translated (--masquerade "all from 10.0.0.0/24 to 0.0.0.0/0")');
    for (const r of rules.rules) {
      if (r.kind === 'forward' && !config.externals.includes(r.extAddr))
        throw new ConfigError(`forward: ${formatIPv4(r.extAddr)} is not one of the external addresses (${config.externals.map(formatIPv4).join(', ')}); add it with --address`);
    }
    const tun = openTun(opts.tun, opts.mtu, opts.offload ?? false, config.partitions);
    const gw = new Gateway(opts, config, rules, tun);
    try {
      await gw.startActors();
    } catch (e) {
      await gw.stop().catch(() => {});
      throw e;
    }
    return gw;
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
    slot.remote = Comlink.wrap<PartitionControl>(nodeEndpoint(port1));
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

  async listSessions(filter: SessionFilter = {}): Promise<SessionRow[]> {
    const parts = await Promise.all(this.slots.map((_, p) => this.remote(p).list(filter)));
    return parts.flat();
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
    for (const r of rules.rules) {
      if (r.kind === 'forward' && !this.config.externals.includes(r.extAddr))
        throw new ConfigError(`forward: ${formatIPv4(r.extAddr)} is not one of the external addresses`);
    }
    this.rulesText = rulesText;
    this.spec.rulesText = rulesText;
    this.ioPort?.postMessage({ type: 'rules', rulesText, externals: this.config.externals });
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

  /** Counters of all partitions plus the I/O thread, summed (live shared memory). */
  counters(): Float64Array {
    return sumCounters([...this.partitionCounters(), new Float64Array(this.memory.ioCounters)]);
  }

  partitionCounters(): Float64Array[] {
    return this.tables.map(countersOf);
  }

  /**
   * Start the metrics actor (prom-client in its own thread, reading the counters from shared
   * memory at scrape time) listening on `listen` (HOST:PORT). Resolves with the bound address.
   */
  async startMetrics(listen: string, allowAll = false): Promise<{ host: string; port: number }> {
    const { parseListen } = await import('@masq/metrics/server');
    const addr = parseListen(listen);
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
    };
    this.metricsPort = port1;
    this.metricsTask = this.pool.run({ kind: 'metrics', init, port: port2 } satisfies ActorTask, { transferList: [port2] }) as Promise<string>;
    this.metricsTask.catch(() => {});
    const bound = await new Promise<{ host: string; port: number }>((resolve, reject) => {
      port1.on('message', (m: { type: string; host?: string; port?: number; message?: string }) => {
        if (m.type === 'listening') resolve({ host: m.host!, port: m.port! });
        else if (m.type === 'error') reject(new Error(m.message));
      });
    });
    // Top inside hosts by sessions (bounded: 10 series), refreshed off the packet path.
    this.topTimer = setInterval(() => void this.refreshTopHosts(), 15_000);
    void this.refreshTopHosts();
    return bound;
  }

  private async refreshTopHosts(): Promise<void> {
    try {
      const counts = new Map<string, number>();
      for (let p = 0; p < this.slots.length; p++) {
        for (const [h, n] of await this.remote(p).topHosts(10)) counts.set(h, (counts.get(h) ?? 0) + n);
      }
      const hosts = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([host, sessions]) => ({ host, sessions }));
      this.metricsPort?.postMessage({ type: 'topHosts', hosts });
    } catch {
      /* a worker restarting: next time */
    }
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
    if (this.topTimer) clearInterval(this.topTimer);
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
    try {
      closeWaker(this.waker);
      for (const w of this.workerWakers) closeWaker(w);
    } catch {
      /* ignore */
    }
    this.tun.release();
  }
}

/**
 * Open (or create) the TUN. With several workers it is multi-queue, one queue per worker
 * (each worker writes to its own queue fd; the I/O thread reads them all). A persistent
 * device made with `ip tuntap add` may or may not have multi_queue: try as preferred, then
 * the other way.
 */
function openTun(name: string, mtu: number | undefined, offload: boolean, workers: number): TunDevice {
  const queues = Math.min(workers, 30);
  const tryOpen = (mq: boolean): TunDevice => TunDevice.open({ name, multiQueue: mq, queues: mq ? queues : 1, vnetHdr: offload });
  let dev: TunDevice;
  const preferMq = queues > 1;
  try {
    dev = tryOpen(preferMq);
  } catch (e) {
    if (!(e instanceof TunError) || (e.code !== 'EINVAL' && e.code !== 'EBUSY')) throw e;
    try {
      dev = tryOpen(!preferMq);
    } catch {
      throw e;
    }
  }
  try {
    if (offload) dev.enableOffload({ csum: true, tso4: true });
    dev.disableIpv6();
    if (mtu) dev.mtu = mtu;
    if (dev.txQueueLen < 10000) dev.setTxQueueLen(10000);
    dev.up();
  } catch (e) {
    dev.release();
    throw e;
  }
  return dev;
}
