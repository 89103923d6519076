/**
 * compare.ts — `pnpm bench` of two commits side by side, in one run: the translate bench of a
 * base commit (default f177b68, the tree before issue 9's refactor) and of this checkout,
 * interleaved base, current, current, base, base, current, … so that a neighbour's load falls
 * on both alike. A benchmark tool, not a test.
 *
 *   node packages/core/dist/bench/compare.js [--base=COMMIT] [--rounds=N] [--jit=MODE] [--keep] [-- BENCH ARGS]
 *   pnpm bench:compare --rounds=5 -- --quick --sizes=1000,100000
 *
 * --jit: which V8 inlining budget each side's bench runs with (packages/core/src/jit.ts):
 *   shipped   (default) each side as it ships: this tree with masq's budget, a base from
 *             before jit.ts with V8's default
 *   defaults  both with V8's default budget (MASQ_JIT_DEFAULTS=1): the code alone
 *   budget    both with masq's budget (node --max-inlined-bytecode-size-cumulative=…)
 *
 * The base is checked out in a temporary git worktree (/tmp/masq-bench-<commit>), its
 * dependencies installed from the pnpm store (`pnpm install --offline`) and its core built
 * (`tsc -b packages/core`); it is removed at the end unless --keep (a kept one is reused).
 * Printed per row: the median ns/packet of each side over the rounds, current/base (below 1 =
 * faster now), the spread of the rounds ((max − min)/median, the noise to judge a ratio by),
 * the fastest single round of each side ("best", where the bench reports one) and its ratio,
 * and the load average before and after. The rows are the bench's own table rows, matched by
 * name.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { jitFlag } from '../src/jit.js';
import { benchOptions, endOnClosedOutput } from './cli.js';
import { HERE, baseTree, headOf, removeTree } from './basetree.js';

const BENCH = 'packages/core/dist/bench/translate.bench.js';

// pnpm 12 passes the `--` of `pnpm bench:compare -- --rounds=5` through: a leading one is pnpm's.
const argv = process.argv[2] === '--' ? process.argv.slice(3) : process.argv.slice(2);
const dd = argv.indexOf('--');
const own = dd < 0 ? argv : argv.slice(0, dd);
const benchArgs = dd < 0 ? [] : argv.slice(dd + 1);
const opts = benchOptions(own, ['base', 'rounds', 'keep', 'jit'], 'compare', import.meta.url);
const BASE = opts.get('base') ?? 'f177b68';
const JIT = opts.get('jit') ?? 'shipped';
if (!['shipped', 'defaults', 'budget'].includes(JIT)) {
  process.stderr.write(`compare: --jit must be shipped, defaults or budget, got ${JIT}\n`);
  process.exit(2);
}
// Both sides with masq's budget: the flag on node's command line (this tree's bench then leaves it).
const NODE_FLAGS = JIT === 'budget' ? [jitFlag([], {})!] : [];
const BENCH_ENV = JIT === 'defaults' ? { ...process.env, MASQ_JIT_DEFAULTS: '1' } : process.env;
const ROUNDS = Number(opts.get('rounds') ?? 3);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1 || ROUNDS > 50) {
  process.stderr.write(`compare: --rounds must be an integer 1-50, got ${opts.get('rounds')}\n`);
  process.exit(2);
}

/** The base tree, built: an existing worktree of the same commit is reused (basetree.ts). */
function prepareBase(): string {
  return baseTree(BASE, BENCH, 'compare');
}

/** Per row: the mean ns/packet of each run, and the fastest round's ns/packet where reported. */
type Rows = Map<string, { mean: number[]; best: number[] }>;

/** One bench run in `dir`: each table row's ns/packet (rows named without their round count). */
function bench(dir: string, into: Rows): void {
  const r = spawnSync('node', [...NODE_FLAGS, BENCH, ...benchArgs], { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 24, env: BENCH_ENV });
  if (r.status !== 0) throw new Error(`bench in ${dir} failed (${r.status}): ${r.stderr}`);
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| path')) continue;
    const cells = line.slice(1, -1).split('|').map((s) => s.trim());
    const ns = Number(cells[1]);
    if (!Number.isFinite(ns)) continue;
    const name = cells[0]!.replace(/ \(median of \d+\)/, '');
    const a = into.get(name) ?? { mean: [], best: [] };
    a.mean.push(ns);
    const bestMpps = Number(cells[5]);
    if (cells[5] !== '' && bestMpps > 0) a.best.push(1e3 / bestMpps);
    into.set(name, a);
  }
}

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const spread = (a: number[]): string => `${(((Math.max(...a) - Math.min(...a)) / median(a)) * 100).toFixed(0)} %`;
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

function main(): void {
  const baseDir = prepareBase();
  endOnClosedOutput();
  const { head, dirty } = headOf();
  const load0 = load();
  const base: Rows = new Map();
  const cur: Rows = new Map();
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which side goes first, so neither always runs right after the other.
    const order: [string, Rows][] = i % 2 === 0 ? [[baseDir, base], [HERE, cur]] : [[HERE, cur], [baseDir, base]];
    for (const [dir, rows] of order) bench(dir, rows);
    process.stderr.write(`compare: round ${i + 1}/${ROUNDS} done (load ${load()})\n`);
  }
  process.stdout.write(`translate bench, ${BASE} (base) vs ${head}${dirty ? ' + uncommitted changes' : ''} (current), ${ROUNDS} rounds interleaved, bench args: ${benchArgs.join(' ') || '(none)'}, --jit=${JIT}\n`);
  process.stdout.write(`node ${process.version}; load average (1, 5, 15 min) at start ${load0}, at end ${load()}\n\n`);
  process.stdout.write('ns/packet: the median over the rounds of each run\'s mean; "best": the fastest single round of any run (the bench\'s best-round column), the figure a neighbour\'s load disturbs least.\n\n');
  process.stdout.write('| path | base ns (median) | current ns (median) | current/base | base spread | current spread | base best ns | current best ns | current/base best |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n');
  for (const [row, b] of base) {
    const c = cur.get(row);
    if (c === undefined) continue;
    const mb = median(b.mean);
    const mc = median(c.mean);
    const best = b.best.length > 0 && c.best.length > 0 ? [Math.min(...b.best), Math.min(...c.best)] : null;
    const bestCols = best === null ? '| | |' : `| ${best[0]!.toFixed(1)} | ${best[1]!.toFixed(1)} | ${(best[1]! / best[0]!).toFixed(3)} |`;
    process.stdout.write(`| ${row} | ${mb.toFixed(1)} | ${mc.toFixed(1)} | ${(mc / mb).toFixed(3)} | ${spread(b.mean)} | ${spread(c.mean)} ${bestCols}\n`);
  }
  for (const row of cur.keys()) if (!base.has(row)) process.stdout.write(`| ${row} | (no such row) | ${median(cur.get(row)!.mean).toFixed(1)} | | | | | | |\n`);
  if (!opts.has('keep')) removeTree(baseDir);
}

main();
