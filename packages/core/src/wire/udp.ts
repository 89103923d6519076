/**
 * udp.ts — the UDP header as a view over (bytes, offset of the UDP header). RFC 768.
 *
 *    0      7 8     15 16    23 24    31
 *   +--------+--------+--------+--------+
 *   |     Source      |   Destination   |
 *   |      Port       |      Port       |
 *   +--------+--------+--------+--------+
 *   |     Length      |    Checksum     |
 *   +--------+--------+--------+--------+
 *
 * Validate once: `validateUdp(b, o, l4len)` checks 8 ≤ length field ≤ l4len (l4len bounded by
 * the IP total length; a first fragment, `whole` false, carries only part of the datagram, so
 * there only 8 ≤ length field). The packet path (translate.ts) calls it before reading ports. A checksum of 0 means "none" (RFC 768) and stays 0 through
 * translation; see checksum.ts `applyDeltaUdp`.
 */
import { WireError } from './result.js';
import { u16, put16 } from './bytes.js';

export const HEADER_LEN = 8;
export const SPORT = 0;
export const DPORT = 2;
export const LENGTH = 4;
export const CHECK = 6;

export function sport(b: Uint8Array, o: number): number {
  return u16(b, o + SPORT);
}
export function dport(b: Uint8Array, o: number): number {
  return u16(b, o + DPORT);
}
export function length(b: Uint8Array, o: number): number {
  return u16(b, o + LENGTH);
}
export function check(b: Uint8Array, o: number): number {
  return u16(b, o + CHECK);
}
export function setSport(b: Uint8Array, o: number, p: number): void {
  put16(b, o + SPORT, p);
}
export function setDport(b: Uint8Array, o: number, p: number): void {
  put16(b, o + DPORT, p);
}

export function validateUdp(b: Uint8Array, o: number, l4len: number, whole = true): WireError {
  if (l4len < HEADER_LEN) return WireError.Truncated;
  const ul = u16(b, o + LENGTH);
  // The length field spans the whole datagram; a first fragment carries only part of it.
  if (ul < HEADER_LEN || (whole && ul > l4len)) return WireError.BadL4Header;
  return WireError.None;
}
