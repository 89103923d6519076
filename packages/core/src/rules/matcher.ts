/**
 * rules/matcher.ts — `RuleSet`, the rules compiled into typed-array columns that the slow path
 * consults once per new flow (first outbound match wins; forwards by external address/port).
 * Lookups read typed-array columns only and never allocate. A hand-built rule list is checked
 * with `ruleProblem` first (RangeError naming the rule).
 *
 * References: RFC 6888 REQ-6 (`accept` exempts traffic from translation).
 */
import { protoNumber, ruleProblem, type Rule } from './model.js';

// ---------------------------------------------------------------------------------------------
// Compiled matcher

/** What an outbound rule says to do. `None`: no rule matched (or the index is a forward). */
export const enum RuleAction {
  None = 0,
  Masquerade = 1,
  Accept = 2,
}



const KIND_MASQ = 1;
const KIND_ACCEPT = 2;
const KIND_FORWARD = 3;

/**
 * The rules compiled into typed-array columns. Outbound (masquerade/accept) rules and forwards
 * are kept in two compact column sets, each in rule order, with a column mapping back to the
 * rule index. Networks and masks are stored as int32 (`addr | 0`) so that `(a & mask) === net`
 * compares two int32 values with no `>>> 0`; callers pass addresses as uint32 numbers (int32
 * works as well) and the `&` brings them to int32 too. Port lists are [lo, hi] pairs in one flat Uint16Array;
 * outbound rule k's source ranges are pairs portOff[2k]..portOff[2k+1], its destination
 * ranges portOff[2k+1]..portOff[2k+2] (an empty span admits every port).
 */
export class RuleSet {
  readonly rules: readonly Rule[];
  /** Some outbound rule is an `accept` (else every outbound match is a masquerade). */
  readonly accepts: boolean;
  /** Some rule is a `forward`. */
  readonly forwards: boolean;

  private readonly kinds: Uint8Array; // by rule index
  // Outbound rules, compact, in order.
  private readonly nOut: number;
  private readonly outRule: Uint32Array;
  private readonly outProto: Uint8Array; // 0 = all
  private readonly srcNet: Int32Array;
  private readonly srcMask: Int32Array;
  private readonly dstNet: Int32Array;
  private readonly dstMask: Int32Array;
  private readonly portOff: Uint32Array;
  private readonly ports: Uint16Array;
  // Masquerade sources only, for isInsideSource.
  private readonly nMasq: number;
  private readonly masqNet: Int32Array;
  private readonly masqMask: Int32Array;
  // Forwards, compact, in order.
  private readonly nFwd: number;
  private readonly fwdRule: Uint32Array;
  private readonly fwdProto: Uint8Array;
  private readonly fwdExt: Int32Array;
  private readonly fwdExtLo: Uint16Array;
  private readonly fwdExtHi: Uint16Array;
  private readonly fwdIn: Int32Array;
  private readonly fwdInLo: Uint16Array;
  private readonly fwdInHi: Uint16Array;
  // Rule index -> compact forward index (or -1).
  private readonly fwdSlot: Int32Array;

  /** Throws RangeError naming the rule when a (hand-built) rule is malformed. */
  constructor(rules: readonly Rule[]) {
    rules.forEach((r, i) => {
      const p = ruleProblem(r);
      if (p !== null) throw new RangeError(`rule ${i + 1}: ${p}`);
    });
    this.rules = rules.slice();
    const n = rules.length;
    this.kinds = new Uint8Array(n);
    this.fwdSlot = new Int32Array(n).fill(-1);

    let nOut = 0;
    let nFwd = 0;
    let nMasq = 0;
    let nPorts = 0;
    for (const r of rules) {
      if (r.kind === 'forward') nFwd++;
      else {
        nOut++;
        if (r.kind === 'masquerade') nMasq++;
        nPorts += r.match.srcPorts.length + r.match.dstPorts.length;
      }
    }
    this.nOut = nOut;
    this.accepts = nOut > nMasq;
    this.forwards = nFwd > 0;
    this.outRule = new Uint32Array(nOut);
    this.outProto = new Uint8Array(nOut);
    this.srcNet = new Int32Array(nOut);
    this.srcMask = new Int32Array(nOut);
    this.dstNet = new Int32Array(nOut);
    this.dstMask = new Int32Array(nOut);
    this.portOff = new Uint32Array(2 * nOut + 1);
    this.ports = new Uint16Array(2 * nPorts);
    this.nMasq = nMasq;
    this.masqNet = new Int32Array(nMasq);
    this.masqMask = new Int32Array(nMasq);
    this.nFwd = nFwd;
    this.fwdRule = new Uint32Array(nFwd);
    this.fwdProto = new Uint8Array(nFwd);
    this.fwdExt = new Int32Array(nFwd);
    this.fwdExtLo = new Uint16Array(nFwd);
    this.fwdExtHi = new Uint16Array(nFwd);
    this.fwdIn = new Int32Array(nFwd);
    this.fwdInLo = new Uint16Array(nFwd);
    this.fwdInHi = new Uint16Array(nFwd);

    let k = 0;
    let f = 0;
    let mq = 0;
    let pp = 0; // pairs written
    for (let i = 0; i < n; i++) {
      const r = rules[i];
      if (r.kind === 'forward') {
        this.kinds[i] = KIND_FORWARD;
        this.fwdSlot[i] = f;
        this.fwdRule[f] = i;
        this.fwdProto[f] = protoNumber(r.proto);
        this.fwdExt[f] = r.extAddr | 0;
        this.fwdExtLo[f] = r.extPorts.lo;
        this.fwdExtHi[f] = r.extPorts.hi;
        this.fwdIn[f] = r.inAddr | 0;
        this.fwdInLo[f] = r.inPorts.lo;
        this.fwdInHi[f] = r.inPorts.hi;
        f++;
        continue;
      }
      const m = r.match;
      this.kinds[i] = r.kind === 'masquerade' ? KIND_MASQ : KIND_ACCEPT;
      this.outRule[k] = i;
      this.outProto[k] = protoNumber(m.proto);
      this.srcNet[k] = m.src.addr | 0;
      this.srcMask[k] = m.src.mask | 0;
      this.dstNet[k] = m.dst.addr | 0;
      this.dstMask[k] = m.dst.mask | 0;
      this.portOff[2 * k] = pp;
      for (const p of m.srcPorts) {
        this.ports[2 * pp] = p.lo;
        this.ports[2 * pp + 1] = p.hi;
        pp++;
      }
      this.portOff[2 * k + 1] = pp;
      for (const p of m.dstPorts) {
        this.ports[2 * pp] = p.lo;
        this.ports[2 * pp + 1] = p.hi;
        pp++;
      }
      this.portOff[2 * k + 2] = pp;
      if (r.kind === 'masquerade') {
        this.masqNet[mq] = m.src.addr | 0;
        this.masqMask[mq] = m.src.mask | 0;
        mq++;
      }
      k++;
    }
  }

