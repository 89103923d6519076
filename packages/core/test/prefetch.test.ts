/**
 * prefetch.test.ts — Partition.prefetch is a read-only hint: on any bytes, offsets and
 * directions it never throws and changes neither the packets nor the table, and translating
 * after it gives the same results as without it.
 */
import test from 'ava';
import fc from 'fast-check';
import { logSeed, propertyRuns } from './helpers/seed.js';
import { Nat } from '../src/nat.js';
import { VerdictKind, verdictKind } from '../src/verdict.js';
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
  logSeed(t);
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

test('batches with a prefetch pass translate exactly like one packet at a time (new flows, replies, repeats, strays)', (t) => {
  let replies = 0;
  // A packet: outbound from a small pool of inside flows, or inbound to the external address at
  // a port that an earlier outbound packet was given (a reply) or at random (a stray).
  const step = fc.oneof(
    fc.record({ kind: fc.constant('out' as const), host: fc.nat(3), port: fc.nat(5), tcp: fc.boolean(), remote: fc.nat(2) }),
    fc.record({ kind: fc.constant('reply' as const), pick: fc.nat(1000), tcp: fc.boolean() }),
    fc.record({ kind: fc.constant('stray' as const), port: fc.integer({ min: 1024, max: 65535 }), tcp: fc.boolean() }),
  );
  logSeed(t);
  fc.assert(
    fc.property(fc.array(step, { minLength: 1, maxLength: 120 }), fc.integer({ min: 1, max: 16 }), (steps, batch) => {
      const mk = (): Nat => new Nat({ externals: ['198.51.100.100'], rules: RULES, maxSessions: 512, seed: 11, filtering: 'endpoint' });
      const a = mk();
      const b = mk();
      const pa = a.partitions[0]!;
      const pb = b.partitions[0]!;
      const given: { port: number; remote: string; rport: number }[] = [];
      const STRIDE = 128;
      for (let i0 = 0; i0 < steps.length; i0 += batch) {
        const group = steps.slice(i0, i0 + batch);
        const bufA = new Uint8Array(group.length * STRIDE);
        const dirs = new Uint8Array(group.length);
        group.forEach((s, j) => {
          const proto = s.tcp ? tcp : udp;
          let p: Uint8Array;
          if (s.kind === 'out') {
            p = proto({ src: `10.200.0.${2 + s.host}`, sport: 4000 + s.port, dst: `203.0.113.${1 + s.remote}`, dport: 53, ...(s.tcp ? { flags: 'S' } : {}) });
            dirs[j] = 0;
          } else if (s.kind === 'reply' && given.length > 0) {
            const g = given[s.pick % given.length]!;
            p = proto({ src: g.remote, sport: g.rport, dst: '198.51.100.100', dport: g.port, ...(s.tcp ? { flags: 'SA' } : {}) });
            dirs[j] = 1;
          } else {
            p = proto({ src: '203.0.113.50', sport: 999, dst: '198.51.100.100', dport: s.kind === 'stray' ? s.port : 1, ...(s.tcp ? { flags: 'S' } : {}) });
            dirs[j] = 1;
          }
          bufA.set(p, j * STRIDE);
        });
        const bufB = bufA.slice();
        const offs = Uint32Array.from(group.map((_, j) => j * STRIDE));
        pb.prefetch(bufB, offs, dirs, group.length);
        for (let j = 0; j < group.length; j++) {
          const o = j * STRIDE;
          const len = (bufA[o + 2]! << 8) | bufA[o + 3]!;
          const va = pa.translate(bufA, o, len, dirs[j]!, 1000 + i0);
          const vb = pb.translate(bufB, o, len, dirs[j]!, 1000 + i0);
          if (va !== vb) return false;
          if (dirs[j] === 0 && verdictKind(va) === VerdictKind.Forward) {
            // Forwarded outbound: remember its external port for replies.
            const ihl = (bufA[o]! & 0xf) * 4;
            given.push({ port: (bufA[o + ihl]! << 8) | bufA[o + ihl + 1]!, remote: `${bufA[o + 16]}.${bufA[o + 17]}.${bufA[o + 18]}.${bufA[o + 19]}`, rport: 53 });
          }
        }
        if (!bufA.every((v, i) => v === bufB[i])) return false;
      }
      replies += given.length > 0 ? 1 : 0;
      return Buffer.compare(Buffer.from(new Uint8Array(pa.table.memory.buffer)), Buffer.from(new Uint8Array(pb.table.memory.buffer))) === 0;
    }),
    { numRuns: propertyRuns(300) },
  );
  t.true(replies > 100, `runs with replies: ${replies}`);
});

test('a stale prefetch hint is never trusted: the packet changed after the prefetch is looked up by its own key', (t) => {
  const nat = new Nat({ externals: ['198.51.100.100'], rules: RULES, maxSessions: 256, seed: 3, filtering: 'endpoint' });
  const part = nat.partitions[0]!;
  const portOf = (p: Uint8Array): number => (p[20]! << 8) | p[21]!;
  const a = udp({ src: '10.200.0.2', sport: 5000, dst: '203.0.113.1', dport: 53 });
  const b = udp({ src: '10.200.0.3', sport: 5001, dst: '203.0.113.1', dport: 53 });
  t.is(part.translate(a, 0, a.length, 0, 1), VerdictKind.Forward);
  t.is(part.translate(b, 0, b.length, 0, 1), VerdictKind.Forward);
  const replyTo = (port: number): Uint8Array => udp({ src: '203.0.113.1', sport: 53, dst: '198.51.100.100', dport: port });
  // Inbound: prefetch A's reply, then B's reply is in the buffer when translate runs.
  const buf = replyTo(portOf(a));
  part.prefetch(buf, Uint32Array.of(0), Uint8Array.of(1), 1);
  buf.set(replyTo(portOf(b)));
  t.is(part.translate(buf, 0, buf.length, 1, 2), VerdictKind.Forward);
  t.is(`${buf[16]}.${buf[17]}.${buf[18]}.${buf[19]}`, '10.200.0.3', 'B got its own reply');
  // A stray to an unmapped port after A's reply was prefetched: dropped, not given to A.
  const buf2 = replyTo(portOf(a));
  part.prefetch(buf2, Uint32Array.of(0), Uint8Array.of(1), 1);
  buf2.set(replyTo(portOf(a) === 65535 ? 1025 : portOf(a) + 1 === portOf(b) ? portOf(a) + 2 : portOf(a) + 1));
  t.not(part.translate(buf2, 0, buf2.length, 1, 2), VerdictKind.Forward);
  // Outbound: A's packet prefetched, a new flow's packet translated: a new mapping, not A's.
  const buf3 = a.slice();
  buf3.set(udp({ src: '10.200.0.2', sport: 5000, dst: '203.0.113.1', dport: 53 }));
  part.prefetch(buf3, Uint32Array.of(0), Uint8Array.of(0), 1);
  buf3.set(udp({ src: '10.200.0.4', sport: 5002, dst: '203.0.113.1', dport: 53 }));
  t.is(part.translate(buf3, 0, buf3.length, 0, 2), VerdictKind.Forward);
  t.not(portOf(buf3), portOf(a), 'the new flow has its own external port');
  t.is(nat.sessionCount, 3);
});
