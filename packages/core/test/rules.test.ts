/**
 * rules.test.ts — golden tests for the rule language (rules.ts): parse and canonical format,
 * syntax errors (line, column, expected, found, caret), the ipfwadm-style listing, the
 * compiled matcher on hand-picked packets, and each configuration warning.
 * Randomized checks live in rules.property.test.ts.
 */
import test from 'ava';
import { parseCidr, parseIPv4 } from '../src/addr.js';
import {
  type Rule,
  RuleAction,
  RuleSet,
  RuleSyntaxError,
  formatRule,
  formatRuleTable,
  parseRule,
  parseRules,
  parseRulesAll,
  ruleWarnings,
} from '../src/rules.js';

const ip = (s: string): number => {
  const a = parseIPv4(s);
  if (a === null) throw new Error(`bad test address ${s}`);
  return a;
};
const cidr = (s: string) => {
  const c = parseCidr(s);
  if (c === null) throw new Error(`bad test cidr ${s}`);
  return c;
};

// ---------------------------------------------------------------------------------------------
// Parse and format

test('the 1996 line parses and formats canonically', (t) => {
  const r = parseRule('masquerade all from 192.168.1.0/24 to 0.0.0.0/0');
  t.deepEqual(r, {
    kind: 'masquerade',
    match: { proto: 'all', src: cidr('192.168.1.0/24'), srcPorts: [], dst: cidr('0.0.0.0/0'), dstPorts: [] },
  });
  t.is(formatRule(r), 'masquerade all from 192.168.1.0/24 to any');
  t.deepEqual(parseRule(formatRule(r)), r);
});

test('any, bare addresses and dotted netmasks', (t) => {
  const r = parseRule('accept icmp from 192.168.1.5 to 10.0.0.0/255.0.0.0');
  t.deepEqual(r, {
    kind: 'accept',
    match: { proto: 'icmp', src: cidr('192.168.1.5/32'), srcPorts: [], dst: cidr('10.0.0.0/8'), dstPorts: [] },
  });
  t.is(formatRule(r), 'accept icmp from 192.168.1.5 to 10.0.0.0/8');
  t.is(formatRule(parseRule('accept all from any to any')), 'accept all from any to any');
});

test('port lists on both sides, ranges in either notation', (t) => {
  const r = parseRule('masquerade tcp from 10.0.0.0/8 1024:65535 to any 20,21,8000-8080');
  t.deepEqual(r, {
    kind: 'masquerade',
    match: {
      proto: 'tcp',
      src: cidr('10.0.0.0/8'),
      srcPorts: [{ lo: 1024, hi: 65535 }],
      dst: cidr('0.0.0.0/0'),
      dstPorts: [
        { lo: 20, hi: 20 },
        { lo: 21, hi: 21 },
        { lo: 8000, hi: 8080 },
      ],
    },
  });
  t.is(formatRule(r), 'masquerade tcp from 10.0.0.0/8 1024-65535 to any 20,21,8000-8080');
  t.is(formatRule(parseRule('accept udp from any to 192.168.0.0/16 53')), 'accept udp from any to 192.168.0.0/16 53');
});

test('forwards, single port and ranges', (t) => {
  const a = parseRule('forward tcp 203.0.113.1:80 to 192.168.1.10:8080');
  t.deepEqual(a, {
    kind: 'forward',
    proto: 'tcp',
    extAddr: ip('203.0.113.1'),
    extPorts: { lo: 80, hi: 80 },
    inAddr: ip('192.168.1.10'),
    inPorts: { lo: 8080, hi: 8080 },
  });
  t.is(formatRule(a), 'forward tcp 203.0.113.1:80 to 192.168.1.10:8080');
  const b = parseRule('forward udp 203.0.113.1:6000-6010 to 192.168.1.10:7000-7010');
  t.deepEqual(b, {
    kind: 'forward',
    proto: 'udp',
    extAddr: ip('203.0.113.1'),
    extPorts: { lo: 6000, hi: 6010 },
    inAddr: ip('192.168.1.10'),
    inPorts: { lo: 7000, hi: 7010 },
  });
  t.is(formatRule(b), 'forward udp 203.0.113.1:6000-6010 to 192.168.1.10:7000-7010');
});

