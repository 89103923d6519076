/**
 * expiry.ts — the one expiry sweep. `nominateExpired` scans a bounded run of a table's session
 * slots READ-ONLY and hands each session past its deadline to `nominate`; only the owning
 * partition then frees it, after checking again (`Partition.confirmExpired`: the session may
 * have been refreshed since). The gateway's timer actor nominates over a ring to the owner
 * (workers/src/timer-actor.ts); `Partition.expire` (the single-threaded `Nat` and the tests)
 * confirms each nomination at once. Both run this scan and that confirmation.
 *
 * Contract: reads only; at most min(budget, sessionHigh - 1) slots from `from`, wrapping to 1;
 * stops early when `nominate` returns false (a full ring: that session is nominated again next
 * time). Returns where the next scan starts.
 *
 * References: RFC 4787 REQ-5 / RFC 5382 REQ-5 (mapping timers), RFC 7857 §2.1-2.2.
 */
import type { SessionTable } from './table.js';

export function nominateExpired(t: SessionTable, from: number, now: number, budget: number, nominate: (sid: number) => boolean): number {
  const high = t.sessionHigh;
  const n = Math.min(budget, high - 1);
  let cur = from;
  for (let k = 0; k < n; k++) {
    if (cur <= 0 || cur >= high) cur = 1;
    if (t.isLive(cur) && t.sExpires(cur) <= now && !nominate(cur)) break;
    cur++;
  }
  return cur;
}
