/**
 * rules.ts — the masquerading rule language: parse, format, list, lint, and a compiled matcher.
 * This file states the language and the contract; the code lives in one room per role:
 *
 *   rules/model.ts    the `Rule` data model, protocol numbers, `ruleProblem`
 *   rules/grammar.ts  tokenizer and parser, `RuleSyntaxError`
 *   rules/format.ts   canonical text (`formatRule`)
 *   rules/listing.ts  the `ipfwadm -F -l -n` style table (`formatRuleTable`)
 *   rules/lint.ts     configuration warnings (`ruleWarnings`)
 *   rules/matcher.ts  `RuleSet`, the compiled typed-array matcher
 *
 * Owns: the rule text grammar (classic 1996 ipfw/ipfwadm masquerading words), the `Rule` data
 * model, canonical formatting, the `ipfwadm -F -l -n` style listing, configuration warnings,
 * and `RuleSet`, the typed-array matcher the slow path consults once per new flow.
 *
 * Grammar (one rule per line, `#` starts a comment, keywords case-insensitive):
 *
 *   masquerade <all|tcp|udp|icmp> from <cidr|any> [ports] to <cidr|any> [ports]
 *   accept     <all|tcp|udp|icmp> from <cidr|any> [ports] to <cidr|any> [ports]
 *   forward    <tcp|udp> <ext-addr>:<port>[-<port>] to <inside-addr>:<port>[-<port>]
 *
 *   `masq` abbreviates `masquerade`. `any` is 0.0.0.0/0, a bare address is a /32, and the
 *   1990s dotted netmask (`192.168.1.0/255.255.255.0`) is read as its prefix length when the
 *   mask is contiguous. `ports` is a comma-separated list of ports or ranges (`80`,
 *   `1024-65535`, `20,21,8000-8080`; ipfwadm's `1024:65535` is read as a range too) and is
 *   allowed only with tcp and udp. A forward's two port ranges must have the same length.
 *
 * Contract:
 *   - Parsing is the validation: a `Rule` that came out of `parseRule` is normalized (CIDRs
 *     have no host bits, ranges are ordered, ports only where the protocol has ports) and is
 *     trusted from then on. Every syntax problem is a `RuleSyntaxError` naming the line, the
 *     1-based column, what was expected and what was found; nothing else is ever thrown.
 *   - `formatRule` prints the canonical text; `parseRule(formatRule(r))` deep-equals `r`.
 *   - `accept` is an exclusion (RFC 6888 REQ-6 spirit: a CGN/NAT must let the operator exempt
 *     traffic, e.g. inside-to-inside or towards a VPN range, from translation). Outbound rules
 *     are ordered and the first match wins; a packet no rule matches gets `RuleAction.None`
 *     and what happens to it is the caller's policy, not this module's.
 *   - `forward` is a static port forward (the old `ipmasqadm portfw`): inbound tcp/udp to
 *     ext-addr:port goes to inside-addr:(port - extLo + inLo).
 *   - `RuleSet` indices are always indices into `RuleSet.rules` (and so into the array the
 *     set was built from). Its lookups read typed-array columns only and never allocate.
 *
 * Listing (`formatRuleTable`), modelled on `ipfwadm -F -l` (Linux 1.3/2.0), whose lines read
 * `acc/m all  192.168.1.0/24       0.0.0.0/0            n/a`. Fixed-width columns:
 *
 *   Type  (5 + 1)   acc/m masquerade (ipfwadm's "accept and masquerade"), acc accept
 *                   (pass untranslated), fwd static port forward (portfw)
 *   Prot  (4 + 1)   all | tcp | udp | icmp
 *   From  (20 + 1)  source: `a.b.c.d/n`, a bare address for a /32, `anywhere` for 0.0.0.0/0
 *                   (as ipfwadm printed without -n); `anywhere` for a forward (any peer)
 *   To    (20 + 1)  destination, same notation; a forward's external address
 *   Ports           `n/a` for all/icmp (ports do not apply, as ipfwadm said), `any` for
 *                   tcp/udp without port lists, else `srcports -> dstports` with `*` for an
 *                   unrestricted side (ipfwadm's `* -> 80`); a forward shows
 *                   `ext:port -> in:port`
 *
 * No chain-policy line is printed: what happens to unmatched traffic is decided elsewhere.
 *
 * References: RFC 1918 (formerly RFC 1597) private addresses; RFC 6598 shared address space;
 * RFC 3022 (traditional NAT, NAPT); RFC 6888 REQ-6 (operator-configured exemptions).
 */

export * from './rules/model.js';
export * from './rules/grammar.js';
export { formatRule } from './rules/format.js';
export * from './rules/listing.js';
export * from './rules/lint.js';
export * from './rules/matcher.js';
