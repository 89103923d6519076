/**
 * mutants.test.ts — scenario tests written against the mutants an outside review found alive
 * (issue 11): each case states the exact bytes, address, drop reason or timer that a small
 * change to the translator would get wrong. The mutant each one kills is named in its title
 * or comment; every emitted packet is held to the checksum oracle by the helpers.
 */
import test from 'ava';
import type { Nat } from '../src/nat.js';
import type { SessionRow } from '../src/listing.js';
import { DropReason } from '../src/drop.js';
import { Direction, VerdictKind } from '../src/verdict.js';
import { hash3 } from '../src/hash.js';
import { UNANSWERED_TIMEOUT } from '../src/config.js';
import { fillIpChecksum, problems } from './helpers/oracle.js';
import { EXT, EXT2, A, R, ROUTER, RULES, mkNat, one, sessionRows } from './helpers/scenario.js';
import { type Parsed, addr, fragment, icmpEcho, icmpError, natIn, natOut, parse, tcp, udp, withIp } from './helpers/packets.js';

function only(nat: Nat, now: number, proto: SessionRow['proto']): SessionRow {
  const r = sessionRows(nat, now).filter((x) => x.proto === proto);
  if (r.length !== 1) throw new Error(`expected one ${proto} session, found ${r.length}`);
  return r[0]!;
}

/** What the inside host sent, with the TTL the gateway added on the way out. */
function asSent(p: Uint8Array): Uint8Array {
  const w = p.slice();
  w[8] = w[8]! + 1;
  fillIpChecksum(w);
  return w;
}

// ---------------------------------------------------------------------------------------------
// ICMP error quotes (RFC 5508 REQ-4): the quoted TCP checksum is rewritten iff it is quoted

for (const quoted of [8, 16, 18, 20]) {
  test(`an inbound ICMP error quoting ${quoted} bytes of TCP gives back exactly the first ${quoted} bytes the host sent (checksum bound >= 18, not > 18)`, (t) => {
    const nat = mkNat();
    const syn = tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S', seq: 7, payload: 'x' });
    const wire = natOut(nat, syn, 0).bytes[0]!;
    const err = icmpError({ src: ROUTER, dst: EXT, type: 11, code: 0, quote: wire, quoteBytes: 20 + quoted });
    const r = natIn(nat, err, 1);
    const got = one(r);
    t.like(got, { src: ROUTER, dst: A, type: 11 });
    t.is(r.bytes[0]!.length, 20 + 8 + 20 + quoted);
    t.deepEqual(r.bytes[0]!.subarray(28), asSent(syn).subarray(0, 20 + quoted));
  });
}

// ---------------------------------------------------------------------------------------------
// Fragments (RFC 4787 REQ-14)

/** Two inside hosts that paired pooling puts on different external addresses. */
function hostsOnBothExternals(): [string, string] {
  const hosts = Array.from({ length: 40 }, (_, i) => `10.200.0.${10 + i}`);
  const on = (ei: number) => hosts.find((h) => hash3(0, addr(h), 0) % 2 === ei)!;
  return [on(0), on(1)];
}

for (const partitions of [1, 4]) {
  test(`hairpinned later fragments across two external addresses carry the sender's address and a right header checksum (${partitions} partition${partitions > 1 ? 's' : ''})`, (t) => {
    const nat = mkNat({ partitions, filtering: 'endpoint', externals: [EXT, EXT2] });
    const [a, b] = hostsOnBothExternals();
    const first = (host: string, port: number): Parsed => one(natOut(nat, udp({ src: host, sport: port, dst: R, dport: 53 }), 0));
    const oa = first(a, 5000);
    const ob = first(b, 6000);
    t.is(oa.src, EXT);
    t.is(ob.src, EXT2);
    const cases = [
      { from: a, sport: 5000, to: b, toExt: EXT2, toPort: ob.sport!, fromExt: EXT, fromPort: oa.sport! },
      { from: b, sport: 6000, to: a, toExt: EXT, toPort: oa.sport!, fromExt: EXT2, fromPort: ob.sport! },
    ];
    let ipId = 40;
    for (const c of cases) {
      for (const order of ['in order', 'later first']) {
        const what = `${c.from} → ${c.to}, ${order}`;
        const dgram = udp({ src: c.from, sport: c.sport, dst: c.toExt, dport: c.toPort, ipId: ipId++, ttl: 64, payload: new Uint8Array(120).map((_, k) => k) });
        const frags = fragment(dgram, [40, 40]);
        const sent = order === 'in order' ? frags : [frags[2]!, frags[1]!, frags[0]!];
        const out = sent.flatMap((f) => natOut(nat, f, 1).bytes);
        t.is(out.length, 3, what);
        for (const f of out) {
          // One hop through the gateway: the TTL grows once, however the packet turned.
          t.like(parse(f), { src: c.fromExt, dst: c.to, ttl: 65 }, what);
          t.deepEqual(problems(f), [], `${what}: ${parse(f).text}`);
        }
        const firstOut = out.map((f) => parse(f)).find((x) => x.fragOffset === 0)!;
        t.like(firstOut, { sport: c.fromPort, dport: c === cases[0] ? 6000 : 5000 }, what);
      }
    }
  });
}

