/**
 * modes.ts — the registry of gateway modes the end-to-end benchmark measures.
 *
 * Owns: `BenchMode` (a topology to build and, for a userspace gateway, how to start it) and the
 * registry. `routing` (plain kernel forwarding) and `kernel-nat` (nftables masquerade, the
 * baseline every ratio is taken against) need no process. `cnat` and `cnat-offload` run the
 * project's minimal single-threaded C NAT (`bench/cnat/cnat.c`, built here with the system `cc`
 * on first use) without and with TUN offloads: the userspace baseline of the bar. `masq` runs
 * masq as shipped (its defaults, no --workers: one worker per core), `masq-1w` with one worker,
 * and `masq-no-offload` / `masq-offload` with offloads off / on (whichever of the two differs
 * from the defaults runs by default, the other is opt-in). Opt-in modes (name them on the
 * command line): `masq-2w`, `masq-no-steering`, `masq-no-coalesce`, `masq-no-park-read`, the `--io-thread-reads` variants (`masq-io-thread`,
 * `masq-1w-io-thread`, `masq-2w-io-thread`), `toy-tun` (the harness's Python 1:1 NAT) and the
 * `--sched` variants. A masq entry:
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

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { TUN_NAT11_SCRIPT, type Topology, type TopologyOptions } from '../src/harness/index.js';
import { MASQ_MAIN, REPO, startMasq, type RunningGateway } from '../src/gateway/start.js';

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
  /** Why the mode cannot run on this machine (it is then skipped with that note), or null. */
  readonly unavailable?: () => string | null;
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

/** Every mode, opt-in ones included (for --help). */
export function everyMode(): BenchMode[] {
  return [...registry.values()];
}

/** Ratios in the report are taken against this mode. */
export const BASELINE = 'kernel-nat';

/**
 * Whether the built masq knows `--no-offload` (offloads on by default). Until it does, `masq`
 * (its defaults) runs without offloads and `masq-offload` shows them; afterwards `masq` runs
 * with them and `masq-no-offload` shows the gateway without.
 */
export function masqOffloadByDefault(): boolean {
  try {
    return readFileSync(path.join(path.dirname(MASQ_MAIN), 'help.js'), 'utf8').includes('--no-offload');
  } catch {
    return false;
  }
}
const OFFLOAD_DEFAULT = masqOffloadByDefault();
/** What `masq run` without --workers starts here: one worker per core (cli run.ts). */
const DEFAULT_WORKERS = availableParallelism();

registerMode({ name: 'routing', description: 'plain kernel forwarding, no NAT', topology: { mode: 'routing', hosts: 2 } });
registerMode({ name: 'kernel-nat', description: 'nftables masquerade (the kernel NAT)', topology: { mode: 'kernel-nat', hosts: 2 } });
/** `offload`: undefined = masq's defaults, true = `--offload`, false = `--no-offload` (or the default while that flag does not exist). */
function masqMode(workers: number | 'default', offload?: boolean, sched?: string, optIn = sched !== undefined, ioThread = false): BenchMode {
  const flag = offload === true ? ['--offload'] : offload === false && OFFLOAD_DEFAULT ? ['--no-offload'] : [];
  const what =
    offload === undefined
      ? `defaults (offloads ${OFFLOAD_DEFAULT ? 'on' : 'off'})`
      : offload
        ? '--offload (TSO, checksum)'
        : OFFLOAD_DEFAULT
          ? '--no-offload'
          : 'offloads off: the default today (no --no-offload flag yet), the same as masq';
  return {
    name: (workers === 'default' ? 'masq' : `masq-${workers}w`) + (offload === true ? '-offload' : offload === false ? '-no-offload' : '') + (sched !== undefined ? `-sched-${sched}` : '') + (ioThread ? '-io-thread' : ''),
    description: `the masq userspace gateway on a TUN, ${workers === 'default' ? `as shipped: ${DEFAULT_WORKERS} worker(s) here (one per core)` : `${workers} worker(s)`}, ${what}${sched !== undefined ? `, --sched ${sched}` : ''}${ioThread ? ', --io-thread-reads (the I/O thread reads every packet and hands it over)' : ''}`,
    topology: { mode: 'masq', hosts: 2 },
    ...(optIn ? { optIn: true } : {}),
    startGateway: async (topo) => {
      const gw = await startMasq(topo, { workers, extra: [...BENCH_FLAGS, ...flag, ...(sched !== undefined ? ['--sched', sched] : []), ...(ioThread ? ['--io-thread-reads'] : [])] });
      return masqHandle(gw);
    },
  };
}

