/**
 * e2e.ts — what the gateway end-to-end tests share: a topology with a running masq torn down
 * whatever happens, typed access to `masq stats --json` and `masq table --json`, the probe
 * tool (`probe.ts`), a long-lived TCP chat, packet captures and log waits.
 *
 * Contract: every wait is bounded; every process started here is tracked by the topology and
 * killed at its `destroy()`; `withGateway` stops masq and destroys the topology in `finally`,
 * and reports which namespaces (if any) it left behind.
 */

import type { ExecutionContext } from 'ava';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SessionRow } from '@masq/core';
import { createTopology, leftoverNamespaces, type ExecResult, type JsonObject, type SinkEvent, type Topology, type TopologyOptions } from '../harness/index.js';
import { startMasq, type RunningGateway, type StartOptions } from './start.js';
import type { ChatEvent } from './probe.js';

/** The compiled probe tool (`test/dist/src/gateway/probe.js`). */
export const PROBE_SCRIPT = fileURLToPath(new URL('./probe.js', import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `masq stats --json`, as `statsObject` in packages/cli/src/control.ts builds it. */
export interface GatewayStats {
  readonly packets: { readonly out: Readonly<Record<string, number>>; readonly in: Readonly<Record<string, number>> };
  readonly bytes: { readonly out: number; readonly in: number };
  /** Only reasons with a non-zero count appear. */
  readonly drops: Readonly<Record<string, number>>;
  readonly sessions: Readonly<Record<string, number>>;
  readonly tcpStates: Readonly<Record<string, number>>;
  readonly sessionsLimit: number;
  readonly sessionsCreated: number;
  /** Live mappings, port forwards included. */
  readonly mappings: number;
  readonly portsInUse: Readonly<Record<string, number>>;
  readonly portsLimit: number;
  readonly portAllocationFailures: number;
  readonly hairpinned: number;
  readonly icmpErrorsTranslated: number;
  readonly workers: readonly { readonly worker: number; readonly packets: number; readonly sessions: number; readonly uringPasses?: number; readonly slotsReclaimed?: number; readonly homeSlots?: number; readonly freeSlots?: number; readonly kernelSlots?: number }[];
  /** Protocol helpers: enabled, rewrites by helper, non-zero errors by "helper/reason", live expectations. */
  readonly alg: { readonly enabled: readonly string[]; readonly rewrites: Readonly<Record<string, number>>; readonly errors: Readonly<Record<string, number>>; readonly expectations: number };
}

/** A drop counter by its label (`no_mapping`, ...); 0 when absent. */
export const drops = (s: GatewayStats, reason: string): number => s.drops[reason] ?? 0;

/** Run a masq client command that must succeed; its stdout. */
export async function masqOk(gw: RunningGateway, args: readonly string[]): Promise<string> {
  const r = await gw.masq(args);
  if (r.code !== 0) throw new Error(`masq ${args.join(' ')}: exit ${String(r.code)}: ${r.stderr.trim()}`);
  return r.stdout;
}

export async function stats(gw: RunningGateway): Promise<GatewayStats> {
  return JSON.parse(await masqOk(gw, ['stats', '--json'])) as GatewayStats;
}

export async function table(gw: RunningGateway, proto?: 'tcp' | 'udp' | 'icmp'): Promise<SessionRow[]> {
  return JSON.parse(await masqOk(gw, ['table', '--json', ...(proto === undefined ? [] : ['--proto', proto])])) as SessionRow[];
}

/** Resolve once the gateway's output matches `re`; reject after `timeoutMs` with the log. */
export async function waitForLog(gw: RunningGateway, re: RegExp, timeoutMs = 5_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(gw.log.join(''));
    if (m !== null) return m[0];
    if (Date.now() > deadline) throw new Error(`gateway log did not match ${String(re)} within ${timeoutMs} ms:\n${gw.log.join('')}`);
    await sleep(50);
  }
}

export interface ProbeRun<T> {
  readonly result: ExecResult;
  readonly json: T | null;
}

function lastJson(stdout: string): JsonObject | null {
  for (const line of stdout.trim().split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    try {
      return JSON.parse(line) as JsonObject;
    } catch {
      return null;
    }
  }
  return null;
}

/** Run a one-shot probe subcommand (see probe.ts) in `ns`; its result line, success or not. */
export async function probe<T>(topo: Topology, ns: string, cmd: string, flags: Readonly<Record<string, string | number>>, timeoutMs = 20_000): Promise<ProbeRun<T>> {
  const argv = [process.execPath, PROBE_SCRIPT, cmd, ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const result = await topo.exec(ns, argv, { timeoutMs });
  return { result, json: lastJson(result.stdout) as T | null };
}

/** A TCP connection held open by `probe tcp-chat`: each `say` must come back from the echo server. */
export interface Chat {
  readonly localPort: number;
  say(line: string, timeoutMs?: number): Promise<ChatEvent>;
  close(): Promise<void>;
}

export async function chat(topo: Topology, ns: string, to: string, port: number, hardLimitMs?: number): Promise<Chat> {
  const env = hardLimitMs === undefined ? {} : { env: { MASQ_PROBE_HARD_LIMIT_MS: String(hardLimitMs) } };
  const child = topo.node(ns, PROBE_SCRIPT, ['tcp-chat', '--to', to, '--port', String(port), '--timeout', '10000'], env);
  if (child.stdout === null || child.stdin === null) throw new Error('tcp-chat needs pipes');
  const stdin = child.stdin;
  const events: ChatEvent[] = [];
  let waiter: (() => void) | null = null;
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    events.push(JSON.parse(line) as ChatEvent);
    waiter?.();
  });
  child.once('exit', () => waiter?.());
  let taken = 0;
  const next = async (timeoutMs: number): Promise<ChatEvent> => {
    const deadline = Date.now() + timeoutMs;
    while (events.length <= taken) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`tcp-chat exited (${String(child.exitCode ?? child.signalCode)}) after ${JSON.stringify(events)}`);
      if (Date.now() > deadline) throw new Error(`tcp-chat: no event within ${timeoutMs} ms after ${JSON.stringify(events)}`);
      await new Promise<void>((r) => {
        waiter = r;
        setTimeout(r, 100);
      });
      waiter = null;
    }
    return events[taken++];
  };
  const first = await next(10_000);
  if (first.event !== 'connected') throw new Error(`tcp-chat did not connect: ${JSON.stringify(first)}`);
  return {
    localPort: first.localPort,
    say: async (line, timeoutMs = 15_000) => {
      stdin.write(`${line}\n`);
      return next(timeoutMs);
    },
    close: async () => {
      stdin.end();
      await next(5_000).catch(() => undefined);
    },
  };
}

