/**
 * peer-process.ts — the harness's side of the peer tool (`../peers/peer.ts`).
 *
 * Owns: where the compiled peer script lives, parsing its JSON lines, waiting for a server's
 * `listening` line, and turning a client's result line into a typed value (or an error that shows
 * what the peer printed).
 *
 * Contract: a `PeerServer` is started by the topology (which tracks and kills its process);
 * `stop()` sends SIGTERM, waits at most `stopTimeoutMs` for the `done` line and the exit, then
 * SIGKILLs. Every wait here has a time limit.
 */

import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import type { ClientCommand, ClientResults, ServerEvent } from '../peers/protocol.js';
import type { ExecResult } from './exec.js';

/** The compiled peer CLI (`test/dist/src/peers/peer.js`). */
export const PEER_SCRIPT = fileURLToPath(new URL('../peers/peer.js', import.meta.url));

/**
 * A toy 1:1 NAT on a TUN (Python; not compiled, read from the source tree) that stands in for a
 * userspace gateway in the harness's own tests: `python3 TUN_NAT11_SCRIPT inside external tun [mq]`.
 */
export const TUN_NAT11_SCRIPT = fileURLToPath(new URL('../../../src/peers/tun-nat11.py', import.meta.url));

export type JsonObject = Readonly<Record<string, unknown>>;

function parseLine(line: string): JsonObject | null {
  const t = line.trim();
  if (!t.startsWith('{')) return null;
  try {
    const v: unknown = JSON.parse(t);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonObject) : null;
  } catch {
    return null;
  }
}

/** The last JSON object line of a peer's stdout, or null. */
export function lastJsonLine(stdout: string): JsonObject | null {
  const lines = stdout.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const o = parseLine(lines[i]);
    if (o !== null) return o;
  }
  return null;
}

/** A client peer failed (non-zero exit, or no result line). */
export class PeerError extends Error {
  constructor(
    readonly command: string,
    readonly result: ExecResult,
    readonly json: JsonObject | null,
  ) {
    const why = json !== null && typeof json.error === 'string' ? json.error : result.timedOut ? 'timed out' : `exit ${String(result.code)}`;
    super(`peer ${command} failed: ${why}\nstdout: ${result.stdout.trim().slice(0, 2000)}\nstderr: ${result.stderr.trim().slice(0, 2000)}`);
    this.name = 'PeerError';
  }
}

/** Check a client's run and return its typed result line. */
export function clientResult<C extends ClientCommand>(command: C, r: ExecResult): ClientResults[C] {
  const json = lastJsonLine(r.stdout);
  if (r.code !== 0 || json === null || json.ok !== true) throw new PeerError(command, r, json);
  return json as unknown as ClientResults[C];
}

export interface PeerServer {
  readonly child: ChildProcess;
  /** Every event line so far, in order. */
  readonly events: readonly ServerEvent[];
  /** Resolve with the first event (already seen or to come) matching `pred`; reject after `timeoutMs`. */
  waitFor(pred: (e: ServerEvent) => boolean, timeoutMs?: number): Promise<ServerEvent>;
  /** SIGTERM, wait for the exit (bounded), return all events. */
  stop(stopTimeoutMs?: number): Promise<readonly ServerEvent[]>;
}

/** Wrap a started server process; resolves once it prints `listening`, rejects if it exits first. */
export function attachServer(child: ChildProcess, label: string, readyTimeoutMs: number): Promise<PeerServer> {
  const events: ServerEvent[] = [];
  const waiters = new Set<{ pred: (e: ServerEvent) => boolean; resolve: (e: ServerEvent) => void }>();
  let stderr = '';
  let exited = false;
  const exitWaiters: (() => void)[] = [];
  child.stderr?.on('data', (b: Buffer) => {
    if (stderr.length < 16384) stderr += b.toString('utf8');
  });
  if (child.stdout === null) throw new Error('peer server needs a stdout pipe');
  createInterface({ input: child.stdout }).on('line', (line) => {
    const o = parseLine(line);
    if (o === null || typeof o.event !== 'string') return;
    const e = o as unknown as ServerEvent;
    events.push(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.delete(w);
        w.resolve(e);
      }
    }
  });
  child.once('exit', () => {
    exited = true;
    for (const w of exitWaiters.splice(0)) w();
  });

  const waitFor = (pred: (e: ServerEvent) => boolean, timeoutMs = 5_000): Promise<ServerEvent> => {
    const seen = events.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (e: ServerEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`${label}: no matching event within ${timeoutMs} ms; events: ${JSON.stringify(events).slice(0, 1000)}; stderr: ${stderr.trim()}`));
      }, timeoutMs);
      waiters.add(w);
    });
  };

  const waitExit = (timeoutMs: number): Promise<boolean> =>
    exited
      ? Promise.resolve(true)
      : new Promise((resolve) => {
          const timer = setTimeout(() => resolve(false), timeoutMs);
          exitWaiters.push(() => {
            clearTimeout(timer);
            resolve(true);
          });
        });

  const server: PeerServer = {
    child,
    events,
    waitFor,
    async stop(stopTimeoutMs = 3_000) {
      if (!exited) {
        child.kill('SIGTERM');
        if (!(await waitExit(stopTimeoutMs))) {
          child.kill('SIGKILL');
          await waitExit(1_000);
        }
      }
      return events;
    },
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label}: not listening after ${readyTimeoutMs} ms; stderr: ${stderr.trim()}`));
    }, readyTimeoutMs);
    exitWaiters.push(() => {
      clearTimeout(timer);
      reject(new Error(`${label}: exited before listening; stdout events: ${JSON.stringify(events)}; stderr: ${stderr.trim()}`));
    });
    waitFor((e) => e.event === 'listening', readyTimeoutMs + 1_000).then(
      () => {
        clearTimeout(timer);
        resolve(server);
      },
      () => undefined,
    );
  });
}
