/**
 * ecmp.ts — the namespace network for "beyond one machine": an ECMP router spreading inside
 * hosts over two masq gateways, each with its own external address (docs/SCALING.md).
 *
 * Owns: `createEcmpTopology` and the `EcmpTopology` object: the address plan, the namespaces,
 * links and routes, the router's multipath route and hash policy, and the processes started
 * inside (tracked, killed at `destroy`).
 *
 *     ${p}h1 eth0 10.200.0.2/24 + the inside hosts 10.200.0.10.. (secondary addresses, one per host)
 *        │
 *     ${p}rt lan0 10.200.0.1/24     default nexthop via 10.201.1.2 dev ga nexthop via 10.201.2.2 dev gb
 *        │                          (or none: `routes: 'none'` leaves it to a routing daemon)
 *        ├─ ga 10.201.1.1/24 ─── lan0 10.201.1.2/24  ${p}gw1  wan0 198.51.100.1/24 ─┐  external 198.51.100.101
 *        └─ gb 10.201.2.1/24 ─── lan0 10.201.2.2/24  ${p}gw2  wan0 198.51.100.2/24 ─┤  external 198.51.100.102
 *                                                                                  br0 (bridge) 198.51.100.10,.11,.12/24  ${p}out
 *
 * The router hashes on the inside source address only (`fib_multipath_hash_policy=3`,
 * `fib_multipath_hash_fields=0x0001`, kernel ≥ 5.12) unless `hashPolicy` says otherwise, with a
 * fixed hash seed (`fib_multipath_hash_seed`, kernel ≥ 6.11, set when present) so the split is
 * the same on every run of one kernel. Each gateway namespace gets the `prepare` phase of the
 * routing recipe at creation (inside traffic refused until a gateway runs) and a route back to
 * the inside network via the router; `gateways[i]` has what `launchMasq` needs to start masq
 * there. The gateways answer every refused packet with ICMP (`icmp_ratelimit=0`, a burst of
 * 10000): with the kernel's defaults (one per second per host after a burst of 6, 50 in all) which
 * of a dead gateway's hosts hear "unreachable" and which time out would be a matter of timing. Neither the server nor the gateways' outside has any route to 10.200.0.0/24: a packet
 * that leaves a gateway untranslated cannot come back.
 *
 * Contract: all traffic stays in these namespaces; every command is bounded; `destroy()`
 * (idempotent, also run on process exit and on SIGINT/SIGTERM/SIGHUP through cleanup.ts) kills
 * the tracked processes and anything else inside, deletes the namespaces and releases the prefix.
 */

import type { ChildProcess } from 'node:child_process';
import { applyRecipe, routingPhases, type RecipePhases, type RoutingOptions } from '@masq/cli/routing';
import type { Destroyable } from './cleanup.js';
import { run, type ExecOptions, type ExecResult } from './exec.js';
import { createGroup, NamespaceGroup } from './group.js';

export const ECMP_INSIDE_NET = '10.200.0.0/24';
export const ECMP_SERVERS = ['198.51.100.10', '198.51.100.11', '198.51.100.12'] as const;
const ROUTER_LAN = '10.200.0.1';
const CLIENT_MAIN = '10.200.0.2';
const FIRST_HOST = 10;
const MAX_HOSTS = 200;
/** The fixed hash seed the router uses where the kernel lets it be set. */
export const ECMP_HASH_SEED = 1;

/** A multipath hash setting of the router: `{ policy: 3, fields: 0x0001 }` is source address only. */
export interface HashPolicy {
  readonly policy: 0 | 1 | 2 | 3;
  /** With policy 3: the `fib_multipath_hash_fields` bit mask. */
  readonly fields?: number;
}

export const SOURCE_ONLY: HashPolicy = { policy: 3, fields: 0x0001 };

export interface EcmpOptions {
  /** Inside hosts (addresses on the client namespace), 2..200; default 24. */
  readonly hosts?: number;
  /** The router's multipath hash; default `SOURCE_ONLY`. */
  readonly hashPolicy?: HashPolicy;
  /**
   * The router's default route: `static` (default) the two-nexthop route at creation; `none` no
   * default route, for a routing daemon to install (the FRR test).
   */
  readonly routes?: 'static' | 'none';
  /** Namespace base name; default `mqt`. */
  readonly base?: string;
  readonly log?: (line: string) => void;
}

