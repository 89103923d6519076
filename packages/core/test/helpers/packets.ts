/**
 * packets.ts — test packets: builders for valid IPv4/TCP/UDP/ICMP packets, an independent
 * parser, and the libalias-style `natOut` / `natIn` helpers that run one packet through a
 * `Nat`, hold every emitted packet to the checksum oracle and return its parsed fields.
 *
 * Contract:
 *  - Builders return a fresh Uint8Array holding exactly one IPv4 packet (total length = array
 *    length) whose checksums the oracle (oracle.ts) computed: IP header, TCP/UDP with the
 *    pseudo-header (or a UDP 0 when `zeroChecksum`), ICMP. `fill` pre-fills the buffer (golden
 *    tests use 0xa5 so that a field a builder forgot shows up). Fragments are cut from a whole
 *    datagram by `fragment`, so the first fragment carries the whole datagram's L4 checksum.
 *  - Addresses are dotted strings here; the parser gives them back as strings too. Nothing
 *    here reads packages/core/src/wire: builders and parser are written from the RFCs.
 *  - `natOut`/`natIn` copy the packet before processing (the Nat rewrites in place) and copy
 *    what comes back (emitted views alias the input or a partition's reply buffer). They
 *    throw, with tcpdump-style one-liners from `formatPacket`, when an emitted packet fails
 *    the oracle.
 */
import { formatIPv4, parseIPv4 } from '../../src/addr.js';
import { DROP_REASON_LABELS } from '../../src/drop.js';
import type { Nat } from '../../src/nat.js';
import { Side } from '../../src/dispatch.js';
import { formatPacket } from '../../src/wire/print.js';
import { fillIpChecksum, fillL4Checksum, internetChecksum, problems } from './oracle.js';

export const TCP = 6;
export const UDP = 17;
export const ICMP = 1;

export function addr(s: string): number {
  const a = parseIPv4(s);
  if (a === null) throw new Error(`bad test address ${s}`);
  return a;
}

export interface IpOpts {
  src: string;
  dst: string;
  ttl?: number;
  /** IP identification. */
  ipId?: number;
  tos?: number;
  df?: boolean;
  /** Extra header bytes (IP options), a multiple of 4, at most 40. */
  ipOptions?: Uint8Array | number[];
  /** Byte the buffer is pre-filled with before any field is written. */
  fill?: number;
}

function bytesOf(p: Uint8Array | number[] | string | undefined): Uint8Array {
  if (p === undefined) return new Uint8Array(0);
  if (typeof p === 'string') return new TextEncoder().encode(p);
  return p instanceof Uint8Array ? p : Uint8Array.from(p);
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
function get16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
function get32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/**
 * An IPv4 packet around `l4` (already complete). The L4 checksum is filled by the caller's
 * `l4Fill` step after the addresses are in place.
 */
function ipPacket(o: IpOpts, proto: number, l4: Uint8Array): Uint8Array {
  const opt = bytesOf(o.ipOptions);
  if (opt.length % 4 !== 0 || opt.length > 40) throw new Error('IP options must be a multiple of 4 bytes, at most 40');
  const hl = 20 + opt.length;
  const pkt = new Uint8Array(hl + l4.length);
  if (o.fill !== undefined) pkt.fill(o.fill);
  pkt[0] = 0x40 | (hl / 4);
  pkt[1] = o.tos ?? 0;
  put16(pkt, 2, pkt.length);
  put16(pkt, 4, o.ipId ?? 0x1234);
  put16(pkt, 6, o.df ? 0x4000 : 0);
  pkt[8] = o.ttl ?? 64;
  pkt[9] = proto;
  put16(pkt, 10, 0);
  put32(pkt, 12, addr(o.src));
  put32(pkt, 16, addr(o.dst));
  pkt.set(opt, 20);
  pkt.set(l4, hl);
  fillIpChecksum(pkt);
  return pkt;
}

export interface UdpOpts extends IpOpts {
  sport: number;
  dport: number;
  payload?: Uint8Array | number[] | string;
  /** Send 0 in the checksum field ("no checksum", RFC 768). */
  zeroChecksum?: boolean;
}

export function udp(o: UdpOpts): Uint8Array {
  const data = bytesOf(o.payload);
  const l4 = new Uint8Array(8 + data.length);
  if (o.fill !== undefined) l4.fill(o.fill);
  put16(l4, 0, o.sport);
  put16(l4, 2, o.dport);
  put16(l4, 4, l4.length);
  put16(l4, 6, 0);
  l4.set(data, 8);
  const pkt = ipPacket(o, UDP, l4);
  if (!o.zeroChecksum) fillL4Checksum(pkt);
  return pkt;
}

export const TCP_FLAG_BITS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, U: 0x20, E: 0x40, W: 0x80 };

