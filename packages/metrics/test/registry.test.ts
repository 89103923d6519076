/**
 * registry.test.ts — the exposition of createMasqRegistry over real statistics blocks:
 * a golden text, slot-to-series wiring checked by hand-computed values, metric types,
 * counters monotonic across scrapes (restarts included), bounded label sets.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { C, COUNTER_SLOTS, MAX_EXTERNALS, packetsSlot } from '@masq/core/counters';
import { DROP_REASON_COUNT, DROP_REASON_LABELS } from '@masq/core/drop';

import { sharedMemorySource } from '../src/actor.js';
import { MAX_TOP_HOSTS, MAX_WORKER_SERIES, PROCESS_METRICS_DROPPED, createMasqRegistry } from '../src/registry.js';
import type { MetricsSource, TopHost } from '../src/source.js';
import { WORKER_STAT, allocWorkerStats } from '../src/statsLayout.js';
import { filledSource } from './filled.js';
import { FIXTURES, makeInit, parseExposition, sampleValue, type Family } from './helpers.js';

async function scrape(source: MetricsSource, collectProcess = false): Promise<Map<string, Family>> {
  return parseExposition(await createMasqRegistry(source, { collectProcess }).metrics());
}

test('exposition matches the golden text', async (t) => {
  // The golden locks the exposition (names, label sets, order, HELP). When it changes on
  // purpose (a new drop reason in drop.ts, a new metric), regenerate with
  // MASQ_UPDATE_GOLDEN=1 and review the diff like any other contract change.
  const text = await createMasqRegistry(filledSource(), { collectProcess: false }).metrics();
  const path = join(FIXTURES, 'exposition.golden.prom');
  if (process.env['MASQ_UPDATE_GOLDEN'] === '1') {
    writeFileSync(path, text);
    t.log(`rewrote ${path}`);
  }
  t.is(text, readFileSync(path, 'utf8'), 'exposition changed; if intended, rerun with MASQ_UPDATE_GOLDEN=1 and review the diff');
});

test('each series reads the slot it names (values computed by hand from filled.ts)', async (t) => {
  const m = await scrape(filledSource());
  // filled.ts puts x in partition 0 and 2x in partition 1: every expected value is 3x.
  const cases: [string, Record<string, string>, number][] = [
    ['masq_packets_total', { direction: 'out', proto: 'tcp' }, 300],
    ['masq_packets_total', { direction: 'out', proto: 'udp' }, 303],
    ['masq_packets_total', { direction: 'in', proto: 'icmp' }, 336],
    ['masq_packets_total', { direction: 'in', proto: 'other' }, 339],
    ['masq_bytes_total', { direction: 'out', proto: 'tcp' }, 600],
    ['masq_bytes_total', { direction: 'out', proto: 'other' }, 609],
    ['masq_bytes_total', { direction: 'in', proto: 'udp' }, 633],
    ['masq_bytes_total', { direction: 'in', proto: 'icmp' }, 636],
    ['masq_drops_total', { reason: 'truncated' }, 903],
    ['masq_drops_total', { reason: 'no_rule' }, 927],
    ['masq_sessions_created_total', {}, 1200],
    ['masq_sessions_expired_total', { proto: 'udp' }, 1233],
    ['masq_sessions_flushed_total', {}, 1260],
    ['masq_port_allocation_failures_total', {}, 1290],
    ['masq_sessions', { proto: 'udp', state: 'all' }, 1503],
    ['masq_sessions', { proto: 'other', state: 'all' }, 1509],
    ['masq_sessions', { proto: 'tcp', state: 'none' }, 1530],
    ['masq_sessions', { proto: 'tcp', state: 'established' }, 1539],
    ['masq_sessions', { proto: 'tcp', state: 'reset' }, 1551],
    ['masq_mappings', {}, 1590],
    ['masq_ports_in_use', { address: '203.0.113.1' }, 1620],
    ['masq_ports_in_use', { address: '203.0.113.2' }, 1623],
    ['masq_hairpinned_packets_total', {}, 1800],
    ['masq_handoffs_total', {}, 1830],
    ['masq_icmp_errors_translated_total', {}, 1860],
    ['masq_fragments_total', {}, 1890],
    ['masq_passed_packets_total', {}, 1920],
    ['masq_icmp_errors_generated_total', {}, 1950],
    ['masq_expectations', {}, 1980],
    ['masq_alg_rewrites_total', { alg: 'ftp' }, 2010],
    ['masq_alg_errors_total', { alg: 'ftp', reason: 'malformed' }, 2100],
    ['masq_alg_errors_total', { alg: 'ftp', reason: 'foreign_address' }, 2106],
    ['masq_alg_errors_total', { alg: 'ftp', reason: 'wrong_remote' }, 2121],
    ['masq_sessions_limit', {}, 65536],
    ['masq_ports_limit', { address: '203.0.113.2' }, 64512],
    ['masq_worker_ring_depth', { worker: 'xlate-0' }, 3],
    ['masq_worker_ring_capacity', { worker: 'xlate-1' }, 1024],
    ['masq_worker_batches_total', { worker: 'xlate-1' }, 50],
    ['masq_worker_packets_total', { worker: 'xlate-0' }, 3200],
    ['masq_worker_restarts_total', { worker: 'xlate-0' }, 1],
    ['masq_tun_reads_total', {}, 5000],
    ['masq_tun_read_errors_total', {}, 2],
    ['masq_tun_writes_total', {}, 4990],
    ['masq_tun_write_errors_total', {}, 1],
    ['masq_ipv6_ignored_total', {}, 7],
    ['masq_io_batch_packets_total', {}, 5000],
    ['masq_io_batches_total', {}, 160],
    ['masq_top_host_sessions', { rank: '1', host: '10.0.0.3' }, 40],
    ['masq_top_host_sessions', { rank: '2', host: '10.0.0.7' }, 12],
    ['masq_top_host_sessions', { rank: '3', host: '10.0.0.9' }, 12],
  ];
  for (const [name, labels, want] of cases) t.is(sampleValue(m, name, labels), want, `${name}${JSON.stringify(labels)}`);
  // Every drop reason reads its own slot (filled.ts: x = 300 + reason).
  for (let r = 1; r < DROP_REASON_COUNT; r++) t.is(sampleValue(m, 'masq_drops_total', { reason: DROP_REASON_LABELS[r]! }), 3 * (300 + r));
  // Every packets series (filled.ts: x = 100 + 10 direction + proto).
  for (let d = 0; d < 2; d++)
    for (let p = 0; p < 4; p++) {
      const labels = { direction: ['out', 'in'][d]!, proto: ['tcp', 'udp', 'icmp', 'other'][p]! };
      t.is(sampleValue(m, 'masq_packets_total', labels), 3 * (100 + 10 * d + p));
    }
});

test('types: names ending in _total are counters and every counter ends in _total', async (t) => {
  const m = await scrape(filledSource(), true);
  const counters = [...m].filter(([, f]) => f.type === 'counter').map(([n]) => n);
  t.true(counters.length >= 20);
  for (const [name, f] of m) {
    t.true(name.startsWith('masq_'), name);
    t.not(f.help, '', `${name} has HELP`);
    t.is(name.endsWith('_total'), f.type === 'counter', `${name} is ${f.type}`);
  }
  for (const name of ['masq_sessions', 'masq_sessions_limit', 'masq_mappings', 'masq_ports_in_use', 'masq_ports_limit', 'masq_worker_ring_depth', 'masq_top_host_sessions']) {
    t.is(m.get(name)?.type, 'gauge', name);
  }
});

test('process metrics come prefixed masq_, minus the _total gauges', async (t) => {
  const m = await scrape(filledSource(), true);
  t.truthy(m.get('masq_process_cpu_seconds_total'));
  t.truthy(m.get('masq_process_resident_memory_bytes'));
  t.truthy(m.get('masq_nodejs_eventloop_lag_p99_seconds'));
  t.truthy(m.get('masq_nodejs_active_handles'));
  for (const name of PROCESS_METRICS_DROPPED) t.false(m.has(name), name);
  const without = await scrape(filledSource(), false);
  t.false(without.has('masq_process_cpu_seconds_total'));
});

test('every drop reason except none is declared, at 0 when nothing was dropped', async (t) => {
  const m = await scrape(sharedMemorySource(makeInit()));
  const drops = m.get('masq_drops_total')!;
  t.deepEqual(
    drops.samples.map((s) => s.labels['reason']),
    DROP_REASON_LABELS.slice(1),
  );
  t.true(drops.samples.every((s) => s.value === 0));
  t.is(m.get('masq_packets_total')!.samples.length, 8);
  t.is(m.get('masq_sessions')!.samples.length, 11);
  t.is(m.get('masq_sessions_expired_total')!.samples.length, 4);
  t.false(m.has('masq_top_host_sessions') && m.get('masq_top_host_sessions')!.samples.length > 0);
});

test('sum(masq_sessions) counts every live session once', async (t) => {
  const init = makeInit();
  const b = init.partitions[0]!;
  // 3 tcp (2 established, 1 syn_sent), 4 udp, 1 icmp: as table.ts keeps them.
  b[C.LIVE_BY_PROTO + 0] = 3;
  b[C.LIVE_TCP_STATE + 3] = 2;
  b[C.LIVE_TCP_STATE + 1] = 1;
  b[C.LIVE_BY_PROTO + 1] = 4;
  b[C.LIVE_BY_PROTO + 2] = 1;
  const m = await scrape(sharedMemorySource(init));
  t.is(m.get('masq_sessions')!.samples.reduce((a, s) => a + s.value, 0), 8);
});

test('one scrape reads the source once', async (t) => {
  const inner = filledSource();
  let reads = 0;
  const source: MetricsSource = { ...inner, partitions: () => (reads++, inner.partitions()) };
  const reg = createMasqRegistry(source, { collectProcess: false });
  await reg.metrics();
  t.is(reads, 1);
  await reg.metrics();
  t.is(reads, 2);
});

test('counters are monotonic across scrapes: growth, a partition restarting from zero, a partition going away', async (t) => {
  const init = makeInit();
  const [p0, p1] = init.partitions;
  const out = packetsSlot(0, 1);
  const source = sharedMemorySource(init);
  let blocks: readonly Float64Array[] = init.partitions;
  const reg = createMasqRegistry({ ...source, partitions: () => blocks }, { collectProcess: false });
  const udpOut = async (): Promise<number> =>
    sampleValue(parseExposition(await reg.metrics()), 'masq_packets_total', { direction: 'out', proto: 'udp' });

  p0![out] = 10;
  p1![out] = 20;
  t.is(await udpOut(), 30);
  p1![out] = 25;
  t.is(await udpOut(), 35);
  // Partition 1 restarts with a zeroed block: what it counted stays counted.
  p1![out] = 0;
  t.is(await udpOut(), 35);
  p1![out] = 4;
  t.is(await udpOut(), 39);
  // Partition 1 is no longer listed: its last reading still counts.
  blocks = [p0!];
  t.is(await udpOut(), 39);
  p0![out] = 11;
  t.is(await udpOut(), 40);
  // A broken reading (NaN, negative) is ignored rather than exposed.
  p0![out] = Number.NaN;
  t.is(await udpOut(), 40);
  p0![out] = -5;
  t.is(await udpOut(), 40);
});

test('every counter series is monotonic under random growth and restarts (seeded)', async (t) => {
  const seed = (Date.now() ^ 0x5eed) >>> 0;
  t.log(`seed ${seed}`);
  let x = seed || 1;
  const rnd = (n: number): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const init = makeInit();
  const source = sharedMemorySource(init);
  const reg = createMasqRegistry(source, { collectProcess: false });
  const last = new Map<string, number>();
  for (let round = 0; round < 30; round++) {
    for (const b of init.partitions) {
      if (rnd(10) === 0) b.fill(0); // restart
      for (let k = 0; k < 20; k++) b[rnd(COUNTER_SLOTS)]! += rnd(1000);
    }
    for (let k = 0; k < 10; k++) init.workerStats[rnd(init.workerStats.length)]! += rnd(50);
    if (rnd(8) === 0) init.workerStats.fill(0);
    for (let k = 0; k < 5; k++) init.ioStats[rnd(init.ioStats.length)]! += rnd(50);
    if (rnd(8) === 0) init.ioStats.fill(0);
    for (const [name, f] of parseExposition(await reg.metrics())) {
      if (f.type !== 'counter') continue;
      for (const s of f.samples) {
        const key = name + JSON.stringify(s.labels);
        const prev = last.get(key) ?? 0;
        if (s.value < prev) t.fail(`seed ${seed} round ${round}: ${key} went from ${prev} to ${s.value}`);
        last.set(key, s.value);
      }
    }
  }
  t.pass();
});

test('worker counters survive a zeroed row; ring gauges follow the row', async (t) => {
  const init = makeInit({ workerNames: ['xlate-0'], workerStats: allocWorkerStats(1) });
  const reg = createMasqRegistry(sharedMemorySource(init), { collectProcess: false });
  const w = init.workerStats;
  w[WORKER_STAT.PACKETS] = 500;
  w[WORKER_STAT.RING_DEPTH] = 9;
  let m = parseExposition(await reg.metrics());
  t.is(sampleValue(m, 'masq_worker_packets_total', { worker: 'xlate-0' }), 500);
  w.fill(0);
  w[WORKER_STAT.PACKETS] = 20;
  m = parseExposition(await reg.metrics());
  t.is(sampleValue(m, 'masq_worker_packets_total', { worker: 'xlate-0' }), 520);
  t.is(sampleValue(m, 'masq_worker_ring_depth', { worker: 'xlate-0' }), 0);
});

test('label sets stay bounded: addresses, workers, top hosts', async (t) => {
  const externals = Array.from({ length: 40 }, (_, i) => `198.51.100.${i + 1}`);
  const workers = Array.from({ length: MAX_WORKER_SERIES + 50 }, (_, i) => ({
    worker: `w${i}`,
    ringDepth: 0,
    ringCapacity: 8,
    batches: i,
    packets: i,
    restarts: 0,
    reads: i,
    handedOver: 0,
    udpSupers: 0,
    udpJoined: 0,
    uringPasses: 0,
    slotsReclaimed: 0,
  }));
  const hosts: TopHost[] = Array.from({ length: 500 }, (_, i) => ({ host: `10.${i >> 8}.${i & 255}.1`, sessions: i }));
  const base = sharedMemorySource(makeInit());
  const source: MetricsSource = { ...base, externals: () => externals, workers: () => workers, topHosts: () => hosts };
  const m = await scrape(source);
  t.is(m.get('masq_ports_in_use')!.samples.length, MAX_EXTERNALS);
  t.is(m.get('masq_ports_limit')!.samples.length, MAX_EXTERNALS);
  t.is(m.get('masq_worker_packets_total')!.samples.length, MAX_WORKER_SERIES);
  const top = m.get('masq_top_host_sessions')!.samples;
  t.is(top.length, MAX_TOP_HOSTS);
  t.deepEqual(
    top.map((s) => [s.labels['rank'], s.value]),
    Array.from({ length: 10 }, (_, i) => [String(i + 1), 499 - i]),
  );
  const three = parseExposition(await createMasqRegistry(source, { collectProcess: false, topHosts: 3 }).metrics());
  t.is(three.get('masq_top_host_sessions')!.samples.length, 3);
  t.throws(() => createMasqRegistry(source, { topHosts: 11 }), { message: /topHosts must be an integer from 0 to 10/ });
});

test('a non-finite gauge reading is exposed as 0; a short block fails the scrape loudly', async (t) => {
  const init = makeInit();
  init.partitions[0]![C.LIVE_MAPPINGS] = Number.NaN;
  const m = await scrape(sharedMemorySource(init));
  t.is(sampleValue(m, 'masq_mappings'), 0);
  const short: MetricsSource = { ...sharedMemorySource(makeInit()), partitions: () => [new Float64Array(10)] };
  await t.throwsAsync(createMasqRegistry(short, { collectProcess: false }).metrics(), {
    message: `partition 0: statistics block has 10 slots, expected at least ${COUNTER_SLOTS}`,
  });
});