for (const partitions of [1, 4]) {
  test(`later fragments are matched by IP ID: interleaved datagrams from one remote to four hosts each reach their own host (${partitions} partition${partitions > 1 ? 's' : ''})`, (t) => {
    const nat = mkNat({ partitions, filtering: 'endpoint' });
    const hosts = ['10.200.0.2', '10.200.0.3', '10.200.0.4', '10.200.0.5'];
    const ext = hosts.map((h, i) => one(natOut(nat, udp({ src: h, sport: 5000 + i, dst: R, dport: 53 }), 0)).sport!);
    // 256 datagrams with consecutive IP IDs, all first fragments before any later one: with
    // the ID ignored (in the partition's fragment cache or the dispatcher's routes), some
    // later fragment meets another datagram's record first.
    const frags = Array.from({ length: 256 }, (_, k) => fragment(udp({ src: R, sport: 53, dst: EXT, dport: ext[k % 4]!, ipId: 1000 + k, payload: new Uint8Array(48).fill(k) }), [24]));
    for (const [k, f] of frags.entries()) t.like(one(natIn(nat, f[0]!, 1)), { dst: hosts[k % 4], dport: 5000 + (k % 4) });
    for (const [k, f] of frags.entries()) t.like(one(natIn(nat, f[1]!, 1)), { dst: hosts[k % 4], id: 1000 + k }, `datagram ${k}`);
  });
}

// ---------------------------------------------------------------------------------------------
// The session key check (stale prefetch hints)

test('a stale prefetch hint naming a UDP session is not taken for a TCP packet with the same addresses and ports', (t) => {
  const nat = mkNat({ filtering: 'endpoint' });
  const part = nat.partitions[0]!;
  const u = udp({ src: A, sport: 5000, dst: R, dport: 53 });
  t.is(part.translate(u.slice(), 0, u.length, Direction.Out, 0), VerdictKind.Forward);
  const udpPort = only(nat, 0, 'udp').externalPort;
  // Outbound: the UDP packet is prefetched, a TCP SYN of the same five-tuple numbers is translated.
  const buf = new Uint8Array(128);
  buf.set(u);
  part.prefetch(buf, Uint32Array.of(0), Uint8Array.of(Direction.Out), 1);
  const syn = tcp({ src: A, sport: 5000, dst: R, dport: 53, flags: 'S' });
  buf.set(syn);
  t.is(part.translate(buf, 0, syn.length, Direction.Out, 1), VerdictKind.Forward);
  const out = buf.slice(0, syn.length);
  t.deepEqual(problems(out), []);
  const tcpRow = only(nat, 1, 'tcp');
  t.like(tcpRow, { state: 'syn_sent', inside: A, insidePort: 5000 });
  t.is(parse(out).sport, tcpRow.externalPort);
  t.is(only(nat, 1, 'udp').packetsOut, 1, 'the UDP session saw nothing of it');
  // Inbound: the UDP reply is prefetched, a TCP segment to the UDP port is translated.
  const back = udp({ src: R, sport: 53, dst: EXT, dport: udpPort });
  buf.set(back);
  part.prefetch(buf, Uint32Array.of(0), Uint8Array.of(Direction.In), 1);
  const stray = tcp({ src: R, sport: 53, dst: EXT, dport: udpPort, flags: 'A' });
  buf.set(stray);
  const v = part.translate(buf, 0, stray.length, Direction.In, 2);
  t.not(v & 15, VerdictKind.Forward, 'the TCP segment is not delivered through the UDP session');
  t.is(only(nat, 2, 'udp').packetsIn, 0);
});

// ---------------------------------------------------------------------------------------------
// Martians

test('a rule that covers an external address does not masquerade it: martian', (t) => {
  const nat = mkNat({ rules: `masquerade all from 198.51.100.0/24 to any\n${RULES}` });
  const p = udp({ src: EXT, sport: 5000, dst: R, dport: 53 });
  t.deepEqual(nat.process(p.slice(), 0, p.length, 0), []);
  t.is(nat.lastDrop, DropReason.Martian);
  t.is(nat.drops(DropReason.Martian), 1);
  t.is(nat.sessionCount, 0);
});

// ---------------------------------------------------------------------------------------------
// ICMP errors to the wrong address (RFC 5508 §4.2)

