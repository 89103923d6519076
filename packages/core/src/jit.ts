/**
 * jit.ts — the V8 setting a process running the translation core wants: a larger inlining
 * budget for its optimizing compiler. The core only says which flag (it does no I/O and
 * imports nothing); the gateway applies it to its process (workers/src/jit.ts tuneJit), and so
 * does the translate bench, before the fast path is first optimized. V8's flags are
 * process-wide: every thread of the gateway gets it.
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
 * Contract: `jitFlag` is pure: the flag to apply, or null when node was started with its own
 * `--max-inlined-bytecode-size-cumulative` (the operator's choice stands; NODE_OPTIONS does not
 * take that flag) or MASQ_JIT_DEFAULTS=1 (to measure V8's defaults).
 */

/** The cumulative inlining budget masq runs with (bytes of bytecode; V8's default is 920). */
export const INLINE_BUDGET = 3000;
const FLAG = '--max-inlined-bytecode-size-cumulative';

/** The V8 flag to set for masq's budget (v8.setFlagsFromString), or null: leave V8 as it is. */
export function jitFlag(execArgv: readonly string[], env: Readonly<Record<string, string | undefined>>): string | null {
  if (execArgv.some((a) => a.startsWith(FLAG)) || env['MASQ_JIT_DEFAULTS'] === '1') return null;
  return `${FLAG}=${INLINE_BUDGET}`;
}
