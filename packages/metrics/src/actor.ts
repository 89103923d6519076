/**
 * actor.ts — the metrics actor: a MetricsSource over the gateway's shared statistics blocks,
 * a registry over that source, and the HTTP server, run until the owner says stop.
 *
 * Contract:
 *  - `runMetricsActor(init, port)` runs in its own thread (worker.ts is the Worker entry) or,
 *    for tests and single-threaded setups, in the caller's. It validates `init`, binds the
 *    listen address, then posts exactly one of
 *        { type: 'listening', host, port }      bound; `port` is the real one when 0 was asked
 *        { type: 'error', message }             init invalid or bind refused/failed
 *    and in the error case rejects with the same message.
 *  - Messages it understands on `port`:
 *        { type: 'topHosts', hosts: TopHost[] } replace the top-hosts list (the owner computes
 *                                               it off the packet path, e.g. on each expiry
 *                                               sweep); exposed at the next scrape
 *        { type: 'rules', rulesText }           the rule text now in force (status page)
 *        { type: 'stop' }                       close the server, post { type: 'stopped' },
 *                                               stop listening on `port`, resolve
 *    Anything else is ignored.
 *  - The statistics blocks must be views over SharedArrayBuffers: the actor reads them at
 *    every scrape and never writes them. Their layouts: @masq/core/counters (partitions) and
 *    statsLayout.ts (workers, I/O). Externals and limits are fixed for the actor's lifetime;
 *    restart the actor to change them.
 *  - With `status` (the partitions' table buffers and the rule text), / serves the status
 *    page (status/api.ts), which reads the tables on this thread, never on a worker's; the
 *    top hosts are then counted from the tables every 10 s (a `topHosts` message still
 *    replaces them until the next count).
 */
import type { MessagePort } from 'node:worker_threads';

import { COUNTER_SLOTS, MAX_EXTERNALS } from '@masq/core/counters';

import { createMasqRegistry } from './registry.js';
import { startMetricsServer, type MetricsServer } from './server.js';
import { StatusApi, type StatusOptions } from './status/api.js';
import type { MetricsSource, TopHost } from './source.js';
import { IO_STAT_SLOTS, WORKER_STAT, WORKER_STAT_STRIDE, readIoStats, readWorkerStats } from './statsLayout.js';

export interface MetricsActorInit {
  /** Each partition's statistics block (layout: @masq/core/counters), over a SharedArrayBuffer. */
  partitions: readonly Float64Array[];
  /** The `worker` label of each worker-stats row, in row order. */
  workerNames: readonly string[];
  /** Worker-stats block, ≥ workerNames.length × WORKER_STAT_STRIDE float64s (statsLayout.ts). */
  workerStats: Float64Array;
  /** Io-stats block, ≥ IO_STAT_SLOTS float64s (statsLayout.ts). */
  ioStats: Float64Array;
  /** External addresses as dotted quads, index = PORTS_IN_USE slot offset. */
  externals: readonly string[];
  /** Session table capacity over all partitions. */
  sessionsLimit: number;
  /** Ports available for allocation on each external address. */
  portsLimitPerAddress: number;
  /** Where to serve /metrics; allowAll permits 0.0.0.0 / ::. */
  listen: { host: string; port: number; allowAll?: boolean };
  /** Include process and Node.js metrics. Default true. */
  collectProcess?: boolean;
  /** How many top hosts to expose (≤ 10). Default 10. */
  topHosts?: number;
  /** Serve the status page at / (the tables to read, the rule text). Absent: / links /metrics. */
  status?: StatusOptions;
}

export type MetricsActorRequest = { type: 'stop' } | { type: 'topHosts'; hosts: readonly TopHost[] } | { type: 'rules'; rulesText: string };

export type MetricsActorReply =
  | { type: 'listening'; host: string; port: number }
  | { type: 'error'; message: string }
  | { type: 'stopped' };

function isShared(a: Float64Array): boolean {
  return a.buffer instanceof SharedArrayBuffer;
}

