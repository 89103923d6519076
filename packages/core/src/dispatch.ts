/**
 * dispatch.ts — classification in front of the partitions: which way a packet goes and which
 * partition owns its flow. Used by the I/O thread (and by the single-threaded `Nat`).
 *
 * Contract:
 *  - `classify(b, off, len, now)` returns a partition ≥ 0 (and sets `dir`), or one of
 *    DISPATCH_DROP (reason in `reason`), DISPATCH_PASS (an accept rule: write it out
 *    untranslated), DISPATCH_HELD (a fragment kept until its first fragment comes).
 *  - Direction (RFC 4787 REQ-7): when the caller knows where the packet entered (`side`: the
 *    gateway's outside TUN, `--outside-tun`), that decides: a packet from outside is inbound
 *    whatever its source (translated by a mapping or forward of its destination, else dropped
 *    by the partition's filtering; one not for an external address is no_rule), never
 *    masqueraded. Without a side (one TUN for both ways: Side.Unknown, and Side.Inside, which
 *    is classified the same way), direction is guessed: a source that a masquerade/accept rule
 *    covers → outbound; a destination that is one of our external addresses → inbound;
 *    anything else is for nobody (dropped, counted as no_rule). The guess takes an outside
 *    host whose address a masquerade rule covers for an inside host.
 *  - Partition: outbound, a hash of the inside (protocol, address, port or ICMP id);
 *    inbound, the owner of the external port (ports.ts) or, for a port forward, the forward's
 *    inside endpoint; ICMP errors, the flow of the packet they quote; non-first fragments,
 *    wherever their first fragment went.
 *  - Out-of-order fragments (RFC 4787 REQ-14): a later fragment seen before its first is held
 *    (bounded count, bounded time) and released right after the first one is dispatched, so
 *    each partition sees the first fragment first. Held packets are opaque handles given by
 *    the caller; the caller keeps their bytes alive until `released()`/`expired()` gives the
 *    handle back.
 *  - Pinned endpoints (alg/pins.ts): a TCP/UDP packet from an inside endpoint a protocol
 *    helper pinned (a related flow, e.g. an active-mode FTP data connection) goes outbound to
 *    the partition that pinned it, before any rule or hash: that partition holds its session.
 *  - Held fragments expire as time passes whatever the load: every classify()
 *    whose `now` has reached the earliest deadline moves the late ones aside, so holding places
 *    never stay filled with orphans; the caller collects them with `expired()` (at least once
 *    per batch) and drops them.
 *  - Fragments of a datagram an `accept` rule passes: the first fragment learns a pass route,
 *    and its later fragments (no ports to match a rule) pass with it after the IPv4 header
 *    check (checksum included); those that came early are released with partition
 *    DISPATCH_PASS, and the caller checks them with `laterFragmentCheck` and writes them out
 *    untranslated. Never from the outside side.
 *  - Only bounds needed to read addresses and ports are checked here; the partition
 *    validates fully.
 *  - Cost: an ordinary TCP/UDP packet is routed in line by its ports; the pin table, the
 *    accept rules' checks and the forwards are consulted only when the configuration has
 *    some (several partitions, an `accept` rule, a `forward` rule).
 */
import { DropReason, wireDrop } from './drop.js';
import { RuleSet, RuleAction } from './rules.js';
import { PortPlan } from './ports.js';
import { insidePartition } from './hash.js';
import { FragKeys } from './fragkeys.js';
import { inboundOwner } from './translate.js';
import { u16, u32 } from './wire/bytes.js';
import * as icmp from './wire/icmp.js';
import type { PinTable } from './alg/pins.js';
import * as ip from './wire/ipv4.js';
import * as tcp from './wire/tcp.js';
import { WireError } from './wire/result.js';
import { IpProto } from './wire/ipv4.js';

export const DISPATCH_DROP = -1;

