/**
 * timers.test.ts — the TCP opening and closing timers set apart (RFC 7857 §2.1), an RST that
 * never lengthens a session's life (RFC 7857 §2.2), and the timer minimums of RFC 5382 REQ-5
 * (established TCP) and RFC 5508 REQ-2 (ICMP query), on a fake clock with exact deadlines.
 */
import test from 'ava';
import { Nat, type NatOptions } from '../src/nat.js';
import { ConfigError, DEFAULT_TIMEOUTS, HOUR, MINUTE, PRESETS, parseTimeouts, resolveConfig } from '../src/config.js';
import { listSessions } from '../src/listing.js';
import { natIn, natOut, tcp } from './helpers/packets.js';

const EXT = '198.51.100.100';
const A = '10.200.0.2';
const R = '203.0.113.10';
const EST = 2 * HOUR + 4 * MINUTE;

function mkNat(o: Partial<NatOptions> = {}): Nat {
  return new Nat({ externals: [EXT], rules: `masquerade all from 10.200.0.0/24 to any\nforward tcp ${EXT}:8080 to ${A}:80`, maxSessions: 256, seed: 1, ...o });
}

/** The one TCP session's state and absolute deadline. */
function session(nat: Nat, now: number): { state: string; deadline: number } {
  const rows = nat.partitions.flatMap((p) => listSessions(p.table, now)).filter((r) => r.proto === 'tcp');
  if (rows.length !== 1) throw new Error(`expected one TCP session, found ${rows.length}`);
  return { state: rows[0]!.state, deadline: now + rows[0]!.expiresMs };
}

function open(nat: Nat, now: number): number {
  const p = natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' }), now).pkt!.sport!;
  natIn(nat, tcp({ src: R, sport: 80, dst: EXT, dport: p, flags: 'SA' }), now);
  return p;
}

test('defaults: opening and closing 4 min each, established 2h4m; classic keeps 2 min for both', (t) => {
  t.like(DEFAULT_TIMEOUTS, { tcpEstablished: EST, tcpOpening: 4 * MINUTE, tcpClosing: 4 * MINUTE, icmp: 60_000 });
  t.like(PRESETS.classic.timeouts, { tcpEstablished: 15 * MINUTE, tcpOpening: 2 * MINUTE, tcpClosing: 2 * MINUTE });
  t.deepEqual(parseTimeouts('tcp-transitory=3m'), { tcpOpening: 3 * MINUTE, tcpClosing: 3 * MINUTE });
  t.deepEqual(parseTimeouts('tcp-opening=20s,tcp-closing=5s,tcpfin=7s'), { tcpOpening: 20_000, tcpClosing: 7_000 });
});

test('opening and closing timers apply to their own states (RFC 7857 §2.1)', (t) => {
  const nat = mkNat({ timeouts: { tcpOpening: 30_000, tcpClosing: 10_000 } });
  const p = natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' }), 0).pkt!.sport!;
  t.deepEqual(session(nat, 0), { state: 'syn_sent', deadline: 30_000 });
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' }), 20_000);
  t.deepEqual(session(nat, 20_000), { state: 'syn_sent', deadline: 50_000 }, 'a retransmitted SYN re-arms the opening timer');
  natIn(nat, tcp({ src: R, sport: 80, dst: EXT, dport: p, flags: 'SA' }), 21_000);
  t.deepEqual(session(nat, 21_000), { state: 'established', deadline: 21_000 + EST });
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'FA' }), 22_000);
  t.deepEqual(session(nat, 22_000), { state: 'fin_out', deadline: 22_000 + EST });
  natIn(nat, tcp({ src: R, sport: 80, dst: EXT, dport: p, flags: 'FA' }), 23_000);
  t.deepEqual(session(nat, 23_000), { state: 'closing', deadline: 33_000 });
  t.is(nat.expire(32_999), 0);
  t.is(nat.expire(33_000), 1);
});

test('an RST never lengthens a session: established → closing timer, then repeated RSTs keep the first deadline (RFC 7857 §2.2)', (t) => {
  const nat = mkNat();
  const p = open(nat, 0);
  natIn(nat, tcp({ src: R, sport: 80, dst: EXT, dport: p, flags: 'R' }), 60_000);
  t.deepEqual(session(nat, 60_000), { state: 'reset', deadline: 60_000 + 4 * MINUTE });
  // Outbound and inbound RSTs afterwards pass but do not move the deadline.
  t.is(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'R' }), 120_000).drop, 'none');
  t.is(natIn(nat, tcp({ src: R, sport: 80, dst: EXT, dport: p, flags: 'RA' }), 200_000).drop, 'none');
  t.deepEqual(session(nat, 200_000), { state: 'reset', deadline: 60_000 + 4 * MINUTE });
  // An ACK after the RST shows the connection still lives (the RST was forged or lost): back
  // to established, with its timer.
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'A' }), 210_000);
  t.deepEqual(session(nat, 210_000), { state: 'established', deadline: 210_000 + EST });
  // A later RST shortens it again to the closing timer, never lengthens.
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'R' }), 220_000);
  t.deepEqual(session(nat, 220_000), { state: 'reset', deadline: 220_000 + 4 * MINUTE });
  t.is(nat.expire(220_000 + 4 * MINUTE - 1), 0);
  t.is(nat.expire(220_000 + 4 * MINUTE), 1);
});

