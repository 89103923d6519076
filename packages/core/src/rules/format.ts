/**
 * rules/format.ts — canonical rule text: `formatRule(r)` prints what `parseRule` reads back
 * deep-equal. The port-list and address notations are shared with the listing and the lint.
 */
import { type Cidr, type PortRange, formatIPv4, formatPortRange } from '../addr.js';
import type { Rule } from './model.js';

// ---------------------------------------------------------------------------------------------
// Formatting

export function formatPorts(list: readonly PortRange[]): string {
  return list.map(formatPortRange).join(',');
}

/** Rule-text notation: `any` for /0, a bare address for /32, else `a.b.c.d/n`. */
export function formatAddrSpec(c: Cidr): string {
  if (c.prefix === 0) return 'any';
  if (c.prefix === 32) return formatIPv4(c.addr);
  return `${formatIPv4(c.addr)}/${c.prefix}`;
}

/** Canonical text of a rule; `parseRule(formatRule(r))` deep-equals `r`. */
export function formatRule(r: Rule): string {
  if (r.kind === 'forward') {
    return (
      `forward ${r.proto} ${formatIPv4(r.extAddr)}:${formatPortRange(r.extPorts)}` +
      ` to ${formatIPv4(r.inAddr)}:${formatPortRange(r.inPorts)}`
    );
  }
  const m = r.match;
  let s = `${r.kind} ${m.proto} from ${formatAddrSpec(m.src)}`;
  if (m.srcPorts.length > 0) s += ` ${formatPorts(m.srcPorts)}`;
  s += ` to ${formatAddrSpec(m.dst)}`;
  if (m.dstPorts.length > 0) s += ` ${formatPorts(m.dstPorts)}`;
  return s;
}
