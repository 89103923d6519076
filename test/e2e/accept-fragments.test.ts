/**
 * accept-fragments.test.ts — a UDP datagram larger than the link MTU, sent by an inside host
 * to a destination an `accept` rule exempts from masquerading, crosses the real gateway whole:
 * the inside host's kernel fragments it, the first fragment matches the rule, and the later
 * ones (no ports to match) follow it out untranslated. The server (given a route back to the
 * inside network for this test, so its answer returns by plain forwarding) echoes the whole
 * reassembled datagram. Before the dispatcher's pass route for fragments, the later fragments
 * were held and dropped as orphans and no answer ever came.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */

import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, drops, stats, withGateway } from '../src/gateway/e2e.js';

const netnsTest = netnsSuite('gateway e2e tests');

netnsTest('accept rule: a fragmented UDP datagram passes whole, untranslated, and its echo comes back', async (t) => {
  const done = await withGateway({ hosts: 1 }, { extra: ['--accept', 'all from 10.200.0.0/24 to 198.51.100.0/24'] }, async ({ topo, gw }) => {
    const [a] = topo.inside;
    // Untranslated traffic needs a way back: the server routes the inside network via the gateway.
    await topo.execOk(topo.serverNs, ['ip', 'route', 'add', topo.insideNet, 'via', topo.gateway.wanAddr]);
    const echo = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7007 });
    const data = 'f'.repeat(4000); // three fragments on a 1500-byte link
    const r = await topo.peer(a!.ns, 'udp-request', { to: topo.server, port: 7007, data, timeout: 5_000 });
    t.is(r.received, 1, 'the echo of the whole datagram came back');
    t.is(r.replies[0]?.length, 4000);
    const seen = await echo.waitFor((e) => e.event === 'datagram');
    t.like(seen, { remote: a!.addr }, 'the server saw the inside address: untranslated');
    const s = await stats(gw);
    t.is(drops(s, 'fragment_orphan'), 0, `no later fragment was left behind: ${JSON.stringify(s.drops)}`);
    await echo.stop();
  });
  assertTornDown(t, done);
});
