/**
 * translate.ts — one partition of the masquerade table and the translation of packets in
 * place: `Partition.translate(bytes, offset, length, direction, now)` → verdict.
 *
 * Contract:
 *  - Pure with respect to the outside world: no I/O, no clock reads (`now` in ms is passed in),
 *    no logging. Every byte string it is given is validated here first (ipv4/tcp/udp/icmp
 *    validate functions); any input gives a verdict, never an exception.
 *  - Fast path (a session exists): rewrite address and port, apply the session's precomputed
 *    checksum deltas (RFC 1624), step the TCP state, refresh the timer, count. No allocation.
 *  - Slow path (a miss): rules, filtering, port allocation, session insert.
 *  - Single writer: a Partition is the only writer of its SessionTable.
 *
 * RFC behaviour implemented here:
 *  - RFC 4787 REQ-1 / RFC 5382 REQ-1: endpoint-independent mapping (one mapping per inside
 *    protocol/address/port, shared by every destination).
 *  - RFC 4787 REQ-2: paired pooling — an inside host always gets the same external address.
 *  - RFC 4787 REQ-8: filtering endpoint / address / address-port dependent (config).
 *  - RFC 4787 REQ-9, RFC 5382 REQ-8, RFC 5508 REQ-7: hairpinning; the hairpinned packet's
 *    source is the sender's external address and port.
 *  - RFC 4787 REQ-6: UDP mappings are refreshed by outbound traffic only.
 *  - RFC 5382 REQ-2: simultaneous open; REQ-4: unsolicited inbound SYNs are dropped silently
 *    (REQ-4a: answering would go against the security policy) and counted.
 *  - RFC 5508 REQ-1: ICMP query identifiers mapped like ports, 60 s timer; REQ-3/4/5: ICMP
 *    errors translated both ways, embedded IP header, transport header and every affected
 *    checksum rewritten; an error never creates, refreshes or deletes a session.
 *  - RFC 4787 REQ-14: fragments: the first fragment is translated like any packet and
 *    remembered; later fragments (no ports) follow it by (src, dst, proto, IP ID). Ordering is
 *    restored before this point (dispatch.ts holds fragments that arrive before their first).
 *  - RFC 6888 REQ-4: per-inside-host session limit; REQ-11: no eviction on exhaustion.
 *  - RFC 7857 §2.1-2.2: TCP transitory timer for SYN/FIN/RST states.
 */
import { DropReason } from './drop.js';
import { C, packetsSlot, protoIndex } from './counters.js';
import type { NatConfig } from './config.js';
import { RuleSet, RuleAction } from './rules.js';
import { PortAllocator, PortPlan, PortMode } from './ports.js';
import { SessionTable, ID_MASK, MF_STATIC, MF_COUNTED, SF_INBOUND_CREATED, SF_HAIRPIN, REC, R_EXT, R_EXTP, R_PORTS, R_DELTAS, R_IN, R_FLAGS, REC_F, F_EXPIRES, F_LAST, R_PKT_OUT, R_PKT_IN, R_BYTE_OUT, R_BYTE_IN } from './table.js';
import { TcpState, tcpNext, tcpLongLived } from './tcpstate.js';
import { hash3, hash5, insidePartition } from './hash.js';
import { delta16, delta32, fold, applyDelta, applyDeltaUdp, getCheck, putCheck, checksum } from './wire/checksum.js';
import { u16, u32, put16, put32 } from './wire/bytes.js';
import * as ip from './wire/ipv4.js';
import * as tcp from './wire/tcp.js';
import * as udp from './wire/udp.js';
import * as icmp from './wire/icmp.js';
import { Direction, FORWARD, PASS, drop, handoff, reply } from './verdict.js';

const TCP = 6;
const UDP = 17;
const ICMP = 1;

/** The constant checksum delta of TTL + 1 (the TTL/protocol word grows by 0x0100). */
const TTL_PLUS_ONE = 0x0100;

export interface PartitionOptions {
  config: NatConfig;
  rules: RuleSet;
  plan: PortPlan;
  index: number;
  table: SessionTable;
}

/** Where the inbound half of a packet to external (addr, port) is translated. */
export function inboundOwner(rules: RuleSet, plan: PortPlan, partitions: number, proto: number, ext: number, port: number): number {
  if (proto !== ICMP) {
    const f = rules.matchForward(proto, ext, port);
    if (f >= 0) return insidePartition(proto, rules.forwardInAddr(f), rules.forwardInPort(f, port), partitions);
  }
  const o = plan.ownerOf[port]!;
  return o === 0xff ? -1 : o;
}

export class Partition {
  readonly index: number;
  readonly table: SessionTable;
  readonly ports: PortAllocator;
  /** Reply buffer for a Reply verdict (an ICMP error masq generates). */
  readonly reply = new Uint8Array(576);
  replyLen = 0;
  private cfg: NatConfig;
  private rules: RuleSet;
  /** The packet being translated carries a partial checksum (see translate). */
  private partial = false;
  private nowCache = 0;
  private readonly plan: PortPlan;
  private readonly counters: Float64Array;
  private externalSet: Uint32Array;
  private hostLimit: number;
  private hostPortLimit: number;
  /** Per-host counts are kept when either limit is set. */
  private hostCounting: boolean;

