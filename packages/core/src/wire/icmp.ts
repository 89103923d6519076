/**
 * icmp.ts — ICMPv4 messages as a view over (bytes, offset of the ICMP header). RFC 792.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |     Type      |     Code      |          Checksum             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Query: Identifier            |   Query: Sequence Number      |
 *   |  Error: unused / next-hop MTU (type 3 code 4, RFC 1191)       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Error: the offending IP header + at least 64 bits of its data |
 *
 * Validate once: `validateIcmp(b, o, l4len)` checks 8 ≤ l4len and the checksum over the
 * whole message (l4len bounded by the IP total length; a first fragment, `whole` false, is only
 * part of the message, so its checksum cannot be checked). The packet path calls it. Errors are then checked again for
 * their embedded packet (ipv4.validateEmbedded). RFC 5508 says which types a NAT translates.
 */
import { WireError } from './result.js';
import { checksum } from './checksum.js';
import { u16, put16 } from './bytes.js';

export const HEADER_LEN = 8;
export const TYPE = 0;
export const CODE = 1;
export const CHECK = 2;
export const ID = 4;
export const SEQ = 6;
/** Offset of the embedded packet in an error message. */
export const EMBEDDED = 8;

export const ECHO_REPLY = 0;
export const DEST_UNREACH = 3;
export const SOURCE_QUENCH = 4;
export const REDIRECT = 5;
export const ECHO_REQUEST = 8;
export const TIME_EXCEEDED = 11;
export const PARAM_PROBLEM = 12;
export const TIMESTAMP = 13;
export const TIMESTAMP_REPLY = 14;

export const CODE_PORT_UNREACH = 3;
export const CODE_FRAG_NEEDED = 4;
export const CODE_ADMIN_PROHIBITED = 13;

export function type(b: Uint8Array, o: number): number {
  return b[o + TYPE]!;
}
export function code(b: Uint8Array, o: number): number {
  return b[o + CODE]!;
}
export function id(b: Uint8Array, o: number): number {
  return u16(b, o + ID);
}
export function seq(b: Uint8Array, o: number): number {
  return u16(b, o + SEQ);
}
export function setId(b: Uint8Array, o: number, v: number): void {
  put16(b, o + ID, v);
}
/** Next-hop MTU of a "fragmentation needed" error (RFC 1191). */
export function nextHopMtu(b: Uint8Array, o: number): number {
  return u16(b, o + SEQ);
}

/** Query messages carry an identifier that NAPT maps like a port (RFC 5508 REQ-1). */
export function isQuery(t: number): boolean {
  return t === ECHO_REQUEST || t === ECHO_REPLY || t === TIMESTAMP || t === TIMESTAMP_REPLY;
}
export function isQueryRequest(t: number): boolean {
  return t === ECHO_REQUEST || t === TIMESTAMP;
}
/** Error messages that carry an embedded packet and are translated (RFC 5508 §4.2). */
export function isError(t: number): boolean {
  return t === DEST_UNREACH || t === TIME_EXCEEDED || t === PARAM_PROBLEM || t === SOURCE_QUENCH;
}

export function validateIcmp(b: Uint8Array, o: number, l4len: number, whole = true): WireError {
  if (l4len < HEADER_LEN) return WireError.Truncated;
  if (whole && checksum(b, o, l4len) !== 0) return WireError.BadIcmpChecksum;
  return WireError.None;
}

/** Recompute the ICMP checksum over `l4len` bytes. */
export function fillChecksum(b: Uint8Array, o: number, l4len: number): void {
  b[o + CHECK] = 0;
  b[o + CHECK + 1] = 0;
  put16(b, o + CHECK, checksum(b, o, l4len));
}

const TYPE_NAMES: Record<number, string> = {
  0: 'echo reply',
  3: 'unreachable',
  4: 'source quench',
  5: 'redirect',
  8: 'echo request',
  11: 'time exceeded',
  12: 'parameter problem',
  13: 'timestamp request',
  14: 'timestamp reply',
};
export function typeName(t: number): string {
  return TYPE_NAMES[t] ?? `type-${t}`;
}
