/**
 * table.test.ts — the session record's layout details that translate() relies on: the
 * 64-byte records start on a cache line, and the 32-bit packet/byte counters carry into the
 * cold column, so listings show counts past 4 GiB right; the slow path's load hints only read.
 */
import test from 'ava';
import fc from 'fast-check';
import { Nat } from '../src/nat.js';
import { listSessions } from '../src/listing.js';
import { HI_N, REC, R_BYTE_IN, R_BYTE_OUT, R_PKT_IN, R_PKT_OUT } from '../src/table.js';
import { tcp, udp } from './helpers/packets.js';
import { hash3, hash5 } from '../src/hash.js';

const RULES = 'masquerade all from 10.200.0.0/24 to any';

test('session records are 64 bytes on a cache-line boundary', (t) => {
  const nat = new Nat({ externals: ['198.51.100.100'], rules: RULES, maxSessions: 1000, seed: 1 });
  const c = nat.partitions[0]!.table.cols;
  t.is(REC * 4, 64);
  t.is(c.sRec.byteOffset % 64, 0);
  t.is(c.sRecF.byteOffset, c.sRec.byteOffset);
});

test('packet and byte counters carry past 2^32 (listing and translate agree)', (t) => {
  const nat = new Nat({ externals: ['198.51.100.100'], rules: RULES, maxSessions: 1000, seed: 1 });
  const part = nat.partitions[0]!;
  const tab = part.table;
  const p = udp({ src: '10.200.0.2', sport: 4000, dst: '203.0.113.1', dport: 53 });
  t.is(nat.process(p.slice(), 0, p.length, 1).length, 1);
  const sid = listSessions(tab, 1)[0]!.id;
  const r = tab.cols.sRec;
  // Just below the wrap: the next packets must carry.
  r[sid * REC + R_BYTE_OUT] = 2 ** 32 - 10;
  r[sid * REC + R_PKT_OUT] = 2 ** 32 - 1;
  t.is(nat.process(p.slice(), 0, p.length, 2).length, 1);
  t.is(tab.sByteOut(sid), 2 ** 32 - 10 + p.length);
  t.is(tab.sPktOut(sid), 2 ** 32);
  const row = listSessions(tab, 2)[0]!;
  t.is(row.bytesOut, 2 ** 32 - 10 + p.length);
  t.is(row.packetsOut, 2 ** 32);
  // Many carries: a 48-bit count.
  for (let i = 0; i < 3; i++) tab.count(sid, R_BYTE_IN, 2 ** 32 - 1);
  t.is(tab.sByteIn(sid), 3 * (2 ** 32 - 1));
});

test('a session in a reused slot starts with every counter, carry and timer of its own (nothing of its predecessor)', (t) => {
  const nat = new Nat({ externals: ['198.51.100.100'], rules: RULES, maxSessions: 1000, seed: 1 });
  const part = nat.partitions[0]!;
  const tab = part.table;
  const first = udp({ src: '10.200.0.2', sport: 4000, dst: '203.0.113.1', dport: 53 });
  t.is(nat.process(first.slice(), 0, first.length, 1).length, 1);
  const sid = listSessions(tab, 1)[0]!.id;
  // Every counter word and every carry of the first session non-zero.
  for (const w of [R_PKT_OUT, R_PKT_IN, R_BYTE_OUT, R_BYTE_IN]) tab.count(sid, w, 2 ** 32 - 1 + 7);
  for (let k = 0; k < HI_N; k++) t.not(tab.cols.sHi[sid * HI_N + k], 0, `carry ${k}`);
  t.is(part.flush(2, () => true), 1);
  const next = udp({ src: '10.200.0.3', sport: 5000, dst: '203.0.113.1', dport: 53 });
  t.is(nat.process(next.slice(), 0, next.length, 3).length, 1);
  const row = listSessions(tab, 3)[0]!;
  t.is(row.id, sid, 'the freed slot was reused');
  t.like(row, { inside: '10.200.0.3', packetsOut: 1, packetsIn: 0, bytesOut: next.length, bytesIn: 0, idleMs: 0 });
  t.is(row.expiresMs, nat.config.timeouts.udp);
});

test("the slow path's load hints (table touchInbound/touchMappingOut, hosts touch) change no byte of the table or the host counts, and give 16-bit integers", (t) => {
  const nat = new Nat({ externals: ['198.51.100.100', '198.51.100.101'], rules: RULES, maxSessions: 256, seed: 1 });
  const part = nat.partitions[0]!;
  // Some live state first: TCP connections (a SYN hints before its lookup) and UDP flows.
  for (let i = 0; i < 40; i++) {
    const p = i % 2 === 0 ? tcp({ src: `10.200.0.${2 + (i % 7)}`, sport: 40000 + i, dst: '203.0.113.1', dport: 443, flags: 'S' }) : udp({ src: `10.200.0.${2 + (i % 7)}`, sport: 5000 + i, dst: '203.0.113.2', dport: 53 });
    t.is(nat.process(p.slice(), 0, p.length, 1).length, 1);
  }
  const table = new Uint8Array(part.table.memory.buffer);
  const hosts = new Uint8Array(part.hosts!.buffer);
  const before = [table.slice(), hosts.slice()];
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const u16 = fc.integer({ min: 0, max: 0xffff });
  fc.assert(
    fc.property(fc.constantFrom(1, 6, 17), u32, u16, u32, u16, (p, a, ap, b, bp) => {
      const v = [part.table.touchInbound(hash3(p, a, ap), hash5(p, a, ap, b, bp)), part.table.touchMappingOut(p, a, ap), part.hosts!.touch(a)];
      part.hint ^= v[0]! ^ v[1]! ^ v[2]!;
      // Small integers (16 bits): the partition's hint field must stay one (see touchInbound).
      return v.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff);
    }),
    { numRuns: 500 },
  );
  t.true(Buffer.from(before[0]!).equals(Buffer.from(table)), 'table unchanged');
  t.true(Buffer.from(before[1]!).equals(Buffer.from(hosts)), 'host counts unchanged');
});