  constructor(o: PartitionOptions) {
    this.index = o.index;
    this.table = o.table;
    this.cfg = o.config;
    this.rules = o.rules;
    this.plan = o.plan;
    this.counters = o.table.counters;
    const mode = o.config.portMode === 'sequential' ? PortMode.Sequential : o.config.portMode === 'preserve' ? PortMode.Preserve : PortMode.Random;
    this.ports = new PortAllocator(o.plan, o.index, o.table.portArrays, mode, o.config.portReuseDelay);
    // RFC 6056: unpredictable ports. Tests pass a seed; otherwise the gateway draws one.
    this.ports.seedIfFresh(o.config.seed ? (o.config.seed + o.index * 7919) >>> 0 : (Math.random() * 0xffffffff) >>> 0);
    this.externalSet = Uint32Array.from(o.config.externals);
    this.hostLimit = o.config.hostSessionLimit > 0 ? Math.max(1, Math.ceil(o.config.hostSessionLimit / o.config.partitions)) : 0;
    this.hostPortLimit = o.config.hostPortLimit > 0 ? Math.max(1, Math.ceil(o.config.hostPortLimit / o.config.partitions)) : 0;
    this.hostCounting = this.hostLimit > 0 || this.hostPortLimit > 0;
  }

  get config(): NatConfig {
    return this.cfg;
  }
  get ruleSet(): RuleSet {
    return this.rules;
  }

  /** Is `a` one of our external addresses? */
  isExternal(a: number): boolean {
    const e = this.externalSet;
    for (let i = 0; i < e.length; i++) if (e[i] === a) return true;
    return false;
  }

  private extIndex(a: number): number {
    const e = this.externalSet;
    for (let i = 0; i < e.length; i++) if (e[i] === a) return i;
    return -1;
  }

  /** Timer for a session in its current state. */
  private lifetime(proto: number, state: number): number {
    const t = this.cfg.timeouts;
    if (proto === TCP) return tcpLongLived(state) ? t.tcpEstablished : t.tcpTransitory;
    return proto === UDP ? t.udp : t.icmp;
  }

  // ======================================================================= translate

  /**
   * Translate the IPv4 packet at bytes[off, off+len) in place. `dir` is a Direction. Returns
   * a verdict (verdict.ts). `partial`: the TCP/UDP checksum field holds only the pseudo-header
   * sum (a TUN offload read with VIRTIO_NET_HDR_F_NEEDS_CSUM): address changes are folded into
   * it, port changes are not (the kernel sums the header, ports included, later).
   */
  translate(b: Uint8Array, off: number, len: number, dir: number, now: number, partial = false): number {
    this.partial = partial;
    this.nowCache = now;
    const r = ip.validateIPv4(b, off, len);
    if (r !== DropReason.None) return this.dropped(r);
    const hl = (b[off]! & 0x0f) << 2;
    const tl = u16(b, off + ip.TOTAL_LEN);
    const p = b[off + ip.PROTO]!;
    const l4 = off + hl;
    const l4len = tl - hl;
    const ff = u16(b, off + ip.FLAGS_FRAG);
    if ((ff & ip.FRAG_OFFSET_MASK) !== 0) return this.laterFragment(b, off, tl, p, dir, now);
    const firstFrag = (ff & ip.FLAG_MF) !== 0;
    let sport: number;
    let dport: number;
    let tflags = 0;
    if (p === TCP) {
      if (l4len < tcp.HEADER_LEN) return this.dropped(DropReason.Truncated);
      const doff = (b[l4 + tcp.DATA_OFF]! >>> 4) << 2;
      if (doff < tcp.HEADER_LEN || doff > l4len) return this.dropped(DropReason.BadL4Header);
      sport = u16(b, l4);
      dport = u16(b, l4 + 2);
      tflags = b[l4 + tcp.FLAGS]!;
    } else if (p === UDP) {
      if (l4len < udp.HEADER_LEN) return this.dropped(DropReason.Truncated);
      const ul = u16(b, l4 + udp.LENGTH);
      // The length field spans the whole datagram; a first fragment carries only part of it.
      if (ul < udp.HEADER_LEN || (!firstFrag && ul > l4len)) return this.dropped(DropReason.BadL4Header);
      sport = u16(b, l4);
      dport = u16(b, l4 + 2);
    } else if (p === ICMP) {
      if (l4len < icmp.HEADER_LEN) return this.dropped(DropReason.Truncated);
      // A fragmented ICMP message's checksum spans all fragments: only whole ones are checked.
      if (!firstFrag && checksum(b, l4, l4len) !== 0) return this.dropped(DropReason.BadIcmpChecksum);
      const t = b[l4]!;
      if (icmp.isError(t)) {
        if (firstFrag) return this.dropped(DropReason.IcmpErrorMalformed);
        return this.icmpError(b, off, l4, l4len, dir, now);
      }
      if (!icmp.isQuery(t)) return this.dropped(DropReason.IcmpUnsupported);
      sport = u16(b, l4 + icmp.ID);
      dport = 0;
    } else {
      return this.dropped(DropReason.UnsupportedProtocol);
    }
    if (dir === Direction.Out) return this.outbound(b, off, l4, tl, p, sport, dport, tflags, firstFrag, now);
    return this.inbound(b, off, l4, tl, p, sport, dport, tflags, firstFrag, dir, now);
  }

