/**
 * topology.ts — builds and tears down the namespace network that the end-to-end tests run in.
 *
 * Owns: `createTopology` and the `Topology` object: the address plan, the namespaces, links and
 * routes, the per-mode gateway setup, and the processes started inside (tracked, killed at
 * `destroy`).
 *
 * Without a router (default):
 *
 *     ${p}h1 eth0 10.200.0.2 ─┐
 *     ${p}h2 eth0 10.200.0.3 ─┼─ vh1,vh2.. ─ lan0 (bridge) 10.200.0.1/24   ${p}gw
 *     ...                      ┘                wan0 198.51.100.1/24 ─── eth0 198.51.100.10,.11,.12/24   ${p}out
 *
 *     external (masq mode): 198.51.100.100, routed into the TUN, proxy-ARPed on wan0.
 *
 * With `router: { mtu }`:
 *
 *     ${p}gw wan0 192.0.2.1/24 ─── gw0 192.0.2.254/24  ${p}rt  srv0 198.51.100.1/24 ─── eth0 198.51.100.10,.11,.12/24  ${p}out
 *                                                      (srv0 and the server's eth0 get `mtu`)
 *     gw: default via 192.0.2.254; server: default via 198.51.100.1; router: forwards, sends ICMP
 *     errors with the kernel's default rate limits. external (masq mode): 192.0.2.100.
 *
 * Modes:
 * - `routing`: plain forwarding; the server (or the router) has a route back to 10.200.0.0/24.
 * - `kernel-nat`: nftables `masquerade` on wan0; the server sees the wan address.
 * - `masq`: the `prepare` phase of `routingRecipe` is applied at creation (forwarding stays off,
 *   and the fail-closed route makes inside traffic unreachable until the TUN is routed). The
 *   caller starts the gateway in `ns.gw`, then calls `routeIntoTun()` (after `waitForTun()` when the
 *   gateway creates the TUN). Or `tun: { persistent: true }` creates the TUN at creation with
 *   `ip tuntap` (the gateway must then open it with the same multi_queue setting) and routes it.
 *
 * In every mode but `routing`, neither the server nor the router has any route to 10.200.0.0/24.
 * IPv6 is disabled in every namespace (no DAD or router-solicitation noise in captures). Inside
 * hosts use ephemeral ports 10000-65000 and `tcp_tw_reuse=1`, so connection-rate runs do not run
 * out of ports.
 *
 * Contract: all traffic stays in these namespaces; every command and wait is bounded; `destroy()`
 * (idempotent) kills the tracked processes and anything else left inside the namespaces, deletes
 * the namespaces and releases the prefix. A live topology is also destroyed on process exit and
 * on SIGINT/SIGTERM/SIGHUP (see cleanup.ts).
 */

import type { ChildProcess } from 'node:child_process';
import { applyRecipe, routingPhases, routingUndo, type RecipePhases, type RoutingOptions } from '@masq/cli/routing';
import { parseIPv4 } from '@masq/core/addr';
import { listNamespaces, type Destroyable } from './cleanup.js';
import { inNetns, run, runOk, runSync, type ExecOptions, type ExecResult } from './exec.js';
import { createGroup, NamespaceGroup } from './group.js';
import { attachServer, clientResult, lastJsonLine, PEER_SCRIPT, type JsonObject, type PeerServer } from './peer-process.js';
import { flagsToArgv, WATCH_STDIN_ENV, type ClientCommand, type ClientResults, type PeerFlags, type ServerCommand } from '../peers/protocol.js';

export type TopologyMode = 'routing' | 'kernel-nat' | 'masq';

export interface TunOptions {
  /** TUN device name; default `masq0`. */
  readonly name?: string;
  /** Create the TUN with `ip tuntap add` at creation and route into it right away. */
  readonly persistent?: boolean;
  /** With `persistent`: create it `multi_queue` (the gateway must then set IFF_MULTI_QUEUE). */
  readonly multiQueue?: boolean;
  /**
   * An outside TUN (`masq run --outside-tun NAME`, which `startMasq` then passes): the recipe
   * routes the external addresses into it instead of the TUN. Not with `persistent`.
   */
  readonly outside?: string;
}

