/**
 * prefetch.test.ts — Partition.prefetch is a read-only hint: on any bytes, offsets and
 * directions it never throws and changes neither the packets nor the table, and translating
 * after it gives the same results as without it.
 */
import test from 'ava';
import fc from 'fast-check';
import { Nat } from '../src/nat.js';
import { udp, tcp } from './helpers/packets.js';

const RULES = 'masquerade all from 10.200.0.0/24 to any';

test('prefetch on random bytes, offsets and directions: no throw, nothing written', (t) => {
  const nat = new Nat({ externals: ['198.51.100.100'], rules: RULES, maxSessions: 256, seed: 1 });
  const part = nat.partitions[0]!;
  // A few live sessions so index slots name real records.
  for (let i = 0; i < 8; i++) {
    const p = udp({ src: '10.200.0.2', sport: 1000 + i, dst: '203.0.113.1', dport: 53 });
    t.is(nat.process(p, 0, p.length, 0).length, 1);
  }
  const tableBefore = new Uint8Array(part.table.memory.buffer).slice();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.tuple(fc.nat(400), fc.nat(3)), { maxLength: 80 }), (bytes, picks) => {
      const copy = bytes.slice();
      const offs = Uint32Array.from(picks.map(([o]) => o));
      const dirs = Uint8Array.from(picks.map(([, d]) => d));
      const r = part.prefetch(bytes, offs, dirs, picks.length);
      return typeof r === 'number' && bytes.every((v, i) => v === copy[i]);
    }),
    { numRuns: 2000 },
  );
  t.deepEqual(new Uint8Array(part.table.memory.buffer), tableBefore);
});

test('translating with and without a prefetch pass gives the same packets', (t) => {
  const mk = (): Nat => new Nat({ externals: ['198.51.100.100'], rules: RULES, maxSessions: 1024, seed: 7 });
  const a = mk();
  const b = mk();
  const pkts = Array.from({ length: 40 }, (_, i) =>
    i % 2 ? udp({ src: '10.200.0.3', sport: 2000 + i, dst: '203.0.113.9', dport: 53 }) : tcp({ src: '10.200.0.4', sport: 3000 + i, dst: '203.0.113.9', dport: 80 }),
  );
  for (const p of pkts) {
    const pa = p.slice();
    const pb = p.slice();
    const ra = a.process(pa, 0, pa.length, 5).map((x) => [...x]);
    b.partitions[0]!.prefetch(pb, Uint32Array.of(0), Uint8Array.of(0), 1);
    const rb = b.process(pb, 0, pb.length, 5).map((x) => [...x]);
    t.deepEqual(rb, ra);
  }
});
