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
 * This file holds the Partition's state and the entry (validate, then route by protocol and
 * direction); each role has its own room under translate/, as in VPP's nat44-ed and libalias:
 *
 *   translate/fastpath.ts   a session exists: rewrite, deltas, TCP state, timers, counters
 *   translate/session.ts    slow path: rules, filtering, limits, port allocation, insert
 *   translate/icmperror.ts  ICMP errors through the gateway, and the 3/13 masq generates
 *   translate/fragment.ts   non-first fragments following their first
 *   translate/hairpin.ts    where a packet to our own external address continues
 *   translate/header.ts     the IPv4 header step all of them share (TTL + 1, checksum)
 *   translate/prefetch.ts   the batch prefetch and the fast path's candidate session
 *   translate/upkeep.ts     freeing, expiry, flush, rule reload and static forwards
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
 *  - RFC 6888 REQ-4/REQ-5: per-inside-host port and session limits, exact across partitions
 *    (hosts.ts); REQ-11: no eviction on exhaustion.
 *  - RFC 7857 §2.1-2.2: TCP opening (SYN) and closing (FIN, RST) timers, set apart; an RST
 *    never lengthens a session's deadline.
 */
import { DropReason, wireDrop } from './drop.js';
import { C } from './counters.js';
import type { NatConfig } from './config.js';
import type { RuleSet } from './rules.js';
import { PortAllocator, PortPlan, PortMode } from './ports.js';
import type { SessionTable } from './table.js';
import { HostCounts, hostCountsFor } from './hosts.js';
import { tcpLongLived, tcpClosingState } from './tcpstate.js';
import type { Timeouts } from './config.js';
import { u16 } from './wire/bytes.js';
import * as ip from './wire/ipv4.js';
import { IpProto } from './wire/ipv4.js';
import { WireError } from './wire/result.js';
import { TcpFlag } from './wire/tcp.js';
import * as tcp from './wire/tcp.js';
import * as udp from './wire/udp.js';
import * as icmp from './wire/icmp.js';
import { Direction, drop } from './verdict.js';
import { outbound, inbound } from './translate/fastpath.js';
import { icmpError } from './translate/icmperror.js';
import { laterFragment } from './translate/fragment.js';
import { prefetch } from './translate/prefetch.js';
import * as upkeep from './translate/upkeep.js';
import { AlgEngine } from './alg/engine.js';
import type { PinTable } from './alg/pins.js';

export { inboundOwner } from './translate/hairpin.js';

export interface PartitionOptions {
  config: NatConfig;
  rules: RuleSet;
  plan: PortPlan;
  index: number;
  table: SessionTable;
  /** The pinned-endpoint table shared with the dispatcher (alg/pins.ts); none: no pinning. */
  pins?: PinTable | null;
  /**
   * The per-host counts every partition shares (hosts.ts): the limits are exact only when all
   * partitions are given the same one. Default: a private one when a limit is set.
   */
  hosts?: HostCounts | null;
}

export class Partition {
  readonly index: number;
  readonly table: SessionTable;
  readonly ports: PortAllocator;
  /** Reply buffer for a Reply verdict (an ICMP error masq generates). */
  readonly reply = new Uint8Array(576);
  replyLen = 0;
  // The fields below are the partition's working state, shared with the role files in
  // translate/ (which take the Partition as their first argument); no other module uses them.
  cfg: NatConfig;
  rules: RuleSet;
  /** The packet being translated carries a partial checksum (see translate). */
  partial = false;
  /** Bytes of room from the packet's start in its buffer (see translate). */
  cap = 0;
  /** Protocol helpers (alg/engine.ts): selection, payload rewrites, expectations, pins. */
  readonly alg: AlgEngine;
  nowCache = 0;
  readonly plan: PortPlan;
  readonly counters: Float64Array;
  externalSet: Uint32Array;
  /** Per-host session and port counts, shared by all partitions; null when no limit is set. */
  readonly hosts: HostCounts | null;
  // The last prefetch's packets, in order: translate() of the next one among them takes the
  // session id the prefetch found as a candidate (checked against the key like any lookup),
  // instead of hashing and probing again (translate/prefetch.ts).
  readonly pfSlots = new Int32Array(64);
  readonly pfHashes = new Uint32Array(64);
  readonly pfOffs = new Uint32Array(64);
  pfBuf: Uint8Array | null = null;
  /** The rate limit of the ICMP errors this partition generates (translate/icmperror.ts). */
  icmpTokens = 10;
  icmpStamp = -Infinity;
  pfCount = 0;
  pfNext = 0;
  /** The slow path's load hints (hosts.touch, table.touchInbound) go here, so they are kept. */
  hint = 0;
  /**
   * Each TCP state's timer in ms (tcpstate.ts says which timer a state has), from
   * cfg.timeouts: the fast path reads one entry instead of branching on the state.
   * setTimeouts keeps it current; cfg.timeouts' TCP entries change only through it.
   */
  readonly tcpLife = new Float64Array(8);

