/**
 * alg/engine.ts — one partition's protocol-helper machinery: choosing a helper for a new
 * session, running it on each payload segment, growing or shrinking the packet in place,
 * the TCP sequence deltas (seq.ts), expectations (one related flow from one remote within a
 * bounded time), pinning related inside endpoints to this partition (pins.ts), and keeping a
 * control session alive while its data session is active.
 *
 * Contract:
 *  - Called by the partition (the single writer of its table) on the packet path only for
 *    sessions flagged SF_ALG (a helper watches it) or SF_ALG_DATA (a related flow), before the
 *    address/port rewrite, and from the slow path (`select`, `admit`, `commit`).
 *  - `segment()` returns the packet's IPv4 total length after any rewrite. Every change it
 *    makes leaves the packet's checksums right for its current header (IPv4 header checksum;
 *    the TCP/UDP checksum recomputed after a payload change, adjusted incrementally for a
 *    sequence/ack shift; with a partial checksum — a TUN offload read, the field holds the
 *    pseudo-header sum only — just the pseudo-header's length), so the partition's incremental
 *    NAT deltas apply on top as for any packet.
 *  - A rewrite never writes past `cap` (the buffer's room from the packet's start): one that
 *    would not fit leaves the packet as it was and counts NoRoom.
 *  - SACK: the SYN of a watched TCP session has its SACK-permitted option (RFC 2018 §2)
 *    replaced by NOPs, so SACK is never negotiated on a control connection and no SACK block
 *    ever needs shifting. Why strip rather than shift: a control connection carries a few
 *    hundred bytes in lock-step request/reply, where selective acknowledgement gains nothing,
 *    while shifting means parsing the options of every segment both ways for the connection's
 *    life, and a block that straddles a rewrite cannot be mapped exactly anyway.
 *  - Retransmissions: a segment not after Init-seq takes PDelta (seq.ts), and the helper
 *    rewrites it again the same way: `expect` for an inside endpoint that already has a
 *    mapping returns that mapping's port.
 *
 * Counters: ALG_REWRITES[helper], ALG_ERRORS[helper][AlgError], EXPECTATIONS (gauge).
 */
import { C, algErrorSlot } from '../counters.js';
import { IpProto } from '../wire/ipv4.js';
import { insidePartition } from '../hash.js';
import type { PortAllocator } from '../ports.js';
import { formatIPv4 } from '../addr.js';
import { MF_ALG_DATA, MF_EXPECT, MF_PINNED, MF_STATIC, SF_ALG, SF_ALG_DATA, SF_INBOUND_CREATED, SF_MIDLINE_IN, SF_MIDLINE_OUT, SF_SEQ_IN, SF_SEQ_OUT, type SessionTable } from '../table.js';
import { applyDelta, checksum, delta16, delta32, fold, getCheck, putCheck, pseudoHeaderSum, sumWords, finish } from '../wire/checksum.js';
import { u32, put16, put32 } from '../wire/bytes.js';
import { fixAck, fixSeq, seqUpdate, type SeqState } from './seq.js';
import { algById, algId } from './registry.js';
import type { PinTable } from './pins.js';
import { AlgSelector } from './select.js';
import { AlgDir, AlgError, EXPECT_TIMEOUT_MS, MAX_ALGS, type AlgPacket } from './types.js';

const TCP = IpProto.Tcp;
const UDP = IpProto.Udp;
const SYN = 0x02;
const ACKF = 0x10;
const EMPTY = new Uint8Array(0);

/** What the engine needs from its partition. */
export interface AlgHost {
  /** Free a mapping that has no sessions and release its port. */
  releaseMapping(mid: number, now: number): void;
}

export interface AlgEngineOptions {
  table: SessionTable;
  ports: PortAllocator;
  index: number;
  partitions: number;
  pins: PinTable | null;
  host: AlgHost;
  enabled: readonly string[];
  /** Server ports per helper name, replacing the helper's own `match` (config `[alg_ports]`). */
  serverPorts?: Readonly<Record<string, readonly number[]>>;
}

export class AlgEngine implements AlgPacket {
  // ---- the AlgPacket a helper sees (this object, reused: no allocation per segment)
  b: Uint8Array = EMPTY;
  start = 0;
  end = 0;
  dir: AlgDir = AlgDir.Out;
  inside = 0;
  insidePort = 0;
  external = 0;
  externalPort = 0;
  remote = 0;
  remotePort = 0;
  insideIsClient = true;
  midLine = false;

