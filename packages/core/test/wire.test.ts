/**
 * wire.test.ts — the packet views (src/wire): golden bytes per header from real captures
 * (decode every field; setters write into a 0xa5-filled buffer so a stray or missing write
 * shows), the single validation check per header and its drop reasons (directly and through
 * the Nat), the RFC 1071/1624 checksum helpers property-tested against the independent
 * oracle's full recomputation, the RFC 768 zero-checksum rule, and the pretty-printer.
 */
import test from 'ava';
import fc from 'fast-check';
import { logSeed } from './helpers/seed.js';
import { DropReason, DROP_REASON_COUNT, DROP_REASON_LABELS, wireDrop } from '../src/drop.js';
import { Nat } from '../src/nat.js';
import * as ip from '../src/wire/ipv4.js';
import * as tcpv from '../src/wire/tcp.js';
import * as udpv from '../src/wire/udp.js';
import * as icmpv from '../src/wire/icmp.js';
import * as ck from '../src/wire/checksum.js';
import { u16, u32, put16, put32 } from '../src/wire/bytes.js';
import { formatPacket } from '../src/wire/print.js';
import { WireError, WIRE_ERROR_LABELS } from '../src/wire/result.js';
import {
  FRAG_FIRST,
  FRAG_PAYLOAD,
  FRAG_SECOND,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_PORT_UNREACH,
  TCP_PSH,
  TCP_SYN,
  TCP_SYNACK,
  UDP_DNS,
} from './fixtures/captures.js';
import { internetChecksum, problems, pseudoHeader, fillIpChecksum, fillL4Checksum } from './helpers/oracle.js';
import { addr, fragment, icmpEcho, icmpError, natIn, natOut, tcp, udp } from './helpers/packets.js';

const A5 = 0xa5;
const INSIDE = '10.200.0.2';
const REMOTE = '198.51.100.10';

// ---------------------------------------------------------------------------------------------
// The captures themselves, and the oracle against the kernel

test('captures pass the oracle (outer checksums as the kernel and tcpdump computed them)', (t) => {
  for (const [name, p] of Object.entries({ UDP_DNS, TCP_SYN, TCP_SYNACK, TCP_PSH, ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY, FRAG_FIRST, FRAG_SECOND })) {
    t.deepEqual(problems(p), [], name);
  }
  // The error quotes the datagram as it crossed loopback, with the partial UDP checksum.
  t.deepEqual(problems(ICMP_PORT_UNREACH), ['quoted L4: UDP checksum 0x352c, should be 0xeb3e']);
});

test('oracle agrees with the kernel on a fragmented datagram\'s UDP checksum', (t) => {
  // The kernel computed 0x8c2c in software over the whole 1544-byte datagram.
  const whole = udp({ src: INSIDE, dst: REMOTE, sport: 40002, dport: 5353, ipId: 9913, payload: FRAG_PAYLOAD });
  t.is(u16(whole, 26), 0x8c2c);
  const frags = fragment(whole, [976]);
  t.is(frags.length, 2);
  t.deepEqual(frags[0], FRAG_FIRST);
  t.deepEqual(frags[1], FRAG_SECOND);
});

// ---------------------------------------------------------------------------------------------
// Golden decode

test('ipv4: every field of a captured header', (t) => {
  const b = UDP_DNS;
  t.is(ip.validateIPv4(b, 0, b.length), WireError.None);
  t.is(ip.version(b, 0), 4);
  t.is(ip.headerLen(b, 0), 20);
  t.is(ip.totalLen(b, 0), 39);
  t.is(ip.id(b, 0), 9908);
  t.is(ip.flagsFrag(b, 0), 0x4000);
  t.is(ip.fragOffset(b, 0), 0);
  t.false(ip.moreFragments(b, 0));
  t.false(ip.isFragment(b, 0));
  t.is(ip.ttl(b, 0), 64);
  t.is(ip.proto(b, 0), ip.IpProto.Udp);
  t.is(ip.check(b, 0), 0xdf0a);
  t.is(ip.src(b, 0), addr(INSIDE));
  t.is(ip.dst(b, 0), addr(REMOTE));
  t.is(b[ip.TOS], 0);
  t.is(ICMP_PORT_UNREACH[ip.TOS], 0xc0);
  // Fragments: first (MF, offset 0) and second (offset 976 = 122 units).
  t.true(ip.moreFragments(FRAG_FIRST, 0));
  t.true(ip.isFragment(FRAG_FIRST, 0));
  t.is(ip.fragOffset(FRAG_FIRST, 0), 0);
  t.false(ip.moreFragments(FRAG_SECOND, 0));
  t.true(ip.isFragment(FRAG_SECOND, 0));
  t.is(ip.fragOffset(FRAG_SECOND, 0), 122);
  t.is(ip.id(FRAG_SECOND, 0), 9913);
  t.is(ip.flagsFrag(TCP_SYNACK, 0), ip.FLAG_DF);
  t.is(ip.id(TCP_SYNACK, 0), 0);
});

