/**
 * gateway-traffic.test.ts — the real gateway (`masq run` on a TUN in the gateway namespace)
 * carrying real kernel traffic between inside hosts and an outside server, each test asserting
 * what the far side saw: TCP request/response and a 10 MB transfer (sha256 at the sink, source
 * = the external address, port inside `--ports`); UDP request/response and 1,050 concurrent
 * flows from three hosts, checked against `masq table --json`; ICMP echo through the gateway and
 * to the external address; an ICMP port unreachable carried back to the inside socket;
 * unsolicited inbound traffic dropped and counted, and a static port forward.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */

import type { AcceptEvent, DatagramEvent, SinkEvent } from '../src/harness/index.js';
import { netnsSuite, isAccept } from '../src/harness/suite.js';
import { assertTornDown, capture, drops, probe, stats, table, withGateway } from '../src/gateway/e2e.js';
import type { UdpRefusedResult } from '../src/gateway/probe.js';

const netnsTest = netnsSuite('gateway e2e tests');


const PORT_LO = 40_000;
const PORT_HI = 49_999;
const inRange = (p: number): boolean => p >= PORT_LO && p <= PORT_HI;

netnsTest('TCP: request/response and a 10 MB transfer; the server sees the external address and a port from --ports', async (t) => {
  const done = await withGateway({ hosts: 1 }, { extra: ['--ports', `${PORT_LO}-${PORT_HI}`] }, async ({ topo, gw }) => {
    const h = topo.inside[0];
    const echo = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000 });
    const r = await topo.peer(h.ns, 'tcp-request', { to: topo.server, port: 7000, data: 'hello through masq' });
    t.is(r.reply, 'hello through masq');
    const accept = (await echo.waitFor((e) => e.event === 'accept')) as AcceptEvent;
    t.is(accept.remote, topo.external, 'the server sees the external address');
    t.true(inRange(accept.port), `external port ${accept.port} is inside --ports ${PORT_LO}-${PORT_HI}`);

    const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port: 7002 });
    const bytes = 10 * 1024 * 1024;
    const sent = await topo.peer(h.ns, 'tcp-send', { to: topo.server, port: 7002, bytes, timeout: 60_000 }, { timeoutMs: 70_000 });
    const got = (await sink.waitFor((e) => e.event === 'sink', 10_000)) as SinkEvent;
    t.is(got.bytes, bytes);
    t.is(got.sha256, sent.sha256, 'the sink hashed exactly the bytes sent');
    t.is(got.remote, topo.external);
    t.true(inRange(got.port));
    t.log(`10 MB upload through masq: ${sent.ms.toFixed(0)} ms, ${((bytes * 8) / sent.ms / 1000).toFixed(0)} Mbit/s`);

    // The table lists both connections with their inside and external endpoints.
    const rows = await table(gw, 'tcp');
    for (const [localPort, extPort] of [
      [r.localPort, accept.port],
      [sent.localPort, got.port],
    ]) {
      const row = rows.find((x) => x.inside === h.addr && x.insidePort === localPort);
      t.truthy(row, `session for ${h.addr}:${localPort} in ${JSON.stringify(rows)}`);
      t.is(row?.external, topo.external);
      t.is(row?.externalPort, extPort);
      t.is(row?.remote, topo.server);
    }
    const s = await stats(gw);
    t.true(s.bytes.out >= bytes, 'byte counters saw the upload');
    await echo.stop();
    await sink.stop();
  });
  assertTornDown(t, done);
});

netnsTest('UDP: request/response, and 1,050 concurrent flows from three hosts all answered and listed in masq table', async (t) => {
  const done = await withGateway({ hosts: 3 }, { extra: ['--ports', `${PORT_LO}-${PORT_HI}`] }, async ({ topo, gw }) => {
    const reflect = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7001, reflect: true, quiet: true });
    const echo = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7003 });
    const h1 = topo.inside[0];
    const u = await topo.peer(h1.ns, 'udp-request', { to: topo.server, port: 7003, count: 3, data: 'dns-like' });
    t.deepEqual(u.replies, ['dns-like-0', 'dns-like-1', 'dns-like-2']);
    const d = (await echo.waitFor((e) => e.event === 'datagram')) as DatagramEvent;
    t.is(d.remote, topo.external);
    t.true(inRange(d.port));

    const perHost = 350;
    const runs = await Promise.all(topo.inside.map((h) => topo.peer(h.ns, 'udp-flows', { to: topo.servers[1], port: 7001, flows: perHost, timeout: 5_000 }, { timeoutMs: 30_000 })));
    const rows = await table(gw, 'udp');
    const byInside = new Map(rows.map((r) => [`${r.inside}:${r.insidePort}`, r]));
    const extPorts = new Set<number>();
    let checked = 0;
    for (const [i, run] of runs.entries()) {
      const h = topo.inside[i];
      t.is(run.received, perHost, `${h.name}: every flow got its reply`);
      for (const [f, localPort] of run.localPorts.entries()) {
        const seen = run.replies[f];
        const row = byInside.get(`${h.addr}:${localPort}`);
        if (row === undefined || seen === null) {
          t.fail(`${h.name} flow ${f} (${h.addr}:${localPort}): row ${JSON.stringify(row)}, reply ${String(seen)}`);
          continue;
        }
        // The server saw exactly the external endpoint the table shows for this flow.
        t.is(seen, `${row.external}:${row.externalPort}`);
        if (row.proto !== 'udp' || row.external !== topo.external || row.remote !== topo.servers[1] || row.remotePort !== 7001 || !inRange(row.externalPort)) {
          t.fail(`bad row for ${h.addr}:${localPort}: ${JSON.stringify(row)}`);
        }
        extPorts.add(row.externalPort);
        checked++;
      }
    }
    t.is(checked, 3 * perHost);
    t.is(extPorts.size, 3 * perHost, 'each flow has its own external port');
    const s = await stats(gw);
    t.true(s.sessions.udp >= 3 * perHost + 1);
    t.is(s.portAllocationFailures, 0);
    await reflect.stop();
    await echo.stop();
  });
  assertTornDown(t, done);
});

