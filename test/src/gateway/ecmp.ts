/**
 * ecmp.ts — what the ECMP end-to-end tests share (test/e2e/ecmp.test.ts, ecmp-frr.test.ts): the
 * topology of harness/ecmp.ts with the servers, both masq gateways and the long-lived client of
 * ecmp-peer.ts running, torn down whatever happens; the gateways' mapping counts; and the check
 * that a round shows one mapping per host.
 *
 * Contract: every wait is bounded; every process is tracked by the topology and killed at its
 * `destroy()`; `withEcmp` stops both gateways and destroys the topology in `finally` and reports
 * the gateways' exit statuses and any namespace left behind.
 */

import type { ExecutionContext } from 'ava';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { SessionRow } from '@masq/core';
import { leftoverNamespaces, PEER_SCRIPT, type PeerServer } from '../harness/index.js';
import { attachServer } from '../harness/peer-process.js';
import { WATCH_STDIN_ENV } from '../peers/protocol.js';
import { createEcmpTopology, ECMP_INSIDE_NET, type EcmpGateway, type EcmpOptions, type EcmpTopology } from '../harness/ecmp.js';
import { launchMasq, type RunningGateway } from './start.js';
import type { EcmpRound } from './ecmp-peer.js';

export const ECMP_PEER = fileURLToPath(new URL('./ecmp-peer.js', import.meta.url));
export const HTTP_GET = fileURLToPath(new URL('../ops/http-get.js', import.meta.url));
export const UDP_PORT = 7001;
export const TCP_PORT = 7002;
export const SOURCE_PORT = 40000;

/** The long-lived client: one round per call. */
export interface Rounds {
  /** Run a round; `waitMs` overrides the client's per-flow timeout for this round. */
  round(name: string, waitMs?: number): Promise<EcmpRound>;
}

export function startClient(topo: EcmpTopology, timeoutMs: number): Promise<Rounds> {
  const child: ChildProcess = topo.node(topo.ns.client, ECMP_PEER, [
    'client', '--hosts', topo.hosts.join(','), '--servers', topo.servers.join(','),
    '--udp-port', String(UDP_PORT), '--tcp-port', String(TCP_PORT), '--source-port', String(SOURCE_PORT), '--timeout', String(timeoutMs),
  ]);
  if (child.stdout === null || child.stdin === null) throw new Error('ecmp client needs pipes');
  const stdin = child.stdin;
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  createInterface({ input: child.stdout }).on('line', (l) => {
    if (l.startsWith('{')) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const waitLine = async (pred: (o: Record<string, unknown>) => boolean, ms: number, what: string): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const o = lines.find(pred);
      if (o !== undefined) return o;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`ecmp client: no ${what} (exit ${String(child.exitCode)}): ${JSON.stringify(lines).slice(0, 2000)} ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return waitLine((o) => o['event'] === 'ready', 10_000, 'ready line').then(() => ({
    round: async (name, waitMs) => {
      stdin.write(waitMs === undefined ? `${name}\n` : `${name} ${waitMs}\n`);
      return (await waitLine((o) => o['round'] === name, 2 * (waitMs ?? timeoutMs) + 10_000, `round ${name}`)) as unknown as EcmpRound;
    },
  }));
}

export interface EcmpRun {
  readonly topo: EcmpTopology;
  readonly gws: readonly [RunningGateway, RunningGateway];
  readonly rounds: Rounds;
}

export interface EcmpDone {
  readonly leftovers: string[];
  readonly stopCodes: (number | null)[];
}

export function startGateway(topo: EcmpTopology, g: EcmpGateway): Promise<RunningGateway> {
  const control = `/run/masq/${topo.prefix}-gw${g.index}.sock`;
  // The operator's command on each gateway: its own external address, --up applies the recipe.
  const args = ['run', '--tun', g.tun, '--address', g.external, '--masquerade', `all from ${ECMP_INSIDE_NET} to 0.0.0.0/0`,
    '--workers', '1', '--max-sessions', '20000', '--control', control, '--up', '--lan', 'lan0', '--wan', 'wan0'];
  return launchMasq(g, args, control);
}

export function server(topo: EcmpTopology, argv: readonly string[], label: string): Promise<PeerServer> {
  const child = topo.node(topo.ns.out, argv[0], argv.slice(1), { env: { [WATCH_STDIN_ENV]: '1' } });
  return attachServer(child, label, 10_000);
}

/** Build the topology, start the servers, both gateways and the client; tear everything down whatever happens. */
export async function withEcmp(opts: EcmpOptions, body: (r: EcmpRun) => Promise<void>): Promise<EcmpDone> {
  const topo = await createEcmpTopology(opts);
  const stopCodes: (number | null)[] = [];
  try {
    await server(topo, [PEER_SCRIPT, 'udp-echo', '--port', String(UDP_PORT), '--reflect', '--quiet'], 'udp-echo --reflect');
    await server(topo, [ECMP_PEER, 'tcp-reflect', '--port', String(TCP_PORT)], 'tcp-reflect');
    const gws = (await Promise.all(topo.gateways.map((g) => startGateway(topo, g)))) as [RunningGateway, RunningGateway];
    try {
      await body({ topo, gws, rounds: await startClient(topo, 2_000) });
    } finally {
      for (const gw of gws) stopCodes.push(await gw.stop());
    }
  } finally {
    await topo.destroy();
  }
  return { leftovers: leftoverNamespaces(topo.prefix), stopCodes };
}

/** `masq_mappings` from the gateway's metrics listener (127.0.0.1:9464 in its namespace). */
export async function mappings(topo: EcmpTopology, g: EcmpGateway): Promise<number> {
  const r = await topo.exec(g.ns.gw, [process.execPath, HTTP_GET, 'http://127.0.0.1:9464/metrics', '--timeout', '5000'], { timeoutMs: 10_000 });
  const m = /^masq_mappings (\d+)$/m.exec(r.stdout);
  if (m === null) throw new Error(`no masq_mappings in the metrics of ${g.ns.gw}: ${r.stderr}`);
  return Number(m[1]);
}

export const addrOf = (seen: string): string => seen.slice(0, seen.lastIndexOf(':'));
export const distinct = <T>(xs: readonly T[]): T[] => [...new Set(xs)];
export const insideHosts = (rows: readonly SessionRow[]): string[] => distinct(rows.map((r) => r.inside)).sort();
export const sorted = (xs: readonly string[]): string[] => [...xs].sort();

/**
 * Check one round where every host was answered: per host, its UDP socket shows one external
 * endpoint to every server and its TCP connections the same external address. Returns host →
 * the UDP endpoint seen.
 */
export function oneMappingPerHost(t: ExecutionContext, r: EcmpRound, hosts: readonly string[], externals: readonly string[]): Map<string, string> {
  const seen = new Map<string, string>();
  for (const h of hosts) {
    const udp = r.udp[h];
    const tcp = r.tcp[h];
    const ends = distinct(udp);
    t.is(ends.length, 1, `${r.round}: ${h}'s UDP socket shows one external endpoint to all servers: ${udp.join(' ')}`);
    t.true(externals.includes(addrOf(ends[0])), `${r.round}: ${h} is translated to an external address: ${ends[0]}`);
    t.deepEqual(distinct(tcp.map(addrOf)), [addrOf(ends[0])], `${r.round}: ${h}'s TCP connections leave from the same external address: ${tcp.join(' ')}`);
    seen.set(h, ends[0]);
  }
  return seen;
}
