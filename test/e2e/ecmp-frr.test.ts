/**
 * ecmp-frr.test.ts — the ECMP pair of masq gateways with FRR doing the failover
 * (docs/SCALING.md, "The same with FRR and BGP"), with the configurations of the document, read
 * from it: each gateway announces a default route to the inside router only while its external
 * address is routed into masq's TUN (`redistribute kernel` of that /32 + `default-originate
 * route-map` on it), the router installs
 * both with `maximum-paths 2` and hashes on the source address only (the kernel's sysctls), and
 * BFD takes a hung gateway out without waiting for BGP's hold time (180 s).
 *
 * Shown with 12 inside hosts: both paths learnt and traffic spread; gateway 1's FRR frozen
 * (SIGSTOP: a hung machine) → BFD drops it, its hosts move to gateway 2 with new mappings;
 * thawed → the path comes back and the hosts return to their old mappings on gateway 1 (still
 * alive); masq stopped on gateway 1 → its /32 leaves the kernel, bgpd withdraws the default and
 * the hosts are back on gateway 2 with the mappings gateway 2 gave them before.
 *
 * Skipped, with the reason printed, when this process cannot create network namespaces or FRR
 * is not installed (Debian package `frr`, installed by scripts/setup and .ci/run).
 */

import test from 'ava';
import { readFileSync } from 'node:fs';
import { netnsSuite } from '../src/harness/suite.js';
import { frrAvailable, startFrr, type Frr } from '../src/harness/frr.js';
import type { EcmpTopology } from '../src/harness/ecmp.js';
import { addrOf, oneMappingPerHost, withEcmp } from '../src/gateway/ecmp.js';
import { REPO } from '../src/gateway/start.js';

const suite = netnsSuite('ECMP with FRR e2e namespace tests');
const netnsTest = frrAvailable() ? suite : test.skip;

