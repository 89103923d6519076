/**
 * counters.ts — the per-partition statistics block: one Float64Array over a
 * SharedArrayBuffer, written only by the partition's owner, read by anyone (metrics actor,
 * CLI) at any time.
 *
 * Contract: every slot is named here and nowhere else. Counters only grow; gauges (live
 * sessions by protocol and TCP state, ports in use) go up and down. Float64 holds integers
 * exactly to 2^53. Readers sum the blocks of all partitions. Aligned 8-byte stores are not
 * torn on the platforms Node supports, so no Atomics are needed for a single writer.
 */
import { DROP_REASON_COUNT } from './drop.js';
import { MAX_ALGS, ALG_ERROR_COUNT } from './alg/types.js';

/** Direction of a packet through the gateway. */
export const enum Dir {
  Out = 0,
  In = 1,
}

/** Protocol index used by counters: 0 tcp, 1 udp, 2 icmp, 3 other. */
export const PROTO_INDEX_NAMES = ['tcp', 'udp', 'icmp', 'other'] as const;
export function protoIndex(p: number): number {
  return p === 6 ? 0 : p === 17 ? 1 : p === 1 ? 2 : 3;
}

/** TCP states for the sessions gauge (index = TcpState value). */
export const TCP_STATE_NAMES = ['none', 'syn_sent', 'syn_received', 'established', 'fin_out', 'fin_in', 'closing', 'reset'] as const;

export const C = {
  /** packets[dir][proto]: 2 × 4 */
  PACKETS: 0,
  /** bytes[dir]: 2 */
  BYTES: 8,
  /** drops[reason] */
  DROPS: 10,
  SESSIONS_CREATED: 10 + DROP_REASON_COUNT,
  /** sessions expired[proto] (4) */
  SESSIONS_EXPIRED: 11 + DROP_REASON_COUNT,
  /** sessions removed by flush/delete/rule change */
  SESSIONS_FLUSHED: 15 + DROP_REASON_COUNT,
  PORT_ALLOC_FAILURES: 16 + DROP_REASON_COUNT,
  /** live sessions by proto (4) */
  LIVE_BY_PROTO: 17 + DROP_REASON_COUNT,
  /** live TCP sessions by state (8) */
  LIVE_TCP_STATE: 21 + DROP_REASON_COUNT,
  LIVE_MAPPINGS: 29 + DROP_REASON_COUNT,
  /** ports in use per external address index (up to MAX_EXTERNALS) */
  PORTS_IN_USE: 30 + DROP_REASON_COUNT,
  HAIRPINNED: 30 + DROP_REASON_COUNT + 16,
  HANDOFFS: 31 + DROP_REASON_COUNT + 16,
  ICMP_ERRORS_TRANSLATED: 32 + DROP_REASON_COUNT + 16,
  FRAGMENTS: 33 + DROP_REASON_COUNT + 16,
  PASSED: 34 + DROP_REASON_COUNT + 16,
  ICMP_GENERATED: 35 + DROP_REASON_COUNT + 16,
  /** live expectations (gauge) */
  EXPECTATIONS: 36 + DROP_REASON_COUNT + 16,
  /** payload rewrites per helper id (MAX_ALGS) */
  ALG_REWRITES: 37 + DROP_REASON_COUNT + 16,
  /** helper errors: [helper id][AlgError] (MAX_ALGS × ALG_ERROR_COUNT) */
  ALG_ERRORS: 37 + DROP_REASON_COUNT + 16 + MAX_ALGS,
} as const;

export const MAX_EXTERNALS = 16;
export const COUNTER_SLOTS = 37 + DROP_REASON_COUNT + 16 + MAX_ALGS + MAX_ALGS * ALG_ERROR_COUNT;

/** Counter slot of helper `alg`'s error `reason`. */
export function algErrorSlot(alg: number, reason: number): number {
  return C.ALG_ERRORS + alg * ALG_ERROR_COUNT + reason;
}

export function packetsSlot(dir: number, protoIdx: number): number {
  return C.PACKETS + dir * 4 + protoIdx;
}

/** Sum several partitions' blocks into a fresh array (for readers). */
export function sumCounters(blocks: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(COUNTER_SLOTS);
  for (const b of blocks) for (let i = 0; i < COUNTER_SLOTS; i++) out[i]! += b[i]!;
  return out;
}