/** 'SA' → SYN|ACK; numbers pass through. */
export function tcpFlags(f: string | number): number {
  if (typeof f === 'number') return f;
  let v = 0;
  for (const ch of f) {
    const bit = TCP_FLAG_BITS[ch];
    if (bit === undefined) throw new Error(`unknown TCP flag letter ${ch}`);
    v |= bit;
  }
  return v;
}

export interface TcpOpts extends IpOpts {
  sport: number;
  dport: number;
  /** Letters S A F R P U E W, or the flag byte. Default 'S'. */
  flags?: string | number;
  seq?: number;
  ack?: number;
  win?: number;
  urg?: number;
  /** TCP options (padded to a multiple of 4 with zeros). */
  options?: Uint8Array | number[];
  payload?: Uint8Array | number[] | string;
}

export function tcp(o: TcpOpts): Uint8Array {
  const data = bytesOf(o.payload);
  const rawOpt = bytesOf(o.options);
  const optLen = (rawOpt.length + 3) & ~3;
  const doff = 20 + optLen;
  const l4 = new Uint8Array(doff + data.length);
  if (o.fill !== undefined) l4.fill(o.fill);
  put16(l4, 0, o.sport);
  put16(l4, 2, o.dport);
  put32(l4, 4, o.seq ?? 1000);
  put32(l4, 8, o.ack ?? 0);
  l4[12] = (doff / 4) << 4;
  l4[13] = tcpFlags(o.flags ?? 'S');
  put16(l4, 14, o.win ?? 64240);
  put16(l4, 16, 0);
  put16(l4, 18, o.urg ?? 0);
  l4.fill(0, 20, doff);
  l4.set(rawOpt, 20);
  l4.set(data, doff);
  const pkt = ipPacket(o, TCP, l4);
  fillL4Checksum(pkt);
  return pkt;
}

export interface EchoOpts extends IpOpts {
  id: number;
  seq?: number;
  /** Echo reply (type 0) instead of request (type 8). */
  reply?: boolean;
  /** Any query type (13 timestamp, ...) instead of echo. */
  type?: number;
  payload?: Uint8Array | number[] | string;
}

export function icmpEcho(o: EchoOpts): Uint8Array {
  const data = bytesOf(o.payload);
  const l4 = new Uint8Array(8 + data.length);
  if (o.fill !== undefined) l4.fill(o.fill);
  l4[0] = o.type ?? (o.reply ? 0 : 8);
  l4[1] = 0;
  put16(l4, 2, 0);
  put16(l4, 4, o.id);
  put16(l4, 6, o.seq ?? 1);
  l4.set(data, 8);
  const pkt = ipPacket(o, ICMP, l4);
  fillL4Checksum(pkt);
  return pkt;
}

export interface ErrorOpts extends IpOpts {
  /** 3 unreachable, 11 time exceeded, 12 parameter problem, 4 source quench. */
  type: number;
  code: number;
  /** Next-hop MTU for type 3 code 4 (RFC 1191). */
  mtu?: number;
  /** The offending packet as the reporter saw it. */
  quote: Uint8Array;
  /** Bytes of it to quote: default the IP header + 8 (RFC 792); `Infinity` for all. */
  quoteBytes?: number;
}

export function icmpError(o: ErrorOpts): Uint8Array {
  const qhl = (o.quote[0]! & 15) * 4;
  const n = Math.min(o.quote.length, o.quoteBytes ?? qhl + 8);
  const l4 = new Uint8Array(8 + n);
  if (o.fill !== undefined) l4.fill(o.fill);
  l4[0] = o.type;
  l4[1] = o.code;
  put16(l4, 2, 0);
  put16(l4, 4, 0);
  put16(l4, 6, o.mtu ?? 0);
  l4.set(o.quote.subarray(0, n), 8);
  const pkt = ipPacket(o, ICMP, l4);
  fillL4Checksum(pkt);
  return pkt;
}

/**
 * Cut a whole datagram into fragments carrying `sizes` payload bytes each (multiples of 8
 * except the last; the remainder goes into a last fragment). Returns them in order: the first
 * fragment (offset 0, MF) first.
 */
