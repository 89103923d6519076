/**
 * coalesce.test.ts — UdpCoalescer (coalesce.ts): a golden super-packet, byte for byte, and a
 * property: cutting every super-packet as the kernel does (inet_gso_segment +
 * __udp_gso_segment: each segment gets its own IPv4 total length, header checksum and ID =
 * first ID + i, its own UDP length, and its checksum finished from the super-packet's partial one) gives back exactly
 * the datagrams of the batch, in order, with correct checksums; and what may not be joined
 * (fragments, options, other flows, IDs out of step, a zero or a wrong checksum, a larger
 * datagram, a super-packet already) is left exactly as it was.
 */
import test from 'ava';
import fc from 'fast-check';
import { UdpCoalescer, MAX_SEGMENTS } from '../src/coalesce.js';

const H = 10;
const SLOT = 2048;

function sum(b: Uint8Array, off: number, len: number, acc = 0): number {
  let s = acc;
  for (let i = 0; i < len; i += 2) s += (b[off + i]! << 8) | (i + 1 < len ? b[off + i + 1]! : 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const put16 = (b: Uint8Array, o: number, v: number): void => {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
};
function pseudo(b: Uint8Array, ip: number, ulen: number): number {
  return u16(b, ip + 12) + u16(b, ip + 14) + u16(b, ip + 16) + u16(b, ip + 18) + 17 + ulen;
}
/** The complete UDP checksum of the datagram at `ip` (as a sender computes it: 0 becomes 0xffff). */
function udpCheck(b: Uint8Array, ip: number): number {
  const ulen = u16(b, ip + 24);
  const saved = u16(b, ip + 26);
  put16(b, ip + 26, 0);
  const c = ~sum(b, ip + 20, ulen, pseudo(b, ip, ulen)) & 0xffff;
  put16(b, ip + 26, saved);
  return c === 0 ? 0xffff : c;
}

interface Dgram {
  src: number;
  sport: number;
  id: number;
  payload: number;
  ttl: number;
  /** 'partial': NEEDS_CSUM with the pseudo-header sum; 'valid': DATA_VALID; 'complete': correct, unflagged; 'zero' (none); 'zero-valid': none, DATA_VALID (as a kernel marks it); 'wrong'. */
  csum: 'partial' | 'valid' | 'complete' | 'zero' | 'zero-valid' | 'wrong';
  frag: boolean;
  options: boolean;
  gso: boolean;
}

/** Write datagram d into slot s of pool (vnet header first); returns its length from the vnet header. */
function write(pool: Uint8Array, s: number, d: Dgram, fill: number): number {
  const o = s * SLOT;
  pool.fill(0, o, o + SLOT);
  const ip = o + H;
  const hl = d.options ? 24 : 20;
  const tot = hl + 8 + d.payload;
  pool[ip] = 0x40 | (hl >> 2);
  pool[ip + 1] = 0x10;
  put16(pool, ip + 2, tot);
  put16(pool, ip + 4, d.id);
  pool[ip + 6] = d.frag ? 0x20 : 0x40; // MF, or DF
  pool[ip + 8] = d.ttl;
  pool[ip + 9] = 17;
  put16(pool, ip + 12, 0xc633);
  put16(pool, ip + 14, 0x6464 + d.src); // 198.51.100.100 + src
  put16(pool, ip + 16, 0xc633);
  put16(pool, ip + 18, 0x640a);
  put16(pool, ip + 10, ~sum(pool, ip, hl) & 0xffff);
  const u = ip + hl;
  put16(pool, u, d.sport);
  put16(pool, u + 2, 5201);
  put16(pool, u + 4, 8 + d.payload);
  for (let i = 0; i < d.payload; i++) pool[u + 8 + i] = (fill + i * 7) & 0xff;
  if (d.options) return H + tot; // (the checksum does not matter: never joined)
  const full = udpCheck(pool, ip);
  if (d.csum === 'partial') {
    pool[o] = 1;
    pool[o + 6] = 20;
    pool[o + 8] = 6;
    let p = pseudo(pool, ip, 8 + d.payload);
    while (p > 0xffff) p = (p & 0xffff) + (p >>> 16);
    put16(pool, ip + 26, p);
  } else if (d.csum === 'valid') {
    pool[o] = 2;
    put16(pool, ip + 26, full);
  } else if (d.csum === 'complete') put16(pool, ip + 26, full);
  else if (d.csum === 'zero') put16(pool, ip + 26, 0);
  else if (d.csum === 'zero-valid') {
    pool[o] = 2;
    put16(pool, ip + 26, 0);
  }
  else put16(pool, ip + 26, full ^ 0x0101);
  if (d.gso) {
    pool[o + 1] = 5;
    pool[o + 4] = d.payload & 0xff; // (a "super-packet" of one segment: left alone)
  }
  return H + tot;
}

/**
 * The datagram as it leaves the gateway, in canonical form: the IPv4 header and the UDP
 * datagram with a complete checksum (a partial one finished as the kernel would), no vnet header.
 */
function canonical(pool: Uint8Array, o: number, l: number): number[] {
  const b = pool.slice(o + H, o + l);
  if ((pool[o]! & 1) !== 0 && b[0] === 0x45) put16(b, 26, udpCheck(b, 0));
  return [...b];
}

/** Cut a UDP_L4 super-packet as the kernel does; each segment in canonical form. */
function segment(pool: Uint8Array, o: number, l: number): number[][] {
  const b = pool.slice(o + H, o + l);
  const gsoSize = pool[o + 4]! | (pool[o + 5]! << 8);
  const id0 = u16(b, 4);
  const payload = b.subarray(28);
  const out: number[][] = [];
  for (let i = 0, at = 0; at < payload.length; i++, at += gsoSize) {
    const p = payload.subarray(at, Math.min(payload.length, at + gsoSize));
    const seg = new Uint8Array(28 + p.length);
    seg.set(b.subarray(0, 28));
    seg.set(p, 28);
    put16(seg, 2, seg.length);
    put16(seg, 4, (id0 + i) & 0xffff);
    put16(seg, 10, 0);
    put16(seg, 10, ~sum(seg, 0, 20) & 0xffff);
    put16(seg, 24, 8 + p.length);
    // __udp_gso_segment: the partial checksum (pseudo-header sum) moved from the whole length
    // to the segment's; then finished over the segment's bytes (skb_checksum_help).
    let partial = u16(b, 26) + (~u16(b, 24) & 0xffff) + 8 + p.length;
    while (partial > 0xffff) partial = (partial & 0xffff) + (partial >>> 16);
    put16(seg, 26, partial);
    const done = ~sum(seg, 20, 8 + p.length) & 0xffff;
    put16(seg, 26, done === 0 ? 0xffff : done);
    out.push([...seg]);
  }
  return out;
}

test('golden: three datagrams of one flow become one super-packet, byte for byte', (t) => {
  const pool = new Uint8Array(8 * SLOT);
  const off = new Uint32Array(8);
  const len = new Uint32Array(8);
  const slot = new Int32Array(8);
  const base: Dgram = { src: 0, sport: 40000, id: 0xfffe, payload: 64, ttl: 63, csum: 'partial', frag: false, options: false, gso: false };
  for (let i = 0; i < 3; i++) {
    off[i] = (i + 2) * SLOT;
    slot[i] = i + 2;
    len[i] = write(pool, i + 2, { ...base, id: (0xfffe + i) & 0xffff, csum: i === 1 ? 'complete' : i === 2 ? 'valid' : 'partial' }, i * 64);
  }
  const c = new UdpCoalescer(H, SLOT - H, 8);
  const n = c.run(pool, off, len, slot, 3);
  t.is(n, 1);
  t.deepEqual([off[0], len[0], slot[0]], [2 * SLOT, H + 20 + 8 + 192, 2]);
  t.deepEqual([...c.folded.subarray(0, c.nFolded)], [3, 4]);
  t.deepEqual([c.supers, c.joined], [1, 3]);
  const o = 2 * SLOT;
  // vnet: NEEDS_CSUM, GSO_UDP_L4, hdr_len 28, gso_size 64, csum_start 20, csum_offset 6 (LE).
  t.deepEqual([...pool.subarray(o, o + 10)], [1, 5, 28, 0, 64, 0, 20, 0, 6, 0]);
  const ip = o + H;
  t.is(u16(pool, ip + 2), 220, 'IPv4 total length: the whole super-packet');
  t.is(u16(pool, ip + 4), 0xfffe, 'the first ID (the kernel counts on from it, wrapping)');
  t.is(sum(pool, ip, 20), 0xffff, 'IPv4 header checksum correct');
  t.is(u16(pool, ip + 24), 200, 'UDP length: the whole super-packet');
  let ps = pseudo(pool, ip, 200);
  while (ps > 0xffff) ps = (ps & 0xffff) + (ps >>> 16);
  t.is(u16(pool, ip + 26), ps, 'partial checksum: the folded pseudo-header sum');
  for (let i = 0; i < 192; i++) if (pool[ip + 28 + i] !== ((Math.floor(i / 64) * 64 + (i % 64) * 7) & 0xff)) return t.fail(`payload byte ${i}`);
  const segs = segment(pool, o, len[0]!);
  t.is(segs.length, 3);
  t.deepEqual(segs.map((s) => s[5]! | (s[4]! << 8)), [0xfffe, 0xffff, 0]);
});

/** Mostly one flow's datagrams, one size, in step, so that runs form; now and then anything else. */
const mostly = <T,>(usual: T, ...rare: T[]): fc.Arbitrary<T> => fc.oneof({ arbitrary: fc.constant(usual), weight: 12 }, { arbitrary: fc.constantFrom(...rare), weight: 1 });
const dgram = fc.record<Dgram>({
  src: mostly(0, 1),
  sport: mostly(40000, 40001),
  id: fc.constant(0),
  payload: fc.oneof({ arbitrary: fc.constant(64), weight: 10 }, { arbitrary: fc.integer({ min: 0, max: 300 }), weight: 1 }),
  ttl: mostly(63, 62),
  csum: mostly<Dgram['csum']>('partial', 'valid', 'complete', 'zero', 'zero-valid', 'wrong'),
  frag: mostly(false, true),
  options: fc.constant(false),
  gso: fc.constant(false),
});

test('property: the kernel cuts every super-packet back into exactly the datagrams of the batch; the rest is untouched', (t) => {
  const cap = 200;
  let supers = 0;
  fc.assert(
    fc.property(
      fc.array(fc.record({ d: dgram, step: mostly(1, 2, 0), opt: fc.integer({ min: 0, max: 60 }) }), { minLength: 1, maxLength: cap, size: 'max' }),
      (items) => {
        const pool = new Uint8Array(cap * SLOT);
        const off = new Uint32Array(cap);
        const len = new Uint32Array(cap);
        const slot = new Int32Array(cap);
        const expected: number[][] = [];
        let id = 0x1234;
        items.forEach(({ d, step, opt }, i) => {
          id = (id + step) & 0xffff;
          const dd: Dgram = { ...d, id, options: opt === 0, gso: opt === 1 };
          // Slots in a shuffled order, as a worker's write batch has them.
          const s = (i * 37) % cap;
          off[i] = s * SLOT;
          slot[i] = s;
          len[i] = write(pool, s, dd, i);
          expected.push(canonical(pool, off[i]!, len[i]!));
        });
        const before = items.map((_, i) => [...pool.subarray(off[i]!, off[i]! + len[i]!)]);
        const beforeOff = [...off.subarray(0, items.length)];
        const c = new UdpCoalescer(H, SLOT - H, cap);
        const n = c.run(pool, off, len, slot, items.length);
        const got: number[][] = [];
        let folded = 0;
        for (let k = 0; k < n; k++) {
          const j = beforeOff.indexOf(off[k]!);
          if (pool[off[k]! + 1] === 5 && before[j]![1] !== 5) {
            const segs = segment(pool, off[k]!, len[k]!);
            if (segs.length > MAX_SEGMENTS) return false;
            got.push(...segs);
            folded += segs.length - 1;
          } else {
            // Untouched: the same bytes as before the run.
            if (JSON.stringify([...pool.subarray(off[k]!, off[k]! + len[k]!)]) !== JSON.stringify(before[j])) return false;
            got.push(canonical(pool, off[k]!, len[k]!));
          }
        }
        if (folded !== c.nFolded || c.joined - c.supers !== folded) return false;
        supers += c.supers;
        // Folded slots are exactly the batch's slots that no longer head an entry.
        const heads = new Set([...slot.subarray(0, n)]);
        const all = items.map((_, i) => (i * 37) % cap);
        const rest = all.filter((s) => !heads.has(s)).sort((a, b) => a - b);
        if (JSON.stringify(rest) !== JSON.stringify([...c.folded.subarray(0, c.nFolded)].sort((a, b) => a - b))) return false;
        t.deepEqual(got, expected);
        return true;
      },
    ),
    { numRuns: 300, seed: 1317 },
  );
  t.true(supers > 1000, `the batches made super-packets (${supers})`);
});

test('never joined: zero or wrong checksums, fragments, options, a super-packet, another flow, IDs out of step, a larger datagram', (t) => {
  const base: Dgram = { src: 0, sport: 40000, id: 100, payload: 64, ttl: 63, csum: 'partial', frag: false, options: false, gso: false };
  const cases: Array<[string, Partial<Dgram>]> = [
    ['zero checksum', { csum: 'zero' }],
    ['zero checksum the kernel marked valid', { csum: 'zero-valid' }],
    ['wrong checksum', { csum: 'wrong' }],
    ['a fragment', { frag: true }],
    ['IP options', { options: true }],
    ['already a super-packet', { gso: true }],
    ['another source', { src: 1 }],
    ['another port', { sport: 40001 }],
    ['another TTL', { ttl: 62 }],
    ['ID not the next', { id: 102 }],
    ['a larger datagram', { payload: 65 }],
  ];
  for (const [what, change] of cases) {
    const pool = new Uint8Array(4 * SLOT);
    const off = Uint32Array.of(0, SLOT);
    const slot = Int32Array.of(0, 1);
    const len = Uint32Array.of(write(pool, 0, base, 0), write(pool, 1, { ...base, id: 101, ...change }, 1));
    const c = new UdpCoalescer(H, SLOT - H, 4);
    t.is(c.run(pool, off, len, slot, 2), 2, what);
    t.is(c.nFolded, 0, what);
  }
  // The same pair with nothing changed is joined (the cases above differ only in what they name).
  const pool = new Uint8Array(4 * SLOT);
  const off = Uint32Array.of(0, SLOT);
  const slot = Int32Array.of(0, 1);
  const len = Uint32Array.of(write(pool, 0, base, 0), write(pool, 1, { ...base, id: 101, payload: 10 }, 1));
  t.is(new UdpCoalescer(H, SLOT - H, 4).run(pool, off, len, slot, 2), 1, 'a shorter last datagram is joined');
});

test('bounds: at most MAX_SEGMENTS datagrams, and no more bytes than the slot holds', (t) => {
  const n = 150;
  const pool = new Uint8Array(n * SLOT);
  const off = new Uint32Array(n);
  const len = new Uint32Array(n);
  const slot = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    off[i] = i * SLOT;
    slot[i] = i;
    len[i] = write(pool, i, { src: 0, sport: 40000, id: i, payload: 8, ttl: 63, csum: 'partial', frag: false, options: false, gso: false }, i);
  }
  const c = new UdpCoalescer(H, SLOT - H, n);
  const m = c.run(pool, off, len, slot, n);
  t.deepEqual([...len.subarray(0, m)].map((l) => (l - H - 28) / 8), [MAX_SEGMENTS, MAX_SEGMENTS, n - 2 * MAX_SEGMENTS]);
  // 300-byte payloads in a 2,038-byte room: (2038 - 28) / 300 = 6 per super-packet.
  for (let i = 0; i < 12; i++) len[i] = write(pool, i, { src: 0, sport: 40000, id: i, payload: 300, ttl: 63, csum: 'partial', frag: false, options: false, gso: false }, i);
  for (let i = 0; i < 12; i++) off[i] = i * SLOT;
  const m2 = new UdpCoalescer(H, SLOT - H, n).run(pool, off, len, slot, 12);
  t.deepEqual([...len.subarray(0, m2)].map((l) => (l - H - 28) / 300), [6, 6]);
});
