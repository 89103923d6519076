/**
 * translate/icmperror.ts — ICMP errors: translating those that pass through (RFC 5508 §4.2)
 * and building the one masq generates (destination unreachable, RFC 6888 REQ-11 option).
 *
 * Contract: an error about a flow we translate has its embedded IP header, the embedded
 * transport port/identifier (and its checksum where quoted), the outer address and the ICMP
 * checksum rewritten; sessions are neither created, refreshed nor deleted (RFC 5508 REQ-3/4/5).
 * Errors with a malformed or fragmented quote, or about no known flow, are counted drops.
 * Called by Partition.translate() once the outer headers are validated.
 *
 * References: RFC 5508 REQ-3 (a: the embedded IP header checksum is checked; c: the embedded
 * transport checksum is not), REQ-4, REQ-5, REQ-7 (hairpinned errors), REQ-8 (3/13 when a new
 * flow is refused, rate-limited); RFC 792; RFC 1812 §4.3.2.3 (what an error quotes), §4.3.2.8
 * (rate limits).
 */
import { DropReason } from '../drop.js';
import { C, packetsSlot, bytesSlot } from '../counters.js';
import { checksum, delta16, delta32, applyDelta, applyDeltaUdp, getCheck, putCheck } from '../wire/checksum.js';
import { u16, u32, put16, put32 } from '../wire/bytes.js';
import * as ip from '../wire/ipv4.js';
import * as tcp from '../wire/tcp.js';
import * as udp from '../wire/udp.js';
import * as icmp from '../wire/icmp.js';
import { Direction, FORWARD } from '../verdict.js';
import type { Partition } from '../translate.js';
import { finishIpHeader } from './header.js';
import { hairpinRoute, HERE } from './hairpin.js';
import { IpProto } from '../wire/ipv4.js';
import { WireError } from '../wire/result.js';

/**
 * Translate an ICMP error (RFC 5508 §4.2). Inbound: the embedded packet is one we sent
 * (source = external address:port); outbound: it is one we delivered (destination = the
 * inside host). The embedded header, its transport checksum where quoted, the outer header
 * and the ICMP checksum are all rewritten. Sessions are neither created nor refreshed.
 */
export function icmpError(pt: Partition, b: Uint8Array, off: number, l4: number, l4len: number, dir: number, now: number): number {
  const inner = l4 + icmp.EMBEDDED;
  const avail = l4len - icmp.EMBEDDED;
  if (ip.validateEmbedded(b, inner, avail) !== WireError.None) return pt.dropped(DropReason.IcmpErrorMalformed);
  if ((u16(b, inner + ip.FLAGS_FRAG) & ip.FRAG_OFFSET_MASK) !== 0) return pt.dropped(DropReason.IcmpErrorMalformed);
  const ihl = (b[inner]! & 0x0f) << 2;
  // RFC 5508 REQ-3a: "If the IP checksum of the embedded packet fails to validate, the NAT
  // SHOULD silently drop the Error packet." Every sender quotes the header as it received it
  // (valid: routers quote before decrementing the TTL, hosts as delivered), masq's own rewrites
  // keep it valid, so a bad one is damage or forgery. The quoted transport checksum is not
  // checked (REQ-3c: SHOULD NOT; the quote is usually cut short anyway).
  if (checksum(b, inner, ihl) !== 0) return pt.dropped(DropReason.IcmpErrorMalformed);
  const ip2 = b[inner + ip.PROTO]!;
  const il4 = inner + ihl;
  const iavail = avail - ihl;
  const isrc = u32(b, inner + ip.SRC);
  const idst = u32(b, inner + ip.DST);
  let isport: number;
  let idport: number;
  if (ip2 === IpProto.Tcp || ip2 === IpProto.Udp) {
    isport = u16(b, il4);
    idport = u16(b, il4 + 2);
  } else if (ip2 === IpProto.Icmp) {
    if (!icmp.isQuery(b[il4]!)) return pt.dropped(DropReason.IcmpErrorMalformed);
    isport = u16(b, il4 + icmp.ID);
    idport = 0;
  } else {
    return pt.dropped(DropReason.IcmpErrorNoSession);
  }
  const t = pt.table;
  const osrc = u32(b, off + ip.SRC);
  const odst = u32(b, off + ip.DST);
  if (dir === Direction.Out) {
    // Embedded: remote → inside host (a packet we delivered). Find the inside host's flow.
    // An ICMP query quoted in an error is the inside host's own request (source side).
    const local = ip2 === IpProto.Icmp ? isrc : idst;
    const localPort = ip2 === IpProto.Icmp ? isport : idport;
    const rem = ip2 === IpProto.Icmp ? idst : isrc;
    const remPort = ip2 === IpProto.Icmp ? 0 : isport;
    const sid = t.findSessionOut(ip2, local, localPort, rem, remPort);
    const mid = sid !== 0 ? t.sMap(sid) : t.findMappingOut(ip2, local, localPort);
    if (mid === 0) return pt.dropped(DropReason.IcmpErrorNoSession);
    const ext = t.mExt(mid);
    rewriteEmbedded(b, inner, il4, iavail, ip2, ip2 === IpProto.Icmp, local, ext, localPort, t.mExtPort(mid));
    // Outer: the source (an inside host or router) becomes the external address.
    finishError(pt, b, off, l4, l4len, ip.SRC, osrc, ext, pt.cfg.hopCompensation, 0);
    // About a hairpinned packet: it goes on in to the other inside host, routed by the quoted
    // packet's source side (that host's external endpoint).
    if (pt.isExternal(odst)) {
      const v = hairpinRoute(pt, ip2, isrc, isport);
      return v !== HERE ? v : pt.translate(b, off, u16(b, off + ip.TOTAL_LEN), Direction.HairpinIn, now, pt.partial, pt.cap);
    }
    return FORWARD;
  }
  // Inbound: embedded is a packet we sent (source = our external address:port), and the
  // error is addressed to that address.
  if (odst !== isrc) return pt.dropped(DropReason.IcmpErrorMalformed);
  const sid = t.findSessionIn(ip2, isrc, isport, idst, ip2 === IpProto.Icmp ? 0 : idport);
  const mid = sid !== 0 ? t.sMap(sid) : t.findMappingIn(ip2, isrc, isport);
  if (mid === 0) return pt.dropped(DropReason.IcmpErrorNoSession);
  const inA = t.mIn(mid);
  rewriteEmbedded(b, inner, il4, iavail, ip2, true, isrc, inA, isport, t.mInPort(mid));
  finishError(pt, b, off, l4, l4len, ip.DST, odst, inA, dir === Direction.In && pt.cfg.hopCompensation, 1);
  return FORWARD;
}

