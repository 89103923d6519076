/**
 * translate/session.ts — the slow path: a packet with no session. Consults the rules, the
 * filtering policy and the per-host limits, allocates the external port, inserts the mapping
 * and the session and precomputes the fast path's deltas; or answers an echo request to the
 * gateway itself. Runs once per new flow.
 *
 * Contract: `createOutbound`/`createInbound` return the new session's id (> 0), or -verdict
 * for the packet (a counted drop, Pass, or a Reply built into the partition's reply buffer).
 * Nothing is left half-made: a failed step releases what earlier steps took.
 *
 * RFC behaviour: RFC 4787 REQ-1 / RFC 5382 REQ-1 (endpoint-independent mapping), REQ-2 (paired
 * pooling: an inside host always gets the same external address), REQ-8 (filtering endpoint /
 * address / address-port dependent; never applied to a hairpinned packet, which comes from an
 * inside host), RFC 5382 REQ-2 (simultaneous open) and REQ-4 (unsolicited
 * inbound SYNs dropped silently, counted), RFC 5508 REQ-1 (ICMP query identifiers mapped like
 * ports), RFC 6888 REQ-4 (per-inside-host limits) and REQ-11 (no eviction on exhaustion),
 * RFC 6888 REQ-6 (`accept` rules pass untranslated), RFC 1122 §3.2.2.6 (echo replies),
 * RFC 5508 REQ-8 (a new outbound flow refused for a resource or policy reason is answered with
 * ICMP 3/13, rate-limited), RFC 6056 §3.3.4 (the port allocation sees the destination).
 */
import { DropReason } from '../drop.js';
import { C } from '../counters.js';
import { RuleAction } from '../rules.js';
import { MF_STATIC, MF_COUNTED, MF_EXPECT, MF_ALG_DATA, SF_INBOUND_CREATED, SF_HAIRPIN, SF_UNANSWERED } from '../table.js';
import { TcpState } from '../tcpstate.js';
import { hash3, hash5 } from '../hash.js';
import { delta16, delta32, fold, applyDelta, getCheck, putCheck } from '../wire/checksum.js';
import { u32, put32 } from '../wire/bytes.js';
import * as ip from '../wire/ipv4.js';
import * as icmp from '../wire/icmp.js';
import { Direction, FORWARD, PASS, reply } from '../verdict.js';
import type { Partition } from '../translate.js';
import { buildUnreachable, icmpErrorAllowed } from './icmperror.js';
import { releaseMapping } from './upkeep.js';
import { IpProto } from '../wire/ipv4.js';
import { TcpFlag } from '../wire/tcp.js';

