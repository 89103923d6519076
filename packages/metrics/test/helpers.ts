/**
 * helpers.ts — shared test fixtures for @masq/metrics: statistics blocks over real
 * SharedArrayBuffers, an exposition-format reader, a PromQL metric-name extractor, and
 * process helpers (find a binary, run it with stdin, free ports) with bounded waits.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import { COUNTER_SLOTS } from '@masq/core/counters';

import type { MetricsActorInit, MetricsActorReply } from '../src/actor.js';
import { allocIoStats, allocWorkerStats } from '../src/statsLayout.js';

/** The repository root (this file runs from packages/metrics/dist/test/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
/** packages/metrics/test/fixtures in the source tree. */
export const FIXTURES = join(REPO_ROOT, 'packages/metrics/test/fixtures');

/** A zeroed partition statistics block over a SharedArrayBuffer. */
export function partitionBlock(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8));
}

/** An actor init over fresh shared blocks; listen defaults to 127.0.0.1, a free port. */
export function makeInit(over: Partial<MetricsActorInit> = {}): MetricsActorInit {
  const workerNames = over.workerNames ?? ['xlate-0', 'xlate-1'];
  return {
    partitions: [partitionBlock(), partitionBlock()],
    workerNames,
    workerStats: allocWorkerStats(workerNames.length),
    ioStats: allocIoStats(),
    externals: ['203.0.113.1', '203.0.113.2'],
    sessionsLimit: 65536,
    portsLimitPerAddress: 64512,
    listen: { host: '127.0.0.1', port: 0 },
    collectProcess: false,
    ...over,
  };
}

export interface Sample {
  labels: Record<string, string>;
  value: number;
}
export interface Family {
  type: string;
  help: string;
  samples: Sample[];
}

/** Parse the Prometheus text format (enough of it for these tests: no timestamps). */
export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (f === undefined) families.set(name, (f = { type: 'untyped', help: '', samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === 'HELP') family(m[2]!).help = m[3]!;
      else family(m[2]!).type = m[3]!;
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const lm of m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]!] = lm[2]!;
    }
    // Histogram samples belong to the family without their suffix.
    let name = m[1]!;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    if (!families.has(name) && families.get(base)?.type === 'histogram') name = base;
    family(name).samples.push({ labels, value: Number(m[3]) });
  }
  return families;
}

/** The value of the one sample of `name` whose labels include `labels`. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name);
  if (f === undefined) throw new Error(`no metric ${name}`);
  const hits = f.samples.filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hits.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${hits.length} samples`);
  return hits[0]!.value;
}

const PROMQL_KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset',
  'atan2', 'inf', 'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers left after removing strings,
 * label matchers, ranges, grouping clauses, Grafana variables and function calls.
 */
export function promqlMetricNames(expr: string): string[] {
  let e = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ' ');
  e = e.replace(/\boffset\s+\S+/g, ' ');
  const names = new Set<string>();
  for (const m of e.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const id = m[0];
    const after = e.slice(m.index + id.length).trimStart();
    if (after.startsWith('(')) continue; // function or aggregation
    if (PROMQL_KEYWORDS.has(id.toLowerCase())) continue;
    if (/^[0-9]/.test(id)) continue;
    names.add(id);
  }
  return [...names];
}

/** The absolute path of `cmd` on PATH, or null. */
export function which(cmd: string): string | null {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, cmd);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run `cmd args` with `input` on stdin; kill it after `timeoutMs`. */
export function run(cmd: string, args: readonly string[], input = '', options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the child may exit before reading everything
    child.stdin.end(input);
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ActorWorker {
  worker: Worker;
  host: string;
  port: number;
  /** Send stop, wait for 'stopped' and the thread's exit (bounded); resolves to the exit code. */
  stop(): Promise<number>;
}

/** Start the metrics actor in a real worker thread (dist/src/worker.js) and wait until it listens. */
export async function startActorWorker(init: MetricsActorInit, timeoutMs = 10_000): Promise<ActorWorker> {
  const worker = new Worker(new URL('../src/worker.js', import.meta.url), { workerData: init });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  const first = await withTimeout(
    new Promise<MetricsActorReply>((resolve, reject) => {
      worker.once('message', (m: MetricsActorReply) => resolve(m));
      worker.once('error', reject);
    }),
    timeoutMs,
    'metrics worker did not answer',
  );
  if (first.type !== 'listening') {
    const code = await withTimeout(exited, timeoutMs, 'metrics worker did not exit after its error');
    throw new Error(`${first.type === 'error' ? first.message : `unexpected reply ${first.type}`} (worker exit code ${code})`);
  }
  return {
    worker,
    host: first.host,
    port: first.port,
    async stop() {
      const stopped = new Promise<void>((resolve) => {
        const on = (m: MetricsActorReply): void => {
          if (m.type === 'stopped') {
            worker.off('message', on);
            resolve();
          }
        };
        worker.on('message', on);
      });
      worker.postMessage({ type: 'stop' });
      try {
        await withTimeout(stopped, timeoutMs, 'metrics worker did not stop');
        return await withTimeout(exited, timeoutMs, 'metrics worker did not exit after stop');
      } catch (err) {
        await worker.terminate();
        throw err;
      }
    },
  };
}

/** `p`, or a rejection with `what` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