test('ipv4: views at a non-zero offset read the same fields', (t) => {
  const buf = new Uint8Array(7 + UDP_DNS.length + 5).fill(A5);
  buf.set(UDP_DNS, 7);
  t.is(ip.validateIPv4(buf, 7, UDP_DNS.length), WireError.None);
  t.is(ip.src(buf, 7), addr(INSIDE));
  t.is(ip.dst(buf, 7), addr(REMOTE));
  t.is(udpv.sport(buf, 27), 40000);
  t.is(udpv.length(buf, 27), 19);
});

test('tcp: every field of a captured SYN, SYN/ACK and data segment', (t) => {
  const l4 = 20;
  t.is(tcpv.validateTcp(TCP_SYN, l4, 40), WireError.None);
  t.is(tcpv.sport(TCP_SYN, l4), 40001);
  t.is(tcpv.dport(TCP_SYN, l4), 8080);
  t.is(tcpv.seq(TCP_SYN, l4), 2604359440);
  t.is(tcpv.ack(TCP_SYN, l4), 0);
  t.is(tcpv.dataOffset(TCP_SYN, l4), 40);
  t.is(tcpv.flags(TCP_SYN, l4), tcpv.TcpFlag.Syn);
  t.is(tcpv.window(TCP_SYN, l4), 65280);
  t.is(u16(TCP_SYN, l4 + tcpv.CHECK), 0x8563);
  t.is(u16(TCP_SYN, l4 + tcpv.URGENT), 0);
  t.is(tcpv.flags(TCP_SYNACK, l4), tcpv.TcpFlag.Syn | tcpv.TcpFlag.Ack);
  t.is(tcpv.seq(TCP_SYNACK, l4), 395557412);
  t.is(tcpv.ack(TCP_SYNACK, l4), 2604359441);
  t.is(tcpv.window(TCP_SYNACK, l4), 65412);
  t.is(tcpv.flags(TCP_PSH, l4), tcpv.TcpFlag.Psh | tcpv.TcpFlag.Ack);
  t.is(tcpv.dataOffset(TCP_PSH, l4), 32);
  t.is(tcpv.seq(TCP_PSH, l4), 2604359441);
  t.is(tcpv.ack(TCP_PSH, l4), 395557413);
  t.is(tcpv.window(TCP_PSH, l4), 64);
  t.is(new TextDecoder().decode(TCP_PSH.subarray(l4 + 32)), 'hello');
  t.is(tcpv.flagString(tcpv.TcpFlag.Syn), 'S');
  t.is(tcpv.flagString(tcpv.TcpFlag.Syn | tcpv.TcpFlag.Ack), 'S.');
  t.is(tcpv.flagString(tcpv.TcpFlag.Psh | tcpv.TcpFlag.Ack), 'P.');
  t.is(tcpv.flagString(tcpv.TcpFlag.Fin | tcpv.TcpFlag.Ack), 'F.');
  t.is(tcpv.flagString(tcpv.TcpFlag.Rst), 'R');
  t.is(tcpv.flagString(0xff), 'SFRPUEW.');
  t.is(tcpv.flagString(0), 'none');
});

test('udp: every field of a captured datagram', (t) => {
  t.is(udpv.validateUdp(UDP_DNS, 20, 19), WireError.None);
  t.is(udpv.sport(UDP_DNS, 20), 40000);
  t.is(udpv.dport(UDP_DNS, 20), 53);
  t.is(udpv.length(UDP_DNS, 20), 19);
  t.is(udpv.check(UDP_DNS, 20), 0xeb3e);
  t.is(new TextDecoder().decode(UDP_DNS.subarray(28)), 'masq golden');
});