  private readonly t: SessionTable;
  private readonly ports: PortAllocator;
  private readonly index: number;
  private readonly partitions: number;
  private readonly pins: PinTable | null;
  private readonly host: AlgHost;
  private readonly counters: Float64Array;
  private readonly enabled = new Uint8Array(MAX_ALGS);
  private anyEnabled = false;
  /** The (protocol, server port) → helper table, rebuilt by setEnabled. */
  private readonly selector = new AlgSelector();
  /** Per helper id: its configured server ports, or null for the helper's own `match`. */
  private readonly serverPorts: Array<readonly number[] | null> = new Array<readonly number[] | null>(MAX_ALGS).fill(null);
  private sid = 0;
  private alg = 0;
  private limit = 0;
  private grow = 0;
  private rewrote = false;
  /** An expectation `expect` created in this call that no `replace` has used yet (-1: none). */
  private pendingSlot = -1;
  private now = 0;
  private readonly st: SeqState = { initSeq: 0, delta: 0, pdelta: 0 };

  constructor(o: AlgEngineOptions) {
    this.t = o.table;
    this.ports = o.ports;
    this.index = o.index;
    this.partitions = o.partitions;
    this.pins = o.pins;
    this.host = o.host;
    this.counters = o.table.counters;
    this.setEnabled(o.enabled, o.serverPorts);
  }

  /**
   * Enable exactly these helpers (names already validated: registry.checkAlgNames), with these
   * server ports where given (else each helper's `match`). New sessions only.
   */
  setEnabled(names: readonly string[], ports: Readonly<Record<string, readonly number[]>> = {}): void {
    this.enabled.fill(0);
    this.serverPorts.fill(null);
    for (const [n, list] of Object.entries(ports)) {
      const id = algId(n);
      if (id > 0) this.serverPorts[id] = [...list];
    }
    for (const n of names) {
      const id = algId(n);
      if (id > 0) this.enabled[id] = 1;
    }
    this.anyEnabled = names.length > 0;
    this.selector.configure(this.enabled, this.serverPorts);
  }

  /** Slow path: the helper for a new flow of `proto` to server port `port`, or 0 (one lookup: select.ts). */
  select(proto: number, port: number): number {
    return this.anyEnabled ? this.selector.get(proto, port) : 0;
  }

  /** Slow path: session `sid` is watched by helper `alg`. */
  attach(sid: number, alg: number): void {
    this.t.setAlg(sid, alg);
    this.t.addFlags(sid, SF_ALG);
  }

  // =================================================================== the packet path

