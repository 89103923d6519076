/**
 * packet.ts (test helper) — builds and decodes the IPv4/UDP packets the TUN tests push through
 * the kernel, with a deliberately naive checksum (RFC 1071: a plain 16-bit one's-complement
 * sum, no tricks) that serves as the oracle. Test-only: allocates freely.
 */

export interface UdpSpec {
  src: number;
  dst: number;
  sport: number;
  dport: number;
  payload: Uint8Array;
  id?: number;
  ttl?: number;
}

export function ip(s: string): number {
  const p = s.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function ipStr(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** RFC 1071 one's-complement sum of 16-bit big-endian words, folded, not inverted. */
export function onesSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) {
    const hi = bytes[i];
    const lo = i + 1 < end ? bytes[i + 1] : 0;
    sum += (hi << 8) | lo;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

function put32(b: Uint8Array, o: number, v: number): void {
  put16(b, o, v >>> 16);
  put16(b, o + 2, v & 0xffff);
}

function get16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}

function get32(b: Uint8Array, o: number): number {
  return ((get16(b, o) << 16) | get16(b, o + 2)) >>> 0;
}

/** A complete IPv4 (IHL 5, DF) + UDP packet with correct header and UDP checksums. */
export function buildUdp(spec: UdpSpec): Uint8Array {
  const udpLen = 8 + spec.payload.length;
  const total = 20 + udpLen;
  const b = new Uint8Array(total);
  b[0] = 0x45;
  b[1] = 0;
  put16(b, 2, total);
  put16(b, 4, spec.id ?? 0x1234);
  put16(b, 6, 0x4000);
  b[8] = spec.ttl ?? 64;
  b[9] = 17;
  put32(b, 12, spec.src);
  put32(b, 16, spec.dst);
  put16(b, 10, ~onesSum(b, 0, 20) & 0xffff);
  put16(b, 20, spec.sport);
  put16(b, 22, spec.dport);
  put16(b, 24, udpLen);
  b.set(spec.payload, 28);
  put16(b, 26, udpChecksum(b));
  return b;
}

/** The UDP checksum the packet should carry (0 is sent as 0xffff, RFC 768). */
export function udpChecksum(pkt: Uint8Array): number {
  const ihl = (pkt[0] & 0x0f) * 4;
  const udpLen = get16(pkt, ihl + 4);
  const pseudo = new Uint8Array(12);
  pseudo.set(pkt.subarray(12, 20), 0);
  pseudo[9] = 17;
  put16(pseudo, 10, udpLen);
  const copy = pkt.slice(ihl, ihl + udpLen);
  copy[6] = 0;
  copy[7] = 0;
  const c = ~onesSum(copy, 0, copy.length, onesSum(pseudo, 0, 12)) & 0xffff;
  return c === 0 ? 0xffff : c;
}

export interface DecodedUdp {
  version: number;
  ihl: number;
  totalLength: number;
  ttl: number;
  protocol: number;
  src: string;
  dst: string;
  headerChecksumOk: boolean;
  sport: number;
  dport: number;
  udpLength: number;
  udpChecksum: number;
  payload: Uint8Array;
}

/** Decode an IPv4/UDP packet; null if it is not one. */
export function decodeUdp(pkt: Uint8Array): DecodedUdp | null {
  if (pkt.length < 28 || pkt[0] >> 4 !== 4) return null;
  const ihl = (pkt[0] & 0x0f) * 4;
  if (pkt[9] !== 17 || pkt.length < ihl + 8) return null;
  const udpLength = get16(pkt, ihl + 4);
  return {
    version: pkt[0] >> 4,
    ihl,
    totalLength: get16(pkt, 2),
    ttl: pkt[8],
    protocol: pkt[9],
    src: ipStr(get32(pkt, 12)),
    dst: ipStr(get32(pkt, 16)),
    headerChecksumOk: onesSum(pkt, 0, ihl) === 0xffff,
    sport: get16(pkt, ihl),
    dport: get16(pkt, ihl + 2),
    udpLength,
    udpChecksum: get16(pkt, ihl + 6),
    payload: pkt.slice(ihl + 8, ihl + udpLength),
  };
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}