/** Throw an Error naming the first thing wrong with `init`. */
export function validateActorInit(init: MetricsActorInit): void {
  const notShared = 'is not over a SharedArrayBuffer (a copy would never change)';
  if (typeof init !== 'object' || init === null) throw new Error('metrics actor init is missing');
  for (const k of ['partitions', 'workerNames', 'externals'] as const) {
    if (!Array.isArray(init[k])) throw new Error(`${k} is not an array`);
  }
  for (const k of ['sessionsLimit', 'portsLimitPerAddress'] as const) {
    if (typeof init[k] !== 'number' || !(init[k] >= 0)) throw new Error(`${k} is not a number ≥ 0`);
  }
  if (typeof init.listen !== 'object' || init.listen === null) throw new Error('listen is missing');
  init.partitions.forEach((b, i) => {
    if (!(b instanceof Float64Array)) throw new Error(`partitions[${i}] is not a Float64Array`);
    if (b.length < COUNTER_SLOTS) throw new Error(`partitions[${i}] has ${b.length} slots, expected at least ${COUNTER_SLOTS}`);
    if (!isShared(b)) throw new Error(`partitions[${i}] ${notShared}`);
  });
  if (!(init.workerStats instanceof Float64Array)) throw new Error('workerStats is not a Float64Array');
  const need = init.workerNames.length * WORKER_STAT_STRIDE;
  if (init.workerStats.length < need) {
    throw new Error(`workerStats has ${init.workerStats.length} slots, expected at least ${need} for ${init.workerNames.length} workers`);
  }
  if (!isShared(init.workerStats)) throw new Error(`workerStats ${notShared}`);
  if (new Set(init.workerNames).size !== init.workerNames.length) throw new Error('workerNames has duplicates');
  if (!(init.ioStats instanceof Float64Array)) throw new Error('ioStats is not a Float64Array');
  if (init.ioStats.length < IO_STAT_SLOTS) throw new Error(`ioStats has ${init.ioStats.length} slots, expected at least ${IO_STAT_SLOTS}`);
  if (!isShared(init.ioStats)) throw new Error(`ioStats ${notShared}`);
  if (init.externals.length > MAX_EXTERNALS) throw new Error(`${init.externals.length} externals, at most ${MAX_EXTERNALS}`);
}

/** A MetricsSource reading the shared blocks of `init`; top hosts are set from outside. */
export function sharedMemorySource(init: MetricsActorInit): MetricsSource & { setTopHosts(hosts: readonly TopHost[]): void } {
  let top: readonly TopHost[] = [];
  const externals = [...init.externals];
  const names = [...init.workerNames];
  return {
    partitions: () => init.partitions,
    externals: () => externals,
    sessionsLimit: () => init.sessionsLimit,
    portsLimitPerAddress: () => init.portsLimitPerAddress,
    workers: () => readWorkerStats(init.workerStats, names),
    io: () => {
      // TUN writes happen in the I/O thread (untranslated passes) and in every worker.
      // TUN reads too, when the workers read their own queues (run to completion).
      const io = readIoStats(init.ioStats);
      const sum = (slot: number): number => {
        let v = 0;
        for (let i = 0; i < names.length; i++) v += init.workerStats[i * WORKER_STAT_STRIDE + slot]!;
        return v;
      };
      const reads = sum(WORKER_STAT.TUN_READS);
      return {
        ...io,
        tunReads: io.tunReads + reads,
        tunReadErrors: io.tunReadErrors + sum(WORKER_STAT.TUN_READ_ERRORS),
        tunWrites: io.tunWrites + sum(WORKER_STAT.TUN_WRITES),
        tunWriteErrors: io.tunWriteErrors + sum(WORKER_STAT.TUN_WRITE_ERRORS),
        ipv6Ignored: io.ipv6Ignored + sum(WORKER_STAT.IPV6_IGNORED),
        batchSizeSum: io.batchSizeSum + reads,
        batchCount: io.batchCount + sum(WORKER_STAT.READ_BATCHES),
      };
    },
    topHosts: () => top,
    setTopHosts(hosts) {
      top = hosts.filter((h) => typeof h.host === 'string' && typeof h.sessions === 'number');
    },
  };
}

function isRequest(m: unknown): m is MetricsActorRequest {
  if (typeof m !== 'object' || m === null) return false;
  const t = (m as { type?: unknown }).type;
  return (
    t === 'stop' ||
    (t === 'topHosts' && Array.isArray((m as { hosts?: unknown }).hosts)) ||
    (t === 'rules' && typeof (m as { rulesText?: unknown }).rulesText === 'string')
  );
}

/** Serve metrics until `{type:'stop'}` arrives on `port`. */
export async function runMetricsActor(init: MetricsActorInit, port: MessagePort): Promise<void> {
  const reply = (m: MetricsActorReply): void => port.postMessage(m);
  let source: ReturnType<typeof sharedMemorySource>;
  let server: MetricsServer;
  let status: StatusApi | undefined;
  try {
    validateActorInit(init);
    source = sharedMemorySource(init);
    const registry = createMasqRegistry(source, {
      collectProcess: init.collectProcess ?? true,
      ...(init.topHosts !== undefined ? { topHosts: init.topHosts } : {}),
    });
    if (init.status !== undefined) status = new StatusApi(source, init.status);
    server = await startMetricsServer({
      host: init.listen.host,
      port: init.listen.port,
      allowAll: init.listen.allowAll ?? false,
      registry,
      ...(status !== undefined ? { status } : {}),
    });
    // With the tables at hand, the top hosts are counted here, off the packet path.
    status?.start((hosts) => source.setTopHosts(hosts));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    reply({ type: 'error', message });
    throw new Error(message);
  }
  reply({ type: 'listening', host: server.address.host, port: server.address.port });

  await new Promise<void>((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!isRequest(m)) return;
      if (m.type === 'topHosts') {
        source.setTopHosts(m.hosts);
        return;
      }
      if (m.type === 'rules') {
        status?.setRules(m.rulesText);
        return;
      }
      port.off('message', onMessage);
      status?.stop();
      void server.close().then(() => {
        reply({ type: 'stopped' });
        resolve();
      });
    };
    port.on('message', onMessage);
  });
}
