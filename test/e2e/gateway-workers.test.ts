/**
 * gateway-workers.test.ts — the real gateway with several translation workers: a worker
 * crashed twice (`masq debug crash-worker`) in the middle of a paced 20 MB upload, which must
 * complete intact while a TCP connection opened before the crashes keeps working after them
 * (the supervisor restarts each worker on its partition's shared table, and the new worker takes
 * back the packet slots the dead one's io_uring held: `masq stats`); UDP flows, TCP
 * transfers and hairpinned flows across two partitions (partition routing both ways, and
 * hand-offs between partitions); `--sched` putting exactly the packet threads under
 * SCHED_BATCH (restarted workers too); and `masq run` refusing bad arguments with exit status 2.
 *
 * The namespace tests are skipped, with the reason printed, only when this process cannot create
 * network namespaces; the argument tests need no privileges and always run.
 */

import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { run, type SinkEvent } from '../src/harness/index.js';
import { netnsSuite, isAccept } from '../src/harness/suite.js';
import { assertTornDown, chat, masqOk, probe, sleep, stats, table, waitForLog, withGateway, type GatewayStats } from '../src/gateway/e2e.js';
import { REPO } from '../src/gateway/start.js';
import type { TcpPacedResult } from '../src/gateway/probe.js';

const netnsTest = netnsSuite('gateway e2e namespace tests');

/** How many threads of process `pid` run under SCHED_BATCH (policy 3, field 41 of stat). */
function batchThreads(pid: number): number {
  let n = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      if (st.slice(st.lastIndexOf(')') + 2).split(' ')[41 - 3] === '3') n++;
    } catch {
      // the thread ended meanwhile
    }
  }
  return n;
}


netnsTest('worker crash mid-transfer: a 20 MB upload completes intact and an established connection survives both restarts', async (t) => {
  const done = await withGateway({ hosts: 2 }, { workers: 2 }, async ({ topo, gw }) => {
    const [h1, h2] = topo.inside;
    const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port: 7002 });
    await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000 });

    // A connection established before any crash.
    const conn = await chat(topo, h2.ns, topo.server, 7000);
    t.is((await conn.say('before the crashes')).event, 'echo');
    const mappedBefore = (await table(gw, 'tcp')).find((r) => r.inside === h2.addr && r.insidePort === conn.localPort);
    t.truthy(mappedBefore);

    // 20 MB at 5 MB/s: about 4 s, so both crashes land while it runs.
    const bytes = 20 * 1024 * 1024;
    let finished = false;
    const started = Date.now();
    const upload = probe<TcpPacedResult>(topo, h1.ns, 'tcp-paced', { to: topo.server, port: 7002, bytes, rate: 5 * 1024 * 1024, timeout: 60_000 }, 70_000).finally(() => {
      finished = true;
    });
    for (const w of [0, 1]) {
      await sleep(700);
      t.false(finished, `the upload is still running when worker ${w} is crashed`);
      const answer = await masqOk(gw, ['debug', 'crash-worker', String(w)]);
      t.deepEqual(JSON.parse(answer), { crashed: w });
      await waitForLog(gw, new RegExp(`worker ${w} died .*restarting`));
      t.log(`worker ${w} crashed at ${Date.now() - started} ms into the upload`);
    }
    t.false(finished, 'the upload was still running after both crashes');
    // Each dead worker's io_uring held the 64 slots it had given the kernel for reads (and any
    // write in flight): its successor took them back once the dead ring was closed.
    const reclaimed = (await stats(gw)).workers.map((w) => w.slotsReclaimed ?? 0);
    t.log(`packet slots taken back after the restarts: worker 0 ${reclaimed[0]}, worker 1 ${reclaimed[1]}`);
    for (const w of [0, 1]) t.true(reclaimed[w]! >= 64 && reclaimed[w]! <= 64 + 256, `worker ${w} took back its predecessor's slots: ${reclaimed[w]}`);

    const echoed = await conn.say('after the crashes');
    t.is(echoed.event, 'echo', `the old connection works after the restarts: ${JSON.stringify(echoed)}`);
    const up = await upload;
    const sent = up.json;
    if (sent === null || !sent.ok) throw new Error(`upload failed: ${up.result.stdout}${up.result.stderr}`);
    const got = (await sink.waitFor((e) => e.event === 'sink', 10_000)) as SinkEvent;
    t.is(got.bytes, bytes);
    t.is(got.sha256, sent.sha256, 'the sink received exactly the bytes sent');
    t.is(got.remote, topo.external);
    t.log(`20 MB paced upload across two worker crashes: ${sent.ms} ms`);

    // The restarted workers kept their partitions' tables: same mapping, still established.
    const mappedAfter = (await table(gw, 'tcp')).find((r) => r.inside === h2.addr && r.insidePort === conn.localPort);
    t.is(mappedAfter?.externalPort, mappedBefore?.externalPort);
    t.is(mappedAfter?.state, 'established');
    t.is((await conn.say('and once more')).event, 'echo');
    await conn.close();
    // New flows are translated by the restarted workers too.
    const r = await topo.peer(h1.ns, 'tcp-request', { to: topo.server, port: 7000, data: 'fresh' });
    t.is(r.reply, 'fresh');
    // Every packet slot is accounted for once the gateway is idle: on each worker's free stack
    // or with its io_uring (given for reads), none lost to the two crashes. (The free count is
    // stored when a worker yields: asked until it settles, at most 3 s.)
    type W = GatewayStats['workers'][number];
    const settled = (w: W): boolean => w.homeSlots !== undefined && (w.freeSlots ?? 0) + (w.kernelSlots ?? 0) === w.homeSlots;
    let ws = (await stats(gw)).workers;
    for (const until = Date.now() + 3_000; !ws.every(settled) && Date.now() < until; ws = (await stats(gw)).workers) await sleep(100);
    t.log(`slots, idle: ${ws.map((w) => `worker ${w.worker} ${w.freeSlots} free + ${w.kernelSlots} with the kernel of ${w.homeSlots}`).join('; ')}`);
    for (const w of ws) t.true(settled(w), `worker ${w.worker}: ${w.freeSlots} free + ${w.kernelSlots} with the kernel = ${w.homeSlots}, its share of the pool`);
    t.deepEqual(ws.map((w) => w.kernelSlots), [64, 64], 'each worker\'s ring holds its 64 read slots');
    t.regex(gw.log.join(''), /worker 0 died[^\n]*restarting/);
    t.regex(gw.log.join(''), /worker 1 died[^\n]*restarting/);
    // --sched batch (the default): the I/O thread and both workers, restarted ones included,
    // run under SCHED_BATCH; no other thread of the gateway does.
    t.is(batchThreads(gw.proc.pid!), 3, 'threads under SCHED_BATCH: the I/O thread and the two (restarted) workers');
    t.regex(gw.log.join(''), /gateway up on \S+: 2 worker\(s\) \(sched batch, offload csum\+tso4\+uso, workers read their queues, eBPF steering, io_uring\)/);
    await sink.stop();
  });
  assertTornDown(t, done);
});

