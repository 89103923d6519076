/**
 * accept-fragments.test.ts — a fragmented datagram that an `accept` rule passes leaves whole:
 * its later fragments carry no ports to match the rule, so they follow the first fragment's
 * route (a pass route in the dispatcher), in order or early (held, then released with it),
 * untranslated and byte for byte, after the IPv4 header check. Fragments from the outside side
 * never ride an inside flow's pass route. Before the pass route, the later fragments were
 * held and dropped as orphans after the fragment timeout.
 */
import test from 'ava';
import { Side } from '../src/dispatch.js';
import { DropReason } from '../src/drop.js';
import { C } from '../src/counters.js';
import { fragment, natFrom, natOut, udp } from './helpers/packets.js';
import { A, RULES, mkNat } from './helpers/scenario.js';

/** A host that A reaches untranslated. */
const PEER = '10.9.0.7';
const ACCEPT = `accept all from 10.200.0.0/24 to 10.9.0.0/16\n${RULES}`;

function datagram(id: number): Uint8Array[] {
  return fragment(udp({ src: A, sport: 5000, dst: PEER, dport: 7000, ipId: id, payload: 'z'.repeat(100) }), [32, 40]);
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

for (const partitions of [1, 4]) {
  test(`accepted fragments in order all pass untranslated, byte for byte (${partitions} partition(s))`, (t) => {
    const nat = mkNat({ rules: ACCEPT, partitions });
    const frags = datagram(0x4242);
    t.is(frags.length, 3);
    frags.forEach((f, i) => {
      const r = natOut(nat, f, i);
      t.is(r.drop, 'none', `fragment ${i}`);
      t.is(r.bytes.length, 1, `fragment ${i} passes`);
      t.true(same(r.bytes[0]!, f), `fragment ${i} unchanged`);
    });
    t.is(nat.counters()[C.PASSED], 3);
    t.is(nat.expire(10_000), 0);
    t.is(nat.drops(DropReason.FragmentOrphan), 0, 'nothing was left to expire as an orphan');
  });
}

test('accepted fragments out of order: the early ones are held and leave with the first', (t) => {
  const nat = mkNat({ rules: ACCEPT });
  const [f1, f2, f3] = datagram(0x4343);
  t.is(natOut(nat, f3!, 0).drop, 'held');
  t.is(natOut(nat, f2!, 1).drop, 'held');
  const r = natOut(nat, f1!, 2);
  t.is(r.bytes.length, 3, 'the first fragment and both held ones');
  t.true(same(r.bytes[0]!, f1!));
  t.true(same(r.bytes[1]!, f3!));
  t.true(same(r.bytes[2]!, f2!));
  t.is(nat.counters()[C.PASSED], 3);
});

test('a later accepted fragment with a broken IP header checksum is dropped, held or not', (t) => {
  const nat = mkNat({ rules: ACCEPT });
  const [f1, f2, f3] = datagram(0x4444);
  const bad3 = f3!.slice();
  bad3[10] ^= 0xff;
  t.is(natOut(nat, bad3, 0).drop, 'held');
  t.is(natOut(nat, f1!, 1).bytes.length, 1, 'the held broken fragment does not leave with the first');
  t.is(nat.drops(DropReason.BadIpChecksum), 1);
  const bad2 = f2!.slice();
  bad2[10] ^= 0xff;
  const r = natOut(nat, bad2, 2);
  t.is(r.drop, 'bad_ip_checksum');
  t.is(r.bytes.length, 0);
  t.is(nat.drops(DropReason.BadIpChecksum), 2);
});

test('a later fragment arriving on the outside side never rides an accepted flow\'s pass route, before or after its first', (t) => {
  const nat = mkNat({ rules: ACCEPT });
  const [f1, f2, f3] = datagram(0x4545);
  t.is(natFrom(nat, Side.Outside, f3!.slice(), 0).drop, 'held', 'early, from outside');
  const first = natOut(nat, f1!, 1);
  t.is(first.bytes.length, 1, 'the first fragment passes alone: the outside copy stays held');
  const r = natFrom(nat, Side.Outside, f2!, 2);
  t.is(r.drop, 'held');
  t.is(r.bytes.length, 0);
  nat.expire(10_000);
  t.is(nat.drops(DropReason.FragmentOrphan), 2);
});
