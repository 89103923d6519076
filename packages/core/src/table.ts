/**
 * table.ts — one partition's masquerade table: mappings, sessions, their indices, the
 * fragment map, the port allocator state and the statistics block, all as
 * typed-array columns carved from ONE SharedArrayBuffer.
 *
 * Contract:
 *  - A *mapping* is the endpoint-independent binding (RFC 4787 REQ-1, RFC 5382 REQ-1)
 *    (protocol, inside address, inside port) ↔ (external address, external port). A *session*
 *    is one remote endpoint talking over a mapping; sessions carry the TCP state, timers,
 *    counters and the precomputed checksum deltas of the fast path. A mapping lives while it
 *    has sessions (or forever, if static: a port forward).
 *  - Ids are small integers (0 = none). Sessions of a mapping form a doubly linked list.
 *  - Four open-addressing indices (linear probing, backward-shift deletion; load ≤ 1/3 for
 *    sessions, ≤ 3/4 for mappings):
 *    sessions by inside 5-tuple and by outside 5-tuple, mappings by inside and by outside
 *    endpoint.
 *  - Single writer: only the partition's owner calls the mutating functions. Other threads
 *    may read columns (listings, expiry nomination) and must tolerate a torn view; they never
 *    write. Because every byte of state is in the shared buffer, a restarted owner rebuilds
 *    the views over the same buffer and continues where the dead one stopped.
 *  - Memory: `tableBytes(capacity)` says how much; about 200 bytes per session slot
 *    including its share of mappings and indices (see docs).
 */
import { Arena, placeLayout, nextPow2 } from './arena.js';
import { hash3, hash5 } from './hash.js';
import { COUNTER_SLOTS, C, protoIndex } from './counters.js';
import { PortAllocator, PortPlan, type PortArrays } from './ports.js';
import { TcpState } from './tcpstate.js';
import { DROP_REASON_COUNT } from './drop.js';
import { EXPECT_SLOTS } from './alg/types.js';
import { IpProto } from './wire/ipv4.js';
import { FragKeys } from './fragkeys.js';

/**
 * The record layout and the masks the accessors use, as compile-time constants (the exported
 * names below are the same numbers). TypeScript writes the literal in place, so each accessor
 * is a few bytes of bytecode (a module constant costs a load and a hole check each) and V8
 * inlines them into the fast path as small functions, leaving its inlining budget (measured
 * with --trace-turbo-inlining) for the checksum and TCP steps.
 */
const enum K {
  Rec = 16,
  In = 0,
  Rem = 1,
  Ext = 2,
  Ports = 3,
  ExtP = 4,
  Deltas = 5,
  Map = 6,
  Flags = 7,
  PktOut = 12,
  ByteOut = 14,
  RecF = 8, // Rec / 2: the record as float64
  Expires = 4,
  Last = 5,
  HiN = 4,
  Two32 = 4294967296,
  IdMask = 0x3ffffff,
  SfMask = 0xfff000ff,
  WscaleShift = 16,
  WscaleMask = 0xf0000, // 0xf << WscaleShift
  Tracked = 8,
}

/**
 * A session's record: REC uint32 words (64 bytes, one cache line: the column is line-aligned)
 * at id·REC — everything the fast path reads and writes for an established flow, so a lookup
 * in a table far larger than the caches touches the index slot and this one line. Words 0-7
 * find the session and rewrite its packet; 8-11 are two float64 (expiry, last packet: view
 * `sRecF` at id·REC_F + F_*); 12-15 the packet and byte counters, low 32 bits (a carry goes to
 * the cold column sHi, 4 × uint16 per session: counts reach 2^48).
 */
export const REC = K.Rec;
export const R_IN = K.In;
export const R_REM = K.Rem;
export const R_EXT = K.Ext;
/** inPort << 16 | remPort */
export const R_PORTS = K.Ports;
/** extPort << 16 | proto << 8 | TCP state */
export const R_EXTP = K.ExtP;
/** folded outbound checksum deltas: IP header << 16 | L4 */
export const R_DELTAS = K.Deltas;
export const R_MAP = K.Map;
/** session flags (SF_*, bits 0-7 and 20-31) | ALG id << 8 | window scale << 16 (RF_WSCALE_*) */
export const R_FLAGS = K.Flags;
/** Packets out, packets in, bytes out, bytes in: low 32 bits (HI_* in sHi hold the carries). */
export const R_PKT_OUT = K.PktOut;
export const R_PKT_IN = 13;
export const R_BYTE_OUT = K.ByteOut;
export const R_BYTE_IN = 15;
/** The record as float64: REC_F per session; expiry and last-packet time (ms). */
export const REC_F = K.RecF;
export const F_EXPIRES = K.Expires;
export const F_LAST = K.Last;
/** sHi: carries of the 32-bit counters, HI_N uint16 per session, in R_PKT_OUT.. order. */
export const HI_N = K.HiN;

/** Index entries: a session or mapping id in the low 26 bits, a 5-bit hash tag above. */
export const ID_MASK = K.IdMask;

