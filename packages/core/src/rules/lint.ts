/**
 * rules/lint.ts — configuration warnings about a rule list (shadowed and redundant rules,
 * non-private masqueraded sources, forwards outside every source or to a foreign address).
 * Warnings never reject a configuration; the caller prints them.
 *
 * References: RFC 1918 and RFC 6598 (private and shared address space).
 */
import { type Cidr, type PortRange, cidrContains, cidrCovers, formatIPv4, formatPortRange, isPrivateCidr } from '../addr.js';
import type { Rule, RuleMatch } from './model.js';
import { formatAddrSpec, formatRule } from './format.js';

// ---------------------------------------------------------------------------------------------
// Warnings

/** Every port `inner` admits is admitted by `outer` (an empty list admits every port). */
function portsCover(outer: readonly PortRange[], inner: readonly PortRange[]): boolean {
  if (outer.length === 0) return true;
  const merged = [...outer].sort((a, b) => a.lo - b.lo);
  const want = inner.length === 0 ? [{ lo: 0, hi: 65535 }] : inner;
  return want.every((r) => {
    // Walk the sorted outer ranges, extending the covered prefix of r.
    let next = r.lo;
    for (const o of merged) {
      if (o.lo > next) break;
      if (o.hi >= next) next = o.hi + 1;
      if (next > r.hi) return true;
    }
    return next > r.hi;
  });
}

/** Every packet `b` matches is matched by `a`. */
function matchCovers(a: RuleMatch, b: RuleMatch): boolean {
  return (
    (a.proto === 'all' || a.proto === b.proto) &&
    cidrCovers(a.src, b.src) &&
    cidrCovers(a.dst, b.dst) &&
    portsCover(a.srcPorts, b.srcPorts) &&
    portsCover(a.dstPorts, b.dstPorts)
  );
}

function rangesOverlap(a: PortRange, b: PortRange): boolean {
  return a.lo <= b.hi && b.lo <= a.hi;
}

/**
 * Configuration warnings, in rule order, each starting `rule N:` (1-based). `externals` are the
 * gateway's external addresses. Warned: a masqueraded source that is not private (RFC 1918 or
 * RFC 6598); an external address inside a masqueraded source; a rule that an earlier rule
 * shadows entirely (a forward also when an earlier forward takes part of its ports); a
 * forward's inside address outside every masquerade source; a forward to an address that is
 * not one of `externals` (when any are given).
 */
export function ruleWarnings(rules: readonly Rule[], externals: readonly number[]): string[] {
  const out: string[] = [];
  const masqSources: Cidr[] = [];
  for (const r of rules) if (r.kind === 'masquerade') masqSources.push(r.match.src);

  for (let j = 0; j < rules.length; j++) {
    const r = rules[j];
    const n = j + 1;
    if (r.kind === 'forward') {
      for (let i = 0; i < j; i++) {
        const e = rules[i];
        if (e.kind !== 'forward' || e.proto !== r.proto || e.extAddr !== r.extAddr) continue;
        if (e.extPorts.lo <= r.extPorts.lo && r.extPorts.hi <= e.extPorts.hi) {
          out.push(`rule ${n}: never matches: rule ${i + 1} (${formatRule(e)}) forwards all of its ports first`);
          break;
        }
        if (rangesOverlap(e.extPorts, r.extPorts)) {
          out.push(
            `rule ${n}: ports ${formatPortRange(overlap(e.extPorts, r.extPorts))} are forwarded by ` +
              `rule ${i + 1} (${formatRule(e)}) first`,
          );
        }
      }
      if (!masqSources.some((c) => cidrContains(c, r.inAddr))) {
        out.push(
          `rule ${n}: inside address ${formatIPv4(r.inAddr)} is not in any masquerade source; ` +
            `the forward works, but only its replies are translated (its own connections are not masqueraded)`,
        );
      }
      if (externals.length > 0 && !externals.includes(r.extAddr)) {
        out.push(`rule ${n}: ${formatIPv4(r.extAddr)} is not one of the external addresses`);
      }
      continue;
    }

    const m = r.match;
    for (let i = 0; i < j; i++) {
      const e = rules[i];
      if (e.kind === 'forward' || !matchCovers(e.match, m)) continue;
      if (e.kind === r.kind) {
        out.push(`rule ${n}: redundant: rule ${i + 1} (${formatRule(e)}) already matches everything it does`);
      } else {
        const verb = e.kind === 'masquerade' ? 'masquerades' : 'accepts';
        out.push(`rule ${n}: never matches: rule ${i + 1} (${formatRule(e)}) ${verb} all of its traffic first`);
      }
      break;
    }
    if (r.kind !== 'masquerade') continue;
    if (!isPrivateCidr(m.src)) {
      out.push(
        `rule ${n}: masqueraded source ${formatAddrSpec(m.src)} is not a private network ` +
          `(RFC 1918 or RFC 6598 shared space)`,
      );
    }
    for (const x of externals) {
      if (cidrContains(m.src, x)) {
        out.push(
          `rule ${n}: external address ${formatIPv4(x)} lies inside masqueraded source ${formatAddrSpec(m.src)}`,
        );
      }
    }
  }
  return out;
}

function overlap(a: PortRange, b: PortRange): PortRange {
  return { lo: Math.max(a.lo, b.lo), hi: Math.min(a.hi, b.hi) };
}
