/**
 * jit.test.ts — the core's V8 setting (jit.ts): which flag masq's processes set, and when
 * they leave V8 alone. (Applying it, and its effect on V8: workers/test/jit.test.ts.)
 */
import test from 'ava';
import { INLINE_BUDGET, jitFlag } from '../src/jit.js';

test('jitFlag: masq\'s budget, unless node has its own on the command line or MASQ_JIT_DEFAULTS=1', (t) => {
  t.is(INLINE_BUDGET, 3000);
  t.is(jitFlag([], {}), '--max-inlined-bytecode-size-cumulative=3000');
  t.is(jitFlag(['--enable-source-maps'], { MASQ_JIT_DEFAULTS: '0' }), '--max-inlined-bytecode-size-cumulative=3000');
  t.is(jitFlag(['--max-inlined-bytecode-size-cumulative=1500'], {}), null);
  t.is(jitFlag([], { MASQ_JIT_DEFAULTS: '1' }), null);
});