/** Session flags. */
export const SF_INBOUND_CREATED = 1; // created by an inbound packet (forward or EIF)
export const SF_HAIRPIN = 2; // remote endpoint is one of our external addresses
/** A protocol helper watches this session (its id is in R_FLAGS bits 8-15; alg/). */
export const SF_ALG = 4;
/** sAckOut/sWinOut hold the inside host's last acknowledgement and window (TCP, RFC 5961 check). */
export const SF_TRACKED = K.Tracked;
/** R_FLAGS bits 16-19: the window scale shift the inside host offered in its SYN (RFC 7323). */
export const RF_WSCALE_SHIFT = K.WscaleShift;
export const RF_WSCALE_MASK = K.WscaleMask;
/** A helper's related flow (a data connection): its traffic keeps its control session alive (sAlgLink). */
export const SF_ALG_DATA = 16;
/** Sequence deltas recorded outbound (sInitSeq/sDelta/sPDelta) and inbound (the *In columns). */
export const SF_SEQ_OUT = 32;
export const SF_SEQ_IN = 64;
/** The last payload segment outbound / inbound ended in the middle of a line (line-based helpers). */
export const SF_MIDLINE_OUT = 128;
export const SF_MIDLINE_IN = 1 << 20;
/** The bits of R_FLAGS that hold SF_* flags. */
export const SF_MASK = K.SfMask;
/** Created by an inbound packet and not yet answered by the inside host (short timer). */
export const SF_UNANSWERED = 1 << 21;

/** Mapping flags. */
export const MF_STATIC = 1;
/** The mapping is counted in its inside host's port count (per-host port limit). */
export const MF_COUNTED = 2;
/** A helper's expectation waits on this mapping (alg/engine.ts: one flow from one remote). */
export const MF_EXPECT = 4;
/** Opened by a helper for one related flow: no further unsolicited inbound flows. */
export const MF_ALG_DATA = 8;
/** The inside endpoint is in the pinned-endpoint table (alg/pins.ts). */
export const MF_PINNED = 16;

const H_SESS_HIGH = 0;
const H_SESS_FREE = 1;
const H_SESS_COUNT = 2;
const H_MAP_HIGH = 3;
const H_MAP_FREE = 4;
const H_MAP_COUNT = 5;
const H_EXPIRE_CURSOR = 6;
const H_EXPECT_COUNT = 8;
const H_SLOTS = 16;

export interface TableSizes {
  /** Session slots (ids 1..capacity-1 usable). */
  capacity: number;
  /** Mapping slots (sessions + static forwards). */
  mapCapacity: number;
  /** Fragment map slots (power of two). */
  fragSlots: number;
  externals: number;
  /** Expectation slots (protocol helpers' pending related flows); default EXPECT_SLOTS. */
  expectSlots?: number;
}

/** The session records, line-aligned, as uint32 words and as float64 over the same bytes. */
function sessionRecords(a: Arena, n: number): { sRec: Uint32Array; sRecF: Float64Array } {
  a.align(64);
  const sRec = a.u32(n * K.Rec);
  const sRecF = a.buffer ? new Float64Array(sRec.buffer, sRec.byteOffset, n * K.RecF) : new Float64Array(0);
  return { sRec, sRecF };
}

function buildColumns(a: Arena, s: TableSizes, plan: PortPlan) {
  const n = s.capacity;
  const m = s.mapCapacity;
  // Session indices at load ≤ 1/3 when full: with linear probing the sessions inserted late
  // sit displaced from their home slot far more often at load 1/2 (measured: 0.75 slots on
  // average for the last half inserted, 0.16 for the first), which costs the batch prefetch
  // a branch per displaced entry. 4 bytes a slot: ~24-48 bytes per session for both.
  const si = nextPow2(n * 3);
  const mi = nextPow2(Math.ceil((m * 4) / 3));
  return {
    header: a.i32(H_SLOTS),
    counters: a.f64(COUNTER_SLOTS),
    // sessions: the record (key, rewrite, state, timers, counters: one 64-byte line), then
    // cold columns
    ...sessionRecords(a, n),
    sHi: a.u16(n * K.HiN),
    sNext: a.u32(n),
    sPrev: a.u32(n),
    sInitSeq: a.u32(n),
    sDelta: a.i32(n),
    sPDelta: a.i32(n),
    // TCP: the inside host's last acknowledgement number and its receive window in bytes
    // (scaled), from its outbound segments: what an inbound RST or FIN must fall within.
    sAckOut: a.u32(n),
    sWinOut: a.u32(n),
    // the same for rewrites of inbound segments, and a data session's control session
    sInitSeqIn: a.u32(n),
    sDeltaIn: a.i32(n),
    sPDeltaIn: a.i32(n),
    sAlgLink: a.u32(n),
    /** Generation of each session slot: bumped when the slot is freed (fragment cache key). */
    sGen: a.u32(n),
    // mappings
    mProto: a.u8(m),
    mFlags: a.u8(m),
    mExtIdx: a.u8(m),
    mIn: a.u32(m),
    mExt: a.u32(m),
    mInPort: a.u16(m),
    mExtPort: a.u16(m),
    mCount: a.u32(m),
    mHead: a.u32(m),
    mNext: a.u32(m),
    // indices (store id; 0 = empty)
    ixSessOut: a.i32(si),
    ixSessIn: a.i32(si),
    ixMapOut: a.i32(mi),
    ixMapIn: a.i32(mi),
    // fragments: key (src, dst, proto<<16|id, dir) → session and its slot generation, expiry
    fSrc: a.u32(s.fragSlots),
    fDst: a.u32(s.fragSlots),
    fKey: a.u32(s.fragSlots),
    fSess: a.u32(s.fragSlots),
    fGen: a.u32(s.fragSlots),
    fExpires: a.f64(s.fragSlots),
    // expectations (alg/engine.ts): mapping, expected remote, control session, helper, expiry
    xMap: a.u32(s.expectSlots ?? EXPECT_SLOTS),
    xRem: a.u32(s.expectSlots ?? EXPECT_SLOTS),
    xCtl: a.u32(s.expectSlots ?? EXPECT_SLOTS),
    xAlg: a.u8(s.expectSlots ?? EXPECT_SLOTS),
    xExpires: a.f64(s.expectSlots ?? EXPECT_SLOTS),
    ports: PortAllocator.arrays(plan, s.externals, a),
  };
}