/**
 * Every masq bench mode: quiet, and no per-host limits (the kernel NAT compared against has
 * none, and the connection-rate step opens more connections from one host than the default
 * port limit admits).
 */
const BENCH_FLAGS = ['-q', '--host-limit', '0', '--host-port-limit', '0'] as const;

/** An opt-in mode: masq as shipped, but with `flags` turning one of its defaults off. */
function masqWithout(name: string, flags: readonly string[], what: string): BenchMode {
  return {
    ...masqMode('default'),
    name,
    description: `masq as shipped but ${flags.join(' ')}: ${what}`,
    optIn: true,
    startGateway: async (topo) => masqHandle(await startMasq(topo, { workers: 'default', extra: [...BENCH_FLAGS, ...flags] })),
  };
}

/**
 * A running masq as a bench gateway; at stop it prints, like the C NAT, what its workers did
 * (`masq stats --json`): packets read from their queues, handed over, and UDP datagrams written
 * in super-packets (coalesce.ts).
 */
function masqHandle(gw: RunningGateway): GatewayHandle {
  return {
    pid: gw.proc.pid!,
    stop: async () => {
      const r = await gw.masq(['stats', '--json']).catch(() => null);
      try {
        const w = (JSON.parse(r?.stdout ?? '') as { workers: { reads?: number; handedOver?: number; udpSupers?: number; udpCoalesced?: number; uringPasses?: number }[] }).workers;
        const sum = (k: 'reads' | 'handedOver' | 'udpSupers' | 'udpCoalesced' | 'uringPasses'): number => w.reduce((a, x) => a + (x[k] ?? 0), 0);
        process.stderr.write(`  masq: read ${sum('reads')}${sum('uringPasses') > 0 ? ` in ${sum('uringPasses')} io_uring pass(es)` : ''}, handed over ${sum('handedOver')}, ${sum('udpCoalesced')} UDP datagram(s) written in ${sum('udpSupers')} super-packet(s)\n`);
      } catch {
        // No stats (the gateway had already stopped): nothing to add.
      }
      await gw.stop();
    },
  };
}

/** The single-threaded C NAT (bench/cnat/cnat.c), built on first use with the system `cc`. */
export const CNAT_SOURCE = path.join(REPO, 'bench/cnat/cnat.c');
export const CNAT_BINARY = path.join(REPO, 'bench/cnat/build/cnat');
let cnatBuild: string | null | undefined;

/** Build the C NAT when its binary is missing or older than the source; null when ready, else why not. */
export function buildCnat(): string | null {
  if (cnatBuild !== undefined) return cnatBuild;
  if (existsSync(CNAT_BINARY) && statSync(CNAT_BINARY).mtimeMs >= statSync(CNAT_SOURCE).mtimeMs) return (cnatBuild = null);
  mkdirSync(path.dirname(CNAT_BINARY), { recursive: true });
  // Built under a name of its own and renamed: a bench and a test building at once each get a whole binary.
  const tmp = `${CNAT_BINARY}.${process.pid}`;
  const r = spawnSync('cc', ['-O2', '-Wall', '-Wextra', '-o', tmp, CNAT_SOURCE], { encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) renameSync(tmp, CNAT_BINARY);
  cnatBuild = r.status === 0 ? null : `cc failed to build ${CNAT_SOURCE}: ${r.error?.message ?? r.stderr.trim()}`;
  return cnatBuild;
}

/**
 * Start a TUN program that writes `ready` once its TUN is open (cnat, the Python toy), wait for
 * it (5 s), then route into the TUN. Stopped with SIGTERM, SIGKILL after 2 s; what it wrote to
 * stderr last (cnat: its counters) is logged then and kept for `lastWords()`.
 */
export async function startTunProgram(topo: Topology, argv: readonly string[]): Promise<GatewayHandle & { lastWords(): string }> {
  const child = topo.spawn(topo.ns.gw, argv);
  // Its last words (cnat's counters on exit) go to the bench's log.
  let said = '';
  child.stderr?.on('data', (d: Buffer) => {
    said = (said + d.toString()).slice(-2_000);
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${argv[0]}: not ready after 5 s`)), 5_000);
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv[0]} exited (${String(code)}) before it was ready`));
    });
  });
  await topo.waitForTun();
  await topo.routeIntoTun();
  if (child.pid === undefined) throw new Error(`${argv[0]} has no pid`);
  return {
    pid: child.pid,
    lastWords: () => said,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 2_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (said.trim() !== '') process.stderr.write(`  ${said.trim().split('\n').join('\n  ')}\n`);
    },
  };
}