  constructor(o: PartitionOptions) {
    this.index = o.index;
    this.table = o.table;
    this.cfg = o.config;
    this.rules = o.rules;
    this.plan = o.plan;
    this.counters = o.table.counters;
    const mode = o.config.portMode === 'sequential' ? PortMode.Sequential : o.config.portMode === 'preserve' ? PortMode.Preserve : PortMode.Random;
    this.ports = new PortAllocator(o.plan, o.index, o.table.portArrays, mode, o.config.portReuseDelay);
    // RFC 6056: unpredictable ports. Tests pass a seed; otherwise (0) the allocator draws its
    // keys from the cryptographic generator.
    this.ports.seedIfFresh(o.config.seed ? (o.config.seed + o.index * 7919) >>> 0 || 1 : 0);
    this.externalSet = Uint32Array.from(o.config.externals);
    this.fillTcpLife();
    this.hosts = o.hosts !== undefined ? o.hosts : hostCountsFor(o.config);
    this.hosts?.recover(o.index);
    this.alg = new AlgEngine({
      table: o.table,
      ports: this.ports,
      index: o.index,
      partitions: o.config.partitions,
      pins: o.pins ?? null,
      host: { releaseMapping: (mid, now) => upkeep.releaseMapping(this, mid, now) },
      enabled: o.config.alg,
      serverPorts: o.config.algPorts,
    });
  }