/** One gateway namespace: what `launchMasq` (test/src/gateway/start.ts) needs, and its addresses. */
export interface EcmpGateway {
  /** 1 or 2. */
  readonly index: number;
  readonly ns: { readonly gw: string };
  /** The router's next hop for this gateway (its lan0 address). */
  readonly nexthop: string;
  /** The router's interface towards this gateway (`ga`, `gb`). */
  readonly routerIf: string;
  readonly external: string;
  readonly routing: RoutingOptions;
  readonly tun: string;
  exec(ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  node(ns: string, scriptPath: string, args: readonly string[], opts?: { env?: Readonly<Record<string, string>> }): ChildProcess;
  waitForTun(timeoutMs?: number): Promise<void>;
  routeIntoTun(): Promise<void>;
}

export interface EcmpTopology extends Destroyable {
  readonly prefix: string;
  readonly namespaces: readonly string[];
  readonly ns: { readonly client: string; readonly rt: string; readonly out: string };
  /** The inside hosts' addresses, in order (10.200.0.10, .11, ...). */
  readonly hosts: readonly string[];
  readonly servers: readonly string[];
  readonly gateways: readonly [EcmpGateway, EcmpGateway];
  exec(ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  execOk(ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running process in a namespace; tracked and killed at destroy. */
  spawn(ns: string, argv: readonly string[], opts?: { env?: Readonly<Record<string, string>> }): ChildProcess;
  node(ns: string, scriptPath: string, args: readonly string[], opts?: { env?: Readonly<Record<string, string>> }): ChildProcess;
  /** The router's default route as `ip route show` prints it. */
  routerDefault(): Promise<string>;
  /** Make the router's default route use these gateways (indices 1, 2) only: what a routing daemon does when a gateway fails. */
  setNexthops(indices: readonly number[]): Promise<void>;
  destroy(): Promise<void>;
}

class EcmpImpl extends NamespaceGroup implements EcmpTopology {
  readonly namespaces: string[];
  readonly ns: { client: string; rt: string; out: string };
  readonly hosts: string[];
  readonly servers: string[] = [...ECMP_SERVERS];
  readonly gateways: [EcmpGateway, EcmpGateway];

  constructor(
    prefix: string,
    private readonly opts: EcmpOptions,
  ) {
    super(prefix, opts.log);
    const n = opts.hosts ?? 24;
    if (!Number.isInteger(n) || n < 2 || n > MAX_HOSTS) throw new Error(`hosts must be 2..${MAX_HOSTS}`);
    const p = prefix;
    this.ns = { client: `${p}h1`, rt: `${p}rt`, out: `${p}out` };
    this.hosts = Array.from({ length: n }, (_, i) => `10.200.0.${FIRST_HOST + i}`);
    const gw = (index: number): EcmpGateway => {
      const ns = `${p}gw${index}`;
      const routing: RoutingOptions = { lan: 'lan0', wan: 'wan0', tun: 'masq0', externals: [`198.51.100.${100 + index}`] };
      let phases: RecipePhases | undefined;
      return {
        index,
        ns: { gw: ns },
        nexthop: `10.201.${index}.2`,
        routerIf: index === 1 ? 'ga' : 'gb',
        external: routing.externals[0],
        routing,
        tun: routing.tun,
        exec: (nsName, argv, o) => this.exec(nsName, argv, o),
        node: (nsName, script, args, o) => this.node(nsName, script, args, o),
        waitForTun: async (timeoutMs = 5_000) => {
          const deadline = Date.now() + timeoutMs;
          while ((await run(['ip', '-n', ns, 'link', 'show', 'dev', routing.tun], { timeoutMs: 2_000 })).code !== 0) {
            if (Date.now() > deadline) throw new Error(`TUN ${routing.tun} did not appear in ${ns} within ${timeoutMs} ms`);
            await new Promise((r) => setTimeout(r, 50));
          }
        },
        routeIntoTun: async () => {
          phases ??= routingPhases(routing);
          await this.recipe(ns, phases.tun);
        },
      };
    };
    this.gateways = [gw(1), gw(2)];
    this.namespaces = [this.ns.client, this.ns.rt, this.gateways[0].ns.gw, this.gateways[1].ns.gw, this.ns.out];
  }

  private async recipe(ns: string, cmds: readonly (readonly string[])[]): Promise<void> {
    const log = this.opts.log;
    await applyRecipe(cmds, { netns: ns, ...(log === undefined ? {} : { log }) });
  }

  private veth(ns: string, name: string, peerNs: string, peer: string): Promise<void> {
    return this.ip(ns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', peer, 'netns', peerNs);
  }

  private async up(ns: string, dev: string, ...addrs: string[]): Promise<void> {
    for (const a of addrs) await this.ip(ns, 'addr', 'add', a, 'dev', dev);
    await this.ip(ns, 'link', 'set', dev, 'up');
  }

  async build(): Promise<void> {
    await this.addNamespaces();
    for (const n of this.namespaces) {
      await this.ip(n, 'link', 'set', 'lo', 'up');
      await this.sysctl(n, ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    }
    const { client, rt, out } = this.ns;

    // Inside hosts: one namespace, one address per host, each used as a bound source.
    await this.veth(rt, 'lan0', client, 'eth0');
    await this.up(client, 'eth0', `${CLIENT_MAIN}/24`, ...this.hosts.map((h) => `${h}/24`));
    await this.ip(client, 'route', 'add', 'default', 'via', ROUTER_LAN);
    await this.sysctl(client, ['net.ipv4.ip_local_port_range=10000 65000', 'net.ipv4.tcp_tw_reuse=1']);

    // The router: forwarding, no reverse-path filter, the multipath hash, the two next hops.
    await this.up(rt, 'lan0', `${ROUTER_LAN}/24`);
    const hash = this.opts.hashPolicy ?? SOURCE_ONLY;
    const settings = ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', `net.ipv4.fib_multipath_hash_policy=${hash.policy}`];
    if (hash.fields !== undefined) settings.push(`net.ipv4.fib_multipath_hash_fields=0x${hash.fields.toString(16).padStart(4, '0')}`);
    await this.sysctl(rt, settings);
    // The seed sysctl is per namespace; the file under /proc/sys shows whether this kernel has it.
    if ((await this.exec(rt, ['test', '-e', '/proc/sys/net/ipv4/fib_multipath_hash_seed'])).code === 0) await this.sysctl(rt, [`net.ipv4.fib_multipath_hash_seed=${ECMP_HASH_SEED}`]);

    // The outside: a bridge in the server's namespace, one port per gateway.
    await this.ip(out, 'link', 'add', 'br0', 'type', 'bridge');
    await this.up(out, 'br0', ...this.servers.map((s) => `${s}/24`));
    for (const g of this.gateways) {
      const gns = g.ns.gw;
      await this.veth(rt, g.routerIf, gns, 'lan0');
      await this.up(rt, g.routerIf, `10.201.${g.index}.1/24`);
      await this.up(gns, 'lan0', `${g.nexthop}/24`);
      await this.veth(gns, 'wan0', out, `g${g.index}`);
      await this.up(gns, 'wan0', `198.51.100.${g.index}/24`);
      await this.ip(out, 'link', 'set', `g${g.index}`, 'master', 'br0', 'up');
      // Translated replies go back to the inside hosts through the router.
      await this.ip(gns, 'route', 'add', ECMP_INSIDE_NET, 'via', `10.201.${g.index}.1`, 'dev', 'lan0');
      await this.sysctl(gns, ['net.ipv4.icmp_ratelimit=0', 'net.ipv4.icmp_msgs_burst=10000']);
      await this.recipe(gns, routingPhases(g.routing).prepare);
    }
    if ((this.opts.routes ?? 'static') === 'static') await this.setNexthops([1, 2]);
  }

  async setNexthops(indices: readonly number[]): Promise<void> {
    const hops = indices.map((i) => {
      const g = this.gateways.find((x) => x.index === i);
      if (g === undefined) throw new Error(`no gateway ${i}`);
      return ['nexthop', 'via', g.nexthop, 'dev', g.routerIf];
    });
    if (hops.length === 0) throw new Error('setNexthops needs at least one gateway');
    await this.ip(this.ns.rt, 'route', 'replace', 'default', ...hops.flat());
  }

  async routerDefault(): Promise<string> {
    return (await this.execOk(this.ns.rt, ['ip', 'route', 'show', 'default'])).stdout.trim();
  }

}

/** Build the ECMP topology (see the file header). On any failure, what was built is removed again. */
export function createEcmpTopology(opts: EcmpOptions = {}): Promise<EcmpTopology> {
  return createGroup(opts.base, (prefix) => new EcmpImpl(prefix, opts));
}
