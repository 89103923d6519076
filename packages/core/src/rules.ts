/**
 * rules.ts — the masquerading rule language: parse, format, list, lint, and a compiled matcher.
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

import {
  type Cidr,
  type PortRange,
  cidrContains,
  cidrCovers,
  formatIPv4,
  formatPortRange,
  isPrivateCidr,
  parseCidr,
  parseIPv4,
  prefixMask,
} from './addr.js';

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

/** IP protocol numbers (IANA) for the protocols the rule language names. */
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** The protocol number a rule protocol matches; 0 stands for `all`. */
export function protoNumber(p: RuleProto): number {
  switch (p) {
    case 'all':
      return 0;
    case 'tcp':
      return IPPROTO_TCP;
    case 'udp':
      return IPPROTO_UDP;
    case 'icmp':
      return IPPROTO_ICMP;
  }
}

/** Build a Cidr with the same field order and normalization as addr.ts's parseCidr. */
function makeCidr(addr: number, prefix: number): Cidr {
  const mask = prefixMask(prefix);
  return { addr: (addr & mask) >>> 0, prefix, mask };
}

const ANY: Cidr = makeCidr(0, 0);

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * A rule text problem. `found` is the offending text exactly as written, or `""` when the line
 * ended where something else was expected. `column` is 1-based and counts UTF-16 code units.
 * The message names line, column, expectation and finding, then echoes the line with a caret
 * (and tildes under the rest of the offending text).
 */
export class RuleSyntaxError extends Error {
  readonly line: number;
  readonly column: number;
  readonly expected: string;
  readonly found: string;
  /** The offending line as written (without its line break). */
  readonly lineText: string;

  constructor(line: number, column: number, expected: string, found: string, lineText: string) {
    const foundText = found === '' ? 'end of line' : JSON.stringify(found);
    const head = `line ${line}, column ${column}: expected ${expected}, found ${foundText}`;
    // Whitespace controls become spaces so that the caret lines up under a tab-indented line.
    const echo = lineText.replace(/[\t\n\v\f\r]/g, ' ');
    const marker = ' '.repeat(column - 1) + '^' + '~'.repeat(Math.max(0, found.length - 1));
    super(`${head}\n  ${echo}\n  ${marker}`);
    this.name = 'RuleSyntaxError';
    this.line = line;
    this.column = column;
    this.expected = expected;
    this.found = found;
    this.lineText = lineText;
  }
}

// ---------------------------------------------------------------------------------------------
// Lexing

interface Token {
  readonly text: string;
  /** 1-based column of the first character. */
  readonly col: number;
}

function isSpace(c: number): boolean {
  // space, \t, \n, \v, \f, \r
  return c === 32 || (c >= 9 && c <= 13);
}

const HASH = 35;

/** Split one line into tokens; stops at `#`. Also returns the column just past the content. */
function tokenize(text: string): { tokens: Token[]; eolCol: number } {
  const tokens: Token[] = [];
  let i = 0;
  let end = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === HASH) break;
    if (isSpace(c)) {
      i++;
      continue;
    }
    const start = i;
    while (i < n) {
      const d = text.charCodeAt(i);
      if (d === HASH || isSpace(d)) break;
      i++;
    }
    tokens.push({ text: text.slice(start, i), col: start + 1 });
    end = i;
  }
  return { tokens, eolCol: end + 1 };
}

// ---------------------------------------------------------------------------------------------
// Parsing

const EXPECT_RULE = 'a rule: "masquerade", "accept" or "forward"';
const EXPECT_PROTO = 'a protocol: "all", "tcp", "udp" or "icmp"';
const EXPECT_FWD_PROTO = 'a protocol for a forward: "tcp" or "udp"';
const EXPECT_CIDR = 'a CIDR such as 192.168.1.0/24 or "any"';
const EXPECT_PORTS = 'ports such as 80, 1024-65535 or 20,21,8000-8080';
const EXPECT_PORT = 'a port number 0-65535';
const EXPECT_FWD_PORT = 'a port number 1-65535';
const EXPECT_ENDPOINT = 'an address:port such as 203.0.113.1:80 or 203.0.113.1:6000-6010';
const EXPECT_ADDR = 'an IPv4 address such as 203.0.113.1';
const EXPECT_EOL = 'end of line';
const NO_PORTS = '(ports are allowed only with tcp or udp)';

class LineParser {
  private pos = 0;
  private readonly tokens: Token[];
  private readonly eolCol: number;

  constructor(
    private readonly text: string,
    private readonly line: number,
  ) {
    const t = tokenize(text);
    this.tokens = t.tokens;
    this.eolCol = t.eolCol;
  }

  get empty(): boolean {
    return this.tokens.length === 0;
  }

  fail(expected: string, found: string, col: number): never {
    throw new RuleSyntaxError(this.line, col, expected, found, this.text);
  }