  /**
   * A read-only hint before translating a batch: computes each packet's lookup key, and loads
   * its index entry (the first from the home slot whose hash tag matches), then the session
   * records those entries name (one 64-byte line each), in tight loops. The loads
   * of a loop are independent, so their cache and TLB misses overlap (the CPU keeps several in
   * flight) instead of stalling one translate() each: JavaScript's only way to prefetch. Reads
   * only; any bytes at all are safe (out-of-range reads give undefined, which hashes to junk).
   * Packet k is at offs[k] in direction dirs[k]; at most 64 per call. Returns a value only so
   * the loads cannot be optimised away.
   */
  prefetch(b: Uint8Array, offs: Uint32Array, dirs: Uint8Array, n: number): number {
    const t = this.table;
    const c = t.cols;
    const slots = this.pfSlots;
    const hashes = this.pfHashes;
    const m = Math.min(n, slots.length);
    this.pfBuf = b;
    this.pfCount = m;
    this.pfNext = 0;
    this.pfOffs.set(offs.subarray(0, m));
    const smask = c.ixSessOut.length - 1;
    for (let k = 0; k < m; k++) {
      const o = offs[k]!;
      const l4 = o + ((b[o]! & 0x0f) << 2);
      const p = b[o + 9]!;
      const src = ((b[o + 12]! << 24) | (b[o + 13]! << 16) | (b[o + 14]! << 8) | b[o + 15]!) >>> 0;
      const dst = ((b[o + 16]! << 24) | (b[o + 17]! << 16) | (b[o + 18]! << 8) | b[o + 19]!) >>> 0;
      let sp: number;
      let dp: number;
      if (p === ICMP) {
        sp = (b[l4 + 4]! << 8) | b[l4 + 5]!;
        dp = 0;
      } else {
        sp = (b[l4]! << 8) | b[l4 + 1]!;
        dp = (b[l4 + 2]! << 8) | b[l4 + 3]!;
      }
      // Outbound key: inside 5-tuple; inbound: (external, ext port, remote, remote port).
      hashes[k] = dirs[k] === Direction.Out ? hash5(p, src, sp, dst, dp) : hash5(p, dst, p === ICMP ? sp : dp, src, p === ICMP ? 0 : sp);
    }
    let sink = 0;
    const io = c.ixSessOut;
    const ii = c.ixSessIn;
    for (let k = 0; k < m; k++) {
      // The first entry from the home slot on whose hash tag matches (table.ts findSession*):
      // a displaced session is found too, with the probe's slots in the same line.
      const h = hashes[k]!;
      const ix = dirs[k] === Direction.Out ? io : ii;
      const tag = h >>> 27;
      let i = h & smask;
      let e = ix[i]!;
      for (let d = 0; e !== 0 && e >>> 26 !== tag && d < 8; d++) {
        i = (i + 1) & smask;
        e = ix[i]!;
      }
      slots[k] = e & ID_MASK;
    }
    const r = c.sRec;
    for (let k = 0; k < m; k++) sink += r[slots[k]! * REC]!;
    return sink;
  }
  private readonly pfSlots = new Int32Array(64);
  private readonly pfHashes = new Uint32Array(64);
  // The last prefetch's packets, in order: translate() of the next one among them takes the
  // session id the prefetch found as a candidate (checked against the key like any lookup),
  // instead of hashing and probing again.
  private readonly pfOffs = new Uint32Array(64);
  private pfBuf: Uint8Array | null = null;
  private pfCount = 0;
  private pfNext = 0;

  /** The prefetch's candidate session for the packet at b[off], or 0. */
  private candidate(b: Uint8Array, off: number): number {
    const k = this.pfNext;
    if (k >= this.pfCount || this.pfOffs[k] !== off || this.pfBuf !== b) return 0;
    this.pfNext = k + 1;
    return this.pfSlots[k]!;
  }

  private dropped(reason: number): number {
    this.counters[C.DROPS + reason]!++;
    return drop(reason);
  }

  // ----------------------------------------------------------------------- outbound

  private outbound(b: Uint8Array, off: number, l4: number, tl: number, p: number, sport: number, dport: number, tflags: number, firstFrag: boolean, now: number): number {
    const t = this.table;
    const c = t.cols;
    const src = u32(b, off + ip.SRC);
    const dst = u32(b, off + ip.DST);
    const cand = this.candidate(b, off);
    let sid = cand !== 0 && t.isSessionOut(cand, p, src, sport, dst, dport) ? cand : t.findSessionOut(p, src, sport, dst, dport);
    if (sid === 0) {
      sid = this.createOutbound(b, off, l4, p, src, sport, dst, dport, tflags, firstFrag, now);
      if (sid < 0) return -sid;
    }
    // --- fast path: precomputed rewrite from the session's hot record
    const r = c.sRec;
    const o = sid * REC;
    const tm = c.sRecF;
    const to = sid * REC_F;
    const deltas = r[o + R_DELTAS]!;
    const dIpAddr = deltas >>> 16;
    let dIp = dIpAddr;
    const ttlv = b[off + ip.TTL]!;
    if (this.cfg.hopCompensation && ttlv < 255) {
      b[off + ip.TTL] = ttlv + 1;
      dIp += TTL_PLUS_ONE;
    }
    put32(b, off + ip.SRC, r[o + R_EXT]!);
    putCheck(b, off + ip.CHECK, applyDelta(getCheck(b, off + ip.CHECK), dIp));
    const dL4 = deltas & 0xffff;
    const extp = r[o + R_EXTP]!;
    if (p === TCP) {
      put16(b, l4, extp >>> 16);
      if (this.partial) putCheck(b, l4 + tcp.CHECK, fold(getCheck(b, l4 + tcp.CHECK) + dIpAddr));
      else putCheck(b, l4 + tcp.CHECK, applyDelta(getCheck(b, l4 + tcp.CHECK), dL4));
      const st = extp & 0xff;
      const ns = tcpNext(st, tflags, 0);
      if (ns !== st) t.setTcpState(sid, ns);
      tm[to + F_EXPIRES] = now + this.lifetime(TCP, ns);
    } else if (p === UDP) {
      put16(b, l4, extp >>> 16);
      if (this.partial) putCheck(b, l4 + udp.CHECK, fold(getCheck(b, l4 + udp.CHECK) + dIpAddr));
      else putCheck(b, l4 + udp.CHECK, applyDeltaUdp(getCheck(b, l4 + udp.CHECK), dL4));
      tm[to + F_EXPIRES] = now + this.cfg.timeouts.udp;
    } else {
      put16(b, l4 + icmp.ID, extp >>> 16);
      putCheck(b, l4 + icmp.CHECK, applyDelta(getCheck(b, l4 + icmp.CHECK), dL4));
      if (icmp.isQueryRequest(b[l4]!)) tm[to + F_EXPIRES] = now + this.cfg.timeouts.icmp;
    }
    tm[to + F_LAST] = now;
    t.count(sid, R_PKT_OUT, 1);
    t.count(sid, R_BYTE_OUT, tl);
    const cn = this.counters;
    cn[packetsSlot(0, protoIndex(p))]!++;
    cn[C.BYTES]! += tl;
    if (firstFrag) {
      cn[C.FRAGMENTS]!++;
      t.fragPut(src, dst, p, u16(b, off + ip.ID), 0, sid, now + this.cfg.timeouts.fragment, now);
    }
    if ((r[o + R_FLAGS]! & SF_HAIRPIN) !== 0) return this.hairpin(b, off, p, dst, dport, now, tl);
    return FORWARD;
  }