test('icmp: every field of a captured echo request/reply and port unreachable', (t) => {
  const l4 = 20;
  t.is(icmpv.validateIcmp(ICMP_ECHO_REQUEST, l4, 16), WireError.None);
  t.is(icmpv.type(ICMP_ECHO_REQUEST, l4), icmpv.ECHO_REQUEST);
  t.is(icmpv.code(ICMP_ECHO_REQUEST, l4), 0);
  t.is(u16(ICMP_ECHO_REQUEST, l4 + icmpv.CHECK), 0xbb01);
  t.is(icmpv.id(ICMP_ECHO_REQUEST, l4), 23594);
  t.is(icmpv.seq(ICMP_ECHO_REQUEST, l4), 1);
  t.is(icmpv.type(ICMP_ECHO_REPLY, l4), icmpv.ECHO_REPLY);
  t.is(icmpv.id(ICMP_ECHO_REPLY, l4), 23594);
  t.true(icmpv.isQuery(icmpv.ECHO_REPLY) && icmpv.isQueryRequest(icmpv.ECHO_REQUEST) && !icmpv.isQueryRequest(icmpv.ECHO_REPLY));
  const e = ICMP_PORT_UNREACH;
  t.is(icmpv.validateIcmp(e, l4, 47), WireError.None);
  t.is(icmpv.type(e, l4), icmpv.DEST_UNREACH);
  t.is(icmpv.code(e, l4), icmpv.CODE_PORT_UNREACH);
  t.true(icmpv.isError(icmpv.type(e, l4)));
  const inner = l4 + icmpv.EMBEDDED;
  t.is(ip.validateEmbedded(e, inner, 39), WireError.None);
  t.is(ip.src(e, inner), addr(INSIDE));
  t.is(ip.dst(e, inner), addr(REMOTE));
  t.is(udpv.sport(e, inner + 20), 40000);
  t.is(udpv.dport(e, inner + 20), 53);
  // Frag-needed carries the next-hop MTU in the second word (RFC 1191).
  const fn = icmpError({ src: REMOTE, dst: INSIDE, type: 3, code: 4, mtu: 1400, quote: UDP_DNS });
  t.is(icmpv.nextHopMtu(fn, l4), 1400);
  t.is(icmpv.typeName(11), 'time exceeded');
  t.is(icmpv.typeName(42), 'type-42');
});

// ---------------------------------------------------------------------------------------------
// Golden encode: builders and setters into a 0xa5-filled buffer

test('builders reproduce the captures byte for byte, even over a 0xa5-filled buffer', (t) => {
  t.deepEqual(udp({ src: INSIDE, dst: REMOTE, sport: 40000, dport: 53, ipId: 9908, df: true, payload: 'masq golden', fill: A5 }), UDP_DNS);
  t.deepEqual(
    tcp({
      src: INSIDE, dst: REMOTE, sport: 40001, dport: 8080, ipId: 0x7950, df: true, flags: 'S', seq: 2604359440, ack: 0, win: 65280, fill: A5,
      options: [0x02, 0x04, 0x03, 0xc0, 0x04, 0x02, 0x08, 0x0a, 0xa7, 0x88, 0x32, 0xdf, 0, 0, 0, 0, 0x01, 0x03, 0x03, 0x0a],
    }),
    TCP_SYN,
  );
  t.deepEqual(
    tcp({
      src: INSIDE, dst: REMOTE, sport: 40001, dport: 8080, ipId: 0x7952, df: true, flags: 'PA', seq: 2604359441, ack: 395557413, win: 64, fill: A5,
      options: [0x01, 0x01, 0x08, 0x0a, 0xa7, 0x88, 0x32, 0xe0, 0xf8, 0xaa, 0x1b, 0x8c], payload: 'hello',
    }),
    TCP_PSH,
  );
  t.deepEqual(
    icmpEcho({ src: INSIDE, dst: REMOTE, id: 23594, seq: 1, payload: [0x6d, 0x61, 0x73, 0x71, 0, 0, 0, 0], df: true, fill: A5, ipId: 0xb6f7 }),
    ICMP_ECHO_REQUEST,
  );
  const quoted = ICMP_PORT_UNREACH.subarray(28);
  t.deepEqual(
    icmpError({ src: REMOTE, dst: INSIDE, tos: 0xc0, ipId: 19083, type: 3, code: 3, quote: quoted, quoteBytes: Infinity, fill: A5 }),
    ICMP_PORT_UNREACH,
  );
});

/** Apply `write` to a 0xa5 buffer; return the offsets it changed. */
function written(len: number, write: (b: Uint8Array) => void): { buf: Uint8Array; changed: number[] } {
  const buf = new Uint8Array(len).fill(A5);
  write(buf);
  const changed: number[] = [];
  buf.forEach((v, i) => {
    if (v !== A5) changed.push(i);
  });
  return { buf, changed };
}

test('ipv4 setters write exactly their field, at any offset', (t) => {
  const cases: Array<[string, (b: Uint8Array, o: number) => void, number, number]> = [
    ['setSrc', (b, o) => ip.setSrc(b, o, addr(INSIDE)), ip.SRC, 4],
    ['setDst', (b, o) => ip.setDst(b, o, addr(REMOTE)), ip.DST, 4],
    ['setTtl', (b, o) => ip.setTtl(b, o, 64), ip.TTL, 1],
    ['setTotalLen', (b, o) => ip.setTotalLen(b, o, 39), ip.TOTAL_LEN, 2],
  ];
  for (const o of [0, 3]) {
    for (const [name, set, at, width] of cases) {
      const { buf } = written(o + 24, (b) => set(b, o));
      const want = new Uint8Array(o + 24).fill(A5);
      want.set(UDP_DNS.subarray(at, at + width), o + at);
      t.deepEqual(buf, want, `${name} at offset ${o}`);
    }
  }
  // All setters, then the fields with no setter copied raw, then fillChecksum: the capture.
  const { buf } = written(20, (b) => {
    ip.setSrc(b, 0, addr(INSIDE));
    ip.setDst(b, 0, addr(REMOTE));
    ip.setTtl(b, 0, 64);
    ip.setTotalLen(b, 0, 39);
  });
  t.deepEqual([...buf.subarray(0, 2), ...buf.subarray(4, 8), buf[9], ...buf.subarray(10, 12)], new Array(9).fill(A5));
  buf.set(UDP_DNS.subarray(0, 2), 0);
  buf.set(UDP_DNS.subarray(4, 8), 4);
  buf[9] = UDP_DNS[9]!;
  ip.fillChecksum(buf, 0);
  t.deepEqual(buf, UDP_DNS.subarray(0, 20));
});

