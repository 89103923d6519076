/**
 * readpolicy.test.ts — the run-to-completion read policy (readpolicy.ts), driven through the
 * sequences a worker sees: one packet at a time after sleeping parks, request/response with the
 * reply already back (quick parks finding one packet), a flood, and the turn from flood to quiet.
 */
import test from 'ava';
import { PROBE_BACKOFF_MAX, ReadPolicy } from '../src/readpolicy.js';

/** Drive one turn: read what the policy wants from a queue of `queued` packets; returns the empty reads. */
function readTurn(p: ReadPolicy, queued: number): { got: number; empty: number } {
  const armed = p.want;
  const got = Math.min(armed, queued);
  p.afterRead(armed, got);
  // readBatch stops at the first EAGAIN: a read that found fewer than armed spent one call on it.
  return { got, empty: got < armed ? 1 : 0 };
}

test('after a park that slept: one packet is read, then it parks (no read that finds the queue empty)', (t) => {
  const p = new ReadPolicy(256);
  for (let i = 0; i < 100; i++) {
    p.afterPark(true, false);
    t.true(p.readNext);
    t.is(p.want, 1);
    const r = readTurn(p, 1);
    t.is(r.got, 1);
    t.is(r.empty, 0);
    t.false(p.readNext, 'parks after a single packet');
  }
});

test('request/response with the reply already back at every park: probes back off to one empty read in 64', (t) => {
  const p = new ReadPolicy(256);
  let empty = 0;
  let probes = 0;
  const N = 2000;
  for (let i = 0; i < N; i++) {
    p.afterPark(true, true); // quick: one packet waiting, never two
    if (p.want === 2) probes++;
    empty += readTurn(p, 1).empty;
    t.false(p.readNext);
  }
  // Backoff 1, 2, 4, ... 64 quick parks between probes: 7 probes to reach 64, then one in 64.
  t.is(probes, empty);
  t.true(empty <= 7 + Math.ceil(N / PROBE_BACKOFF_MAX), `${empty} empty reads in ${N} packets`);
  t.true(empty >= N / PROBE_BACKOFF_MAX - 1, 'still probes now and then');
});

test('a flood: the first probe finds two, then reads double up to the maximum and go on without parking', (t) => {
  const p = new ReadPolicy(256);
  p.afterPark(true, true);
  t.is(p.want, 2, 'a quick park probes at once (no backoff yet)');
  const wants: number[] = [];
  for (let i = 0; i < 10; i++) {
    wants.push(p.want);
    const r = readTurn(p, 10_000);
    t.is(r.empty, 0);
    t.true(p.readNext, 'reads again without parking');
  }
  t.deepEqual(wants, [2, 4, 8, 16, 32, 64, 128, 256, 256, 256]);
});

test('a flood that ends: the short batch parks, the next quick park probes again at once', (t) => {
  const p = new ReadPolicy(64);
  p.afterPark(true, true);
  readTurn(p, 1000);
  readTurn(p, 1000);
  t.is(p.want, 8);
  t.is(readTurn(p, 3).got, 3);
  t.false(p.readNext, 'the short batch: the queue is empty');
  t.is(p.want, 1);
  p.afterPark(true, true);
  t.is(p.want, 2, 'a successful probe reset the backoff');
});

test('a probe that finds one backs off; a sleeping park resets the count of quick parks, not the backoff', (t) => {
  const p = new ReadPolicy(256);
  p.afterPark(true, true);
  t.is(p.want, 2);
  readTurn(p, 1); // backoff → 2
  p.afterPark(true, true);
  t.is(p.want, 1, 'first quick park after a failed probe: no probe');
  readTurn(p, 1);
  p.afterPark(true, false); // slept: the count restarts
  t.is(p.want, 1);
  readTurn(p, 1);
  p.afterPark(true, true);
  t.is(p.want, 1);
  readTurn(p, 1);
  p.afterPark(true, true);
  t.is(p.want, 2, 'second quick park in a row: probe');
});

test('not readable after a park (woken by the doorbell or the timeout): no read; no slots: no read', (t) => {
  const p = new ReadPolicy(256);
  p.afterPark(false, true);
  t.false(p.readNext);
  p.afterPark(true, false);
  t.true(p.readNext);
  p.noSlots();
  t.false(p.readNext);
});

test('a park in read(2) brings its packet: no read follows a sleeping one; quick ones probe as poll parks do', (t) => {
  const p = new ReadPolicy(256);
  for (let i = 0; i < 50; i++) {
    p.afterParkRead(false);
    t.false(p.readNext, 'slept, the packet in hand: park again');
  }
  // Quick parks (the packet was queued): the first one probes (two), as afterPark(true, true).
  p.afterParkRead(true);
  t.true(p.readNext);
  t.is(p.want, 2);
  const r = readTurn(p, 0); // the probe finds nothing more: back off
  t.is(r.empty, 1);
  let probes = 0;
  for (let i = 0; i < 2 * 63; i++) {
    p.afterParkRead(true);
    if (p.readNext) {
      probes++;
      readTurn(p, 0);
    }
  }
  t.is(probes, 6, 'backing off: probes after 2, 4, 8, 16, 32 and 64 quick parks (126 in all)');
  // A probe that finds a backlog reads on, doubling, as in a flood.
  p.afterParkRead(true);
  while (!p.readNext) p.afterParkRead(true);
  readTurn(p, 100);
  t.true(p.readNext);
  t.is(p.want, 4);
});