test('keywords are case-insensitive and masq abbreviates masquerade', (t) => {
  const canonical = 'masquerade tcp from any to any 80';
  for (const s of [
    'MASQUERADE TCP FROM ANY TO ANY 80',
    'Masq Tcp From Any To aNy 80',
    'masq tcp from 0.0.0.0/0 to 0.0.0.0/0 80',
  ]) {
    t.is(formatRule(parseRule(s)), canonical, s);
  }
  t.is(formatRule(parseRule('FORWARD UDP 1.2.3.4:53 TO 10.0.0.2:53')), 'forward udp 1.2.3.4:53 to 10.0.0.2:53');
});

test('files: comments, blank lines, tabs, CRLF', (t) => {
  const text = [
    '# masq.rules',
    '',
    '   ',
    '\taccept all from 192.168.1.0/24 to 192.168.0.0/16   # stay inside',
    'masquerade all from 192.168.1.0/24 to 0.0.0.0/0\r',
    '# forward the web server',
    'forward tcp 203.0.113.1:80 to 192.168.1.10:80#no space before the comment',
    '',
  ].join('\n');
  const rules = parseRules(text);
  t.deepEqual(rules.map(formatRule), [
    'accept all from 192.168.1.0/24 to 192.168.0.0/16',
    'masquerade all from 192.168.1.0/24 to any',
    'forward tcp 203.0.113.1:80 to 192.168.1.10:80',
  ]);
  const all = parseRulesAll(text);
  t.deepEqual(all.lines, [4, 5, 7]);
  t.deepEqual(all.errors, []);
  t.deepEqual(parseRules(''), []);
  t.deepEqual(parseRules('# nothing\n\n'), []);
});

test('parseRulesAll collects every error with its line; parseRules throws the first', (t) => {
  const text = 'masq all from any to any\nmasq gre from any to any\n\naccept all from 10.0.0.1/8 to any\naccept all from any to any';
  const all = parseRulesAll(text);
  t.is(all.rules.length, 2);
  t.deepEqual(all.lines, [1, 5]);
  t.deepEqual(
    all.errors.map((e) => [e.line, e.column, e.found]),
    [
      [2, 6, 'gre'],
      [4, 17, '10.0.0.1/8'],
    ],
  );
  const e = t.throws(() => parseRules(text), { instanceOf: RuleSyntaxError });
  t.is(e?.line, 2);
});

// ---------------------------------------------------------------------------------------------
// Errors

interface ErrorCase {
  name: string;
  text: string;
  column: number;
  expected: string;
  found: string;
}