  /** Slow path: returns the new session's id, or -verdict for the packet. */
  private createOutbound(b: Uint8Array, off: number, l4: number, p: number, src: number, sport: number, dst: number, dport: number, tflags: number, firstFrag: boolean, now: number): number {
    const ri = this.rules.matchOutbound(p, src, sport, dst, dport);
    if (ri < 0) return -this.dropped(DropReason.NoRule);
    if (this.rules.actionOf(ri) === RuleAction.Accept) {
      this.counters[C.PASSED]!++;
      return -PASS;
    }
    if (this.isExternal(src)) return -this.dropped(DropReason.Martian);
    if (p === TCP && (tflags & (tcp.SYN | tcp.ACKF | tcp.RST)) !== tcp.SYN) return -this.dropped(DropReason.TcpNotSyn);
    if (p === ICMP && !icmp.isQueryRequest(b[l4]!)) return -this.dropped(DropReason.NoMapping);
    // An inside host pinging our external address: the gateway answers, no session needed.
    if (p === ICMP && b[l4] === icmp.ECHO_REQUEST && this.isExternal(dst)) {
      if (firstFrag) return -this.dropped(DropReason.NoMapping);
      return -this.answerEcho(b, off, l4);
    }
    const t = this.table;
    if (this.hostLimit > 0 && t.hostSessions(src) >= this.hostLimit) return -this.dropped(DropReason.HostLimit);
    let mid = t.findMappingOut(p, src, sport);
    let fresh = false;
    if (mid === 0) {
      if (this.hostPortLimit > 0 && t.hostPorts(src) >= this.hostPortLimit) return -this.dropped(DropReason.HostLimit);
      const ei = this.cfg.externals.length === 1 ? 0 : hash3(0, src, 0) % this.cfg.externals.length;
      const port = this.ports.allocate(ei, p, src, sport, now);
      if (port < 0) {
        this.counters[C.PORT_ALLOC_FAILURES]!++;
        if (this.cfg.icmpOnExhaustion && this.buildUnreachable(b, off, icmp.CODE_ADMIN_PROHIBITED)) {
          this.counters[C.DROPS + DropReason.PortExhausted]!++;
          this.counters[C.ICMP_GENERATED]!++;
          return -reply(DropReason.PortExhausted);
        }
        return -this.dropped(DropReason.PortExhausted);
      }
      mid = t.newMapping(p, src, sport, ei, this.cfg.externals[ei]!, port, 0);
      if (mid === 0) {
        this.ports.release(ei, p, port, now);
        return -this.dropped(DropReason.TableFull);
      }
      this.counters[C.PORTS_IN_USE + ei]!++;
      if (this.hostCounting) {
        t.hostAdd(src, 0, 1);
        t.cols.mFlags[mid]! |= MF_COUNTED;
      }
      fresh = true;
    }
    const sid = t.newSession(mid, dst, dport);
    if (sid === 0) {
      if (fresh) this.releaseMapping(mid, now);
      return -this.dropped(DropReason.TableFull);
    }
    this.initSession(sid, mid, now);
    if (this.isExternal(dst)) t.addFlags(sid, SF_HAIRPIN);
    return sid;
  }

  /** Precompute the fast-path deltas and start the timers of a new session. */
  private initSession(sid: number, mid: number, now: number): void {
    const t = this.table;
    const c = t.cols;
    const inA = c.mIn[mid]!;
    const ext = c.mExt[mid]!;
    const dIp = fold(delta32(inA, ext));
    const dPort = delta16(c.mInPort[mid]!, c.mExtPort[mid]!);
    // ICMP has no pseudo-header: only the identifier changes its checksum.
    t.setDeltas(sid, dIp, c.mProto[mid] === ICMP ? fold(dPort) : fold(dIp + dPort));
    c.sRecF[sid * REC_F + F_LAST] = now;
    t.setExpires(sid, now + this.lifetime(c.mProto[mid]!, TcpState.SynOut));
    if (this.hostCounting) t.hostAdd(inA, 1);
  }

  // ----------------------------------------------------------------------- inbound

