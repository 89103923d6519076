/**
 * suite.ts — the preamble every end-to-end test file shares: decide once whether this process
 * can create network namespaces, register a visible passing test that says why when it cannot
 * (ava would otherwise report the file as having run nothing), sweep leftovers of crashed runs
 * before the first test, and hand back the test function to use (`test.serial`, or
 * `test.skip` when namespaces are unavailable).
 */
import test from 'ava';
import { canRunNetns } from './preflight.js';
import { sweepStale } from './cleanup.js';
import type { AcceptEvent } from '../peers/protocol.js';

export function netnsSuite(label: string): typeof test.serial | typeof test.skip {
  const pre = canRunNetns();
  if (!pre.ok) {
    const reason = pre.reason ?? 'unknown reason';
    console.log(`${label} skipped: ${reason}`);
    test('network namespaces unavailable', (t) => {
      t.log(`skipped: ${reason}`);
      t.pass();
    });
    return test.skip;
  }
  // Leftovers of crashed runs (owner process gone) only; live runs are never touched.
  test.before(() => void sweepStale());
  return test.serial;
}

/** A server's accept event (tcp-echo / tcp-sink). */
export const isAccept = (e: { event: string }): e is AcceptEvent => e.event === 'accept';
