/**
 * run-to-completion.test.ts — the default packet path with several workers: each worker reads
 * its own TUN queue, translates what its partition owns and writes it back on that queue;
 * only packets that landed on another worker's queue are handed over by ring
 * (partition-actor.ts). The kernel's automatic flow steering sends a flow to the queue that
 * last wrote it — its owner's — so after a flow's first packet almost nothing is handed over.
 * Shown end to end with two workers, real UDP exchanges and short TCP connections: the workers
 * read every packet (their counters in `masq stats --json`); with masq's eBPF steering program
 * (steering.ts, the default) not one packet is handed over, with `--no-steering` (the kernel's
 * own flow steering) a connection's first packets are; and
 * `--io-thread-reads` (the I/O thread reads every packet, as before) carries the same traffic
 * with the workers reading nothing. Each worker's queue goes through io_uring by default
 * (passes counted); `--no-io-uring` carries the same traffic with read(2) and write(2).
 */
import type { ExecutionContext } from 'ava';
import type { Topology, UdpLatencyResult } from '../src/harness/index.js';
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, waitForLog, withGateway, type GatewayRun } from '../src/gateway/e2e.js';
import { stats } from '../src/gateway/e2e.js';

const netnsTest = netnsSuite('run-to-completion e2e tests');

const FLOWS_PER_HOST = 4;
const EXCHANGES = 150;

/** FLOWS_PER_HOST sequential request/response flows from each inside host, all at once. */
async function exchanges(t: ExecutionContext, topo: Topology): Promise<number> {
  await topo.startServer(topo.serverNs, 'udp-echo', { port: 7001, reflect: true, quiet: true });
  const runs = await Promise.all(
    topo.inside.flatMap((h) => Array.from({ length: FLOWS_PER_HOST }, () => topo.peer(h.ns, 'udp-latency', { to: topo.server, port: 7001, count: EXCHANGES }, { timeoutMs: 60_000 }))),
  );
  let n = 0;
  for (const r of runs as UdpLatencyResult[]) {
    t.is(r.received, r.sent, 'every request answered');
    n += r.sent;
  }
  return n;
}

async function workerReads(run: GatewayRun): Promise<{ reads: number; handedOver: number; uringPasses: number }[]> {
  const s = (await stats(run.gw)) as unknown as { workers: { reads: number; handedOver: number; uringPasses: number }[] };
  return s.workers;
}

/** CONNECTIONS short TCP connections (connect, 1-byte echo, close), 8 at a time, from the first inside host. */
const CONNECTIONS = 300;
async function connections(t: ExecutionContext, topo: Topology): Promise<void> {
  await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7100, quiet: true, seconds: 60 });
  const r = await topo.peerRaw(topo.inside[0].ns, 'tcp-connect-rate', { to: topo.server, port: 7100, seconds: 30, max: CONNECTIONS, concurrency: 8 }, { timeoutMs: 45_000 });
  t.is(r.json?.connections, CONNECTIONS, 'every connection completed');
  t.is(r.json?.failures, 0);
}

