/**
 * handoff.bench.ts — what the hand-off from the I/O thread to a translation worker costs per
 * packet: the SPSC ring (`@masq/workers/ring`) and the doorbell (`@masq/workers/doorbell`,
 * an eventfd the parked worker polls), the stage between classify and translate in
 * docs/SCALING.md's model. A benchmark: it prints figures, it does not pass or fail.
 *
 *     node test/dist/bench/handoff.bench.js [--count=N]
 *
 * Two threads, the way masq runs them (no TUN, no namespace):
 * - busy: the producer pushes and rings bursts of 256 entries while the consumer pops in a
 *   loop without parking: the producer's cost per entry when the worker is awake (ring store,
 *   doorbell counter, no system call; each burst timed, the wait for the consumer between
 *   bursts not);
 * - parked: one entry at a time, each after the worker has parked in poll(2) on its eventfd
 *   (the producer waits 300 µs so the worker is asleep): the producer's cost of push + ring
 *   (here ring includes the eventfd write), and the wake latency, from just before the push to
 *   the worker having popped the entry (`process.hrtime`, one monotonic clock for both
 *   threads), p50 / p90 / p99.
 * Bounded: N ≤ 20,000 parked hand-offs (default 2,000) and a 60 s limit.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { benchArgs, benchOptions, endOnClosedOutput } from '@masq/core/bench/cli';
import { createWaker, closeWaker } from '@masq/tun';
import { park, ring } from '@masq/workers/doorbell';
import { CTL_DOORBELL, CTL_PARKED, CTL_SLOTS, CTL_STOP } from '@masq/workers/layout';
import { Ring, ringBuffer } from '@masq/workers/ring';

interface Shared {
  readonly ctl: SharedArrayBuffer;
  readonly ring: SharedArrayBuffer;
  /** [i]: producer's hrtime (ns) before pushing entry i, [N + i]: consumer's after popping it. */
  readonly times: SharedArrayBuffer;
  readonly waker: number;
  readonly parkedCount: number;
}

const BUSY = 256_000;
const BURST = 256;
const now = (): bigint => process.hrtime.bigint();

function consumer(s: Shared): void {
  const ctl = new Int32Array(s.ctl);
  const r = new Ring(s.ring);
  const times = new BigInt64Array(s.times);
  const out = new Int32Array(256);
  let seen = 0;
  // Busy phase: pop without parking until BUSY entries came through.
  while (seen < BUSY) seen += r.pop(out, 256);
  parentPort?.postMessage('busy-done');
  // Parked phase: the worker's loop (read the bell, look at the ring, park when empty).
  for (;;) {
    const bell = Atomics.load(ctl, CTL_DOORBELL);
    const n = r.pop(out, 256);
    if (n > 0) {
      const t = now();
      for (let i = 0; i < n; i++) times[s.parkedCount + out[i]!] = t;
      continue;
    }
    if (Atomics.load(ctl, CTL_STOP) !== 0) break;
    park(ctl, 0, bell, s.waker, -1, 100);
  }
  parentPort?.postMessage('done');
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const count = Math.max(100, Math.min(20_000, Number(benchOptions(benchArgs(), ['count'], 'handoff bench', import.meta.url).get('count') ?? 2_000) || 2_000));
  const limit = setTimeout(() => {
    console.error('handoff.bench: stopped after 60 s');
    process.exit(2);
  }, 60_000);
  limit.unref();
  const waker = createWaker();
  const s: Shared = {
    ctl: new SharedArrayBuffer((CTL_SLOTS + 64) * 4),
    ring: ringBuffer(1024),
    times: new SharedArrayBuffer(count * 2 * 8),
    waker,
    parkedCount: count,
  };
  const ctl = new Int32Array(s.ctl);
  const r = new Ring(s.ring);
  const times = new BigInt64Array(s.times);
  const wakers = [waker];
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: s });
  const message = (want: string): Promise<void> =>
    new Promise((resolve) => {
      const on = (m: unknown): void => {
        if (m !== want) return;
        w.off('message', on);
        resolve();
      };
      w.on('message', on);
    });
  const busyDone = message('busy-done');

  // Busy: the consumer spins on the ring; the producer pushes and rings a burst of BURST
  // entries without a system call, timed; between bursts (untimed) it waits for the consumer
  // to empty the ring, so a descheduled consumer (a shared machine) is not counted as cost.
  let busyTotal = 0n;
  let t0 = 0n;
  for (let i = 0; i < BUSY; ) {
    while (!r.isEmpty()) Atomics.wait(sleeper, 0, 0, 0.01);
    t0 = now();
    for (let k = 0; k < BURST; k++, i++) {
      r.push(i);
      ring(ctl, wakers, 0);
    }
    busyTotal += now() - t0;
  }
  const busyNs = Number(busyTotal) / BUSY;
  await busyDone;

  // Parked: one entry at a time, each to a worker asleep in poll(2).
  const pushRingNs: number[] = [];
  for (let i = 0; i < count; i++) {
    Atomics.wait(sleeper, 0, 0, 0.3); // 300 µs: the worker finds the ring empty and parks
    while (Atomics.load(ctl, CTL_PARKED) === 0) Atomics.wait(sleeper, 0, 0, 0.05);
    t0 = now();
    times[i] = t0;
    r.push(i);
    ring(ctl, wakers, 0);
    pushRingNs.push(Number(now() - t0));
  }
  const done = message('done');
  Atomics.store(ctl, CTL_STOP, 1);
  ring(ctl, wakers, 0);
  await done;
  await w.terminate();
  closeWaker(waker);

  const wakeUs: number[] = [];
  for (let i = 0; i < count; i++) if (times[count + i]! > 0n) wakeUs.push(Number(times[count + i]! - times[i]!) / 1000);
  wakeUs.sort((a, b) => a - b);
  pushRingNs.sort((a, b) => a - b);
  const f = (x: number): string => x.toFixed(2);
  console.log(`hand-off, ${count} parked hand-offs, ${BUSY.toLocaleString('en')} busy ones`);
  console.log(`  busy worker: push + ring per entry (producer)       ${f(busyNs)} ns`);
  console.log(`  parked worker: push + ring incl. eventfd write, p50  ${f(quantile(pushRingNs, 0.5) / 1000)} µs (min ${f(pushRingNs[0]! / 1000)}, p90 ${f(quantile(pushRingNs, 0.9) / 1000)})`);
  console.log(`  parked worker: wake latency push -> popped, p50      ${f(quantile(wakeUs, 0.5))} µs (min ${f(wakeUs[0]!)}, p90 ${f(quantile(wakeUs, 0.9))}, p99 ${f(quantile(wakeUs, 0.99))}, ${wakeUs.length} samples)`);
}

if (isMainThread) {
  endOnClosedOutput();
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  consumer(workerData as Shared);
}