  private inbound(b: Uint8Array, off: number, l4: number, tl: number, p: number, sport: number, dport: number, tflags: number, firstFrag: boolean, dir: number, now: number): number {
    const t = this.table;
    const c = t.cols;
    const src = u32(b, off + ip.SRC);
    const dst = u32(b, off + ip.DST);
    // For ICMP queries the identifier is the "port" on our side; the remote has none.
    const extPort = p === ICMP ? sport : dport;
    const remPort = p === ICMP ? 0 : sport;
    const cand = this.candidate(b, off);
    let sid = cand !== 0 && t.isSessionIn(cand, p, dst, extPort, src, remPort) ? cand : t.findSessionIn(p, dst, extPort, src, remPort);
    if (sid === 0) {
      sid = this.createInbound(b, off, l4, p, src, remPort, dst, extPort, tflags, firstFrag);
      if (sid < 0) return -sid;
    }
    // --- fast path: the reverse rewrite (negated deltas) from the session's hot record
    const r = c.sRec;
    const o = sid * REC;
    const tm = c.sRecF;
    const to = sid * REC_F;
    const deltas = r[o + R_DELTAS]!;
    const dIpAddr = ~(deltas >>> 16) & 0xffff;
    let dIp = dIpAddr;
    const ttlv = b[off + ip.TTL]!;
    if (dir === Direction.In && this.cfg.hopCompensation && ttlv < 255) {
      b[off + ip.TTL] = ttlv + 1;
      dIp += TTL_PLUS_ONE;
    }
    put32(b, off + ip.DST, r[o + R_IN]!);
    putCheck(b, off + ip.CHECK, applyDelta(getCheck(b, off + ip.CHECK), dIp));
    const dL4 = ~deltas & 0xffff;
    const inPort = r[o + R_PORTS]! >>> 16;
    if (p === TCP) {
      put16(b, l4 + 2, inPort);
      if (this.partial) putCheck(b, l4 + tcp.CHECK, fold(getCheck(b, l4 + tcp.CHECK) + dIpAddr));
      else putCheck(b, l4 + tcp.CHECK, applyDelta(getCheck(b, l4 + tcp.CHECK), dL4));
      const st = r[o + R_EXTP]! & 0xff;
      const ns = tcpNext(st, tflags, 1);
      if (ns !== st) t.setTcpState(sid, ns);
      tm[to + F_EXPIRES] = now + this.lifetime(TCP, ns);
    } else if (p === UDP) {
      put16(b, l4 + 2, inPort);
      if (this.partial) putCheck(b, l4 + udp.CHECK, fold(getCheck(b, l4 + udp.CHECK) + dIpAddr));
      else putCheck(b, l4 + udp.CHECK, applyDeltaUdp(getCheck(b, l4 + udp.CHECK), dL4));
    } else {
      put16(b, l4 + icmp.ID, inPort);
      putCheck(b, l4 + icmp.CHECK, applyDelta(getCheck(b, l4 + icmp.CHECK), dL4));
    }
    tm[to + F_LAST] = now;
    t.count(sid, R_PKT_IN, 1);
    t.count(sid, R_BYTE_IN, tl);
    const cn = this.counters;
    cn[packetsSlot(1, protoIndex(p))]!++;
    cn[C.BYTES + 1]! += tl;
    if (firstFrag) {
      cn[C.FRAGMENTS]!++;
      t.fragPut(src, dst, p, u16(b, off + ip.ID), 1, sid, now + this.cfg.timeouts.fragment, now);
    }
    return FORWARD;
  }

  /** Slow path: returns the new session's id, or -verdict for the packet. */
  private createInbound(b: Uint8Array, off: number, l4: number, p: number, src: number, remPort: number, dst: number, extPort: number, tflags: number, firstFrag: boolean): number {
    const t = this.table;
    const now = this.nowCache;
    const mid = t.findMappingIn(p, dst, extPort);
    if (mid === 0) {
      // Echo requests to the gateway itself are answered (not when fragmented: one reply
      // fragment alone would be worse than none).
      if (p === ICMP && b[l4] === icmp.ECHO_REQUEST && this.isExternal(dst) && !firstFrag) return -this.answerEcho(b, off, l4);
      return -this.dropped(DropReason.NoMapping);
    }
    const c = t.cols;
    if ((c.mFlags[mid]! & MF_STATIC) === 0) {
      const f = this.cfg.filtering;
      if (f !== 'endpoint' && !(f === 'address' && t.mappingHasRemote(mid, src, 0, false))) return -this.dropped(DropReason.Filtered);
    }
    if (p === TCP && (tflags & (tcp.SYN | tcp.ACKF | tcp.RST)) !== tcp.SYN) return -this.dropped(DropReason.TcpNotSyn);
    if (p === ICMP && !icmp.isQuery(b[l4]!)) return -this.dropped(DropReason.NoMapping);
    const inA = c.mIn[mid]!;
    if (this.hostLimit > 0 && t.hostSessions(inA) >= this.hostLimit) return -this.dropped(DropReason.HostLimit);
    const sid = t.newSession(mid, src, remPort);
    if (sid === 0) return -this.dropped(DropReason.TableFull);
    this.initSession(sid, mid, now);
    t.addFlags(sid, SF_INBOUND_CREATED | (this.isExternal(src) ? SF_HAIRPIN : 0));
    return sid;
  }

  /**
   * Echo requests to an external address with no mapping behind them are for the gateway
   * itself: answer them like a host would (RFC 1122 §3.2.2.6), in place.
   */
  private answerEcho(b: Uint8Array, off: number, l4: number): number {
    const src = u32(b, off + ip.SRC);
    const dst = u32(b, off + ip.DST);
    put32(b, off + ip.SRC, dst);
    put32(b, off + ip.DST, src);
    b[off + ip.TTL] = 64;
    ip.fillChecksum(b, off);
    b[l4] = icmp.ECHO_REPLY;
    // Type 8 → 0 lowers the first word by 0x0800.
    putCheck(b, l4 + icmp.CHECK, applyDelta(getCheck(b, l4 + icmp.CHECK), delta16(icmp.ECHO_REQUEST << 8, icmp.ECHO_REPLY << 8)));
    this.counters[C.ICMP_GENERATED]!++;
    return FORWARD;
  }

  // ----------------------------------------------------------------------- hairpin

  /**
   * The packet now carries our external address as its destination (RFC 4787 REQ-9): it
   * continues as inbound, here or in the partition that owns the destination port.
   */
  private hairpin(b: Uint8Array, off: number, p: number, dst: number, dport: number, now: number, tl: number): number {
    void tl;
    this.counters[C.HAIRPINNED]!++;
    const owner = inboundOwner(this.rules, this.plan, this.cfg.partitions, p, dst, dport);
    if (owner < 0) return this.dropped(DropReason.Hairpin);
    if (owner !== this.index) {
      this.counters[C.HANDOFFS]!++;
      return handoff(owner);
    }
    return this.translate(b, off, u16(b, off + ip.TOTAL_LEN), Direction.HairpinIn, now, this.partial);
  }

