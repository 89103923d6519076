/**
 * icmp-refusal.test.ts — RFC 5508 REQ-8: a new flow refused for a resource or policy reason
 * (port exhaustion, per-host limits, a full table) is answered with ICMP destination
 * unreachable code 13, on by default, from the external address the flow would have used,
 * quoting the refused packet as sent, rate-limited; off when configured so. And RFC 5508
 * REQ-3a: an ICMP error whose embedded IP header checksum is wrong is dropped, both ways.
 */
import test from 'ava';
import { Nat, type NatOptions } from '../src/nat.js';
import { C } from '../src/counters.js';
import { DropReason } from '../src/drop.js';
import { hash3 } from '../src/hash.js';
import { ICMP_BURST, ICMP_INTERVAL } from '../src/translate/icmperror.js';
import { addr, icmpError, natIn, natOut, tcp, udp, type NatResult, type Parsed } from './helpers/packets.js';

const EXT = '198.51.100.100';
const EXT2 = '198.51.100.101';
const R = '203.0.113.10';
const RULES = 'masquerade all from 10.200.0.0/24 to any';

function mkNat(o: Partial<NatOptions> = {}): Nat {
  return new Nat({ externals: [EXT], rules: RULES, maxSessions: 4096, seed: 2, ...o });
}

function one(r: NatResult): Parsed {
  if (r.all.length !== 1) throw new Error(`expected one packet, got ${r.all.length} (drop: ${r.drop})`);
  return r.pkt!;
}

/** An inside host whose paired external address is EXT2 (index 1 of two). */
function hostOnSecondAddress(): string {
  for (let i = 2; i < 250; i++) if (hash3(0, addr(`10.200.0.${i}`), 0) % 2 === 1) return `10.200.0.${i}`;
  throw new Error('no host hashes to the second address');
}

test('on by default: port exhaustion answered with 3/13 from the flow\'s own external address, quoting the packet as sent', (t) => {
  const nat = mkNat({ externals: [EXT, EXT2], portLo: 20000, portHi: 20000 });
  t.true(nat.config.icmpOnExhaustion);
  const h = hostOnSecondAddress();
  const first = one(natOut(nat, udp({ src: h, sport: 5000, dst: R, dport: 53 }), 0));
  t.like(first, { src: EXT2, sport: 20000 });
  const refused = udp({ src: h, sport: 5001, dst: R, dport: 53, payload: 'refused!' });
  const r = natOut(nat, refused, 1);
  t.like(one(r), { src: EXT2, dst: h, type: 3, code: 13, ttl: 64 });
  t.deepEqual(r.bytes[0]!.subarray(28), refused.subarray(0, 28));
  t.is(r.drop, 'port_exhausted');
  t.is(nat.drops(DropReason.PortExhausted), 1);
  t.is(nat.counters()[C.ICMP_GENERATED], 1);
});

test('host limits and a full table are refused with 3/13 too; TCP SYNs and echo requests alike', (t) => {
  const h = '10.200.0.7';
  const limited = mkNat({ hostSessionLimit: 1 });
  one(natOut(limited, udp({ src: h, sport: 5000, dst: R, dport: 53 }), 0));
  const syn = natOut(limited, tcp({ src: h, sport: 40000, dst: R, dport: 443, flags: 'S' }), 1);
  t.like(one(syn), { src: EXT, dst: h, type: 3, code: 13 });
  t.like(syn.pkt!.inner, { src: h, sport: 40000, dst: R, dport: 443 });
  t.is(syn.drop, 'host_limit');
  const ports = mkNat({ hostPortLimit: 1 });
  one(natOut(ports, udp({ src: h, sport: 5000, dst: R, dport: 53 }), 0));
  t.like(one(natOut(ports, udp({ src: h, sport: 5001, dst: R, dport: 53 }), 1)), { src: EXT, dst: h, type: 3, code: 13 });
  const full = mkNat({ maxSessions: 2 });
  one(natOut(full, udp({ src: h, sport: 5000, dst: R, dport: 53 }), 0));
  one(natOut(full, udp({ src: h, sport: 5001, dst: R, dport: 53 }), 0));
  const r = natOut(full, udp({ src: h, sport: 5002, dst: R, dport: 53 }), 1);
  t.like(one(r), { src: EXT, dst: h, type: 3, code: 13 });
  t.is(r.drop, 'table_full');
  t.is(full.counters()[C.ICMP_GENERATED], 1);
});

