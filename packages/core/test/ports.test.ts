/**
 * ports.test.ts — external port choice: the keyed hash against its reference vectors, RFC 6056
 * Algorithm 4 (secret per-destination offsets, successive ports toward one destination),
 * keys in shared state (a restarted owner keeps them), the 0-1023 class kept apart whatever
 * the range (RFC 4787 REQ-3), parity preservation (RFC 4787 REQ-4), the per-partition slices
 * (inbound routing by external port depends on them) and the config checks of the range.
 */
import test from 'ava';
import fc from 'fast-check';
import { Arena, placeLayout } from '../src/arena.js';
import { ConfigError, resolveConfig } from '../src/config.js';
import { halfSipHash3, halfSipHash3Pair, halfSipHashWords } from '../src/keyedhash.js';
import { PortAllocator, PortMode, PortPlan, type PortArrays } from '../src/ports.js';
import { Nat } from '../src/nat.js';
import { natOut, udp } from './helpers/packets.js';

const UDP = 17;
const TCP = 6;
const ICMP = 1;
const HOST = 0x0ac80002;
const R1 = 0xcb00710a;
const R2 = 0xcb007114;

function arraysFor(plan: PortPlan, externals = 1, buffer?: SharedArrayBuffer): { arrays: PortArrays; buffer: SharedArrayBuffer } {
  const { layout, buffer: b } = placeLayout((a: Arena) => PortAllocator.arrays(plan, externals, a), buffer);
  return { arrays: layout, buffer: b };
}

function allocator(lo: number, hi: number, mode = PortMode.Random, seed = 7, partitions = 1, partition = 0): PortAllocator {
  const plan = new PortPlan(lo, hi, partitions);
  const a = new PortAllocator(plan, partition, arraysFor(plan).arrays, mode, 120_000);
  a.seed(seed);
  return a;
}

test('HalfSipHash-2-4 agrees with the reference vectors (veorq/SipHash vectors_hsip32, key 00..07)', (t) => {
  const k0 = 0x03020100;
  const k1 = 0x07060504;
  const words = [0x03020100, 0x07060504, 0x0b0a0908];
  t.is(halfSipHashWords(k0, k1, []), 0x5b9f35a9);
  t.is(halfSipHashWords(k0, k1, words.slice(0, 1)), 0x89466e2a);
  t.is(halfSipHashWords(k0, k1, words.slice(0, 2)), 0x8f84b8d0);
  t.is(halfSipHashWords(k0, k1, words), 0x2f87f057);
  t.is(halfSipHash3(k0, k1, words[0]!, words[1]!, words[2]!), 0x2f87f057);
  const g = new Uint32Array(1);
  t.is(halfSipHash3Pair(k0, k1, k0, k1, words[0]!, words[1]!, words[2]!, words[2]!, g), 0x2f87f057);
  t.is(g[0], 0x2f87f057);
});