  // ----------------------------------------------------------------------- fragments

  /** A non-first fragment: no ports; it follows the session its first fragment found. */
  private laterFragment(b: Uint8Array, off: number, tl: number, p: number, dir: number, now: number): number {
    const t = this.table;
    const c = t.cols;
    const src = u32(b, off + ip.SRC);
    const dst = u32(b, off + ip.DST);
    const ipId = u16(b, off + ip.ID);
    const d = dir === Direction.Out ? 0 : 1;
    const sid = t.fragGet(src, dst, p, ipId, d, now);
    if (sid === 0 || !t.isLive(sid)) return this.dropped(DropReason.FragmentOrphan);
    this.counters[C.FRAGMENTS]!++;
    let dIp: number;
    if (d === 0) {
      put32(b, off + ip.SRC, t.sExt(sid));
      dIp = t.sDIp(sid);
      t.count(sid, R_BYTE_OUT, tl);
    } else {
      put32(b, off + ip.DST, t.sIn(sid));
      dIp = ~t.sDIp(sid) & 0xffff;
      t.count(sid, R_BYTE_IN, tl);
    }
    const ttlv = b[off + ip.TTL]!;
    if (dir !== Direction.HairpinIn && this.cfg.hopCompensation && ttlv < 255) {
      b[off + ip.TTL] = ttlv + 1;
      dIp += TTL_PLUS_ONE;
    }
    putCheck(b, off + ip.CHECK, applyDelta(getCheck(b, off + ip.CHECK), dIp));
    this.counters[packetsSlot(d, protoIndex(p))]!++;
    this.counters[C.BYTES + d]! += tl;
    if (d === 0 && (t.sFlags(sid) & SF_HAIRPIN) !== 0) {
      // Route by the remote port the session recorded: later fragments carry none.
      this.counters[C.HAIRPINNED]!++;
      const owner = inboundOwner(this.rules, this.plan, this.cfg.partitions, p, dst, t.sRemPort(sid));
      if (owner < 0) return this.dropped(DropReason.Hairpin);
      if (owner !== this.index) {
        this.counters[C.HANDOFFS]!++;
        return handoff(owner);
      }
      return this.laterFragment(b, off, tl, p, Direction.HairpinIn, now);
    }
    return FORWARD;
  }

  // ----------------------------------------------------------------------- ICMP errors

  /**
   * Translate an ICMP error (RFC 5508 §4.2). Inbound: the embedded packet is one we sent
   * (source = external address:port); outbound: it is one we delivered (destination = the
   * inside host). The embedded header, its transport checksum where quoted, the outer header
   * and the ICMP checksum are all rewritten. Sessions are neither created nor refreshed.
   */
  private icmpError(b: Uint8Array, off: number, l4: number, l4len: number, dir: number, now: number): number {
    const inner = l4 + icmp.EMBEDDED;
    const avail = l4len - icmp.EMBEDDED;
    if (ip.validateEmbedded(b, inner, avail) !== DropReason.None) return this.dropped(DropReason.IcmpErrorMalformed);
    if ((u16(b, inner + ip.FLAGS_FRAG) & ip.FRAG_OFFSET_MASK) !== 0) return this.dropped(DropReason.IcmpErrorMalformed);
    const ihl = (b[inner]! & 0x0f) << 2;
    const ip2 = b[inner + ip.PROTO]!;
    const il4 = inner + ihl;
    const iavail = avail - ihl;
    const isrc = u32(b, inner + ip.SRC);
    const idst = u32(b, inner + ip.DST);
    let isport: number;
    let idport: number;
    if (ip2 === TCP || ip2 === UDP) {
      isport = u16(b, il4);
      idport = u16(b, il4 + 2);
    } else if (ip2 === ICMP) {
      if (!icmp.isQuery(b[il4]!)) return this.dropped(DropReason.IcmpErrorMalformed);
      isport = u16(b, il4 + icmp.ID);
      idport = 0;
    } else {
      return this.dropped(DropReason.IcmpErrorNoSession);
    }
    const t = this.table;
    const c = t.cols;
    const osrc = u32(b, off + ip.SRC);
    const odst = u32(b, off + ip.DST);
    if (dir === Direction.Out) {
      // Embedded: remote → inside host (a packet we delivered). Find the inside host's flow.
      // An ICMP query quoted in an error is the inside host's own request (source side).
      const local = ip2 === ICMP ? isrc : idst;
      const localPort = ip2 === ICMP ? isport : idport;
      const rem = ip2 === ICMP ? idst : isrc;
      const remPort = ip2 === ICMP ? 0 : isport;
      const sid = t.findSessionOut(ip2, local, localPort, rem, remPort);
      const mid = sid !== 0 ? t.sMap(sid) : t.findMappingOut(ip2, local, localPort);
      if (mid === 0) return this.dropped(DropReason.IcmpErrorNoSession);
      const ext = c.mExt[mid]!;
      this.rewriteEmbedded(b, inner, il4, iavail, ip2, ip2 === ICMP, local, ext, localPort, c.mExtPort[mid]!);
      // Outer: the source (an inside host or router) becomes the external address.
      this.finishError(b, off, l4, l4len, ip.SRC, osrc, ext, this.cfg.hopCompensation, 0);
      // About a hairpinned packet: it goes on in to the other inside host, routed by the quoted
      // packet's source side (that host's external endpoint).
      if (this.isExternal(odst)) return this.hairpinError(b, off, ip2, isrc, isport, now);
      return FORWARD;
    }
    // Inbound: embedded is a packet we sent (source = our external address:port), and the
    // error is addressed to that address.
    if (odst !== isrc) return this.dropped(DropReason.IcmpErrorMalformed);
    const sid = t.findSessionIn(ip2, isrc, isport, idst, ip2 === ICMP ? 0 : idport);
    const mid = sid !== 0 ? t.sMap(sid) : t.findMappingIn(ip2, isrc, isport);
    if (mid === 0) return this.dropped(DropReason.IcmpErrorNoSession);
    const inA = c.mIn[mid]!;
    this.rewriteEmbedded(b, inner, il4, iavail, ip2, true, isrc, inA, isport, c.mInPort[mid]!);
    this.finishError(b, off, l4, l4len, ip.DST, odst, inA, dir === Direction.In && this.cfg.hopCompensation, 1);
    return FORWARD;
  }

