/**
 * translate/fastpath.ts — the per-packet work once a session exists, both ways: rewrite the
 * address and port from the session's hot record, apply its precomputed checksum deltas
 * (RFC 1624), step the TCP state, refresh the timer, count. A miss goes to the slow path
 * (session.ts) once and comes back here with the new session.
 *
 * Contract: called by Partition.translate() only, after the IPv4 header and the transport
 * header's bounds were validated there; `sport`/`dport` are the packet's (for ICMP queries:
 * the identifier and 0). No allocation, no calls beyond the table's inlined accessors and the
 * one IPv4 header step (header.ts) — except for a session a protocol helper watches (flag
 * SF_ALG: alg/engine.ts sees the segment first and may resize it, within `pt.cap`) or a
 * helper's related flow (SF_ALG_DATA: its control session's timer follows). Returns a verdict.
 *
 * RFC behaviour: RFC 4787 REQ-1 / RFC 5382 REQ-1 (endpoint-independent mapping: the session
 * holds its mapping's rewrite), RFC 4787 REQ-6 (UDP timers refreshed by outbound traffic only),
 * RFC 7857 §2.1-2.2 (TCP opening and closing timers; an RST never lengthens a deadline), RFC 5961 §3-4 in a NAT's terms (an inbound RST or
 * FIN counts only when its sequence number lies within the window the inside host last
 * advertised around its last acknowledgement; otherwise it is dropped, counted
 * `tcp_out_of_window`, and the session keeps its state and timer), RFC 4787 REQ-14 (a first fragment is remembered so
 * later fragments follow it), RFC 4787 REQ-9 (an outbound packet to our own external address
 * continues as inbound: hairpin.ts).
 */
import { C, packetsSlot, bytesSlot, protoIndex } from '../counters.js';
import { SF_HAIRPIN, SF_UNANSWERED, SF_TRACKED, SF_ALG, SF_ALG_DATA, type SessionTable } from '../table.js';
import { DropReason } from '../drop.js';
import { AlgDir } from '../alg/types.js';
import { tcpStep } from '../tcpstate.js';
import { fold, applyDelta, applyDeltaUdp, getCheck, putCheck } from '../wire/checksum.js';
import { u16, u32, put16, put32 } from '../wire/bytes.js';
import * as ip from '../wire/ipv4.js';
import * as tcp from '../wire/tcp.js';
import * as udp from '../wire/udp.js';
import * as icmp from '../wire/icmp.js';
import { Direction, FORWARD } from '../verdict.js';
import type { Partition } from '../translate.js';
import { finishIpHeader } from './header.js';
import { createOutbound, createInbound } from './session.js';
import { hairpinRoute, HERE } from './hairpin.js';
import { candidate } from './prefetch.js';
import { IpProto } from '../wire/ipv4.js';
import { TcpFlag } from '../wire/tcp.js';