test('rate-limited: a burst of 10, then one per 10 ms; the refused packets are counted either way', (t) => {
  const nat = mkNat({ hostSessionLimit: 1 });
  const h = '10.200.0.7';
  one(natOut(nat, udp({ src: h, sport: 5000, dst: R, dport: 53 }), 0));
  const answered = (now: number, n: number): number => {
    let k = 0;
    for (let i = 0; i < n; i++) k += natOut(nat, udp({ src: h, sport: 6000 + i, dst: R, dport: 53 }), now).all.length;
    return k;
  };
  t.is(answered(1000, 25), ICMP_BURST);
  t.is(answered(1000 + ICMP_INTERVAL - 1, 5), 0);
  t.is(answered(1000 + ICMP_INTERVAL, 5), 1);
  t.is(answered(1000 + 5 * ICMP_INTERVAL, 10), 4);
  t.is(answered(1_000_000, 30), ICMP_BURST, 'the bucket refills to its burst, no more');
  t.is(nat.drops(DropReason.HostLimit), 25 + 5 + 5 + 10 + 30);
  t.is(nat.counters()[C.ICMP_GENERATED], 2 * ICMP_BURST + 5);
});

test('turned off: the refused flow is a plain counted drop', (t) => {
  const nat = mkNat({ portLo: 20000, portHi: 20000, icmpOnExhaustion: false });
  one(natOut(nat, udp({ src: '10.200.0.2', sport: 5000, dst: R, dport: 53 }), 0));
  const r = natOut(nat, udp({ src: '10.200.0.3', sport: 5000, dst: R, dport: 53 }), 1);
  t.is(r.all.length, 0);
  t.is(r.drop, 'port_exhausted');
  t.is(nat.counters()[C.ICMP_GENERATED], 0);
});

test('an ICMP error whose embedded IP header checksum is wrong is dropped, both ways (RFC 5508 REQ-3a)', (t) => {
  const nat = mkNat();
  const a = '10.200.0.2';
  const sent = udp({ src: a, sport: 5000, dst: R, dport: 53, payload: 'q' });
  const out = natOut(nat, sent, 0).bytes[0]!;
  const extP = (out[20]! << 8) | out[21]!;
  // Inbound: a router's port unreachable about what we sent.
  const good = icmpError({ src: '192.0.2.1', dst: EXT, type: 3, code: 3, quote: out });
  t.like(one(natIn(nat, good, 1)), { dst: a, type: 3, code: 3 });
  const badQuote = out.slice();
  badQuote[10] ^= 0x01; // the quoted header's checksum, off by one bit (ICMP checksum made right)
  const bad = icmpError({ src: '192.0.2.1', dst: EXT, type: 3, code: 3, quote: badQuote });
  const rb = natIn(nat, bad, 2);
  t.is(rb.all.length, 0);
  t.is(rb.drop, 'icmp_error_malformed');
  // Outbound: the inside host's port unreachable about a reply it got.
  const reply = natIn(nat, udp({ src: R, sport: 53, dst: EXT, dport: extP, payload: 'a' }), 3).bytes[0]!;
  t.like(one(natOut(nat, icmpError({ src: a, dst: R, type: 3, code: 3, quote: reply }), 4)), { src: EXT, dst: R, type: 3 });
  const badReply = reply.slice();
  badReply[11] ^= 0x80;
  t.is(natOut(nat, icmpError({ src: a, dst: R, type: 3, code: 3, quote: badReply }), 5).drop, 'icmp_error_malformed');
  t.is(nat.drops(DropReason.IcmpErrorMalformed), 2);
});