/** Where a packet entered the gateway (classify's `side`). */
export const enum Side {
  /** Not known (one TUN for both directions): direction is guessed from the rules. */
  Unknown = 0,
  /** The inside TUN of a gateway that has an outside one: classified as Unknown. */
  Inside = 1,
  /** The outside TUN: always inbound (RFC 4787 REQ-7). */
  Outside = 2,
}
export const DISPATCH_PASS = -2;
export const DISPATCH_HELD = -3;

/** A fragment route that says "passed by an accept rule" (learned routes are ≥ 0). */
const PASS_ROUTE = -2;

/** Bytes of a TCP or UDP header routing reads: source and destination port. */
const PORTS_LEN = 4;

/** Earliest deadline of the held fragments (Infinity: none). */
function earliest(held: ReadonlyArray<{ until: number }>): number {
  let d = Infinity;
  for (const h of held) if (h.until < d) d = h.until;
  return d;
}

const NO_HANDLES: number[] = [];

const TCP = ip.IpProto.Tcp;
const UDP = ip.IpProto.Udp;
const ICMP = ip.IpProto.Icmp;

export class Dispatcher {
  /** Direction of the last classified packet (0 out, 1 in). */
  dir = 0;
  /** Drop reason of the last DISPATCH_DROP. */
  reason = 0;
  private rules: RuleSet;
  private externals: Uint32Array;
  // Fragment routes: (src, dst, proto, id) → partition|dir by slot of the fragment-key table
  // (fragkeys.ts, the table's own probe). Fixed size, the soonest to expire overwritten.
  private readonly frags = FragKeys.alloc(4096);
  private readonly fRoute = new Int32Array(4096);
  // Held fragments.
  // `outside`: it came in on the outside side; an outbound or pass route never releases it.
  private held: Array<{ handle: number; src: number; dst: number; key: number; until: number; outside: boolean }> = [];
  private ready: Array<{ handle: number; partition: number; dir: number }> = [];
  /** Word 0 of the pin table: the number of pins in all partitions (alg/pins.ts layout). */
  private readonly pinCount: Int32Array | null;
  /** Earliest deadline among the held fragments (Infinity: none held). */
  private heldDue = Infinity;
  /** Held fragments past their deadline, not yet collected by expired(). */
  private orphans: number[] = [];

  constructor(
    rules: RuleSet,
    externals: readonly number[],
    private readonly plan: PortPlan,
    private readonly partitions: number,
    private readonly maxHeld = 256,
    private readonly fragTimeout = 2000,
    private readonly pins: PinTable | null = null,
  ) {
    this.rules = rules;
    this.externals = Uint32Array.from(externals);
    // Helpers pin only when there are several partitions (alg/engine.ts): with one, every
    // flow is partition 0's already and the table stays empty.
    this.pinCount = pins === null || partitions < 2 ? null : new Int32Array(pins.buffer, 0, 1);
  }

  setRules(rules: RuleSet, externals?: readonly number[]): void {
    this.rules = rules;
    if (externals) this.externals = Uint32Array.from(externals);
  }

  isExternal(a: number): boolean {
    const e = this.externals;
    for (let i = 0; i < e.length; i++) if (e[i] === a) return true;
    return false;
  }

  private fail(reason: number): number {
    this.reason = reason;
    return DISPATCH_DROP;
  }

