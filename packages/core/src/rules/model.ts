/**
 * rules/model.ts — the rule data model: `Rule` and its parts, the protocol number each rule
 * protocol matches, and `ruleProblem`, the check a hand-built Rule must pass (parsed rules always
 * do). The grammar, formatting, listing, lint and matcher around it are in this folder; the
 * file header of `../rules.ts` states the language and the contract they share.
 *
 * References: RFC 3022 (traditional NAT, NAPT); RFC 6888 REQ-6 (operator-configured exemptions).
 */
import { type Cidr, type PortRange, prefixMask } from '../addr.js';
import { IpProto } from '../wire/ipv4.js';

// ---------------------------------------------------------------------------------------------
// Data model

export type RuleProto = 'all' | 'tcp' | 'udp' | 'icmp';

export interface RuleMatch {
  proto: RuleProto;
  src: Cidr;
  /** Empty means any source port. Non-empty only for tcp and udp. Kept in written order. */
  srcPorts: readonly PortRange[];
  dst: Cidr;
  dstPorts: readonly PortRange[];
}

export type Rule =
  | { kind: 'masquerade'; match: RuleMatch }
  | { kind: 'accept'; match: RuleMatch }
  | {
      kind: 'forward';
      proto: 'tcp' | 'udp';
      extAddr: number;
      extPorts: PortRange;
      inAddr: number;
      inPorts: PortRange;
    };

export type ForwardRule = Extract<Rule, { kind: 'forward' }>;
export type MatchRule = Exclude<Rule, ForwardRule>;

/** The protocol number a rule protocol matches; 0 stands for `all`. */
export function protoNumber(p: RuleProto): number {
  switch (p) {
    case 'all':
      return 0;
    case 'tcp':
      return IpProto.Tcp;
    case 'udp':
      return IpProto.Udp;
    case 'icmp':
      return IpProto.Icmp;
  }
}


/** Why a hand-built Rule is malformed, or null. Parsed rules always pass. */
export function ruleProblem(r: Rule): string | null {
  const cidrOk = (c: Cidr): boolean =>
    Number.isInteger(c.prefix) &&
    c.prefix >= 0 &&
    c.prefix <= 32 &&
    c.mask === prefixMask(c.prefix) &&
    Number.isInteger(c.addr) &&
    c.addr >= 0 &&
    c.addr === (c.addr & c.mask) >>> 0;
  const rangeOk = (p: PortRange, min: number): boolean =>
    Number.isInteger(p.lo) && Number.isInteger(p.hi) && p.lo >= min && p.lo <= p.hi && p.hi <= 65535;
  const addrOk = (a: number): boolean => Number.isInteger(a) && a >= 0 && a <= 0xffffffff;
  if (r.kind === 'forward') {
    if (r.proto !== 'tcp' && r.proto !== 'udp') return 'a forward must be tcp or udp';
    if (!addrOk(r.extAddr) || !addrOk(r.inAddr)) return 'bad address';
    if (!rangeOk(r.extPorts, 1) || !rangeOk(r.inPorts, 1)) return 'bad port range';
    if (r.extPorts.hi - r.extPorts.lo !== r.inPorts.hi - r.inPorts.lo) return 'port ranges differ in length';
    return null;
  }
  if (r.kind !== 'masquerade' && r.kind !== 'accept') return 'unknown rule kind';
  const m = r.match;
  if (m.proto !== 'all' && m.proto !== 'tcp' && m.proto !== 'udp' && m.proto !== 'icmp') return 'bad protocol';
  if (!cidrOk(m.src) || !cidrOk(m.dst)) return 'bad CIDR';
  const hasPorts = m.proto === 'tcp' || m.proto === 'udp';
  if (!hasPorts && (m.srcPorts.length > 0 || m.dstPorts.length > 0)) return 'ports on a protocol without ports';
  if (!m.srcPorts.every((p) => rangeOk(p, 0)) || !m.dstPorts.every((p) => rangeOk(p, 0))) return 'bad port range';
  return null;
}