/** Slow path outbound: returns the new session's id, or -verdict for the packet. */
export function createOutbound(pt: Partition, b: Uint8Array, off: number, l4: number, p: number, src: number, sport: number, dst: number, dport: number, tflags: number, firstFrag: boolean, now: number): number {
  const ri = pt.rules.matchOutbound(p, src, sport, dst, dport);
  if (ri < 0) return -pt.dropped(DropReason.NoRule);
  if (pt.rules.actionOf(ri) === RuleAction.Accept) {
    pt.counters[C.PASSED]!++;
    return -PASS;
  }
  if (pt.isExternal(src)) return -pt.dropped(DropReason.Martian);
  if (p === IpProto.Tcp && (tflags & (TcpFlag.Syn | TcpFlag.Ack | TcpFlag.Rst)) !== TcpFlag.Syn) return -pt.dropped(DropReason.TcpNotSyn);
  if (p === IpProto.Icmp && !icmp.isQueryRequest(b[l4]!)) return -pt.dropped(DropReason.NoMapping);
  // An inside host pinging our external address: the gateway answers, no session needed.
  if (p === IpProto.Icmp && b[l4] === icmp.ECHO_REQUEST && pt.isExternal(dst)) {
    if (firstFrag) return -pt.dropped(DropReason.NoMapping);
    return -answerEcho(pt, b, off, l4);
  }
  const t = pt.table;
  const hosts = pt.hosts;
  // The host's count entry is needed below, after the mapping lookup: both are cache misses in
  // large tables, so its load starts now and the two overlap (hosts.ts touch).
  if (hosts !== null) pt.hint ^= hosts.touch(src);
  let mid = t.findMappingOut(p, src, sport);
  // Paired pooling (RFC 4787 REQ-2): the host's external address, also the source of a refusal.
  const ei = mid !== 0 ? t.mExtIdx(mid) : pt.cfg.externals.length === 1 ? 0 : hash3(0, src, 0) % pt.cfg.externals.length;
  // RFC 6888 REQ-4/5: the host's session, and its port for a new mapping, are taken from the
  // shared counts before anything is made (exact across partitions); every failure below
  // gives them back.
  if (hosts !== null && !hosts.reserve(src, 1, mid === 0 ? 1 : 0, pt.index)) return -refuse(pt, b, off, DropReason.HostLimit, ei, now);
  let fresh = false;
  let hSessIn = -1;
  if (mid === 0) {
    const port = pt.ports.allocate(ei, p, src, sport, now, dst, dport);
    if (port < 0) {
      hosts?.add(src, -1, -1, pt.index);
      pt.counters[C.PORT_ALLOC_FAILURES]!++;
      return -refuse(pt, b, off, DropReason.PortExhausted, ei, now);
    }
    // The two inbound index slots newMapping and newSession insert into: their loads start
    // together here rather than one after the other (table.ts touchInbound).
    const ext = pt.cfg.externals[ei]!;
    hSessIn = hash5(p, ext, port, dst, dport);
    const hMapIn = hash3(p, ext, port);
    pt.hint ^= t.touchInbound(hMapIn, hSessIn);
    mid = t.newMapping(p, src, sport, ei, ext, port, 0, hMapIn);
    if (mid === 0) {
      pt.ports.release(ei, p, port, now);
      hosts?.add(src, -1, -1, pt.index);
      return -refuse(pt, b, off, DropReason.TableFull, ei, now);
    }
    pt.counters[C.PORTS_IN_USE + ei]!++;
    // The mapping holds the port it was counted for (releaseMapping gives it back).
    if (hosts !== null) t.addMapFlags(mid, MF_COUNTED);
    fresh = true;
  }
  const sid = t.newSession(mid, dst, dport, hSessIn);
  if (sid === 0) {
    if (fresh) releaseMapping(pt, mid, now);
    hosts?.add(src, -1, 0, pt.index);
    return -refuse(pt, b, off, DropReason.TableFull, ei, now);
  }
  initSession(pt, sid, mid, now);
  if (pt.isExternal(dst)) t.addFlags(sid, SF_HAIRPIN);
  // A protocol helper for a client inside: chosen by the server's port (alg/registry.ts).
  const alg = pt.alg.select(p, dport);
  if (alg !== 0) pt.alg.attach(sid, alg);
  return sid;
}

/**
 * Refuse a new outbound flow for a resource or policy reason (port exhaustion, a per-host
 * limit, a full table): RFC 5508 REQ-8 ("SHOULD send an ICMP destination unreachable message,
 * with a code of 13 ... to the sender") and RFC 6888 REQ-11 allow telling the inside host at
 * once instead of letting it retry into silence. The error comes from the external address
 * the flow would have used (index `ei`), rate-limited (icmperror.ts), unless turned off
 * (`icmpOnExhaustion`). Returns the verdict: a Reply, or a plain counted drop.
 */
function refuse(pt: Partition, b: Uint8Array, off: number, reason: number, ei: number, now: number): number {
  if (pt.cfg.icmpOnExhaustion && icmpErrorAllowed(pt, now) && buildUnreachable(pt, b, off, icmp.CODE_ADMIN_PROHIBITED, pt.cfg.externals[ei]!)) {
    pt.counters[C.DROPS + reason]!++;
    pt.counters[C.ICMP_GENERATED]!++;
    return reply(reason);
  }
  return pt.dropped(reason);
}

