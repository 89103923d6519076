/**
 * ingress.test.ts — direction decided by where a packet entered (RFC 4787 REQ-7: "a NAT MUST
 * NOT ... [treat] a packet from an external host as internal" — the direction of a packet
 * must never be guessed from its source address). An outside server whose address lies inside
 * a masqueraded range (10.0.0.0/8 masqueraded, server at 10.99.0.10) is given to the
 * dispatcher with Side.Outside, as the I/O thread does for the outside TUN (`--outside-tun`):
 * its replies reach the inside host, its unsolicited packets are filtered with the exact
 * reason, and it never gets a mapping of its own. Without a side (one TUN), the old guess
 * takes it for an inside host: the same packets are masqueraded, which these tests also pin
 * down so the documented limitation stays true.
 */
import test from 'ava';
import { Side } from '../src/dispatch.js';
import { DropReason } from '../src/drop.js';
import { natFrom, fragment, tcp, udp } from './helpers/packets.js';
import { A, EXT, mkNat, one, sessionRows } from './helpers/scenario.js';

/** An outside server inside the masqueraded 10.0.0.0/8. */
const S = '10.99.0.10';
const WIDE = 'masquerade all from 10.0.0.0/8 to any';

for (const partitions of [1, 4]) {
  test(`an outside host inside a masqueraded range, ${partitions} partition(s): its reply from the outside side reaches the inside host`, (t) => {
    const nat = mkNat({ rules: WIDE, partitions, filtering: 'address-port' });
    const out = one(natFrom(nat, Side.Inside, udp({ src: A, sport: 5000, dst: S, dport: 3478, payload: 'q' }), 0));
    t.like(out, { src: EXT, dst: S, dport: 3478 });
    const back = one(natFrom(nat, Side.Outside, udp({ src: S, sport: 3478, dst: EXT, dport: out.sport!, payload: 'r' }), 10));
    t.like(back, { src: S, sport: 3478, dst: A, dport: 5000, ttl: 65 }); // inbound: hop compensation (+1)
    // Only A's session exists: the server was never taken for an inside host.
    t.deepEqual(
      sessionRows(nat, 10).map((r) => r.inside),
      [A],
    );
  });
}

test('unsolicited packets from the overlapping outside host are filtered with the exact reason, never masqueraded', (t) => {
  const nat = mkNat({ rules: WIDE, filtering: 'address-port' });
  const ext = one(natFrom(nat, Side.Inside, udp({ src: A, sport: 5000, dst: S, dport: 3478 }), 0)).sport!;
  // Another port of the same server: address-and-port-dependent filtering refuses it.
  const r1 = natFrom(nat, Side.Outside, udp({ src: S, sport: 5555, dst: EXT, dport: ext }), 1);
  t.is(r1.drop, 'filtered');
  t.is(r1.all.length, 0);
  // A port nobody mapped.
  const r2 = natFrom(nat, Side.Outside, udp({ src: S, sport: 5555, dst: EXT, dport: ext === 40000 ? 40001 : 40000 }), 2);
  t.is(r2.drop, 'no_mapping');
  // A TCP SYN from the server to the external address (no forward): no mapping, no session.
  const r3 = natFrom(nat, Side.Outside, tcp({ src: S, sport: 7000, dst: EXT, dport: 2323, flags: 'S' }), 3);
  t.is(r3.drop, 'no_mapping');
  // From outside, not addressed to an external address (routed to an inside host directly).
  const r4 = natFrom(nat, Side.Outside, udp({ src: S, sport: 5555, dst: A, dport: 5000 }), 4);
  t.is(r4.drop, 'no_rule');
  t.deepEqual(
    sessionRows(nat, 5).map((r) => r.inside),
    [A],
    'the server made no session of its own',
  );
  t.is(nat.drops(DropReason.Filtered), 1);
});

test('a forward reached from the overlapping outside host goes to the inside endpoint with the server as source', (t) => {
  const nat = mkNat({ rules: `${WIDE}\nforward tcp ${EXT}:2323 to ${A}:23` });
  const syn = one(natFrom(nat, Side.Outside, tcp({ src: S, sport: 40001, dst: EXT, dport: 2323, flags: 'S' }), 0));
  t.like(syn, { src: S, sport: 40001, dst: A, dport: 23 });
  const synAck = one(natFrom(nat, Side.Inside, tcp({ src: A, sport: 23, dst: S, dport: 40001, flags: 'SA', ack: 1001 }), 1));
  t.like(synAck, { src: EXT, sport: 2323, dst: S, dport: 40001 });
});

test('later fragments from the outside side never follow an inside flow\'s outbound fragment route', (t) => {
  const nat = mkNat({ rules: WIDE });
  // A sends a fragmented datagram to S: the dispatcher learns (A, S, udp, id 77) → outbound.
  const [f1, f2] = fragment(udp({ src: A, sport: 5000, dst: S, dport: 3478, ipId: 77, payload: 'x'.repeat(64) }), [32]);
  t.like(one(natFrom(nat, Side.Inside, f1!, 0)), { src: EXT, dst: S });
  // A copy of its second fragment arrives on the OUTSIDE side: not A's, so not sent on as A's.
  const forged = natFrom(nat, Side.Outside, f2!.slice(), 1);
  t.is(forged.drop, 'held');
  t.is(forged.all.length, 0);
  // The real one from inside still follows its first fragment.
  t.like(one(natFrom(nat, Side.Inside, f2!, 2)), { src: EXT, dst: S });
});

test('an early later fragment from the outside side is not released by an inside flow\'s first fragment', (t) => {
  const nat = mkNat({ rules: WIDE });
  const [f1, f2] = fragment(udp({ src: A, sport: 5000, dst: S, dport: 3478, ipId: 78, payload: 'y'.repeat(64) }), [32]);
  // The forged copy comes first, on the outside side: held.
  t.is(natFrom(nat, Side.Outside, f2!.slice(), 0).drop, 'held');
  // A's first fragment goes out alone: the held outside copy does not ride its route.
  const r = natFrom(nat, Side.Inside, f1!, 1);
  t.is(r.all.length, 1);
  t.like(r.pkt, { src: EXT, dst: S, mf: true });
  // It stays held until the fragment timeout, then is dropped as an orphan.
  nat.expire(1 + nat.config.timeouts.fragment);
  t.is(nat.drops(DropReason.FragmentOrphan), 1);
});

test('without a side (one TUN), the overlapping outside host is taken for an inside host: the documented guess', (t) => {
  const nat = mkNat({ rules: WIDE, filtering: 'address-port' });
  const ext = one(natFrom(nat, Side.Unknown, udp({ src: A, sport: 5000, dst: S, dport: 3478 }), 0)).sport!;
  const back = natFrom(nat, Side.Unknown, udp({ src: S, sport: 3478, dst: EXT, dport: ext }), 1);
  // Masqueraded as if from inside and hairpinned: A hears it from the external address, not S.
  t.is(back.all.length, 1);
  t.not(back.pkt!.src, S);
  t.is(back.pkt!.src, EXT);
  t.true(
    sessionRows(nat, 2).some((r) => r.inside === S),
    'the server got a mapping as if it were an inside host',
  );
  // Side.Inside is classified as before (the guess): the same packet from the inside TUN.
  const nat2 = mkNat({ rules: WIDE, filtering: 'address-port' });
  const ext2 = one(natFrom(nat2, Side.Inside, udp({ src: A, sport: 5000, dst: S, dport: 3478 }), 0)).sport!;
  t.is(natFrom(nat2, Side.Inside, udp({ src: S, sport: 3478, dst: EXT, dport: ext2 }), 1).pkt?.src, EXT);
});