  classify(b: Uint8Array, off: number, len: number, now: number, handle = -1, side: Side = Side.Unknown): number {
    // The IPv4 bounds (wire/ipv4.ts checkIPv4); the checksum is the partition's to verify.
    const e = ip.checkIPv4(b, off, len);
    if (e !== WireError.None) return this.fail(wireDrop(e));
    if (now >= this.heldDue) this.sweep(now);
    const ff = u16(b, off + ip.FLAGS_FRAG);
    // The common path is kept small (V8 inlines its callees within one budget): later
    // fragments, packets from the outside side, accepted packets and pinned endpoints are
    // each decided out of line, behind a cheap test that is false for an ordinary packet.
    if ((ff & ip.FRAG_OFFSET_MASK) !== 0) return this.laterFragment(b, off, len, now, handle, side);
    const hl = (b[off]! & 0x0f) << 2;
    const p = b[off + ip.PROTO]!;
    const l4 = off + hl;
    const l4len = u16(b, off + ip.TOTAL_LEN) - hl;

    // Only what routing reads: the two ports (the first 4 bytes of a IpProto.Tcp or IpProto.Udp header, the
    // same in both), or an IpProto.Icmp header; the partition validates the whole header.
    const ports = p === IpProto.Tcp || p === IpProto.Udp;
    if ((ports && l4len < PORTS_LEN) || (p === IpProto.Icmp && l4len < icmp.HEADER_LEN)) return this.fail(DropReason.Truncated);
    if (side === Side.Outside) return this.fromOutside(b, off, l4, l4len, p, ff, now);
    const src = u32(b, off + ip.SRC);
    const dst = u32(b, off + ip.DST);
    const sport = ports ? u16(b, l4 + tcp.SPORT) : 0;
    const dport = ports ? u16(b, l4 + tcp.DPORT) : 0;
    let part: number;
    // An IpProto.Icmp error addressed to our external address that quotes a packet we translated
    // (source external, destination outside) is inbound whatever its source: the gateway
    // host's own kernel sends "frag needed" / "time exceeded" from its inside address.
    if (p === IpProto.Icmp && this.isExternal(dst) && icmp.isError(b[l4]!) && this.quotesOurOutbound(b, l4, l4len)) {
      this.dir = 1;
      return this.inboundPartition(b, l4, l4len, p, dst, dport);
    }
    // Word 0 of the pin table counts every pin (alg/pins.ts): zero, nothing to look up.
    if (ports && this.pinCount !== null && Atomics.load(this.pinCount, 0) !== 0) {
      const pinned = this.pinnedRoute(b, off, p, src, dst, sport, ff, now);
      if (pinned >= 0) return pinned;
    }
    const rules = this.rules;
    const ri = rules.matchOutbound(p, src, sport, dst, dport);
    if (ri >= 0 && rules.accepts && rules.actionOf(ri) === RuleAction.Accept) return this.accepted(b, off, len, p, l4, l4len, src, dst, ff, now);
    // Outbound: a masquerade rule covers the flow; or the packet comes from a port forward's
    // inside endpoint; or it is an IpProto.Icmp error from a covered inside source (about a flow of
    // any protocol). A covered source sending anything else that no rule allows is refused.
    let outbound = ri >= 0 || (rules.forwards && this.isForwardTarget(b, l4, l4len, p, src, sport));
    if (!outbound && rules.isInsideSource(src)) {
      if (!(p === IpProto.Icmp && icmp.isError(b[l4]!) && !this.isExternal(dst))) return this.fail(DropReason.NoRule);
      outbound = true;
    }
    // TCP and UDP (and, outbound, any protocol but ICMP) are routed by their ports here, in
    // line; ICMP reads its quoted packet in outboundPartition/inboundPartition.
    if (outbound) {
      this.dir = 0;
      part = p !== IpProto.Icmp ? insidePartition(p, src, sport, this.partitions) : this.outboundPartition(b, l4, l4len, p, src, sport);
    } else if (this.isExternal(dst)) {
      this.dir = 1;
      part = ports ? this.owner(p, dst, dport) : this.inboundPartition(b, l4, l4len, p, dst, dport);
    } else {
      return this.fail(DropReason.NoRule);
    }
    if (part < 0) return part;
    if ((ff & ip.FLAG_MF) !== 0) this.fragLearn(src, dst, p, u16(b, off + ip.ID), (part << 1) | this.dir, now);
    return part;
  }