test('ipv4 rewriteSrc/rewriteDst keep the header checksum right (incremental)', (t) => {
  const b = UDP_DNS.slice();
  ip.rewriteSrc(b, 0, addr('198.51.100.100'));
  t.is(ip.src(b, 0), addr('198.51.100.100'));
  t.is(ck.checksum(b, 0, 20), 0);
  ip.rewriteDst(b, 0, addr('203.0.113.7'));
  t.is(ip.dst(b, 0), addr('203.0.113.7'));
  t.is(ck.checksum(b, 0, 20), 0);
  const full = b.slice(0, 20);
  fillIpChecksum(full);
  t.is(u16(b, ip.CHECK), u16(full, ip.CHECK));
});

test('tcp, udp and icmp setters write exactly their field', (t) => {
  const tcpCases: Array<[string, (b: Uint8Array) => void, number, number]> = [
    ['setSport', (b) => tcpv.setSport(b, 0, 40001), tcpv.SPORT, 2],
    ['setDport', (b) => tcpv.setDport(b, 0, 8080), tcpv.DPORT, 2],
    ['setSeq', (b) => tcpv.setSeq(b, 0, 2604359441), tcpv.SEQ, 4],
    ['setAck', (b) => tcpv.setAck(b, 0, 395557413), tcpv.ACK, 4],
  ];
  for (const [name, set, at, width] of tcpCases) {
    const { buf } = written(20, set);
    const want = new Uint8Array(20).fill(A5);
    want.set(TCP_PSH.subarray(20 + at, 20 + at + width), at);
    t.deepEqual(buf, want, `tcp ${name}`);
  }
  for (const [name, set, at] of [
    ['setSport', (b: Uint8Array) => udpv.setSport(b, 0, 40000), udpv.SPORT],
    ['setDport', (b: Uint8Array) => udpv.setDport(b, 0, 53), udpv.DPORT],
  ] as const) {
    const { buf } = written(8, set);
    const want = new Uint8Array(8).fill(A5);
    want.set(UDP_DNS.subarray(20 + at, 22 + at), at);
    t.deepEqual(buf, want, `udp ${name}`);
  }
  const { buf } = written(8, (b) => icmpv.setId(b, 0, 23594));
  t.deepEqual([...buf], [A5, A5, A5, A5, 0x5c, 0x2a, A5, A5]);
  // fillChecksum zeroes the field first: a 0xa5 checksum field gives the captured value.
  const e = ICMP_ECHO_REQUEST.slice();
  e[22] = A5;
  e[23] = A5;
  icmpv.fillChecksum(e, 20, 16);
  t.deepEqual(e, ICMP_ECHO_REQUEST);
  const h = UDP_DNS.slice();
  h[10] = A5;
  h[11] = A5;
  ip.fillChecksum(h, 0);
  t.deepEqual(h, UDP_DNS);
});

test('bytes: big-endian helpers', (t) => {
  const { buf, changed } = written(8, (b) => {
    put16(b, 1, 0xbeef);
    put32(b, 3, 0xdeadbeef);
  });
  t.deepEqual(changed, [1, 2, 3, 4, 5, 6]);
  t.is(u16(buf, 1), 0xbeef);
  t.is(u32(buf, 3), 0xdeadbeef);
  t.is(u32(new Uint8Array([0xff, 0xff, 0xff, 0xff]), 0), 0xffffffff, 'unsigned');
});

// ---------------------------------------------------------------------------------------------
// Validation

function broken(p: Uint8Array, edit: (b: Uint8Array) => void, fixIp = true): Uint8Array {
  const b = p.slice();
  edit(b);
  if (fixIp && b.length >= 20 && (b[0]! & 15) >= 5) fillIpChecksum(b);
  return b;
}

