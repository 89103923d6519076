/**
 * scenario.ts — the addresses, rules and small helpers the libalias-style scenario tests
 * share (scenario, mutants, regressions): one gateway at EXT (EXT2 when two), inside hosts A
 * and B in 10.200.0.0/24, outside hosts R and R2, a router, and a Nat made from them.
 */
import { Nat, type NatOptions } from '../../src/nat.js';
import { listSessions, type SessionRow } from '../../src/listing.js';
import type { NatResult, Parsed } from './packets.js';

export const EXT = '198.51.100.100';
export const EXT2 = '198.51.100.101';
export const A = '10.200.0.2';
export const B = '10.200.0.3';
export const R = '203.0.113.10';
export const R2 = '203.0.113.20';
export const ROUTER = '192.0.2.1';
export const RULES = 'masquerade all from 10.200.0.0/24 to any';

/** A Nat masquerading 10.200.0.0/24 behind EXT (4096 sessions, seed 1), with overrides. */
export function mkNat(o: Partial<NatOptions> = {}): Nat {
  return new Nat({ externals: [EXT], rules: RULES, maxSessions: 4096, seed: 1, ...o });
}

/** The single packet a call emitted; fails loudly with the drop reason otherwise. */
export function one(r: NatResult): Parsed {
  if (r.all.length !== 1) throw new Error(`expected one packet, got ${r.all.length} (drop: ${r.drop})`);
  return r.pkt!;
}

/** Every partition's sessions as listed at `now`. */
export function sessionRows(nat: Nat, now: number): SessionRow[] {
  return nat.partitions.flatMap((p) => listSessions(p.table, now));
}
