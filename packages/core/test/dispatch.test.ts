/**
 * dispatch.test.ts — `Dispatcher.classify` on its common path and on each test that leaves it:
 * the common path (TCP/UDP routed in line by the ports, no pass-route, pin or forward lookup
 * when the configuration has none) must give exactly the partition, direction and drop
 * reason that the out-of-line decisions give when the configuration has accept rules, pinned
 * endpoints, forwards, several partitions or ICMP. Each test names what it guards.
 */
import test from 'ava';
import { DropReason } from '../src/drop.js';
import { DISPATCH_DROP, DISPATCH_PASS, Side } from '../src/dispatch.js';
import { insidePartition } from '../src/hash.js';
import { addr, icmpEcho, tcp, udp } from './helpers/packets.js';
import { EXT, A, R, mkNat } from './helpers/scenario.js';

const IN_HOST = '10.200.0.9';

test('accept rule: an accepted packet is passed, and one with a bad header checksum is dropped (bad_ip_checksum), where a masquerade-only rule set sends the same packet to its partition', (t) => {
  const pkt = udp({ src: A, sport: 5000, dst: '10.99.0.1', dport: 53 });
  const nat = mkNat({ rules: 'accept all from 10.200.0.0/24 to 10.99.0.0/16\nmasquerade all from 10.200.0.0/24 to any' });
  const d = nat.dispatcher;
  t.is(d.classify(pkt, 0, pkt.length, 0), DISPATCH_PASS);
  const bad = pkt.slice();
  bad[10]! ^= 0x40; // IPv4 header checksum
  t.is(d.classify(bad, 0, bad.length, 0), DISPATCH_DROP);
  t.is(d.reason, DropReason.BadIpChecksum);
  // The masquerade rule after the accept rule still translates everything else.
  const other = udp({ src: A, sport: 5000, dst: R, dport: 53 });
  t.is(d.classify(other, 0, other.length, 0), 0);
  t.is(d.dir, 0);
  // Without the accept rule the header is the partition's to check: routed, not dropped here.
  const plain = mkNat().dispatcher;
  t.is(plain.classify(bad, 0, bad.length, 0), 0);
  t.is(plain.dir, 0);
});

test('accept rule matched by ports only: the same source is passed to one port and masqueraded to another', (t) => {
  const nat = mkNat({ rules: 'accept tcp from 10.200.0.0/24 to any 22\nmasquerade all from 10.200.0.0/24 to any' });
  const d = nat.dispatcher;
  const ssh = tcp({ src: A, sport: 40000, dst: R, dport: 22, flags: 'S' });
  const web = tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' });
  t.is(d.classify(ssh, 0, ssh.length, 0), DISPATCH_PASS);
  t.is(d.classify(web, 0, web.length, 0), 0);
  t.is(d.dir, 0);
});

test('pinned endpoint (several partitions): its packets go to the pinning partition, not the hash one, and back to the hash once unpinned', (t) => {
  const P = 4;
  const nat = mkNat({ partitions: P, maxSessions: 4096 });
  const d = nat.dispatcher;
  const src = addr(A);
  // An inside port whose hash partition is not 3, pinned to 3.
  let port = 20000;
  while (insidePartition(6, src, port, P) === 3) port++;
  const hashed = insidePartition(6, src, port, P);
  const pkt = tcp({ src: A, sport: port, dst: R, dport: 80, flags: 'SA' });
  t.is(d.classify(pkt, 0, pkt.length, 0), hashed, 'unpinned: the hash partition');
  t.true(nat.pins.pin(3, 6, src, port));
  t.is(d.classify(pkt, 0, pkt.length, 0), 3, 'pinned: the pinning partition');
  t.is(d.dir, 0);
  // Another protocol on the same port is not pinned.
  const u = udp({ src: A, sport: port, dst: R, dport: 80 });
  t.is(d.classify(u, 0, u.length, 0), insidePartition(17, src, port, P));
  nat.pins.unpin(3, 6, src, port);
  t.is(d.classify(pkt, 0, pkt.length, 0), hashed, 'unpinned again: the hash partition');
});