export interface TopologyOptions {
  readonly mode: TopologyMode;
  /** Inside hosts, 1..50; default 2. */
  readonly hosts?: number;
  /** Put a router namespace between the gateway and the server. */
  readonly router?: { readonly mtu?: number };
  /** masq mode: external addresses (default 198.51.100.100, or 192.0.2.100 with a router). */
  readonly externals?: readonly string[];
  /** masq mode: the TUN. */
  readonly tun?: TunOptions;
  /** Namespace base name (2..6 letters); default `mqt`. */
  readonly base?: string;
  /** Receives each command as it runs (for debugging). */
  readonly log?: (line: string) => void;
}

export interface InsideHost {
  /** `h1`, `h2`, ... */
  readonly name: string;
  readonly ns: string;
  readonly ifname: string;
  readonly addr: string;
}

export interface GatewayInfo {
  readonly ns: string;
  /** The bridge the inside hosts hang off. */
  readonly lan: string;
  readonly lanAddr: string;
  readonly wan: string;
  readonly wanAddr: string;
  /** masq mode: the TUN name (`masq0` by default); also set (unused) in other modes. */
  readonly tun: string;
  /** masq mode: the outside TUN (TunOptions.outside), if any. */
  readonly outsideTun?: string;
  /** Bridge ports, one per inside host (`vh1`...). */
  readonly hostPorts: readonly string[];
}

export interface RouterInfo {
  readonly ns: string;
  /** Interface and address facing the gateway. */
  readonly gwSide: { readonly ifname: string; readonly addr: string };
  /** Interface and address facing the server (this link has the MTU). */
  readonly serverSide: { readonly ifname: string; readonly addr: string };
  readonly mtu: number;
}

export interface Namespaces {
  readonly gw: string;
  readonly out: string;
  readonly rt?: string;
  readonly hosts: readonly string[];
}

export interface PeerRun {
  readonly result: ExecResult;
  /** The last JSON line printed, if any. */
  readonly json: JsonObject | null;
}

export interface Topology extends Destroyable {
  readonly prefix: string;
  readonly mode: TopologyMode;
  readonly ns: Namespaces;
  /** Every namespace of this topology. */
  readonly namespaces: readonly string[];
  readonly inside: readonly InsideHost[];
  readonly insideNet: string;
  readonly gatewayLan: string;
  readonly gateway: GatewayInfo;
  /** The masq external address (the first of `externals`). */
  readonly external: string;
  readonly externals: readonly string[];
  /**
   * The source address the server sees for inside traffic: the wan address in kernel-nat mode,
   * `external` in masq mode, null in routing mode (it sees the inside addresses).
   */
  readonly natSource: string | null;
  /** The server's main address (198.51.100.10) and all its addresses (.10, .11, .12). */
  readonly server: string;
  readonly servers: readonly string[];
  readonly serverNs: string;
  readonly router?: RouterInfo;
  /** The routing recipe options for the gateway namespace (masq mode uses them). */
  readonly routing: RoutingOptions;

