/**
 * harness.test.ts — proves the namespace harness with the kernel's own forwarding and NAT (no
 * masq involved): sources seen by the server per mode, TCP/UDP/ICMP through the gateway, a 2 MB
 * transfer across a 1280-byte-MTU router hop (and its ICMP fragmentation-needed error), the
 * masq-mode recipe (idempotent, fail-closed, and carrying traffic through a toy userspace TUN
 * forwarder), sweeping of crashed runs, and that nothing of ours is left after destroy().
 *
 * Skipped, with the reason printed, when this process cannot create network namespaces.
 */

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import {
  createTopology,
  haveTool,
  leftoverNamespaces,
  listNamespaces,
  sweepStale,
  TUN_NAT11_SCRIPT,
  type DatagramEvent,
  type SinkEvent,
  type Topology,
} from '../src/harness/index.js';
import { netnsSuite, isAccept } from '../src/harness/suite.js';
import { OWNER_DIR } from '../src/harness/cleanup.js';
import { tcpAndPing } from '../src/gateway/e2e.js';

const netnsTest = netnsSuite('harness e2e tests');

const isDatagram = (e: { event: string }): e is DatagramEvent => e.event === 'datagram';

async function withTopology(opts: Parameters<typeof createTopology>[0], body: (topo: Topology) => Promise<void>): Promise<string> {
  const topo = await createTopology(opts);
  try {
    await body(topo);
  } finally {
    await topo.destroy();
  }
  return topo.prefix;
}

netnsTest('kernel-nat: two hosts reach the server over TCP and UDP from the wan address; ping works', async (t) => {
  const prefix = await withTopology({ mode: 'kernel-nat' }, async (topo) => {
    t.is(topo.natSource, topo.gateway.wanAddr);
    const tcp = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000 });
    const udp = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7001 });
    for (const h of topo.inside) {
      const r = await topo.peer(h.ns, 'tcp-request', { to: topo.server, port: 7000, data: `hello from ${h.name}` });
      t.is(r.reply, `hello from ${h.name}`);
      t.is(r.localAddress, h.addr);
      const u = await topo.peer(h.ns, 'udp-request', { to: topo.server, port: 7001, count: 3, data: h.name, timeout: 2000 });
      t.is(u.received, 3);
      t.deepEqual(u.replies, [`${h.name}-0`, `${h.name}-1`, `${h.name}-2`]);
    }
    const accepts = (await tcp.stop()).filter(isAccept);
    const datagrams = (await udp.stop()).filter(isDatagram);
    t.is(accepts.length, topo.inside.length);
    t.is(datagrams.length, topo.inside.length);
    for (const e of [...accepts, ...datagrams]) {
      t.is(e.remote, topo.gateway.wanAddr, 'the server sees the masqueraded source');
      t.false(e.remote.startsWith('10.200.0.'));
    }
    // Many flows at once: each gets its own mapping on the wan address.
    const reflect = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7004, reflect: true, quiet: true });
    const flows = await topo.peer(topo.inside[1].ns, 'udp-flows', { to: topo.servers[1], port: 7004, flows: 200, timeout: 3000 });
    t.is(flows.received, 200);
    const mapped = new Set(flows.replies.map((r) => r ?? ''));
    t.is(mapped.size, 200);
    t.true([...mapped].every((m) => m.startsWith(`${topo.gateway.wanAddr}:`)));
    await reflect.stop();
    const ping = await topo.exec(topo.inside[0].ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', topo.server], { timeoutMs: 5_000 });
    t.is(ping.code, 0, ping.stdout + ping.stderr);
    // The server has no way back to the inside network: only NAT makes replies arrive.
    const routes = await topo.execOk(topo.serverNs, ['ip', 'route', 'show']);
    t.false(routes.stdout.includes('10.200.0.'));
  });
  t.deepEqual(leftoverNamespaces(prefix), []);
});

netnsTest('routing: the server sees the inside addresses', async (t) => {
  const prefix = await withTopology({ mode: 'routing', hosts: 2 }, async (topo) => {
    t.is(topo.natSource, null);
    const tcp = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000 });
    const udp = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7001, reflect: true });
    for (const h of topo.inside) {
      await topo.peer(h.ns, 'tcp-request', { to: topo.servers[1], port: 7000, data: 'x' });
      const u = await topo.peer(h.ns, 'udp-request', { to: topo.servers[2], port: 7001 });
      t.is(u.replies[0], `${h.addr}:${u.localPort}`, 'reflected source is the inside address and port');
    }
    const remotes = (await tcp.stop()).filter(isAccept).map((e) => e.remote);
    t.deepEqual(remotes.sort(), topo.inside.map((h) => h.addr).sort());
    await udp.stop();
  });
  t.deepEqual(leftoverNamespaces(prefix), []);
});

