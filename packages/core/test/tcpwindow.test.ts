/**
 * tcpwindow.test.ts — the RFC 5961-style check of inbound RST and FIN (translate/fastpath.ts):
 * once the inside host has acknowledged, an inbound RST or FIN counts only within one window
 * (scaled as its SYN offered, RFC 7323) of its last acknowledgement. Out of window: dropped,
 * counted `tcp_out_of_window`, the session keeps its state and its timer. In window: passed,
 * the session moves to reset (RFC 7857 §2.2) and returns to established at the next ACK.
 * And the window scale option parser never reads past the header.
 */
import test from 'ava';
import fc from 'fast-check';
import { Nat, type NatOptions } from '../src/nat.js';
import { listSessions, type SessionRow } from '../src/listing.js';
import { windowScale } from '../src/wire/tcp.js';
import { DropReason } from '../src/drop.js';
import { tcp, natIn, natOut, type NatResult } from './helpers/packets.js';

const A = '10.200.0.2';
const R = '203.0.113.10';
const EXT = '198.51.100.100';
const MINUTE = 60_000;
const EST = 2 * 60 * MINUTE + 4 * MINUTE;
/** The remote's initial sequence number; its data starts at ISN + 1. */
const RISN = 5_000_000;

function mkNat(o: Partial<NatOptions> = {}): Nat {
  return new Nat({ externals: [EXT], rules: 'masquerade all from 10.200.0.0/24 to any', maxSessions: 1024, seed: 1, ...o });
}

function session(nat: Nat, now: number): SessionRow {
  const r = nat.partitions.flatMap((p) => listSessions(p.table, now)).filter((x) => x.proto === 'tcp');
  if (r.length !== 1) throw new Error(`expected one TCP session, found ${r.length}`);
  return r[0]!;
}

function ok(r: NatResult): void {
  if (r.all.length !== 1) throw new Error(`expected the packet through, dropped: ${r.drop}`);
}

/**
 * A connection through the NAT: SYN out (window scale `wscale`, or none), SYN/ACK in, ACK out
 * acknowledging RISN + 1 with window `win`. Returns the external port.
 */
function established(nat: Nat, win: number, wscale: number | null): number {
  const opts = wscale === null ? [] : [1, 3, 3, wscale];
  const syn = natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 443, flags: 'S', seq: 100, options: opts }), 0);
  ok(syn);
  const p = syn.pkt!.sport!;
  ok(natIn(nat, tcp({ src: R, sport: 443, dst: EXT, dport: p, flags: 'SA', seq: RISN, ack: 101 }), 0));
  ok(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 443, flags: 'A', seq: 101, ack: RISN + 1, win }), 1000));
  return p;
}

const inbound = (p: number, flags: string, seq: number): Uint8Array => tcp({ src: R, sport: 443, dst: EXT, dport: p, flags, seq, ack: 101 });

test('an out-of-window RST or FIN from outside is dropped and counted; the session keeps its state and timer', (t) => {
  const nat = mkNat();
  const p = established(nat, 1000, 7);
  t.like(session(nat, 1000), { state: 'established', expiresMs: EST });
  const far = RISN + 1 + 2 ** 31;
  for (const [flags, seq] of [['R', far], ['RA', RISN + 1 - 2 ** 20], ['FA', far], ['F', RISN + 1 + 3 * 2 ** 20]] as const) {
    t.is(natIn(nat, inbound(p, flags, seq), 5000).drop, 'tcp_out_of_window', `${flags} at ${seq}`);
  }
  t.is(nat.drops(DropReason.TcpOutOfWindow), 4);
  // Neither the state nor the deadline moved: the forged segments did not refresh it either.
  t.like(session(nat, 5000), { state: 'established', expiresMs: EST - 4000 });
  // The connection carries on.
  ok(natIn(nat, tcp({ src: R, sport: 443, dst: EXT, dport: p, flags: 'PA', seq: RISN + 1, ack: 101, payload: 'data' }), 6000));
  ok(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 443, flags: 'A', seq: 101, ack: RISN + 5, win: 1000 }), 6000));
  t.is(session(nat, 6000).state, 'established');
});

test('an in-window RST passes and moves the session to reset; the next ACK brings it back (RFC 7857 §2.2)', (t) => {
  const nat = mkNat();
  const p = established(nat, 1000, 7);
  ok(natIn(nat, inbound(p, 'R', RISN + 1 + 50_000), 2000));
  t.like(session(nat, 2000), { state: 'reset', expiresMs: 4 * MINUTE });
  // The inside host answered with a challenge ACK (RFC 5961 §3.2): the connection lives.
  ok(natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 443, flags: 'A', seq: 101, ack: RISN + 1, win: 1000 }), 2100));
  t.like(session(nat, 2100), { state: 'established', expiresMs: EST });
  // An in-window FIN is the remote closing: it passes.
  ok(natIn(nat, inbound(p, 'FA', RISN + 1), 3000));
  t.is(session(nat, 3000).state, 'fin_in');
});

