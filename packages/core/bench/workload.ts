/**
 * workload.ts — the translate bench's packets and tables, shared by the benches that run them
 * (translate.bench.ts; ab.ts, which runs two trees' cores on them in one process): every flow's
 * packet pre-built in ONE big Uint8Array (stride 64 bytes), turned around in place between the
 * directions, and a table of n live sessions (half TCP established, half UDP) to run them
 * against. Not a test: no assertion beyond `must` (a packet that does not translate stops the
 * bench).
 */
import v8 from 'node:v8';
import { Nat } from '../src/nat.js';
import { INLINE_BUDGET, jitFlag } from '../src/jit.js';
import { Direction, VerdictKind, verdictKind } from '../src/verdict.js';
import { parseIPv4 } from '../src/addr.js';
import { checksum } from '../src/wire/checksum.js';
import { put16, put32 } from '../src/wire/bytes.js';

/**
 * Run the core as the gateway does: masq's inlining budget for this process (src/jit.ts, as
 * workers' tuneJit applies it), unless MASQ_JIT_DEFAULTS=1 or node's own flag. Returns which
 * budget is in force, for the bench's header line. Call it before the first round.
 */
export function applyJit(): string {
  const flag = jitFlag(process.execArgv, process.env);
  if (flag !== null) v8.setFlagsFromString(flag);
  if (flag !== null) return `inlining budget ${INLINE_BUDGET} (masq's, src/jit.ts)`;
  return process.env['MASQ_JIT_DEFAULTS'] === '1' ? `V8's default inlining budget (MASQ_JIT_DEFAULTS=1; masq runs with ${INLINE_BUDGET})` : 'the inlining budget given on the command line';
}

export const STRIDE = 64;
export const PKT_LEN = 60; // IPv4 20 + TCP 20 + 20 bytes of data, or IPv4 20 + UDP 8 + 32
export function ip(s: string): number {
  const a = parseIPv4(s);
  if (a === null) throw new Error(s);
  return a;
}
export const EXTS = Array.from({ length: 16 }, (_, i) => `198.51.100.${100 + i}`);
export const REMOTE_BASE = ip('198.18.0.0'); // RFC 2544 benchmarking range

// ---------------------------------------------------------------------------------------------
// Packet building straight into the big buffer

/** Write one valid IPv4 TCP or UDP packet of PKT_LEN bytes at `o`. */
export function writePacket(b: Uint8Array, o: number, proto: number, src: number, sport: number, dst: number, dport: number, tcpFlags: number): void {
  b.fill(0, o, o + STRIDE);
  b[o] = 0x45;
  put16(b, o + 2, PKT_LEN);
  put16(b, o + 4, (sport ^ dport) & 0xffff);
  put16(b, o + 6, 0x4000);
  b[o + 8] = 64;
  b[o + 9] = proto;
  put32(b, o + 12, src);
  put32(b, o + 16, dst);
  put16(b, o + 10, checksum(b, o, 20));
  const l4 = o + 20;
  const l4len = PKT_LEN - 20;
  put16(b, l4, sport);
  put16(b, l4 + 2, dport);
  for (let i = proto === 6 ? 20 : 8; i < l4len; i++) b[l4 + i] = (i * 7 + sport) & 0xff;
  let ck: number;
  if (proto === 6) {
    put32(b, l4 + 4, sport * 65536 + dport);
    b[l4 + 12] = 0x50;
    b[l4 + 13] = tcpFlags;
    put16(b, l4 + 14, 65535);
    ck = l4 + 16;
  } else {
    put16(b, l4 + 4, l4len);
    ck = l4 + 6;
  }
  // L4 checksum over a temporary pseudo-header + segment.
  const tmp = new Uint8Array(12 + l4len);
  put32(tmp, 0, src);
  put32(tmp, 4, dst);
  tmp[9] = proto;
  put16(tmp, 10, l4len);
  tmp.set(b.subarray(l4, l4 + l4len), 12);
  const c = checksum(tmp, 0, tmp.length);
  put16(b, ck, proto === 17 && c === 0 ? 0xffff : c);
}

/**
 * Turn a packet around in place: swap addresses and ports (no checksum change) and take one
 * off the TTL (the TTL/protocol word drops by 0x0100: add ~0x0100 = 0xFEFF, RFC 1624).
 */
export function turn(b: Uint8Array, o: number): void {
  let x = b[o + 12]!; b[o + 12] = b[o + 16]!; b[o + 16] = x;
  x = b[o + 13]!; b[o + 13] = b[o + 17]!; b[o + 17] = x;
  x = b[o + 14]!; b[o + 14] = b[o + 18]!; b[o + 18] = x;
  x = b[o + 15]!; b[o + 15] = b[o + 19]!; b[o + 19] = x;
  x = b[o + 20]!; b[o + 20] = b[o + 22]!; b[o + 22] = x;
  x = b[o + 21]!; b[o + 21] = b[o + 23]!; b[o + 23] = x;
  b[o + 8] = b[o + 8]! - 1;
  let s = (~((b[o + 10]! << 8) | b[o + 11]!) & 0xffff) + 0xfeff;
  s = (s & 0xffff) + (s >>> 16);
  s = ~s & 0xffff;
  b[o + 10] = s >>> 8;
  b[o + 11] = s & 0xff;
}

