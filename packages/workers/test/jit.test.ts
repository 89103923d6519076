/**
 * jit.test.ts — tuneJit (jit.ts, with core jit.ts's flag): it raises V8's inlining budget for
 * the whole process, and it leaves an operator's own budget (command line) or
 * MASQ_JIT_DEFAULTS=1 alone. The effect
 * is checked on V8 itself: a hot function calling twelve helpers of ~100 bytes of bytecode
 * each gets more of them inlined after tuneJit() than without (--trace-turbo-inlining). Each
 * case runs in a child process: V8's flags are process-wide.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const JIT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/jit.js');

function child(code: string, flags: string[] = [], env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', MASQ_JIT_DEFAULTS: '', ...env }, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`child failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const report = `import { tuneJit } from ${JSON.stringify(JIT)}; console.log(JSON.stringify([tuneJit(), tuneJit()]));`;
const FLAG = '--max-inlined-bytecode-size-cumulative=3000';

test('tuneJit applies masq\'s budget once and says so; an operator\'s own flag or MASQ_JIT_DEFAULTS=1 is left alone', (t) => {
  t.deepEqual(JSON.parse(child(report)), [FLAG, FLAG]);
  t.deepEqual(JSON.parse(child(report, ['--max-inlined-bytecode-size-cumulative=1234'])), [null, null]);
  t.deepEqual(JSON.parse(child(report, [], { MASQ_JIT_DEFAULTS: '1' })), [null, null]);
});

/** Twelve helpers of ~100 bytes of bytecode, all called from one hot function `hot`. */
function workload(tune: boolean): string {
  const helpers = Array.from({ length: 12 }, (_, i) => `function h${i}(b, o) { let s = ${i}; for (let k = 0; k < 4; k++) { s = (s * 31 + b[(o + k) & 63] + (s >>> 3)) | 0; s ^= s << 5; s = (s + (b[(o + k + ${i}) & 63] << 2)) | 0; } return s; }`).join('\n');
  return `${tune ? `import { tuneJit } from ${JSON.stringify(JIT)}; tuneJit();` : ''}
${helpers}
function hot(b, o) { return ${Array.from({ length: 12 }, (_, i) => `h${i}(b, o)`).join(' ^ ')}; }
const b = new Uint8Array(64).map((_, i) => i * 7);
let x = 0;
for (let i = 0; i < 300000; i++) x ^= hot(b, i);
console.log('result', x);`;
}

function inlinedIntoHot(out: string): number {
  const seen = new Set<string>();
  for (const m of out.matchAll(/Inlining .*<SharedFunctionInfo (h\d+)>\} into .*<SharedFunctionInfo hot>\}/g)) seen.add(m[1]!);
  return seen.size;
}

test('with the budget raised, V8 inlines more of a hot function\'s helpers than with its default', (t) => {
  const plain = inlinedIntoHot(child(workload(false), ['--trace-turbo-inlining']));
  const tuned = inlinedIntoHot(child(workload(true), ['--trace-turbo-inlining']));
  t.log(`helpers inlined into the hot function: ${plain} of 12 with V8's default budget, ${tuned} with masq's`);
  t.true(plain < 12, `the default budget should not fit all twelve helpers (inlined ${plain})`);
  t.is(tuned, 12);
});