test('the HalfSipHash pair (F and G side by side) gives exactly the two single hashes, for any keys and words', (t) => {
  const g = new Uint32Array(1);
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  fc.assert(
    fc.property(u32, u32, u32, u32, u32, u32, u32, u32, (k0, k1, k2, k3, a, b, cf, cg) => {
      g[0] = 0;
      const f = halfSipHash3Pair(k0, k1, k2, k3, a, b, cf, cg, g);
      return f === halfSipHash3(k0, k1, a, b, cf) && g[0] === halfSipHash3(k2, k3, a, b, cg);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('Algorithm 4: successive flows toward one destination take successive ports of their parity', (t) => {
  const a = allocator(1024, 65535);
  const ports = Array.from({ length: 6 }, (_, i) => a.allocate(0, UDP, HOST, 5000 + 2 * i, 0, R1, 53));
  for (let i = 1; i < ports.length; i++) t.is(ports[i], ports[i - 1]! + 2, `ports ${ports.join(',')}`);
  t.true(ports.every((p) => p % 2 === 0));
  // A freed port is not the next one toward the same destination, even once it may be
  // reused: the table counter has moved on (the point of Algorithm 4: no quick reuse of a
  // four-tuple the remote may still hold in TIME_WAIT).
  for (const p of ports) a.release(0, UDP, p, 0);
  t.is(a.allocate(0, UDP, HOST + 1, 7000, 200_000, R1, 53), ports[5]! + 2);
});

test('Algorithm 4: each destination has its own secret offset; the same keys give the same ports', (t) => {
  const a = allocator(1024, 65535, PortMode.Random, 11);
  const b = allocator(1024, 65535, PortMode.Random, 11);
  const c = allocator(1024, 65535, PortMode.Random, 12);
  const toR1 = a.allocate(0, UDP, HOST, 5000, 0, R1, 53);
  const toR2 = a.allocate(0, UDP, HOST, 5002, 0, R2, 53);
  // Ports toward R1 say nothing about R2: the offsets differ by far more than the one port
  // a counter would advance.
  t.true(Math.abs(toR1 - toR2) > 2, `${toR1} vs ${toR2}`);
  t.is(b.allocate(0, UDP, HOST, 5000, 0, R1, 53), toR1, 'same seed, same first port');
  t.not(c.allocate(0, UDP, HOST, 5000, 0, R1, 53), toR1, 'another key, another offset');
});

test('keys come from the cryptographic generator when no seed is given, and survive a restarted owner', (t) => {
  const plan = new PortPlan(1024, 65535, 1);
  const seqs: number[][] = [];
  for (let k = 0; k < 2; k++) {
    const { arrays } = arraysFor(plan);
    const a = new PortAllocator(plan, 0, arrays, PortMode.Random, 120_000);
    a.seedIfFresh(0);
    seqs.push([R1, R2, R1 + 1, R2 + 1].map((r, i) => a.allocate(0, UDP, HOST, 6000 + 2 * i, 0, r, 53)));
  }
  t.notDeepEqual(seqs[0], seqs[1], 'two fresh allocators draw different keys');
  // A restarted owner builds a new allocator over the same shared arrays: keys and table stay.
  const { arrays, buffer } = arraysFor(plan);
  const first = new PortAllocator(plan, 0, arrays, PortMode.Random, 120_000);
  first.seedIfFresh(0);
  const p1 = first.allocate(0, UDP, HOST, 5000, 0, R1, 53);
  const again = new PortAllocator(plan, 0, arraysFor(plan, 1, buffer).arrays, PortMode.Random, 120_000);
  again.seedIfFresh(12345);
  t.is(again.allocate(0, UDP, HOST, 5002, 0, R1, 53), p1 + 2, 'the restarted owner continues the same sequence');
});

test('the 0-1023 class is never given to an unprivileged source, whatever the range', (t) => {
  // 1000-1100: 24 privileged ports and 77 others.
  const a = allocator(1000, 1100);
  const high: number[] = [];
  for (let i = 0; i < 77; i++) high.push(a.allocate(0, UDP, HOST, 40000 + i, 0, R1, 53));
  t.true(high.every((p) => p >= 1024 && p <= 1100), `all ≥ 1024: ${high.join(',')}`);
  t.is(new Set(high).size, 77);
  t.is(a.allocate(0, UDP, HOST, 40100, 0, R1, 53), -1, 'the unprivileged class is exhausted: refused, not given a low port');
  const low: number[] = [];
  for (let i = 0; i < 24; i++) low.push(a.allocate(0, UDP, HOST, 600 + i, 0, R1, 53));
  t.true(low.every((p) => p >= 1000 && p <= 1023), `privileged sources get privileged ports: ${low.join(',')}`);
  t.is(a.allocate(0, UDP, HOST, 700, 0, R1, 53), -1, 'and never spill into the other class');
  // A range with no port ≥ 1024 cannot serve unprivileged sources at all: refused as a config.
  t.is(allocator(600, 1023).allocate(0, TCP, HOST, 40000, 0, R1, 80), -1);
  // The default range has no privileged ports: a privileged source (NTP's 123) still gets one.
  const d = allocator(1024, 65535);
  const p = d.allocate(0, UDP, HOST, 123, 0, R1, 123);
  t.true(p >= 1024 && p % 2 === 1, `NTP client port 123 → ${p} (odd, ≥ 1024)`);
  // ICMP identifiers have no classes.
  const ids = allocator(1000, 1030);
  const got = Array.from({ length: 31 }, (_, i) => ids.allocate(0, ICMP, HOST, 5000 + i, 0, R1, 0));
  t.is(new Set(got).size, 31);
  t.true(got.some((p) => p < 1024) && got.some((p) => p >= 1024));
});

test('port ranges that leave a class empty or too small are config errors', (t) => {
  const err = (lo: number, hi: number, partitions = 1) => t.throws(() => resolveConfig({ externals: ['198.51.100.100'], portLo: lo, portHi: hi, partitions }), { instanceOf: ConfigError })!.message;
  t.is(err(500, 1023), 'ports: range 500-1023 has no port ≥ 1024: flows from unprivileged source ports (nearly all) could never be mapped; ports below 1024 are kept for privileged source ports (RFC 4787 REQ-3)');
  t.is(err(1000, 1026, 4), 'ports: range 1000-1026 has 3 ports ≥ 1024, fewer than the 4 workers (each worker needs its own slice)');
  t.is(resolveConfig({ externals: ['198.51.100.100'], portLo: 1000, portHi: 1027, partitions: 4 }).portLo, 1000);
});

test('parity: TCP and UDP keep the inside port\'s parity while one of it is free, then take the other', (t) => {
  for (const proto of [UDP, TCP]) {
    const a = allocator(20000, 20009, PortMode.Random, 3);
    const even = Array.from({ length: 5 }, (_, i) => a.allocate(0, proto, HOST, 5004 + 2 * i, 0, R1 + i, 5004));
    t.deepEqual([...even].sort(), [20000, 20002, 20004, 20006, 20008]);
    // Only odd ports are left: an even inside port takes one rather than being refused.
    const spill = a.allocate(0, proto, HOST, 5100, 0, R2, 5004);
    t.true(spill % 2 === 1 && spill >= 20001 && spill <= 20009, `${spill}`);
    const odd = Array.from({ length: 4 }, (_, i) => a.allocate(0, proto, HOST, 5005 + 2 * i, 0, R1 + i, 5005));
    t.true(odd.every((p) => p % 2 === 1));
    t.is(a.allocate(0, proto, HOST, 5201, 0, R2, 1), -1);
  }
  // Through the translator: RTP 5004 and RTCP 5005 keep their parity.
  const nat = new Nat({ externals: ['198.51.100.100'], rules: 'masquerade all from 10.200.0.0/24 to any', maxSessions: 256, seed: 9 });
  for (let i = 0; i < 20; i++) {
    const sport = 5004 + i;
    const o = natOut(nat, udp({ src: '10.200.0.2', sport, dst: '203.0.113.10', dport: 40000, payload: 'rtp' }), 0).pkt!;
    t.is(o.sport! % 2, sport % 2, `inside ${sport} → ${o.sport}`);
  }
});

test('preserve mode keeps the inside port, else Algorithm 4 within the class and parity', (t) => {
  const a = allocator(1000, 65535, PortMode.Preserve);
  t.is(a.allocate(0, UDP, HOST, 40000, 0, R1, 53), 40000);
  const b = a.allocate(0, UDP, HOST + 1, 40000, 0, R1, 53);
  t.true(b !== 40000 && b >= 1024 && b % 2 === 0, `${b}`);
  t.is(a.allocate(0, UDP, HOST, 1010, 0, R1, 53), 1010, 'a privileged port in the range is preserved');
  const c = a.allocate(0, UDP, HOST + 1, 1010, 0, R1, 53);
  t.true(c !== 1010 && c < 1024 && c % 2 === 0, `${c}`);
});

test('sequential (classic) counts up per family with no parity and no hashing', (t) => {
  const a = allocator(60000, 65535, PortMode.Sequential);
  t.deepEqual([5001, 5001, 5002, 5003].map((p, i) => a.allocate(0, UDP, HOST + i, p, 0, R1 + i, 53)), [60000, 60001, 60002, 60003]);
  t.is(a.allocate(0, TCP, HOST, 5001, 0, R1, 80), 60000);
});

test('every port a partition allocates lies in its own slice, in both classes', (t) => {
  const plan = new PortPlan(900, 1300, 4);
  for (let p = 0; p < 4; p++) {
    const a = new PortAllocator(plan, p, arraysFor(plan).arrays, PortMode.Random, 0);
    a.seed(100 + p);
    let n = 0;
    for (const [inPort, low] of [[500, true], [40000, false]] as const) {
      for (let i = 0; i <= 500; i++) {
        const port = a.allocate(0, UDP, HOST, inPort + i, 0, R1 + i, 53);
        if (port < 0) break;
        t.is(plan.ownerOf[port], p);
        t.is(port < 1024, low);
        n++;
      }
    }
    t.is(n, plan.slots(p), `partition ${p} hands out exactly its slice`);
  }
});

test('Algorithm 4 by the book: the first port of the inside port\'s parity from (F mod n + table mod n) mod n, in a class whose first slot is odd', (t) => {
  // 1001-3000: the 0-1023 class has 23 ports, so the other class starts at an odd slot; the
  // offsets F are full 32-bit values (half of them above 2^31).
  const lo = 1001;
  const hi = 3000;
  const seed = 7;
  // The keys as seed() derives them (ports.ts keysFromSeed).
  const key = [0, 1, 2, 3].map((i) => halfSipHash3(0x736f6d65, 0x646f7261, seed, i, 0x6d617371));
  for (const [inPort, proto] of [[5000, UDP], [5001, UDP], [40001, TCP], [999, UDP], [998, TCP]] as const) {
    const cls = inPort >= 1024 ? Array.from({ length: hi - 1023 }, (_, i) => 1024 + i) : Array.from({ length: 1024 - lo }, (_, i) => lo + i);
    const n = cls.length;
    for (let r = 0; r < 40; r++) {
      const rem = (R1 + r * 7919) >>> 0;
      const remPort = 1000 + r;
      const w1 = ((remPort << 16) | (proto << 8)) >>> 0;
      const offset = halfSipHash3(key[0]!, key[1]!, rem, w1, 0);
      // A fresh allocator: every port free, the table counters 0.
      const start = Number(BigInt(offset) % BigInt(n));
      let want = -1;
      for (let k = 0; k < n && want < 0; k++) if ((cls[(start + k) % n]! & 1) === (inPort & 1)) want = cls[(start + k) % n]!;
      t.is(allocator(lo, hi, PortMode.Random, seed).allocate(0, proto, HOST, inPort, 0, rem, remPort), want, `inside port ${inPort}, remote ${r}`);
    }
  }
});
