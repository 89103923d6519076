/**
 * rules/grammar.ts — the rule text grammar: tokenizer, one-line parser, whole-file parsing and
 * `RuleSyntaxError`. The grammar and its contract (parsing is the validation; every problem is
 * a RuleSyntaxError naming line, column, expectation and finding) are stated in `../rules.ts`.
 *
 * References: RFC 1918 private addresses (dotted netmasks of the ipfwadm era are read too).
 */
import { type Cidr, type PortRange, formatPortRange, parseCidr, parseIPv4, prefixMask } from '../addr.js';
import { formatAddrSpec } from './format.js';
import type { Rule, RuleProto, RuleMatch } from './model.js';

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
/** `masq rule list`'s Type column (rules/listing.ts), by the rule word each stands for. */
const LISTING_TYPES: Readonly<Record<string, string>> = { 'acc/m': 'masquerade', acc: 'accept', fwd: 'forward' };
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
      default: {
        // The listing's Type column (ipfwadm's layout) is not the grammar: say which word it stands for.
        const listed = LISTING_TYPES[head.text.toLowerCase()];
        return this.failAt(listed === undefined ? EXPECT_RULE : `${EXPECT_RULE} (the listing's "${head.text}" is written "${listed}")`, head);
      }
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