const errorCases: ErrorCase[] = [
  {
    name: 'empty rule',
    text: '   # only a comment',
    column: 1,
    expected: 'a rule: "masquerade", "accept" or "forward"',
    found: '',
  },
  {
    name: 'bad keyword',
    text: 'masqurade all from any to any',
    column: 1,
    expected: 'a rule: "masquerade", "accept" or "forward"',
    found: 'masqurade',
  },
  {
    name: "the listing's Type column pasted back (acc/m)",
    text: 'acc/m tcp from 10.1.0.0/16 to any',
    column: 1,
    expected: 'a rule: "masquerade", "accept" or "forward" (the listing\'s "acc/m" is written "masquerade")',
    found: 'acc/m',
  },
  {
    name: "the listing's Type column pasted back (FWD, any case)",
    text: 'FWD tcp 198.51.100.100:8080 to 10.0.0.2:80',
    column: 1,
    expected: 'a rule: "masquerade", "accept" or "forward" (the listing\'s "FWD" is written "forward")',
    found: 'FWD',
  },
  {
    name: 'bad proto',
    text: 'masquerade gre from any to any',
    column: 12,
    expected: 'a protocol: "all", "tcp", "udp" or "icmp"',
    found: 'gre',
  },
  {
    name: 'forward of a protocol without ports',
    text: 'forward icmp 1.2.3.4:1 to 10.0.0.1:1',
    column: 9,
    expected: 'a protocol for a forward: "tcp" or "udp"',
    found: 'icmp',
  },
  {
    name: 'missing from',
    text: 'masquerade all 10.0.0.0/8 to any',
    column: 16,
    expected: '"from"',
    found: '10.0.0.0/8',
  },
  {
    name: 'ports with icmp (source)',
    text: 'masquerade icmp from any 80 to any',
    column: 26,
    expected: '"to" (ports are allowed only with tcp or udp)',
    found: '80',
  },
  {
    name: 'ports with all (destination)',
    text: 'accept all from any to any 53',
    column: 28,
    expected: 'end of line (ports are allowed only with tcp or udp)',
    found: '53',
  },
  {
    name: 'bad CIDR /33',
    text: 'masquerade all from 192.168.1.0/33 to any',
    column: 21,
    expected: 'a CIDR such as 192.168.1.0/24 or "any"',
    found: '192.168.1.0/33',
  },
  {
    name: 'bad address',
    text: 'masquerade all from any to 10.0.0.256',
    column: 28,
    expected: 'a CIDR such as 192.168.1.0/24 or "any"',
    found: '10.0.0.256',
  },
  {
    name: 'host bits set',
    text: 'masquerade all from 10.0.0.1/24 to any',
    column: 21,
    expected: 'a network address without host bits set, such as 10.0.0.0/24',
    found: '10.0.0.1/24',
  },
  {
    name: 'non-contiguous netmask',
    text: 'accept all from 10.0.0.0/255.0.255.0 to any',
    column: 17,
    expected: 'a contiguous netmask such as 255.255.255.0',
    found: '10.0.0.0/255.0.255.0',
  },
  {
    name: 'missing to',
    text: 'masquerade all from 192.168.1.0/24',
    column: 35,
    expected: '"to"',
    found: '',
  },
  {
    name: 'missing to before a comment',
    text: 'masquerade all from 192.168.1.0/24   # oops',
    column: 35,
    expected: '"to"',
    found: '',
  },
  {
    name: 'misspelt to after tcp source',
    text: 'masquerade tcp from any too any',
    column: 25,
    expected: 'ports or "to"',
    found: 'too',
  },
  {
    name: 'trailing garbage',
    text: 'masquerade all from any to any please',
    column: 32,
    expected: 'end of line',
    found: 'please',
  },
  {
    name: 'a service name where tcp ports may stand',
    text: 'masquerade tcp from any to any http',
    column: 32,
    expected: 'ports or end of line',
    found: 'http',
  },
  {
    name: 'trailing garbage after tcp ports',
    text: 'masquerade tcp from any to any 80 443',
    column: 35,
    expected: 'end of line',
    found: '443',
  },
  {
    name: 'port > 65535 inside a list',
    text: 'masquerade tcp from any to any 20,21,65536',
    column: 38,
    expected: 'a port number 0-65535',
    found: '65536',
  },
  {
    name: 'port > 65535 as range end',
    text: 'masquerade udp from any 1024-70000 to any',
    column: 30,
    expected: 'a port number 0-65535',
    found: '70000',
  },
  {
    name: 'reversed range',
    text: 'masquerade tcp from any to any 20,8080-8000',
    column: 35,
    expected: 'a range with its low port first, such as 8000-8080',
    found: '8080-8000',
  },
  {
    name: 'empty list element',
    text: 'masquerade tcp from any to any 20,,21',
    column: 32,
    expected: 'ports such as 80, 1024-65535 or 20,21,8000-8080',
    found: '20,,21',
  },
  {
    name: 'half a range',
    text: 'masquerade tcp from any to any 8000-',
    column: 32,
    expected: 'a port or a range such as 1024-65535',
    found: '8000-',
  },
  {
    name: 'not a port',
    text: 'masquerade tcp from any to any 8o',
    column: 32,
    expected: 'a port number 0-65535',
    found: '8o',
  },
  {
    name: 'unequal forward range lengths',
    text: 'forward udp 203.0.113.1:6000-6010 to 192.168.1.10:7000-7005',
    column: 51,
    expected: 'a range of 11 ports to match 6000-6010',
    found: '7000-7005',
  },
  {
    name: 'single port forwarded to a range',
    text: 'forward tcp 203.0.113.1:80 to 192.168.1.10:80-81',
    column: 44,
    expected: 'a single port to match 80',
    found: '80-81',
  },
  {
    name: 'forward endpoint without a port',
    text: 'forward tcp 203.0.113.1 to 192.168.1.10:80',
    column: 13,
    expected: 'an address:port such as 203.0.113.1:80 or 203.0.113.1:6000-6010',
    found: '203.0.113.1',
  },
  {
    name: 'forward endpoint with a bad address',
    text: 'forward tcp 203.0.113.1:80 to 192.168.1:80',
    column: 31,
    expected: 'an IPv4 address such as 203.0.113.1',
    found: '192.168.1',
  },
  {
    name: 'forward to port 0',
    text: 'forward tcp 203.0.113.1:80 to 192.168.1.10:0',
    column: 44,
    expected: 'a port number 1-65535',
    found: '0',
  },
  {
    name: 'forward missing to',
    text: 'forward tcp 203.0.113.1:80',
    column: 27,
    expected: '"to"',
    found: '',
  },
];

