/**
 * verdict.ts — what translate() decided, as one small integer: kind in the low 4 bits,
 * argument above. No allocation, comparable with ===.
 *
 *   Forward   write the (rewritten) packet out
 *   Drop      arg = DropReason
 *   Handoff   arg = partition: the packet, translated outbound and addressed to one of our
 *             external addresses (hairpin, RFC 4787 REQ-9), continues as inbound there
 *   Reply     send the partition's reply buffer instead (e.g. ICMP 3/13); arg = DropReason
 *             for the original packet
 *   Pass      write the packet out untranslated (an `accept` rule, RFC 6888 REQ-6)
 */
export const enum VerdictKind {
  Forward = 1,
  Drop = 2,
  Handoff = 3,
  Reply = 4,
  Pass = 5,
}

export const FORWARD = VerdictKind.Forward;
export const PASS = VerdictKind.Pass;
export function drop(reason: number): number {
  return VerdictKind.Drop | (reason << 4);
}
export function handoff(partition: number): number {
  return VerdictKind.Handoff | (partition << 4);
}
export function reply(reason: number): number {
  return VerdictKind.Reply | (reason << 4);
}
export function verdictKind(v: number): number {
  return v & 15;
}
export function verdictArg(v: number): number {
  return v >>> 4;
}

/** Direction argument of translate(). */
export const enum Direction {
  /** inside → outside */
  Out = 0,
  /** outside → inside */
  In = 1,
  /** the inbound half of a hairpinned packet (already outbound-translated: no TTL change) */
  HairpinIn = 2,
}