  /** Fail at the given token, or at end of line when it is undefined. */
  failAt(expected: string, tok: Token | undefined): never {
    if (tok === undefined) this.fail(expected, '', this.eolCol);
    this.fail(expected, tok.text, tok.col);
  }

  peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  next(expected: string): Token {
    const tok = this.tokens[this.pos];
    if (tok === undefined) this.failAt(expected, undefined);
    this.pos++;
    return tok;
  }

  keyword(word: string): void {
    const tok = this.next(`"${word}"`);
    if (tok.text.toLowerCase() !== word) this.failAt(`"${word}"`, tok);
  }

  end(expected: string = EXPECT_EOL): void {
    const tok = this.peek();
    if (tok !== undefined) this.failAt(expected, tok);
  }

  parse(): Rule {
    const head = this.next(EXPECT_RULE);
    switch (head.text.toLowerCase()) {
      case 'masquerade':
      case 'masq':
        return { kind: 'masquerade', match: this.parseMatch() };
      case 'accept':
        return { kind: 'accept', match: this.parseMatch() };
      case 'forward':
        return this.parseForward();
      default:
        return this.failAt(EXPECT_RULE, head);
    }
  }

  private parseMatch(): RuleMatch {
    const ptok = this.next(EXPECT_PROTO);
    const proto = ptok.text.toLowerCase();
    if (!isRuleProto(proto)) this.failAt(EXPECT_PROTO, ptok);
    const hasPorts = proto === 'tcp' || proto === 'udp';
    this.keyword('from');
    const src = this.parseCidrToken();
    const srcPorts = this.optionalPorts(hasPorts, '"to"');
    this.keyword('to');
    const dst = this.parseCidrToken();
    const dstPorts = this.optionalPorts(hasPorts, EXPECT_EOL);
    this.end();
    return { proto, src, srcPorts, dst, dstPorts };
  }

  /**
   * After an address: a token starting with a digit is a port list (or an error for a
   * protocol without ports); anything else is left for the caller, which expects `follow`
   * (`"to"` or end of line). For tcp/udp a wrong token is reported as "ports or <follow>",
   * since a typo could have been meant as either.
   */
  private optionalPorts(hasPorts: boolean, follow: string): PortRange[] {
    const tok = this.peek();
    if (tok === undefined) return [];
    if (!isDigit(tok.text.charCodeAt(0))) {
      const followed = follow === '"to"' && tok.text.toLowerCase() === 'to';
      if (hasPorts && !followed) this.failAt(`ports or ${follow}`, tok);
      return [];
    }
    if (!hasPorts) this.failAt(`${follow} ${NO_PORTS}`, tok);
    this.pos++;
    return this.parsePortList(tok);
  }

  private parsePortList(tok: Token): PortRange[] {
    const out: PortRange[] = [];
    const text = tok.text;
    let start = 0;
    for (;;) {
      let stop = text.indexOf(',', start);
      if (stop < 0) stop = text.length;
      const part = text.slice(start, stop);
      if (part === '') this.fail(EXPECT_PORTS, text, tok.col);
      out.push(this.parsePortRangeText(part, tok.col + start, 0, true));
      if (stop === text.length) return out;
      start = stop + 1;
    }
  }

  /** `n`, `lo-hi` (and `lo:hi` when `colonRange`); each number min..65535, lo ≤ hi. */
  private parsePortRangeText(part: string, col: number, min: number, colonRange: boolean): PortRange {
    let sep = part.indexOf('-');
    if (sep < 0 && colonRange) sep = part.indexOf(':');
    const expectOne = min === 0 ? EXPECT_PORT : EXPECT_FWD_PORT;
    if (sep < 0) {
      const p = this.parsePort(part, col, min, expectOne);
      return { lo: p, hi: p };
    }
    const loText = part.slice(0, sep);
    const hiText = part.slice(sep + 1);
    if (loText === '' || hiText === '') {
      this.fail(`a port or a range such as ${min === 0 ? '1024-65535' : '6000-6010'}`, part, col);
    }
    const lo = this.parsePort(loText, col, min, expectOne);
    const hi = this.parsePort(hiText, col + sep + 1, min, expectOne);
    if (lo > hi) this.fail(`a range with its low port first, such as ${hi}-${lo}`, part, col);
    return { lo, hi };
  }

  /** `s` is non-empty. */
  private parsePort(s: string, col: number, min: number, expected: string): number {
    for (let i = 0; i < s.length; i++) {
      if (!isDigit(s.charCodeAt(i))) this.fail(expected, s, col);
    }
    const v = s.length > 5 ? 65536 : Number(s);
    if (v > 65535 || v < min) this.fail(expected, s, col);
    return v;
  }

