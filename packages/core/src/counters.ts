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
import { IpProto } from './wire/ipv4.js';

/** Direction of a packet through the gateway. */
export const enum Dir {
  Out = 0,
  In = 1,
}

/** Protocol index used by counters: 0 tcp, 1 udp, 2 icmp, 3 other. */
export const PROTO_INDEX_NAMES = ['tcp', 'udp', 'icmp', 'other'] as const;
export function protoIndex(p: number): number {
  return p === IpProto.Tcp ? 0 : p === IpProto.Udp ? 1 : p === IpProto.Icmp ? 2 : 3;
}

/** TCP states for the sessions gauge (index = TcpState value). */
export const TCP_STATE_NAMES = ['none', 'syn_sent', 'syn_received', 'established', 'fin_out', 'fin_in', 'closing', 'reset'] as const;

/** Slot offsets are handed out block by block, in the order of C below (no literal sums). */
let nextSlot = 0;
function block(size: number): number {
  const at = nextSlot;
  nextSlot += size;
  return at;
}

export const MAX_EXTERNALS = 16;

export const C = {
  /** packets[dir][proto]: 2 × 4 */
  PACKETS: block(2 * 4),
  /** bytes[dir][proto] (IP total length): 2 × 4 */
  BYTES: block(2 * 4),
  /** drops[reason] */
  DROPS: block(DROP_REASON_COUNT),
  SESSIONS_CREATED: block(1),
  /** sessions expired[proto] (4) */
  SESSIONS_EXPIRED: block(4),
  /** sessions removed by flush/delete/rule change */
  SESSIONS_FLUSHED: block(1),
  PORT_ALLOC_FAILURES: block(1),
  /** live sessions by proto (4) */
  LIVE_BY_PROTO: block(4),
  /** live TCP sessions by state (8) */
  LIVE_TCP_STATE: block(TCP_STATE_NAMES.length),
  LIVE_MAPPINGS: block(1),
  /** ports in use per external address index (up to MAX_EXTERNALS) */
  PORTS_IN_USE: block(MAX_EXTERNALS),
  HAIRPINNED: block(1),
  HANDOFFS: block(1),
  ICMP_ERRORS_TRANSLATED: block(1),
  FRAGMENTS: block(1),
  PASSED: block(1),
  ICMP_GENERATED: block(1),
  /** live expectations (gauge) */
  EXPECTATIONS: block(1),
  /** payload rewrites per helper id (MAX_ALGS) */
  ALG_REWRITES: block(MAX_ALGS),
  /** helper errors: [helper id][AlgError] (MAX_ALGS × ALG_ERROR_COUNT) */
  ALG_ERRORS: block(MAX_ALGS * ALG_ERROR_COUNT),
} as const;

/** Float64 slots in one counters block: the sum of the blocks above. */
export const COUNTER_SLOTS = nextSlot;

/** Counter slot of helper `alg`'s error `reason`. */
export function algErrorSlot(alg: number, reason: number): number {
  return C.ALG_ERRORS + alg * ALG_ERROR_COUNT + reason;
}

export function packetsSlot(dir: number, protoIdx: number): number {
  return C.PACKETS + dir * 4 + protoIdx;
}

export function bytesSlot(dir: number, protoIdx: number): number {
  return C.BYTES + dir * 4 + protoIdx;
}

/** Bytes in direction `dir` over every protocol, from a counter block (or a sum of blocks). */
export function bytesOf(c: Float64Array, dir: number): number {
  let n = 0;
  for (let p = 0; p < 4; p++) n += c[C.BYTES + dir * 4 + p]!;
  return n;
}

/** Sum several partitions' blocks into a fresh array (for readers). */
export function sumCounters(blocks: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(COUNTER_SLOTS);
  for (const b of blocks) for (let i = 0; i < COUNTER_SLOTS; i++) out[i]! += b[i]!;
  return out;
}