  /** Run a command in a namespace; bounded by `timeoutMs` (default 10 s); never throws for exit codes. */
  exec(ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but a non-zero exit throws. */
  execOk(ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running process in a namespace; tracked and killed at destroy. */
  spawn(ns: string, argv: readonly string[], opts?: { env?: Readonly<Record<string, string>> }): ChildProcess;
  /** Start a compiled node script in a namespace (tracked). */
  node(ns: string, scriptPath: string, args: readonly string[], opts?: { env?: Readonly<Record<string, string>> }): ChildProcess;
  /** Run a peer client to completion and return its typed result; throws a PeerError on failure. */
  peer<C extends ClientCommand>(ns: string, cmd: C, flags: PeerFlags, opts?: { timeoutMs?: number }): Promise<ClientResults[C]>;
  /** Run a peer client and return what it printed, success or not. */
  peerRaw(ns: string, cmd: ClientCommand, flags: PeerFlags, opts?: { timeoutMs?: number }): Promise<PeerRun>;
  /** Start a peer server; resolves once it prints `listening`. */
  startServer(ns: string, cmd: ServerCommand, flags: PeerFlags, opts?: { readyTimeoutMs?: number }): Promise<PeerServer>;
  /** masq mode: create the TUN with `ip tuntap add` (persistent, owned by root). */
  createTun(opts?: { multiQueue?: boolean }): Promise<void>;
  /** masq mode: wait until the TUN exists (the gateway created it). */
  waitForTun(timeoutMs?: number): Promise<void>;
  /** masq mode: apply the TUN phase of the recipe (routes into the TUN, forwarding on). Idempotent. */
  routeIntoTun(): Promise<void>;
  /** masq mode: apply `routingUndo` (routes and rule out; forwarding stays as it is). */
  unrouteTun(): Promise<void>;
  destroy(): Promise<void>;
}

const INSIDE_NET = '10.200.0.0/24';
const GW_LAN = '10.200.0.1';
const SERVERS = ['198.51.100.10', '198.51.100.11', '198.51.100.12'];
const DIRECT_WAN = '198.51.100.1';
const DIRECT_EXT = '198.51.100.100';
const RT_LINK_GW = '192.0.2.1';
const RT_LINK_RT = '192.0.2.254';
const RT_EXT = '192.0.2.100';
const RT_SERVER_SIDE = '198.51.100.1';

const LAN_IF = 'lan0';
const WAN_IF = 'wan0';
const HOST_IF = 'eth0';
const SERVER_IF = 'eth0';
const RT_GW_IF = 'gw0';
const RT_SRV_IF = 'srv0';

const MAX_HOSTS = 50;

class TopologyImpl extends NamespaceGroup implements Topology {
  readonly mode: TopologyMode;
  readonly ns: Namespaces;
  readonly namespaces: string[];
  readonly inside: InsideHost[];
  readonly insideNet = INSIDE_NET;
  readonly gatewayLan = GW_LAN;
  readonly gateway: GatewayInfo;
  readonly external: string;
  readonly externals: string[];
  readonly natSource: string | null;
  readonly server = SERVERS[0];
  readonly servers = SERVERS;
  readonly serverNs: string;
  readonly router?: RouterInfo;
  readonly routing: RoutingOptions;

  private phases: RecipePhases | undefined;

  constructor(
    prefix: string,
    private readonly opts: TopologyOptions,
  ) {
    super(prefix, opts.log);
    const p = prefix;
    this.mode = opts.mode;
    const hosts = opts.hosts ?? 2;
    if (!Number.isInteger(hosts) || hosts < 1 || hosts > MAX_HOSTS) throw new Error(`hosts must be 1..${MAX_HOSTS}`);
    const hostNs = Array.from({ length: hosts }, (_, i) => `${p}h${i + 1}`);
    this.ns = { gw: `${p}gw`, out: `${p}out`, ...(opts.router === undefined ? {} : { rt: `${p}rt` }), hosts: hostNs };
    this.namespaces = [this.ns.gw, this.ns.out, ...(this.ns.rt === undefined ? [] : [this.ns.rt]), ...hostNs];
    this.serverNs = this.ns.out;
    this.inside = hostNs.map((ns, i) => ({ name: `h${i + 1}`, ns, ifname: HOST_IF, addr: `10.200.0.${i + 2}` }));
    const wanAddr = opts.router === undefined ? DIRECT_WAN : RT_LINK_GW;
    const tun = opts.tun?.name ?? 'masq0';
    const outsideTun = opts.tun?.outside;
    if (outsideTun !== undefined && opts.tun?.persistent === true) throw new Error('tun.outside is not supported with tun.persistent');
    this.gateway = { ns: this.ns.gw, lan: LAN_IF, lanAddr: GW_LAN, wan: WAN_IF, wanAddr, tun, ...(outsideTun === undefined ? {} : { outsideTun }), hostPorts: hostNs.map((_, i) => `vh${i + 1}`) };
    if (opts.router !== undefined) {
      const mtu = opts.router.mtu ?? 1500;
      if (!Number.isInteger(mtu) || mtu < 576 || mtu > 9000) throw new Error(`router mtu ${mtu} must be 576..9000`);
      this.router = { ns: `${p}rt`, gwSide: { ifname: RT_GW_IF, addr: RT_LINK_RT }, serverSide: { ifname: RT_SRV_IF, addr: RT_SERVER_SIDE }, mtu };
    }
    this.externals = [...(opts.externals ?? [opts.router === undefined ? DIRECT_EXT : RT_EXT])];
    for (const e of this.externals) if (parseIPv4(e) === null) throw new Error(`external "${e}" is not an IPv4 address`);
    this.external = this.externals[0];
    this.natSource = opts.mode === 'routing' ? null : opts.mode === 'kernel-nat' ? wanAddr : this.external;
    this.routing = { lan: LAN_IF, wan: WAN_IF, tun, ...(outsideTun === undefined ? {} : { outsideTun }), externals: this.externals };
  }

  async build(): Promise<void> {
    const { ns } = this;
    await this.addNamespaces();
    await Promise.all(
      this.namespaces.map(async (n) => {
        await this.ip(n, 'link', 'set', 'lo', 'up');
        const common = ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];
        const extra = ns.hosts.includes(n) ? ['net.ipv4.ip_local_port_range=10000 65000', 'net.ipv4.tcp_tw_reuse=1'] : n === ns.rt ? ['net.ipv4.ip_forward=1'] : [];
        await this.sysctl(n, [...common, ...extra]);
      }),
    );

    // Inside: a bridge in the gateway, one veth per host.
    await this.ip(ns.gw, 'link', 'add', LAN_IF, 'type', 'bridge');
    await this.ip(ns.gw, 'addr', 'add', `${GW_LAN}/24`, 'dev', LAN_IF);
    await this.ip(ns.gw, 'link', 'set', LAN_IF, 'up');
    for (const [i, h] of this.inside.entries()) {
      const port = this.gateway.hostPorts[i];
      await this.ip(ns.gw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', h.ifname, 'netns', h.ns);
      await this.ip(ns.gw, 'link', 'set', port, 'master', LAN_IF, 'up');
    }
    await Promise.all(
      this.inside.map(async (h) => {
        await this.ip(h.ns, 'addr', 'add', `${h.addr}/24`, 'dev', h.ifname);
        await this.ip(h.ns, 'link', 'set', h.ifname, 'up');
        await this.ip(h.ns, 'route', 'add', 'default', 'via', GW_LAN);
      }),
    );

    // Outside.
    const routing = this.mode === 'routing';
    if (this.router === undefined) {
      await this.ip(ns.gw, 'link', 'add', WAN_IF, 'type', 'veth', 'peer', 'name', SERVER_IF, 'netns', ns.out);
      await this.ip(ns.gw, 'addr', 'add', `${DIRECT_WAN}/24`, 'dev', WAN_IF);
      await this.ip(ns.gw, 'link', 'set', WAN_IF, 'up');
      await this.serverSide(1500);
      if (routing) await this.ip(ns.out, 'route', 'add', INSIDE_NET, 'via', DIRECT_WAN);
    } else {
      const rt = this.router.ns;
      await this.ip(ns.gw, 'link', 'add', WAN_IF, 'type', 'veth', 'peer', 'name', RT_GW_IF, 'netns', rt);
      await this.ip(ns.gw, 'addr', 'add', `${RT_LINK_GW}/24`, 'dev', WAN_IF);
      await this.ip(ns.gw, 'link', 'set', WAN_IF, 'up');
      await this.ip(ns.gw, 'route', 'add', 'default', 'via', RT_LINK_RT);
      await this.ip(rt, 'addr', 'add', `${RT_LINK_RT}/24`, 'dev', RT_GW_IF);
      await this.ip(rt, 'link', 'set', RT_GW_IF, 'up');
      await this.ip(rt, 'link', 'add', RT_SRV_IF, 'mtu', String(this.router.mtu), 'type', 'veth', 'peer', 'name', SERVER_IF, 'netns', ns.out);
      await this.ip(rt, 'addr', 'add', `${RT_SERVER_SIDE}/24`, 'dev', RT_SRV_IF);
      await this.ip(rt, 'link', 'set', RT_SRV_IF, 'up');
      await this.serverSide(this.router.mtu);
      await this.ip(ns.out, 'route', 'add', 'default', 'via', RT_SERVER_SIDE);
      if (routing) await this.ip(rt, 'route', 'add', INSIDE_NET, 'via', RT_LINK_GW);
    }

    // The gateway's mode.
    if (this.mode === 'routing') {
      await this.sysctl(ns.gw, ['net.ipv4.ip_forward=1']);
    } else if (this.mode === 'kernel-nat') {
      const ruleset = [
        'table ip mqt_nat {',
        '  chain postrouting {',
        '    type nat hook postrouting priority srcnat; policy accept;',
        `    oifname "${WAN_IF}" ip saddr ${INSIDE_NET} masquerade`,
        '  }',
        '}',
        '',
      ].join('\n');
      this.log(`nft -f - <<< ${JSON.stringify(ruleset)}`);
      await runOk(inNetns(ns.gw, ['nft', '-f', '-']), { input: ruleset }, this.track);
      await this.sysctl(ns.gw, ['net.ipv4.ip_forward=1']);
    } else {
      this.phases = routingPhases(this.routing);
      await this.applyCommands(this.phases.prepare);
      if (this.opts.tun?.persistent === true) {
        await this.createTun({ multiQueue: this.opts.tun.multiQueue === true });
        await this.routeIntoTun();
      }
    }
  }

  private async serverSide(mtu: number): Promise<void> {
    const out = this.ns.out;
    if (mtu !== 1500) await this.ip(out, 'link', 'set', SERVER_IF, 'mtu', String(mtu));
    for (const a of SERVERS) await this.ip(out, 'addr', 'add', `${a}/24`, 'dev', SERVER_IF);
    await this.ip(out, 'link', 'set', SERVER_IF, 'up');
  }

  private async applyCommands(cmds: readonly (readonly string[])[]): Promise<void> {
    const log = this.opts.log;
    await applyRecipe(cmds, { netns: this.ns.gw, ...(log === undefined ? {} : { log }) });
  }

  private requireMasq(what: string): RecipePhases {
    this.assertLive();
    if (this.phases === undefined) throw new Error(`${what} is for mode 'masq' (this topology is '${this.mode}')`);
    return this.phases;
  }

  async createTun(opts: { multiQueue?: boolean } = {}): Promise<void> {
    this.requireMasq('createTun');
    const args = ['tuntap', 'add', 'dev', this.gateway.tun, 'mode', 'tun', ...(opts.multiQueue === true ? ['multi_queue'] : [])];
    await this.ip(this.ns.gw, ...args);
  }

  async waitForTun(timeoutMs = 5_000): Promise<void> {
    this.requireMasq('waitForTun');
    const deadline = Date.now() + timeoutMs;
    for (const dev of [this.gateway.tun, ...(this.gateway.outsideTun === undefined ? [] : [this.gateway.outsideTun])]) {
      for (;;) {
        const r = await run(['ip', '-n', this.ns.gw, 'link', 'show', 'dev', dev], { timeoutMs: 2_000 });
        if (r.code === 0) break;
        if (Date.now() > deadline) throw new Error(`TUN ${dev} did not appear in ${this.ns.gw} within ${timeoutMs} ms`);
        await new Promise((r2) => setTimeout(r2, 50));
      }
    }
  }

  async routeIntoTun(): Promise<void> {
    const phases = this.requireMasq('routeIntoTun');
    await this.applyCommands(phases.tun);
  }

  async unrouteTun(): Promise<void> {
    this.requireMasq('unrouteTun');
    await this.applyCommands(routingUndo(this.routing));
  }

  async peerRaw(ns: string, cmd: ClientCommand, flags: PeerFlags, opts: { timeoutMs?: number } = {}): Promise<PeerRun> {
    const result = await this.exec(ns, [process.execPath, PEER_SCRIPT, cmd, ...flagsToArgv(flags)], { timeoutMs: opts.timeoutMs ?? 30_000 });
    return { result, json: lastJsonLine(result.stdout) };
  }

  async peer<C extends ClientCommand>(ns: string, cmd: C, flags: PeerFlags, opts: { timeoutMs?: number } = {}): Promise<ClientResults[C]> {
    const r = await this.peerRaw(ns, cmd, flags, opts);
    return clientResult(cmd, r.result);
  }

  startServer(ns: string, cmd: ServerCommand, flags: PeerFlags, opts: { readyTimeoutMs?: number } = {}): Promise<PeerServer> {
    const child = this.node(ns, PEER_SCRIPT, [cmd, ...flagsToArgv(flags)], { env: { [WATCH_STDIN_ENV]: '1' } });
    return attachServer(child, `${cmd} in ${ns}`, opts.readyTimeoutMs ?? 5_000);
  }
}

/** Build a topology (see the file header). On any failure, what was built is removed again. */
export function createTopology(opts: TopologyOptions): Promise<Topology> {
  return createGroup(opts.base, (prefix) => new TopologyImpl(prefix, opts));
}

/** Namespaces of this run's pattern that still exist (for "nothing left behind" checks). */
export function leftoverNamespaces(prefix: string): string[] {
  return listNamespaces().filter((n) => n.startsWith(prefix));
}

/** Run a synchronous command in a namespace (for exit paths); exported for tests of the harness. */
export function execSyncIn(ns: string, argv: readonly string[], timeoutMs = 5_000): ExecResult {
  return runSync(inNetns(ns, argv), timeoutMs);
}
