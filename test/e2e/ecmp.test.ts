/**
 * ecmp.test.ts — beyond one machine (docs/SCALING.md, "Beyond one machine"): two masq gateways,
 * each with its own external address, behind a Linux router with a multipath default route that
 * hashes on the inside source address only. Nothing is shared between the gateways; what holds
 * endpoint-independent mapping together is that a host always takes the same path.
 *
 * Shown with 24 inside hosts (source addresses in one namespace), each with one UDP socket that
 * talks to three servers and one TCP connection per server per round:
 * - spread: both gateways carry hosts, every host is on exactly one, and each gateway's table and
 *   `masq_mappings` hold exactly its hosts' sessions and mappings;
 * - stable: a host shows one external address to every server, and its UDP socket one external
 *   endpoint (RFC 4787 REQ-1 across the pair), round after round;
 * - failover: gateway 1 stops; while the router still lists it (a static route does not notice)
 *   its hosts are refused (the recipe's fail-closed route answers EHOSTUNREACH, nothing leaks)
 *   and gateway 2's hosts are untouched; once the next hop is withdrawn (what a routing daemon or
 *   BFD does) the moved hosts get new mappings on gateway 2, whose counts grow by exactly them,
 *   while the hosts gateway 2 already had keep their mappings;
 * - and why source-only: with the kernel's default hash (policy 0, source and destination) one
 *   host's socket shows two different external endpoints to two servers.
 *
 * The namespace tests are skipped, with the reason printed, when this process cannot create
 * network namespaces; the check that docs/SCALING.md gives the router the settings tested here
 * always runs.
 */

import test from 'ava';
import { readFileSync } from 'node:fs';
import { netnsSuite } from '../src/harness/suite.js';
import { ECMP_HASH_SEED, ECMP_INSIDE_NET, SOURCE_ONLY, type EcmpGateway } from '../src/harness/ecmp.js';
import { REPO } from '../src/gateway/start.js';
import { stats, table } from '../src/gateway/e2e.js';
import { addrOf, distinct, insideHosts, mappings, oneMappingPerHost, sorted, SOURCE_PORT, withEcmp } from '../src/gateway/ecmp.js';

const netnsTest = netnsSuite('ECMP e2e namespace tests');

test('docs/SCALING.md gives the router the hash settings and the multipath route tested here', (t) => {
  const doc = readFileSync(`${REPO}/docs/SCALING.md`, 'utf8');
  t.true(doc.includes(`sysctl -w net.ipv4.fib_multipath_hash_policy=${SOURCE_ONLY.policy} `));
  t.true(doc.includes(`sysctl -w net.ipv4.fib_multipath_hash_fields=0x${(SOURCE_ONLY.fields ?? 0).toString(16).padStart(4, '0')} `));
  t.true(doc.includes(`sysctl -w net.ipv4.fib_multipath_hash_seed=${ECMP_HASH_SEED} `));
  t.true(doc.includes('ip route add default nexthop via 10.201.1.2 dev ga nexthop via 10.201.2.2 dev gb\n'));
  t.true(doc.includes('ip route replace default nexthop via 10.201.2.2 dev gb'));
  t.true(doc.includes(`ip route add ${ECMP_INSIDE_NET} via 10.201.1.1 dev lan0`));
});

