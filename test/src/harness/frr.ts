/**
 * frr.ts — FRR (zebra, bfdd, bgpd) run inside one of a topology's namespaces, for the ECMP test
 * with BGP and BFD (test/e2e/ecmp-frr.test.ts, docs/SCALING.md "The same with FRR and BGP").
 *
 * Owns: one FRR instance per namespace: its directory (configuration, sockets, pid files under
 * /tmp/<prefix>-frr-<name>, removed at `stop`), the three daemons started in the foreground as
 * processes the topology tracks (so its `destroy` kills them whatever happens), and `vtysh`.
 *
 * The daemons run as the package's user `frr` (as its service runs them: root is refused unless
 * it is in the `frrvty` group), keeping the capabilities they need.
 *
 * Contract: every path of an instance is its own (zebra's API socket, the vty sockets, bfdd's
 * control socket, the pid files; TCP vty ports off), so instances in several namespaces and the
 * host's own FRR, if any, never meet. `frrAvailable` says whether the daemons are installed
 * (Debian package `frr`); nothing here starts FRR's system service.
 */

import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { runSync, type ExecOptions, type ExecResult } from './exec.js';

export const FRR_DIR = '/usr/lib/frr';

/** What an FRR instance needs of a topology. */
export interface FrrHost {
  readonly prefix: string;
  spawn(ns: string, argv: readonly string[]): ChildProcess;
  exec(ns: string, argv: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
}

export interface Frr {
  readonly ns: string;
  /** Run vtysh commands against this instance; their output. */
  vtysh(...commands: string[]): Promise<string>;
  /** The daemons' output so far (they log to stdout). */
  log(): string;
  /** SIGSTOP / SIGCONT every daemon: a hung machine, as far as its peers can tell. */
  freeze(): void;
  thaw(): void;
  stop(): Promise<void>;
}

export function frrAvailable(): boolean {
  return ['zebra', 'bfdd', 'bgpd'].every((d) => existsSync(`${FRR_DIR}/${d}`)) && existsSync('/usr/bin/vtysh');
}

/** Start zebra, bfdd and bgpd in `ns` with `bgpConf` (bgpd's configuration); resolves once vtysh answers. */
export async function startFrr(topo: FrrHost, ns: string, name: string, bgpConf: string): Promise<Frr> {
  const dir = `/tmp/${topo.prefix}-frr-${name}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const common = ['-u', 'frr', '-g', 'frr', '-P', '0', '--vty_socket', dir, '--log', 'stdout', '--log-level', 'informational'];
  writeFileSync(`${dir}/zebra.conf`, `hostname ${name}\n`);
  writeFileSync(`${dir}/bfdd.conf`, `hostname ${name}\n`);
  writeFileSync(`${dir}/bgpd.conf`, `hostname ${name}\n${bgpConf}`);
  writeFileSync(`${dir}/vtysh.conf`, '');
  // The daemons drop to the package's user (keeping the capabilities they need), as FRR's service does.
  const own = runSync(['chown', '-R', 'frr:frr', dir]);
  if (own.code !== 0) throw new Error(`chown frr:frr ${dir}: ${own.stderr.trim()}`);
  const zsock = `${dir}/zserv.api`;
  const out: string[] = [];
  const daemons: ChildProcess[] = [];
  const start = (daemon: string, extra: readonly string[]): void => {
    const child = topo.spawn(ns, [`${FRR_DIR}/${daemon}`, ...common, '-i', `${dir}/${daemon}.pid`, '-f', `${dir}/${daemon}.conf`, ...extra]);
    const keep = (b: Buffer): void => {
      if (out.length < 2000) out.push(`${daemon}: ${b.toString()}`);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    daemons.push(child);
  };
  const vtysh = async (...commands: string[]): Promise<string> => {
    const r = await topo.exec(ns, ['vtysh', '--vty_socket', dir, '--config_dir', dir, ...commands.flatMap((c) => ['-c', c])], { timeoutMs: 10_000 });
    if (r.code !== 0) throw new Error(`vtysh in ${ns}: exit ${String(r.code)}: ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  };
  start('zebra', ['-z', zsock]);
  const waitFor = async (what: string, ok: () => boolean | Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!(await ok())) {
      if (daemons.some((d) => d.exitCode !== null)) throw new Error(`FRR in ${ns}: a daemon exited while waiting for ${what}:\n${out.join('')}`);
      if (Date.now() > deadline) throw new Error(`FRR in ${ns}: no ${what} within 20 s:\n${out.join('')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await waitFor("zebra's socket", () => existsSync(zsock));
  start('bfdd', ['-z', zsock, '--bfdctl', `${dir}/bfdd.sock`]);
  start('bgpd', ['-z', zsock]);
  await waitFor('vtysh answer from bgpd and bfdd', async () => {
    const r = await topo.exec(ns, ['vtysh', '--vty_socket', dir, '--config_dir', dir, '-c', 'show bgp summary', '-c', 'show bfd peers'], { timeoutMs: 5_000 });
    return r.code === 0;
  });
  const signal = (sig: NodeJS.Signals): void => {
    for (const d of daemons) d.kill(sig);
  };
  return {
    ns,
    vtysh,
    log: () => out.join(''),
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    stop: async () => {
      signal('SIGCONT');
      signal('SIGTERM');
      await Promise.race([
        Promise.all(daemons.map((d) => (d.exitCode !== null || d.signalCode !== null ? Promise.resolve() : new Promise((r) => d.once('exit', r))))),
        new Promise((r) => setTimeout(r, 5_000)),
      ]);
      signal('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
