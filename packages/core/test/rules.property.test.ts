/**
 * rules.property.test.ts — fast-check properties for rules.ts: format/parse round trip on
 * arbitrary rules; arbitrary text yields a Rule or a RuleSyntaxError whose column points at
 * what it names, never another exception; the compiled RuleSet agrees with a naive reference
 * matcher written straight from the rule semantics.
 */
import test from 'ava';
import fc from 'fast-check';
import { logSeed } from './helpers/seed.js';
import { type Cidr, type PortRange, prefixMask } from '../src/addr.js';
import {
  type Rule,
  type RuleMatch,
  type RuleProto,
  RuleAction,
  RuleSet,
  RuleSyntaxError,
  formatRule,
  formatRuleTable,
  parseRule,
  parseRules,
  ruleWarnings,
} from '../src/rules.js';

const NUM_RUNS = 2000;

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** Addresses biased towards a few networks so that random rules and packets actually meet. */
const BASES = [0x00000000, 0x0a000000, 0x0a010000, 0xc0a80100, 0xc0a80000, 0x64400000, 0xcb007100, 0xffffffff];
const arbAddr: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(...BASES),
  fc.tuple(fc.constantFrom(...BASES), fc.integer({ min: 0, max: 0x1ff })).map(([b, x]) => (b ^ x) >>> 0),
  fc.integer({ min: 0, max: 0xffffffff }),
);

const arbCidr: fc.Arbitrary<Cidr> = fc
  .tuple(arbAddr, fc.oneof(fc.integer({ min: 0, max: 32 }), fc.constantFrom(0, 8, 16, 24, 32)))
  .map(([a, prefix]) => {
    const mask = prefixMask(prefix);
    return { addr: (a & mask) >>> 0, prefix, mask };
  });

const arbPort: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, 1, 20, 21, 53, 80, 1023, 1024, 8080, 65535),
  fc.integer({ min: 0, max: 65535 }),
);

const arbRange: fc.Arbitrary<PortRange> = fc
  .tuple(arbPort, arbPort)
  .map(([a, b]) => ({ lo: Math.min(a, b), hi: Math.max(a, b) }));

const arbPorts = fc.oneof(fc.constant([] as PortRange[]), fc.array(arbRange, { minLength: 1, maxLength: 4 }));

const arbMatch: fc.Arbitrary<RuleMatch> = fc
  .tuple(fc.constantFrom<RuleProto>('all', 'tcp', 'udp', 'icmp'), arbCidr, arbPorts, arbCidr, arbPorts)
  .map(([proto, src, sp, dst, dp]) => {
    const ports = proto === 'tcp' || proto === 'udp';
    return { proto, src, srcPorts: ports ? sp : [], dst, dstPorts: ports ? dp : [] };
  });

const arbForward: fc.Arbitrary<Rule> = fc
  .tuple(
    fc.constantFrom<'tcp' | 'udp'>('tcp', 'udp'),
    arbAddr,
    arbAddr,
    fc.integer({ min: 1, max: 65535 }),
    fc.integer({ min: 1, max: 65535 }),
    fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 65534 })),
  )
  .map(([proto, extAddr, inAddr, e, i, len]): Rule => {
    const n = Math.min(len, 65535 - e, 65535 - i);
    return {
      kind: 'forward',
      proto,
      extAddr,
      extPorts: { lo: e, hi: e + n },
      inAddr,
      inPorts: { lo: i, hi: i + n },
    };
  });

const arbRule: fc.Arbitrary<Rule> = fc.oneof(
  arbMatch.map((match): Rule => ({ kind: 'masquerade', match })),
  arbMatch.map((match): Rule => ({ kind: 'accept', match })),
  arbForward,
);

// ---------------------------------------------------------------------------------------------
// Round trip

test('formatRule then parseRule gives the rule back', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(arbRule, (r) => {
      t.deepEqual(parseRule(formatRule(r)), r);
    }),
    { numRuns: NUM_RUNS },
  );
});

test('a file of formatted rules parses back, and listing and warnings never throw', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(fc.array(arbRule, { maxLength: 12 }), fc.array(arbAddr, { maxLength: 3 }), (rules, ext) => {
      const text = rules.map((r, i) => (i % 3 === 0 ? `  ${formatRule(r).toUpperCase()}  # ${i}` : formatRule(r))).join('\n');
      t.deepEqual(parseRules(text), rules);
      t.is(formatRuleTable(rules).split('\n').length, rules.length + 1);
      t.true(Array.isArray(ruleWarnings(rules, ext)));
    }),
    { numRuns: 500 },
  );
});

// ---------------------------------------------------------------------------------------------
// Hostile text

