/**
 * rules/listing.ts — the `ipfwadm -F -l -n` style rule table (`masq rules list`). Columns are
 * documented in the header of `../rules.ts`.
 */
import { type Cidr, formatIPv4, formatPortRange } from '../addr.js';
import type { Rule } from './model.js';
import { formatAddrSpec, formatPorts } from './format.js';


/** Listing notation: `anywhere` for /0, a bare address for /32 (as ipfwadm printed). */
function formatTableAddr(c: Cidr): string {
  return c.prefix === 0 ? 'anywhere' : formatAddrSpec(c);
}

export const RULE_TABLE_HEADER = 'Type  Prot From                 To                   Ports';

function pad(s: string, width: number): string {
  return s.length >= width ? s + ' ' : s + ' '.repeat(width - s.length + 1);
}

/** The `ipfwadm -F -l -n` / `ipfw -n list forward` look; columns documented in the file header. */
export function formatRuleTable(rules: readonly Rule[]): string {
  const out = [RULE_TABLE_HEADER];
  for (const r of rules) {
    if (r.kind === 'forward') {
      const ports =
        `${formatIPv4(r.extAddr)}:${formatPortRange(r.extPorts)} -> ` +
        `${formatIPv4(r.inAddr)}:${formatPortRange(r.inPorts)}`;
      out.push(pad('fwd', 5) + pad(r.proto, 4) + pad('anywhere', 20) + pad(formatIPv4(r.extAddr), 20) + ports);
      continue;
    }
    const m = r.match;
    let ports: string;
    if (m.proto === 'all' || m.proto === 'icmp') ports = 'n/a';
    else if (m.srcPorts.length === 0 && m.dstPorts.length === 0) ports = 'any';
    else {
      const s = m.srcPorts.length === 0 ? '*' : formatPorts(m.srcPorts);
      const d = m.dstPorts.length === 0 ? '*' : formatPorts(m.dstPorts);
      ports = `${s} -> ${d}`;
    }
    out.push(
      pad(r.kind === 'masquerade' ? 'acc/m' : 'acc', 5) +
        pad(m.proto, 4) +
        pad(formatTableAddr(m.src), 20) +
        pad(formatTableAddr(m.dst), 20) +
        ports,
    );
  }
  return out.join('\n');
}
