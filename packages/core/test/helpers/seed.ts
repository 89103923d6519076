/**
 * seed.ts — one printed, replayable seed for every random test of a test file.
 *
 * Contract: importing this module fixes fast-check's global seed (`fc.configureGlobal`) to
 * MASQ_TEST_SEED when set, else to a fresh random value; `logSeed(t)` prints it with the line
 * that replays the run. `propertyRuns(n)` scales a property's run count: MASQ_PROPERTY_RUNS
 * (default 150) over the 150 the counts were written for, never below `n` scaled so.
 * fast-check's own failure report names the seed and the shrink path as well.
 */
import fc from 'fast-check';
import type { ExecutionContext } from 'ava';

function envSeed(): number {
  const v = process.env.MASQ_TEST_SEED;
  if (v === undefined || v === '') return (Math.random() * 0x7fffffff) | 0;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new Error(`MASQ_TEST_SEED must be an integer, found "${v}"`);
  return n | 0;
}

export const TEST_SEED = envSeed();
fc.configureGlobal({ seed: TEST_SEED });

/** Print the seed of this file's random tests and how to replay them. */
export function logSeed(t: ExecutionContext): void {
  t.log(`seed ${TEST_SEED} (replay: MASQ_TEST_SEED=${TEST_SEED})`);
}

/** The run count `n` (written for 150) scaled by MASQ_PROPERTY_RUNS. */
export function propertyRuns(n: number): number {
  const base = Number(process.env.MASQ_PROPERTY_RUNS ?? 150);
  return Math.max(1, Math.round((n * base) / 150));
}

/** mulberry32: a small seeded generator for hand-written random tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
