/**
 * stats-mappings.test.ts — `masq stats` counts live mappings, the same figure as the
 * `masq_mappings` metric (docs/CLI.md, masq stats).
 *
 * Endpoint-independent mapping (RFC 4787 REQ-1): one mapping per inside (protocol, address,
 * port), whatever the remote. Two inside hosts send UDP from fixed source ports to several
 * remote ports each (the sweep tool, bounded): 7 ports × 3 remotes from the first, 4 ports × 5
 * remotes from the second; a static UDP port forward holds one more. So exactly 41 UDP
 * sessions and 7 + 4 + 1 = 12 mappings, in `masq stats --json` (`mappings`) and in the
 * readable `masq stats` line.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, masqOk, stats, withGateway } from '../src/gateway/e2e.js';
import { sweepFrom } from '../src/status/fill.js';

const netnsTest = netnsSuite('stats mappings e2e tests');

netnsTest('masq stats: 41 UDP sessions over 11 inside endpoints and one UDP port forward are exactly 12 mappings (--json and readable)', async (t) => {
  const done = await withGateway({ hosts: 2 }, { workers: 2, forwards: ['udp 198.51.100.100:5353 to 10.200.0.3:5353'] }, async ({ topo, gw }) => {
    const [a, b] = topo.inside;
    // Repeat (same flows: same sessions) until the gateway saw every one; at most 3 times.
    let udp = 0;
    for (let i = 0; i < 3 && udp < 41; i++) {
      await Promise.all([sweepFrom(topo, a, 7, 3), sweepFrom(topo, b, 4, 5)]);
      udp = (await stats(gw)).sessions['udp'] ?? 0;
    }
    const s = await stats(gw);
    t.is(s.sessions['udp'], 41);
    t.is(s.mappings, 12);
    t.regex(await masqOk(gw, ['stats']), /^mappings {3}12 \(inside endpoint to external port; port forwards included\)$/m);
  });
  assertTornDown(t, done);
});
