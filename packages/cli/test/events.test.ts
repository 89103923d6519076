/**
 * events.test.ts — session events by sampling: the diff (NEW, UPDATE, DESTROY expired vs
 * removed, an id reused for another flow), the conntrack-like line, filters, and the `events`
 * stream over a real control socket against a stand-in gateway whose table changes.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseIPv4, type SessionRow } from '@masq/core';
import type { Gateway } from '@masq/workers';
import { diffSessions, eventMatches, formatEvent, sessionKey, EventSampler, type SessionEvent } from '../src/events.js';
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