test('pinned endpoint: a pin wins over an accept rule (the pinning partition holds the session)', (t) => {
  const P = 2;
  const nat = mkNat({ partitions: P, rules: 'accept tcp from 10.200.0.0/24 to any 21\nmasquerade all from 10.200.0.0/24 to any' });
  const d = nat.dispatcher;
  const src = addr(A);
  let port = 30000;
  while (insidePartition(6, src, port, P) === 1) port++;
  const pkt = tcp({ src: A, sport: port, dst: R, dport: 21, flags: 'A' });
  t.is(d.classify(pkt, 0, pkt.length, 0), DISPATCH_PASS);
  t.true(nat.pins.pin(1, 6, src, port));
  t.is(d.classify(pkt, 0, pkt.length, 0), 1);
  t.is(d.dir, 0);
});

test('port forward (several partitions): inbound to the forwarded port goes to the partition of the inside endpoint, not the port owner; other ports to their owner', (t) => {
  const P = 4;
  const nat = mkNat({ partitions: P, rules: `masquerade all from 10.200.0.0/24 to any\nforward tcp ${EXT}:8000-8099 to ${IN_HOST}:9000-9099` });
  const d = nat.dispatcher;
  // A forwarded port whose owner in the port plan is not the inside endpoint's partition.
  let ext = 8000;
  while (nat.plan.ownerOf[ext] === insidePartition(6, addr(IN_HOST), 9000 + ext - 8000, P)) ext++;
  t.true(ext < 8100, 'some forwarded port tells the two apart');
  const want = insidePartition(6, addr(IN_HOST), 9000 + ext - 8000, P);
  for (const side of [Side.Unknown, Side.Outside]) {
    const pkt = tcp({ src: R, sport: 55555, dst: EXT, dport: ext, flags: 'S' });
    t.is(d.classify(pkt, 0, pkt.length, 0, -1, side), want, `side ${side}`);
    t.is(d.dir, 1);
    // The same port over UDP is not forwarded: its owner in the plan, or no mapping.
    const u = udp({ src: R, sport: 55555, dst: EXT, dport: ext });
    const owner = nat.plan.ownerOf[ext]!;
    t.is(d.classify(u, 0, u.length, 0, -1, side), owner === 0xff ? DISPATCH_DROP : owner);
  }
  // The forwarded server's replies go outbound to the same partition (no masquerade rule needed).
  const only = mkNat({ partitions: P, rules: `forward tcp ${EXT}:8000-8099 to ${IN_HOST}:9000-9099` }).dispatcher;
  const reply = tcp({ src: IN_HOST, sport: 9000 + ext - 8000, dst: R, dport: 55555, flags: 'SA' });
  t.is(only.classify(reply, 0, reply.length, 0), want);
  t.is(only.dir, 0);
  const stranger = tcp({ src: IN_HOST, sport: 7000, dst: R, dport: 55555, flags: 'S' });
  t.is(only.classify(stranger, 0, stranger.length, 0), DISPATCH_DROP);
  t.is(only.reason, DropReason.NoRule);
});

test('inbound TCP/UDP to a port no partition owns: no_mapping; to an address not ours: no_rule', (t) => {
  const nat = mkNat({ portLo: 40000, portHi: 40999 });
  const d = nat.dispatcher;
  const owned = udp({ src: R, sport: 53, dst: EXT, dport: 40500 });
  t.is(d.classify(owned, 0, owned.length, 0), 0);
  t.is(d.dir, 1);
  const unowned = udp({ src: R, sport: 53, dst: EXT, dport: 30000 });
  t.is(d.classify(unowned, 0, unowned.length, 0), DISPATCH_DROP);
  t.is(d.reason, DropReason.NoMapping);
  const elsewhere = udp({ src: R, sport: 53, dst: '198.51.100.7', dport: 40500 });
  t.is(d.classify(elsewhere, 0, elsewhere.length, 0), DISPATCH_DROP);
  t.is(d.reason, DropReason.NoRule);
});

test('ICMP echo (several partitions): outbound by (source, identifier), inbound to the identifier\'s owner', (t) => {
  const P = 4;
  const nat = mkNat({ partitions: P });
  const d = nat.dispatcher;
  const src = addr(A);
  // Identifiers whose partition differs from that of identifier 0 (the "port" of a portless packet).
  let id = 1;
  while (insidePartition(1, src, id, P) === insidePartition(1, src, 0, P)) id++;
  const ping = icmpEcho({ src: A, dst: R, id });
  t.is(d.classify(ping, 0, ping.length, 0), insidePartition(1, src, id, P));
  t.is(d.dir, 0);
  const owner = nat.plan.ownerOf[40123]!;
  const pong = icmpEcho({ src: R, dst: EXT, id: 40123, reply: true });
  t.is(d.classify(pong, 0, pong.length, 0), owner);
  t.is(d.dir, 1);
});