  /** A later fragment (offset ≠ 0): its first fragment's route, or held until that comes. */
  private laterFragment(b: Uint8Array, off: number, len: number, now: number, handle: number, side: Side): number {
    const p = b[off + ip.PROTO]!;
    const src = u32(b, off + ip.SRC);
    const dst = u32(b, off + ip.DST);
    const ipId = u16(b, off + ip.ID);
    const r = this.fragRoute(src, dst, p, ipId, now);
    if (r === PASS_ROUTE && side !== Side.Outside) {
      const bad = this.laterFragmentCheck(b, off, len);
      return bad === DropReason.None ? DISPATCH_PASS : this.fail(bad);
    }
    // A fragment from outside never follows an outbound route (a forged copy of an inside
    // flow's fragment key): it waits for an inbound first fragment like any other.
    if (r >= 0 && (side !== Side.Outside || (r & 1) === 1)) {
      this.dir = r & 1;
      return r >>> 1;
    }
    if (handle < 0) return this.fail(DropReason.FragmentOrphan);
    if (this.held.length >= this.maxHeld) return this.fail(DropReason.FragmentBufferFull);
    this.held.push({ handle, src, dst, key: (p << 16) | ipId, until: now + this.fragTimeout, outside: side === Side.Outside });
    this.heldDue = Math.min(this.heldDue, now + this.fragTimeout);
    return DISPATCH_HELD;
  }

  /** RFC 4787 REQ-7: it came in from outside, so it is inbound whatever its source says. */
  private fromOutside(b: Uint8Array, off: number, l4: number, l4len: number, p: number, ff: number, now: number): number {
    const dst = u32(b, off + ip.DST);
    if (!this.isExternal(dst)) return this.fail(DropReason.NoRule);
    this.dir = 1;
    const dport = p === IpProto.Tcp || p === IpProto.Udp ? u16(b, l4 + tcp.DPORT) : 0;
    const part = this.inboundPartition(b, l4, l4len, p, dst, dport);
    if (part >= 0 && (ff & ip.FLAG_MF) !== 0) this.fragLearn(u32(b, off + ip.SRC), dst, p, u16(b, off + ip.ID), (part << 1) | 1, now);
    return part;
  }

  /** A IpProto.Tcp/IpProto.Udp packet from an endpoint some partition pinned: that partition (outbound), or -1. */
  private pinnedRoute(b: Uint8Array, off: number, p: number, src: number, dst: number, sport: number, ff: number, now: number): number {
    const pinned = this.pins!.lookup(p, src, sport);
    if (pinned < 0) return -1;
    this.dir = 0;
    if ((ff & ip.FLAG_MF) !== 0) this.fragLearn(src, dst, p, u16(b, off + ip.ID), pinned << 1, now);
    return pinned;
  }

  /** A packet an accept rule matched: DISPATCH_PASS once it passes the translator's checks. */
  private accepted(b: Uint8Array, off: number, len: number, p: number, l4: number, l4len: number, src: number, dst: number, ff: number, now: number): number {
    // Passed untranslated, but never unchecked: the same header checks as a translated packet.
    const bad = passCheck(b, off, len, p, l4, l4len, (ff & ip.FLAG_MF) !== 0);
    if (bad !== DropReason.None) return this.fail(bad);
    // Its later fragments carry no ports to match the rule: they follow this one out.
    if ((ff & ip.FLAG_MF) !== 0) this.fragLearn(src, dst, p, u16(b, off + ip.ID), PASS_ROUTE, now);
    return DISPATCH_PASS;
  }

  /**
   * Is this packet from the inside endpoint of a port forward (its replies, or an ICMP error
   * about a packet forwarded to it)? Those go outbound even with no masquerade rule.
   */
  private isForwardTarget(b: Uint8Array, l4: number, l4len: number, p: number, src: number, sport: number): boolean {
    if (p === IpProto.Tcp || p === IpProto.Udp) return this.rules.matchForwardReverse(p, src, sport) >= 0;
    if (p !== IpProto.Icmp || !icmp.isError(b[l4]!)) return false;
    const e = l4 + icmp.EMBEDDED;
    if (ip.validateEmbedded(b, e, l4len - icmp.EMBEDDED) !== WireError.None) return false;
    const ihl = (b[e]! & 0x0f) << 2;
    const ip2 = b[e + ip.PROTO]!;
    return (ip2 === IpProto.Tcp || ip2 === IpProto.Udp) && u32(b, e + ip.DST) === src && this.rules.matchForwardReverse(ip2, src, u16(b, e + ihl + tcp.DPORT)) >= 0;
  }