test('validateIPv4: each bound has its drop reason', (t) => {
  const p = UDP_DNS;
  t.is(ip.validateIPv4(p, 0, 0), WireError.Truncated);
  t.is(ip.validateIPv4(p, 0, 19), WireError.Truncated);
  t.is(ip.validateIPv4(p, 1, p.length), WireError.Truncated, 'offset + len beyond the buffer');
  t.is(ip.validateIPv4(broken(p, (b) => (b[0] = 0x44), false), 0, p.length), WireError.BadIhl);
  t.is(ip.validateIPv4(broken(p, (b) => (b[0] = 0x40), false), 0, p.length), WireError.BadIhl);
  t.is(ip.validateIPv4(broken(p, (b) => put16(b, 2, 40)), 0, p.length), WireError.BadTotalLength, 'total length > captured');
  t.is(ip.validateIPv4(broken(p, (b) => put16(b, 2, 19)), 0, p.length), WireError.BadTotalLength, 'total length < header');
  t.is(ip.validateIPv4(broken(p, (b) => (b[0] = 0x4f)), 0, p.length), WireError.BadTotalLength, 'IHL 15: total length < header length');
  t.is(ip.validateIPv4(broken(p, (b) => (b[10]! ^= 1), false), 0, p.length), WireError.BadIpChecksum);
  t.is(ip.validateIPv4(broken(p, (b) => (b[0] = 0x60), false), 0, p.length), WireError.Ipv6);
  t.is(ip.validateIPv4(new Uint8Array([0x60]), 0, 1), WireError.Ipv6, 'one byte is enough to see IPv6');
  t.is(ip.validateIPv4(broken(p, (b) => (b[0] = 0x55), false), 0, p.length), WireError.NotIp);
  // Bytes beyond the total length (link padding) are allowed.
  const padded = new Uint8Array(p.length + 7);
  padded.set(p);
  t.is(ip.validateIPv4(padded, 0, padded.length), WireError.None);
});

test('validateTcp / validateUdp / validateIcmp / validateEmbedded', (t) => {
  const s = TCP_SYN;
  t.is(tcpv.validateTcp(s, 20, 19), WireError.Truncated);
  t.is(tcpv.validateTcp(broken(s, (b) => (b[32] = 0x40)), 20, 40), WireError.BadL4Header, 'data offset 4 words');
  t.is(tcpv.validateTcp(broken(s, (b) => (b[32] = 0xf0)), 20, 40), WireError.BadL4Header, 'data offset beyond the segment');
  t.is(tcpv.validateTcp(broken(s, (b) => (b[32] = 0xa0)), 20, 40), WireError.None, 'data offset = segment');
  const u = UDP_DNS;
  t.is(udpv.validateUdp(u, 20, 7), WireError.Truncated);
  t.is(udpv.validateUdp(broken(u, (b) => put16(b, 24, 7)), 20, 19), WireError.BadL4Header);
  t.is(udpv.validateUdp(broken(u, (b) => put16(b, 24, 20)), 20, 19), WireError.BadL4Header);
  t.is(udpv.validateUdp(broken(u, (b) => put16(b, 24, 8)), 20, 19), WireError.None, 'shorter than the IP payload is allowed');
  const e = ICMP_ECHO_REQUEST;
  t.is(icmpv.validateIcmp(e, 20, 7), WireError.Truncated);
  t.is(icmpv.validateIcmp(broken(e, (b) => (b[30]! ^= 0x10)), 20, 16), WireError.BadIcmpChecksum);
  const q = ICMP_PORT_UNREACH;
  t.is(ip.validateEmbedded(q, 28, 27), WireError.EmbeddedMalformed, 'header + 8 needed');
  t.is(ip.validateEmbedded(broken(q, (b) => (b[28] = 0x65), false), 28, 39), WireError.EmbeddedMalformed, 'not v4');
  t.is(ip.validateEmbedded(broken(q, (b) => (b[28] = 0x44), false), 28, 39), WireError.EmbeddedMalformed, 'IHL 4');
  t.is(ip.validateEmbedded(broken(q, (b) => (b[28] = 0x48), false), 28, 39), WireError.EmbeddedMalformed, 'IHL 8 leaves < 8 bytes');
  t.is(ip.validateEmbedded(broken(q, (b) => (b[38]! ^= 0xff), false), 28, 39), WireError.None, 'quoted header checksum not required');
});

const RULES = 'masquerade all from 10.200.0.0/24 to any';
const EXT = '198.51.100.100';

function smallNat(): Nat {
  return new Nat({ externals: [EXT], rules: RULES, maxSessions: 1024, seed: 7 });
}