netnsTest('ICMP: ping through the gateway, ping of the external address, and a port unreachable carried back to the inside socket', async (t) => {
  const done = await withGateway({ hosts: 2 }, {}, async ({ topo, gw }) => {
    // First, before anything could spend the server's ICMP rate limit: a connected UDP socket
    // gets ECONNREFUSED only if the error arrives with the embedded packet translated back to
    // its own inside address and port (the kernel matches the socket by that 5-tuple).
    const before = await stats(gw);
    const refused = await probe<UdpRefusedResult>(topo, topo.inside[0].ns, 'udp-refused', { to: topo.server, port: 9, timeout: 3_000 });
    t.is(refused.json?.error, 'ECONNREFUSED', `udp-refused: ${refused.result.stdout}${refused.result.stderr}`);
    const after = await stats(gw);
    t.true(after.icmpErrorsTranslated > before.icmpErrorsTranslated, 'the gateway counted the ICMP error it translated');

    for (const h of topo.inside) {
      const ping = await topo.exec(h.ns, ['ping', '-c', '3', '-i', '0.2', '-W', '2', topo.server], { timeoutMs: 10_000 });
      t.is(ping.code, 0, ping.stdout + ping.stderr);
      t.regex(ping.stdout, /3 packets transmitted, 3 received/);
    }
    const rows = await table(gw, 'icmp');
    t.deepEqual([...new Set(rows.map((r) => r.inside))].sort(), topo.inside.map((h) => h.addr).sort());
    t.true(rows.every((r) => r.external === topo.external && r.remote === topo.server));

    // The gateway answers echo requests to its external address itself.
    const own = await topo.exec(topo.serverNs, ['ping', '-c', '2', '-i', '0.2', '-W', '2', topo.external], { timeoutMs: 10_000 });
    t.is(own.code, 0, own.stdout + own.stderr);
    t.regex(own.stdout, new RegExp(`bytes from ${topo.external.replaceAll('.', '\\.')}`));
  });
  assertTornDown(t, done);
});

netnsTest('inbound: unsolicited traffic is dropped as no_mapping and reaches no inside host; a port forward carries a connection from outside', async (t) => {
  const done = await withGateway({ hosts: 2 }, { forwards: ['tcp 198.51.100.100:8080 to 10.200.0.2:7000'] }, async ({ topo, gw }) => {
    const h1 = topo.inside[0];
    t.is(topo.external, '198.51.100.100');
    t.is(h1.addr, '10.200.0.2');
    const fwdEcho = await topo.startServer(h1.ns, 'tcp-echo', { port: 7000 });
    // Listeners on every inside host at the probed port: they must hear nothing.
    const port = 45_678;
    const listeners = await Promise.all(topo.inside.map((h) => topo.startServer(h.ns, 'udp-echo', { port })));
    const tcpListeners = await Promise.all(topo.inside.map((h) => topo.startServer(h.ns, 'tcp-echo', { port: port + 1 })));
    const lan = await capture(topo, topo.ns.gw, topo.gateway.lan, ['src', 'host', topo.server]);
    const before = await stats(gw);

    const u = await topo.peerRaw(topo.serverNs, 'udp-request', { to: topo.external, port, count: 5, timeout: 200 });
    t.is(u.json?.received, 0);
    const tcp = await topo.peerRaw(topo.serverNs, 'tcp-request', { to: topo.external, port: port + 1, data: 'x', timeout: 1_500 });
    t.not(tcp.result.code, 0, 'an unsolicited TCP connection does not complete');

    const after = await stats(gw);
    t.true(drops(after, 'no_mapping') - drops(before, 'no_mapping') >= 6, `no_mapping drops ${drops(before, 'no_mapping')} → ${drops(after, 'no_mapping')}`);
    for (const l of [...listeners, ...tcpListeners]) t.deepEqual((await l.stop()).filter((e) => e.event === 'datagram' || e.event === 'accept'), []);

    // The forward: the server connects to ext:8080 and reaches h1's echo server, unmasqueraded.
    const r = await topo.peer(topo.serverNs, 'tcp-request', { to: topo.external, port: 8080, data: 'through the forward' });
    t.is(r.reply, 'through the forward');
    const accepts = (await fwdEcho.stop()).filter(isAccept);
    t.is(accepts.length, 1);
    t.is(accepts[0].remote, topo.server, 'the inside host sees the real client address');
    t.is(accepts[0].port, r.localPort);
    // What crossed the inside bridge from the server: the forwarded connection, and nothing else.
    const crossed = await lan.stop();
    t.true(crossed.length > 0, 'the capture saw the forwarded connection');
    t.deepEqual(
      crossed.filter((l) => !l.includes(`> ${h1.addr}.7000:`)),
      [],
      'no unsolicited packet from the server crossed the inside bridge',
    );
    const row = (await table(gw, 'tcp')).find((x) => x.remote === topo.server && x.remotePort === r.localPort);
    t.truthy(row);
    t.is(row?.inside, h1.addr);
    t.is(row?.insidePort, 7000);
    t.is(row?.externalPort, 8080);
    t.true(row?.inboundCreated);
  });
  assertTornDown(t, done);
});