  /**
   * A packet of a session flagged SF_ALG (the caller checks), direction `dir`, IPv4 header at
   * b[off], L4 at b[l4], total length tl; `cap` bytes of room from b[off]. Returns the new
   * total length.
   */
  segment(b: Uint8Array, off: number, l4: number, tl: number, sid: number, dir: AlgDir, cap: number, partial: boolean, now: number): number {
    const t = this.t;
    const alg = t.sAlg(sid);
    const h = algById(alg);
    if (h === undefined) return tl;
    const proto = b[off + 9]!;
    this.rewrote = false;
    if (proto === UDP) {
      if (tl - (l4 - off) <= 8) return tl;
      const fn = dir === AlgDir.Out ? h.outbound : h.inbound;
      if (fn === undefined) return tl;
      this.begin(b, off, l4 + 8, tl, sid, alg, dir, cap, now);
      fn(this);
      if (!this.rewrote) return tl;
      const ntl = this.end - off;
      this.fixIp(b, off, ntl);
      put16(b, l4 + 4, ntl - (l4 - off));
      // A zero UDP checksum means "none" (RFC 768) and stays so.
      if (getCheck(b, l4 + 6) !== 0) {
        if (partial) putCheck(b, l4 + 6, fold(getCheck(b, l4 + 6) + delta16(tl - (l4 - off), ntl - (l4 - off))));
        else this.fullL4Checksum(b, off, l4, ntl, TCP, true);
      }
      return ntl;
    }
    if (proto !== TCP) return tl;
    const c = t.cols;
    const fl = t.sFlags(sid);
    const doff = (b[l4 + 12]! >>> 4) << 2;
    const tflags = b[l4 + 13]!;
    if ((tflags & SYN) !== 0) this.stripSackPermitted(b, l4, doff, partial);
    const seq = u32(b, l4 + 4);
    const ack = u32(b, l4 + 8);
    // The sender's own stream shifts by its direction's deltas, the acknowledgement of the
    // other stream by the other direction's (state as it was before this segment).
    const ownFlag = dir === AlgDir.Out ? SF_SEQ_OUT : SF_SEQ_IN;
    const otherFlag = dir === AlgDir.Out ? SF_SEQ_IN : SF_SEQ_OUT;
    let nseq = seq;
    let nack = ack;
    if ((fl & ownFlag) !== 0) nseq = dir === AlgDir.Out ? fixSeq(seq, c.sInitSeq[sid]!, c.sDelta[sid]!, c.sPDelta[sid]!) : fixSeq(seq, c.sInitSeqIn[sid]!, c.sDeltaIn[sid]!, c.sPDeltaIn[sid]!);
    if ((fl & otherFlag) !== 0 && (tflags & ACKF) !== 0)
      nack = dir === AlgDir.Out ? fixAck(ack, c.sInitSeqIn[sid]!, c.sDeltaIn[sid]!, c.sPDeltaIn[sid]!) : fixAck(ack, c.sInitSeq[sid]!, c.sDelta[sid]!, c.sPDelta[sid]!);
    const pstart = l4 + doff;
    const pend = off + tl;
    let ntl = tl;
    this.rewrote = false;
    const fn = dir === AlgDir.Out ? h.outbound : h.inbound;
    if (pend > pstart && fn !== undefined) {
      this.begin(b, off, pstart, tl, sid, alg, dir, cap, now);
      fn(this);
      const midFlag = dir === AlgDir.Out ? SF_MIDLINE_OUT : SF_MIDLINE_IN;
      if (this.end > this.start && b[this.end - 1] !== 0x0a) t.addFlags(sid, midFlag);
      else t.clearFlags(sid, midFlag);
      if (this.rewrote) ntl = this.end - off;
    }
    if (this.rewrote) {
      put32(b, l4 + 4, nseq);
      put32(b, l4 + 8, nack);
      this.fixIp(b, off, ntl);
      if (partial) putCheck(b, l4 + 16, fold(getCheck(b, l4 + 16) + delta16(tl - (l4 - off), ntl - (l4 - off))));
      else this.fullL4Checksum(b, off, l4, ntl, 16, false);
      if (ntl !== tl) this.recordDelta(sid, dir, seq, ntl - tl);
    } else if (nseq !== seq || nack !== ack) {
      put32(b, l4 + 4, nseq);
      put32(b, l4 + 8, nack);
      if (!partial) putCheck(b, l4 + 16, applyDelta(getCheck(b, l4 + 16), delta32(seq, nseq) + delta32(ack, nack)));
    }
    return ntl;
  }

  /** Set up the AlgPacket view for one call. */
  private begin(b: Uint8Array, off: number, pstart: number, tl: number, sid: number, alg: number, dir: AlgDir, cap: number, now: number): void {
    const t = this.t;
    this.b = b;
    this.start = pstart;
    this.end = off + tl;
    this.limit = off + Math.min(cap, 0xffff);
    this.dir = dir;
    this.sid = sid;
    this.alg = alg;
    this.now = now;
    this.grow = 0;
    this.rewrote = false;
    this.pendingSlot = -1;
    this.inside = t.sIn(sid);
    this.insidePort = t.sInPort(sid);
    this.external = t.sExt(sid);
    this.externalPort = t.sExtPort(sid);
    this.remote = t.sRem(sid);
    this.remotePort = t.sRemPort(sid);
    const fl = t.sFlags(sid);
    this.insideIsClient = (fl & SF_INBOUND_CREATED) === 0;
    this.midLine = (fl & (dir === AlgDir.Out ? SF_MIDLINE_OUT : SF_MIDLINE_IN)) !== 0;
  }