/** Inside → outside: the source becomes the session's external address and port. */
export function outbound(pt: Partition, b: Uint8Array, off: number, l4: number, tl0: number, p: number, sport: number, dport: number, tflags: number, firstFrag: boolean, now: number): number {
  const t = pt.table;
  const src = u32(b, off + ip.SRC);
  const dst = u32(b, off + ip.DST);
  const cand = candidate(pt, b, off);
  // A TCP SYN without ACK nearly always opens a new connection: the slow path's first two
  // lookups (the host's count entry, the mapping index) start loading now, overlapping the
  // session lookup's miss instead of following it.
  if (p === IpProto.Tcp && (tflags & (TcpFlag.Syn | TcpFlag.Ack)) === TcpFlag.Syn) synHint(pt, src, sport);
  let sid = cand !== 0 && t.isSessionOut(cand, p, src, sport, dst, dport) ? cand : t.findSessionOut(p, src, sport, dst, dport);
  if (sid === 0) {
    sid = createOutbound(pt, b, off, l4, p, src, sport, dst, dport, tflags, firstFrag, now);
    if (sid < 0) return -sid;
  }
  // --- fast path: precomputed rewrite from the session's hot record
  const sf = t.sFlags(sid);
  // A protocol helper sees the segment before the rewrite and may resize it (alg/engine.ts).
  const tl = (sf & SF_ALG) !== 0 && !firstFrag ? pt.alg.segment(b, off, l4, tl0, sid, AlgDir.Out, pt.cap, pt.partial, now) : tl0;
  const deltas = t.sDeltas(sid);
  const dIpAddr = deltas >>> 16;
  put32(b, off + ip.SRC, t.sExt(sid));
  finishIpHeader(b, off, dIpAddr, pt.cfg.hopCompensation);
  const dL4 = deltas & 0xffff;
  const extPort = t.sExtPort(sid);
  if (p === IpProto.Tcp) {
    put16(b, l4, extPort);
    if (pt.partial) putCheck(b, l4 + tcp.CHECK, fold(getCheck(b, l4 + tcp.CHECK) + dIpAddr));
    else putCheck(b, l4 + tcp.CHECK, applyDelta(getCheck(b, l4 + tcp.CHECK), dL4));
    const st = t.sState(sid);
    const ns = tcpStep(st, tflags, 0);
    if (ns !== st) t.setTcpState(sid, ns);
    t.setExpires(sid, pt.tcpDeadline(tflags, ns, t.sExpires(sid), now));
    if ((tflags & TcpFlag.Syn) !== 0) trackSyn(t, sid, b, l4, tflags);
    else if ((tflags & TcpFlag.Ack) !== 0) trackAck(t, sid, b, l4);
    if ((sf & SF_ALG_DATA) !== 0) pt.alg.refreshControl(sid);
  } else if (p === IpProto.Udp) {
    put16(b, l4, extPort);
    if (pt.partial) putCheck(b, l4 + udp.CHECK, fold(getCheck(b, l4 + udp.CHECK) + dIpAddr));
    else putCheck(b, l4 + udp.CHECK, applyDeltaUdp(getCheck(b, l4 + udp.CHECK), dL4));
    t.setExpires(sid, now + pt.cfg.timeouts.udp);
    if ((sf & SF_ALG_DATA) !== 0) pt.alg.refreshControl(sid);
  } else {
    put16(b, l4 + icmp.ID, extPort);
    putCheck(b, l4 + icmp.CHECK, applyDelta(getCheck(b, l4 + icmp.CHECK), dL4));
    if (icmp.isQueryRequest(b[l4]!)) t.setExpires(sid, now + pt.cfg.timeouts.icmp);
  }
  if ((sf & SF_UNANSWERED) !== 0) {
    // The inside host answers a session an inbound packet made: the protocol's timers from now.
    t.clearFlags(sid, SF_UNANSWERED);
    if (p === IpProto.Icmp) t.setExpires(sid, now + pt.cfg.timeouts.icmp);
  }
  t.setLast(sid, now);
  t.countPacket(sid, 0, tl);
  const cn = pt.counters;
  const pi = protoIndex(p);
  cn[packetsSlot(0, pi)]!++;
  cn[bytesSlot(0, pi)]! += tl;
  if (firstFrag) {
    cn[C.FRAGMENTS]!++;
    t.fragPut(src, dst, p, u16(b, off + ip.ID), 0, sid, now + pt.cfg.timeouts.fragment, now);
  }
  if ((sf & SF_HAIRPIN) !== 0) {
    const v = hairpinRoute(pt, p, dst, dport);
    return v !== HERE ? v : pt.translate(b, off, u16(b, off + ip.TOTAL_LEN), Direction.HairpinIn, now, pt.partial, pt.cap);
  }
  return FORWARD;
}

/** The load hints for an outbound SYN (see outbound): changes no state. */
function synHint(pt: Partition, src: number, sport: number): void {
  const h = pt.hosts;
  pt.hint ^= pt.table.touchMappingOut(IpProto.Tcp, src, sport) ^ (h !== null ? h.touch(src) : 0);
}

/**
 * Outside → inside (and the inbound half of a hairpin, `dir` HairpinIn: no TTL change): the
 * destination becomes the session's inside address and port (the negated deltas).
 */
