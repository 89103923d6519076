/**
 * exec.ts — running commands, inside a network namespace or not, always bounded in time.
 *
 * Owns: `run` (async, with a time limit, optional stdin, bounded output capture), `runSync` (for
 * exit and signal handlers, where nothing asynchronous runs any more) and `inNetns`, the argv
 * prefix that enters a namespace.
 *
 * Contract: nothing here goes through a shell; every command has a time limit after which it
 * gets SIGKILL; a failing command resolves with its exit code (it does not throw) unless the
 * caller uses `runOk`, whose error carries the command line and what the command wrote to stderr.
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { formatCommand } from '@masq/cli/routing';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code, or null when a signal ended the command (see `signal`, `timedOut`). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
}

export interface ExecOptions {
  /** Time limit; SIGKILL when it passes. Default 10 s. */
  readonly timeoutMs?: number;
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Output kept per stream; the rest is dropped (a runaway command cannot fill memory). */
const MAX_CAPTURE = 8 * 1024 * 1024;

export const DEFAULT_TIMEOUT_MS = 10_000;

/** argv that runs `argv` inside network namespace `ns`. */
export function inNetns(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

/** Show an argv list as a shell-like line (for logs and error messages). */
export const showArgv = formatCommand;

/** Something that wants to know about each process started (the topology tracks them). */
export type SpawnHook = (child: ChildProcess) => void;

/** Run a command to completion or to its time limit. Never rejects for a failing command. */
export function run(argv: readonly string[], opts: ExecOptions = {}, onSpawn?: SpawnHook): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env === undefined ? process.env : { ...process.env, ...opts.env },
    });
    onSpawn?.(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    let spawnError: Error | null = null;
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < MAX_CAPTURE) out.push(b);
      outLen += b.length;
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < MAX_CAPTURE) err.push(b);
      errLen += b.length;
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      spawnError = e;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString('utf8') + (spawnError === null ? '' : String(spawnError));
      resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr, code: spawnError === null ? code : 127, signal, timedOut });
    });
  });
}

/** A command exited non-zero (or timed out) where success was required. */
export class CommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: ExecResult,
  ) {
    const how = result.timedOut ? 'timed out' : result.code === null ? `killed by ${String(result.signal)}` : `exit ${result.code}`;
    super(`${showArgv(argv)}: ${how}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandError';
  }
}

/** Like `run`, but a non-zero exit is an error. */
export async function runOk(argv: readonly string[], opts: ExecOptions = {}, onSpawn?: SpawnHook): Promise<ExecResult> {
  const r = await run(argv, opts, onSpawn);
  if (r.code !== 0) throw new CommandError(argv, r);
  return r;
}

/** Synchronous run, for exit and signal handlers. */
export function runSync(argv: readonly string[], timeoutMs = 5_000): ExecResult {
  const r = spawnSync(argv[0], argv.slice(1), { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return {
    stdout: r.stdout ?? '',
    stderr: (r.stderr ?? '') + (r.error === undefined ? '' : String(r.error)),
    code: r.error === undefined ? r.status : 127,
    signal: r.signal,
    timedOut: r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT',
  };
}