  /** Record a length change of `diff` bytes in the segment starting at `seq` (seq.ts). */
  private recordDelta(sid: number, dir: AlgDir, seq: number, diff: number): void {
    const t = this.t;
    const c = t.cols;
    const st = this.st;
    const out = dir === AlgDir.Out;
    const flag = out ? SF_SEQ_OUT : SF_SEQ_IN;
    // The columns hold this session's state only once the flag is set (a new session does not
    // clear them: table.ts newSession); before, the state is all zero.
    const active = (t.sFlags(sid) & flag) !== 0;
    st.initSeq = !active ? 0 : out ? c.sInitSeq[sid]! : c.sInitSeqIn[sid]!;
    st.delta = !active ? 0 : out ? c.sDelta[sid]! : c.sDeltaIn[sid]!;
    st.pdelta = !active ? 0 : out ? c.sPDelta[sid]! : c.sPDeltaIn[sid]!;
    if (!seqUpdate(st, active, seq, diff)) return;
    if (out) {
      c.sInitSeq[sid] = st.initSeq;
      c.sDelta[sid] = st.delta;
      c.sPDelta[sid] = st.pdelta;
    } else {
      c.sInitSeqIn[sid] = st.initSeq;
      c.sDeltaIn[sid] = st.delta;
      c.sPDeltaIn[sid] = st.pdelta;
    }
    t.addFlags(sid, flag);
  }

  /** New total length and a recomputed IPv4 header checksum. */
  private fixIp(b: Uint8Array, off: number, ntl: number): void {
    put16(b, off + 2, ntl);
    const hl = (b[off]! & 0x0f) << 2;
    putCheck(b, off + 10, 0);
    putCheck(b, off + 10, checksum(b, off, hl));
  }

  /** Recompute the TCP/UDP checksum (field at l4 + at) over the whole segment. */
  private fullL4Checksum(b: Uint8Array, off: number, l4: number, ntl: number, at: number, udp: boolean): void {
    const l4len = ntl - (l4 - off);
    putCheck(b, l4 + at, 0);
    const s = sumWords(b, l4, l4len, pseudoHeaderSum(u32(b, off + 12), u32(b, off + 16), b[off + 9]!, l4len));
    const v = finish(s);
    putCheck(b, l4 + at, udp && v === 0 ? 0xffff : v);
  }

  /** Replace SACK-permitted (kind 4, length 2) in a SYN's options by two NOPs. */
  private stripSackPermitted(b: Uint8Array, l4: number, doff: number, partial: boolean): void {
    let i = l4 + 20;
    const end = l4 + doff;
    while (i < end) {
      const k = b[i]!;
      if (k === 0) return;
      if (k === 1) {
        i++;
        continue;
      }
      if (i + 1 >= end) return;
      const len = b[i + 1]!;
      if (len < 2 || i + len > end) return;
      if (k === 4 && len === 2) {
        // The checksum sums 16-bit words from the segment's start: a byte at an even offset
        // is a word's high half.
        let d = 0;
        for (let q = i; q < i + 2; q++) {
          const old = b[q]!;
          b[q] = 1;
          d += (q - l4) % 2 === 0 ? delta16(old << 8, 1 << 8) : delta16(old, 1);
        }
        if (!partial) putCheck(b, l4 + 16, applyDelta(getCheck(b, l4 + 16), d));
        return;
      }
      i += len;
    }
  }

  // =================================================================== AlgPacket operations

  replace(from: number, to: number, text: string): boolean {
    const n = text.length;
    const grow = n - (to - from);
    if (from < this.start || to > this.end || from > to) {
      this.error(AlgError.Malformed);
      return false;
    }
    if (this.end + grow > this.limit) {
      this.error(AlgError.NoRoom);
      // The peer will never hear of the port: what `expect` just opened for it goes again.
      if (this.pendingSlot >= 0) this.dropExpect(this.pendingSlot, this.now);
      this.pendingSlot = -1;
      return false;
    }
    this.pendingSlot = -1;
    const b = this.b;
    if (grow !== 0) b.copyWithin(from + n, to, this.end);
    for (let k = 0; k < n; k++) b[from + k] = text.charCodeAt(k) & 0xff;
    this.end += grow;
    this.grow += grow;
    this.rewrote = true;
    this.counters[C.ALG_REWRITES + this.alg]!++;
    return true;
  }

  error(reason: AlgError): void {
    this.counters[algErrorSlot(this.alg, reason)]!++;
  }

