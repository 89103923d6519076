/**
 * actor.test.ts — the metrics actor over shared blocks: in the test's thread over a
 * MessageChannel, and in a real worker thread (dist/src/worker.js): the listening reply,
 * live reads of shared memory, top hosts by message, stop, init validation, and the
 * worker-stats / io-stats layouts.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';

import test from 'ava';

import { C, COUNTER_SLOTS, packetsSlot } from '@masq/core/counters';

import { runMetricsActor, sharedMemorySource, type MetricsActorInit, type MetricsActorReply } from '../src/actor.js';
import {
  IO_STAT,
  IO_STAT_SLOTS,
  WORKER_STAT,
  WORKER_STAT_SLOTS,
  WORKER_STAT_STRIDE,
  allocIoStats,
  allocWorkerStats,
  readIoStats,
  readWorkerStats,
  workerStatIndex,
} from '../src/statsLayout.js';
import { makeInit, parseExposition, partitionBlock, sampleValue, startActorWorker, withTimeout } from './helpers.js';

function nextReply(port: MessagePort): Promise<MetricsActorReply> {
  return withTimeout(new Promise((resolve) => port.once('message', resolve)), 5000, 'actor reply');
}

async function scrapeAt(port: number): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return parseExposition(await res.text());
}

test('in-thread actor: listening, live shared reads, top hosts, stop', async (t) => {
  const init = makeInit();
  const { port1, port2 } = new MessageChannel();
  t.teardown(() => {
    port1.close();
    port2.close();
  });
  const running = runMetricsActor(init, port1);
  const hello = await nextReply(port2);
  if (hello.type !== 'listening') return t.fail(JSON.stringify(hello));
  t.is(hello.host, '127.0.0.1');

  init.partitions[1]![packetsSlot(1, 0)] = 77;
  init.workerStats[workerStatIndex(1, WORKER_STAT.PACKETS)] = 640;
  init.ioStats[IO_STAT.TUN_WRITE_ERRORS] = 3;
  let m = await scrapeAt(hello.port);
  t.is(sampleValue(m, 'masq_packets_total', { direction: 'in', proto: 'tcp' }), 77);
  t.is(sampleValue(m, 'masq_worker_packets_total', { worker: 'xlate-1' }), 640);
  t.is(sampleValue(m, 'masq_tun_write_errors_total'), 3);
  t.is(sampleValue(m, 'masq_ports_limit', { address: '203.0.113.2' }), 64512);

  port2.postMessage({ type: 'topHosts', hosts: [{ host: '192.168.1.20', sessions: 9 }] });
  port2.postMessage({ type: 'nonsense' });
  port2.postMessage(42);
  await new Promise((r) => setTimeout(r, 50));
  m = await scrapeAt(hello.port);
  t.is(sampleValue(m, 'masq_top_host_sessions', { rank: '1', host: '192.168.1.20' }), 9);

  port2.postMessage({ type: 'stop' });
  t.deepEqual(await nextReply(port2), { type: 'stopped' });
  await withTimeout(running, 5000, 'runMetricsActor to resolve');
  await t.throwsAsync(fetch(`http://127.0.0.1:${hello.port}/metrics`));
});

test('init errors are posted and rejected, naming the field', async (t) => {
  const cases: [MetricsActorInit, RegExp][] = [
    [makeInit({ partitions: [new Float64Array(COUNTER_SLOTS)] }), /partitions\[0\] is not over a SharedArrayBuffer \(a copy would never change\)/],
    [makeInit({ partitions: [partitionBlock(), new Float64Array(new SharedArrayBuffer(80))] }), /partitions\[1\] has 10 slots, expected at least/],
    [makeInit({ workerNames: ['a', 'b', 'c'], workerStats: allocWorkerStats(2) }), /workerStats has 32 slots, expected at least 48 for 3 workers/],
    [makeInit({ workerNames: ['a', 'a'] }), /workerNames has duplicates/],
    [makeInit({ ioStats: new Float64Array(IO_STAT_SLOTS) }), /ioStats is not over a SharedArrayBuffer/],
    [makeInit({ externals: Array.from({ length: 17 }, (_, i) => `198.51.100.${i}`) }), /17 externals, at most 16/],
    [makeInit({ listen: { host: '0.0.0.0', port: 0 } }), /refusing to serve metrics on every interface/],
  ];
  for (const [init, want] of cases) {
    const { port1, port2 } = new MessageChannel();
    const reply = nextReply(port2);
    await t.throwsAsync(runMetricsActor(init, port1), { message: want });
    const r = await reply;
    t.is(r.type, 'error');
    if (r.type === 'error') t.regex(r.message, want);
    port1.close();
    port2.close();
  }
});

test('worker-thread actor over shared memory: reads live values, stops and exits cleanly', async (t) => {
  const init = makeInit({ collectProcess: true });
  const actor = await startActorWorker(init);
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await actor.worker.terminate();
  });
  init.partitions[0]![C.LIVE_MAPPINGS] = 5;
  init.partitions[1]![C.LIVE_MAPPINGS] = 6;
  let m = await scrapeAt(actor.port);
  t.is(sampleValue(m, 'masq_mappings'), 11);
  t.truthy(m.get('masq_process_resident_memory_bytes'));
  init.partitions[1]![C.LIVE_MAPPINGS] = 1;
  init.workerStats[workerStatIndex(0, WORKER_STAT.RESTARTS)] = 2;
  m = await scrapeAt(actor.port);
  t.is(sampleValue(m, 'masq_mappings'), 6);
  t.is(sampleValue(m, 'masq_worker_restarts_total', { worker: 'xlate-0' }), 2);
  actor.worker.postMessage({ type: 'topHosts', hosts: [{ host: '10.9.9.9', sessions: 4 }] });
  await new Promise((r) => setTimeout(r, 50));
  m = await scrapeAt(actor.port);
  t.is(sampleValue(m, 'masq_top_host_sessions', { rank: '1' }), 4);
  t.is(await actor.stop(), 0);
  stopped = true;
});

test('worker-thread actor with a bad init posts the error and exits with code 1', async (t) => {
  await t.throwsAsync(startActorWorker(makeInit({ ioStats: new Float64Array(IO_STAT_SLOTS) })), {
    message: /ioStats is not over a SharedArrayBuffer.*\(worker exit code 1\)$/,
  });
});

test('stats layouts: row stride, slot order, shared allocation', (t) => {
  t.is(WORKER_STAT_STRIDE, 16);
  t.true(WORKER_STAT_SLOTS <= WORKER_STAT_STRIDE);
  t.deepEqual(Object.values(WORKER_STAT), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
  t.deepEqual(Object.values(IO_STAT), [0, 1, 2, 3, 4, 5, 6]);
  t.is(IO_STAT_SLOTS, 7);
  const w = allocWorkerStats(3);
  t.true(w.buffer instanceof SharedArrayBuffer);
  t.is(w.byteLength, 3 * 128);
  for (let row = 0; row < 3; row++) for (let s = 0; s < WORKER_STAT_SLOTS; s++) w[workerStatIndex(row, s)] = row * 100 + s + 1;
  t.deepEqual(readWorkerStats(w, ['a', 'b', 'c'])[2], { worker: 'c', ringDepth: 201, ringCapacity: 202, batches: 203, packets: 204, restarts: 205, reads: 208, handedOver: 212, udpSupers: 213, udpJoined: 214, uringPasses: 215, slotsReclaimed: 216 });
  const io = allocIoStats();
  t.true(io.buffer instanceof SharedArrayBuffer);
  io.forEach((_, i) => (io[i] = i + 1));
  t.deepEqual(readIoStats(io), { tunReads: 1, tunReadErrors: 2, tunWrites: 3, tunWriteErrors: 4, ipv6Ignored: 5, batchSizeSum: 6, batchCount: 7 });
});

test('TUN writes: the I/O thread\'s passes plus every worker\'s own writes', (t) => {
  const init = makeInit({});
  init.ioStats[IO_STAT.TUN_WRITES] = 5;
  init.ioStats[IO_STAT.TUN_WRITE_ERRORS] = 1;
  for (let w = 0; w < init.workerNames.length; w++) {
    init.workerStats[workerStatIndex(w, WORKER_STAT.TUN_WRITES)] = 100 * (w + 1);
    init.workerStats[workerStatIndex(w, WORKER_STAT.TUN_WRITE_ERRORS)] = w + 1;
  }
  const n = init.workerNames.length;
  const io = sharedMemorySource(init).io();
  t.is(io.tunWrites, 5 + (100 * n * (n + 1)) / 2);
  t.is(io.tunWriteErrors, 1 + (n * (n + 1)) / 2);
});
