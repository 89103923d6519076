/**
 * unanswered.test.ts — the `unanswered` timer (`[timeouts] unanswered`, `--timeouts
 * unanswered=`): how long a session an inbound packet created lives until the inside host
 * answers (RFC 4787 REQ-6: inbound traffic never refreshes). It was a fixed 30 s; now it is
 * configured, validated (at least 1 s, at most the UDP timer) and applied live like the others.
 */
import test from 'ava';
import { ConfigError, parseTimeouts, resolveConfig, UNANSWERED_TIMEOUT } from '../src/config.js';
import { listSessions } from '../src/listing.js';
import { natIn, natOut, tcp, udp } from './helpers/packets.js';
import { A, EXT, R, RULES, mkNat, one } from './helpers/scenario.js';

const R2 = '192.0.2.77';

test('default 30 s; a configured unanswered timer is what an inbound-created UDP session gets, and inbound packets do not extend it', (t) => {
  t.is(resolveConfig({ externals: [EXT] }).timeouts.unanswered, UNANSWERED_TIMEOUT);
  t.is(UNANSWERED_TIMEOUT, 30_000);
  const nat = mkNat({ filtering: 'endpoint', timeouts: { unanswered: 7_000 } });
  const p = one(natOut(nat, udp({ src: A, sport: 5000, dst: R, dport: 53 }), 0)).sport!;
  one(natIn(nat, udp({ src: R2, sport: 9000, dst: EXT, dport: p }), 1000));
  const row = () => listSessions(nat.partitions[0]!.table, 0).find((s) => s.remote === R2);
  t.is(row()!.expiresMs, 1000 + 7_000);
  one(natIn(nat, udp({ src: R2, sport: 9000, dst: EXT, dport: p }), 5000));
  t.is(row()!.expiresMs, 1000 + 7_000);
  t.is(nat.expire(1000 + 7_000 - 1), 0);
  t.is(nat.expire(1000 + 7_000), 1);
});

test('a forwarded TCP SYN gets the configured unanswered timer; a live change (reload) applies to the next one', (t) => {
  const nat = mkNat({ rules: `${RULES}\nforward tcp ${EXT}:2323 to ${A}:23`, timeouts: { unanswered: 12_000 } });
  one(natIn(nat, tcp({ src: R, sport: 40000, dst: EXT, dport: 2323, flags: 'S' }), 0));
  const row = (port: number) => listSessions(nat.partitions[0]!.table, 0).find((s) => s.remote === R && s.remotePort === port);
  t.is(row(40000)!.expiresMs, 12_000);
  // What a reload does (workers partition-actor setTimeouts): the same object, changed in place.
  Object.assign(nat.config.timeouts, { unanswered: 3_000 });
  one(natIn(nat, tcp({ src: R, sport: 40001, dst: EXT, dport: 2323, flags: 'S' }), 100));
  t.is(row(40001)!.expiresMs, 3_100);
  t.is(row(40000)!.expiresMs, 12_000, 'an existing session keeps its deadline');
});

test('validation: below 1 s and longer than the UDP timer are config errors that say why', (t) => {
  t.deepEqual(parseTimeouts('unanswered=45s'), { unanswered: 45_000 });
  t.throws(() => parseTimeouts('unanswered=500ms'), { instanceOf: ConfigError, message: /unanswered=500ms is below the 1 second an inside host needs/ });
  t.throws(() => resolveConfig({ externals: [EXT], timeouts: { unanswered: 999 } }), { instanceOf: ConfigError, message: /unanswered=999ms is below the 1 second/ });
  t.throws(() => resolveConfig({ externals: [EXT], timeouts: { unanswered: 6 * 60_000 } }), { instanceOf: ConfigError, message: /unanswered=6m is longer than udp=5m/ });
  t.is(resolveConfig({ externals: [EXT], timeouts: { unanswered: 10 * 60_000, udp: 10 * 60_000 } }).timeouts.unanswered, 600_000);
  t.is(resolveConfig({ externals: [EXT], preset: 'classic' }).timeouts.unanswered, 30_000);
});