  expect(proto: number, insidePort: number, remote: number): number {
    const t = this.t;
    const c = t.cols;
    const inA = this.inside;
    const now = this.now;
    let mid = t.findMappingOut(proto, inA, insidePort);
    let fresh = false;
    if (mid !== 0 && (c.mFlags[mid]! & MF_STATIC) !== 0) return c.mExtPort[mid]!;
    if (mid === 0) {
      const ctl = t.sMap(this.sid);
      const ei = c.mExtIdx[ctl]!;
      // From this partition's own slice: the related flow's inbound packets come here.
      const port = this.ports.allocate(ei, proto, inA, insidePort, now);
      if (port < 0) {
        this.error(AlgError.NoPort);
        return -1;
      }
      mid = t.newMapping(proto, inA, insidePort, ei, c.mExt[ctl]!, port, MF_ALG_DATA);
      if (mid === 0) {
        this.ports.release(ei, proto, port, now);
        this.error(AlgError.ExpectFull);
        return -1;
      }
      this.counters[C.PORTS_IN_USE + ei]!++;
      fresh = true;
    }
    let slot = this.findExpect(mid);
    if (slot < 0) {
      slot = this.freeExpectSlot();
      if (slot < 0) {
        this.error(AlgError.ExpectFull);
        if (fresh) this.host.releaseMapping(mid, now);
        return -1;
      }
      t.expectCount = t.expectCount + 1;
      this.counters[C.EXPECTATIONS]!++;
      this.pendingSlot = slot;
    }
    c.xMap[slot] = mid;
    c.xRem[slot] = remote;
    c.xCtl[slot] = this.sid;
    c.xAlg[slot] = this.alg;
    c.xExpires[slot] = now + EXPECT_TIMEOUT_MS;
    c.mFlags[mid]! |= MF_EXPECT;
    // The related flow's outbound packets hash by the inside endpoint, maybe to another
    // partition: pin it here. Ordering: this runs inside translate() of the packet that
    // carries the rewritten command, so the pin is stored (Atomics.store, pins.ts) before that
    // packet is written to the TUN; the peer learns the port only from that packet, and the
    // inside host's first packet of the flow answers the peer's: the I/O thread, reading the
    // pin after that, sees it.
    if (this.pins !== null && this.partitions > 1 && (c.mFlags[mid]! & MF_PINNED) === 0 && insidePartition(proto, inA, insidePort, this.partitions) !== this.index) {
      if (!this.pins.pin(this.index, proto, inA, insidePort)) {
        this.error(AlgError.ExpectFull);
        this.dropExpect(slot, now);
        return -1;
      }
      c.mFlags[mid]! |= MF_PINNED;
    }
    return c.mExtPort[mid]!;
  }

  insidePortOf(proto: number, externalPort: number): number {
    const t = this.t;
    const mid = t.findMappingIn(proto, this.external, externalPort);
    if (mid === 0 || t.cols.mIn[mid] !== this.inside) return -1;
    return t.cols.mInPort[mid]!;
  }

  // =================================================================== expectations

  private findExpect(mid: number): number {
    const c = this.t.cols;
    if (this.t.expectCount === 0) return -1;
    for (let i = 0; i < c.xMap.length; i++) if (c.xMap[i] === mid) return i;
    return -1;
  }

  private freeExpectSlot(): number {
    const x = this.t.cols.xMap;
    for (let i = 0; i < x.length; i++) if (x[i] === 0) return i;
    return -1;
  }

  /** Forget expectation `slot`; its mapping is freed too when nothing else holds it. */
  private dropExpect(slot: number, now: number): void {
    const t = this.t;
    const c = t.cols;
    const mid = c.xMap[slot]!;
    this.clearSlot(slot);
    if (mid === 0 || !t.isMappingLive(mid)) return;
    c.mFlags[mid]! &= ~MF_EXPECT;
    if (c.mHead[mid] === 0 && (c.mFlags[mid]! & MF_STATIC) === 0) this.host.releaseMapping(mid, now);
  }

  private clearSlot(slot: number): void {
    const c = this.t.cols;
    c.xMap[slot] = 0;
    c.xExpires[slot] = 0;
    this.t.expectCount = this.t.expectCount - 1;
    this.counters[C.EXPECTATIONS]!--;
  }