for (const c of errorCases) {
  test(`error: ${c.name}`, (t) => {
    const e = t.throws(() => parseRule(c.text, 7), { instanceOf: RuleSyntaxError });
    if (e === undefined) return;
    t.is(e.line, 7);
    t.is(e.column, c.column);
    t.is(e.expected, c.expected);
    t.is(e.found, c.found);
    t.is(e.lineText, c.text);
    // The found text sits exactly at the column.
    if (c.found !== '') t.is(c.text.slice(c.column - 1, c.column - 1 + c.found.length), c.found);
    const [head, echo, caret] = e.message.split('\n');
    const foundText = c.found === '' ? 'end of line' : `"${c.found}"`;
    t.is(head, `line 7, column ${c.column}: expected ${c.expected}, found ${foundText}`);
    t.is(echo, `  ${c.text}`);
    t.is(caret, `  ${' '.repeat(c.column - 1)}^${'~'.repeat(Math.max(0, c.found.length - 1))}`);
  });
}

test('the error message, verbatim', (t) => {
  const e = t.throws(() => parseRule('masquerade all from 192.168.1.0/33 to any'), { instanceOf: RuleSyntaxError });
  t.is(
    e?.message,
    'line 1, column 21: expected a CIDR such as 192.168.1.0/24 or "any", found "192.168.1.0/33"\n' +
      '  masquerade all from 192.168.1.0/33 to any\n' +
      '                      ^~~~~~~~~~~~~~',
  );
  t.is(e?.name, 'RuleSyntaxError');
});

test('the caret lines up under a tab-indented line', (t) => {
  const e = t.throws(() => parseRules('\n\tmasq\tall from any to nowhere'), { instanceOf: RuleSyntaxError });
  t.is(e?.line, 2);
  t.is(e?.column, 23);
  t.is(e?.message.split('\n')[1], '   masq all from any to nowhere');
  t.is(e?.message.split('\n')[2], '  ' + ' '.repeat(22) + '^~~~~~~');
});

// ---------------------------------------------------------------------------------------------
// Listing

test('formatRuleTable has the ipfwadm -F -l look', (t) => {
  const rules = parseRules(`
accept all from 192.168.1.0/24 to 10.8.0.0/16
accept tcp from 192.168.1.0/24 to any 25
masquerade all from 192.168.1.0/24 to 0.0.0.0/0
masquerade tcp from 10.0.0.0/8 1024-65535 to any 20,21,8000-8080
masquerade udp from 10.0.0.0/8 to any
masquerade icmp from 10.1.2.3 to any
forward tcp 203.0.113.1:80 to 192.168.1.10:8080
forward udp 203.0.113.1:6000-6010 to 192.168.1.11:7000-7010
`);
  t.is(
    formatRuleTable(rules),
    [
      'Type  Prot From                 To                   Ports',
      'acc   all  192.168.1.0/24       10.8.0.0/16          n/a',
      'acc   tcp  192.168.1.0/24       anywhere             * -> 25',
      'acc/m all  192.168.1.0/24       anywhere             n/a',
      'acc/m tcp  10.0.0.0/8           anywhere             1024-65535 -> 20,21,8000-8080',
      'acc/m udp  10.0.0.0/8           anywhere             any',
      'acc/m icmp 10.1.2.3             anywhere             n/a',
      'fwd   tcp  anywhere             203.0.113.1          203.0.113.1:80 -> 192.168.1.10:8080',
      'fwd   udp  anywhere             203.0.113.1          203.0.113.1:6000-6010 -> 192.168.1.11:7000-7010',
    ].join('\n'),
  );
  t.is(formatRuleTable([]), 'Type  Prot From                 To                   Ports');
});