test('malformed packets through the Nat: dropped with the right reason, nothing emitted', (t) => {
  const nat = smallNat();
  const ok = udp({ src: INSIDE, dst: REMOTE, sport: 40000, dport: 53, payload: 'x' });
  const syn = tcp({ src: INSIDE, dst: REMOTE, sport: 40001, dport: 80 });
  const ping = icmpEcho({ src: INSIDE, dst: REMOTE, id: 7 });
  const cases: Array<[string, Uint8Array]> = [
    ['truncated', ok.subarray(0, 12)],
    ['ipv6', new Uint8Array(40).fill(0x60, 0, 1)],
    ['not_ip', broken(ok, (b) => (b[0] = 0x55), false)],
    ['bad_ihl', broken(ok, (b) => (b[0] = 0x43), false)],
    ['bad_total_length', broken(ok, (b) => put16(b, 2, ok.length + 1))],
    ['bad_ip_checksum', broken(ok, (b) => (b[11]! ^= 0x40), false)],
    ['bad_l4_header', broken(syn, (b) => (b[32] = 0x30))],
    ['bad_l4_header', broken(syn, (b) => (b[32] = 0x60))],
    ['bad_l4_header', broken(ok, (b) => put16(b, 24, 7))],
    ['bad_l4_header', broken(ok, (b) => put16(b, 24, 30))],
    ['truncated', broken(syn.subarray(0, 30), (b) => put16(b, 2, 30))],
    ['bad_icmp_checksum', broken(ping, (b) => (b[27]! ^= 1))],
    ['unsupported_protocol', broken(ok, (b) => (b[9] = 47))],
  ];
  for (const [want, pkt] of cases) {
    const r = natOut(nat, pkt, 1000);
    t.is(r.drop, want, formatPacket(pkt));
    t.is(r.all.length, 0);
  }
  t.is(nat.sessionCount, 0, 'no malformed packet created a session');
  const c = nat.counters();
  t.true(c.length > 0);
  t.is(nat.drops(DropReason.BadL4Header), 4);
  // And the well-formed versions go through.
  t.is(natOut(nat, ok, 1000).drop, 'none');
  t.is(natOut(nat, syn, 1000).drop, 'none');
  t.is(natOut(nat, ping, 1000).drop, 'none');
  t.is(DROP_REASON_LABELS.length, DROP_REASON_COUNT, 'one label per reason');
});

test('an inbound datagram with a bad UDP length is dropped before any lookup', (t) => {
  const nat = smallNat();
  const out = natOut(nat, udp({ src: INSIDE, dst: REMOTE, sport: 5000, dport: 53 }), 0).pkt!;
  const reply = udp({ src: REMOTE, dst: EXT, sport: 53, dport: out.sport!, payload: 'abc' });
  t.is(natIn(nat, broken(reply, (b) => put16(b, 24, 12)), 1).drop, 'bad_l4_header');
  t.is(natIn(nat, reply, 1).drop, 'none');
});

// ---------------------------------------------------------------------------------------------
// RFC 1071 / RFC 1624 helpers against the oracle

const arbBytes = fc.uint8Array({ minLength: 0, maxLength: 300 });

test('checksum() equals the oracle on any bytes, odd lengths and offsets included', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(arbBytes, fc.nat({ max: 5 }), (data, lead) => {
      const buf = new Uint8Array(lead + data.length);
      buf.set(data, lead);
      return ck.checksum(buf, lead, data.length) === internetChecksum(data);
    }),
    { numRuns: 3000 },
  );
  // Long runs of 0xff: the early fold keeps the accumulator exact.
  const big = new Uint8Array(65535).fill(0xff);
  t.is(ck.checksum(big, 0, big.length), internetChecksum(big));
  t.is(ck.fold(0xffffffff * 4), 0xffff);
  t.is(ck.fold(0x1fffe), 0xffff);
  t.is(ck.finish(0), 0xffff);
});