  /** Enable exactly these protocol helpers (validated names), on these server ports where given, for sessions created from now on. */
  setAlg(names: readonly string[], ports: Readonly<Record<string, readonly number[]>> = {}): void {
    this.cfg = { ...this.cfg, alg: [...names], algPorts: Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, [...v]])) };
    this.alg.setEnabled(names, ports);
  }

  /** Expectations past their time go (cheap when there are none: one header read). */
  expireExpectations(now: number): void {
    this.alg.expire(now);
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

  /** Index of external address `a` in the configuration, or -1. */
  extIndex(a: number): number {
    const e = this.externalSet;
    for (let i = 0; i < e.length; i++) if (e[i] === a) return i;
    return -1;
  }

  /** New idle timeouts for sessions refreshed from now on (a deadline already set stands). */
  setTimeouts(t: Partial<Timeouts>): void {
    Object.assign(this.cfg.timeouts, t);
    this.fillTcpLife();
  }

  private fillTcpLife(): void {
    const t = this.cfg.timeouts;
    for (let s = 0; s < 8; s++) this.tcpLife[s] = tcpLongLived(s) ? t.tcpEstablished : tcpClosingState(s) ? t.tcpClosing : t.tcpOpening;
  }

  /** Timer for a session in its current state (TCP: tcpstate.ts says which state has which). */
  lifetime(proto: number, state: number): number {
    if (proto === IpProto.Tcp) return this.tcpLife[state & 7]!;
    return proto === IpProto.Udp ? this.cfg.timeouts.udp : this.cfg.timeouts.icmp;
  }

  /**
   * A TCP session's deadline after a packet with flags `tflags` left it in `state`; `old` is
   * the deadline it had. An RST never lengthens a session's life: RFC 7857 §2.2 keeps the
   * state for the closing timer after an RST (it may be forged or lost), and a stream of RSTs,
   * or an inside host refusing a connection with one, must not keep it for ever.
   */
  tcpDeadline(tflags: number, state: number, old: number, now: number): number {
    const d = now + this.tcpLife[state]!;
    return (tflags & TcpFlag.Rst) !== 0 && old < d ? old : d;
  }

  /** Count a drop and return its verdict. */
  dropped(reason: number): number {
    this.counters[C.DROPS + reason]!++;
    return drop(reason);
  }

  // ======================================================================= translate

  /**
   * Translate the IPv4 packet at bytes[off, off+len) in place. `dir` is a Direction. Returns
   * a verdict (verdict.ts). `partial`: the TCP/UDP checksum field holds only the pseudo-header
   * sum (a TUN offload read with VIRTIO_NET_HDR_F_NEEDS_CSUM): address changes are folded into
   * it, port changes are not (the kernel sums the header, ports included, later). `cap`: the
   * bytes the buffer holds from `off` (≥ len): a protocol helper may grow the packet up to it;
   * by default none (a rewrite that would grow it is refused and counted).
   */
  translate(b: Uint8Array, off: number, len: number, dir: number, now: number, partial = false, cap = len): number {
    this.partial = partial;
    this.cap = cap;
    this.nowCache = now;
    const r = ip.validateIPv4(b, off, len);
    if (r !== WireError.None) return this.dropped(wireDrop(r));
    const hl = (b[off]! & 0x0f) << 2;
    const tl = u16(b, off + ip.TOTAL_LEN);
    const p = b[off + ip.PROTO]!;
    const l4 = off + hl;
    const l4len = tl - hl;
    const ff = u16(b, off + ip.FLAGS_FRAG);
    if ((ff & ip.FRAG_OFFSET_MASK) !== 0) return laterFragment(this, b, off, tl, p, dir, now);
    const firstFrag = (ff & ip.FLAG_MF) !== 0;
    let sport: number;
    let dport: number;
    let tflags = 0;
    // One check per header (wire/), then the fields it vouches for are read.
    if (p === IpProto.Tcp) {
      const e = tcp.validateTcp(b, l4, l4len);
      if (e !== WireError.None) return this.dropped(wireDrop(e));
      sport = u16(b, l4 + tcp.SPORT);
      dport = u16(b, l4 + tcp.DPORT);
      tflags = b[l4 + tcp.FLAGS]!;
    } else if (p === IpProto.Udp) {
      // A first fragment carries only part of the datagram its length field spans.
      const e = udp.validateUdp(b, l4, l4len, !firstFrag);
      if (e !== WireError.None) return this.dropped(wireDrop(e));
      sport = u16(b, l4 + udp.SPORT);
      dport = u16(b, l4 + udp.DPORT);
    } else if (p === IpProto.Icmp) {
      // A fragmented ICMP message's checksum spans all fragments: only whole ones are checked.
      const e = icmp.validateIcmp(b, l4, l4len, !firstFrag);
      if (e !== WireError.None) return this.dropped(wireDrop(e));
      const t = b[l4]!;
      if (icmp.isError(t)) {
        if (firstFrag) return this.dropped(DropReason.IcmpErrorMalformed);
        return icmpError(this, b, off, l4, l4len, dir, now);
      }
      if (!icmp.isQuery(t)) return this.dropped(DropReason.IcmpUnsupported);
      sport = u16(b, l4 + icmp.ID);
      dport = 0;
    } else {
      return this.dropped(DropReason.UnsupportedProtocol);
    }
    if (dir === Direction.Out) return outbound(this, b, off, l4, tl, p, sport, dport, tflags, firstFrag, now);
    return inbound(this, b, off, l4, tl, p, sport, dport, tflags, firstFrag, dir, now);
  }

  /** The batch prefetch hint (translate/prefetch.ts); returns a value only to keep the loads. */
  prefetch(b: Uint8Array, offs: Uint32Array, dirs: Uint8Array, n: number): number {
    return prefetch(this, b, offs, dirs, n);
  }

  // ======================================================================= table upkeep (translate/upkeep.ts)

  /** Free one session (and its mapping if that was the last). */
  removeSession(sid: number, now: number): void {
    upkeep.removeSession(this, sid, now);
  }

  /** Owner's check of a nominated session: free it if it really has expired. */
  confirmExpired(sid: number, now: number): boolean {
    return upkeep.confirmExpired(this, sid, now);
  }

  /**
   * Incremental expiry: examine at most `budget` session slots from where the last call
   * stopped, freeing those past their deadline. Returns how many were freed.
   */
  expire(now: number, budget = 4096): number {
    return upkeep.expire(this, now, budget);
  }

  /**
   * Remove sessions matching a predicate (flush by protocol, inside host, rule change).
   * Static forward mappings stay. Returns the number removed.
   */
  flush(now: number, match: (sid: number) => boolean): number {
    return upkeep.flush(this, now, match);
  }

  /**
   * Install a new rule set (reload): static mappings follow the forwards this partition
   * owns; sessions that no rule allows any more are flushed; everything else keeps running.
   * Returns the number of sessions flushed.
   */
  applyRules(rules: RuleSet, now: number, externals?: readonly number[]): number {
    return upkeep.applyRules(this, rules, now, externals);
  }

  /**
   * Create the static mappings for forwards owned here; remove those no longer configured and
   * any dynamic mapping holding a forwarded port. Returns the sessions removed.
   */
  syncStatics(now: number): number {
    return upkeep.syncStatics(this, now);
  }
}