function cnatMode(offload: boolean, uring = false): BenchMode {
  return {
    name: (offload ? 'cnat-offload' : 'cnat') + (uring ? '-uring' : ''),
    description: `minimal single-threaded C NAPT on a TUN (bench/cnat/cnat.c)${offload ? ', IFF_VNET_HDR with checksum, TSO4 and USO4 offloads' : ''}${uring ? ', its I/O through io_uring (one multishot read, writes batched: one io_uring_enter per pass)' : ', one read + one write per packet'}`,
    topology: { mode: 'masq', hosts: 2 },
    ...(uring ? { optIn: true } : {}),
    unavailable: buildCnat,
    startGateway: (topo) => startTunProgram(topo, [CNAT_BINARY, topo.gateway.tun, topo.insideNet, topo.external, '--seconds', '600', ...(offload ? ['--offload'] : []), ...(uring ? ['--uring'] : [])]),
  };
}

registerMode(cnatMode(false));
registerMode(cnatMode(true));
// What a TUN gateway gains by batching its system calls (io_uring): information, not a bar.
registerMode(cnatMode(false, true));
registerMode(cnatMode(true, true));
// masq as shipped (no --workers: one worker per core) is the bar's "masq"; one worker beside it.
registerMode(masqMode('default'));
registerMode(masqMode(1));
registerMode(masqMode('default', false, undefined, !OFFLOAD_DEFAULT));
registerMode(masqMode(2, undefined, undefined, true));
// Run to completion against the I/O thread reading every packet (opt-in, for side by side).
registerMode(masqMode('default', undefined, undefined, true, true));
registerMode(masqMode(1, undefined, undefined, true, true));
registerMode(masqMode(2, undefined, undefined, true, true));
registerMode(masqMode('default', true, undefined, OFFLOAD_DEFAULT));
// Opt-in: masq as shipped with one of its defaults turned off, side by side with it.
registerMode(masqWithout('masq-no-coalesce', ['--no-udp-coalesce'], 'one TUN write per UDP datagram (coalesce.ts off)'));
registerMode(masqWithout('masq-no-park-read', ['--no-io-uring', '--no-park-read'], 'an idle worker waits in poll(2), then reads (io_uring and the addon\'s parkRead off)'));
registerMode(masqWithout('masq-no-io-uring', ['--no-io-uring'], 'read(2) and write(2) per packet, an idle worker asleep in read(2)'));
registerMode(masqWithout('masq-no-steering', ['--no-steering'], 'the kernel\'s automatic flow steering chooses the queues (steering.ts off)'));
// Opt-in: the packet threads' scheduling policies side by side (the default is io=batch).
registerMode(masqMode('default', undefined, 'normal'));
registerMode(masqMode('default', undefined, 'batch'));

registerMode({
  name: 'toy-tun',
  description: 'Python 1:1 NAT on a TUN (harness stand-in; first inside host only)',
  topology: { mode: 'masq', hosts: 2 },
  optIn: true,
  startGateway: (topo) => startTunProgram(topo, ['python3', TUN_NAT11_SCRIPT, topo.inside[0].addr, topo.external, topo.gateway.tun]),
});

