/**
 * checksum.ts — the Internet checksum, full and incremental.
 *
 * Owns: the ones'-complement sum (RFC 1071), incremental update (RFC 1624 eqn. 3:
 * HC' = ~(~HC + ~m + m')), the TCP/UDP pseudo-header (RFC 793 §3.1, RFC 768) and the UDP
 * zero-checksum rule (RFC 768: a transmitted 0 means "no checksum"; a computed 0 is sent as
 * 0xFFFF).
 *
 * Contract: all values are plain numbers; 16-bit results are in 0..0xFFFF. A "delta" is a
 * ones'-complement sum of (~old words + new words), not folded beyond 32 bits' worth of
 * headroom; `applyDelta(check, delta)` folds it into a stored checksum. Deltas compose by
 * addition, and the reverse of delta d is `negateDelta(d)`. Nothing here allocates.
 */

/** Sum 16-bit big-endian words of bytes[off, off+len) into `acc` (unfolded; odd byte padded). */
export function sumWords(bytes: Uint8Array, off: number, len: number, acc: number): number {
  let s = acc;
  const end = off + (len & ~1);
  let i = off;
  for (; i < end; i += 2) {
    s += (bytes[i]! << 8) | bytes[i + 1]!;
    // Fold early and often: keeps s far below 2^53 whatever the length.
    if (s > 0x7fffffff) s = (s & 0xffff) + (s >>> 16);
  }
  if (len & 1) s += bytes[end]! << 8;
  return s;
}

/** Fold a sum to 16 bits (end-around carry). */
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum field value for data whose words sum to `sum`. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** Full checksum of a byte range (e.g. the IPv4 header with its checksum field zeroed or not). */
export function checksum(bytes: Uint8Array, off: number, len: number): number {
  return finish(sumWords(bytes, off, len, 0));
}

/** Words of the TCP/UDP pseudo-header: src, dst, zero+protocol, L4 length. */
export function pseudoHeaderSum(src: number, dst: number, proto: number, l4len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4len;
}

/** Delta for replacing 16-bit word `oldW` by `newW`. */
export function delta16(oldW: number, newW: number): number {
  return (~oldW & 0xffff) + (newW & 0xffff);
}

/** Delta for replacing 32-bit value `oldV` by `newV` (two words). */
export function delta32(oldV: number, newV: number): number {
  return (~oldV >>> 16 & 0xffff) + (~oldV & 0xffff) + (newV >>> 16) + (newV & 0xffff);
}

/** The delta that undoes `d` (ones'-complement negation). */
export function negateDelta(d: number): number {
  return ~fold(d) & 0xffff;
}

/** RFC 1624 eqn. 3 applied with a precomputed delta: HC' = ~(~HC + delta). */
export function applyDelta(check: number, delta: number): number {
  return ~fold((~check & 0xffff) + delta) & 0xffff;
}

/**
 * UDP variant of applyDelta: a stored 0 means "no checksum" and stays 0 (RFC 768); a result
 * of 0 is transmitted as 0xFFFF.
 */
export function applyDeltaUdp(check: number, delta: number): number {
  if (check === 0) return 0;
  const c = applyDelta(check, delta);
  return c === 0 ? 0xffff : c;
}

/** Read/write a big-endian 16-bit checksum field. */
export function getCheck(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}
export function putCheck(bytes: Uint8Array, at: number, v: number): void {
  bytes[at] = v >>> 8;
  bytes[at + 1] = v & 0xff;
}
/** Update the checksum field at `at` in place by `delta`. */
export function adjustAt(bytes: Uint8Array, at: number, delta: number): void {
  putCheck(bytes, at, applyDelta(getCheck(bytes, at), delta));
}
export function adjustUdpAt(bytes: Uint8Array, at: number, delta: number): void {
  putCheck(bytes, at, applyDeltaUdp(getCheck(bytes, at), delta));
}
