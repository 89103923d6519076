/**
 * events.test.ts — session events by sampling: the diff (NEW, UPDATE, DESTROY expired vs
 * removed, an id reused for another flow), the conntrack-like line, filters, the `events`
 * stream over a real control socket against a stand-in gateway whose table changes, and the
 * gateway's own sampler (shared-memory columns) against that diff on a real core table.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseIPv4, Side, type SessionRow } from '@masq/core';
import { Nat } from '@masq/core/testing';
import type { Gateway } from '@masq/workers';
import { diffSessions, eventMatches, formatEvent, rowEvents, sessionKey, EventSampler, type SessionEvent } from '../src/events.js';
import { SharedListing, type TableSource } from '../src/shared-listing.js';
import { startControlServer, streamEvents, RefusedError } from '../src/control.js';

function row(id: number, over: Partial<SessionRow> = {}): SessionRow {
  return {
    id,
    proto: 'tcp',
    inside: '10.200.0.2',
    insidePort: 40000 + id,
    external: '198.51.100.100',
    externalPort: 61000 + id,
    remote: '198.51.100.10',
    remotePort: 80,
    state: 'ESTABLISHED',
    idleMs: 0,
    expiresMs: 7_440_000,
    packetsOut: 1,
    packetsIn: 1,
    bytesOut: 60,
    bytesIn: 60,
    initSeq: 0,
    delta: 0,
    pdelta: 0,
    inboundCreated: false,
    hairpin: false,
    ...over,
  };
}

const keyed = (rows: SessionRow[]): Map<string, SessionRow> => new Map(rows.map((r) => [sessionKey(r), r]));

test('diff: new, state update, destroy expired vs removed', (t) => {
  const prev = keyed([row(1), row(2, { state: 'SYN_SENT' }), row(3, { proto: 'udp', state: 'active', expiresMs: 300 }), row(4)]);
  const { events, next } = diffSessions(prev, [row(1), row(2), row(5)], 1000, 500);
  t.deepEqual(
    events.map((e) => [e.type, e.insidePort, e.reason ?? '']),
    [
      ['update', 40002, ''],
      ['new', 40005, ''],
      ['destroy', 40003, 'expired'],
      ['destroy', 40004, 'removed'],
    ],
  );
  t.is(next.size, 3);
  t.is(events[0]!.state, 'ESTABLISHED');
});

test('diff: an id reused by another flow is a destroy and a new', (t) => {
  const { events } = diffSessions(keyed([row(1)]), [row(1, { remotePort: 443 })], 0, 500);
  t.deepEqual(events.map((e) => `${e.type}:${e.remotePort}`).sort(), ['destroy:80', 'new:443']);
});

test('the line reads like conntrack -E: original direction, then the reply direction', (t) => {
  const e: SessionEvent = { type: 'new', time: new Date(2026, 0, 1, 12, 34, 56, 789).getTime(), proto: 'tcp', inside: '10.200.0.2', insidePort: 40001, external: '198.51.100.100', externalPort: 61001, remote: '198.51.100.10', remotePort: 80, state: 'SYN_SENT' };
  t.is(formatEvent(e), '12:34:56.789 [NEW]     tcp  SYN_SENT src=10.200.0.2 dst=198.51.100.10 sport=40001 dport=80 src=198.51.100.10 dst=198.51.100.100 sport=80 dport=61001');
  const icmp: SessionEvent = { ...e, type: 'destroy', reason: 'expired', proto: 'icmp', insidePort: 7, remotePort: 7, externalPort: 1030, state: 'active' };
  t.is(formatEvent(icmp), '12:34:56.789 [DESTROY] icmp src=10.200.0.2 dst=198.51.100.10 id=7 src=198.51.100.10 dst=198.51.100.100 id=1030 (expired)');
  t.true(eventMatches(e, { proto: 'tcp', host: parseIPv4('198.51.100.10')!, port: 80 }));
  t.false(eventMatches(e, { proto: 'udp' }));
  t.false(eventMatches(e, { host: parseIPv4('10.9.9.9')! }));
  t.false(eventMatches(e, { port: 22 }));
});

test('the sampler runs only while someone listens, and its first sample is the baseline', async (t) => {
  let calls = 0;
  const tables = [[row(1)], [row(1), row(2)], [row(2)]];
  const s = new EventSampler(() => Promise.resolve(tables[Math.min(calls++, tables.length - 1)]!), 20);
  const got: string[] = [];
  const off = s.subscribe((e) => got.push(`${e.type}:${e.insidePort}`));
  await new Promise((r) => setTimeout(r, 150));
  off();
  const after = calls;
  await new Promise((r) => setTimeout(r, 80));
  t.is(calls, after);
  t.deepEqual(got, ['new:40002', 'destroy:40001']);
  t.is(s.listening, 0);
});

test('control protocol: events stream over the socket, filtered; a bad filter is refused', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'masq-events-'));
  let table: SessionRow[] = [row(1)];
  const server = await startControlServer({} as Gateway, path.join(dir, 'c.sock'), undefined, { list: () => Promise.resolve(table) });
  try {
    const got: SessionEvent[] = [];
    const all = streamEvents(server.path, {}, (e) => got.push(e));
    const udpOnly: SessionEvent[] = [];
    const udp = streamEvents(server.path, { proto: 'udp' }, (e) => udpOnly.push(e));
    await new Promise((r) => setTimeout(r, 700));
    table = [row(1), row(2), row(3, { proto: 'udp', state: 'active' })];
    await new Promise((r) => setTimeout(r, 1200));
    all.close();
    udp.close();
    await Promise.all([all.done, udp.done]);
    t.deepEqual(got.map((e) => `${e.type}:${e.proto}:${e.insidePort}`).sort(), ['new:tcp:40002', 'new:udp:40003']);
    t.deepEqual(udpOnly.map((e) => `${e.type}:${e.insidePort}`), ['new:40003']);
    const bad = streamEvents(server.path, { proto: 'sctp' }, () => {});
    await t.throwsAsync(bad.done, { instanceOf: RefusedError, message: /proto must be tcp, udp or icmp/ });
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The gateway's sampler (shared-listing.ts `events`) against diffing whole listings, on a real
// core table: the same events, in the same order.

const EXT = '198.51.100.100';
const ip4 = (s: string): number[] => s.split('.').map(Number);

/** An IPv4 packet (TCP with `flags`, or UDP) with a correct header checksum; L4 checksum 0. */
function packet(proto: 'tcp' | 'udp', src: string, sport: number, dst: string, dport: number, flags = 0): Uint8Array {
  const l4 = proto === 'tcp' ? 20 : 8;
  const p = new Uint8Array(20 + l4);
  p.set([0x45, 0, 0, p.length, 0, 1, 0x40, 0, 64, proto === 'tcp' ? 6 : 17, 0, 0, ...ip4(src), ...ip4(dst)]);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p[10] = (~sum >>> 8) & 0xff;
  p[11] = ~sum & 0xff;
  p.set([sport >>> 8, sport & 0xff, dport >>> 8, dport & 0xff], 20);
  if (proto === 'tcp') {
    p[32] = 0x50;
    p[33] = flags;
    p[34] = 0xff;
    p[35] = 0xff;
  } else p.set([0, 8], 24);
  return p;
}