export function fragment(pkt: Uint8Array, sizes: number[]): Uint8Array[] {
  const hl = (pkt[0]! & 15) * 4;
  const body = pkt.subarray(hl, get16(pkt, 2));
  const out: Uint8Array[] = [];
  let at = 0;
  const cuts = [...sizes];
  while (at < body.length) {
    const want = cuts.shift() ?? body.length - at;
    const n = Math.min(want, body.length - at);
    const last = at + n >= body.length;
    if (!last && n % 8 !== 0) throw new Error('fragment sizes must be multiples of 8');
    const f = new Uint8Array(hl + n);
    f.set(pkt.subarray(0, hl), 0);
    f.set(body.subarray(at, at + n), hl);
    put16(f, 2, f.length);
    const df = get16(pkt, 6) & 0x4000;
    put16(f, 6, df | (last ? 0 : 0x2000) | (at / 8));
    fillIpChecksum(f);
    out.push(f);
    at += n;
  }
  return out;
}

/** Change header fields of a built packet and fix the IP header checksum (L4 untouched). */
export function withIp(pkt: Uint8Array, f: { ttl?: number; id?: number; src?: string; dst?: string; flagsFrag?: number; totalLen?: number }): Uint8Array {
  const p = pkt.slice();
  if (f.totalLen !== undefined) put16(p, 2, f.totalLen);
  if (f.ttl !== undefined) p[8] = f.ttl;
  if (f.id !== undefined) put16(p, 4, f.id);
  if (f.src !== undefined) put32(p, 12, addr(f.src));
  if (f.dst !== undefined) put32(p, 16, addr(f.dst));
  if (f.flagsFrag !== undefined) put16(p, 6, f.flagsFrag);
  fillIpChecksum(p);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Parsing (independent of src/wire)

export interface Parsed {
  /** tcpdump-style one-liner (formatPacket), for failure messages. */
  text: string;
  src: string;
  dst: string;
  proto: number;
  ttl: number;
  id: number;
  tos: number;
  df: boolean;
  mf: boolean;
  /** Fragment offset in bytes. */
  fragOffset: number;
  totalLen: number;
  headerLen: number;
  ipCheck: number;
  /** TCP/UDP ports (first fragments and whole datagrams). */
  sport?: number;
  dport?: number;
  /** TCP */
  flags?: number;
  seq?: number;
  ack?: number;
  win?: number;
  /** TCP, UDP or ICMP checksum field. */
  l4Check?: number;
  udpLen?: number;
  /** ICMP */
  type?: number;
  code?: number;
  icmpId?: number;
  icmpSeq?: number;
  mtu?: number;
  /** Bytes after the transport header (UDP/TCP/ICMP query), or after the IP header. */
  payload: Uint8Array;
  /** The packet quoted in an ICMP error (parsed from what is there). */
  inner?: Parsed;
}

export function parse(b: Uint8Array, quoted = false): Parsed {
  const hl = (b[0]! & 15) * 4;
  const tl = quoted ? b.length : get16(b, 2);
  const ff = get16(b, 6);
  const p: Parsed = {
    text: quoted ? '(quoted)' : formatPacket(b, 0, b.length),
    src: formatIPv4(get32(b, 12)),
    dst: formatIPv4(get32(b, 16)),
    proto: b[9]!,
    ttl: b[8]!,
    id: get16(b, 4),
    tos: b[1]!,
    df: (ff & 0x4000) !== 0,
    mf: (ff & 0x2000) !== 0,
    fragOffset: (ff & 0x1fff) * 8,
    totalLen: get16(b, 2),
    headerLen: hl,
    ipCheck: get16(b, 10),
    payload: b.subarray(hl, tl),
  };
  if (p.fragOffset !== 0) return p;
  const l4 = b.subarray(hl, tl);
  if ((p.proto === TCP || p.proto === UDP) && l4.length >= 4) {
    p.sport = get16(l4, 0);
    p.dport = get16(l4, 2);
  }
  if (p.proto === TCP && l4.length >= 20) {
    p.seq = get32(l4, 4);
    p.ack = get32(l4, 8);
    p.flags = l4[13]!;
    p.win = get16(l4, 14);
    p.l4Check = get16(l4, 16);
    p.payload = l4.subarray(Math.min(l4.length, (l4[12]! >> 4) * 4));
  } else if (p.proto === UDP && l4.length >= 8) {
    p.udpLen = get16(l4, 4);
    p.l4Check = get16(l4, 6);
    p.payload = l4.subarray(8);
  } else if (p.proto === ICMP && l4.length >= 8) {
    p.type = l4[0]!;
    p.code = l4[1]!;
    p.l4Check = get16(l4, 2);
    if (p.type === 0 || p.type === 8 || p.type === 13 || p.type === 14) {
      p.icmpId = get16(l4, 4);
      p.icmpSeq = get16(l4, 6);
      p.payload = l4.subarray(8);
    } else if ([3, 4, 11, 12].includes(p.type)) {
      if (p.type === 3 && p.code === 4) p.mtu = get16(l4, 6);
      const q = l4.subarray(8);
      p.payload = q;
      if (q.length >= 20 && q[0]! >> 4 === 4) p.inner = parse(q, true);
    }
  } else if (p.proto === TCP && quoted && l4.length >= 8) {
    p.seq = get32(l4, 4);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Running packets through a Nat

export interface NatResult {
  /** The first packet emitted, parsed; null when nothing came out. */
  pkt: Parsed | null;
  /** Everything emitted, in order. */
  all: Parsed[];
  /** Copies of the emitted bytes. */
  bytes: Uint8Array[];
  /** Drop reason label ('none' when forwarded, 'held' when a fragment was held back). */
  drop: string;
}

export class OracleError extends Error {
  override name = 'OracleError';
}

/** Throw, with both packets described, unless the emitted bytes pass the oracle. */
export function assertOracle(out: Uint8Array, input?: Uint8Array): void {
  const faults = problems(out);
  if (faults.length === 0) return;
  const lines = [`emitted packet fails the checksum oracle: ${faults.join('; ')}`, `  out: ${formatPacket(out, 0, out.length)}`];
  if (input) lines.push(`  in:  ${formatPacket(input, 0, input.length)}`);
  lines.push(`  hex: ${Buffer.from(out).toString('hex')}`);
  throw new OracleError(lines.join('\n'));
}

/** Spare bytes after each packet handed to the Nat (see run). */
export const ROOM = 256;

function run(nat: Nat, pkt: Uint8Array, now: number, side: Side = Side.Unknown): NatResult {
  const input = pkt.slice();
  // Room after the packet, as a pool slot has (workers layout.ts ALG_HEADROOM): a protocol
  // helper may grow it. The bytes there are junk, so a helper that reads past the packet shows.
  const work = new Uint8Array(pkt.length + ROOM).fill(0xa5);
  work.set(pkt);
  nat.lastDrop = 0;
  const emitted = nat.process(work, 0, pkt.length, now, side);
  const bytes = emitted.map((e) => e.slice());
  for (const b of bytes) assertOracle(b, input);
  const all = bytes.map((b) => parse(b));
  const held = nat.lastHeld;
  const drop = held ? 'held' : (DROP_REASON_LABELS[nat.lastDrop] ?? `reason-${nat.lastDrop}`);
  return { pkt: all[0] ?? null, all, bytes, drop };
}

/** Send a packet from the inside (libalias LibAliasOut). Its source must not be external. */
export function natOut(nat: Nat, pkt: Uint8Array, now: number): NatResult {
  if (pkt.length >= 20 && nat.config.externals.includes(get32(pkt, 12))) throw new Error(`natOut: ${formatPacket(pkt)} comes from an external address`);
  return run(nat, pkt, now);
}

/** Send a packet from the outside (libalias LibAliasIn). Its destination must be external. */
export function natIn(nat: Nat, pkt: Uint8Array, now: number): NatResult {
  if (pkt.length >= 20 && !nat.config.externals.includes(get32(pkt, 16))) throw new Error(`natIn: ${formatPacket(pkt)} is not addressed to an external address`);
  return run(nat, pkt, now);
}

/** A packet that entered on a known side (the gateway's inside or outside TUN), unchecked. */
export function natFrom(nat: Nat, side: Side, pkt: Uint8Array, now: number): NatResult {
  return run(nat, pkt, now, side);
}

/** Recompute the ICMP checksum of a packet whose ICMP body a test edited. */
export function refreshIcmpChecksum(pkt: Uint8Array): void {
  const hl = (pkt[0]! & 15) * 4;
  const l4 = pkt.subarray(hl, get16(pkt, 2));
  put16(l4, 2, 0);
  put16(l4, 2, internetChecksum(l4));
}

/** Bytes from a hex dump (spaces, newlines and other separators ignored). */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-f]/gi, '');
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}