test('the window is scaled as the SYN offered (RFC 7323), and is never taken below 64 KiB', (t) => {
  // Window 1000 << 7 = 128000 bytes.
  const scaled = mkNat();
  const p1 = established(scaled, 1000, 7);
  ok(natIn(scaled, inbound(p1, 'R', RISN + 1 + 100_000), 2000));
  const scaled2 = mkNat();
  const p2 = established(scaled2, 1000, 7);
  t.is(natIn(scaled2, inbound(p2, 'R', RISN + 1 + 200_000), 2000).drop, 'tcp_out_of_window');
  // No window scale option: 1000 bytes, counted as 65535.
  const plain = mkNat();
  const p3 = established(plain, 1000, null);
  t.is(natIn(plain, inbound(p3, 'R', RISN + 1 + 100_000), 2000).drop, 'tcp_out_of_window');
  const plain2 = mkNat();
  const p4 = established(plain2, 1000, null);
  ok(natIn(plain2, inbound(p4, 'R', RISN + 1 + 60_000), 2000));
  // A shift above 14 counts as 14 (RFC 7323 §2.3).
  const big = mkNat();
  const p5 = established(big, 65535, 30);
  ok(natIn(big, inbound(p5, 'R', RISN + 1 + 2 ** 29), 2000));
});

test('before the inside host has acknowledged anything, an inbound RST is not judged (no window known yet)', (t) => {
  const nat = mkNat();
  const syn = natOut(nat, tcp({ src: A, sport: 40000, dst: R, dport: 443, flags: 'S', seq: 100 }), 0);
  ok(natIn(nat, tcp({ src: R, sport: 443, dst: EXT, dport: syn.pkt!.sport!, flags: 'RA', seq: 0, ack: 101 }), 10));
  t.is(session(nat, 10).state, 'reset');
});

test('windowScale reads the option among others, and stops at malformed options without reading past the header', (t) => {
  const hdr = (opts: number[]): Uint8Array => {
    const b = new Uint8Array(20 + ((opts.length + 3) & ~3) + 8).fill(0xee);
    b[12] = ((20 + ((opts.length + 3) & ~3)) / 4) << 4;
    b.fill(0, 20, 20 + ((opts.length + 3) & ~3));
    b.set(opts, 20);
    return b;
  };
  t.is(windowScale(hdr([2, 4, 5, 0xb4, 1, 3, 3, 7]), 0), 7, 'after MSS and a NOP');
  t.is(windowScale(hdr([2, 4, 5, 0xb4]), 0), 0, 'absent');
  t.is(windowScale(hdr([3, 3, 20]), 0), 14, 'capped at 14');
  t.is(windowScale(hdr([2, 0, 3, 3, 7]), 0), 0, 'a zero length stops the walk');
  t.is(windowScale(hdr([2, 40, 3, 3, 7]), 0), 0, 'a length past the header stops the walk');
  t.is(windowScale(hdr([0, 3, 3, 7]), 0), 0, 'end of options');
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), (opts) => {
      const b = hdr([...opts]);
      const s = windowScale(b, 0);
      return Number.isInteger(s) && s >= 0 && s <= 14;
    }),
  );
});

test('a session in a reused slot is not judged by the window its predecessor recorded: until its inside host acknowledges, any RST counts', (t) => {
  const nat = mkNat();
  const p1 = established(nat, 1000, 7);
  t.true(p1 > 0);
  // The first connection goes (flush), and its slot serves the next one.
  t.is(nat.partitions[0]!.flush(2000, () => true), 1);
  const syn = natOut(nat, tcp({ src: A, sport: 40001, dst: R, dport: 443, flags: 'S', seq: 100 }), 3000);
  ok(syn);
  const p2 = syn.pkt!.sport!;
  // Far outside the predecessor's window: with its stale acknowledgement and window this would
  // be tcp_out_of_window; the new session has recorded none, so the RST passes.
  const r = natIn(nat, tcp({ src: R, sport: 443, dst: EXT, dport: p2, flags: 'R', seq: RISN + 1 + 2 ** 31, ack: 101 }), 3001);
  t.is(r.drop, 'none');
  t.is(r.all.length, 1);
});