  /** Does this ICMP error quote a packet from one of our external addresses to outside? */
  private quotesOurOutbound(b: Uint8Array, l4: number, l4len: number): boolean {
    // Only the quoted addresses are read here: version and length suffice (the full check of
    // the quote, embedded() below, decides the drop reason once the direction is known).
    const e = l4 + icmp.EMBEDDED;
    if (l4len < icmp.EMBEDDED + ip.HEADER_LEN + 8 || b[e]! >>> 4 !== 4) return false;
    return this.isExternal(u32(b, e + ip.SRC)) && !this.rules.isInsideSource(u32(b, e + ip.DST));
  }

  private outboundPartition(b: Uint8Array, l4: number, l4len: number, p: number, src: number, sport: number): number {
    if (p !== IpProto.Icmp) return insidePartition(p, src, sport, this.partitions);
    const t = b[l4]!;
    if (icmp.isQuery(t)) return insidePartition(IpProto.Icmp, src, u16(b, l4 + icmp.ID), this.partitions);
    if (!icmp.isError(t)) return this.fail(DropReason.IcmpUnsupported);
    // Error about a packet delivered to an inside host: the flow is that host's.
    const e = this.embedded(b, l4, l4len);
    if (e < 0) return e;
    const ihl = (b[e]! & 0x0f) << 2;
    const ip2 = b[e + ip.PROTO]!;
    if (ip2 === IpProto.Icmp) return insidePartition(IpProto.Icmp, u32(b, e + ip.SRC), u16(b, e + ihl + icmp.ID), this.partitions);
    // About a pinned flow (a helper's data connection): the partition that holds it.
    const pinned = this.pins !== null ? this.pins.lookup(ip2, u32(b, e + ip.DST), u16(b, e + ihl + tcp.DPORT)) : -1;
    if (pinned >= 0) return pinned;
    return insidePartition(ip2, u32(b, e + ip.DST), u16(b, e + ihl + tcp.DPORT), this.partitions);
  }

  private inboundPartition(b: Uint8Array, l4: number, l4len: number, p: number, dst: number, dport: number): number {
    if (p === IpProto.Tcp || p === IpProto.Udp) return this.owner(p, dst, dport);
    if (p !== IpProto.Icmp) return this.fail(DropReason.UnsupportedProtocol);
    const t = b[l4]!;
    if (icmp.isQuery(t)) {
      // Echo requests to the gateway itself are answered by whichever partition: use 0.
      const o = this.owner(IpProto.Icmp, dst, u16(b, l4 + icmp.ID));
      return o < 0 && icmp.isQueryRequest(t) ? 0 : o;
    }
    if (!icmp.isError(t)) return this.fail(DropReason.IcmpUnsupported);
    const e = this.embedded(b, l4, l4len);
    if (e < 0) return e;
    const ihl = (b[e]! & 0x0f) << 2;
    const ip2 = b[e + ip.PROTO]!;
    // The quoted packet is one we sent: its source is our external address:port.
    if (ip2 === IpProto.Icmp) return this.owner(IpProto.Icmp, u32(b, e + ip.SRC), u16(b, e + ihl + icmp.ID));
    if (ip2 !== IpProto.Tcp && ip2 !== IpProto.Udp) return this.fail(DropReason.IcmpErrorNoSession);
    return this.owner(ip2, u32(b, e + ip.SRC), u16(b, e + ihl + tcp.SPORT));
  }

  private owner(p: number, ext: number, port: number): number {
    const o = inboundOwner(this.rules, this.plan, this.partitions, p, ext, port);
    return o < 0 ? this.fail(DropReason.NoMapping) : o;
  }

  /** Offset of the packet quoted in an ICMP error, or DISPATCH_DROP. */
  private embedded(b: Uint8Array, l4: number, l4len: number): number {
    const e = l4 + icmp.EMBEDDED;
    if (ip.validateEmbedded(b, e, l4len - icmp.EMBEDDED) !== WireError.None) return this.fail(DropReason.IcmpErrorMalformed);
    return e;
  }

  // ------------------------------------------------------------------ fragments

