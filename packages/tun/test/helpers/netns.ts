/**
 * netns.ts (test helper) — private network namespaces for the TUN tests, and the runner that
 * executes a scenario of fixtures/scenario.ts inside one.
 *
 * Contract: every namespace is named `mqtun-<pid>-<random>`, is remembered until deleted, and is
 * deleted by the test that made it (finally), by test.after.always (deleteAllNetns) and, as a
 * last resort, when the process exits. Nothing here touches the host namespace besides creating
 * and deleting those names.
 *
 * Node cannot setns(2) one thread, so the TUN side runs as a child process started with
 * `ip netns exec NS node dist/test/fixtures/scenario.js <scenario> <json args>`; it prints one
 * JSON line, {ok: true, result} or {ok: false, error: {code, message}}.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { loadNativeBinding } from '../../src/index.js';

const execFileP = promisify(execFile);

export const SCENARIO = fileURLToPath(new URL('../fixtures/scenario.js', import.meta.url));

const live = new Set<string>();

/** Why the kernel tests cannot run here, or null when they can. Decided once, at load. */
export function environmentProblem(): string | null {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) {
    return 'not running as root: the TUN tests create network namespaces and TUN devices';
  }
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing (load the tun module: modprobe tun)';
  const ip = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (ip.error || ip.status !== 0) return '`ip netns` (iproute2) is not usable';
  try {
    loadNativeBinding();
  } catch (e: unknown) {
    return e instanceof Error ? e.message : String(e);
  }
  return null;
}

export async function createNetns(): Promise<string> {
  const ns = `mqtun-${process.pid}-${randomBytes(3).toString('hex')}`;
  live.add(ns);
  await execFileP('ip', ['netns', 'add', ns]);
  await execFileP('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

export function deleteNetns(ns: string): void {
  try {
    execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
  } catch {
    // Already gone.
  }
  live.delete(ns);
}

export function deleteAllNetns(): void {
  for (const ns of [...live]) deleteNetns(ns);
}

process.on('exit', deleteAllNetns);

/** Run `cmd` inside `ns`. */
export async function nsExec(ns: string, cmd: string[]): Promise<string> {
  const { stdout } = await execFileP('ip', ['netns', 'exec', ns, ...cmd], { timeout: 20_000 });
  return stdout;
}

export type ScenarioOutcome<T> =
  | { ok: true; result: T }
  | { ok: false; error: { code: string; message: string } };

/**
 * Run a scenario in `ns`. `wrap` goes between `ip netns exec NS` and `node` (e.g. setpriv to
 * drop a capability). Rejects if the child crashes or prints no JSON.
 */
export async function runScenario<T>(
  ns: string,
  scenario: string,
  args: unknown = {},
  wrap: string[] = [],
): Promise<ScenarioOutcome<T>> {
  const argv = ['netns', 'exec', ns, ...wrap, process.execPath, SCENARIO, scenario, JSON.stringify(args)];
  let stdout: string;
  try {
    ({ stdout } = await execFileP('ip', argv, { timeout: 30_000, maxBuffer: 16 << 20 }));
  } catch (e: unknown) {
    const ee = e as { stdout?: string; stderr?: string; message?: string };
    throw new Error(
      `scenario ${scenario} failed: ${ee.message ?? String(e)}\nstdout: ${ee.stdout ?? ''}\nstderr: ${ee.stderr ?? ''}`,
    );
  }
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as ScenarioOutcome<T>;
  } catch {
    throw new Error(`scenario ${scenario} printed no JSON result:\n${stdout}`);
  }
}

/** Run a scenario that must succeed; returns its result. */
export async function scenarioResult<T>(
  ns: string,
  scenario: string,
  args: unknown = {},
  wrap: string[] = [],
): Promise<T> {
  const out = await runScenario<T>(ns, scenario, args, wrap);
  if (!out.ok) throw new Error(`scenario ${scenario}: ${out.error.code}: ${out.error.message}`);
  return out.result;
}

/** Does `ns` still hold an interface called `name`? */
export async function linkExists(ns: string, name: string): Promise<boolean> {
  try {
    await execFileP('ip', ['-n', ns, 'link', 'show', 'dev', name]);
    return true;
  } catch {
    return false;
  }
}