  /** True when `port` lies in one of the pairs [from, to) of the flat port array, or the span is empty. */
  private portIn(from: number, to: number, port: number): boolean {
    if (from === to) return true;
    const ports = this.ports;
    for (let j = from; j < to; j++) {
      if (port >= ports[2 * j] && port <= ports[2 * j + 1]) return true;
    }
    return false;
  }

  /**
   * First matching masquerade/accept rule for an outbound packet; returns the rule index or -1.
   * No allocation. proto: IP protocol number (6 tcp, 17 udp, 1 icmp; an `all` rule matches any
   * number). Ports are 0 for protocols without ports. Addresses are uint32.
   */
  matchOutbound(proto: number, src: number, sport: number, dst: number, dport: number): number {
    const n = this.nOut;
    const outProto = this.outProto;
    const srcNet = this.srcNet;
    const srcMask = this.srcMask;
    const dstNet = this.dstNet;
    const dstMask = this.dstMask;
    const off = this.portOff;
    for (let k = 0; k < n; k++) {
      const p = outProto[k];
      if (p !== 0 && p !== proto) continue;
      if ((src & srcMask[k]) !== srcNet[k]) continue;
      if ((dst & dstMask[k]) !== dstNet[k]) continue;
      if (!this.portIn(off[2 * k], off[2 * k + 1], sport)) continue;
      if (!this.portIn(off[2 * k + 1], off[2 * k + 2], dport)) continue;
      return this.outRule[k];
    }
    return -1;
  }

  /** The action of rule `index` (None for -1, out of range, or a forward). */
  actionOf(index: number): RuleAction {
    const k = index >= 0 && index < this.kinds.length ? this.kinds[index] : 0;
    return k === KIND_MASQ ? RuleAction.Masquerade : k === KIND_ACCEPT ? RuleAction.Accept : RuleAction.None;
  }

  /** Static forward for an inbound packet to extAddr:extPort; returns the rule index or -1. */
  matchForward(proto: number, extAddr: number, extPort: number): number {
    const a = extAddr | 0;
    for (let f = 0; f < this.nFwd; f++) {
      if (
        this.fwdProto[f] === proto &&
        this.fwdExt[f] === a &&
        extPort >= this.fwdExtLo[f] &&
        extPort <= this.fwdExtHi[f]
      ) {
        return this.fwdRule[f];
      }
    }
    return -1;
  }

  /** Reverse lookup for replies from a forwarded server at inAddr:inPort; rule index or -1. */
  matchForwardReverse(proto: number, inAddr: number, inPort: number): number {
    const a = inAddr | 0;
    for (let f = 0; f < this.nFwd; f++) {
      if (
        this.fwdProto[f] === proto &&
        this.fwdIn[f] === a &&
        inPort >= this.fwdInLo[f] &&
        inPort <= this.fwdInHi[f]
      ) {
        return this.fwdRule[f];
      }
    }
    return -1;
  }

  /** Inside address of forward rule `i` (an index from matchForward/matchForwardReverse). */
  forwardInAddr(i: number): number {
    return this.fwdIn[this.fwdSlot[i]] >>> 0;
  }

  /** External address of forward rule `i`. */
  forwardExtAddr(i: number): number {
    return this.fwdExt[this.fwdSlot[i]] >>> 0;
  }

  /** Inside port that external port `extPort` of forward rule `i` maps to. */
  forwardInPort(i: number, extPort: number): number {
    const f = this.fwdSlot[i];
    return this.fwdInLo[f] + (extPort - this.fwdExtLo[f]);
  }

  /** External port that inside port `inPort` of forward rule `i` maps back to. */
  forwardExtPort(i: number, inPort: number): number {
    const f = this.fwdSlot[i];
    return this.fwdExtLo[f] + (inPort - this.fwdInLo[f]);
  }

  /** Is this address inside the source of any masquerade rule (any protocol, any ports)? */
  isInsideSource(addr: number): boolean {
    const net = this.masqNet;
    const mask = this.masqMask;
    for (let k = 0; k < this.nMasq; k++) {
      if ((addr & mask[k]) === net[k]) return true;
    }
    return false;
  }
}