export function setTcpFlags(b: Uint8Array, o: number, flags: number): void {
  const at = o + 20 + 13;
  const old = (b[at - 1]! << 8) | b[at]!;
  b[at] = flags;
  const now = (b[at - 1]! << 8) | b[at]!;
  const ck = o + 20 + 16;
  let s = (~((b[ck]! << 8) | b[ck + 1]!) & 0xffff) + (~old & 0xffff) + now;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  s = ~s & 0xffff;
  b[ck] = s >>> 8;
  b[ck + 1] = s & 0xff;
}

// ---------------------------------------------------------------------------------------------
// Established flows

export function must(v: number, what: string): void {
  const k = verdictKind(v);
  if (k !== VerdictKind.Forward) throw new Error(`${what}: verdict ${v} (kind ${k}, arg ${v >>> 4})`);
}

export interface Loaded {
  nat: Nat;
  buf: Uint8Array;
  tcpCount: number;
  udpCount: number;
  buildMs: number;
}

/**
 * A Nat with n live sessions: half TCP (established), half UDP. Mappings: up to 50,000 per
 * protocol (5,000 inside hosts × 10 ports), each with enough remotes to make up n/2 sessions.
 */
export function load(n: number, NatClass: typeof Nat = Nat): Loaded {
  const half = Math.floor(n / 2);
  const mappings = Math.min(half, 50_000);
  const nat = new NatClass({
    externals: EXTS.slice(0, 4),
    rules: 'masquerade all from 10.0.0.0/8 to any',
    maxSessions: 2 * half + 16,
    filtering: 'endpoint',
    seed: 12345,
  });
  const part = nat.partitions[0]!;
  const buf = new Uint8Array(2 * half * STRIDE);
  const t0 = performance.now();
  let now = 1;
  for (let proto = 0; proto < 2; proto++) {
    for (let i = 0; i < half; i++) {
      const m = i % mappings;
      const j = Math.floor(i / mappings);
      const host = ip('10.0.0.0') + 256 + (m % 5000);
      const sport = 20000 + Math.floor(m / 5000);
      const o = (proto * half + i) * STRIDE;
      writePacket(buf, o, proto === 0 ? 6 : 17, host, sport, REMOTE_BASE + j * 4096 + (m % 4096), 443, 0x02);
      must(part.translate(buf, o, PKT_LEN, Direction.Out, now), 'create');
      turn(buf, o);
      if (proto === 0) setTcpFlags(buf, o, 0x12);
      must(part.translate(buf, o, PKT_LEN, Direction.In, now), 'answer');
      turn(buf, o);
      if (proto === 0) setTcpFlags(buf, o, 0x10);
    }
  }
  if (nat.sessionCount !== 2 * half) throw new Error(`expected ${2 * half} sessions, have ${nat.sessionCount}`);
  return { nat, buf, tcpCount: half, udpCount: half, buildMs: performance.now() - t0 };
}

/**
 * One round over packets [from, from+count) in batches of 16, as a worker runs them: a
 * prefetch pass (Partition.prefetch) over the batch, then the translations, for each direction.
 */
export function establishedBatched(l: Loaded, from: number, count: number): (k: number) => void {
  const part = l.nat.partitions[0]!;
  const buf = l.buf;
  const B = 16;
  const offs = new Uint32Array(B);
  const outDirs = new Uint8Array(B).fill(Direction.Out);
  const inDirs = new Uint8Array(B).fill(Direction.In);
  return (k: number) => {
    const now = 10 + k;
    for (let i0 = from; i0 < from + count; i0 += B) {
      const n = Math.min(B, from + count - i0);
      for (let j = 0; j < n; j++) offs[j] = (i0 + j) * STRIDE;
      part.prefetch(buf, offs, outDirs, n);
      for (let j = 0; j < n; j++) part.translate(buf, offs[j]!, PKT_LEN, Direction.Out, now);
      for (let j = 0; j < n; j++) turn(buf, offs[j]!);
      part.prefetch(buf, offs, inDirs, n);
      for (let j = 0; j < n; j++) part.translate(buf, offs[j]!, PKT_LEN, Direction.In, now);
      for (let j = 0; j < n; j++) turn(buf, offs[j]!);
    }
  };
}

/** One round over packets [from, from+count): out, turn, in, turn. */
export function established(l: Loaded, from: number, count: number, withClassify: boolean): (k: number) => void {
  const part = l.nat.partitions[0]!;
  const disp = l.nat.dispatcher;
  const buf = l.buf;
  return (k: number) => {
    const now = 10 + k;
    let o = from * STRIDE;
    const end = (from + count) * STRIDE;
    if (withClassify) {
      for (; o < end; o += STRIDE) {
        disp.classify(buf, o, PKT_LEN, now);
        part.translate(buf, o, PKT_LEN, Direction.Out, now);
        turn(buf, o);
        disp.classify(buf, o, PKT_LEN, now);
        part.translate(buf, o, PKT_LEN, Direction.In, now);
        turn(buf, o);
      }
    } else {
      for (; o < end; o += STRIDE) {
        part.translate(buf, o, PKT_LEN, Direction.Out, now);
        turn(buf, o);
        part.translate(buf, o, PKT_LEN, Direction.In, now);
        turn(buf, o);
      }
    }
  };
}
