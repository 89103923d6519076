/**
 * jit.ts — applies the core's V8 setting (core jit.ts: a larger inlining budget, so the fast
 * path is compiled as one piece) to this process, once, before any thread's fast path is
 * optimized. The Gateway's constructor calls it (Gateway.jitFlag), before any actor starts;
 * V8's flags are process-wide, so the I/O thread and every worker get it.
 *
 * Contract: idempotent. Returns the flag it set, or null when it left V8 alone (node was
 * started with its own budget, or MASQ_JIT_DEFAULTS=1).
 */
import v8 from 'node:v8';
import { jitFlag } from '@masq/core';

let applied: string | null | undefined;

export function tuneJit(): string | null {
  if (applied === undefined) {
    applied = jitFlag(process.execArgv, process.env);
    if (applied !== null) v8.setFlagsFromString(applied);
  }
  return applied;
}
