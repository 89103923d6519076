/**
 * sched.ts — the Linux scheduling policy the packet threads run under (`masq run --sched`).
 *
 * Owns: the policy names, their default, the `--sched` / `sched =` text form and the call an
 * actor makes on its own thread at start (sched_setscheduler(2) through the TUN addon).
 *
 * Why: every packet that arrives on an idle TUN wakes the I/O thread. Under SCHED_OTHER that
 * wake-up may preempt the program that is sending the packets (on a small machine it shares a
 * CPU with them), so each packet costs a preemption and the sender is cut off mid-burst.
 * Under SCHED_BATCH the thread keeps its fair share of CPU, but its wake-ups do not preempt:
 * it runs when the CPU's current task blocks or its slice ends, or at once on an idle CPU, and
 * finds the burst in the queue. Measured on 2 cores (docs/BENCHMARKS.md), paired rounds
 * against SCHED_OTHER: TCP connections/s through the gateway +18 % on average (higher in 15
 * of 16 rounds), TCP throughput +5-31 %, latency with an idle CPU unchanged. The real-time
 * policies are not offered: a packet thread at SCHED_FIFO, spinning in its hand-off wait,
 * took its CPU from the programs it serves (connections/s fell by two thirds).
 *
 * Contract: parseSched(text) accepts "normal", "batch", or "io=POLICY,workers=POLICY" (either
 * part may be left out and keeps its default); it throws SchedSyntaxError with what is wrong.
 * applyThreadPolicy() never throws: where the kernel refuses (a seccomp filter, an old
 * kernel), the thread keeps its policy and a process warning says so.
 */
import { setThreadPolicy, SCHED_BATCH, SCHED_OTHER } from '@masq/tun';

export type SchedPolicy = 'normal' | 'batch';

export interface SchedPolicies {
  /** The I/O thread, woken by every packet the TUN hands over. */
  io: SchedPolicy;
  /** The translation workers, woken by the I/O thread's doorbell. */
  workers: SchedPolicy;
}

export const DEFAULT_SCHED: Readonly<SchedPolicies> = Object.freeze({ io: 'batch', workers: 'batch' });

export const SCHED_POLICIES: readonly SchedPolicy[] = ['normal', 'batch'];

export class SchedSyntaxError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'SchedSyntaxError';
  }
}

const isPolicy = (s: string): s is SchedPolicy => (SCHED_POLICIES as readonly string[]).includes(s);

/** "batch" | "normal" | "io=batch,workers=normal" → both policies (defaults fill the gaps). */
export function parseSched(text: string): SchedPolicies {
  const t = text.trim();
  const usage = 'use "normal", "batch", or "io=POLICY,workers=POLICY" with POLICY normal or batch';
  if (t === '') throw new SchedSyntaxError(`empty: ${usage}`);
  if (isPolicy(t)) return { io: t, workers: t };
  const out: SchedPolicies = { ...DEFAULT_SCHED };
  const seen = new Set<string>();
  for (const part of t.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*([a-z]+)\s*$/.exec(part);
    if (m === null) throw new SchedSyntaxError(`"${part.trim()}" is not a policy or THREADS=POLICY: ${usage}`);
    const [, who, pol] = m as unknown as [string, string, string];
    if (who !== 'io' && who !== 'workers') throw new SchedSyntaxError(`"${who}": the threads are "io" and "workers"`);
    if (seen.has(who)) throw new SchedSyntaxError(`"${who}" is given twice`);
    seen.add(who);
    if (!isPolicy(pol)) throw new SchedSyntaxError(`"${pol}" is not a policy: ${usage}`);
    out[who] = pol;
  }
  return out;
}

/** The canonical text of a pair of policies (the `gateway up` log line shows it). */
export function formatSched(s: SchedPolicies): string {
  return s.io === s.workers ? s.io : `io=${s.io},workers=${s.workers}`;
}

/** The kernel's number for a policy (SCHED_OTHER 0, SCHED_BATCH 3). */
export function policyNumber(p: SchedPolicy): typeof SCHED_OTHER | typeof SCHED_BATCH {
  return p === 'batch' ? SCHED_BATCH : SCHED_OTHER;
}

/** Put the calling thread under `policy`. Never throws. */
export function applyThreadPolicy(policy: SchedPolicy, who: string): void {
  try {
    setThreadPolicy(policyNumber(policy));
  } catch (e) {
    process.emitWarning(`masq: ${who}: could not set its scheduling policy (${(e as Error).message}); it runs under the default policy`);
  }
}