  /**
   * The outer half of an ICMP error's translation: the outer source or destination address
   * (`field`) from oldA to newA with the header checksum, TTL + 1 when compensating, the ICMP
   * checksum over the rewritten message, and the counters for direction `d`.
   */
  private finishError(b: Uint8Array, off: number, l4: number, l4len: number, field: number, oldA: number, newA: number, compensate: boolean, d: number): void {
    let dIp = delta32(oldA, newA);
    put32(b, off + field, newA);
    const ttlv = b[off + ip.TTL]!;
    if (compensate && ttlv < 255) {
      b[off + ip.TTL] = ttlv + 1;
      dIp += TTL_PLUS_ONE;
    }
    putCheck(b, off + ip.CHECK, applyDelta(getCheck(b, off + ip.CHECK), dIp));
    icmp.fillChecksum(b, l4, l4len);
    this.counters[C.ICMP_ERRORS_TRANSLATED]!++;
    this.counters[packetsSlot(d, 2)]!++;
    this.counters[C.BYTES + d]! += l4len + ((b[off]! & 0x0f) << 2);
  }

  /**
   * Rewrite the embedded packet's source (srcSide) or destination address and port/identifier,
   * fixing its header checksum and its transport checksum where the quote includes it.
   */
  private rewriteEmbedded(b: Uint8Array, inner: number, il4: number, iavail: number, p: number, srcSide: boolean, oldA: number, newA: number, oldP: number, newP: number): void {
    const dA = delta32(oldA, newA);
    put32(b, inner + (srcSide ? ip.SRC : ip.DST), newA);
    putCheck(b, inner + ip.CHECK, applyDelta(getCheck(b, inner + ip.CHECK), dA));
    const dP = delta16(oldP, newP);
    if (p === ICMP) {
      put16(b, il4 + icmp.ID, newP);
      if (iavail >= 4) putCheck(b, il4 + icmp.CHECK, applyDelta(getCheck(b, il4 + icmp.CHECK), dP));
      return;
    }
    put16(b, il4 + (srcSide ? 0 : 2), newP);
    if (p === UDP) putCheck(b, il4 + udp.CHECK, applyDeltaUdp(getCheck(b, il4 + udp.CHECK), dA + dP));
    else if (iavail >= tcp.CHECK + 2) putCheck(b, il4 + tcp.CHECK, applyDelta(getCheck(b, il4 + tcp.CHECK), dA + dP));
  }

  private hairpinError(b: Uint8Array, off: number, p: number, ext: number, port: number, now: number): number {
    this.counters[C.HAIRPINNED]!++;
    const owner = inboundOwner(this.rules, this.plan, this.cfg.partitions, p, ext, port);
    if (owner < 0) return this.dropped(DropReason.Hairpin);
    if (owner !== this.index) {
      this.counters[C.HANDOFFS]!++;
      return handoff(owner);
    }
    return this.translate(b, off, u16(b, off + ip.TOTAL_LEN), Direction.HairpinIn, now, this.partial);
  }

  /**
   * Build "destination unreachable" (code) for the packet at b[off..] into `reply`, from the
   * first external address back to the packet's source. Returns false if it cannot.
   */
  private buildUnreachable(b: Uint8Array, off: number, code: number): boolean {
    const hl = (b[off]! & 0x0f) << 2;
    const tl = u16(b, off + ip.TOTAL_LEN);
    const quote = Math.min(tl, hl + 8);
    const out = this.reply;
    const total = 20 + 8 + quote;
    if (total > out.length) return false;
    out.fill(0, 0, total);
    out[0] = 0x45;
    put16(out, 2, total);
    out[8] = 64;
    out[9] = ICMP;
    put32(out, 12, this.cfg.externals[0]!);
    put32(out, 16, u32(b, off + ip.SRC));
    ip.fillChecksum(out, 0);
    out[20] = icmp.DEST_UNREACH;
    out[21] = code;
    out.set(b.subarray(off, off + quote), 28);
    icmp.fillChecksum(out, 20, 8 + quote);
    this.replyLen = total;
    return true;
  }

  // ======================================================================= table upkeep

  /** Free a mapping with no sessions left and release its port. */
  private releaseMapping(mid: number, now: number): void {
    const c = this.table.cols;
    const ei = c.mExtIdx[mid]!;
    this.ports.release(ei, c.mProto[mid]!, c.mExtPort[mid]!, now);
    this.counters[C.PORTS_IN_USE + ei]!--;
    if ((c.mFlags[mid]! & MF_COUNTED) !== 0) this.table.hostAdd(c.mIn[mid]!, 0, -1);
    this.table.freeMapping(mid);
  }

  /** Free one session (and its mapping if that was the last). */
  removeSession(sid: number, now: number): void {
    const t = this.table;
    if (!t.isLive(sid)) return;
    const inA = t.sIn(sid);
    const mid = t.freeSession(sid);
    if (this.hostCounting) t.hostAdd(inA, -1);
    if (mid !== 0) this.releaseMapping(mid, now);
  }

  /** Owner's check of a nominated session: free it if it really has expired. */
  confirmExpired(sid: number, now: number): boolean {
    const t = this.table;
    if (!t.isLive(sid) || t.sExpires(sid) > now) return false;
    const p = t.sProto(sid);
    this.removeSession(sid, now);
    this.counters[C.SESSIONS_EXPIRED + protoIndex(p)]!++;
    return true;
  }

