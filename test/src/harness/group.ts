/**
 * group.ts — what every namespace topology of the harness shares (topology.ts, ecmp.ts): a set of
 * namespaces under one claimed prefix, the commands and processes run inside them, and their
 * removal.
 *
 * Owns: `NamespaceGroup` (creating the namespaces, `ip -n` / `sysctl` helpers, exec/spawn with
 * every process tracked, `destroy` / `destroySync`) and `createGroup` (claim a prefix, build, and
 * remove what was built if building fails).
 *
 * Contract: only namespaces listed in `namespaces` are entered; every command and wait is
 * bounded; `destroy()` (idempotent) SIGTERMs the tracked processes, SIGKILLs them and anything
 * else left inside after 1.5 s, deletes the namespaces and releases the prefix. A live group is
 * in cleanup.ts's registry, so it is also destroyed on process exit and on SIGINT/SIGTERM/SIGHUP.
 */

import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { claimPrefix, DEFAULT_BASE, deleteNamespaceSync, listNamespaces, register, releasePrefix, unregister, type Destroyable } from './cleanup.js';
import { CommandError, inNetns, run, runOk, runSync, showArgv, type ExecOptions, type ExecResult } from './exec.js';

export abstract class NamespaceGroup implements Destroyable {
  /** Every namespace of this group, in creation order. */
  abstract readonly namespaces: readonly string[];
  private readonly children = new Set<ChildProcess>();
  /** Namespaces actually created so far (destroy removes exactly these). */
  private readonly created: string[] = [];
  private destroyed = false;

  constructor(
    readonly prefix: string,
    private readonly logLine?: (line: string) => void,
  ) {}

  /** Create the namespaces, wire them up. */
  abstract build(): Promise<void>;

  protected log(line: string): void {
    this.logLine?.(line);
  }

  protected track = (child: ChildProcess): void => {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  };

  protected assertLive(): void {
    if (this.destroyed) throw new Error(`topology ${this.prefix} is destroyed`);
  }

  /**
   * `ip netns add` every namespace, in order. Synchronously: a namespace exists only once it is
   * in `created`, with no turn of the event loop between, so an exit at any moment (a signal, a
   * bench ending because `| head` closed its output) finds every namespace it must remove.
   */
  protected async addNamespaces(): Promise<void> {
    for (const n of this.namespaces) {
      const argv = ['ip', 'netns', 'add', n];
      this.log(showArgv(argv));
      const r = runSync(argv);
      if (r.code !== 0) throw new CommandError(argv, r);
      this.created.push(n);
    }
  }

  /** `ip -n <ns> ...`, required to succeed. */
  protected async ip(ns: string, ...args: string[]): Promise<void> {
    const argv = ['ip', '-n', ns, ...args];
    this.log(showArgv(argv));
    await runOk(argv, {}, this.track);
  }

  protected async sysctl(ns: string, settings: readonly string[]): Promise<void> {
    if (settings.length === 0) return;
    const argv = inNetns(ns, ['sysctl', '-q', '-w', ...settings]);
    this.log(showArgv(argv));
    await runOk(argv, {}, this.track);
  }

  protected checkNs(ns: string): void {
    this.assertLive();
    if (!this.namespaces.includes(ns)) throw new Error(`namespace "${ns}" is not part of topology ${this.prefix}`);
  }

  /** Run a command in a namespace; bounded by `timeoutMs` (default 10 s); never throws for exit codes. */
  exec(ns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.checkNs(ns);
    return run(inNetns(ns, argv), opts, this.track);
  }

  /** Like exec, but a non-zero exit throws. */
  execOk(ns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.checkNs(ns);
    return runOk(inNetns(ns, argv), opts, this.track);
  }

  /** Start a long-running process in a namespace; tracked and killed at destroy. */
  spawn(ns: string, argv: readonly string[], opts: { env?: Readonly<Record<string, string>> } = {}): ChildProcess {
    this.checkNs(ns);
    const full = inNetns(ns, argv);
    this.log(`spawn ${showArgv(full)}`);
    // stdin stays a pipe: peers watch it and exit when this process dies.
    const child = spawnChild(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    this.track(child);
    return child;
  }

  /** Start a compiled node script in a namespace (tracked). */
  node(ns: string, scriptPath: string, args: readonly string[], opts: { env?: Readonly<Record<string, string>> } = {}): ChildProcess {
    return this.spawn(ns, [process.execPath, scriptPath, ...args], opts);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    const live = [...this.children];
    for (const c of live) c.kill('SIGTERM');
    await Promise.race([
      Promise.all(live.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()))))),
      new Promise<void>((r) => setTimeout(r, 1_500)),
    ]);
    for (const c of this.children) c.kill('SIGKILL');
    await Promise.all(
      this.created.map(async (n) => {
        const pids = (await run(['ip', 'netns', 'pids', n], { timeoutMs: 3_000 })).stdout.split(/\s+/).filter((s) => /^[0-9]+$/.test(s));
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // already gone
          }
        }
        this.log(`ip netns del ${n}`);
        await run(['ip', 'netns', 'del', n], { timeoutMs: 5_000 });
      }),
    );
    this.finish();
  }

  destroySync(): void {
    if (this.destroyed && this.created.length === 0) return;
    this.destroyed = true;
    for (const c of this.children) c.kill('SIGKILL');
    for (const n of this.created) deleteNamespaceSync(n);
    this.finish();
  }

  private finish(): void {
    const left = new Set(listNamespaces());
    // Anything still there (a delete that failed) gets one synchronous retry.
    for (const n of this.created) if (left.has(n)) deleteNamespaceSync(n);
    this.created.length = 0;
    releasePrefix(this.prefix);
    unregister(this);
  }
}

/** Claim a prefix, make the group and build it; on any failure, what was built is removed again. */
export async function createGroup<G extends NamespaceGroup>(base: string | undefined, make: (prefix: string) => G): Promise<G> {
  const prefix = claimPrefix(base ?? DEFAULT_BASE);
  let group: G;
  try {
    group = make(prefix);
  } catch (e) {
    releasePrefix(prefix);
    throw e;
  }
  register(group);
  try {
    await group.build();
  } catch (e) {
    await group.destroy();
    throw e;
  }
  return group;
}