  /**
   * Slow path, an inbound flow from `src` to mapping `mid` flagged MF_EXPECT or MF_ALG_DATA:
   * the expectation slot that admits it (≥ 0), or -1. A flow from another remote than the
   * expected one counts WrongRemote.
   */
  admit(mid: number, src: number, now: number): number {
    const c = this.t.cols;
    if ((c.mFlags[mid]! & MF_EXPECT) === 0) return -1;
    const slot = this.findExpect(mid);
    if (slot < 0 || c.xExpires[slot]! <= now) return -1;
    if (c.xRem[slot] !== 0 && c.xRem[slot] !== src) {
      this.counters[algErrorSlot(c.xAlg[slot]!, AlgError.WrongRemote)]!++;
      return -1;
    }
    return slot;
  }

  /** The admitted flow's session `sid` exists: the expectation is used up (one flow). */
  commit(slot: number, sid: number): void {
    const t = this.t;
    const c = t.cols;
    const mid = c.xMap[slot]!;
    c.sAlgLink[sid] = c.xCtl[slot]!;
    t.addFlags(sid, SF_ALG_DATA);
    c.mFlags[mid]! &= ~MF_EXPECT;
    this.clearSlot(slot);
  }

  /** Expectations past their time go (with their mapping if nothing else holds it). */
  expire(now: number): void {
    const t = this.t;
    if (t.expectCount === 0) return;
    const c = t.cols;
    for (let i = 0; i < c.xMap.length; i++) if (c.xMap[i] !== 0 && c.xExpires[i]! <= now) this.dropExpect(i, now);
  }

  /** The partition frees mapping `mid` (flags MF_EXPECT or MF_PINNED): drop what points at it. */
  mappingFreed(mid: number): void {
    const t = this.t;
    const c = t.cols;
    const f = c.mFlags[mid]!;
    if ((f & MF_EXPECT) !== 0) {
      const slot = this.findExpect(mid);
      if (slot >= 0) this.clearSlot(slot);
    }
    if ((f & MF_PINNED) !== 0 && this.pins !== null) this.pins.unpin(this.index, c.mProto[mid]!, c.mIn[mid]!, c.mInPort[mid]!);
  }

  /**
   * A related flow's packet refreshed session `sid` (flag SF_ALG_DATA): its control session
   * must not expire before it (a long download over an idle control connection).
   */
  refreshControl(sid: number): void {
    const t = this.t;
    const ctl = t.cols.sAlgLink[sid]!;
    if (ctl === 0 || !t.isLive(ctl) || (t.sFlags(ctl) & SF_ALG) === 0 || t.sIn(ctl) !== t.sIn(sid)) return;
    const e = t.sExpires(sid);
    if (t.sExpires(ctl) < e) t.setExpires(ctl, e);
  }
}

/** One pending expectation, for listings. */
export interface ExpectationRow {
  alg: string;
  proto: 'tcp' | 'udp';
  inside: string;
  insidePort: number;
  external: string;
  externalPort: number;
  /** The one remote address the expectation admits (any port). */
  remote: string;
  expiresMs: number;
  /** The session whose command opened it. */
  control: number;
}

/** The expectations of a table (safe from any thread; a row may be torn). */
export function listExpectations(t: SessionTable, now: number): ExpectationRow[] {
  const c = t.cols;
  const rows: ExpectationRow[] = [];
  for (let i = 0; i < c.xMap.length; i++) {
    const mid = c.xMap[i]!;
    if (mid === 0) continue;
    rows.push({
      alg: algById(c.xAlg[i]!)?.name ?? 'unknown',
      proto: c.mProto[mid] === UDP ? 'udp' : 'tcp',
      inside: formatIPv4(c.mIn[mid]!),
      insidePort: c.mInPort[mid]!,
      external: formatIPv4(c.mExt[mid]!),
      externalPort: c.mExtPort[mid]!,
      remote: formatIPv4(c.xRem[i]!),
      expiresMs: Math.max(0, c.xExpires[i]! - now),
      control: c.xCtl[i]!,
    });
  }
  return rows;
}


/** The readable listing of expectations (`masq table`). */
export function formatExpectations(rows: readonly ExpectationRow[]): string {
  const head = ['ALG', 'PROTO', 'INSIDE', 'EXTERNAL', 'ADMITS', 'EXPIRES', 'CONTROL'];
  const body = rows.map((r) => [r.alg, r.proto, `${r.inside}:${r.insidePort}`, `${r.external}:${r.externalPort}`, r.remote === "0.0.0.0" ? "*:*" : `${r.remote}:*`, `${Math.round(r.expiresMs / 1000)}s`, `#${r.control}`]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [fmt(head), ...body.map(fmt)].join('\n') + '\n';
}