netnsTest('two workers: UDP flows, TCP transfers and hairpinned flows across partitions', async (t) => {
  const done = await withGateway({ hosts: 3 }, { workers: 2, forwards: ['udp 198.51.100.100:5353 to 10.200.0.4:5353'], extra: ['--sched', 'workers=normal'] }, async ({ topo, gw }) => {
    const [h1, h2, h3] = topo.inside;
    t.is(h3.addr, '10.200.0.4');
    await topo.startServer(topo.serverNs, 'udp-echo', { port: 7001, reflect: true, quiet: true });
    const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port: 7002 });
    const echo = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000 });

    // Outbound UDP flows from two hosts at once, while both upload 2 MB.
    const perHost = 200;
    const bytes = 2 * 1024 * 1024;
    const [f1, f2, s1, s2] = await Promise.all([
      topo.peer(h1.ns, 'udp-flows', { to: topo.server, port: 7001, flows: perHost, timeout: 5_000 }, { timeoutMs: 30_000 }),
      topo.peer(h2.ns, 'udp-flows', { to: topo.server, port: 7001, flows: perHost, timeout: 5_000 }, { timeoutMs: 30_000 }),
      topo.peer(h1.ns, 'tcp-send', { to: topo.server, port: 7002, bytes, timeout: 30_000, seed: 'h1' }, { timeoutMs: 40_000 }),
      topo.peer(h2.ns, 'tcp-send', { to: topo.server, port: 7002, bytes, timeout: 30_000, seed: 'h2' }, { timeoutMs: 40_000 }),
    ]);
    t.is(f1.received, perHost);
    t.is(f2.received, perHost);
    const mapped = new Set([...f1.replies, ...f2.replies]);
    t.is(mapped.size, 2 * perHost, 'distinct external endpoints');
    t.true([...mapped].every((m) => m?.startsWith(`${topo.external}:`)));
    await sink.waitFor((e) => e.event === 'sink' && e.sha256 === s2.sha256, 10_000);
    const sinks = sink.events.filter((e): e is SinkEvent => e.event === 'sink');
    t.deepEqual(sinks.map((e) => e.sha256).sort(), [s1.sha256, s2.sha256].sort());
    for (const h of [h1, h2]) {
      const r = await topo.peer(h.ns, 'tcp-request', { to: topo.server, port: 7000, data: `tcp from ${h.name}` });
      t.is(r.reply, `tcp from ${h.name}`);
    }
    t.true((await echo.stop()).filter(isAccept).every((e) => e.remote === topo.external));

    // Hairpin through a UDP forward: h1's flows (hashed to either partition) reach h3's
    // reflector via the forward's partition, and the replies go back the other way; h3 sees
    // each flow as its external endpoint.
    await topo.startServer(h3.ns, 'udp-echo', { port: 5353, reflect: true, quiet: true });
    const hp = await topo.peer(h1.ns, 'udp-flows', { to: topo.external, port: 5353, flows: 100, timeout: 5_000 }, { timeoutMs: 30_000 });
    t.is(hp.received, 100, 'every hairpinned flow was answered');
    const rows = await table(gw, 'udp');
    for (const [i, lp] of hp.localPorts.entries()) {
      const row = rows.find((r) => r.inside === h1.addr && r.insidePort === lp && r.remotePort === 5353);
      if (row === undefined || hp.replies[i] !== `${topo.external}:${row.externalPort}`) t.fail(`flow ${h1.addr}:${lp}: row ${JSON.stringify(row)}, h3 saw ${String(hp.replies[i])}`);
    }

    const s = await stats(gw);
    t.is(s.workers.length, 2);
    for (const w of s.workers) {
      t.true(w.sessions > 50, `worker ${w.worker} owns sessions: ${JSON.stringify(s.workers)}`);
      t.true(w.packets > 100, `worker ${w.worker} translated packets: ${JSON.stringify(s.workers)}`);
    }
    t.true(s.hairpinned >= 200, `hairpinned ${s.hairpinned}`);
    t.deepEqual(s.drops, {}, 'nothing dropped');
    t.log(`per worker: ${s.workers.map((w) => `${w.worker}: ${w.sessions} sessions, ${w.packets} packets`).join('; ')}`);
    // --sched workers=normal: only the I/O thread runs under SCHED_BATCH.
    t.is(batchThreads(gw.proc.pid!), 1, 'threads under SCHED_BATCH with --sched workers=normal');
    t.regex(gw.log.join(''), /2 worker\(s\) \(sched io=batch,workers=normal, offload csum\+tso4\+uso, workers read their queues, eBPF steering, io_uring\)/);
    await sink.stop();
  });
  assertTornDown(t, done);
});

