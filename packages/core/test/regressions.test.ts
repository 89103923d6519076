/**
 * regressions.test.ts — one test per correctness bug of issue 11 (found by fuzzing and review),
 * each written to fail on the code before its fix:
 *  1. a later fragment delivered to the wrong inside host after its session's slot was reused;
 *  2. held early fragments that never expire while traffic keeps the dispatcher busy;
 *  3. inbound packets from new remote endpoints creating full-timer sessions (RFC 4787 REQ-6);
 *  4. per-host limits split evenly over partitions instead of exact (RFC 6888 REQ-4);
 *  5. packets an `accept` rule passes leaving without any header check;
 *  6. more than 16 external addresses overflowing the per-address counters.
 */
import test from 'ava';
import { DropReason } from '../src/drop.js';
import { listSessions } from '../src/listing.js';
import { DISPATCH_DROP, DISPATCH_HELD } from '../src/dispatch.js';
import { UNANSWERED_TIMEOUT, ConfigError, resolveConfig } from '../src/config.js';
import { insidePartition } from '../src/hash.js';
import { HostCounts } from '../src/hosts.js';
import { C } from '../src/counters.js';
import { fillIpChecksum } from './helpers/oracle.js';
import { EXT, EXT2, A, B, R, RULES, mkNat, one } from './helpers/scenario.js';
import { addr, fragment, natIn, natOut, tcp, udp, withIp } from './helpers/packets.js';


// ---------------------------------------------------------------------------------------------
// 1. Fragment state keyed by the session's generation