test('formatRuleTable keeps columns aligned at the widest addresses', (t) => {
  const table = formatRuleTable(parseRules('masquerade tcp from 255.255.255.255 1-2 to 255.255.255.254/31 3'));
  t.is(table.split('\n')[1], 'acc/m tcp  255.255.255.255      255.255.255.254/31   1-2 -> 3');
});

// ---------------------------------------------------------------------------------------------
// Matcher

const TCP = 6;
const UDP = 17;
const ICMP = 1;

test('first match wins; accept placed before masquerade exempts traffic', (t) => {
  const rs = new RuleSet(
    parseRules(`
accept all from 192.168.1.0/24 to 10.8.0.0/16
masquerade all from 192.168.1.0/24 to any
masquerade all from 192.168.0.0/16 to any
`),
  );
  const i1 = rs.matchOutbound(TCP, ip('192.168.1.7'), 40000, ip('10.8.3.4'), 22);
  t.is(i1, 0);
  t.is(rs.actionOf(i1), RuleAction.Accept);
  const i2 = rs.matchOutbound(TCP, ip('192.168.1.7'), 40000, ip('8.8.8.8'), 443);
  t.is(i2, 1);
  t.is(rs.actionOf(i2), RuleAction.Masquerade);
  t.is(rs.matchOutbound(UDP, ip('192.168.2.7'), 5353, ip('10.8.3.4'), 53), 2);
  t.is(rs.matchOutbound(UDP, ip('172.16.0.1'), 5353, ip('8.8.8.8'), 53), -1);
  t.is(rs.actionOf(-1), RuleAction.None);
});

test('proto all matches any protocol number, tcp only tcp', (t) => {
  const rs = new RuleSet(
    parseRules(`
masquerade tcp from 10.0.0.0/8 to any
accept all from 10.0.0.0/8 to any
`),
  );
  t.is(rs.matchOutbound(TCP, ip('10.1.1.1'), 1, ip('1.1.1.1'), 2), 0);
  t.is(rs.matchOutbound(UDP, ip('10.1.1.1'), 1, ip('1.1.1.1'), 2), 1);
  t.is(rs.matchOutbound(ICMP, ip('10.1.1.1'), 0, ip('1.1.1.1'), 0), 1);
  t.is(rs.matchOutbound(47, ip('10.1.1.1'), 0, ip('1.1.1.1'), 0), 1);
  t.is(rs.matchOutbound(47, ip('11.1.1.1'), 0, ip('1.1.1.1'), 0), -1);
});

test('port lists on both sides', (t) => {
  const rs = new RuleSet(parseRules('masquerade tcp from 10.0.0.0/8 1024-65535 to any 20,21,8000-8080'));
  const src = ip('10.0.0.9');
  const dst = ip('198.51.100.1');
  t.is(rs.matchOutbound(TCP, src, 1024, dst, 21), 0);
  t.is(rs.matchOutbound(TCP, src, 65535, dst, 20), 0);
  t.is(rs.matchOutbound(TCP, src, 40000, dst, 8000), 0);
  t.is(rs.matchOutbound(TCP, src, 40000, dst, 8080), 0);
  t.is(rs.matchOutbound(TCP, src, 40000, dst, 8081), -1);
  t.is(rs.matchOutbound(TCP, src, 40000, dst, 22), -1);
  t.is(rs.matchOutbound(TCP, src, 1023, dst, 21), -1);
  t.is(rs.matchOutbound(UDP, src, 40000, dst, 21), -1);
});

test('addresses at the top of the uint32 range match', (t) => {
  const rs = new RuleSet(parseRules('accept all from 255.255.255.255 to 128.0.0.0/1'));
  t.is(rs.matchOutbound(UDP, 0xffffffff, 1, 0x80000000, 2), 0);
  t.is(rs.matchOutbound(UDP, 0xffffffff, 1, 0x7fffffff, 2), -1);
  t.is(rs.matchOutbound(UDP, 0xfffffffe, 1, 0x80000000, 2), -1);
});

