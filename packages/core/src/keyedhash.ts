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