  private parseCidrToken(): Cidr {
    const tok = this.next(EXPECT_CIDR);
    const text = tok.text;
    if (text.toLowerCase() === 'any') return ANY;
    const exact = parseCidr(text);
    if (exact !== null) return exact;
    const loose = parseCidr(text, false);
    if (loose !== null) {
      this.fail(`a network address without host bits set, such as ${formatAddrSpec(loose)}`, text, tok.col);
    }
    // Not a.b.c.d[/nn]: perhaps the dotted netmask of ipfwadm days, a.b.c.d/255.255.255.0.
    const slash = text.indexOf('/');
    const addr = slash < 0 ? null : parseIPv4(text.slice(0, slash));
    const mask = slash < 0 ? null : parseIPv4(text.slice(slash + 1));
    if (addr === null || mask === null) this.fail(EXPECT_CIDR, text, tok.col);
    const prefix = netmaskPrefix(mask);
    if (prefix < 0) this.fail('a contiguous netmask such as 255.255.255.0', text, tok.col);
    const c = makeCidr(addr, prefix);
    if (c.addr !== addr) {
      this.fail(`a network address without host bits set, such as ${formatAddrSpec(c)}`, text, tok.col);
    }
    return c;
  }

  private parseForward(): Rule {
    const ptok = this.next(EXPECT_FWD_PROTO);
    const proto = ptok.text.toLowerCase();
    if (proto !== 'tcp' && proto !== 'udp') this.failAt(EXPECT_FWD_PROTO, ptok);
    const ext = this.parseEndpoint();
    this.keyword('to');
    const inside = this.parseEndpoint();
    const extLen = ext.ports.hi - ext.ports.lo;
    if (inside.ports.hi - inside.ports.lo !== extLen) {
      const want =
        extLen === 0
          ? `a single port to match ${formatPortRange(ext.ports)}`
          : `a range of ${extLen + 1} ports to match ${formatPortRange(ext.ports)}`;
      this.fail(want, inside.portText, inside.portCol);
    }
    this.end();
    return {
      kind: 'forward',
      proto,
      extAddr: ext.addr,
      extPorts: ext.ports,
      inAddr: inside.addr,
      inPorts: inside.ports,
    };
  }

  private parseEndpoint(): { addr: number; ports: PortRange; portText: string; portCol: number } {
    const tok = this.next(EXPECT_ENDPOINT);
    const colon = tok.text.indexOf(':');
    if (colon < 0) this.failAt(EXPECT_ENDPOINT, tok);
    const addrText = tok.text.slice(0, colon);
    const addr = parseIPv4(addrText);
    if (addr === null) this.fail(EXPECT_ADDR, addrText, tok.col);
    const portText = tok.text.slice(colon + 1);
    const portCol = tok.col + colon + 1;
    if (portText === '') this.failAt(EXPECT_ENDPOINT, tok);
    const ports = this.parsePortRangeText(portText, portCol, 1, false);
    return { addr, ports, portText, portCol };
  }
}

function isRuleProto(s: string): s is RuleProto {
  return s === 'all' || s === 'tcp' || s === 'udp' || s === 'icmp';
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Prefix length of a contiguous netmask, or -1. */
function netmaskPrefix(m: number): number {
  for (let p = 0; p <= 32; p++) if (prefixMask(p) === m) return p;
  return -1;
}

/**
 * Parse one rule. `text` is a single line (a comment is allowed; an empty line is an error
 * here, while `parseRules` skips it). `line` only labels errors.
 */
export function parseRule(text: string, line = 1): Rule {
  return new LineParser(text, line).parse();
}

export interface ParsedRules {
  readonly rules: Rule[];
  /** 1-based source line of each rule, parallel to `rules`. */
  readonly lines: number[];
  readonly errors: RuleSyntaxError[];
}

/** Parse a whole rule file, collecting every error rather than stopping at the first. */
export function parseRulesAll(text: string): ParsedRules {
  const rules: Rule[] = [];
  const lines: number[] = [];
  const errors: RuleSyntaxError[] = [];
  const all = text.split('\n');
  for (let i = 0; i < all.length; i++) {
    let lineText = all[i];
    if (lineText.endsWith('\r')) lineText = lineText.slice(0, -1);
    const p = new LineParser(lineText, i + 1);
    if (p.empty) continue;
    try {
      rules.push(p.parse());
      lines.push(i + 1);
    } catch (e: unknown) {
      if (!(e instanceof RuleSyntaxError)) throw e;
      errors.push(e);
    }
  }
  return { rules, lines, errors };
}

/** Parse a whole rule file; throws the first RuleSyntaxError. Blank and comment lines are skipped. */
export function parseRules(text: string): Rule[] {
  const r = parseRulesAll(text);
  if (r.errors.length > 0) throw r.errors[0];
  return r.rules;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function formatPorts(list: readonly PortRange[]): string {
  return list.map(formatPortRange).join(',');
}

/** Rule-text notation: `any` for /0, a bare address for /32, else `a.b.c.d/n`. */
function formatAddrSpec(c: Cidr): string {
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

// ---------------------------------------------------------------------------------------------
// Compiled matcher

/** What an outbound rule says to do. `None`: no rule matched (or the index is a forward). */
export const enum RuleAction {
  None = 0,
  Masquerade = 1,
  Accept = 2,
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
