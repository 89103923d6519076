/**
 * hairpin.test.ts — hairpinned packets and filtering: a hairpinned packet comes from an inside
 * host, so it reaches any mapping under every filtering mode, for UDP and TCP, in one
 * partition or across four (RFC 4787 REQ-9, RFC 5382 REQ-8: one-way hairpin, where A reaches
 * B's mapping that B only ever used toward an outside server); and a packet from outside that
 * claims one of our external addresses as its source is refused as forged (martian), even
 * under endpoint-independent filtering and even when it matches a hairpin session.
 */
import test from 'ava';
import { Nat, type NatOptions } from '../src/nat.js';
import { C } from '../src/counters.js';
import { DropReason } from '../src/drop.js';
import { listSessions } from '../src/listing.js';
import { natIn, natOut, tcp, udp, type Parsed, type NatResult } from './helpers/packets.js';

const EXT = '198.51.100.100';
const R = '203.0.113.10';
const RULES = 'masquerade all from 10.200.0.0/24 to any';

function mkNat(o: Partial<NatOptions> = {}): Nat {
  return new Nat({ externals: [EXT], rules: RULES, maxSessions: 4096, seed: 5, ...o });
}

function one(r: NatResult): Parsed {
  if (r.all.length !== 1) throw new Error(`expected one packet, got ${r.all.length} (drop: ${r.drop})`);
  return r.pkt!;
}

for (const partitions of [1, 4]) {
  for (const filtering of ['endpoint', 'address', 'address-port'] as const) {
    test(`one-way UDP hairpin under ${filtering} filtering, ${partitions} partition(s): A reaches B's mapping that B used only toward a server`, (t) => {
      const nat = mkNat({ partitions, filtering });
      for (let i = 0; i < 8; i++) {
        const a = `10.200.0.${10 + i}`;
        const b = `10.200.0.${40 + i}`;
        const extA = one(natOut(nat, udp({ src: a, sport: 5000 + i, dst: R, dport: 3478 }), 0)).sport!;
        const extB = one(natOut(nat, udp({ src: b, sport: 6000 + i, dst: R, dport: 3478 }), 0)).sport!;
        // Only A sends first: B never sent anything to the gateway's own address.
        const atB = one(natOut(nat, udp({ src: a, sport: 5000 + i, dst: EXT, dport: extB, payload: 'a→b' }), 1));
        t.like(atB, { src: EXT, sport: extA, dst: b, dport: 6000 + i, ttl: 65 });
        const atA = one(natOut(nat, udp({ src: b, sport: 6000 + i, dst: EXT, dport: extA, payload: 'b→a' }), 2));
        t.like(atA, { src: EXT, sport: extB, dst: a, dport: 5000 + i, ttl: 65 });
      }
      t.is(nat.drops(DropReason.Filtered), 0);
      t.is(nat.counters()[C.HAIRPINNED], 16);
      // The outside server still gets only what the filter allows: a stranger is refused
      // except under endpoint-independent filtering.
      const extA0 = one(natOut(nat, udp({ src: '10.200.0.10', sport: 5000, dst: R, dport: 3478 }), 3)).sport!;
      t.is(natIn(nat, udp({ src: '203.0.113.99', sport: 9, dst: EXT, dport: extA0 }), 3).drop, filtering === 'endpoint' ? 'none' : 'filtered');
    });

    test(`one-way TCP hairpin under ${filtering} filtering, ${partitions} partition(s): the handshake completes through both mappings`, (t) => {
      const nat = mkNat({ partitions, filtering });
      const a = '10.200.0.2';
      const b = '10.200.0.3';
      const extA = one(natOut(nat, tcp({ src: a, sport: 41000, dst: R, dport: 80, flags: 'S' }), 0)).sport!;
      const extB = one(natOut(nat, tcp({ src: b, sport: 42000, dst: R, dport: 80, flags: 'S' }), 0)).sport!;
      // A opens a second connection from its same port, to B's external endpoint.
      const syn = one(natOut(nat, tcp({ src: a, sport: 41000, dst: EXT, dport: extB, flags: 'S', seq: 100 }), 1));
      t.like(syn, { src: EXT, sport: extA, dst: b, dport: 42000, flags: 0x02, seq: 100 });
      const sa = one(natOut(nat, tcp({ src: b, sport: 42000, dst: EXT, dport: extA, flags: 'SA', seq: 900, ack: 101 }), 2));
      t.like(sa, { src: EXT, sport: extB, dst: a, dport: 41000, flags: 0x12, seq: 900, ack: 101 });
      const ack = one(natOut(nat, tcp({ src: a, sport: 41000, dst: EXT, dport: extB, flags: 'A', seq: 101, ack: 901 }), 3));
      t.like(ack, { src: EXT, sport: extA, dst: b, dport: 42000 });
      const hairpins = nat.partitions.flatMap((p) => listSessions(p.table, 3)).filter((r) => r.remote === EXT);
      t.deepEqual(hairpins.map((r) => r.state).sort(), ['established', 'established']);
      t.is(nat.drops(DropReason.Filtered), 0);
    });
  }
}

test('a packet from outside claiming our external address is forged: martian, under endpoint filtering and on a hairpin session', (t) => {
  const nat = mkNat({ filtering: 'endpoint' });
  const a = '10.200.0.2';
  const b = '10.200.0.3';
  const extA = one(natOut(nat, udp({ src: a, sport: 5000, dst: R, dport: 3478 }), 0)).sport!;
  const extB = one(natOut(nat, udp({ src: b, sport: 6000, dst: R, dport: 3478 }), 0)).sport!;
  // No session yet toward EXT:extA on B's mapping: the slow path refuses it.
  t.is(natIn(nat, udp({ src: EXT, sport: extA, dst: EXT, dport: extB }), 1).drop, 'martian');
  // Now a real hairpin creates that session; a forged copy from outside still does not pass.
  one(natOut(nat, udp({ src: a, sport: 5000, dst: EXT, dport: extB }), 2));
  t.is(natIn(nat, udp({ src: EXT, sport: extA, dst: EXT, dport: extB, payload: 'forged' }), 3).drop, 'martian');
  t.is(nat.drops(DropReason.Martian), 2);
  // The real inside host still gets through.
  t.like(one(natOut(nat, udp({ src: a, sport: 5000, dst: EXT, dport: extB }), 4)), { src: EXT, sport: extA, dst: b, dport: 6000 });
});