export type TableColumns = ReturnType<typeof buildColumns>;

/** Bytes a table of these sizes occupies. */
export function tableBytes(sizes: TableSizes, plan: PortPlan): number {
  const a = new Arena(null);
  buildColumns(a, sizes, plan);
  return a.size;
}

/** The statistics block of a table buffer, for readers in other threads (metrics, CLI). */
export function countersOf(buffer: SharedArrayBuffer): Float64Array {
  // Layout order: header i32[H_SLOTS] (64 bytes), then the counters.
  return new Float64Array(buffer, H_SLOTS * 4, COUNTER_SLOTS);
}

/** Touch every page of a new, still all-zero buffer (writing the zero it holds). */
function prefault(buf: SharedArrayBuffer): void {
  const u = new Uint8Array(buf);
  for (let i = 0; i < u.length; i += 4096) u[i] = 0;
}

export interface TableMemory {
  buffer: SharedArrayBuffer;
  sizes: TableSizes;
}

export class SessionTable {
  readonly cols: TableColumns;
  readonly memory: TableMemory;
  readonly capacity: number;
  readonly mapCapacity: number;
  readonly counters: Float64Array;
  private readonly h: Int32Array;
  /** The session records (cols.sRec, cols.sRecF): one field load fewer in every accessor. */
  private readonly rec: Uint32Array;
  private readonly recF: Float64Array;
  private readonly smask: number;
  private readonly mmask: number;
  /** The fragment map's keys (fragkeys.ts); fSess and fGen hold its values by slot. */
  private readonly frags: FragKeys;

  constructor(sizes: TableSizes, plan: PortPlan, buffer?: SharedArrayBuffer) {
    if (sizes.capacity > K.IdMask || sizes.mapCapacity > K.IdMask) throw new RangeError(`table: at most ${K.IdMask} sessions and mappings per partition`);
    const { layout, buffer: buf } = placeLayout((a) => buildColumns(a, sizes, plan), buffer);
    this.cols = layout;
    this.memory = { buffer: buf, sizes };
    this.capacity = sizes.capacity;
    this.mapCapacity = sizes.mapCapacity;
    this.counters = layout.counters;
    this.h = layout.header;
    this.rec = layout.sRec;
    this.recF = layout.sRecF;
    this.smask = layout.ixSessOut.length - 1;
    this.mmask = layout.ixMapOut.length - 1;
    this.frags = new FragKeys(layout.fSrc, layout.fDst, layout.fKey, layout.fExpires);
    // A new buffer's pages are mapped lazily: fault them all in now, at start (before anything
    // is written), so the first burst of new sessions does not pay a page fault per page.
    if (!buffer) prefault(buf);
    if (this.h[H_SESS_HIGH] === 0) this.h[H_SESS_HIGH] = 1;
    if (this.h[H_MAP_HIGH] === 0) this.h[H_MAP_HIGH] = 1;
  }

  get portArrays(): PortArrays {
    return this.cols.ports;
  }
  get sessionCount(): number {
    return this.h[H_SESS_COUNT]!;
  }
  get mappingCount(): number {
    return this.h[H_MAP_COUNT]!;
  }
  /** Highest session id ever used + 1 (scan bound for readers). */
  get sessionHigh(): number {
    return this.h[H_SESS_HIGH]!;
  }
  get mappingHigh(): number {
    return this.h[H_MAP_HIGH]!;
  }

  // ---------------------------------------------------------------- lookups (fast path)

  /** The session with this outbound key (inside endpoint, remote endpoint), or 0. */
  findSessionOut(proto: number, inA: number, inP: number, rem: number, remP: number): number {
    const ix = this.cols.ixSessOut;
    const h = hash5(proto, inA, inP, rem, remP);
    const tag = h >>> 27;
    let i = h & this.smask;
    for (;;) {
      const e = ix[i]!;
      if (e === 0) return 0;
      // The tag spares a record read (a cache miss) for almost every colliding entry.
      if (e >>> 26 === tag && this.isSessionOut(e & K.IdMask, proto, inA, inP, rem, remP)) return e & K.IdMask;
      i = (i + 1) & this.smask;
    }
  }

