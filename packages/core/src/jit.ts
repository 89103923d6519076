/**
 * jit.ts — the V8 settings a process running the translation core wants: a larger inlining
 * budget for its optimizing compiler. `tuneJit()` applies them to the whole process (every
 * thread: V8's flags are process-wide), before the fast path is first optimized.
 *
 * Why: TurboFan inlines callees into an optimized function until their bytecode adds up to
 * `--max-inlined-bytecode-size-cumulative` (920 bytes by default, sized for web pages). The
 * fast path (translate/fastpath.ts) is many small accessors and wire helpers; with the
 * features it gained (RFC 5961 window tracking, RFC 7857 timers, helpers, hairpinning, offload
 * checksums) their sum is about three times that, so the default budget ran out part way and
 * left the TCP tail (state step, timers, window tracking, checksum) as calls: about a third of
 * an established packet's time (docs/BENCHMARKS.md, "The inlining budget"). Raising the budget
 * costs some compile time and code size once, in a process that runs one hot loop for hours.
 *
 * Contract: idempotent; changes nothing when node was started with its own
 * `--max-inlined-bytecode-size-cumulative` (the operator's choice stands; NODE_OPTIONS does
 * not take that flag) or when MASQ_JIT_DEFAULTS=1 (to measure V8's defaults). Returns the budget in
 * force afterwards as far as it knows (null: the operator's or V8's own).
 */
import v8 from 'node:v8';

/** The cumulative inlining budget masq runs with (bytes of bytecode; V8's default is 920). */
export const INLINE_BUDGET = 3000;
const FLAG = 'max-inlined-bytecode-size-cumulative';

let applied: number | null | undefined;

export function tuneJit(): number | null {
  if (applied !== undefined) return applied;
  const own = process.execArgv.some((a) => a.includes(FLAG));
  if (own || process.env['MASQ_JIT_DEFAULTS'] === '1') applied = null;
  else {
    v8.setFlagsFromString(`--${FLAG}=${INLINE_BUDGET}`);
    applied = INLINE_BUDGET;
  }
  return applied;
}
