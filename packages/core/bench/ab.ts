/**
 * ab.ts — `pnpm bench:ab`: the established-packet path of two trees' cores side by side in
 * ONE node process. The base commit's core (default f177b68) and this checkout's are both
 * imported, each builds its own table of the translate bench's workload (workload.ts: n live
 * sessions, half TCP established, half UDP) and the rounds alternate between them (A B, B A,
 * …) every few milliseconds, so a phase of the shared VM falls on both alike: steadier than
 * two processes (compare.ts) for differences of a few per cent. A benchmark, not a test.
 *
 *   node packages/core/dist/bench/ab.js [--base=COMMIT] [--sessions=N] [--rounds=N] [--keep]
 *   pnpm bench:ab --rounds=40
 *
 * Printed per path (TCP and UDP, one translate() at a time and in batches of 16 with the
 * prefetch pass): each side's fastest and median round in ns/packet, and the median of the
 * per-round ratios current/base with its interquartile range (below 1 = faster now). Both
 * sides run under the same V8 flags, masq's inlining budget (src/jit.ts) unless
 * MASQ_JIT_DEFAULTS=1; `--base` is built as compare.ts builds it (basetree.ts).
 */
import path from 'node:path';
import type { Nat } from '../src/nat.js';
import { HERE, baseTree, headOf, removeTree } from './basetree.js';
import { benchArgs, benchOptions, endOnClosedOutput } from './cli.js';
import { applyJit, establishedBatched, established, load, type Loaded } from './workload.js';

const opts = benchOptions(benchArgs(), ['base', 'sessions', 'rounds', 'keep'], 'ab', import.meta.url);
const int = (name: string, dflt: number, lo: number, hi: number): number => {
  const v = Number(opts.get(name) ?? dflt);
  if (!Number.isInteger(v) || v < lo || v > hi) {
    process.stderr.write(`ab: --${name} must be an integer ${lo}-${hi}, got ${opts.get(name)}\n`);
    process.exit(2);
  }
  return v;
};
const BASE = opts.get('base') ?? 'f177b68';
const SESSIONS = int('sessions', 1000, 2, 1_000_000);
const ROUNDS = int('rounds', 30, 3, 500);

const JIT = applyJit();
const NAT = 'packages/core/dist/src/nat.js';

/** Median and the quartiles of `a`. */
function quantiles(a: number[]): [number, number, number] {
  const s = [...a].sort((x, y) => x - y);
  const q = (p: number): number => s[Math.round(p * (s.length - 1))]!;
  return [q(0.25), q(0.5), q(0.75)];
}

async function main(): Promise<void> {
  const baseDir = baseTree(BASE, NAT, 'ab');
  endOnClosedOutput();
  const { head, dirty } = headOf();
  const mods = await Promise.all([baseDir, HERE].map(async (d) => (await import(path.join(d, NAT))) as { Nat: typeof Nat }));
  const sides: Loaded[] = mods.map((m) => load(SESSIONS, m.Nat));
  const half = sides[0]!.tcpCount;
  const paths: [string, (l: Loaded) => (k: number) => void][] = [
    ['TCP established: translate', (l) => established(l, 0, half, false)],
    ['UDP: translate', (l) => established(l, half, half, false)],
    ['TCP established: batches of 16 + prefetch', (l) => establishedBatched(l, 0, half)],
    ['UDP: batches of 16 + prefetch', (l) => establishedBatched(l, half, half)],
  ];
  // Each timed round translates about 20,000 packets (2 per slot per repetition).
  const reps = Math.max(1, Math.round(10_000 / half));
  const rounds = paths.map(([, mk]) => sides.map((l) => mk(l)));
  let k = 0;
  for (let w = 0; w < 30; w++) for (const r of rounds) for (const side of r) for (let q = 0; q < reps; q++) side(k++);
  const ns: number[][][] = paths.map(() => [[], []]);
  for (let i = 0; i < ROUNDS; i++) {
    for (let p = 0; p < paths.length; p++) {
      for (const s of i % 2 === 0 ? [0, 1] : [1, 0]) {
        const t0 = performance.now();
        for (let q = 0; q < reps; q++) rounds[p]![s]!(k++);
        ns[p]![s]!.push(((performance.now() - t0) * 1e6) / (reps * 2 * half));
      }
    }
  }
  process.stdout.write(`one-process A/B, ${BASE} (base) vs ${head}${dirty ? ' + uncommitted changes' : ''} (current), ${SESSIONS.toLocaleString('en')} sessions, ${ROUNDS} rounds alternated, both under the ${JIT}; node ${process.version}\n\n`);
  process.stdout.write('| path | base best ns | base median ns | current best ns | current median ns | current/base, median of rounds | interquartile range |\n|---|---:|---:|---:|---:|---:|---|\n');
  for (let p = 0; p < paths.length; p++) {
    const [b, c] = ns[p]! as [number[], number[]];
    const ratios = c.map((x, i) => x / b[i]!);
    const [rq1, rm, rq3] = quantiles(ratios);
    const f = (a: number[]): [string, string] => [Math.min(...a).toFixed(1), quantiles(a)[1].toFixed(1)];
    process.stdout.write(`| ${paths[p]![0]} | ${f(b).join(' | ')} | ${f(c).join(' | ')} | ${rm.toFixed(3)} | ${rq1.toFixed(2)}-${rq3.toFixed(2)} |\n`);
  }
  if (!opts.has('keep')) removeTree(baseDir);
}

await main();