/** Slow path inbound: returns the new session's id, or -verdict for the packet. */
export function createInbound(pt: Partition, b: Uint8Array, off: number, l4: number, p: number, src: number, remPort: number, dst: number, extPort: number, tflags: number, firstFrag: boolean, dir: number): number {
  const t = pt.table;
  const now = pt.nowCache;
  // A hairpinned packet (translated outbound here, so its source is one of our external
  // addresses) comes from an inside host; anything else from outside claiming such a source is
  // forged.
  const hairpinned = dir === Direction.HairpinIn;
  if (!hairpinned && pt.isExternal(src)) return -pt.dropped(DropReason.Martian);
  const mid = t.findMappingIn(p, dst, extPort);
  if (mid === 0) {
    // Echo requests to the gateway itself are answered (not when fragmented: one reply
    // fragment alone would be worse than none).
    if (p === IpProto.Icmp && b[l4] === icmp.ECHO_REQUEST && pt.isExternal(dst) && !firstFrag) return -answerEcho(pt, b, off, l4);
    return -pt.dropped(DropReason.NoMapping);
  }
  const mf = t.mFlags(mid);
  // A helper's expectation admits its one flow from its one remote, whatever the filtering;
  // a helper's data mapping admits nothing else (alg/engine.ts).
  const expected = (mf & (MF_EXPECT | MF_ALG_DATA)) !== 0 ? pt.alg.admit(mid, src, now) : -1;
  if (expected < 0 && (mf & MF_ALG_DATA) !== 0) return -pt.dropped(DropReason.Filtered);
  // Filtering protects inside hosts from outside; a hairpinned packet comes from an inside
  // host, so it reaches any mapping under every filtering mode (one-way hairpin: A reaches
  // B's mapping that B only ever used toward an outside server).
  if (expected < 0 && (mf & MF_STATIC) === 0 && !hairpinned) {
    const f = pt.cfg.filtering;
    if (f !== 'endpoint' && !(f === 'address' && t.mappingHasRemote(mid, src, 0, false))) return -pt.dropped(DropReason.Filtered);
  }
  if (p === IpProto.Tcp && (tflags & (TcpFlag.Syn | TcpFlag.Ack | TcpFlag.Rst)) !== TcpFlag.Syn) return -pt.dropped(DropReason.TcpNotSyn);
  if (p === IpProto.Icmp && !icmp.isQuery(b[l4]!)) return -pt.dropped(DropReason.NoMapping);
  const inA = t.mIn(mid);
  // Sessions made by inbound packets count against the inside host's limit too.
  const hosts = pt.hosts;
  if (hosts !== null && !hosts.reserve(inA, 1, 0, pt.index)) return -pt.dropped(DropReason.HostLimit);
  const sid = t.newSession(mid, src, remPort);
  if (sid === 0) {
    hosts?.add(inA, -1, 0, pt.index);
    return -pt.dropped(DropReason.TableFull);
  }
  initSession(pt, sid, mid, now);
  // RFC 4787 REQ-6: until the inside host answers, a short timer that inbound packets do
  // not extend (fastpath.ts); the first outbound packet gives it the protocol's timers.
  t.addFlags(sid, SF_INBOUND_CREATED | SF_UNANSWERED | (hairpinned ? SF_HAIRPIN : 0));
  t.setExpires(sid, Math.min(t.sExpires(sid), now + pt.cfg.timeouts.unanswered));
  if (expected >= 0) pt.alg.commit(expected, sid);
  else if ((mf & MF_STATIC) !== 0) {
    // A server inside behind a port forward: a helper chosen by its (inside) port.
    const alg = pt.alg.select(p, t.mInPort(mid));
    if (alg !== 0) pt.alg.attach(sid, alg);
  }
  return sid;
}

/** Precompute the fast-path deltas and start the timers of a new session. */
function initSession(pt: Partition, sid: number, mid: number, now: number): void {
  const t = pt.table;
  const dIp = fold(delta32(t.mIn(mid), t.mExt(mid)));
  const dPort = delta16(t.mInPort(mid), t.mExtPort(mid));
  // ICMP has no pseudo-header: only the identifier changes its checksum.
  t.setDeltas(sid, dIp, t.mProto(mid) === IpProto.Icmp ? fold(dPort) : fold(dIp + dPort));
  t.setLast(sid, now);
  t.setExpires(sid, now + pt.lifetime(t.mProto(mid), TcpState.SynOut));
}

/**
 * Echo requests to an external address with no mapping behind them are for the gateway
 * itself: answer them like a host would (RFC 1122 §3.2.2.6), in place.
 */
function answerEcho(pt: Partition, b: Uint8Array, off: number, l4: number): number {
  const src = u32(b, off + ip.SRC);
  const dst = u32(b, off + ip.DST);
  put32(b, off + ip.SRC, dst);
  put32(b, off + ip.DST, src);
  b[off + ip.TTL] = 64;
  ip.fillChecksum(b, off);
  b[l4] = icmp.ECHO_REPLY;
  // Type 8 → 0 lowers the first word by 0x0800.
  putCheck(b, l4 + icmp.CHECK, applyDelta(getCheck(b, l4 + icmp.CHECK), delta16(icmp.ECHO_REQUEST << 8, icmp.ECHO_REPLY << 8)));
  pt.counters[C.ICMP_GENERATED]!++;
  return FORWARD;
}
