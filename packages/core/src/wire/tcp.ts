/**
 * tcp.ts — the TCP header as a view over (bytes, offset of the TCP header). RFC 9293.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |          Source Port          |       Destination Port        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                        Sequence Number                        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |                    Acknowledgment Number                      |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  Data |       |C|E|U|A|P|R|S|F|                               |
 *   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |           Checksum            |         Urgent Pointer        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Validate once: `validateTcp(b, o, l4len)` checks 20 ≤ data offset·4 ≤ l4len, where l4len
 * is bounded by the IP total length. The checksum is not verified on the fast path (RFC 1624
 * updates keep a wrong checksum wrong, so the end host still rejects corruption).
 */
import { WireError } from './result.js';
import { u16, u32, put16, put32 } from './bytes.js';

export const HEADER_LEN = 20;
export const SPORT = 0;
export const DPORT = 2;
export const SEQ = 4;
export const ACK = 8;
export const DATA_OFF = 12;
export const FLAGS = 13;
export const WINDOW = 14;
export const CHECK = 16;
export const URGENT = 18;

/** TCP flag bits (RFC 793, RFC 3168 for ECE/CWR): the one definition in the code base. */
export const enum TcpFlag {
  Fin = 0x01,
  Syn = 0x02,
  Rst = 0x04,
  Psh = 0x08,
  Ack = 0x10,
  Urg = 0x20,
  Ece = 0x40,
  Cwr = 0x80,
}

export function sport(b: Uint8Array, o: number): number {
  return u16(b, o + SPORT);
}
export function dport(b: Uint8Array, o: number): number {
  return u16(b, o + DPORT);
}
export function seq(b: Uint8Array, o: number): number {
  return u32(b, o + SEQ);
}
export function ack(b: Uint8Array, o: number): number {
  return u32(b, o + ACK);
}
export function dataOffset(b: Uint8Array, o: number): number {
  return (b[o + DATA_OFF]! >>> 4) << 2;
}
export function flags(b: Uint8Array, o: number): number {
  return b[o + FLAGS]!;
}
export function window(b: Uint8Array, o: number): number {
  return u16(b, o + WINDOW);
}
export function setSport(b: Uint8Array, o: number, p: number): void {
  put16(b, o + SPORT, p);
}
export function setDport(b: Uint8Array, o: number, p: number): void {
  put16(b, o + DPORT, p);
}
export function setSeq(b: Uint8Array, o: number, v: number): void {
  put32(b, o + SEQ, v);
}
export function setAck(b: Uint8Array, o: number, v: number): void {
  put32(b, o + ACK, v);
}

/**
 * The single check of a TCP header with `l4len` bytes of segment (bounded by the IP total
 * length): 20 ≤ data offset ≤ l4len. The packet path (translate.ts) calls it before reading
 * ports and flags.
 */
export function validateTcp(b: Uint8Array, o: number, l4len: number): WireError {
  if (l4len < HEADER_LEN) return WireError.Truncated;
  const doff = (b[o + DATA_OFF]! >>> 4) << 2;
  if (doff < HEADER_LEN || doff > l4len) return WireError.BadL4Header;
  return WireError.None;
}

/**
 * The window scale shift a SYN offers (RFC 7323 §2.2: option kind 3, length 3), capped at 14;
 * 0 when the option is absent or the options are malformed. Reads only within the data
 * offset, which validateTcp bounded.
 */
export function windowScale(b: Uint8Array, o: number): number {
  const end = o + dataOffset(b, o);
  let i = o + HEADER_LEN;
  while (i < end) {
    const kind = b[i]!;
    if (kind === 0) return 0;
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= end) return 0;
    const len = b[i + 1]!;
    if (len < 2 || i + len > end) return 0;
    if (kind === 3 && len === 3) return Math.min(b[i + 2]!, 14);
    i += len;
  }
  return 0;
}

/** tcpdump-style flag letters: S, F, R, P, . for ACK, U, E, W. */
export function flagString(f: number): string {
  let s = '';
  if (f & TcpFlag.Syn) s += 'S';
  if (f & TcpFlag.Fin) s += 'F';
  if (f & TcpFlag.Rst) s += 'R';
  if (f & TcpFlag.Psh) s += 'P';
  if (f & TcpFlag.Urg) s += 'U';
  if (f & TcpFlag.Ece) s += 'E';
  if (f & TcpFlag.Cwr) s += 'W';
  if (f & TcpFlag.Ack) s += '.';
  return s === '' ? 'none' : s;
}