netnsTest('two workers read their own queues; eBPF steering puts every packet on its owner\'s queue: nothing handed over', async (t) => {
  const done = await withGateway({ hosts: 2 }, { workers: 2 }, async (run) => {
    t.regex(await waitForLog(run.gw, /gateway up on .*/), /2 worker\(s\) \(.*, workers read their queues, eBPF steering, io_uring\)/);
    const n = await exchanges(t, run.topo);
    await connections(t, run.topo);
    const w = await workerReads(run);
    const reads = w.reduce((a, x) => a + x.reads, 0);
    const handed = w.reduce((a, x) => a + x.handedOver, 0);
    t.log(`per worker: ${w.map((x, i) => `${i}: ${x.reads} read, ${x.handedOver} handed over`).join('; ')} (${n} exchanges incl. warm-up: ≥ ${2 * n} packets, and ${CONNECTIONS} TCP connections)`);
    // Every request and every reply crossed the TUN once each, read by a worker.
    t.true(reads >= 2 * n + 6 * CONNECTIONS, `the workers read every packet: ${reads} for ${n} exchanges and ${CONNECTIONS} connections`);
    t.true(w.every((x) => x.reads > 0), 'both queues carried traffic');
    // The program computes the dispatcher's partition (steering.ts): not one packet elsewhere.
    t.is(handed, 0, 'no hand-offs');
    // Through io_uring (the default): passes counted, each taking one packet or more.
    const passes = w.reduce((a, x) => a + x.uringPasses, 0);
    t.true(w.every((x) => x.uringPasses > 0), `both workers ran io_uring passes: ${w.map((x) => x.uringPasses).join(', ')}`);
    t.log(`io_uring passes: ${passes} for ${reads} packets read`);
    t.true(passes <= reads + 2 * n, `at most about one pass per packet: ${passes} passes for ${reads} packets`);
    // One flow, one exchange at a time: each packet wakes its worker alone, and the pass that
    // writes it is the one that sleeps until the next (one system call per packet, not two).
    const r = (await run.topo.peer(run.topo.inside[0].ns, 'udp-latency', { to: run.topo.server, port: 7001, count: 400 }, { timeoutMs: 60_000 })) as UdpLatencyResult;
    t.is(r.received, r.sent);
    const w2 = await workerReads(run);
    const dReads = w2.reduce((a, x) => a + x.reads, 0) - reads;
    const dPasses = w2.reduce((a, x) => a + x.uringPasses, 0) - passes;
    t.log(`one flow, ${r.sent} sequential exchanges: ${dPasses} io_uring passes for ${dReads} packets read`);
    t.true(dReads >= 2 * r.sent, `every packet read by a worker: ${dReads}`);
    t.true(dPasses <= 1.3 * dReads, `one pass per packet, a few more for idle wake-ups: ${dPasses} for ${dReads}`);
  });
  assertTornDown(t, done);
});

netnsTest('--no-io-uring: read(2) and write(2) per packet carry the same traffic; no io_uring pass', async (t) => {
  const done = await withGateway({ hosts: 2 }, { workers: 2, extra: ['--no-io-uring'] }, async (run) => {
    t.regex(await waitForLog(run.gw, /gateway up on .*/), /2 worker\(s\) \(.*, workers read their queues, eBPF steering\)/);
    const n = await exchanges(t, run.topo);
    await connections(t, run.topo);
    const w = await workerReads(run);
    const reads = w.reduce((a, x) => a + x.reads, 0);
    t.true(reads >= 2 * n + 6 * CONNECTIONS, `the workers read every packet: ${reads}`);
    t.deepEqual(w.map((x) => x.uringPasses), [0, 0]);
  });
  assertTornDown(t, done);
});

netnsTest('--no-steering: the kernel\'s flow steering learns each flow from its first write; short TCP connections hand some packets over', async (t) => {
  const done = await withGateway({ hosts: 2 }, { workers: 2, extra: ['--no-steering'] }, async (run) => {
    t.regex(await waitForLog(run.gw, /gateway up on .*/), /2 worker\(s\) \(.*, workers read their queues, kernel steering, io_uring\)/);
    await connections(t, run.topo);
    const w = await workerReads(run);
    const reads = w.reduce((a, x) => a + x.reads, 0);
    const handed = w.reduce((a, x) => a + x.handedOver, 0);
    t.log(`per worker: ${w.map((x, i) => `${i}: ${x.reads} read, ${x.handedOver} handed over`).join('; ')}`);
    // A connection's first packet lands on a queue chosen by the kernel's hash: half the time not its owner's.
    t.true(handed >= CONNECTIONS / 10, `hand-offs without the program: ${handed} of ${reads}`);
  });
  assertTornDown(t, done);
});

netnsTest('--io-thread-reads: the I/O thread reads every packet, the workers none, the same traffic carried', async (t) => {
  const done = await withGateway({ hosts: 2 }, { workers: 2, extra: ['--io-thread-reads'] }, async (run) => {
    t.regex(await waitForLog(run.gw, /gateway up on .*/), /2 worker\(s\) \(.*, I\/O thread reads\)/);
    await exchanges(t, run.topo);
    const w = await workerReads(run);
    t.deepEqual(w.map((x) => [x.reads, x.handedOver]), [[0, 0], [0, 0]]);
  });
  assertTornDown(t, done);
});