/** A running tcpdump; `stop()` returns the packet lines it printed. */
export interface Capture {
  stop(): Promise<string[]>;
}

/** Start `tcpdump -n -l -i iface filter` in `ns`; resolves once it is listening. */
export async function capture(topo: Topology, ns: string, iface: string, filter: readonly string[]): Promise<Capture> {
  const child = topo.spawn(ns, ['tcpdump', '-n', '-l', '-i', iface, ...filter]);
  const lines: string[] = [];
  if (child.stdout === null || child.stderr === null) throw new Error('tcpdump needs pipes');
  createInterface({ input: child.stdout }).on('line', (l) => {
    if (l.trim() !== '') lines.push(l);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump in ${ns} not listening after 5 s`)), 5_000);
    child.stderr?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump in ${ns} exited (${String(code)})`));
    });
  });
  return {
    stop: async () => {
      // tcpdump prints what it has buffered on SIGINT; give it a moment to flush.
      await sleep(200);
      child.kill('SIGINT');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(2_000)]);
      return lines;
    },
  };
}

export interface GatewayRun {
  readonly topo: Topology;
  readonly gw: RunningGateway;
}

export interface TornDown {
  /** Namespaces of the topology still present after destroy() (expected: none). */
  readonly leftovers: string[];
  /** masq's exit status after SIGTERM (0: drained and stopped cleanly). */
  readonly stopCode: number | null;
}

/**
 * Build a masq-mode topology, start the gateway in it, run `body`, then stop masq and destroy
 * the topology, whatever happened. Check the result with `assertTornDown`.
 */
export async function withGateway(topoOpts: Omit<TopologyOptions, 'mode'>, startOpts: StartOptions, body: (run: GatewayRun) => Promise<void>): Promise<TornDown> {
  const topo = await createTopology({ mode: 'masq', ...topoOpts });
  let stopCode: number | null = null;
  try {
    const gw = await startMasq(topo, startOpts);
    try {
      await body({ topo, gw });
    } finally {
      stopCode = await gw.stop();
    }
  } finally {
    await topo.destroy();
  }
  return { leftovers: leftoverNamespaces(topo.prefix), stopCode };
}

/** masq stopped cleanly and the topology left nothing behind. */
export function assertTornDown(t: ExecutionContext, r: TornDown): void {
  t.is(r.stopCode, 0, 'masq drained and stopped cleanly on SIGTERM');
  t.deepEqual(r.leftovers, [], 'no namespace left behind');
}

/**
 * Through a userspace TUN NAT (the C NAT, the Python toy): 300 kB over TCP from `sender`
 * arrive intact from the external address, and `pinger` reaches the server with one ping.
 */
export async function tcpAndPing(t: ExecutionContext, topo: Topology, sender: string, pinger: string): Promise<void> {
  const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port: 7006 });
  const sent = await topo.peer(sender, 'tcp-send', { to: topo.server, port: 7006, bytes: 300_000 });
  const got = (await sink.waitFor((e) => e.event === 'sink')) as SinkEvent;
  t.is(got.sha256, sent.sha256);
  t.is(got.remote, topo.external);
  const ping = await topo.exec(pinger, ['ping', '-c', '1', '-W', '2', topo.server], { timeoutMs: 5_000 });
  t.is(ping.code, 0, ping.stdout);
  await sink.stop();
}
