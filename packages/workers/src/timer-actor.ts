/**
 * timer-actor.ts — the clock and the expiry sweep. Runs as a long-lived piscina task.
 *
 * It is the only writer of the shared clock (Float64, ms, monotonic: timeOrigin + now()),
 * published every TICK ms so that no worker reads the time per packet. It sleeps with
 * Atomics.wait on the stop word between ticks (it has no control port: nothing else needs its
 * event loop). Every SWEEP ms it scans a bounded chunk of each partition's session columns
 * READ-ONLY and nominates the sessions past their deadline to the owner over the nomination
 * ring; the owner confirms (the session may have been refreshed since) and frees. So each
 * table keeps one writer. Every IDLE_PARK_MS (doorbell.ts) it rings the workers asleep in
 * read(2), which have no timeout of their own.
 */
import { SessionTable, nominateExpired } from '@masq/core';
import { Ring } from './ring.js';
import { CTL_PARKED, CTL_STOP } from './layout.js';
import { ring as ringDoorbell, IDLE_PARK_MS, PARKED_IN_READ } from './doorbell.js';
import { planOf, type GatewaySpec } from './spec.js';

const TICK = 5;
const SWEEP = 250;
const CHUNK = 65536;

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export async function runTimer(spec: GatewaySpec): Promise<string> {
  const mem = spec.memory;
  const ctl = new Int32Array(mem.control);
  const clock = new Float64Array(mem.clock);
  const plan = planOf(spec);
  const tables = spec.tables.map((b) => new SessionTable(spec.tableSizes, plan, b));
  const rings = mem.nominate.map((b) => new Ring(b));
  const cursors = new Array<number>(tables.length).fill(1);
  let lastSweep = 0;
  let lastIdleRing = 0;
  // Plain stores: see the clock in layout.ts for why a reader never sees a torn value.
  clock[0] = nowMs();
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    // A synchronous sleep on the stop word (this thread serves nothing else: no port, no event
    // loop work), not setTimeout: measured 9 against 26 ms of CPU a second for the 200 ticks.
    Atomics.wait(ctl, CTL_STOP, 0, TICK);
    const now = nowMs();
    clock[0] = now;
    // A worker asleep in read(2) has no timeout of its own: rung as often as a worker in
    // poll(2) wakes at its timeout, so that it yields to its event loop now and then.
    if (now - lastIdleRing >= IDLE_PARK_MS) {
      lastIdleRing = now;
      for (let p = 0; p < tables.length; p++) if (Atomics.load(ctl, CTL_PARKED + p) === PARKED_IN_READ) ringDoorbell(ctl, spec.workerWakers, p);
    }
    if (now - lastSweep < SWEEP) continue;
    lastSweep = now;
    for (let p = 0; p < tables.length; p++) {
      const ring = rings[p]!;
      let nominated = 0;
      // The one sweep (core expiry.ts); the owner confirms each nomination (partition-actor.ts).
      cursors[p] = nominateExpired(tables[p]!, cursors[p]!, now, CHUNK, (sid) => {
        if (!ring.push(sid)) return false;
        nominated++;
        return true;
      });
      if (nominated > 0) ringDoorbell(ctl, spec.workerWakers, p);
    }
  }
  return 'timer stopped';
}