for (const externals of [[EXT], [EXT, EXT2]]) {
  test(`bug 1: a later fragment never follows a reused session slot to another host (${externals.length} external address${externals.length > 1 ? 'es' : ''})`, (t) => {
    const nat = mkNat({ externals });
    const UDP_T = nat.config.timeouts.udp;
    const oa = one(natOut(nat, udp({ src: A, sport: 5000, dst: R, dport: 53 }), 0));
    const reply = udp({ src: R, sport: 53, dst: oa.src, dport: oa.sport!, ipId: 4242, payload: new Uint8Array(64).fill(9) });
    const [f1, f2] = fragment(reply, [32]);
    t.like(one(natIn(nat, f1!, UDP_T - 1)), { dst: A, dport: 5000 });
    t.is(nat.expire(UDP_T), 1, "A's session expires inside the fragment window");
    const ob = one(natOut(nat, udp({ src: B, sport: 6000, dst: R, dport: 53 }), UDP_T + 1));
    t.is(listSessions(nat.partitions[0]!.table, UDP_T + 1)[0]!.inside, B, "B's flow took the freed slot");
    void ob;
    const r = natIn(nat, f2!, UDP_T + 500);
    t.is(r.drop, 'fragment_orphan', r.pkt ? `delivered to ${r.pkt.dst}` : '');
    t.is(r.all.length, 0);
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Held early fragments expire as time passes, whatever the load

test('bug 2: under continuous traffic, held orphan fragments expire and new early fragments are held again', (t) => {
  const nat = mkNat();
  const d = nat.dispatcher;
  const FRAG = nat.config.timeouts.fragment;
  // Fill every holding place with orphans (later fragments whose first never comes).
  for (let i = 0; i < nat.config.fragmentHold; i++) {
    const f = fragment(udp({ src: A, sport: 1, dst: R, dport: 2, ipId: i, payload: new Uint8Array(64) }), [32])[1]!;
    t.is(d.classify(f, 0, f.length, 0, 1000 + i), DISPATCH_HELD);
  }
  const late = fragment(udp({ src: A, sport: 1, dst: R, dport: 2, ipId: 60000, payload: new Uint8Array(64) }), [32])[1]!;
  t.is(d.classify(late, 0, late.length, 1, 9999), DISPATCH_DROP);
  t.is(d.reason, DropReason.FragmentBufferFull, 'full while the orphans are young');
  // Continuous traffic, one packet a millisecond, as the I/O thread classifies it while the
  // TUN never goes idle: no pause in which to sweep.
  const flow = udp({ src: B, sport: 7, dst: R, dport: 53 });
  for (let now = 1; now <= FRAG + 10; now++) d.classify(flow, 0, flow.length, now, 1);
  t.is(d.heldCount, 0, 'every orphan left the holding places when its time came');
  t.is(d.classify(late, 0, late.length, FRAG + 11, 9999), DISPATCH_HELD, 'a new early fragment is held again');
  const gone = d.expired(FRAG + 11);
  t.is(gone.length, nat.config.fragmentHold, 'the orphans are handed back to be dropped');
  t.deepEqual([...gone].sort((x, y) => x - y).slice(0, 3), [1000, 1001, 1002]);
});

test('bug 2: through Nat, an orphan held under steady traffic is dropped fragment_orphan within the fragment timeout', (t) => {
  const nat = mkNat();
  const FRAG = nat.config.timeouts.fragment;
  const f = fragment(udp({ src: A, sport: 1, dst: R, dport: 2, ipId: 5, payload: new Uint8Array(64) }), [32])[1]!;
  t.is(natOut(nat, f, 0).drop, 'held');
  for (let now = 10; now <= FRAG; now += 10) one(natOut(nat, udp({ src: B, sport: 7, dst: R, dport: 53 }), now));
  t.is(nat.dispatcher.heldCount, 0);
  t.is(nat.drops(DropReason.FragmentOrphan), 1);
});

// ---------------------------------------------------------------------------------------------
// 3. Inbound packets from new remote endpoints (RFC 4787 REQ-6)

test('bug 3: a session made by an inbound packet lives 30 s until the inside host answers, and inbound packets do not extend it', (t) => {
  const nat = mkNat({ filtering: 'endpoint' });
  const UDP_T = nat.config.timeouts.udp;
  const p = one(natOut(nat, udp({ src: A, sport: 5000, dst: R, dport: 53 }), 0)).sport!;
  // R2 (a new remote endpoint) reaches A through endpoint-independent filtering.
  const R2 = '192.0.2.77';
  t.like(one(natIn(nat, udp({ src: R2, sport: 9000, dst: EXT, dport: p }), 1000)), { dst: A, dport: 5000 });
  const row = () => listSessions(nat.partitions[0]!.table, 0).find((s) => s.remote === R2);
  t.is(row()!.expiresMs, 1000 + UNANSWERED_TIMEOUT);
  t.true(row()!.inboundCreated);
  // More inbound from R2 does not refresh it.
  one(natIn(nat, udp({ src: R2, sport: 9000, dst: EXT, dport: p }), 20_000));
  t.is(row()!.expiresMs, 1000 + UNANSWERED_TIMEOUT);
  t.is(nat.expire(1000 + UNANSWERED_TIMEOUT - 1), 0);
  t.is(nat.expire(1000 + UNANSWERED_TIMEOUT), 1, "R2's unanswered session goes after 30 s");
  t.is(nat.sessionCount, 1, "A's own session (5 min) keeps the mapping");
  // Answered: the protocol's timer applies from the answer on.
  one(natIn(nat, udp({ src: R2, sport: 9001, dst: EXT, dport: p }), 40_000));
  one(natOut(nat, udp({ src: A, sport: 5000, dst: R2, dport: 9001 }), 45_000));
  t.is(listSessions(nat.partitions[0]!.table, 0).find((s) => s.remotePort === 9001)!.expiresMs, 45_000 + UDP_T);
  // Only outbound traffic keeps the mapping: A's flow to R ends at 5 min; inbound from new
  // endpoints after it does not hold the mapping past their own 30 s.
  t.is(nat.expire(45_000 + UDP_T), 2);
  t.is(natIn(nat, udp({ src: R2, sport: 9002, dst: EXT, dport: p }), 45_000 + UDP_T).drop, 'no_mapping');
});

test('bug 3: an inbound TCP SYN from a new endpoint gets the short timer; the inside SYN/ACK gives it the TCP timers', (t) => {
  const nat = mkNat({ filtering: 'endpoint' });
  const p = one(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' }), 0)).sport!;
  const R2 = '192.0.2.77';
  one(natIn(nat, tcp({ src: R2, sport: 4444, dst: EXT, dport: p, flags: 'S' }), 1000));
  const row = () => listSessions(nat.partitions[0]!.table, 0).find((s) => s.remote === R2)!;
  t.like(row(), { state: 'syn_received', expiresMs: 1000 + UNANSWERED_TIMEOUT });
  one(natIn(nat, tcp({ src: R2, sport: 4444, dst: EXT, dport: p, flags: 'S' }), 10_000));
  t.is(row().expiresMs, 1000 + UNANSWERED_TIMEOUT, 'a retransmitted SYN does not extend it');
  one(natOut(nat, tcp({ src: A, sport: 40000, dst: R2, dport: 4444, flags: 'SA' }), 11_000));
  t.like(row(), { state: 'established', expiresMs: 11_000 + nat.config.timeouts.tcpEstablished });
});

test('bug 3: sessions made by inbound packets count against the inside host\'s session limit', (t) => {
  const nat = mkNat({ filtering: 'endpoint', hostSessionLimit: 3 });
  const p = one(natOut(nat, udp({ src: A, sport: 5000, dst: R, dport: 53 }), 0)).sport!;
  for (const r of ['192.0.2.1', '192.0.2.2']) t.like(one(natIn(nat, udp({ src: r, sport: 9, dst: EXT, dport: p }), 1)), { dst: A });
  t.is(natIn(nat, udp({ src: '192.0.2.3', sport: 9, dst: EXT, dport: p }), 1).drop, 'host_limit');
  t.is(natOut(nat, udp({ src: A, sport: 5001, dst: R, dport: 53 }), 1).drop, 'host_limit', 'the inbound ones use up the outbound budget too');
  t.is(nat.partitions[0]!.hosts!.sessionsOf(addr(A)), 3);
  t.is(nat.expire(1 + UNANSWERED_TIMEOUT), 2);
  t.like(one(natOut(nat, udp({ src: A, sport: 5001, dst: R, dport: 53 }), 1 + UNANSWERED_TIMEOUT)), { src: EXT });
});

// ---------------------------------------------------------------------------------------------
// 4. Per-host limits exact across partitions (RFC 6888 REQ-4/5)

/** Inside ports of host `h` whose flows land in each of `P` partitions (`n` per partition). */
function portsByPartition(h: string, P: number, n: number, proto = 17): number[][] {
  const out: number[][] = Array.from({ length: P }, () => []);
  for (let port = 1024; out.some((l) => l.length < n); port++) {
    const l = out[insidePartition(proto, addr(h), port, P)]!;
    if (l.length < n) l.push(port);
  }
  return out;
}

test('bug 4: the per-host session limit is exact over 4 partitions however the flows hash', (t) => {
  const LIMIT = 5;
  const by = portsByPartition(A, 4, LIMIT + 1);
  // All in one partition (the old share, ceil(5/4) = 2 per partition, refused the third),
  // then spread: either way exactly LIMIT sessions, the next refused wherever it lands.
  for (const spread of [false, true]) {
    const nat = mkNat({ partitions: 4, hostSessionLimit: LIMIT });
    const ports = spread ? [0, 1, 2, 3, 0, 1].map((p, i) => by[p]![Math.floor(i / 4)]!) : by[0]!;
    const drops = ports.map((sport) => natOut(nat, udp({ src: A, sport, dst: R, dport: 53 }), 0).drop);
    t.deepEqual(drops, ['none', 'none', 'none', 'none', 'none', 'host_limit'], spread ? 'spread over partitions' : 'all in one partition');
    t.is(nat.sessionCount, LIMIT);
    // Another host is not affected; a freed session makes room in any partition.
    t.like(one(natOut(nat, udp({ src: B, sport: 1, dst: R, dport: 53 }), 0)), { src: EXT });
    t.is(nat.expire(nat.config.timeouts.udp), LIMIT + 1);
    t.like(one(natOut(nat, udp({ src: A, sport: by[3]![0]!, dst: R, dport: 53 }), nat.config.timeouts.udp)), { src: EXT });
  }
});

test('bug 4: the per-host port limit is exact over 4 partitions; sessions on a held port do not count as ports', (t) => {
  const nat = mkNat({ partitions: 4, hostPortLimit: 3 });
  const by = portsByPartition(A, 4, 2);
  const ports = [by[0]![0]!, by[0]![1]!, by[1]![0]!, by[2]![0]!];
  const drops = ports.map((sport) => natOut(nat, udp({ src: A, sport, dst: R, dport: 53 }), 0).drop);
  t.deepEqual(drops, ['none', 'none', 'none', 'host_limit']);
  // A second remote on a mapping A already holds is a session, not a port.
  t.like(one(natOut(nat, udp({ src: A, sport: ports[0]!, dst: '192.0.2.9', dport: 53 }), 0)), { src: EXT });
  t.is(nat.partitions[2]!.hosts!.portsOf(addr(A)), 3);
  t.is(nat.partitions[2]!.hosts!.sessionsOf(addr(A)), 4);
});

test('bug 4: the shared host counts refuse exactly at the limit when partitions take turns', (t) => {
  const hc = new HostCounts(64, 10, 4);
  let taken = 0;
  for (let i = 0; i < 40; i++) if (hc.reserve(7, 1, i % 3 === 0 ? 1 : 0, i % 4)) taken++;
  t.is(taken, 10);
  t.is(hc.sessionsOf(7), 10);
  t.is(hc.portsOf(7), 4);
  hc.add(7, -10, -4, 0);
  t.is(hc.hosts, 0, 'an entry with nothing left goes');
  // A lock left by a dead owner of partition 2 is cleared when partition 2 restarts.
  const h = new Int32Array(hc.buffer, 0, 1);
  Atomics.store(h, 0, 3);
  hc.recover(2);
  t.true(hc.reserve(7, 1, 0, 1));
});

// ---------------------------------------------------------------------------------------------
// 5. Accept rules: header-validated before passing

test('bug 5: a packet an accept rule matches passes only with a valid header', (t) => {
  const nat = mkNat({ rules: `accept all from 10.200.0.0/24 to 10.9.0.0/16\n${RULES}` });
  const good = udp({ src: A, sport: 5000, dst: '10.9.0.5', dport: 53 });
  t.like(one(natOut(nat, good, 0)), { src: A, sport: 5000, dst: '10.9.0.5', ttl: 64 });
  // Protocol 99 with a broken header checksum (the fuzz's finding).
  const bad = withIp(good, {});
  bad[9] = 99;
  bad[10] ^= 0x5a;
  let r = natOut(nat, bad, 0);
  t.is(r.drop, 'bad_ip_checksum');
  t.is(r.all.length, 0);
  // The same protocol 99 with a right checksum passes (accept means untranslated, not refused).
  const p99 = good.slice();
  p99[9] = 99;
  fillIpChecksum(p99);
  t.is(natOut(nat, p99, 0).all.length, 1);
  // A TCP data offset beyond the segment, a UDP length beyond the datagram.
  const seg = tcp({ src: A, sport: 1, dst: '10.9.0.5', dport: 80 });
  seg[32] = 0xf0;
  fillIpChecksum(seg);
  t.is(natOut(nat, seg, 0).drop, 'bad_l4_header');
  const dg = good.slice();
  dg[24] = 0x40;
  t.is(natOut(nat, dg, 0).drop, 'bad_l4_header');
  t.is(nat.drops(DropReason.BadIpChecksum), 1);
  t.is(nat.drops(DropReason.BadL4Header), 2);
  r = natOut(nat, good, 1);
  t.is(r.all.length, 1);
});

// ---------------------------------------------------------------------------------------------
// 6. External addresses: at most 16

test('bug 6: more than 16 external addresses is a clear configuration error; 16 work', (t) => {
  const ext = (n: number) => Array.from({ length: n }, (_, i) => `198.51.100.${100 + i}`);
  const e = t.throws(() => resolveConfig({ externals: ext(17) }), { instanceOf: ConfigError });
  t.is(e!.message, 'address: 17 external addresses given; at most 16 are supported');
  const nat = mkNat({ externals: ext(16) });
  const used = new Set<string>();
  for (let h = 2; h < 250 && used.size < 16; h++) used.add(one(natOut(nat, udp({ src: `10.200.0.${h}`, sport: 1, dst: R, dport: 53 }), 0)).src);
  t.is(used.size, 16, 'every address of the pool is used');
  const c = nat.counters();
  t.is(c[C.PORTS_IN_USE + 15]! > 0, true, 'the 16th address has its own ports-in-use gauge');
  t.is(c[C.HAIRPINNED], 0, 'and nothing spills into the slot after the gauges');
});
