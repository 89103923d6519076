/**
 * fragkeys.test.ts — the fragment-key table the session table and the dispatcher share
 * (src/fragkeys.ts): a record is found by its whole key while it lives, and a full probe
 * window gives up its soonest-expiring record, never fails.
 */
import test from 'ava';
import { FragKeys } from '../src/fragkeys.js';

const A = 0x0a000001;
const B = 0xc6336401;

test('a record is found by (src, dst, proto, id, direction) until it expires, and by nothing else', (t) => {
  const f = FragKeys.alloc(64);
  const i = f.put(A, B, 17, 0x1234, 0, 1000, 0);
  t.is(f.find(A, B, 17, 0x1234, 0, 999), i);
  t.is(f.find(A, B, 17, 0x1234, 0, 1000), -1, 'expired at its deadline');
  t.is(f.find(A, B, 17, 0x1234, 1, 10), -1, 'other direction');
  t.is(f.find(A, B, 6, 0x1234, 0, 10), -1, 'other protocol');
  t.is(f.find(A, B, 17, 0x1235, 0, 10), -1, 'other IP ID');
  t.is(f.find(B, A, 17, 0x1234, 0, 10), -1, 'addresses swapped');
  // The same key again takes the same slot (a first fragment seen twice).
  t.is(f.put(A, B, 17, 0x1234, 0, 2000, 10), i);
  t.is(f.find(A, B, 17, 0x1234, 0, 1500), i);
  f.rebase(500);
  t.is(f.find(A, B, 17, 0x1234, 0, 2400), i, 'rebase moves the deadline');
  f.clear();
  t.is(f.find(A, B, 17, 0x1234, 0, 0), -1, 'clear forgets it');
});

test('a full probe window overwrites the record that expires first; an expired one is reused first', (t) => {
  // 8 slots: every key's probe covers the whole table.
  const f = FragKeys.alloc(8);
  for (let id = 0; id < 8; id++) f.put(A, B, 17, id, 0, 100 + ((id + 3) % 8), 0);
  // id 5 expires first (at 100).
  f.put(A, B, 17, 99, 0, 500, 0);
  t.is(f.find(A, B, 17, 5, 0, 1), -1);
  for (const id of [0, 1, 2, 3, 4, 6, 7, 99]) t.not(f.find(A, B, 17, id, 0, 1), -1, `id ${id} kept`);
  // At 103.5 the records of ids 6, 7 and 0 (deadlines 101, 102, 103) have expired: the next
  // put takes one of their slots (the first its probe meets), and every live record stays.
  f.put(A, B, 17, 100, 0, 600, 103.5);
  t.not(f.find(A, B, 17, 100, 0, 1), -1);
  for (const id of [1, 2, 3, 4, 99]) t.not(f.find(A, B, 17, id, 0, 1), -1, `live id ${id} kept`);
  t.is([6, 7, 0].filter((id) => f.find(A, B, 17, id, 0, 1) !== -1).length, 2, 'one expired record gave its slot');
});