  /**
   * Incremental expiry: examine at most `budget` session slots from where the last call
   * stopped, freeing those past their deadline. Returns how many were freed.
   */
  expire(now: number, budget = 4096): number {
    const t = this.table;
    const high = t.sessionHigh;
    let cur = t.expireCursor;
    let freed = 0;
    const n = Math.min(budget, high - 1);
    for (let k = 0; k < n; k++) {
      if (cur <= 0 || cur >= high) cur = 1;
      if (t.isLive(cur) && t.sExpires(cur) <= now && this.confirmExpired(cur, now)) freed++;
      cur++;
    }
    t.expireCursor = cur;
    return freed;
  }

  /**
   * Remove sessions matching a predicate (flush by protocol, inside host, rule change).
   * Static forward mappings stay. Returns the number removed.
   */
  flush(now: number, match: (sid: number) => boolean): number {
    const t = this.table;
    let n = 0;
    for (let sid = 1; sid < t.sessionHigh; sid++) {
      if (t.isLive(sid) && match(sid)) {
        this.removeSession(sid, now);
        n++;
      }
    }
    this.counters[C.SESSIONS_FLUSHED]! += n;
    if (n > 0) t.fragClear();
    return n;
  }

  // ======================================================================= rules

  /**
   * Install a new rule set (reload): static mappings follow the forwards this partition
   * owns; sessions that no rule allows any more are flushed; everything else keeps running.
   * Returns the number of sessions flushed.
   */
  applyRules(rules: RuleSet, now: number, externals?: readonly number[]): number {
    const old = this.rules;
    this.rules = rules;
    if (externals) {
      this.cfg = { ...this.cfg, externals: [...externals] };
      this.externalSet = Uint32Array.from(externals);
    }
    const removed = this.syncStatics(old, now);
    const t = this.table;
    const c = t.cols;
    return removed + this.flush(now, (sid) => {
      const mid = t.sMap(sid);
      if ((c.mFlags[mid]! & MF_STATIC) !== 0) return false;
      if (!this.isExternal(t.sExt(sid))) return true;
      const ri = rules.matchOutbound(t.sProto(sid), t.sIn(sid), t.sInPort(sid), t.sRem(sid), t.sRemPort(sid));
      return ri < 0 || rules.actionOf(ri) !== RuleAction.Masquerade;
    });
  }

  /**
   * Create the static mappings for forwards owned here; remove those no longer configured and
   * any dynamic mapping holding a forwarded port. Returns the sessions removed. A static
   * mapping that does not fit in the mapping table counts a table_full drop.
   */
  syncStatics(old: RuleSet | null, now: number): number {
    let removed = 0;
    const t = this.table;
    const c = t.cols;
    const P = this.cfg.partitions;
    const wanted = new Set<string>();
    const rs = this.rules;
    for (let i = 0; i < rs.rules.length; i++) {
      const r = rs.rules[i]!;
      if (r.kind !== 'forward') continue;
      const p = r.proto === 'tcp' ? TCP : UDP;
      const ei = this.extIndex(r.extAddr);
      if (ei < 0) continue;
      for (let port = r.extPorts.lo; port <= r.extPorts.hi; port++) {
        const inP = r.inPorts.lo + (port - r.extPorts.lo);
        const existing = t.findMappingIn(p, r.extAddr, port);
        const owner = insidePartition(p, r.inAddr, inP, P) === this.index;
        // A dynamic mapping allocated this port before the forward existed: it must go, in
        // whichever partition holds it, or two inside endpoints would share the port.
        if (existing !== 0 && (c.mFlags[existing]! & MF_STATIC) === 0 && !(owner && c.mIn[existing] === r.inAddr && c.mInPort[existing] === inP)) {
          removed += this.dropMapping(existing, now);
        }
        this.ports.reserve(ei, p, port);
        if (!owner) continue;
        wanted.add(`${p}/${r.extAddr}/${port}`);
        const kept = t.findMappingIn(p, r.extAddr, port);
        if (kept !== 0 && c.mIn[kept] === r.inAddr && c.mInPort[kept] === inP) {
          c.mFlags[kept]! |= MF_STATIC;
          continue;
        }
        if (kept !== 0) removed += this.dropMapping(kept, now);
        const clash = t.findMappingOut(p, r.inAddr, inP);
        if (clash !== 0) removed += this.dropMapping(clash, now);
        if (t.newMapping(p, r.inAddr, inP, ei, r.extAddr, port, MF_STATIC) !== 0) this.counters[C.PORTS_IN_USE + ei]!++;
        else t.drop(DropReason.TableFull);
      }
    }
    // Remove statics that are no longer wanted (walk all mappings).
    for (let mid = 1; mid < t.mappingHigh; mid++) {
      if (!t.isMappingLive(mid) || (c.mFlags[mid]! & MF_STATIC) === 0) continue;
      if (!wanted.has(`${c.mProto[mid]}/${c.mExt[mid]}/${c.mExtPort[mid]}`)) {
        const ei = c.mExtIdx[mid]!;
        const p = c.mProto[mid]!;
        const port = c.mExtPort[mid]!;
        removed += this.dropMapping(mid, now);
        this.ports.unreserve(ei, p, port, now);
      }
    }
    void old;
    return removed;
  }

  /** Remove a mapping and all its sessions now; returns the sessions removed. */
  private dropMapping(mid: number, now: number): number {
    const t = this.table;
    const c = t.cols;
    c.mFlags[mid]! &= ~MF_STATIC;
    let s = c.mHead[mid]!;
    if (s === 0) {
      this.releaseMapping(mid, now);
      return 0;
    }
    let n = 0;
    while (s !== 0) {
      const next = c.sNext[s]!;
      this.removeSession(s, now);
      this.counters[C.SESSIONS_FLUSHED]!++;
      n++;
      s = next;
    }
    return n;
  }
}