test('forwards: lookup, mapping both ways, indices are rule indices', (t) => {
  const rs = new RuleSet(
    parseRules(`
masquerade all from 192.168.1.0/24 to any
forward tcp 203.0.113.1:80 to 192.168.1.10:8080
forward udp 203.0.113.1:6000-6010 to 192.168.1.11:7000-7010
forward tcp 203.0.113.2:80 to 192.168.1.12:80
`),
  );
  const ext = ip('203.0.113.1');
  const f = rs.matchForward(TCP, ext, 80);
  t.is(f, 1);
  t.is(rs.actionOf(f), RuleAction.None);
  t.is(rs.forwardInAddr(f), ip('192.168.1.10'));
  t.is(rs.forwardExtAddr(f), ext);
  t.is(rs.forwardInPort(f, 80), 8080);
  t.is(rs.matchForward(UDP, ext, 80), -1);
  t.is(rs.matchForward(TCP, ext, 81), -1);
  t.is(rs.matchForward(TCP, ip('203.0.113.2'), 80), 3);
  const g = rs.matchForward(UDP, ext, 6007);
  t.is(g, 2);
  t.is(rs.forwardInPort(g, 6007), 7007);
  t.is(rs.matchForward(UDP, ext, 6011), -1);
  t.is(rs.matchForwardReverse(UDP, ip('192.168.1.11'), 7010), 2);
  t.is(rs.forwardExtPort(2, 7010), 6010);
  t.is(rs.matchForwardReverse(TCP, ip('192.168.1.10'), 8080), 1);
  t.is(rs.matchForwardReverse(TCP, ip('192.168.1.10'), 80), -1);
  // Forwards never answer an outbound lookup.
  t.is(rs.matchOutbound(TCP, ip('10.0.0.1'), 1, ext, 80), -1);
});

test('isInsideSource looks at masquerade sources only', (t) => {
  const rs = new RuleSet(
    parseRules(`
accept all from 10.0.0.0/8 to any
masquerade tcp from 192.168.1.0/24 1024-65535 to 198.51.100.0/24 80
`),
  );
  t.true(rs.isInsideSource(ip('192.168.1.200')));
  t.false(rs.isInsideSource(ip('192.168.2.1')));
  t.false(rs.isInsideSource(ip('10.0.0.1')));
  t.false(new RuleSet([]).isInsideSource(0));
});

test('RuleSet refuses malformed hand-built rules', (t) => {
  const good = parseRule('masquerade tcp from 10.0.0.0/8 to any 80');
  const bad: Rule[] = [
    { kind: 'masquerade', match: { ...(good.kind === 'masquerade' ? good.match : never()), proto: 'icmp' } },
    {
      kind: 'accept',
      match: { proto: 'all', src: { addr: ip('10.0.0.1'), prefix: 8, mask: 0xff000000 }, srcPorts: [], dst: cidr('0.0.0.0/0'), dstPorts: [] },
    },
    { kind: 'forward', proto: 'tcp', extAddr: 1, extPorts: { lo: 1, hi: 2 }, inAddr: 2, inPorts: { lo: 5, hi: 5 } },
    { kind: 'forward', proto: 'tcp', extAddr: 1, extPorts: { lo: 9, hi: 8 }, inAddr: 2, inPorts: { lo: 9, hi: 8 } },
  ];
  for (const r of bad) {
    t.throws(() => new RuleSet([good, r]), { instanceOf: RangeError, message: /^rule 2: / });
  }
  t.notThrows(() => new RuleSet([good]));
});

function never(): never {
  throw new Error('unreachable');
}

// ---------------------------------------------------------------------------------------------
// Warnings

const EXT = [ip('203.0.113.1')];

test('a clean configuration has no warnings', (t) => {
  const rules = parseRules(`
accept all from 192.168.1.0/24 to 192.168.0.0/16
masquerade all from 192.168.1.0/24 to any
masquerade all from 100.64.0.0/10 to any
forward tcp 203.0.113.1:80 to 192.168.1.10:8080
`);
  t.deepEqual(ruleWarnings(rules, EXT), []);
});

test('warns about a public masqueraded source', (t) => {
  t.deepEqual(ruleWarnings(parseRules('masquerade all from 198.51.100.0/24 to any'), EXT), [
    'rule 1: masqueraded source 198.51.100.0/24 is not a private network (RFC 1918 or RFC 6598 shared space)',
  ]);
  // Shared space (RFC 6598) and RFC 1918 sources pass; accept rules are not masquerading.
  t.deepEqual(ruleWarnings(parseRules('masq all from 100.64.1.0/24 to any\naccept all from 8.8.8.8 to any'), EXT), []);
});