export function inbound(pt: Partition, b: Uint8Array, off: number, l4: number, tl0: number, p: number, sport: number, dport: number, tflags: number, firstFrag: boolean, dir: number, now: number): number {
  const t = pt.table;
  const src = u32(b, off + ip.SRC);
  const dst = u32(b, off + ip.DST);
  // For ICMP queries the identifier is the "port" on our side; the remote has none.
  const extPort = p === IpProto.Icmp ? sport : dport;
  const remPort = p === IpProto.Icmp ? 0 : sport;
  const cand = candidate(pt, b, off);
  let sid = cand !== 0 && t.isSessionIn(cand, p, dst, extPort, src, remPort) ? cand : t.findSessionIn(p, dst, extPort, src, remPort);
  if (sid === 0) {
    sid = createInbound(pt, b, off, l4, p, src, remPort, dst, extPort, tflags, firstFrag, dir);
    if (sid < 0) return -sid;
  }
  // --- fast path: the reverse rewrite (negated deltas) from the session's hot record
  const sf = t.sFlags(sid);
  // A hairpin session's remote is an inside host behind our own address: from outside, that
  // source is forged.
  if (dir === Direction.In && (sf & SF_HAIRPIN) !== 0) return pt.dropped(DropReason.Martian);
  if (p === IpProto.Tcp && (tflags & (TcpFlag.Rst | TcpFlag.Fin)) !== 0 && (tflags & TcpFlag.Syn) === 0 && (sf & SF_TRACKED) !== 0 && !inWindow(t, sid, tcp.seq(b, l4))) {
    return pt.dropped(DropReason.TcpOutOfWindow);
  }
  // The helper also undoes the sequence deltas in acknowledgements (alg/engine.ts).
  const tl = (sf & SF_ALG) !== 0 && !firstFrag ? pt.alg.segment(b, off, l4, tl0, sid, AlgDir.In, pt.cap, pt.partial, now) : tl0;
  const deltas = t.sDeltas(sid);
  const dIpAddr = ~(deltas >>> 16) & 0xffff;
  put32(b, off + ip.DST, t.sIn(sid));
  finishIpHeader(b, off, dIpAddr, dir === Direction.In && pt.cfg.hopCompensation);
  const dL4 = ~deltas & 0xffff;
  const inPort = t.sInPort(sid);
  if (p === IpProto.Tcp) {
    put16(b, l4 + 2, inPort);
    if (pt.partial) putCheck(b, l4 + tcp.CHECK, fold(getCheck(b, l4 + tcp.CHECK) + dIpAddr));
    else putCheck(b, l4 + tcp.CHECK, applyDelta(getCheck(b, l4 + tcp.CHECK), dL4));
    const st = t.sState(sid);
    const ns = tcpStep(st, tflags, 1);
    if (ns !== st) t.setTcpState(sid, ns);
    // Unanswered (inbound-made, SF_UNANSWERED): inbound segments never extend its short timer.
    const old = t.sExpires(sid);
    const e = pt.tcpDeadline(tflags, ns, old, now);
    t.setExpires(sid, (sf & SF_UNANSWERED) === 0 ? e : Math.min(e, old));
    if ((sf & SF_ALG_DATA) !== 0) pt.alg.refreshControl(sid);
  } else if (p === IpProto.Udp) {
    put16(b, l4 + 2, inPort);
    if (pt.partial) putCheck(b, l4 + udp.CHECK, fold(getCheck(b, l4 + udp.CHECK) + dIpAddr));
    else putCheck(b, l4 + udp.CHECK, applyDeltaUdp(getCheck(b, l4 + udp.CHECK), dL4));
  } else {
    put16(b, l4 + icmp.ID, inPort);
    putCheck(b, l4 + icmp.CHECK, applyDelta(getCheck(b, l4 + icmp.CHECK), dL4));
  }
  t.setLast(sid, now);
  t.countPacket(sid, 1, tl);
  const cn = pt.counters;
  const pi = protoIndex(p);
  cn[packetsSlot(1, pi)]!++;
  cn[bytesSlot(1, pi)]! += tl;
  if (firstFrag) {
    cn[C.FRAGMENTS]!++;
    t.fragPut(src, dst, p, u16(b, off + ip.ID), 1, sid, now + pt.cfg.timeouts.fragment, now);
  }
  return FORWARD;
}

/**
 * What the inside host tells the remote is remembered for the RFC 5961 check (inWindow): its
 * acknowledgement number (the next sequence number it expects) and its receive window in
 * bytes, scaled by the shift its SYN offered (RFC 7323 §2.2). Every ACK segment records them
 * (outbound, in line: one more cache line per segment); a SYN also records its shift, and its
 * own window is never scaled (trackSyn, out of line: once per connection).
 */
function trackSyn(t: SessionTable, sid: number, b: Uint8Array, l4: number, tflags: number): void {
  t.setWscale(sid, tcp.windowScale(b, l4));
  if ((tflags & TcpFlag.Ack) !== 0) t.track(sid, tcp.ack(b, l4), tcp.window(b, l4));
}

/**
 * An ACK's acknowledgement number and its window in bytes: the field shifted by the session's
 * scale (4 bits, ≤ 15), so window << shift < 2^32, exact once made unsigned (a shift, not
 * `2 ** shift`, which V8 computes as a floating-point pow call), capped at 2^30 (RFC 7323
 * §2.3's largest window).
 */
function trackAck(t: SessionTable, sid: number, b: Uint8Array, l4: number): void {
  t.track(sid, tcp.ack(b, l4), Math.min((tcp.window(b, l4) << t.sWscale(sid)) >>> 0, 0x40000000));
}

/**
 * An inbound RST or FIN is plausible when its sequence number is within one window of the
 * inside host's last acknowledgement, either side: above it by at most the window (data the
 * remote may send), below it by as much (an acknowledgement not yet arrived there, a rolled
 * back send sequence after a retransmission timeout). The window counts as at least 64 KiB,
 * so a zero or tiny window never refuses a genuine segment. A blind forger must hit that range
 * out of 2^32 (RFC 5961 §1: the attack is guessing the window).
 */
function inWindow(t: SessionTable, sid: number, seq: number): boolean {
  const w = Math.max(t.sWinOut(sid), 65535);
  const d = (seq - t.sAckOut(sid)) | 0;
  return d >= -w && d <= w;
}
