/**
 * hosts.test.ts — the shared per-host count table (hosts.ts) at its edges: hosts whose
 * entries collide, probing that wraps from the last entry to the first, and the backward-shift
 * deletion that keeps every other host's two counts (sessions and ports) findable and exact;
 * the lock taken only when more than one thread writes, and then exact under two threads.
 */
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { HostCounts, hostCountsFor } from '../src/hosts.js';
import { hash3 } from '../src/hash.js';
import { Nat } from '../src/nat.js';
import { resolveConfig } from '../src/config.js';

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

test('one writing thread takes no lock: a lock word someone left set neither stops it nor changes', async (t) => {
  const hc = new HostCounts(SLOTS, 4, 0, undefined, 1);
  const lock = new Int32Array(hc.buffer, 0, 1);
  // As a dead partition 2 would leave it: a writer that locked would spin on it for ever, so
  // the writes run in a thread of their own, given 20 s.
  Atomics.store(lock, 0, 3);
  const hosts = homedAt(5, 3);
  const w = new Worker(new URL('./helpers/hosts-writer.js', import.meta.url), { workerData: { buffer: hc.buffer, slots: SLOTS, writers: 1, who: 0, hosts, rounds: 100, start: new SharedArrayBuffer(4) } });
  const timer = setTimeout(() => void w.terminate(), 20_000);
  const refused = await new Promise<number | 'stuck'>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', () => resolve('stuck'));
  });
  clearTimeout(timer);
  t.is(refused, 0);
  t.is(Atomics.load(lock, 0), 3, 'the lock word is not touched');
  t.true(hc.reserve(hosts[0]!, 1, 1, 0));
  t.deepEqual([hc.hosts, hc.sessionsOf(hosts[0]!), hc.portsOf(hosts[0]!)], [1, 1, 1]);
});

test("the writers of a gateway's host table are its partitions (one thread each); a Nat, one thread for all, is one", (t) => {
  const cfg = (partitions: number) => resolveConfig({ externals: ['198.51.100.1'], partitions });
  t.is(hostCountsFor(cfg(1))!.writers, 1);
  t.is(hostCountsFor(cfg(4))!.writers, 4);
  t.is(hostCountsFor(cfg(4), undefined, 1)!.writers, 1);
  const nat = new Nat({ externals: ['198.51.100.1'], rules: 'masquerade all from 10.0.0.0/8 to any', partitions: 4 });
  t.is(nat.partitions[0]!.hosts!.writers, 1);
  t.is(nat.partitions[0]!.hosts, nat.partitions[3]!.hosts, 'one table for all partitions');
});

test('two writing threads under the lock: every count exact after 2 × 50,000 take-and-give-back rounds on shared hosts', async (t) => {
  const hc = new HostCounts(SLOTS, 0, 0, undefined, 2);
  const start = new SharedArrayBuffer(4);
  // Colliding hosts, so the threads also move each other's entries (backward shift).
  const hosts = homedAt(5, 4);
  const run = (who: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL('./helpers/hosts-writer.js', import.meta.url), { workerData: { buffer: hc.buffer, slots: SLOTS, writers: 2, who, hosts, rounds: 50_000, start } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const refused = await Promise.all([run(0), run(1)]);
  t.deepEqual(refused, [0, 0]);
  t.is(hc.hosts, 0, 'every entry given back');
  for (const a of hosts) t.deepEqual([hc.sessionsOf(a), hc.portsOf(a)], [0, 0]);
  t.is(Atomics.load(new Int32Array(hc.buffer, 0, 1), 0), 0, 'the lock is free');
});