test('an inbound ICMP error whose outer destination is not the quoted source is icmp_error_malformed', (t) => {
  const nat = mkNat({ externals: [EXT, EXT2] });
  const [a, b] = hostsOnBothExternals();
  const wa = natOut(nat, udp({ src: a, sport: 5000, dst: R, dport: 53 }), 0).bytes[0]!;
  const wb = natOut(nat, udp({ src: b, sport: 5000, dst: R, dport: 53 }), 0).bytes[0]!;
  t.is(parse(wa).src, EXT);
  t.is(parse(wb).src, EXT2);
  // B's datagram (from EXT2) quoted in an error sent to EXT: not delivered to B, nor to A.
  t.is(natIn(nat, icmpError({ src: R, dst: EXT, type: 3, code: 3, quote: wb }), 1).drop, 'icmp_error_malformed');
  t.is(natIn(nat, icmpError({ src: R, dst: EXT2, type: 3, code: 3, quote: wa }), 1).drop, 'icmp_error_malformed');
  // A quote from an address that is not ours at all.
  t.is(natIn(nat, icmpError({ src: R, dst: EXT, type: 3, code: 3, quote: withIp(wa, { src: '198.51.100.102' }) }), 1).drop, 'icmp_error_malformed');
  t.is(nat.drops(DropReason.IcmpErrorMalformed), 3);
  // The right address is delivered.
  t.like(one(natIn(nat, icmpError({ src: R, dst: EXT2, type: 3, code: 3, quote: wb }), 1)), { dst: b });
});

// ---------------------------------------------------------------------------------------------
// TCP timers (RFC 5382 REQ-5, RFC 7857 §2.1)

test('a FIN from outside keeps the established timer; the inside FIN after it starts the transitory one', (t) => {
  const nat = mkNat();
  const { tcpEstablished: EST, tcpClosing: TRANS } = nat.config.timeouts;
  const p = one(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80 }), 0)).sport!;
  one(natIn(nat, tcp({ src: R, sport: 80, dst: EXT, dport: p, flags: 'SA' }), 10));
  one(natIn(nat, tcp({ src: R, sport: 80, dst: EXT, dport: p, flags: 'FA' }), 1000));
  t.like(only(nat, 1000, 'tcp'), { state: 'fin_in', expiresMs: EST });
  t.is(nat.expire(1000 + EST - 1), 0);
  one(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'FA' }), 2000));
  t.like(only(nat, 2000, 'tcp'), { state: 'closing', expiresMs: TRANS });
  t.is(nat.expire(2000 + TRANS - 1), 0);
  t.is(nat.expire(2000 + TRANS), 1);
});

test('a retransmitted SYN does not make a connection established (either side)', (t) => {
  const nat = mkNat({ rules: `${RULES}\nforward tcp ${EXT}:8080 to ${A}:80` });
  const TRANS = nat.config.timeouts.tcpOpening;
  one(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' }), 0));
  one(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' }), 3000));
  const out = sessionRows(nat, 3000).find((s) => s.insidePort === 40000)!;
  t.like(out, { state: 'syn_sent', expiresMs: TRANS });
  one(natIn(nat, tcp({ src: R, sport: 33000, dst: EXT, dport: 8080, flags: 'S' }), 4000));
  one(natIn(nat, tcp({ src: R, sport: 33000, dst: EXT, dport: 8080, flags: 'S' }), 7000));
  const fwd = sessionRows(nat, 7000).find((s) => s.insidePort === 80)!;
  // Not answered yet: the short timer of an inbound-made session, not extended by the retransmission.
  t.like(fwd, { state: 'syn_received', expiresMs: 4000 + UNANSWERED_TIMEOUT - 7000 });
  t.is(nat.expire(7000 + TRANS), 2);
});

// ---------------------------------------------------------------------------------------------
// ICMP query timer (RFC 5508 REQ-1)

test('an echo reply from the inside host does not refresh the ICMP query timer; a request does', (t) => {
  const nat = mkNat();
  const ICMP_T = nat.config.timeouts.icmp;
  const id = one(natOut(nat, icmpEcho({ src: A, dst: R, id: 9 }), 0)).icmpId!;
  t.like(one(natOut(nat, icmpEcho({ src: A, dst: R, id: 9, reply: true }), 30_000)), { type: 0, icmpId: id });
  t.is(only(nat, 30_000, 'icmp').expiresMs, ICMP_T - 30_000);
  t.is(nat.expire(ICMP_T - 1), 0);
  t.is(nat.expire(ICMP_T), 1);
  one(natOut(nat, icmpEcho({ src: A, dst: R, id: 9 }), ICMP_T + 1));
  one(natOut(nat, icmpEcho({ src: A, dst: R, id: 9 }), ICMP_T + 20_000));
  t.is(only(nat, ICMP_T + 20_000, 'icmp').expiresMs, ICMP_T);
});