test('the shared-memory sampler (columns against the last sample\'s copy) finds exactly what diffing whole listings finds: new, update, expired, removed, reused ids', async (t) => {
  const nat = new Nat({ externals: [EXT], rules: 'masquerade all from 10.0.0.0/8 to any', maxSessions: 256, partitions: 2, seed: 7, timeouts: { udp: 120_000 } });
  const clockSab = new SharedArrayBuffer(8);
  const clock = new Float64Array(clockSab);
  const t0 = nat.partitions[0]!.table;
  const source = { tables: nat.partitions.map((p) => p.table.memory.buffer), tableSizes: t0.memory.sizes, config: nat.config, memory: { clock: clockSab } } as unknown as TableSource;
  const listing = new SharedListing(source);
  // A small step: the scan yields between steps, as on a large table.
  const columns = listing.events(16);
  const rows = rowEvents(() => listing.list());
  let now = 1_000;
  let wall = 50_000;
  let lastAt = 0;
  const send = (p: Uint8Array, side: Side): Uint8Array | undefined => nat.process(p, 0, p.length, now, side)[0];
  const sample = async (): Promise<SessionEvent[] | null> => {
    clock[0] = now;
    const a = await columns.sample(() => wall, lastAt);
    const b = await rows.sample(() => wall, lastAt);
    t.deepEqual(a, b, `sample at ${now}: the same events`);
    lastAt = wall;
    return a.events;
  };
  const kinds = (ev: SessionEvent[] | null): string[] => (ev ?? []).map((e) => `${e.type}${e.reason ? `:${e.reason}` : ''}:${e.proto}:${e.state}`);
  const count = (ev: SessionEvent[] | null): Record<string, number> => kinds(ev).reduce<Record<string, number>>((m, k) => ((m[k] = (m[k] ?? 0) + 1), m), {});

  // 1. The baseline: ten UDP flows, no events.
  for (let i = 0; i < 10; i++) send(packet('udp', `10.0.0.${2 + i}`, 5000, '203.0.113.1', 53), Side.Inside);
  t.is(await sample(), null, 'the first sample is the baseline');

  // 2. Six TCP SYNs out (new, syn_sent), two of them answered (their state moves on, but they
  //    are new in this sample), and 3 UDP flows more.
  wall += 500;
  now += 500;
  const ext: number[] = [];
  for (let i = 0; i < 6; i++) ext.push(((o) => (o![20]! << 8) | o![21]!)(send(packet('tcp', '10.0.1.2', 40000 + i, '203.0.113.2', 80, 0x02), Side.Inside)));
  for (let i = 0; i < 3; i++) send(packet('udp', '10.0.2.2', 6000 + i, '203.0.113.1', 53), Side.Inside);
  t.deepEqual(count(await sample()), { 'new:tcp:syn_sent': 6, 'new:udp:active': 3 });

  // 3. Four SYNs answered (update to established); four UDP sessions flushed (removed).
  wall += 500;
  now += 500;
  for (let i = 0; i < 4; i++) send(packet('tcp', '203.0.113.2', 80, EXT, ext[i]!, 0x12), Side.Outside);
  let picked = 0;
  let flushed = 0;
  for (const p of nat.partitions) flushed += p.flush(now, (sid) => p.table.sProto(sid) === 17 && p.table.sInPort(sid) === 5000 && picked++ < 4);
  t.is(flushed, 4);
  t.deepEqual(count(await sample()), { 'update:tcp:established': 4, 'destroy:removed:udp:active': 4 });

  // 4. Past the UDP timer (2 min): the nine UDP sessions left expire; in the same interval new flows
  //    take freed ids (a destroy and a new for one id).
  wall += 121_000;
  now += 121_000;
  const liveIds = (): Set<string> => new Set(nat.partitions.flatMap((p, i) => Array.from({ length: p.table.sessionHigh }, (_, sid) => sid).filter((sid) => p.table.isLive(sid)).map((sid) => `${i}:${sid}`)));
  const before = liveIds();
  const expired = nat.expire(now);
  t.is(expired, 9);
  for (let i = 0; i < 5; i++) send(packet('udp', `10.0.3.${2 + i}`, 7000, '203.0.113.9', 123), Side.Inside);
  t.true([...liveIds()].filter((k) => !before.has(k)).length < 5, 'some new sessions took ids the expired ones freed');
  const ev = count(await sample());
  t.deepEqual(ev, { 'new:udp:active': 5, 'destroy:expired:udp:active': 9 });

  // 5. Nothing changed: no events.
  wall += 500;
  t.deepEqual(await sample(), []);

  // 6. A session whose timer ran out 100 ms after the interval by the wall clock is still
  //    `expired` (the timer actor's 250 ms sweep is allowed for), as are the five above and
  //    the two SYNs never answered (the 4-minute opening timer).
  send(packet('udp', '10.0.5.2', 9000, '203.0.113.1', 53), Side.Inside);
  t.deepEqual(count(await sample()), { 'new:udp:active': 1 });
  now += 120_000;
  wall += 119_900;
  t.is(nat.expire(now), 8);
  t.deepEqual(count(await sample()), { 'destroy:expired:udp:active': 6, 'destroy:expired:tcp:syn_sent': 2 });

  // A reset makes the next sample a baseline again.
  columns.reset();
  rows.reset();
  send(packet('udp', '10.0.4.2', 8000, '203.0.113.1', 53), Side.Inside);
  t.is(await sample(), null);
});