  /** The session with this inbound key (external endpoint, remote endpoint), or 0. */
  findSessionIn(proto: number, ext: number, extP: number, rem: number, remP: number): number {
    const ix = this.cols.ixSessIn;
    const h = hash5(proto, ext, extP, rem, remP);
    const tag = h >>> 27;
    let i = h & this.smask;
    for (;;) {
      const e = ix[i]!;
      if (e === 0) return 0;
      if (e >>> 26 === tag && this.isSessionIn(e & K.IdMask, proto, ext, extP, rem, remP)) return e & K.IdMask;
      i = (i + 1) & this.smask;
    }
  }

  /**
   * Session `id` has this outbound key (a live session: a free one has protocol 0). The one
   * key check: the lookups use it, and so does translate() for the batch prefetch's candidate
   * (a wrong or stale candidate costs one comparison, never a wrong answer).
   */
  isSessionOut(id: number, proto: number, inA: number, inP: number, rem: number, remP: number): boolean {
    const r = this.rec;
    const o = id * K.Rec;
    return r[o + K.In] === inA && r[o + K.Rem] === rem && r[o + K.Ports] === (((inP << 16) | remP) >>> 0) && ((r[o + K.ExtP]! >>> 8) & 0xff) === proto;
  }

  /** Session `id` has this inbound key. */
  isSessionIn(id: number, proto: number, ext: number, extP: number, rem: number, remP: number): boolean {
    const r = this.rec;
    const o = id * K.Rec;
    return r[o + K.Ext] === ext && r[o + K.Rem] === rem && (r[o + K.Ports]! & 0xffff) === remP && r[o + K.ExtP]! >>> 8 === ((extP << 8) | proto);
  }

  // ---------------------------------------------------------------- session fields

  sProto(id: number): number {
    return (this.rec[id * K.Rec + K.ExtP]! >>> 8) & 0xff;
  }
  sState(id: number): number {
    return this.rec[id * K.Rec + K.ExtP]! & 0xff;
  }
  sIn(id: number): number {
    return this.rec[id * K.Rec + K.In]!;
  }
  sRem(id: number): number {
    return this.rec[id * K.Rec + K.Rem]!;
  }
  sExt(id: number): number {
    return this.rec[id * K.Rec + K.Ext]!;
  }
  sInPort(id: number): number {
    return this.rec[id * K.Rec + K.Ports]! >>> 16;
  }
  sRemPort(id: number): number {
    return this.rec[id * K.Rec + K.Ports]! & 0xffff;
  }
  sExtPort(id: number): number {
    return this.rec[id * K.Rec + K.ExtP]! >>> 16;
  }
  sDIp(id: number): number {
    return this.rec[id * K.Rec + K.Deltas]! >>> 16;
  }
  sDL4(id: number): number {
    return this.rec[id * K.Rec + K.Deltas]! & 0xffff;
  }
  setDeltas(id: number, dIp: number, dL4: number): void {
    this.rec[id * K.Rec + K.Deltas] = ((dIp << 16) | dL4) >>> 0;
  }
  sMap(id: number): number {
    return this.rec[id * K.Rec + K.Map]!;
  }
  /** The session's flags (SF_*: bits 0-7 and 20-31 of R_FLAGS; the ALG id and window scale masked out). */
  sFlags(id: number): number {
    return (this.rec[id * K.Rec + K.Flags]! & K.SfMask) >>> 0;
  }
  addFlags(id: number, f: number): void {
    this.rec[id * K.Rec + K.Flags]! |= f;
  }
  clearFlags(id: number, f: number): void {
    this.rec[id * K.Rec + K.Flags]! &= ~f;
  }
  /** The protocol helper watching session `id` (alg/registry.ts id), 0 = none. */
  sAlg(id: number): number {
    return (this.rec[id * K.Rec + K.Flags]! >>> 8) & 0xff;
  }
  setAlg(id: number, alg: number): void {
    const r = this.rec;
    const o = id * K.Rec + K.Flags;
    r[o] = ((r[o]! & ~0xff00) | (alg << 8)) >>> 0;
  }
  /** The folded checksum deltas of the outbound rewrite: IP header << 16 | L4 (sDIp, sDL4 in one read). */
  sDeltas(id: number): number {
    return this.rec[id * K.Rec + K.Deltas]!;
  }
  /** The window scale shift the inside host's SYN offered (RFC 7323), 0 until one was seen. */
  sWscale(id: number): number {
    return (this.rec[id * K.Rec + K.Flags]! & K.WscaleMask) >>> K.WscaleShift;
  }
  setWscale(id: number, shift: number): void {
    const r = this.rec;
    const o = id * K.Rec + K.Flags;
    r[o] = (r[o]! & ~K.WscaleMask) | (shift << K.WscaleShift);
  }
  /** The inside host's last acknowledgement and receive window in bytes (valid with SF_TRACKED). */
  sAckOut(id: number): number {
    return this.cols.sAckOut[id]!;
  }
  sWinOut(id: number): number {
    return this.cols.sWinOut[id]!;
  }
  /** Record the inside host's acknowledgement and window (RFC 5961 check) and set SF_TRACKED. */
  track(id: number, ack: number, win: number): void {
    this.cols.sAckOut[id] = ack;
    this.cols.sWinOut[id] = win;
    this.rec[id * K.Rec + K.Flags]! |= K.Tracked;
  }
  /** Live expectations (owner-maintained count; readers may see it torn by one). */
  get expectCount(): number {
    return this.h[H_EXPECT_COUNT]!;
  }
  set expectCount(v: number) {
    this.h[H_EXPECT_COUNT] = v;
  }
  sExpires(id: number): number {
    return this.recF[id * K.RecF + K.Expires]!;
  }
  setExpires(id: number, t: number): void {
    this.recF[id * K.RecF + K.Expires] = t;
  }
  sLast(id: number): number {
    return this.recF[id * K.RecF + K.Last]!;
  }
  setLast(id: number, t: number): void {
    this.recF[id * K.RecF + K.Last] = t;
  }
  /** Count one packet of `bytes` bytes on session `id`, outbound (d = 0) or inbound (d = 1). */
  countPacket(id: number, d: number, bytes: number): void {
    const r = this.rec;
    const o = id * K.Rec;
    const w = K.PktOut + d;
    const p = r[o + w]! + 1;
    r[o + w] = p; // stored modulo 2^32
    if (p >= K.Two32) this.carry(id, w);
    const v = r[o + w + 2]! + bytes;
    r[o + w + 2] = v;
    if (v >= K.Two32) this.carry(id, w + 2);
  }
  /** Count `bytes` bytes but no packet (a later fragment), outbound (d = 0) or inbound (d = 1). */
  countBytes(id: number, d: number, bytes: number): void {
    this.count(id, K.ByteOut + d, bytes);
  }
  /** Carry into the high bits of counter word `w` (rare: once per 2^32). */
  private carry(id: number, w: number): void {
    this.cols.sHi[id * K.HiN + w - K.PktOut]!++;
  }
  sPktOut(id: number): number {
    return this.counter(id, K.PktOut);
  }
  sPktIn(id: number): number {
    return this.counter(id, R_PKT_IN);
  }
  sByteOut(id: number): number {
    return this.counter(id, K.ByteOut);
  }
  sByteIn(id: number): number {
    return this.counter(id, R_BYTE_IN);
  }
  private counter(id: number, w: number): number {
    return this.cols.sHi[id * K.HiN + w - K.PktOut]! * K.Two32 + this.rec[id * K.Rec + w]!;
  }
  /** Add `n` to counter word `w` (R_PKT_OUT..R_BYTE_IN) of session `id`, carrying into sHi. */
  count(id: number, w: number, n: number): void {
    const r = this.rec;
    const v = r[id * K.Rec + w]! + n;
    r[id * K.Rec + w] = v; // stored modulo 2^32
    if (v >= K.Two32) this.carry(id, w);
  }