/** The fenced blocks of docs/SCALING.md: the configurations tested are the ones documented. */
const blocks = [...readFileSync(`${REPO}/docs/SCALING.md`, 'utf8').matchAll(/^```\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
const block = (marker: string): string => {
  const found = blocks.filter((b) => b.includes(marker));
  if (found.length !== 1) throw new Error(`docs/SCALING.md: expected one code block with "${marker}", found ${found.length}`);
  return found[0];
};
const ROUTER_BGP = block('router bgp 64512');
const GATEWAY1_BGP = block('router bgp 64601');
/** Gateway i's configuration: gateway 1's, as the document says, with gateway i's numbers. */
const gatewayBgp = (i: number): string =>
  GATEWAY1_BGP.replaceAll('64601', String(64600 + i)).replaceAll('10.201.1.', `10.201.${i}.`).replaceAll('198.51.100.101', `198.51.100.${100 + i}`);

test('docs/SCALING.md has the FRR configurations this file runs', (t) => {
  t.regex(ROUTER_BGP, /maximum-paths 2/);
  t.regex(GATEWAY1_BGP, /neighbor 10\.201\.1\.1 default-originate route-map MASQ-UP/);
  t.regex(gatewayBgp(2), /^router bgp 64602$/m);
  t.regex(gatewayBgp(2), /permit 198\.51\.100\.102\/32/);
});

/** Wait until the router's default route is `want` (its next hops, in order); the time it took. */
async function routeBecomes(topo: EcmpTopology, want: readonly string[], frr: readonly Frr[], timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const shown = await topo.routerDefault();
    const hops = [...shown.matchAll(/via (\S+) dev/g)].map((m) => m[1]);
    if (hops.join() === want.join() && shown.includes('proto bgp')) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) {
      const state = await Promise.all(frr.map(async (f) => `${f.ns}:\n${await f.vtysh('show bgp summary', 'show bfd peers brief').catch((e: unknown) => String(e))}`));
      throw new Error(`router default route is not via ${want.join(', ') || 'nothing'} after ${timeoutMs} ms: "${shown}"\n${state.join('\n')}\n${frr.map((f) => f.log()).join('\n').slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

netnsTest('FRR: both gateways announce the default route; BFD takes a hung gateway out, a stopped masq withdraws its own route, and hosts move with their mappings counted', async (t) => {
  t.timeout(240_000);
  const done = await withEcmp({ hosts: 12, routes: 'none' }, async ({ topo, gws, rounds }) => {
    const [g1, g2] = topo.gateways;
    const externals = [g1.external, g2.external];
    t.is(await topo.routerDefault(), '', 'no default route on the router before BGP');
    // Their directories go whatever happens (the topology kills the daemons themselves).
    const all: Frr[] = [];
    try {
      const rt = await startFrr(topo, topo.ns.rt, 'rt', ROUTER_BGP);
      all.push(rt);
      const f1 = await startFrr(topo, g1.ns.gw, 'gw1', gatewayBgp(1));
      all.push(f1);
      const f2 = await startFrr(topo, g2.ns.gw, 'gw2', gatewayBgp(2));
      all.push(f2);
      const up = await routeBecomes(topo, [g1.nexthop, g2.nexthop], all, 60_000);
      t.log(`both default routes learnt ${up} ms after FRR started`);

      const r1 = oneMappingPerHost(t, await rounds.round('r1'), topo.hosts, externals);
      const hosts1 = topo.hosts.filter((h) => addrOf(r1.get(h)!) === g1.external);
      const hosts2 = topo.hosts.filter((h) => addrOf(r1.get(h)!) === g2.external);
      t.log(`split of ${topo.hosts.length} hosts: ${hosts1.length} on gateway 1, ${hosts2.length} on gateway 2`);
      t.true(hosts1.length > 0 && hosts2.length > 0, 'spread over both gateways');

      // BFD can only take a gateway out once its session is up: BGP may come up first on a
      // loaded machine, and a gateway frozen before then is never seen to go down (it never was up).
      const bfdUp = Date.now();
      let peers = '';
      while (Date.now() - bfdUp < 30_000) {
        peers = await rt.vtysh('show bfd peers brief');
        if (/10\.201\.1\.2\s+\S*\s*up/i.test(peers) && /10\.201\.2\.2\s+\S*\s*up/i.test(peers)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      t.regex(peers, /10\.201\.1\.2\s+\S*\s*up/i, 'BFD up with gateway 1 before it hangs');
      // A hung gateway: BFD notices within a second or so, far inside BGP's 180 s hold time.
      f1.freeze();
      const bfdMs = await routeBecomes(topo, [g2.nexthop], all, 20_000);
      t.log(`gateway 1 frozen: its route withdrawn after ${bfdMs} ms (BFD)`);
      t.regex(await rt.vtysh('show bfd peers brief'), /10\.201\.1\.2\s+\S*\s*down/i);
      const moved = oneMappingPerHost(t, await rounds.round('bfd'), topo.hosts, externals);
      for (const h of hosts2) t.is(moved.get(h), r1.get(h), `${h} stays on gateway 2 with its mapping`);
      for (const h of hosts1) {
        t.is(addrOf(moved.get(h)!), g2.external, `${h} moved to gateway 2`);
        t.not(moved.get(h), r1.get(h), `${h} has a new mapping`);
      }

      // Back: the path returns, the hosts return to gateway 1, where their mappings still live.
      f1.thaw();
      const backMs = await routeBecomes(topo, [g1.nexthop, g2.nexthop], all, 60_000);
      t.log(`gateway 1 thawed: its route back after ${backMs} ms`);
      const back = oneMappingPerHost(t, await rounds.round('back'), topo.hosts, externals);
      for (const h of topo.hosts) t.is(back.get(h), r1.get(h), `${h} is back on its first mapping`);

      // masq stops on gateway 1: its /32 goes with the TUN, bgpd withdraws the default route.
      t.is(await gws[0].stop(), 0);
      const withdrawMs = await routeBecomes(topo, [g2.nexthop], all, 30_000);
      t.log(`masq stopped on gateway 1: its route withdrawn after ${withdrawMs} ms`);
      const last = oneMappingPerHost(t, await rounds.round('stopped'), topo.hosts, externals);
      for (const h of topo.hosts) t.is(last.get(h), moved.get(h), `${h} is on gateway 2 with the mapping gateway 2 gave it`);
    } finally {
      for (const f of all) await f.stop();
    }
  });
  t.deepEqual(done.stopCodes, [0, 0]);
  t.deepEqual(done.leftovers, [], 'no namespace left behind');
});
