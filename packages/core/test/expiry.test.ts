/**
 * expiry.test.ts — the expiry path the gateway runs: the timer actor's read-only sweep
 * (expiry.ts nominateExpired) nominates, a ring carries the ids, and only the owner frees,
 * after checking again (Partition.confirmExpired). Here the ring is an array and the owner
 * confirms later, so a refresh between nomination and confirmation is seen.
 */
import test from 'ava';
import { Nat } from '../src/nat.js';
import { C } from '../src/counters.js';
import { nominateExpired } from '../src/expiry.js';
import { MINUTE } from '../src/config.js';
import { natOut, udp } from './helpers/packets.js';

const EXT = '198.51.100.100';
const A = '10.200.0.2';
const R = '203.0.113.10';

function mkNat(): Nat {
  return new Nat({ externals: [EXT], rules: 'masquerade all from 10.200.0.0/24 to any', maxSessions: 4096, seed: 1 });
}

test('nominate, then the owner confirms: a session refreshed after its nomination is kept, the others are freed and counted', (t) => {
  const nat = mkNat();
  const part = nat.partitions[0]!;
  for (let i = 0; i < 3; i++) t.is(natOut(nat, udp({ src: A, sport: 5000 + i, dst: R, dport: 53 }), 0).drop, 'none');
  t.is(nat.sessionCount, 3);
  const ring: number[] = [];
  // Not yet expired: nothing is nominated.
  nominateExpired(part.table, 1, 5 * MINUTE - 1, 1 << 20, (sid) => ring.push(sid) > 0);
  t.deepEqual(ring, []);
  nominateExpired(part.table, 1, 5 * MINUTE, 1 << 20, (sid) => ring.push(sid) > 0);
  t.is(ring.length, 3, 'all three nominated at their deadline');
  t.is(nat.sessionCount, 3, 'nominating frees nothing');
  // The first flow sends again before the owner gets to the ring: its timer moves on.
  t.is(natOut(nat, udp({ src: A, sport: 5000, dst: R, dport: 53 }), 5 * MINUTE).drop, 'none');
  const freed = ring.filter((sid) => part.confirmExpired(sid, 5 * MINUTE)).length;
  t.is(freed, 2);
  t.is(nat.sessionCount, 1);
  t.is(nat.counters()[C.SESSIONS_EXPIRED + 1], 2, 'two UDP sessions counted as expired');
  // A second confirmation of the same ids (a nomination repeated) frees nothing more.
  t.is(ring.filter((sid) => part.confirmExpired(sid, 5 * MINUTE)).length, 0);
});

test('a full ring stops the sweep at the session it could not hand over; the next sweep starts there', (t) => {
  const nat = mkNat();
  const part = nat.partitions[0]!;
  for (let i = 0; i < 4; i++) natOut(nat, udp({ src: A, sport: 6000 + i, dst: R, dport: 53 }), 0);
  const ring: number[] = [];
  const push = (sid: number): boolean => ring.length < 2 && ring.push(sid) > 0;
  const next = nominateExpired(part.table, 1, 5 * MINUTE, 1 << 20, push);
  t.is(ring.length, 2);
  t.true(part.table.isLive(next) && part.table.sExpires(next) <= 5 * MINUTE, 'the cursor rests on the session not handed over');
  t.false(ring.includes(next));
  ring.length = 0;
  nominateExpired(part.table, next, 5 * MINUTE, 1 << 20, push);
  t.is(ring[0], next, 'nominated first next time');
});

test('Nat.expire runs the same sweep and confirmation in one thread', (t) => {
  const nat = mkNat();
  natOut(nat, udp({ src: A, sport: 7000, dst: R, dport: 53 }), 0);
  t.is(nat.expire(5 * MINUTE - 1), 0);
  t.is(nat.expire(5 * MINUTE), 1);
  t.is(nat.sessionCount, 0);
});
