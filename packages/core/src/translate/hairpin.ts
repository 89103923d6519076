/**
 * translate/hairpin.ts — where a packet addressed to one of our own external addresses goes
 * next (RFC 4787 REQ-9, RFC 5382 REQ-8, RFC 5508 REQ-7: hairpinning). After its outbound
 * translation the packet carries the sender's external address and port as its source, and it
 * continues as inbound: in this partition, or in the one that owns the destination port.
 *
 * Contract: `inboundOwner` is pure (rules, port plan, partition count). `hairpinRoute` counts
 * the hairpin and either returns a verdict (a Hairpin drop when no partition owns the port, a
 * handoff to the owner) or HERE (0, never a verdict) when this partition continues with the
 * packet itself; the caller picks the continuation (translate() again, or the later-fragment
 * path for a non-first fragment).
 *
 * References: RFC 4787 REQ-9, RFC 5382 REQ-8, RFC 5508 REQ-7.
 */
import { DropReason } from '../drop.js';
import { C } from '../counters.js';
import type { RuleSet } from '../rules.js';
import type { PortPlan } from '../ports.js';
import { insidePartition } from '../hash.js';
import { handoff } from '../verdict.js';
import type { Partition } from '../translate.js';
import { IpProto } from '../wire/ipv4.js';

/** hairpinRoute's "continue here": 0 is no verdict (verdict kinds start at 1). */
export const HERE = 0;

/** Where the inbound half of a packet to external (addr, port) is translated. */
export function inboundOwner(rules: RuleSet, plan: PortPlan, partitions: number, proto: number, ext: number, port: number): number {
  if (proto !== IpProto.Icmp && rules.forwards) {
    const f = rules.matchForward(proto, ext, port);
    if (f >= 0) return insidePartition(proto, rules.forwardInAddr(f), rules.forwardInPort(f, port), partitions);
  }
  const o = plan.ownerOf[port]!;
  return o === 0xff ? -1 : o;
}

/**
 * A hairpinned packet to external (ext, port): count it, then a verdict (drop, handoff) or
 * HERE when this partition translates its inbound half.
 */
export function hairpinRoute(pt: Partition, p: number, ext: number, port: number): number {
  pt.counters[C.HAIRPINNED]!++;
  const owner = inboundOwner(pt.rules, pt.plan, pt.cfg.partitions, p, ext, port);
  if (owner < 0) return pt.dropped(DropReason.Hairpin);
  if (owner !== pt.index) {
    pt.counters[C.HANDOFFS]!++;
    return handoff(owner);
  }
  return HERE;
}
