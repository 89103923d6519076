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

const rotl = (x: number, b: number): number => (x << b) | (x >>> (32 - b));

// The state lives in module variables so the rounds need no allocation and no object.
let v0 = 0;
let v1 = 0;
let v2 = 0;
let v3 = 0;

function round(): void {
  v0 = (v0 + v1) | 0;
  v1 = rotl(v1, 5) ^ v0;
  v0 = rotl(v0, 16);
  v2 = (v2 + v3) | 0;
  v3 = rotl(v3, 8) ^ v2;
  v0 = (v0 + v3) | 0;
  v3 = rotl(v3, 7) ^ v0;
  v2 = (v2 + v1) | 0;
  v1 = rotl(v1, 13) ^ v2;
  v2 = rotl(v2, 16);
}

function compress(m: number): void {
  v3 ^= m;
  round();
  round();
  v0 ^= m;
}

function start(k0: number, k1: number): void {
  v0 = k0 | 0;
  v1 = k1 | 0;
  v2 = 0x6c796765 ^ k0;
  v3 = 0x74656462 ^ k1;
}

function finish(lenBytes: number): number {
  compress(lenBytes << 24);
  v2 ^= 0xff;
  round();
  round();
  round();
  round();
  return (v1 ^ v3) >>> 0;
}

/** HalfSipHash-2-4 of the three words a, b, c (a 12-byte message) under key (k0, k1). */
export function halfSipHash3(k0: number, k1: number, a: number, b: number, c: number): number {
  start(k0, k1);
  compress(a | 0);
  compress(b | 0);
  compress(c | 0);
  return finish(12);
}

/** HalfSipHash-2-4 of `words` (a message of 4·n bytes), for tests against the reference vectors. */
export function halfSipHashWords(k0: number, k1: number, words: ArrayLike<number>): number {
  start(k0, k1);
  for (let i = 0; i < words.length; i++) compress(words[i]! | 0);
  return finish(words.length * 4);
}
