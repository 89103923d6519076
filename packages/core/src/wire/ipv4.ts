/**
 * ipv4.ts — the IPv4 header as a view over (bytes, offset). RFC 791.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Version|  IHL  |Type of Service|          Total Length         |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |         Identification        |Flags|      Fragment Offset    |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Time to Live |    Protocol   |         Header Checksum       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                       Source Address                          |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Destination Address                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Options (IHL > 5)                          |
 *
 * Validate once: `validateIPv4(b, o, len)` returns 0 (WireError.None) only when version = 4,
 * IHL ≥ 5, 20 ≤ IHL·4 ≤ total length ≤ len and the header checksum is right; `checkIPv4` is
 * the same check without the checksum (the I/O thread's, before it reads addresses). Every
 * accessor below assumes that check passed; callers bound payloads by the total length, never
 * by `len`. Results are wire/ codes (result.ts); the core maps them to drop reasons.
 */
import { WireError } from './result.js';
import { checksum, adjustAt, delta32 } from './checksum.js';
import { u16, u32, put16, put32 } from './bytes.js';

export const HEADER_LEN = 20;
export const VER_IHL = 0;
export const TOS = 1;
export const TOTAL_LEN = 2;
export const ID = 4;
export const FLAGS_FRAG = 6;
export const TTL = 8;
export const PROTO = 9;
export const CHECK = 10;
export const SRC = 12;
export const DST = 16;

export const FLAG_DF = 0x4000;
export const FLAG_MF = 0x2000;
export const FRAG_OFFSET_MASK = 0x1fff;

/** IP protocol numbers (IANA) masq knows: the one definition in the code base. */
export const enum IpProto {
  Icmp = 1,
  Tcp = 6,
  Udp = 17,
}

export function version(b: Uint8Array, o: number): number {
  return b[o + VER_IHL]! >>> 4;
}
export function headerLen(b: Uint8Array, o: number): number {
  return (b[o + VER_IHL]! & 0x0f) << 2;
}
export function totalLen(b: Uint8Array, o: number): number {
  return u16(b, o + TOTAL_LEN);
}
export function id(b: Uint8Array, o: number): number {
  return u16(b, o + ID);
}
export function flagsFrag(b: Uint8Array, o: number): number {
  return u16(b, o + FLAGS_FRAG);
}
/** Fragment offset in 8-byte units. */
export function fragOffset(b: Uint8Array, o: number): number {
  return u16(b, o + FLAGS_FRAG) & FRAG_OFFSET_MASK;
}
export function moreFragments(b: Uint8Array, o: number): boolean {
  return (u16(b, o + FLAGS_FRAG) & FLAG_MF) !== 0;
}
/** True for any fragment (first, middle or last). */
export function isFragment(b: Uint8Array, o: number): boolean {
  return (u16(b, o + FLAGS_FRAG) & (FLAG_MF | FRAG_OFFSET_MASK)) !== 0;
}
export function ttl(b: Uint8Array, o: number): number {
  return b[o + TTL]!;
}
export function proto(b: Uint8Array, o: number): number {
  return b[o + PROTO]!;
}
export function check(b: Uint8Array, o: number): number {
  return u16(b, o + CHECK);
}
export function src(b: Uint8Array, o: number): number {
  return u32(b, o + SRC);
}
export function dst(b: Uint8Array, o: number): number {
  return u32(b, o + DST);
}

export function setSrc(b: Uint8Array, o: number, a: number): void {
  put32(b, o + SRC, a);
}
export function setDst(b: Uint8Array, o: number, a: number): void {
  put32(b, o + DST, a);
}
export function setTtl(b: Uint8Array, o: number, t: number): void {
  b[o + TTL] = t;
}
export function setTotalLen(b: Uint8Array, o: number, n: number): void {
  put16(b, o + TOTAL_LEN, n);
}

/** Recompute the header checksum from scratch. */
export function fillChecksum(b: Uint8Array, o: number): void {
  b[o + CHECK] = 0;
  b[o + CHECK + 1] = 0;
  put16(b, o + CHECK, checksum(b, o, headerLen(b, o)));
}