test('an outbound RST does not re-arm a 4-minute timer: not on an unanswered SYN, not on an inside host refusing a connection', (t) => {
  const nat = mkNat();
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' }), 0);
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'R' }), 3 * MINUTE);
  t.deepEqual(session(nat, 3 * MINUTE), { state: 'reset', deadline: 4 * MINUTE }, 'the SYN\'s deadline, not 3 min + 4 min');
  t.is(nat.expire(4 * MINUTE), 1);
  // A connection from outside to a forwarded port that the inside server refuses.
  const nat2 = mkNat({ timeouts: { tcpOpening: 30_000 } });
  natIn(nat2, tcp({ src: R, sport: 5555, dst: EXT, dport: 8080, flags: 'S' }), 0);
  t.deepEqual(session(nat2, 0), { state: 'syn_received', deadline: 30_000 });
  t.is(natOut(nat2, tcp({ src: A, sport: 80, dst: R, dport: 5555, flags: 'RA' }), 1_000).drop, 'none');
  t.deepEqual(session(nat2, 1_000), { state: 'reset', deadline: 30_000 }, 'not 1 s + the 4-minute closing timer');
});

test('minimums: established TCP ≥ 2h4m (RFC 5382 REQ-5), ICMP query ≥ 60 s (RFC 5508 REQ-2), UDP ≥ 2 min (RFC 4787 REQ-5)', (t) => {
  const err = (timeouts: Record<string, number>) => t.throws(() => resolveConfig({ externals: [EXT], timeouts }), { instanceOf: ConfigError })!.message;
  t.is(err({ tcpEstablished: EST - 1000 }), 'timeouts: tcp=2h3m59s is below the 2 hours 4 minutes RFC 5382 REQ-5 requires for established TCP connections');
  t.is(err({ icmp: 59_000 }), 'timeouts: icmp=59s is below the 60 seconds RFC 5508 REQ-2 requires for ICMP query sessions');
  t.is(err({ udp: 119_000 }), 'timeouts: udp=1m59s is below the 2 minutes RFC 4787 REQ-5 requires');
  t.is(t.throws(() => parseTimeouts('tcp=1h'), { instanceOf: ConfigError })!.message, 'timeouts: tcp=1h is below the 2 hours 4 minutes RFC 5382 REQ-5 requires for established TCP connections');
  // At the minimum exactly, and the transitory timers with none (RFC 7857 §2.1 allows less than 4 min).
  t.like(resolveConfig({ externals: [EXT], timeouts: { tcpEstablished: EST, icmp: 60_000, udp: 120_000, tcpOpening: 1_000, tcpClosing: 1_000 } }).timeouts, { tcpEstablished: EST, icmp: 60_000 });
  // The classic preset's own 15 minutes is not a user setting: it stays possible.
  t.is(resolveConfig({ externals: [EXT], preset: 'classic' }).timeouts.tcpEstablished, 15 * MINUTE);
});

test('new timeouts through Partition.setTimeouts apply to the next refresh of every TCP state (the per-state table follows)', (t) => {
  const nat = mkNat({ timeouts: { tcpOpening: 30_000, tcpClosing: 10_000 } });
  const p = open(nat, 0);
  for (const part of nat.partitions) part.setTimeouts({ tcpEstablished: 3 * HOUR, tcpOpening: 50_000, tcpClosing: 20_000 });
  t.is(nat.partitions[0]!.config.timeouts.tcpEstablished, 3 * HOUR);
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'A' }), 1_000);
  t.deepEqual(session(nat, 1_000), { state: 'established', deadline: 1_000 + 3 * HOUR }, 'established: the new 3 h');
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'FA' }), 2_000);
  natIn(nat, tcp({ src: R, sport: 80, dst: EXT, dport: p, flags: 'FA' }), 3_000);
  t.deepEqual(session(nat, 3_000), { state: 'closing', deadline: 23_000 }, 'closing: the new 20 s');
  natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 80, flags: 'S' }), 4_000);
  t.deepEqual(session(nat, 4_000), { state: 'syn_sent', deadline: 54_000 }, 'a new SYN on the closed five-tuple: the new 50 s opening timer');
});