// `masq run` with bad arguments, run from the host: every case fails in argument or
// configuration checking, before any TUN is opened (the TUN name is also too long to create).
const MASQ = path.join(REPO, 'bin/masq');
const TUN = 'no-such-tun-for-tests';
const RULE = ['--masquerade', 'all from 10.0.0.0/24 to any'];
const BAD_ARGS: readonly (readonly [string, readonly string[], RegExp])[] = [
  ['no --address', ['--tun', 'x'], /--address/],
  ['no --tun', ['--address', '198.51.100.100', ...RULE], /--tun/],
  ['no rule', ['--tun', TUN, '--address', '198.51.100.100'], /no rules|--masquerade/],
  ['no masquerade rule', ['--tun', TUN, '--address', '198.51.100.100', '--accept', 'all from 10.0.0.0/24 to any'], /masquerade/],
  ['bad address', ['--tun', TUN, '--address', '300.1.2.3', ...RULE], /300\.1\.2\.3/],
  ['bad rule', ['--tun', TUN, '--address', '198.51.100.100', '--masquerade', 'all from 10.0.0.0/33 to any'], /10\.0\.0\.0\/33/],
  ['forward to a non-external address', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--forward', 'tcp 203.0.113.9:80 to 10.0.0.2:80'], /203\.0\.113\.9/],
  ['--workers 0', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--workers', '0'], /--workers.*"0"/],
  ['--sched fifo', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--sched', 'fifo'], /--sched: "fifo" is not a policy/],
  ['--workers two', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--workers', 'two'], /--workers.*"two"/],
  ['--filtering', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--filtering', 'sideways'], /--filtering.*sideways/],
  ['--port-mode', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--port-mode', 'zigzag'], /--port-mode.*zigzag/],
  ['--ports reversed', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--ports', '50000-40000'], /50000-40000/],
  ['--timeouts too short', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--timeouts', 'udp=1s'], /udp=1s/],
  ['unknown option', ['--tun', TUN, '--address', '198.51.100.100', ...RULE, '--bogus'], /--bogus/],
];

for (const [what, args, message] of BAD_ARGS) {
  test(`masq run with bad arguments exits 2 with a clear message: ${what}`, async (t) => {
    const r = await run([MASQ, 'run', ...args], { timeoutMs: 45_000 });
    t.is(r.code, 2, `exit status; stderr: ${r.stderr}`);
    t.regex(r.stderr, /^masq run: /, 'the message names the command');
    t.regex(r.stderr, message);
    t.false(r.stdout.includes('gateway up'));
  });
}

test('masq with an unknown command exits 2', async (t) => {
  const r = await run([MASQ, 'frobnicate'], { timeoutMs: 45_000 });
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown command "frobnicate"/);
});