/** Rewrite the source address and fix the header checksum incrementally (RFC 1624). */
export function rewriteSrc(b: Uint8Array, o: number, a: number): void {
  adjustAt(b, o + CHECK, delta32(src(b, o), a));
  put32(b, o + SRC, a);
}
export function rewriteDst(b: Uint8Array, o: number, a: number): void {
  adjustAt(b, o + CHECK, delta32(dst(b, o), a));
  put32(b, o + DST, a);
}

/**
 * The bounds of an IPv4 packet of `len` captured bytes at `o`, without the checksum: what the
 * I/O thread needs before it reads addresses, ports and the fragment field (dispatch.ts), and
 * the first half of validateIPv4. Returns WireError.None or why the packet is unusable; a
 * single byte is enough to recognise IPv6.
 */
export function checkIPv4(b: Uint8Array, o: number, len: number): WireError {
  if (len < HEADER_LEN || o + len > b.length) return len >= 1 && b[o]! >>> 4 === 6 ? WireError.Ipv6 : WireError.Truncated;
  const v = b[o]! >>> 4;
  if (v === 6) return WireError.Ipv6;
  if (v !== 4) return WireError.NotIp;
  const hl = (b[o]! & 0x0f) << 2;
  if (hl < HEADER_LEN) return WireError.BadIhl;
  const tl = u16(b, o + TOTAL_LEN);
  if (tl < hl || tl > len) return WireError.BadTotalLength;
  return WireError.None;
}

/**
 * The single check for an IPv4 packet of `len` captured bytes at `o`: its bounds
 * (checkIPv4) and its header checksum. Returns WireError.None or why the packet is unusable.
 */
export function validateIPv4(b: Uint8Array, o: number, len: number): WireError {
  const e = checkIPv4(b, o, len);
  if (e !== WireError.None) return e;
  const hl = (b[o]! & 0x0f) << 2;
  if (hl === HEADER_LEN) {
    // The usual header, summed without a loop (ten words: no overflow to fold on the way).
    const s =
      ((b[o]! << 8) | b[o + 1]!) +
      ((b[o + 2]! << 8) | b[o + 3]!) +
      ((b[o + 4]! << 8) | b[o + 5]!) +
      ((b[o + 6]! << 8) | b[o + 7]!) +
      ((b[o + 8]! << 8) | b[o + 9]!) +
      ((b[o + 10]! << 8) | b[o + 11]!) +
      ((b[o + 12]! << 8) | b[o + 13]!) +
      ((b[o + 14]! << 8) | b[o + 15]!) +
      ((b[o + 16]! << 8) | b[o + 17]!) +
      ((b[o + 18]! << 8) | b[o + 19]!);
    const f = (s & 0xffff) + (s >>> 16);
    // A valid header sums to 0xffff (negative zero); 0 needs an all-zero header (v = 0).
    if (((f & 0xffff) + (f >>> 16)) !== 0xffff) return WireError.BadIpChecksum;
    return WireError.None;
  }
  if (checksum(b, o, hl) !== 0) return WireError.BadIpChecksum;
  return WireError.None;
}

/**
 * Validation for an IPv4 header embedded in an ICMP error (RFC 792: the header plus at least
 * 64 bits of data). The embedded total length may exceed what was quoted, so it is not
 * bounded by `avail`; the header checksum is not required to verify (routers quote the
 * header as they received it, some after decrementing TTL), but version, IHL and the 8 bytes
 * of transport header must be present.
 */
export function validateEmbedded(b: Uint8Array, o: number, avail: number): WireError {
  if (avail < HEADER_LEN + 8) return WireError.EmbeddedMalformed;
  if (b[o]! >>> 4 !== 4) return WireError.EmbeddedMalformed;
  const hl = (b[o]! & 0x0f) << 2;
  if (hl < HEADER_LEN || hl + 8 > avail) return WireError.EmbeddedMalformed;
  return WireError.None;
}

/** A uint32 address as a dotted quad (the one formatter; addr.ts re-exports it). */
export function formatIPv4(a: number): string {
  return `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Read a 32-bit word (e.g. for pretty-printing IDs). */
export { u16, u32 };