  findMappingOut(proto: number, inA: number, inP: number): number {
    const c = this.cols;
    const ix = c.ixMapOut;
    let i = hash3(proto, inA, inP) & this.mmask;
    for (;;) {
      const id = ix[i]! & K.IdMask;
      if (id === 0) return 0;
      if (c.mIn[id] === inA && c.mInPort[id] === inP && c.mProto[id] === proto) return id;
      i = (i + 1) & this.mmask;
    }
  }

  findMappingIn(proto: number, ext: number, extP: number): number {
    const c = this.cols;
    const ix = c.ixMapIn;
    let i = hash3(proto, ext, extP) & this.mmask;
    for (;;) {
      const id = ix[i]! & K.IdMask;
      if (id === 0) return 0;
      if (c.mExt[id] === ext && c.mExtPort[id] === extP && c.mProto[id] === proto) return id;
      i = (i + 1) & this.mmask;
    }
  }

  // ---------------------------------------------------------------- mapping fields

  mProto(mid: number): number {
    return this.cols.mProto[mid]!;
  }
  mIn(mid: number): number {
    return this.cols.mIn[mid]!;
  }
  mInPort(mid: number): number {
    return this.cols.mInPort[mid]!;
  }
  mExt(mid: number): number {
    return this.cols.mExt[mid]!;
  }
  mExtPort(mid: number): number {
    return this.cols.mExtPort[mid]!;
  }
  /** Index of the mapping's external address in the configuration. */
  mExtIdx(mid: number): number {
    return this.cols.mExtIdx[mid]!;
  }
  /** The mapping's flags (MF_*). */
  mFlags(mid: number): number {
    return this.cols.mFlags[mid]!;
  }
  addMapFlags(mid: number, f: number): void {
    this.cols.mFlags[mid]! |= f;
  }
  clearMapFlags(mid: number, f: number): void {
    this.cols.mFlags[mid]! &= ~f;
  }
  /** The first session of mapping `mid` (0: none); `sNext` walks the rest. */
  mHead(mid: number): number {
    return this.cols.mHead[mid]!;
  }
  /** The next session of the same mapping, or 0. */
  sNext(sid: number): number {
    return this.cols.sNext[sid]!;
  }