netnsTest('two masq gateways behind an ECMP router hashing on the source: spread, stable per host, and failover moves one gateway\'s hosts to the other with new mappings', async (t) => {
  t.timeout(180_000);
  const done = await withEcmp({ hosts: 24 }, async ({ topo, gws, rounds }) => {
    const [g1, g2] = topo.gateways;
    const externals = [g1.external, g2.external];
    const n = topo.hosts.length;
    t.regex(await topo.routerDefault(), /nexthop via 10\.201\.1\.2 dev ga.*\n?.*nexthop via 10\.201\.2\.2 dev gb/s);

    // Round 1: spread over both, one mapping per host.
    const r1 = oneMappingPerHost(t, await rounds.round('r1'), topo.hosts, externals);
    const on = (g: EcmpGateway): string[] => topo.hosts.filter((h) => addrOf(r1.get(h)!) === g.external);
    const hosts1 = on(g1);
    const hosts2 = on(g2);
    const n1 = hosts1.length;
    const n2 = hosts2.length;
    t.log(`split of ${n} hosts: ${n1} on gateway 1 (${g1.external}), ${n2} on gateway 2 (${g2.external})`);
    t.is(n1 + n2, n);
    t.true(n1 > 0 && n2 > 0, 'traffic is spread over both gateways');
    for (const [i, hs] of [hosts1, hosts2].entries()) {
      const rows = await table(gws[i]);
      t.deepEqual(insideHosts(rows), sorted(hs), `gateway ${i + 1}'s table holds exactly the hosts the servers saw behind it`);
      const udp = rows.filter((r) => r.proto === 'udp');
      t.is(udp.length, 3 * hs.length, `gateway ${i + 1}: one UDP session per host and server`);
      for (const r of udp) t.is(`${r.external}:${r.externalPort}`, r1.get(r.inside) ?? 'none', `gateway ${i + 1}: ${r.inside}:${r.insidePort} is mapped as the servers saw it`);
      const tcp = rows.filter((r) => r.proto === 'tcp');
      t.is(tcp.length, 3 * hs.length, `gateway ${i + 1}: one TCP session per host and server`);
      t.deepEqual(distinct(tcp.map((r) => r.insidePort)).sort(), [SOURCE_PORT + 1, SOURCE_PORT + 2, SOURCE_PORT + 3], 'round 1 connects from the first three ports above the UDP one');
      t.true(tcp.every((r) => r.external === topo.gateways[i].external));
      t.is((await stats(gws[i])).sessionsCreated, 6 * hs.length);
      // One UDP mapping per host (one socket), one per TCP connection (each its own port).
      t.is(await mappings(topo, topo.gateways[i]), 4 * hs.length, `gateway ${i + 1}: masq_mappings`);
    }

    // Round 2: nothing moves; the UDP sockets keep their external endpoints.
    const again = oneMappingPerHost(t, await rounds.round('r2'), topo.hosts, externals);
    for (const h of topo.hosts) t.is(again.get(h), r1.get(h), `${h} keeps its mapping in round 2`);
    t.is((await table(gws[0], 'udp')).length, 3 * n1, 'no new UDP session on gateway 1');
    t.is((await table(gws[1], 'udp')).length, 3 * n2, 'no new UDP session on gateway 2');

    // Gateway 1 stops. The static multipath route does not notice: its hosts are refused by
    // gateway 1's fail-closed route (nothing leaves untranslated), gateway 2's are untouched.
    t.is(await gws[0].stop(), 0, 'gateway 1 stopped cleanly');
    // 7 s: an ICMP error that arrives while connect() still holds the socket is only a soft
    // error; the SYN sent again after 1 s is refused too, and that one ends the attempt — or,
    // on a loaded machine where that one lands as soft too, the one after 3 s (a full suite
    // with a second one beside it once saw 4 s pass).
    const dead = await rounds.round('dead', 7_000);
    for (const h of hosts1) {
      t.deepEqual(dead.udp[h], ['timeout', 'timeout', 'timeout'], `${h} (gateway 1) gets no UDP answer while the router still sends it to gateway 1`);
      t.deepEqual(dead.tcp[h], ['error:EHOSTUNREACH', 'error:EHOSTUNREACH', 'error:EHOSTUNREACH'], `${h} (gateway 1) is refused by the fail-closed route`);
    }
    const alive = oneMappingPerHost(t, dead, hosts2, externals);
    for (const h of hosts2) t.is(alive.get(h), r1.get(h), `${h} (gateway 2) is unaffected`);

    // The next hop is withdrawn, as a routing daemon does when its health check (BFD) fails.
    const before = await stats(gws[1]);
    const mappingsBefore = await mappings(topo, g2);
    t.is(mappingsBefore, 4 * n2 + 6 * n2, 'gateway 2 before the move: its hosts\' UDP mappings and three TCP ones per round');
    await topo.setNexthops([2]);
    t.regex(await topo.routerDefault(), /^default via 10\.201\.2\.2 dev gb/);
    const moved = oneMappingPerHost(t, await rounds.round('moved'), topo.hosts, externals);
    for (const h of hosts2) t.is(moved.get(h), r1.get(h), `${h} was on gateway 2 and keeps its mapping`);
    for (const h of hosts1) {
      t.is(addrOf(moved.get(h)!), g2.external, `${h} moved to gateway 2`);
      t.not(moved.get(h), r1.get(h), `${h} has a new mapping`);
    }
    const rows = await table(gws[1]);
    t.deepEqual(insideHosts(rows), sorted(topo.hosts), 'gateway 2 now holds every host');
    const udpMappings = distinct(rows.filter((r) => r.proto === 'udp').map((r) => `${r.inside}:${r.insidePort}`));
    t.is(udpMappings.length, n, `gateway 2's UDP mappings grew by the ${n1} moved hosts`);
    const after = await stats(gws[1]);
    t.is(after.sessionsCreated - before.sessionsCreated, 3 * n1 + 3 * n, 'new sessions: the moved hosts\' UDP ones and every host\'s TCP ones');
    t.is(await mappings(topo, g2), mappingsBefore + n1 + 3 * n, 'masq_mappings grew by one UDP mapping per moved host and one per new TCP connection');
  });
  t.deepEqual(done.stopCodes, [0, 0], 'both gateways stopped cleanly (gateway 1 earlier)');
  t.deepEqual(done.leftovers, [], 'no namespace left behind');
});

netnsTest('with the default multipath hash (policy 0: source and destination) one host\'s socket shows two external endpoints: why the router must hash on the source only', async (t) => {
  t.timeout(120_000);
  const done = await withEcmp({ hosts: 12, hashPolicy: { policy: 0 } }, async ({ topo, rounds }) => {
    const r = await rounds.round('p0');
    const split = topo.hosts.filter((h) => distinct(r.udp[h].map(addrOf)).length > 1);
    t.log(`${split.length} of ${topo.hosts.length} hosts seen behind both external addresses`);
    for (const h of topo.hosts) t.false(r.udp[h].includes('timeout'), `${h}: every server answered`);
    t.true(split.length > 0, 'some host reaches different servers through different gateways, so its UDP socket has two mappings (endpoint-dependent across the pair)');
  });
  t.deepEqual(done.leftovers, [], 'no namespace left behind');
});