test('pseudoHeaderSum equals the oracle pseudo-header', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.constantFrom(6, 17), fc.nat({ max: 0xffff }), (s, d, p, l) => {
      const a = new Uint8Array(4);
      const b = new Uint8Array(4);
      put32(a, 0, s);
      put32(b, 0, d);
      return ck.finish(ck.pseudoHeaderSum(s, d, p, l)) === internetChecksum(pseudoHeader(a, b, p, l));
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

const arbAddr = fc.nat({ max: 0xffffffff });
const arbPort = fc.nat({ max: 0xffff });

test('RFC 1624: an address change by delta32/applyDelta equals full IP header recomputation', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(arbAddr, arbAddr, fc.nat({ max: 0xffff }), fc.nat({ max: 255 }), fc.boolean(), (a, a2, ipId, ttl, srcSide) => {
      const b = udp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, ipId, ttl });
      put32(b, srcSide ? 12 : 16, a);
      fillIpChecksum(b);
      const delta = ck.delta32(a, a2);
      put32(b, srcSide ? 12 : 16, a2);
      const inc = ck.applyDelta(u16(b, 10), delta);
      const full = b.slice(0, 20);
      fillIpChecksum(full);
      return inc === u16(full, 10);
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('RFC 1624: address + port deltas on TCP (pseudo-header) equal full recomputation', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(arbAddr, arbAddr, arbPort, arbPort, fc.uint8Array({ maxLength: 64 }), fc.boolean(), (a, a2, p, p2, payload, srcSide) => {
      const b = tcp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, flags: 'A', payload });
      put32(b, srcSide ? 12 : 16, a);
      put16(b, srcSide ? 20 : 22, p);
      fillL4Checksum(b);
      const d = ck.fold(ck.delta32(a, a2) + ck.delta16(p, p2));
      put32(b, srcSide ? 12 : 16, a2);
      put16(b, srcSide ? 20 : 22, p2);
      const inc = ck.applyDelta(u16(b, 36), d);
      const full = b.slice();
      fillL4Checksum(full);
      return inc === u16(full, 36);
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('RFC 768: UDP deltas equal full recomputation, a computed 0 goes out as 0xFFFF, a 0 stays 0', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(arbAddr, arbAddr, arbPort, arbPort, fc.uint8Array({ maxLength: 64 }), (a, a2, p, p2, payload) => {
      const b = udp({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, payload });
      put32(b, 12, a);
      put16(b, 20, p);
      fillL4Checksum(b);
      const d = ck.delta32(a, a2) + ck.delta16(p, p2);
      put32(b, 12, a2);
      put16(b, 20, p2);
      const inc = ck.applyDeltaUdp(u16(b, 26), d);
      const full = b.slice();
      fillL4Checksum(full); // the oracle's fill sends a computed 0 as 0xFFFF
      return inc === u16(full, 26) && inc !== 0 && ck.applyDeltaUdp(0, d) === 0;
    }),
    { numRuns: 3000 },
  );
  // A case that lands exactly on 0: search a payload word that makes the translated sum 0.
  let hits = 0;
  for (let w = 0; w < 0x10000 && hits < 3; w++) {
    const b = udp({ src: '10.200.0.2', dst: REMOTE, sport: 5000, dport: 53, payload: [w >> 8, w & 0xff] });
    const d = ck.delta32(addr('10.200.0.2'), addr(EXT)) + ck.delta16(5000, 61000);
    put32(b, 12, addr(EXT));
    put16(b, 20, 61000);
    const probe = b.slice();
    put16(probe, 26, 0);
    if (internetChecksum(pseudoHeader(probe.subarray(12, 16), probe.subarray(16, 20), 17, 10), probe.subarray(20)) !== 0) continue;
    hits++;
    t.is(ck.applyDeltaUdp(u16(b, 26), d), 0xffff, `payload word 0x${w.toString(16)}`);
  }
  t.true(hits > 0, 'found payloads whose translated checksum is 0');
});

test('deltas compose by addition and negateDelta undoes a delta', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(fc.nat({ max: 0xfffe }), arbAddr, arbAddr, arbPort, arbPort, (c, a, a2, p, p2) => {
      const d1 = ck.delta32(a, a2);
      const d2 = ck.delta16(p, p2);
      const once = ck.applyDelta(c, d1 + d2);
      const twice = ck.applyDelta(ck.applyDelta(c, d1), d2);
      const back = ck.applyDelta(once, ck.negateDelta(d1 + d2));
      return once === twice && back === c;
    }),
    { numRuns: 3000 },
  );
  t.is(ck.delta16(0x1234, 0x1234) % 0xffff, 0, 'no change is a zero delta');
});

test('adjustAt / adjustUdpAt / getCheck / putCheck', (t) => {
  const b = new Uint8Array(4).fill(A5);
  ck.putCheck(b, 1, 0x1234);
  t.deepEqual([...b], [A5, 0x12, 0x34, A5]);
  t.is(ck.getCheck(b, 1), 0x1234);
  ck.adjustAt(b, 1, ck.delta16(0, 0));
  t.is(ck.getCheck(b, 1), 0x1234);
  const z = new Uint8Array(2);
  ck.adjustUdpAt(z, 0, ck.delta16(1, 2));
  t.is(ck.getCheck(z, 0), 0, 'RFC 768: no checksum stays none');
});

// ---------------------------------------------------------------------------------------------
// The pretty-printer