  /**
   * The batch prefetch's candidate for a packet whose session key hashes to `h`: the first
   * entry from the home slot on (at most 8 slots) whose hash tag matches, in the outbound
   * (`out`) or inbound session index, or 0. Reads only; the caller checks the candidate
   * against the packet's key like any lookup (isSessionOut/isSessionIn).
   */
  probeSession(h: number, out: boolean): number {
    const ix = out ? this.cols.ixSessOut : this.cols.ixSessIn;
    const tag = h >>> 27;
    let i = h & this.smask;
    let e = ix[i]!;
    for (let d = 0; e !== 0 && e >>> 26 !== tag && d < 8; d++) {
      i = (i + 1) & this.smask;
      e = ix[i]!;
    }
    return e & K.IdMask;
  }
  /** Read the outbound mapping index's home slot of this inside endpoint (a load hint, as touchInbound: 16 bits). */
  touchMappingOut(proto: number, inA: number, inP: number): number {
    return this.cols.ixMapOut[hash3(proto, inA, inP) & this.mmask]! & 0xffff;
  }
  /**
   * Read the home slots a new mapping and session will be inserted at in the inbound mapping
   * and session indices (their keys' hashes: hash3 of the mapping's external side, hash5 of
   * that and the remote endpoint), and return them: a hint that starts both loads
   * (cache misses in a large table) together, before newMapping/newSession wait for each in
   * turn. Reads only; the value means nothing (16 bits of what was read: a small integer,
   * so that the partition's `hint` field, which keeps it, never leaves V8's small-integer
   * representation; a field that did would deoptimize every function that writes it).
   */
  touchInbound(hMapIn: number, hSessIn: number): number {
    return (this.cols.ixMapIn[hMapIn & this.mmask]! ^ this.cols.ixSessIn[hSessIn & this.smask]!) & 0xffff;
  }
  /** Read the first word of session `id`'s record (the prefetch: its line into the cache). */
  touchSession(id: number): number {
    return this.rec[id * K.Rec]!;
  }

