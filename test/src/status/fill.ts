/**
 * fill.ts — fill a gateway's masquerade table with up to 100,000 UDP sessions, bounded in count
 * and time, for the tests that need a large table (the status page's 100,000-session test, the
 * control-plane listing test). Runs the sweep tool (sweep.ts) from the topology's inside hosts
 * only: traffic stays in the test's namespaces.
 *
 * Contract: `fillTable(topo, gw, o)` sweeps from the first `o.hosts` inside hosts at once, each
 * `o.sockets` fixed source ports × `o.dports` destination ports on `topo.servers[1]`, and repeats
 * the sweep (at most `o.rounds` times) while the gateway holds fewer live sessions than one
 * full sweep makes; a repeat refreshes the sessions it already made and fills in what a busy
 * gateway dropped. Returns the live count after each round.
 */
import type { Topology } from '../harness/index.js';
import { stats } from '../gateway/e2e.js';
import type { RunningGateway } from '../gateway/start.js';

const SWEEP = new URL('./sweep.js', import.meta.url).pathname;

export interface FillOptions {
  /** Inside hosts that sweep (from the first). Default 2. */
  readonly hosts?: number;
  /** Source ports per host (from 20000). Default 25. */
  readonly sockets?: number;
  /** Destination ports per source port (from 10000). Default 2,000. */
  readonly dports?: number;
  /** At most this many sweeps. Default 6. */
  readonly rounds?: number;
}

/** Live sessions of every protocol (`masq stats --json`). */
export async function liveSessions(gw: RunningGateway): Promise<number> {
  return Object.values((await stats(gw)).sessions).reduce((a, b) => a + b, 0);
}

/** `sockets` source ports (from 20000) × `dports` destination ports (from 10000 on `topo.servers[1]`) from inside host `h`. */
export async function sweepFrom(topo: Topology, h: { readonly ns: string; readonly addr: string }, sockets: number, dports: number): Promise<void> {
  const r = await topo.exec(h.ns, [process.execPath, SWEEP, '--to', topo.servers[1], '--sockets', String(sockets), '--dports', String(dports), '--sport-base', '20000', '--dport-base', '10000', '--timeout', '40000'], { timeoutMs: 50_000 });
  if (r.code !== 0) throw new Error(`sweep from ${h.addr}: exit ${String(r.code)}: ${r.stderr}`);
}

/** One sweep from each of the first `hosts` inside hosts at once. */
async function sweep(topo: Topology, hosts: number, sockets: number, dports: number): Promise<void> {
  await Promise.all(topo.inside.slice(0, hosts).map((h) => sweepFrom(topo, h, sockets, dports)));
}

export async function fillTable(topo: Topology, gw: RunningGateway, o: FillOptions = {}): Promise<number[]> {
  const hosts = o.hosts ?? 2;
  const sockets = o.sockets ?? 25;
  const dports = o.dports ?? 2_000;
  const want = hosts * sockets * dports;
  const fills: number[] = [];
  for (let round = 0; round < (o.rounds ?? 6) && (await liveSessions(gw)) < want; round++) {
    await sweep(topo, hosts, sockets, dports);
    fills.push(await liveSessions(gw));
  }
  return fills;
}