netnsTest('router with mtu 1280: 2 MB over TCP through kernel NAT, and ICMP frag-needed comes back', async (t) => {
  const prefix = await withTopology({ mode: 'kernel-nat', hosts: 1, router: { mtu: 1280 } }, async (topo) => {
    t.truthy(topo.router);
    const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port: 7002 });
    const h = topo.inside[0];
    const sent = await topo.peer(h.ns, 'tcp-send', { to: topo.server, port: 7002, bytes: 2 * 1024 * 1024, timeout: 15_000 });
    const got = (await sink.waitFor((e) => e.event === 'sink', 5_000)) as SinkEvent;
    t.is(got.bytes, 2 * 1024 * 1024);
    t.is(got.sha256, sent.sha256);
    t.is(got.remote, topo.gateway.wanAddr);
    // A 1400-byte datagram with DF set cannot cross the 1280 link: the router says so (ICMP 3/4),
    // and the kernel NAT carries the error back to the inside host.
    const ping = await topo.exec(h.ns, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1372', topo.server], { timeoutMs: 5_000 });
    t.not(ping.code, 0);
    t.regex(ping.stdout + ping.stderr, /[Ff]rag needed|mtu = 1280|[Mm]essage too long/);
    const small = await topo.exec(h.ns, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1200', topo.server], { timeoutMs: 5_000 });
    t.is(small.code, 0, small.stdout + small.stderr);
    await sink.stop();
  });
  t.deepEqual(leftoverNamespaces(prefix), []);
});

netnsTest('masq mode: prepared gateway fails closed until the TUN is routed; recipe applies idempotently', async (t) => {
  const prefix = await withTopology({ mode: 'masq', hosts: 1, tun: { persistent: true, multiQueue: true } }, async (topo) => {
    const gw = topo.ns.gw;
    const rules = await topo.execOk(gw, ['ip', 'rule', 'show']);
    t.regex(rules.stdout, /iif lan0 lookup 100/);
    const table = await topo.execOk(gw, ['ip', 'route', 'show', 'table', '100']);
    t.regex(table.stdout, /default dev masq0/);
    t.regex(table.stdout, /unreachable default/);
    const main = await topo.execOk(gw, ['ip', 'route', 'show']);
    t.regex(main.stdout, new RegExp(`${topo.external.replaceAll('.', '\\.')} dev masq0`));
    // Applying again changes nothing and does not fail.
    await topo.routeIntoTun();
    const again = await topo.execOk(gw, ['ip', 'rule', 'show']);
    t.is(again.stdout.split('\n').filter((l) => l.includes('iif lan0')).length, 1);
    // Proxy ARP: the server resolves the external address to the gateway's wan MAC.
    const ping = await topo.exec(topo.serverNs, ['ping', '-c', '1', '-W', '1', topo.external], { timeoutMs: 4_000 });
    t.not(ping.code, 0, 'nothing answers yet (no gateway process on the TUN)');
    const neigh = await topo.execOk(topo.serverNs, ['ip', 'neigh', 'show', topo.external]);
    const wanMac = await topo.execOk(gw, ['cat', `/sys/class/net/${topo.gateway.wan}/address`]);
    t.true(neigh.stdout.includes(wanMac.stdout.trim()), `neighbour entry: ${neigh.stdout}`);
    // Undo (`masq down`): routes and rule are gone again; a second undo is a no-op.
    await topo.unrouteTun();
    const after = await topo.execOk(gw, ['ip', 'route', 'show', 'table', '100']);
    t.notRegex(after.stdout, /masq0/);
    const noRule = await topo.execOk(gw, ['ip', 'rule', 'show']);
    t.notRegex(noRule.stdout, /iif lan0/);
    await topo.unrouteTun();
  });
  t.deepEqual(leftoverNamespaces(prefix), []);
});

