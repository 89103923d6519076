/**
 * start.ts — start the real gateway (`./bin/masq run`) inside a topology's gateway namespace
 * and route traffic into its TUN; used by the end-to-end tests, the demo checks and the
 * end-to-end benchmark.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { Topology } from '../harness/index.js';
import { request } from '@masq/cli/control';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
export const MASQ_MAIN = path.join(REPO, 'packages/cli/dist/src/main.js');

export interface RunningGateway {
  proc: ChildProcess;
  control: string;
  log: string[];
  /** Run a masq client command against this gateway (in its namespace). */
  masq(args: readonly string[]): Promise<{ stdout: string; stderr: string; code: number | null }>;
  stop(): Promise<number | null>;
}

/** What `launchMasq` needs of a topology: a Topology, or one gateway of the ECMP topology (harness/ecmp.ts). */
export type GatewayHost = Pick<Topology, 'exec' | 'node' | 'waitForTun' | 'routeIntoTun'> & { readonly ns: { readonly gw: string } };

export interface StartOptions {
  /** `--workers N` (default 1); 'default' passes no --workers: masq's own default, one per core. */
  workers?: number | 'default';
  extra?: readonly string[];
  masquerade?: readonly string[];
  forwards?: readonly string[];
}

export async function startMasq(topo: Topology, opts: StartOptions = {}): Promise<RunningGateway> {
  const control = `/run/masq/${topo.prefix}.sock`;
  const args = ['run', '--tun', topo.gateway.tun, '--control', control, ...(opts.workers === 'default' ? [] : ['--workers', String(opts.workers ?? 1)])];
  // The topology routes the external addresses into the outside TUN: the gateway must read it.
  if (topo.gateway.outsideTun !== undefined) args.push('--outside-tun', topo.gateway.outsideTun);
  for (const e of topo.externals) args.push('--address', e);
  for (const m of opts.masquerade ?? [`all from ${topo.insideNet} to 0.0.0.0/0`]) args.push('--masquerade', m);
  for (const f of opts.forwards ?? []) args.push('--forward', f);
  args.push(...(opts.extra ?? []));
  return launchMasq(topo, args, control);
}

/**
 * Run `masq ARGS` in `topo.ns.gw` (tracked by the topology), wait for `gateway up` (bounded),
 * then for the TUN, and route traffic into it (the wait is bounded at 60 s: allocating and
 * prefaulting the default table takes seconds, and tens of them on a loaded 2-core machine).
 * `control` is the control socket the arguments
 * (or the config file they name) set.
 */
export async function launchMasq(topo: GatewayHost, args: readonly string[], control: string, upTimeoutMs = 60_000): Promise<RunningGateway> {
  const proc = topo.node(topo.ns.gw, MASQ_MAIN, [...args]);
  const log: string[] = [];
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    proc.once('exit', (code) => {
      exited = code;
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    let poll: NodeJS.Timeout | undefined;
    const settle = (e?: Error): void => {
      clearTimeout(timer);
      clearInterval(poll);
      if (e) reject(e);
      else resolve();
    };
    const timer = setTimeout(() => settle(new Error(`masq did not come up within ${upTimeoutMs} ms:\n${log.join('')}`)), upTimeoutMs);
    proc.stdout?.on('data', (d: Buffer) => {
      log.push(d.toString());
      if (log.join('').includes('gateway up')) settle();
    });
    proc.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
    // With -q there is no "gateway up" line: the control socket answering is the sign.
    if (args.includes('-q') || args.includes('--quiet')) poll = setInterval(() => void request(control, 'status', {}, 1_000).then(() => settle(), () => undefined), 100);
    void exit.then((code) => settle(new Error(`masq exited (${String(code)}) before coming up:\n${log.join('')}`)));
  });
  await topo.waitForTun();
  await topo.routeIntoTun();
  return {
    proc,
    control,
    log,
    masq: async (a) => {
      const r = await topo.exec(topo.ns.gw, [process.execPath, MASQ_MAIN, ...a, '--control', control], { timeoutMs: 15_000 });
      return { stdout: r.stdout, stderr: r.stderr, code: r.code };
    },
    stop: async () => {
      if (exited !== undefined) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
      const code = await exit;
      clearTimeout(t);
      return code;
    },
  };
}
