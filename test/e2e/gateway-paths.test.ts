/**
 * gateway-paths.test.ts — the real gateway on paths that need more than a mapping: traceroute
 * (UDP and ICMP) through the gateway and a router, where the ICMP time-exceeded errors must be
 * translated back and the gateway counts as one hop (hop compensation) or as two
 * (`--no-hop-compensation`); a TCP upload across a 1280-byte-MTU link beyond the gateway, which
 * only completes if the router's ICMP fragmentation-needed errors reach the inside host
 * translated (path MTU discovery, RFC 1191); hairpinning between two inside hosts through the
 * external address, UDP hole punching (RFC 4787 REQ-9) and TCP through a port forward.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */

import type { RouterInfo, SinkEvent, Topology } from '../src/harness/index.js';
import { netnsSuite, isAccept } from '../src/harness/suite.js';
import { assertTornDown, probe, stats, table, withGateway } from '../src/gateway/e2e.js';
import type { UdpPunchResult } from '../src/gateway/probe.js';

const netnsTest = netnsSuite('gateway e2e tests');


/** The hops of `traceroute -n -q 1` output: index 0 is hop 1; `*` for no answer. */
function hops(stdout: string): string[] {
  return stdout
    .split('\n')
    .slice(1)
    .map((l) => /^\s*\d+\s+(\S+)/.exec(l)?.[1])
    .filter((h): h is string => h !== undefined);
}

/** The topology's router (these tests build theirs with one). */
function routerOf(topo: Topology): RouterInfo {
  if (topo.router === undefined) throw new Error(`topology ${topo.prefix} has no router`);
  return topo.router;
}

