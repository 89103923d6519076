/**
 * ingress.test.ts — direction by where a packet entered, end to end (RFC 4787 REQ-7): the
 * gateway masquerades 10.0.0.0/8, and an outside server sits at 10.99.0.10, an address that
 * range covers, on the gateway's wan side. With `--outside-tun` (the recipe routes the
 * external address into a second TUN) the inside host reaches the server through the gateway
 * (the server sees the external address), the replies come back, and unsolicited packets from
 * the server to the external address are filtered with the exact reason. The same set-up with
 * one TUN shows the old guess by source address: the server's reply is taken for an inside
 * host's packet and masqueraded (the documented limitation of the single-device setup).
 *
 * Topology: the harness's, plus 10.99.0.1/24 on the gateway's wan0 and 10.99.0.10/24 on the
 * server's eth0 (with a host route to the external address from that source). Skipped, with
 * the reason printed, only when this process cannot create network namespaces.
 */

import type { Topology } from '../src/harness/index.js';
import type { DatagramEvent, AcceptEvent } from '../src/peers/protocol.js';
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, drops, probe, stats, table, withGateway } from '../src/gateway/e2e.js';
import type { UdpPunchResult } from '../src/gateway/probe.js';

const netnsTest = netnsSuite('gateway e2e tests');

/** The outside server, inside the masqueraded 10.0.0.0/8. */
const S = '10.99.0.10';
const WIDE = ['all from 10.0.0.0/8 to 0.0.0.0/0'];

/** Give the server an address in 10.99.0.0/24 on the gateway's wan link, and answer from it. */
async function overlap(topo: Topology): Promise<void> {
  await topo.execOk(topo.ns.gw, ['ip', 'addr', 'add', '10.99.0.1/24', 'dev', topo.gateway.wan]);
  await topo.execOk(topo.serverNs, ['ip', 'addr', 'add', `${S}/24`, 'dev', 'eth0']);
  await topo.execOk(topo.serverNs, ['ip', 'route', 'replace', `${topo.external}/32`, 'dev', 'eth0', 'src', S]);
}

netnsTest('--outside-tun: an outside server inside the masqueraded range is reached, answers, and its unsolicited packets are filtered', async (t) => {
  // Two workers: a multi-queue inside TUN and the outside TUN, polled together.
  const done = await withGateway({ hosts: 1, tun: { outside: 'masqo0' } }, { workers: 2, masquerade: WIDE, extra: ['--filtering', 'address-port'] }, async ({ topo, gw }) => {
    t.regex(gw.log.join(''), /gateway up on masq0 \(outside masqo0\)/);
    await overlap(topo);
    const [a] = topo.inside;
    const reflect = await topo.startServer(topo.serverNs, 'udp-echo', { port: 3478, bind: S, reflect: true });
    const echo = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000, bind: S });
    // UDP: A → S through the gateway; S sees the external address and its answers come back.
    const u = await probe<UdpPunchResult>(topo, a!.ns, 'udp-punch', { lport: 20001, to: S, port: 3478, count: 3, interval: 200, grace: 1000 });
    const got = u.json?.received ?? [];
    t.true(got.length >= 1, `A got the server's answers: ${u.result.stdout}${u.result.stderr}`);
    t.true(
      got.every((d) => d.from === S && d.port === 3478),
      `every answer came from ${S}:3478: ${JSON.stringify(got)}`,
    );
    const [seenAddr, seenPort] = (got[0]?.data ?? ':').split(':');
    t.is(seenAddr, topo.external, 'the server saw the external address');
    const extA = Number(seenPort);
    const seen = (await reflect.waitFor((e) => e.event === 'datagram')) as DatagramEvent;
    t.like(seen, { remote: topo.external, port: extA });
    // TCP both ways through the gateway.
    const tr = await topo.peer(a!.ns, 'tcp-request', { to: S, port: 7000, data: 'hello', timeout: 10_000 });
    t.is(tr.reply, 'hello');
    const acc = (await echo.waitFor((e) => e.event === 'accept')) as AcceptEvent;
    t.is(acc.remote, topo.external);
    // The server never got a mapping of its own: it was never taken for an inside host.
    const rows = await table(gw);
    t.deepEqual([...new Set(rows.map((r) => r.inside))], [a!.addr], JSON.stringify(rows));
    const before = await stats(gw);
    // Unsolicited: from another port of the server to A's mapping (address-port filtering)...
    const f = await probe<UdpPunchResult>(topo, topo.serverNs, 'udp-punch', { lport: 5555, to: topo.external, port: extA, count: 3, interval: 100, grace: 500 });
    t.deepEqual(f.json?.received, [], 'nothing came back to the server');
    // ... and to a port nobody mapped.
    const free = extA === 40000 ? 40001 : 40000;
    await probe<UdpPunchResult>(topo, topo.serverNs, 'udp-punch', { lport: 5556, to: topo.external, port: free, count: 2, interval: 100, grace: 300 });
    const after = await stats(gw);
    t.is(drops(after, 'filtered') - drops(before, 'filtered'), 3, `filtered: ${JSON.stringify(after.drops)}`);
    t.is(drops(after, 'no_mapping') - drops(before, 'no_mapping'), 2, `no_mapping: ${JSON.stringify(after.drops)}`);
    t.is(after.hairpinned, 0, 'nothing was taken for a hairpin');
    const rows2 = await table(gw);
    t.false(
      rows2.some((r) => r.inside === S),
      `no session names the server as an inside host: ${JSON.stringify(rows2)}`,
    );
    await reflect.stop();
    await echo.stop();
    t.log(`A ${a!.addr}:20001 = ${topo.external}:${extA} ↔ ${S}:3478; unsolicited: filtered 3, no_mapping 2`);
  });
  assertTornDown(t, done);
});

netnsTest('one TUN (no --outside-tun): the outside server inside the masqueraded range is taken for an inside host (the documented guess)', async (t) => {
  const done = await withGateway({ hosts: 1 }, { masquerade: WIDE, extra: ['--filtering', 'address-port'] }, async ({ topo, gw }) => {
    await overlap(topo);
    const [a] = topo.inside;
    const reflect = await topo.startServer(topo.serverNs, 'udp-echo', { port: 3478, bind: S, reflect: true });
    const u = await probe<UdpPunchResult>(topo, a!.ns, 'udp-punch', { lport: 20001, to: S, port: 3478, count: 3, interval: 200, grace: 1000 });
    const got = u.json?.received ?? [];
    // The request reached the server (it saw the external address)...
    const seen = (await reflect.waitFor((e) => e.event === 'datagram')) as DatagramEvent;
    t.is(seen.remote, topo.external);
    // ... but its reply, from a covered source, was masqueraded as if from inside and
    // hairpinned: A never hears from the server itself.
    t.false(
      got.some((d) => d.from === S),
      `no answer arrives from ${S}: ${JSON.stringify(got)}`,
    );
    const rows = await table(gw);
    t.true(
      rows.some((r) => r.inside === S),
      `the server got a mapping as an inside host: ${JSON.stringify(rows)}`,
    );
    t.true((await stats(gw)).hairpinned >= 1);
    await reflect.stop();
  });
  assertTornDown(t, done);
});