test('warns when an external address lies inside a masqueraded source', (t) => {
  t.deepEqual(ruleWarnings(parseRules('masquerade all from 192.168.1.0/24 to any'), [ip('192.168.1.1')]), [
    'rule 1: external address 192.168.1.1 lies inside masqueraded source 192.168.1.0/24',
  ]);
});

test('warns about rules shadowed by earlier broader rules', (t) => {
  const rules = parseRules(`
masquerade all from 192.168.0.0/16 to any
accept all from 192.168.1.0/24 to 10.8.0.0/16
masquerade tcp from 192.168.1.0/24 to any 80
accept tcp from 10.0.0.0/8 to any 1-1000
accept tcp from 10.0.0.0/8 to any 20,21,500-600
accept tcp from 10.0.0.0/8 to any 900-1001
accept udp from 10.0.0.0/8 to any 53
`);
  t.deepEqual(ruleWarnings(rules, EXT), [
    'rule 2: never matches: rule 1 (masquerade all from 192.168.0.0/16 to any) masquerades all of its traffic first',
    'rule 3: redundant: rule 1 (masquerade all from 192.168.0.0/16 to any) already matches everything it does',
    'rule 5: redundant: rule 4 (accept tcp from 10.0.0.0/8 to any 1-1000) already matches everything it does',
  ]);
});

test('overlapping port ranges of one earlier rule together shadow a later rule', (t) => {
  const rules = parseRules(`
accept tcp from any 0-1023 to any 1-100,50-200
accept tcp from any 1024-65535 to any
masquerade tcp from 10.0.0.0/8 to any 150
masquerade tcp from 10.0.0.0/8 0-1024 to any 150
`);
  // Rule 3 (any source port) is split between rules 1 and 2, which is not "shadowed by an
  // earlier rule": no single earlier rule covers it. Rule 3 itself covers rule 4.
  t.deepEqual(ruleWarnings(rules, EXT), [
    'rule 4: redundant: rule 3 (masquerade tcp from 10.0.0.0/8 to any 150) already matches everything it does',
  ]);
  const narrower = parseRules('accept tcp from any 0-1023 to any 1-100,50-200\nmasq tcp from 10.0.0.0/8 53 to any 150,1,99-199');
  t.deepEqual(ruleWarnings(narrower, EXT), [
    'rule 2: never matches: rule 1 (accept tcp from any 0-1023 to any 1-100,50-200) accepts all of its traffic first',
  ]);
});

test('warns about shadowed and overlapping forwards', (t) => {
  const rules = parseRules(`
masquerade all from 192.168.1.0/24 to any
forward tcp 203.0.113.1:8000-8010 to 192.168.1.10:8000-8010
forward tcp 203.0.113.1:8005 to 192.168.1.11:80
forward tcp 203.0.113.1:8008-8020 to 192.168.1.12:9008-9020
forward udp 203.0.113.1:8005 to 192.168.1.11:80
`);
  t.deepEqual(ruleWarnings(rules, EXT), [
    'rule 3: never matches: rule 2 (forward tcp 203.0.113.1:8000-8010 to 192.168.1.10:8000-8010) forwards all of its ports first',
    'rule 4: ports 8008-8010 are forwarded by rule 2 (forward tcp 203.0.113.1:8000-8010 to 192.168.1.10:8000-8010) first',
  ]);
});

test('warns about a forward to an inside address that no masquerade source covers', (t) => {
  const rules = parseRules(`
masquerade all from 192.168.1.0/24 to any
forward tcp 203.0.113.1:25 to 192.168.2.25:25
`);
  t.deepEqual(ruleWarnings(rules, EXT), [
    'rule 2: inside address 192.168.2.25 is not in any masquerade source; the forward works, but only its replies are translated (its own connections are not masqueraded)',
  ]);
});

test('warns about a forward on an address that is not external', (t) => {
  const rules = parseRules('masquerade all from 192.168.1.0/24 to any\nforward udp 203.0.113.9:53 to 192.168.1.2:53');
  t.deepEqual(ruleWarnings(rules, EXT), ['rule 2: 203.0.113.9 is not one of the external addresses']);
  t.deepEqual(ruleWarnings(rules, []), []);
});