  /** Any session of mapping `mid` whose remote address is `rem` (address-dependent filtering). */
  mappingHasRemote(mid: number, rem: number, remP: number, portToo: boolean): boolean {
    const c = this.cols;
    for (let s = c.mHead[mid]!; s !== 0; s = c.sNext[s]!) {
      if (this.sRem(s) === rem && (!portToo || this.sRemPort(s) === remP)) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- index maintenance

  /** Entries are id | tag << 26, the tag being the hash's top 5 bits (never 0: ids start at 1). */
  private ixInsert(ix: Int32Array, mask: number, hash: number, id: number): void {
    let i = hash & mask;
    while (ix[i] !== 0) i = (i + 1) & mask;
    ix[i] = id | ((hash >>> 27) << 26);
  }

  /** Remove `id` from a linear-probing index by backward shift (no tombstones). */
  private ixRemove(ix: Int32Array, mask: number, hash: number, id: number, home: (id: number) => number): void {
    let i = hash & mask;
    while ((ix[i]! & K.IdMask) !== id) {
      if (ix[i] === 0) return;
      i = (i + 1) & mask;
    }
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const e = ix[j]!;
      if (e === 0) break;
      const k = home(e & K.IdMask) & mask;
      // Move e into the hole at i unless its home lies cyclically in (i, j].
      const inRange = i <= j ? k > i && k <= j : k > i || k <= j;
      if (!inRange) {
        ix[i] = e;
        i = j;
      }
    }
    ix[i] = 0;
  }

  private homeSessOut = (id: number): number => hash5(this.sProto(id), this.sIn(id), this.sInPort(id), this.sRem(id), this.sRemPort(id));
  private homeSessIn = (id: number): number => hash5(this.sProto(id), this.sExt(id), this.sExtPort(id), this.sRem(id), this.sRemPort(id));
  private homeMapOut = (id: number): number => {
    const c = this.cols;
    return hash3(c.mProto[id]!, c.mIn[id]!, c.mInPort[id]!);
  };
  private homeMapIn = (id: number): number => {
    const c = this.cols;
    return hash3(c.mProto[id]!, c.mExt[id]!, c.mExtPort[id]!);
  };

  // ---------------------------------------------------------------- mappings

  /**
   * Create a mapping; returns its id, or 0 when the mapping table is full. `hIn`: the hash of
   * its inbound key, hash3(proto, ext, extP), when the caller has it already.
   */
  newMapping(proto: number, inA: number, inP: number, extIdx: number, ext: number, extP: number, flags: number, hIn = hash3(proto, ext, extP)): number {
    const c = this.cols;
    const h = this.h;
    let id = h[H_MAP_FREE]!;
    if (id !== 0) h[H_MAP_FREE] = c.mNext[id]!;
    else {
      id = h[H_MAP_HIGH]!;
      if (id >= this.mapCapacity) return 0;
      h[H_MAP_HIGH] = id + 1;
    }
    c.mProto[id] = proto;
    c.mFlags[id] = flags;
    c.mExtIdx[id] = extIdx;
    c.mIn[id] = inA;
    c.mInPort[id] = inP;
    c.mExt[id] = ext;
    c.mExtPort[id] = extP;
    c.mCount[id] = 0;
    c.mHead[id] = 0;
    c.mNext[id] = 0;
    this.ixInsert(c.ixMapOut, this.mmask, hash3(proto, inA, inP), id);
    this.ixInsert(c.ixMapIn, this.mmask, hIn, id);
    h[H_MAP_COUNT]!++;
    this.counters[C.LIVE_MAPPINGS]!++;
    return id;
  }

  /** Free a mapping (its sessions must be gone). Returns nothing; the caller releases the port. */
  freeMapping(mid: number): void {
    const c = this.cols;
    this.ixRemove(c.ixMapOut, this.mmask, this.homeMapOut(mid), mid, this.homeMapOut);
    this.ixRemove(c.ixMapIn, this.mmask, this.homeMapIn(mid), mid, this.homeMapIn);
    c.mProto[mid] = 0;
    c.mFlags[mid] = 0;
    c.mNext[mid] = this.h[H_MAP_FREE]!;
    this.h[H_MAP_FREE] = mid;
    this.h[H_MAP_COUNT]!--;
    this.counters[C.LIVE_MAPPINGS]!--;
  }

  isMappingLive(mid: number): boolean {
    return this.cols.mProto[mid] !== 0;
  }

  // ---------------------------------------------------------------- sessions

  /**
   * Create a session on mapping `mid` toward (rem, remP). Returns the id or 0 when full.
   * The caller fills the checksum deltas, state and timers. `hIn`: the hash of its inbound
   * key, hash5(proto, ext, extP, rem, remP), when the caller has it already (else -1).
   */
  newSession(mid: number, rem: number, remP: number, hIn = -1): number {
    const c = this.cols;
    const h = this.h;
    let id = h[H_SESS_FREE]!;
    if (id !== 0) h[H_SESS_FREE] = c.sNext[id]!;
    else {
      id = h[H_SESS_HIGH]!;
      if (id >= this.capacity) return 0;
      h[H_SESS_HIGH] = id + 1;
    }
    const proto = c.mProto[mid]!;
    const r = c.sRec;
    const o = id * K.Rec;
    r[o + K.In] = c.mIn[mid]!;
    r[o + K.Rem] = rem;
    r[o + K.Ext] = c.mExt[mid]!;
    r[o + K.Ports] = ((c.mInPort[mid]! << 16) | remP) >>> 0;
    r[o + K.ExtP] = ((c.mExtPort[mid]! << 16) | (proto << 8) | TcpState.None) >>> 0;
    r[o + K.Deltas] = 0;
    r[o + K.Map] = mid;
    r[o + K.Flags] = 0;
    // Timers and counters, and the counters' carries: stores in line (a typed array's fill()
    // is a call into the runtime, costlier than these few words).
    for (let k = o + K.Flags + 1; k < o + K.Rec; k++) r[k] = 0;
    const hi = c.sHi;
    for (let k = id * K.HiN; k < id * K.HiN + K.HiN; k++) hi[k] = 0;
    // The cold columns are not cleared (each would be a cache line written per new session, a
    // miss when the slot is a reused one): each is read only under a flag that its writer sets
    // after writing it, and the flags were cleared above. sAckOut/sWinOut: SF_TRACKED (track());
    // sInitSeq/sDelta/sPDelta: SF_SEQ_OUT, the *In three: SF_SEQ_IN (alg/engine.ts
    // recordDelta); sAlgLink: SF_ALG_DATA (engine commit). Readers without the flag see 0
    // (listing.ts).
    // link at the head of the mapping's list
    const head = c.mHead[mid]!;
    c.sNext[id] = head;
    c.sPrev[id] = 0;
    if (head !== 0) c.sPrev[head] = id;
    c.mHead[mid] = id;
    c.mCount[mid]!++;
    this.ixInsert(c.ixSessOut, this.smask, hash5(proto, c.mIn[mid]!, c.mInPort[mid]!, rem, remP), id);
    this.ixInsert(c.ixSessIn, this.smask, hIn >= 0 ? hIn : hash5(proto, c.mExt[mid]!, c.mExtPort[mid]!, rem, remP), id);
    h[H_SESS_COUNT]!++;
    this.counters[C.SESSIONS_CREATED]!++;
    if (proto === IpProto.Tcp) this.counters[C.LIVE_TCP_STATE]!++;
    this.counters[C.LIVE_BY_PROTO + protoIndex(proto)]!++;
    return id;
  }

  /** True when `sid` is a live session (readers: may race with the owner). */
  isLive(sid: number): boolean {
    return sid > 0 && sid < this.capacity && (this.rec[sid * K.Rec + K.ExtP]! & 0xff00) !== 0;
  }

  /**
   * Unlink and free a session. Returns the mapping id if the mapping has no sessions left and
   * is not static (the caller frees it and releases its port), else 0.
   */
  freeSession(sid: number): number {
    const c = this.cols;
    const proto = this.sProto(sid);
    const mid = this.sMap(sid);
    this.ixRemove(c.ixSessOut, this.smask, this.homeSessOut(sid), sid, this.homeSessOut);
    this.ixRemove(c.ixSessIn, this.smask, this.homeSessIn(sid), sid, this.homeSessIn);
    const prev = c.sPrev[sid]!;
    const next = c.sNext[sid]!;
    if (prev !== 0) c.sNext[prev] = next;
    else c.mHead[mid] = next;
    if (next !== 0) c.sPrev[next] = prev;
    c.mCount[mid]!--;
    if (proto === IpProto.Tcp) this.counters[C.LIVE_TCP_STATE + this.sState(sid)]!--;
    this.counters[C.LIVE_BY_PROTO + protoIndex(proto)]!--;
    // Clearing protocol and state marks the slot free for readers (isLive).
    c.sRec[sid * K.Rec + K.ExtP] = 0;
    c.sRecF[sid * K.RecF + K.Expires] = 0;
    // A new generation: fragment records naming the old session no longer match the slot.
    c.sGen[sid] = (c.sGen[sid]! + 1) >>> 0;
    c.sNext[sid] = this.h[H_SESS_FREE]!;
    c.sPrev[sid] = 0;
    this.h[H_SESS_FREE] = sid;
    this.h[H_SESS_COUNT]!--;
    return c.mCount[mid] === 0 && (c.mFlags[mid]! & MF_STATIC) === 0 ? mid : 0;
  }

  /** Set a TCP session's state, keeping the per-state gauge right. */
  setTcpState(sid: number, state: number): void {
    const r = this.rec;
    const o = sid * K.Rec + K.ExtP;
    const old = r[o]! & 0xff;
    if (old === state) return;
    this.counters[C.LIVE_TCP_STATE + old]!--;
    this.counters[C.LIVE_TCP_STATE + state]!++;
    r[o] = ((r[o]! & 0xffffff00) | state) >>> 0;
  }

  /** Advance and return the expiry scan cursor (owner's incremental sweep). */
  get expireCursor(): number {
    return this.h[H_EXPIRE_CURSOR]!;
  }
  set expireCursor(v: number) {
    this.h[H_EXPIRE_CURSOR] = v;
  }

  // ---------------------------------------------------------------- fragments

  /**
   * Remember that fragments (src, dst, proto, id) travelling in direction `dir` belong to
   * session `sid` (in its current generation: if the session is freed and its slot reused,
   * the record no longer matches) until `expires`. The probe is the fragment-key table's
   * (fragkeys.ts, shared with the dispatcher): an expired or matching slot is reused, else the
   * soonest-expiring one is overwritten (bounded memory, RFC 4787 REQ-14).
   */
  fragPut(src: number, dst: number, proto: number, ipId: number, dir: number, sid: number, expires: number, now: number): void {
    const i = this.frags.put(src, dst, proto, ipId, dir, expires, now);
    this.cols.fSess[i] = sid;
    this.cols.fGen[i] = this.cols.sGen[sid]!;
  }

  /** The live session recorded for these fragments, or 0 (none, expired, or its slot reused). */
  fragGet(src: number, dst: number, proto: number, ipId: number, dir: number, now: number): number {
    const i = this.frags.find(src, dst, proto, ipId, dir, now);
    if (i < 0) return 0;
    const sid = this.cols.fSess[i]!;
    return this.cols.sGen[sid] === this.cols.fGen[i] && this.isLive(sid) ? sid : 0;
  }

  /** Drop every fragment record (table flush). */
  fragClear(): void {
    this.frags.clear();
  }

  /**
   * Move every stored time by `delta` ms: session deadlines and last-packet times, fragment
   * records and port quarantines. A table restored from a state file was timed against the
   * clock of the gateway that saved it; shifting by (now − that clock at the save) gives each
   * timer the time it had left then (the gateway's time stood still while it was down).
   */
  rebaseClock(delta: number): void {
    const c = this.cols;
    const tm = c.sRecF;
    for (let sid = 1; sid < this.sessionHigh; sid++) {
      if (!this.isLive(sid)) continue;
      tm[sid * K.RecF + K.Expires]! += delta;
      tm[sid * K.RecF + K.Last]! += delta;
    }
    this.frags.rebase(delta);
    const q = c.ports.reuseAt;
    for (let i = 0; i < q.length; i++) if (q[i]! > 0) q[i]! += delta;
  }

  /**
   * Why the header of a table handed over from elsewhere (a state file) cannot be right, or
   * null: the high-water marks and counts within their capacities.
   */
  headerProblem(): string | null {
    const h = this.h;
    if (h[H_SESS_HIGH]! < 1 || h[H_SESS_HIGH]! > this.capacity) return `session high-water mark ${h[H_SESS_HIGH]} outside 1-${this.capacity}`;
    if (h[H_MAP_HIGH]! < 1 || h[H_MAP_HIGH]! > this.mapCapacity) return `mapping high-water mark ${h[H_MAP_HIGH]} outside 1-${this.mapCapacity}`;
    if (h[H_SESS_COUNT]! < 0 || h[H_SESS_COUNT]! >= h[H_SESS_HIGH]!) return `session count ${h[H_SESS_COUNT]} not below its high-water mark ${h[H_SESS_HIGH]}`;
    if (h[H_MAP_COUNT]! < 0 || h[H_MAP_COUNT]! >= h[H_MAP_HIGH]!) return `mapping count ${h[H_MAP_COUNT]} not below its high-water mark ${h[H_MAP_HIGH]}`;
    if (h[H_SESS_FREE]! < 0 || h[H_SESS_FREE]! >= h[H_SESS_HIGH]! || h[H_MAP_FREE]! < 0 || h[H_MAP_FREE]! >= h[H_MAP_HIGH]!) return 'a free list starts outside the table';
    return null;
  }

  /** Count a drop. */
  drop(reason: number): void {
    if (reason > 0 && reason < DROP_REASON_COUNT) this.counters[C.DROPS + reason]!++;
  }
}