netnsTest('masq mode fails closed: no inside packet leaves untranslated before the TUN is routed or after it goes', async (t) => {
  const prefix = await withTopology({ mode: 'masq', hosts: 1, router: {} }, async (topo) => {
    const h = topo.inside[0];
    const gw = topo.ns.gw;
    const udp = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7003 });
    const probe = async (icmp: boolean): Promise<void> => {
      const ping = await topo.exec(h.ns, ['ping', '-c', '1', '-W', '1', topo.server], { timeoutMs: 4_000 });
      t.not(ping.code, 0);
      // With forwarding still off the kernel drops silently; with it on, the fail-closed route
      // answers (first, before ip_error's rate limit has been spent by the UDP probe below).
      if (icmp) t.regex(ping.stdout, /[Uu]nreachable/, 'the gateway answers ICMP unreachable');
      const u = await topo.peerRaw(h.ns, 'udp-request', { to: topo.server, port: 7003, timeout: 300 });
      t.is(u.json?.received, 0);
    };
    await probe(false); // prepared, no TUN yet, forwarding off
    await topo.createTun();
    await topo.routeIntoTun();
    await topo.execOk(gw, ['ip', 'link', 'del', topo.gateway.tun]); // the gateway went away
    const table = await topo.execOk(gw, ['ip', 'route', 'show', 'table', '100']);
    t.is(table.stdout.trim(), 'unreachable default metric 4294967295');
    await probe(true);
    t.deepEqual((await udp.stop()).filter(isDatagram), [], 'the server saw nothing from the inside');
  });
  t.deepEqual(leftoverNamespaces(prefix), []);
});

const python = haveTool(['python3', '--version']);
(python ? netnsTest : test.skip)('masq mode: the recipe carries traffic through a userspace TUN forwarder (toy 1:1 NAT)', async (t) => {
  const prefix = await withTopology({ mode: 'masq', hosts: 1, router: { mtu: 1280 } }, async (topo) => {
    const h = topo.inside[0];
    // The stand-in gateway creates the TUN itself, as masq will; then the TUN phase is routed.
    const gw = topo.spawn(topo.ns.gw, ['python3', TUN_NAT11_SCRIPT, h.addr, topo.external, topo.gateway.tun]);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('toy gateway not ready')), 5_000);
      gw.stdout?.once('data', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await topo.waitForTun();
    await topo.routeIntoTun();
    const udp = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7005, reflect: true });
    const u = await topo.peer(h.ns, 'udp-request', { to: topo.servers[1], port: 7005, count: 2 });
    t.deepEqual(u.replies, [`${topo.external}:${u.localPort}`, `${topo.external}:${u.localPort}`]);
    await tcpAndPing(t, topo, h.ns, h.ns);
    await udp.stop();
  });
  t.deepEqual(leftoverNamespaces(prefix), []);
});

netnsTest('sweepStale removes namespaces of a dead owner and leaves live ones', async (t) => {
  // A fake crashed run: a marker naming a process that has exited, and one namespace.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const deadPid = Number(dead.stdout);
  const fake = `mqt${(0xf000 + (process.pid & 0xfff)).toString(16)}`;
  const fakeNs = `${fake}gw`;
  writeFileSync(`${OWNER_DIR}/${fake}.json`, JSON.stringify({ pid: deadPid, start: 'gone' }));
  t.is(spawnSync('ip', ['netns', 'add', fakeNs]).status, 0);
  // The control sockets its SIGKILLed gateways left, and a name that only starts like them.
  mkdirSync('/run/masq', { recursive: true, mode: 0o700 });
  const staleSockets = [`/run/masq/${fake}.sock`, `/run/masq/${fake}-gw1.sock`];
  const otherName = `/run/masq/${fake}0.sock`;
  for (const f of [...staleSockets, otherName]) writeFileSync(f, '');
  const topo = await createTopology({ mode: 'routing', hosts: 1 });
  const liveSocket = `/run/masq/${topo.prefix}.sock`;
  writeFileSync(liveSocket, '');
  try {
    const removed = sweepStale();
    // Other test files sweep too (in parallel processes): the stale namespace must be gone,
    // whichever sweep removed it.
    t.false(listNamespaces().includes(fakeNs));
    if (!removed.includes(fakeNs)) t.log('the stale namespace was swept by a concurrent test process');
    for (const f of staleSockets) t.false(existsSync(f), `${f} removed with its dead run`);
    t.true(existsSync(otherName), `${otherName} is not the dead run's: kept`);
    t.true(existsSync(liveSocket), 'the live run keeps its control socket');
    for (const n of topo.namespaces) t.true(listNamespaces().includes(n), `live namespace ${n} kept`);
    t.false(removed.some((n) => n.startsWith(topo.prefix)));
  } finally {
    spawnSync('ip', ['netns', 'del', fakeNs]);
    rmSync(otherName, { force: true });
    await topo.destroy();
  }
  t.false(existsSync(liveSocket), 'destroying a topology removes its control socket');
  t.deepEqual(leftoverNamespaces(topo.prefix), []);
});