/** Parse one line; any exception but a well-formed RuleSyntaxError fails the property. */
function parseOrSyntaxError(text: string): void {
  try {
    const r = parseRule(text, 3);
    // Whatever parses must survive its own round trip.
    if (JSON.stringify(parseRule(formatRule(r))) !== JSON.stringify(r)) throw new Error('round trip');
  } catch (e: unknown) {
    if (!(e instanceof RuleSyntaxError)) throw e;
    if (e.line !== 3) throw new Error(`line ${e.line}`);
    if (e.column < 1 || e.column > text.length + 1) throw new Error(`column ${e.column} outside the text`);
    if (e.found !== '' && text.slice(e.column - 1, e.column - 1 + e.found.length) !== e.found) {
      throw new Error(`found ${JSON.stringify(e.found)} is not at column ${e.column}`);
    }
  }
}

test('arbitrary strings give a rule or a RuleSyntaxError, never anything else', (t) => {
  logSeed(t);
  fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 80 }), parseOrSyntaxError), { numRuns: NUM_RUNS });
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      try {
        parseRules(s);
      } catch (e: unknown) {
        if (!(e instanceof RuleSyntaxError)) throw e;
      }
    }),
    { numRuns: NUM_RUNS },
  );
  t.pass();
});

const WORDS = [
  'masquerade', 'masq', 'MASQ', 'accept', 'forward', 'all', 'tcp', 'UDP', 'icmp', 'gre', 'from', 'to', 'any',
  '#', '# x', '10.0.0.0/8', '10.0.0.1/8', '192.168.1.0/255.255.255.0', '1.2.3.4/255.0.255.0', '0.0.0.0/0',
  '1.2.3.4', '1.2.3', '256.1.1.1', '01.2.3.4', '/', '1.2.3.4/', '1.2.3.4/33', '80', '0', '65535', '65536',
  '1-2', '2-1', '1:2', '20,21', '20,,21', ',', '-', '80-', '999999999999', '1.2.3.4:80', '1.2.3.4:80-90',
  '1.2.3.4:', ':80', '1.2.3.4:0', '1.2.3.4:1:2', '\t', '\u00a0', 'é',
];