async function traceroute(topo: Topology, ns: string, icmp: boolean): Promise<string[]> {
  const argv = ['traceroute', '-n', '-q', '1', '-w', '2', '-m', '8', ...(icmp ? ['-I'] : []), topo.server];
  const r = await topo.exec(ns, argv, { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: exit ${String(r.code)}: ${r.stdout}${r.stderr}`);
  return hops(r.stdout);
}

netnsTest('traceroute (UDP and ICMP) through the gateway and a router: gateway, router, server, the gateway counting as one hop', async (t) => {
  const done = await withGateway({ hosts: 1, router: {} }, {}, async ({ topo, gw }) => {
    const rt = routerOf(topo).gwSide.addr;
    const h = topo.inside[0];
    // Hop 1: the gateway's kernel (TTL 1 expires forwarding lan0 → TUN) answers from its LAN
    // address. masq adds 1 to the TTL it receives, so the second kernel forward (TUN → wan0)
    // does not count: hop 2 is the router, whose time-exceeded comes back to the external
    // address and is translated to the inside host; hop 3 is the server.
    const udp = await traceroute(topo, h.ns, false);
    t.deepEqual(udp, [topo.gatewayLan, rt, topo.server], `UDP traceroute hops: ${udp.join(' ')}`);
    const icmp = await traceroute(topo, h.ns, true);
    t.deepEqual(icmp, [topo.gatewayLan, rt, topo.server], `ICMP traceroute hops: ${icmp.join(' ')}`);
    t.true((await stats(gw)).icmpErrorsTranslated >= 2, 'time-exceeded (and the final port unreachable) were translated');
    t.log(`with hop compensation: ${udp.join(' → ')} (the gateway is 1 hop)`);
  });
  assertTornDown(t, done);
});

// The gateway's own kernel sources ICMP errors about translated packets from its LAN address
// 10.200.0.1 (the TUN has no address), to the external address, quoting the translated packet.
// The dispatcher must send those the inbound way although their source is an inside address.
// Here: with --no-hop-compensation the TTL expires in the gateway's second forward (TUN → wan0),
// and hop 2 must show as the gateway.
netnsTest('traceroute with --no-hop-compensation: the gateway answers as two hops', async (t) => {
  const done = await withGateway({ hosts: 1, router: {} }, { extra: ['--no-hop-compensation'] }, async ({ topo, gw }) => {
    const rt = routerOf(topo).gwSide.addr;
    const icmp = await traceroute(topo, topo.inside[0].ns, true);
    t.log(`without hop compensation: ${icmp.join(' → ')}; drops ${JSON.stringify((await stats(gw)).drops)}`);
    t.deepEqual(icmp, [topo.gatewayLan, topo.gatewayLan, rt, topo.server]);
  });
  assertTornDown(t, done);
});

netnsTest('path MTU discovery: a 3 MB upload across a 1280-byte link beyond the gateway completes; frag-needed is translated back', async (t) => {
  const done = await withGateway({ hosts: 2, router: { mtu: 1280 } }, {}, async ({ topo, gw }) => {
    // The server's own link has MTU 1280 too, so by default it advertises an MSS that already
    // fits and PMTUD is never needed. Advertise the Ethernet MSS instead: the inside host then
    // sends 1500-byte segments with DF, and only the router's ICMP 3/4 (to the external address,
    // translated back by masq) makes it shrink them.
    await topo.execOk(topo.serverNs, ['ip', 'route', 'replace', 'default', 'via', routerOf(topo).serverSide.addr, 'advmss', '1460']);
    const [h1, h2] = topo.inside;

    // A ping too big for the link gets the router's error, translated, with the MTU in it.
    const big = await topo.exec(h2.ns, ['ping', '-c', '1', '-W', '2', '-M', 'do', '-s', '1372', topo.server], { timeoutMs: 5_000 });
    t.not(big.code, 0);
    t.regex(big.stdout + big.stderr, /Frag needed and DF set \(mtu = 1280\)/, 'the frag-needed error reached the inside host');
    t.regex(big.stdout, /From 192\.0\.2\.254/, 'from the router');

    const before = await stats(gw);
    const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port: 7002 });
    const bytes = 3 * 1024 * 1024;
    const sent = await topo.peer(h1.ns, 'tcp-send', { to: topo.server, port: 7002, bytes, timeout: 30_000 }, { timeoutMs: 40_000 });
    const got = (await sink.waitFor((e) => e.event === 'sink', 10_000)) as SinkEvent;
    t.is(got.bytes, bytes);
    t.is(got.sha256, sent.sha256);
    t.is(got.remote, topo.external);
    const after = await stats(gw);
    t.true(after.icmpErrorsTranslated > before.icmpErrorsTranslated, `frag-needed errors translated during the upload: ${after.icmpErrorsTranslated - before.icmpErrorsTranslated}`);
    // The inside host learned the path MTU from the translated errors.
    const route = await topo.execOk(h1.ns, ['ip', 'route', 'get', topo.server]);
    t.regex(route.stdout, /mtu 1280/, route.stdout);
    t.log(`3 MB across the 1280 link: ${sent.ms.toFixed(0)} ms, ${after.icmpErrorsTranslated - before.icmpErrorsTranslated} frag-needed translated`);
    await sink.stop();
  });
  assertTornDown(t, done);
});

// When the gateway's own WAN link is the narrowest, its kernel sends ICMP 3/4 (frag needed,
// mtu 1280) from 10.200.0.1 to the external address; translated back to the inside host, path
// MTU discovery works (without it: a black hole, e.g. a PPPoE uplink of 1492 behind a 1500 LAN).
netnsTest('path MTU discovery with the gateway\'s own WAN link at MTU 1280: the upload completes', async (t) => {
  const done = await withGateway({ hosts: 1, router: {} }, {}, async ({ topo, gw }) => {
    await topo.execOk(topo.ns.gw, ['ip', 'link', 'set', topo.gateway.wan, 'mtu', '1280']);
    await topo.execOk(routerOf(topo).ns, ['ip', 'link', 'set', routerOf(topo).gwSide.ifname, 'mtu', '1280']);
    const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port: 7002 });
    const bytes = 1024 * 1024;
    try {
      const sent = await topo.peer(topo.inside[0].ns, 'tcp-send', { to: topo.server, port: 7002, bytes, timeout: 5_000 }, { timeoutMs: 10_000 });
      const got = (await sink.waitFor((e) => e.event === 'sink', 5_000)) as SinkEvent;
      t.is(got.sha256, sent.sha256);
    } finally {
      t.log(`drops: ${JSON.stringify((await stats(gw)).drops)}`);
    }
    t.is((await stats(gw)).drops.icmp_error_no_session ?? 0, 0);
  });
  assertTornDown(t, done);
});

netnsTest('hairpinning, UDP: two inside hosts punch through their external endpoints and see each other as external', async (t) => {
  const done = await withGateway({ hosts: 2 }, {}, async ({ topo, gw }) => {
    const [a, b] = topo.inside;
    const reflect = await topo.startServer(topo.serverNs, 'udp-echo', { port: 3478, reflect: true });
    // Each host learns its external endpoint from the outside server (a STUN-like exchange).
    const lportA = 20_001;
    const lportB = 20_002;
    const mapped = async (ns: string, lport: number): Promise<number> => {
      const r = await topo.peer(ns, 'udp-request', { to: topo.server, port: 3478, lport });
      const [addr, port] = r.replies[0].split(':');
      t.is(addr, topo.external);
      return Number(port);
    };
    const extA = await mapped(a.ns, lportA);
    const extB = await mapped(b.ns, lportB);
    t.not(extA, extB);
    // Both punch at once, each to the other's external endpoint, from the same local port.
    const [ra, rb] = await Promise.all([
      probe<UdpPunchResult>(topo, a.ns, 'udp-punch', { lport: lportA, to: topo.external, port: extB, count: 15, interval: 100 }),
      probe<UdpPunchResult>(topo, b.ns, 'udp-punch', { lport: lportB, to: topo.external, port: extA, count: 15, interval: 100 }),
    ]);
    const gotB = rb.json?.received ?? [];
    const gotA = ra.json?.received ?? [];
    t.true(gotB.length > 0, `B received nothing: ${rb.result.stdout}`);
    t.true(gotA.length > 0, `A received nothing: ${ra.result.stdout}`);
    t.true(
      gotB.every((d) => d.from === topo.external && d.port === extA && d.data.startsWith('punch-')),
      `B sees A only as its external endpoint ${topo.external}:${extA}: ${JSON.stringify(gotB)}`,
    );
    t.true(gotA.every((d) => d.from === topo.external && d.port === extB), `A sees B as ${topo.external}:${extB}: ${JSON.stringify(gotA)}`);
    // Once both sides have sent, nothing more is filtered: most punches arrive.
    t.true(gotB.length >= 10 && gotA.length >= 10, `punches received: A ${gotA.length}, B ${gotB.length} of 15`);
    const s = await stats(gw);
    t.true(s.hairpinned >= gotA.length + gotB.length, `hairpinned counter ${s.hairpinned}`);
    t.log(`hairpin: A ${a.addr}:${lportA} = ${topo.external}:${extA}, B ${b.addr}:${lportB} = ${topo.external}:${extB}; A got ${gotA.length}, B got ${gotB.length} of 15`);
    // The reflector saw only the external endpoints.
    const seen = (await reflect.stop()).filter((e) => e.event === 'datagram');
    t.deepEqual(seen.map((e) => ('remote' in e ? `${e.remote}:${e.port}` : '')).sort(), [`${topo.external}:${extA}`, `${topo.external}:${extB}`].sort());
  });
  assertTornDown(t, done);
});

netnsTest('hairpinning, TCP: an inside host reaches another through the external address and a port forward', async (t) => {
  const done = await withGateway({ hosts: 2 }, { forwards: ['tcp 198.51.100.100:8080 to 10.200.0.3:7000'] }, async ({ topo, gw }) => {
    const [a, b] = topo.inside;
    t.is(b.addr, '10.200.0.3');
    const echo = await topo.startServer(b.ns, 'tcp-echo', { port: 7000 });
    const r = await topo.peer(a.ns, 'tcp-request', { to: topo.external, port: 8080, data: 'hello, neighbour' });
    t.is(r.reply, 'hello, neighbour');
    const accepts = (await echo.stop()).filter(isAccept);
    t.is(accepts.length, 1);
    t.is(accepts[0].remote, topo.external, 'B sees the external address as the source, so its replies go back through the gateway');
    const row = (await table(gw, 'tcp')).find((x) => x.inside === a.addr && x.insidePort === r.localPort);
    t.truthy(row, 'A has an outbound session for the hairpinned connection');
    t.is(row?.externalPort, accepts[0].port, "B sees A's external port");
    t.true((await stats(gw)).hairpinned > 0);
  });
  assertTornDown(t, done);
});


// Jumbo frames: a TUN with MTU 9000 hands over packets bigger than the default 2 KiB slot; the
// pool's slots follow the TUN's MTU, so an 8000-byte datagram crosses whole, both ways.
netnsTest('jumbo MTU 9000: an 8000-byte UDP datagram crosses the gateway whole, both ways', async (t) => {
  const done = await withGateway({ hosts: 1 }, { extra: ['--mtu', '9000'] }, async ({ topo, gw }) => {
    const jumbo = async (ns: string, ifs: readonly string[]): Promise<void> => {
      for (const i of ifs) await topo.execOk(ns, ['ip', 'link', 'set', 'dev', i, 'mtu', '9000']);
    };
    const links = (await topo.execOk(topo.ns.gw, ['ip', '-o', 'link', 'show'])).stdout
      .split('\n')
      .map((l) => l.split(': ')[1]?.split('@')[0])
      .filter((n): n is string => n !== undefined && n !== 'lo' && n !== topo.gateway.tun);
    await jumbo(topo.inside[0]!.ns, ['eth0']);
    await jumbo(topo.ns.gw, links);
    await jumbo(topo.serverNs, ['eth0']);
    const srv = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7010 });
    const r = await topo.exec(topo.inside[0]!.ns, [
      process.execPath,
      '-e',
      `const s = require('dgram').createSocket('udp4');
       s.on('message', (m) => { console.log(m.length); process.exit(0); });
       s.send(Buffer.alloc(8000, 120), 7010, '${topo.server}');
       setTimeout(() => { console.log('timeout'); process.exit(1); }, 4000);`,
    ]);
    t.is(r.stdout.trim(), '8000', `the echo came back whole: ${r.stdout}${r.stderr}`);
    const s = await stats(gw);
    t.is(s.bytes.out, 8028, 'one unfragmented 8028-byte packet out');
    t.is(s.bytes.in, 8028, 'and one in');
    t.deepEqual(s.drops, {});
    await srv.stop();
  });
  assertTornDown(t, done);
});