/**
 * The outer half of an ICMP error's translation: the outer source or destination address
 * (`field`) from oldA to newA with the header checksum, TTL + 1 when compensating, the ICMP
 * checksum over the rewritten message, and the counters for direction `d`.
 */
function finishError(pt: Partition, b: Uint8Array, off: number, l4: number, l4len: number, field: number, oldA: number, newA: number, compensate: boolean, d: number): void {
  put32(b, off + field, newA);
  finishIpHeader(b, off, delta32(oldA, newA), compensate);
  icmp.fillChecksum(b, l4, l4len);
  pt.counters[C.ICMP_ERRORS_TRANSLATED]!++;
  pt.counters[packetsSlot(d, 2)]!++;
  pt.counters[bytesSlot(d, 2)]! += l4len + ((b[off]! & 0x0f) << 2);
}

/**
 * Rewrite the embedded packet's source (srcSide) or destination address and port/identifier,
 * fixing its header checksum and its transport checksum where the quote includes it.
 */
function rewriteEmbedded(b: Uint8Array, inner: number, il4: number, iavail: number, p: number, srcSide: boolean, oldA: number, newA: number, oldP: number, newP: number): void {
  const dA = delta32(oldA, newA);
  put32(b, inner + (srcSide ? ip.SRC : ip.DST), newA);
  putCheck(b, inner + ip.CHECK, applyDelta(getCheck(b, inner + ip.CHECK), dA));
  const dP = delta16(oldP, newP);
  if (p === IpProto.Icmp) {
    put16(b, il4 + icmp.ID, newP);
    if (iavail >= 4) putCheck(b, il4 + icmp.CHECK, applyDelta(getCheck(b, il4 + icmp.CHECK), dP));
    return;
  }
  put16(b, il4 + (srcSide ? 0 : 2), newP);
  if (p === IpProto.Udp) putCheck(b, il4 + udp.CHECK, applyDeltaUdp(getCheck(b, il4 + udp.CHECK), dA + dP));
  else if (iavail >= tcp.CHECK + 2) putCheck(b, il4 + tcp.CHECK, applyDelta(getCheck(b, il4 + tcp.CHECK), dA + dP));
}

/**
 * Build "destination unreachable" (code) for the packet at b[off..] into the partition's
 * `reply` buffer, from the first external address back to the packet's source. Returns false
 * if it cannot.
 */
export function buildUnreachable(pt: Partition, b: Uint8Array, off: number, code: number, from: number): boolean {
  const hl = (b[off]! & 0x0f) << 2;
  const tl = u16(b, off + ip.TOTAL_LEN);
  const quote = Math.min(tl, hl + 8);
  const out = pt.reply;
  const total = 20 + 8 + quote;
  if (total > out.length) return false;
  out.fill(0, 0, total);
  out[0] = 0x45;
  put16(out, 2, total);
  out[8] = 64;
  out[9] = IpProto.Icmp;
  put32(out, 12, from);
  put32(out, 16, u32(b, off + ip.SRC));
  ip.fillChecksum(out, 0);
  out[20] = icmp.DEST_UNREACH;
  out[21] = code;
  out.set(b.subarray(off, off + quote), 28);
  icmp.fillChecksum(out, 20, 8 + quote);
  pt.replyLen = total;
  return true;
}

/** ICMP errors masq generates: at most ICMP_BURST at once, then one per ICMP_INTERVAL ms, per partition. */
export const ICMP_BURST = 10;
export const ICMP_INTERVAL = 10;

/**
 * May this partition generate an ICMP error now? A token bucket (RFC 1812 §4.3.2.8: a router
 * limits the rate of the ICMP errors it originates; RFC 5508 REQ-8 asks for them when a flow is
 * refused): 100 a second sustained, bursts of 10, so a host hammering a limit gets a few
 * answers, not one per packet.
 */
export function icmpErrorAllowed(pt: Partition, now: number): boolean {
  const k = Math.floor((now - pt.icmpStamp) / ICMP_INTERVAL);
  if (k > 0) {
    pt.icmpTokens = Math.min(ICMP_BURST, pt.icmpTokens + k);
    pt.icmpStamp = pt.icmpTokens === ICMP_BURST ? now : pt.icmpStamp + k * ICMP_INTERVAL;
  }
  if (pt.icmpTokens <= 0) return false;
  pt.icmpTokens--;
  return true;
}
