/**
 * keyedhash.ts — HalfSipHash-2-4 (32-bit output): the keyed hash behind port selection.
 *
 * Contract: `halfSipHash3(k0, k1, a, b, c)` is the HalfSipHash-2-4 of the 12-byte message
 * a, b, c (each a little-endian 32-bit word) under the 64-bit key k0, k1 (the key's bytes
 * 0-3 and 4-7 as little-endian words), returned as an unsigned 32-bit number. It agrees with
 * the reference implementation (github.com/veorq/SipHash, vectors_hsip32), checked by the
 * unit test against those vectors. Pure, no allocation.
 *
 * Why a keyed hash (RFC 6056 §3.3.3-3.3.4): an allocator whose output is a function of a
 * secret and the flow, rather than the state of a plain generator, does not let an observer
 * who sees some allocated ports predict the others. HalfSipHash is the keyed hash Linux uses
 * for the same purpose on 32-bit machines (a PRF with a 64-bit key; the key is drawn from a
 * cryptographic random source at start, see ports.ts).
 */

// The state is four local variables and every round is written out in one function: module
// variables (one round function writing them) would be memory cells that V8 loads and
// stores at every step, several times slower than the registers locals get.

/** HalfSipHash-2-4 of the three words a, b, c (a 12-byte message) under key (k0, k1). */
export function halfSipHash3(k0: number, k1: number, a: number, b: number, c: number): number {
  return hsh(k0, k1, null, 3, a, b, c);
}

/** HalfSipHash-2-4 of `words` (a message of 4·n bytes), for tests against the reference vectors. */
export function halfSipHashWords(k0: number, k1: number, words: ArrayLike<number>): number {
  return hsh(k0, k1, words, words.length, 0, 0, 0);
}

/** The message is `words`, or (words null) the n ≤ 3 words a, b, c. */
function hsh(k0: number, k1: number, words: ArrayLike<number> | null, n: number, a: number, b: number, c: number): number {
  let v0 = k0 | 0;
  let v1 = k1 | 0;
  let v2 = 0x6c796765 ^ k0;
  let v3 = 0x74656462 ^ k1;
  // One compression per message word, then one for the length byte (n·4 << 24): two
  // SipRounds each, the word going into v3 before and v0 after; then four SipRounds.
  for (let w = 0; w <= n; w++) {
    const m = w === n ? (n * 4) << 24 : words !== null ? words[w]! | 0 : w === 0 ? a | 0 : w === 1 ? b | 0 : c | 0;
    v3 ^= m;
    for (let r = 0; r < 2; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
    }
    v0 ^= m;
  }
  v2 ^= 0xff;
  for (let r = 0; r < 4; r++) {
    v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16);
    v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2;
    v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0;
    v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16);
  }
  return (v1 ^ v3) >>> 0;
}

/**
 * Two HalfSipHash-2-4 of three-word messages that share their first two words, under two
 * keys, computed side by side: returns halfSipHash3(k0, k1, a, b, cf) and writes
 * halfSipHash3(k2, k3, a, b, cg) to out[0]. Each hash is a chain of dependent steps; two
 * chains interleaved keep the processor's units busy and cost little more than one (RFC 6056
 * Algorithm 4's F and G, ports.ts).
 */
export function halfSipHash3Pair(k0: number, k1: number, k2: number, k3: number, a: number, b: number, cf: number, cg: number, out: Uint32Array): number {
  let f0 = k0 | 0;
  let f1 = k1 | 0;
  let f2 = 0x6c796765 ^ k0;
  let f3 = 0x74656462 ^ k1;
  let g0 = k2 | 0;
  let g1 = k3 | 0;
  let g2 = 0x6c796765 ^ k2;
  let g3 = 0x74656462 ^ k3;
  // Three message words, then the length byte (12 << 24); two SipRounds per word, then four.
  for (let w = 0; w < 4; w++) {
    const mf = w === 0 ? a | 0 : w === 1 ? b | 0 : w === 2 ? cf | 0 : 12 << 24;
    const mg = w === 2 ? cg | 0 : mf;
    f3 ^= mf;
    g3 ^= mg;
    for (let r = 0; r < 2; r++) {
      f0 = (f0 + f1) | 0; f1 = (f1 << 5) | (f1 >>> 27); f1 ^= f0; f0 = (f0 << 16) | (f0 >>> 16);
      g0 = (g0 + g1) | 0; g1 = (g1 << 5) | (g1 >>> 27); g1 ^= g0; g0 = (g0 << 16) | (g0 >>> 16);
      f2 = (f2 + f3) | 0; f3 = (f3 << 8) | (f3 >>> 24); f3 ^= f2;
      g2 = (g2 + g3) | 0; g3 = (g3 << 8) | (g3 >>> 24); g3 ^= g2;
      f0 = (f0 + f3) | 0; f3 = (f3 << 7) | (f3 >>> 25); f3 ^= f0;
      g0 = (g0 + g3) | 0; g3 = (g3 << 7) | (g3 >>> 25); g3 ^= g0;
      f2 = (f2 + f1) | 0; f1 = (f1 << 13) | (f1 >>> 19); f1 ^= f2; f2 = (f2 << 16) | (f2 >>> 16);
      g2 = (g2 + g1) | 0; g1 = (g1 << 13) | (g1 >>> 19); g1 ^= g2; g2 = (g2 << 16) | (g2 >>> 16);
    }
    f0 ^= mf;
    g0 ^= mg;
  }
  f2 ^= 0xff;
  g2 ^= 0xff;
  for (let r = 0; r < 4; r++) {
    f0 = (f0 + f1) | 0; f1 = (f1 << 5) | (f1 >>> 27); f1 ^= f0; f0 = (f0 << 16) | (f0 >>> 16);
    g0 = (g0 + g1) | 0; g1 = (g1 << 5) | (g1 >>> 27); g1 ^= g0; g0 = (g0 << 16) | (g0 >>> 16);
    f2 = (f2 + f3) | 0; f3 = (f3 << 8) | (f3 >>> 24); f3 ^= f2;
    g2 = (g2 + g3) | 0; g3 = (g3 << 8) | (g3 >>> 24); g3 ^= g2;
    f0 = (f0 + f3) | 0; f3 = (f3 << 7) | (f3 >>> 25); f3 ^= f0;
    g0 = (g0 + g3) | 0; g3 = (g3 << 7) | (g3 >>> 25); g3 ^= g0;
    f2 = (f2 + f1) | 0; f1 = (f1 << 13) | (f1 >>> 19); f1 ^= f2; f2 = (f2 << 16) | (f2 >>> 16);
    g2 = (g2 + g1) | 0; g1 = (g1 << 13) | (g1 >>> 19); g1 ^= g2; g2 = (g2 << 16) | (g2 >>> 16);
  }
  out[0] = g1 ^ g3;
  return (f1 ^ f3) >>> 0;
}