test('token soups give a rule or a RuleSyntaxError that points at what it names', (t) => {
  const soup = fc
    .array(fc.oneof(fc.constantFrom(...WORDS), fc.string({ maxLength: 4 })), { maxLength: 10 })
    .chain((ws) => fc.array(fc.constantFrom(' ', '  ', '\t', ''), { minLength: ws.length, maxLength: ws.length }).map((sp) => ws.map((w, i) => sp[i] + w).join(' ')));
  logSeed(t);
  fc.assert(fc.property(soup, parseOrSyntaxError), { numRuns: NUM_RUNS * 3 });
  // Valid rules with one character changed exercise the deep error paths.
  const mutated = fc
    .tuple(arbRule, fc.nat(), fc.constantFrom(...' /:-,.0123456789#aZ'.split('')), fc.boolean())
    .map(([r, at, ch, insert]) => {
      const s = formatRule(r);
      const i = at % (s.length + 1);
      return s.slice(0, i) + ch + s.slice(insert ? i : i + 1);
    });
  fc.assert(fc.property(mutated, parseOrSyntaxError), { numRuns: NUM_RUNS * 3 });
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// Matcher against a reference

const PROTO_NUM: Record<RuleProto, number> = { all: 0, tcp: 6, udp: 17, icmp: 1 };

function inCidr(c: Cidr, a: number): boolean {
  // Compare the top `prefix` bits arithmetically, independent of the matcher's bit tricks.
  const shift = 2 ** (32 - c.prefix);
  return Math.floor(a / shift) === Math.floor(c.addr / shift);
}

function inPorts(list: readonly PortRange[], p: number): boolean {
  return list.length === 0 || list.some((r) => r.lo <= p && p <= r.hi);
}

function refOutbound(rules: readonly Rule[], proto: number, src: number, sp: number, dst: number, dp: number): number {
  return rules.findIndex(
    (r) =>
      r.kind !== 'forward' &&
      (r.match.proto === 'all' || PROTO_NUM[r.match.proto] === proto) &&
      inCidr(r.match.src, src) &&
      inCidr(r.match.dst, dst) &&
      inPorts(r.match.srcPorts, sp) &&
      inPorts(r.match.dstPorts, dp),
  );
}

function refForward(rules: readonly Rule[], proto: number, addr: number, port: number, reverse: boolean): number {
  return rules.findIndex((r) => {
    if (r.kind !== 'forward' || PROTO_NUM[r.proto] !== proto) return false;
    const a = reverse ? r.inAddr : r.extAddr;
    const pr = reverse ? r.inPorts : r.extPorts;
    return a === addr && pr.lo <= port && port <= pr.hi;
  });
}

const arbProtoNum = fc.constantFrom(1, 6, 17, 47);

/** Packets drawn partly from the rules themselves so that every branch is reached. */
function arbPacketFor(rules: readonly Rule[]) {
  const fromRules: number[] = [];
  const portsFromRules: number[] = [];
  for (const r of rules) {
    if (r.kind === 'forward') {
      fromRules.push(r.extAddr, r.inAddr);
      portsFromRules.push(r.extPorts.lo, r.extPorts.hi, r.inPorts.lo, r.inPorts.hi + 1);
    } else {
      const m = r.match;
      fromRules.push(m.src.addr, (m.src.addr | ~m.src.mask) >>> 0, m.dst.addr, (m.dst.addr - 1) >>> 0);
      for (const p of [...m.srcPorts, ...m.dstPorts]) portsFromRules.push(p.lo, p.hi, Math.min(65535, p.hi + 1));
    }
  }
  const addr = fromRules.length > 0 ? fc.oneof(arbAddr, fc.constantFrom(...fromRules)) : arbAddr;
  const port = portsFromRules.length > 0 ? fc.oneof(arbPort, fc.constantFrom(...portsFromRules)) : arbPort;
  return fc.record({ proto: arbProtoNum, src: addr, sport: port, dst: addr, dport: port });
}

test('RuleSet agrees with the naive reference on random rules and packets', (t) => {
  const scenario = fc
    .array(arbRule, { maxLength: 10 })
    .chain((rules) => fc.tuple(fc.constant(rules), fc.array(arbPacketFor(rules), { minLength: 1, maxLength: 30 })));
  let hits = 0;
  logSeed(t);
  fc.assert(
    fc.property(scenario, ([rules, packets]) => {
      const rs = new RuleSet(rules);
      for (const p of packets) {
        const got = rs.matchOutbound(p.proto, p.src, p.sport, p.dst, p.dport);
        const want = refOutbound(rules, p.proto, p.src, p.sport, p.dst, p.dport);
        if (got !== want) return false;
        if (got >= 0) hits++;
        const action = got < 0 ? RuleAction.None : rules[got].kind === 'masquerade' ? RuleAction.Masquerade : RuleAction.Accept;
        if (rs.actionOf(got) !== action) return false;

        const f = rs.matchForward(p.proto, p.dst, p.dport);
        if (f !== refForward(rules, p.proto, p.dst, p.dport, false)) return false;
        if (f >= 0) {
          const r = rules[f];
          if (r.kind !== 'forward') return false;
          if (rs.forwardInAddr(f) !== r.inAddr) return false;
          const inPort = rs.forwardInPort(f, p.dport);
          if (inPort !== r.inPorts.lo + (p.dport - r.extPorts.lo)) return false;
          if (rs.forwardExtPort(f, inPort) !== p.dport) return false;
        }
        if (rs.matchForwardReverse(p.proto, p.src, p.sport) !== refForward(rules, p.proto, p.src, p.sport, true)) return false;

        const inside = rules.some((r) => r.kind === 'masquerade' && inCidr(r.match.src, p.src));
        if (rs.isInsideSource(p.src) !== inside) return false;
      }
      return true;
    }),
    { numRuns: NUM_RUNS },
  );
  t.true(hits > 0, 'some packets matched some rules');
});

test('a rule shadowed per ruleWarnings never wins a match', (t) => {
  // Soundness of the shadowing warning: if rule j is reported as shadowed by rule i, no packet
  // that reaches the matcher is ever decided by rule j.
  const scenario = fc
    .array(arbMatch.map((match): Rule => ({ kind: 'accept', match })), { minLength: 2, maxLength: 6 })
    .chain((rules) => fc.tuple(fc.constant(rules), fc.array(arbPacketFor(rules), { minLength: 1, maxLength: 40 })));
  let reported = 0;
  logSeed(t);
  fc.assert(
    fc.property(scenario, ([rules, packets]) => {
      const shadowed = new Set<number>();
      for (const w of ruleWarnings(rules, [])) {
        const m = /^rule (\d+): (never matches|redundant):/.exec(w);
        if (m) shadowed.add(Number(m[1]) - 1);
      }
      reported += shadowed.size;
      const rs = new RuleSet(rules);
      return packets.every((p) => !shadowed.has(rs.matchOutbound(p.proto, p.src, p.sport, p.dst, p.dport)));
    }),
    { numRuns: NUM_RUNS },
  );
  t.true(reported > 0, 'the generator produces shadowed rules');
});
