/**
 * hosts.test.ts — the shared per-host count table (hosts.ts) at its edges: hosts whose
 * entries collide, probing that wraps from the last entry to the first, and the backward-shift
 * deletion that keeps every other host's two counts (sessions and ports) findable and exact.
 */
import test from 'ava';
import { HostCounts } from '../src/hosts.js';
import { hash3 } from '../src/hash.js';

const SLOTS = 16;

/** `n` host addresses whose home entry (hash) is `slot`. */
function homedAt(slot: number, n: number, from = 0x0a000001): number[] {
  const out: number[] = [];
  for (let a = from; out.length < n; a++) if ((hash3(0, a, 0) & (SLOTS - 1)) === slot) out.push(a);
  return out;
}

for (const home of [3, SLOTS - 1]) {
  test(`colliding hosts (home entry ${home}${home === SLOTS - 1 ? ', probing wraps to entry 0' : ''}): each keeps its own counts while others come and go`, (t) => {
    const hc = new HostCounts(SLOTS, 0, 0);
    const [a, b, c] = homedAt(home, 3);
    // Distinct session and port counts per host, so that a swapped or lost column shows.
    t.true(hc.reserve(a!, 1, 1, 0));
    t.true(hc.reserve(b!, 2, 0, 0));
    t.true(hc.reserve(b!, 3, 5, 1));
    t.true(hc.reserve(c!, 7, 2, 0));
    t.is(hc.hosts, 3);
    t.deepEqual([hc.sessionsOf(b!), hc.portsOf(b!)], [5, 5]);
    // The first of the chain goes: the others shift back and stay exact.
    hc.add(a!, -1, -1, 0);
    t.is(hc.hosts, 2);
    t.deepEqual([hc.sessionsOf(a!), hc.portsOf(a!)], [0, 0]);
    t.deepEqual([hc.sessionsOf(b!), hc.portsOf(b!)], [5, 5]);
    t.deepEqual([hc.sessionsOf(c!), hc.portsOf(c!)], [7, 2]);
    // A host with only ports left keeps its entry; one with nothing left loses it.
    hc.add(b!, -5, 0, 0);
    t.deepEqual([hc.sessionsOf(b!), hc.portsOf(b!)], [0, 5]);
    t.is(hc.hosts, 2);
    hc.add(b!, 0, -5, 0);
    t.is(hc.hosts, 1);
    t.deepEqual([hc.sessionsOf(c!), hc.portsOf(c!)], [7, 2]);
    // The freed entries are reused, and the survivor is still found past them.
    const [d] = homedAt(home, 1, c! + 1);
    t.true(hc.reserve(d!, 4, 4, 0));
    t.deepEqual([hc.sessionsOf(d!), hc.portsOf(d!)], [4, 4]);
    t.deepEqual([hc.sessionsOf(c!), hc.portsOf(c!)], [7, 2]);
  });
}

test('the table takes hosts up to half its entries, then refuses a new host (not a known one)', (t) => {
  const hc = new HostCounts(SLOTS, 0, 0);
  for (let i = 0; i < SLOTS / 2; i++) t.true(hc.reserve(0x0a000100 + i, 1, 0, 0), `host ${i}`);
  t.false(hc.reserve(0x0a0001ff, 1, 0, 0), 'half full: a new host is refused');
  t.true(hc.reserve(0x0a000100, 1, 1, 0), 'a known host still counts');
  t.deepEqual([hc.sessionsOf(0x0a000100), hc.portsOf(0x0a000100)], [2, 1]);
  for (let i = 0; i < SLOTS / 2; i++) t.is(hc.sessionsOf(0x0a000100 + i), i === 0 ? 2 : 1);
});