  private fragLearn(src: number, dst: number, p: number, ipId: number, route: number, now: number): void {
    this.fRoute[this.frags.put(src, dst, p, ipId, 0, now + this.fragTimeout, now)] = route;
    if (this.held.length > 0) this.releaseFor(src, dst, ((p << 16) | ipId) >>> 0, route);
  }

  private fragRoute(src: number, dst: number, p: number, ipId: number, now: number): number {
    const i = this.frags.find(src, dst, p, ipId, 0, now);
    return i < 0 ? -1 : this.fRoute[i]!;
  }

  private releaseFor(src: number, dst: number, key: number, route: number): void {
    const keep: typeof this.held = [];
    for (const h of this.held) {
      // A fragment from outside is never released by an outbound or pass route (RFC 4787 REQ-7).
      const mine = h.src === src && h.dst === dst && h.key === key && !(h.outside && (route & 1) === 0);
      if (!mine) keep.push(h);
      else if (route === PASS_ROUTE) this.ready.push({ handle: h.handle, partition: DISPATCH_PASS, dir: 0 });
      else this.ready.push({ handle: h.handle, partition: route >>> 1, dir: route & 1 });
    }
    this.held = keep;
    this.heldDue = earliest(keep);
  }

  /** Move the held fragments whose deadline has come to the orphans. */
  private sweep(now: number): void {
    const keep: typeof this.held = [];
    for (const h of this.held) {
      if (h.until > now) keep.push(h);
      else this.orphans.push(h.handle);
    }
    this.held = keep;
    this.heldDue = earliest(keep);
  }

  /**
   * Held fragments whose first fragment has now been dispatched, in arrival order; partition
   * DISPATCH_PASS: an accepted datagram's (check with laterFragmentCheck, write untranslated).
   */
  released(): Array<{ handle: number; partition: number; dir: number }> {
    if (this.ready.length === 0) return EMPTY;
    const r = this.ready;
    this.ready = [];
    return r;
  }

  /** Fragments held now (a reader that sleeps must wake by their deadline: expired()). */
  get holding(): number {
    return this.held.length;
  }

  /** Held fragments that waited too long (by `now` or an earlier classify): the caller drops them (fragment_orphan). */
  expired(now: number): number[] {
    if (now >= this.heldDue) this.sweep(now);
    if (this.orphans.length === 0) return NO_HANDLES;
    const out = this.orphans;
    this.orphans = [];
    return out;
  }

  /**
   * The check a later fragment of an accepted datagram passes before it is written out: its
   * IPv4 header in full, checksum included (it has no transport header). DropReason.None or why.
   */
  laterFragmentCheck(b: Uint8Array, off: number, len: number): number {
    const r = ip.validateIPv4(b, off, len);
    return r === WireError.None ? DropReason.None : wireDrop(r);
  }

  get heldCount(): number {
    return this.held.length;
  }
}

/**
 * The checks a packet an `accept` rule passes must pass (the translator's own for a first or
 * whole datagram): the IPv4 header in full, checksum included, and for TCP, UDP and ICMP a
 * transport header that fits. Returns DropReason.None or why not.
 */
function passCheck(b: Uint8Array, off: number, len: number, p: number, l4: number, l4len: number, firstFrag: boolean): number {
  const r = ip.validateIPv4(b, off, len);
  if (r !== WireError.None) return wireDrop(r);
  if (p === TCP) {
    if (l4len < 20) return DropReason.Truncated;
    const doff = (b[l4 + 12]! >>> 4) << 2;
    if (doff < 20 || doff > l4len) return DropReason.BadL4Header;
  } else if (p === UDP) {
    if (l4len < 8) return DropReason.Truncated;
    const ul = u16(b, l4 + 4);
    if (ul < 8 || (!firstFrag && ul > l4len)) return DropReason.BadL4Header;
  } else if (p === ICMP && l4len < 8) {
    return DropReason.Truncated;
  }
  return DropReason.None;
}

const EMPTY: Array<{ handle: number; partition: number; dir: number }> = [];
