/**
 * modes.ts — the registry of gateway modes the end-to-end benchmark measures.
 *
 * Owns: `BenchMode` (a topology to build and, for a userspace gateway, how to start it) and the
 * registry. `routing` (plain kernel forwarding) and `kernel-nat` (nftables masquerade, the
 * baseline every ratio is taken against) need no process. `masq` is registered without
 * `startGateway` and is skipped with a note until the gateway author provides one. `toy-tun`
 * (opt-in: name it on the command line) runs the harness's Python 1:1 NAT on a TUN: it shows the
 * `startGateway` plumbing working and what a naive userspace forwarder costs. A masq entry:
 *
 *     registerMode({ ...getMode('masq'), startGateway: async (topo) => {
 *       const child = topo.node(topo.ns.gw, GATEWAY_SCRIPT, [...]);   // tracked by the topology
 *       await topo.waitForTun();                                     // the gateway made the TUN
 *       await topo.routeIntoTun();
 *       return { pid: child.pid!, stop: async () => { child.kill('SIGTERM'); ... } };
 *     } });
 *
 * Contract: `startGateway` runs after the topology is built and before any measurement; the pid
 * it returns is the process whose CPU time is reported (all its threads: /proc/<pid>/stat sums
 * them); `stop()` is awaited before the topology is destroyed and must itself be bounded.
 */

import { TUN_NAT11_SCRIPT, type Topology, type TopologyOptions } from '../src/harness/index.js';
import { startMasq } from '../src/gateway/start.js';

export interface GatewayHandle {
  readonly pid: number;
  stop(): Promise<void>;
}

export interface BenchMode {
  readonly name: string;
  readonly description: string;
  readonly topology: TopologyOptions;
  /** Start the userspace gateway in `topo.ns.gw` and route into it; absent for kernel modes. */
  readonly startGateway?: (topo: Topology) => Promise<GatewayHandle>;
  /** True when the mode needs `startGateway` and it has not been provided yet. */
  readonly needsGateway?: boolean;
  /** Run only when named on the command line. */
  readonly optIn?: boolean;
}

const registry = new Map<string, BenchMode>();

export function registerMode(mode: BenchMode): void {
  registry.set(mode.name, mode);
}

export function getMode(name: string): BenchMode {
  const m = registry.get(name);
  if (m === undefined) throw new Error(`unknown bench mode "${name}" (known: ${[...registry.keys()].join(', ')})`);
  return m;
}

/** The modes a run without mode names measures (all but the opt-in ones). */
export function allModes(): BenchMode[] {
  return [...registry.values()].filter((m) => m.optIn !== true);
}

/** Ratios in the report are taken against this mode. */
export const BASELINE = 'kernel-nat';

registerMode({ name: 'routing', description: 'plain kernel forwarding, no NAT', topology: { mode: 'routing', hosts: 2 } });
registerMode({ name: 'kernel-nat', description: 'nftables masquerade (the kernel NAT)', topology: { mode: 'kernel-nat', hosts: 2 } });
function masqMode(workers: number, offload = false, sched?: string): BenchMode {
  return {
    name: (workers === 1 ? 'masq' : `masq-${workers}w`) + (offload ? '-offload' : '') + (sched !== undefined ? `-sched-${sched}` : ''),
    description: `the masq userspace gateway on a TUN, ${workers} worker(s)${offload ? ', TUN offloads (TSO, checksum)' : ''}${sched !== undefined ? `, --sched ${sched}` : ''}`,
    topology: { mode: 'masq', hosts: 2 },
    ...(sched !== undefined ? { optIn: true } : {}),
    startGateway: async (topo) => {
      // No per-host limits: the kernel NAT compared against has none, and the connection-rate
      // step opens more connections from one host than the default port limit admits.
      const gw = await startMasq(topo, { workers, extra: ['-q', '--host-limit', '0', '--host-port-limit', '0', ...(offload ? ['--offload'] : []), ...(sched !== undefined ? ['--sched', sched] : [])] });
      return { pid: gw.proc.pid!, stop: async () => void (await gw.stop()) };
    },
  };
}
registerMode(masqMode(1));
registerMode(masqMode(2));
registerMode(masqMode(1, true));
// Opt-in: the packet threads' scheduling policies side by side (the default is io=batch).
registerMode(masqMode(1, false, 'normal'));
registerMode(masqMode(1, false, 'batch'));

registerMode({
  name: 'toy-tun',
  description: 'Python 1:1 NAT on a TUN (harness stand-in; first inside host only)',
  topology: { mode: 'masq', hosts: 2 },
  optIn: true,
  startGateway: async (topo) => {
    const child = topo.spawn(topo.ns.gw, ['python3', TUN_NAT11_SCRIPT, topo.inside[0].addr, topo.external, topo.gateway.tun]);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('toy gateway not ready after 5 s')), 5_000);
      child.stdout?.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await topo.waitForTun();
    await topo.routeIntoTun();
    if (child.pid === undefined) throw new Error('toy gateway has no pid');
    return {
      pid: child.pid,
      stop: async () => {
        child.kill('SIGTERM');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      },
    };
  },
});