test('formatPacket one-liners', (t) => {
  t.is(formatPacket(UDP_DNS), 'IP 10.200.0.2.40000 > 198.51.100.10.53: udp len 11 ttl 64');
  t.is(formatPacket(TCP_SYN), 'IP 10.200.0.2.40001 > 198.51.100.10.8080: tcp [S] seq 2604359440 ack 0 win 65280 len 0 ttl 64');
  t.is(formatPacket(TCP_SYNACK), 'IP 198.51.100.10.8080 > 10.200.0.2.40001: tcp [S.] seq 395557412 ack 2604359441 win 65412 len 0 ttl 64');
  t.is(formatPacket(TCP_PSH), 'IP 10.200.0.2.40001 > 198.51.100.10.8080: tcp [P.] seq 2604359441 ack 395557413 win 64 len 5 ttl 64');
  t.is(formatPacket(ICMP_ECHO_REQUEST), 'IP 10.200.0.2 > 198.51.100.10: ICMP echo request id 23594 seq 1 len 8 ttl 64');
  t.is(formatPacket(ICMP_ECHO_REPLY), 'IP 198.51.100.10 > 10.200.0.2: ICMP echo reply id 23594 seq 1 len 8 ttl 64');
  t.is(formatPacket(ICMP_PORT_UNREACH), 'IP 198.51.100.10 > 10.200.0.2: ICMP unreachable code 3 [IP 10.200.0.2.40000 > 198.51.100.10.53: udp] ttl 64');
  t.is(formatPacket(FRAG_FIRST), 'IP 10.200.0.2.40002 > 198.51.100.10.5353: udp len 1536 (frag id 9913 off 0+) ttl 64');
  t.is(formatPacket(FRAG_SECOND), 'IP 10.200.0.2 > 198.51.100.10: proto 17 len 568 (frag id 9913 off 976) ttl 64');
  const fn = icmpError({ src: '192.0.2.1', dst: EXT, type: 3, code: 4, mtu: 1400, ttl: 250, quote: tcp({ src: EXT, dst: REMOTE, sport: 61000, dport: 443 }) });
  t.is(formatPacket(fn), 'IP 192.0.2.1 > 198.51.100.100: ICMP unreachable code 4 mtu 1400 [IP 198.51.100.100.61000 > 198.51.100.10.443: tcp] ttl 250');
  const te = icmpError({ src: '192.0.2.1', dst: EXT, type: 11, code: 0, quote: icmpEcho({ src: EXT, dst: REMOTE, id: 9, seq: 3 }) });
  t.is(formatPacket(te), 'IP 192.0.2.1 > 198.51.100.100: ICMP time exceeded code 0 [IP 198.51.100.100 > 198.51.100.10: ICMP echo request id 9 seq 3 len 0] ttl 64');
  const short = icmpError({ src: '192.0.2.1', dst: EXT, type: 3, code: 1, quote: UDP_DNS, quoteBytes: 20 });
  t.is(formatPacket(short), 'IP 192.0.2.1 > 198.51.100.100: ICMP unreachable code 1 [truncated] ttl 64');
  t.is(formatPacket(broken(UDP_DNS, (b) => (b[10]! ^= 1), false)), 'invalid packet (bad_ip_checksum, 39 bytes)');
  t.is(formatPacket(new Uint8Array([0x45, 0, 0])), 'invalid packet (truncated, 3 bytes)');
  t.is(formatPacket(new Uint8Array(20)), 'invalid packet (not_ip, 20 bytes)');
  t.is(formatPacket(broken(UDP_DNS, (b) => (b[9] = 47))), 'IP 10.200.0.2 > 198.51.100.10: proto 47 ttl 64');
  // A view at an offset, bounded by the given length.
  const buf = new Uint8Array(4 + UDP_DNS.length);
  buf.set(UDP_DNS, 4);
  t.is(formatPacket(buf, 4, UDP_DNS.length), formatPacket(UDP_DNS));
});

test('formatPacket never throws, whatever the bytes', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (raw, fixIp) => {
      const b = raw.slice();
      if (b.length >= 20) {
        b[0] = 0x40 | (b[0]! & 15);
        if (fixIp && (b[0]! & 15) >= 5 && (b[0]! & 15) * 4 <= b.length) {
          put16(b, 2, Math.max((b[0]! & 15) * 4, Math.min(b.length, u16(b, 2))));
          fillIpChecksum(b);
        }
      }
      return typeof formatPacket(b) === 'string';
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

test('validateIPv4: the unrolled 20-byte header sum agrees with the oracle checksum on any bytes', (t) => {
  logSeed(t);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.boolean(), (h, fix) => {
      const b = new Uint8Array(40);
      b.set(h);
      b[0] = 0x45;
      b[2] = 0;
      b[3] = 40;
      if (fix) {
        b[10] = 0;
        b[11] = 0;
        const c = internetChecksum(b.subarray(0, 20));
        b[10] = c >>> 8;
        b[11] = c & 0xff;
      }
      const expect = internetChecksum(b.subarray(0, 20)) === 0 ? WireError.None : WireError.BadIpChecksum;
      return ip.validateIPv4(b, 0, 40) === expect;
    }),
    { numRuns: 5000 },
  );
  t.pass();
});

test('wireDrop: each wire/ check result becomes the drop reason with the same label', (t) => {
  for (let e = 0; e < WIRE_ERROR_LABELS.length; e++) t.is(DROP_REASON_LABELS[wireDrop(e as WireError)], WIRE_ERROR_LABELS[e], `wire code ${e}`);
  t.is(wireDrop(WireError.EmbeddedMalformed), DropReason.IcmpErrorMalformed);
  t.is(wireDrop(WireError.None), DropReason.None);
});
