/**
 * cnat.test.ts — the benchmark's C baseline (`bench/cnat/cnat.c`, modes `cnat` and
 * `cnat-offload` of `pnpm bench:e2e`) does the job it is compared on: in the harness topology,
 * without and with TUN offloads, UDP from two inside hosts on the same port comes out from the
 * external address (the first keeps its port, the second gets another) and the replies find
 * their way back; a 300 kB TCP transfer arrives intact from the external address (with offloads:
 * through super-packets with partial checksums, counted, which the kernel must finish in software
 * on the way out, so a wrong partial sum shows); ping works.
 *
 * Skipped, with the reason printed, when this process cannot create network namespaces or `cc`
 * cannot build the program.
 */

import test from 'ava';
import { createTopology, haveTool, leftoverNamespaces, type Topology } from '../src/harness/index.js';
import { netnsSuite } from '../src/harness/suite.js';
import { buildCnat, CNAT_BINARY, startTunProgram } from '../bench/modes.js';
import { tcpAndPing } from '../src/gateway/e2e.js';

const netnsTest = netnsSuite('cnat e2e tests');
const built = buildCnat();
if (built !== null) console.log(`cnat tests skipped: ${built}`);
const cnatTest = built === null ? netnsTest : test.skip;

/**
 * Inside one machine a packet with a partial checksum (CHECKSUM_PARTIAL) is trusted by its
 * receiver as it is, so a wrong pseudo-header sum in it would go unseen. With transmit checksum
 * offload off on the gateway's outgoing devices the kernel finishes every checksum in software
 * (segmenting super-packets too) before the veth, and the receiver verifies it: a wrong
 * partial sum becomes a dropped packet.
 */
async function softwareChecksums(topo: Topology): Promise<void> {
  if (!haveTool(['ethtool', '--version'])) {
    console.log('cnat --offload test: no ethtool, partial checksums are not finished in software');
    return;
  }
  for (const dev of [topo.gateway.wan, ...topo.gateway.hostPorts]) await topo.execOk(topo.ns.gw, ['ethtool', '-K', dev, 'tx', 'off']);
}

/** cnat's exit line: `cnat: rx N tx N out N in N partial_csum N write_errors N [drop_x N]...`. */
function counters(line: string): Record<string, number> {
  const out: Record<string, number> = {};
  const words = line.slice(line.lastIndexOf('cnat: rx')).split(/\s+/).slice(1);
  for (let i = 0; i + 1 < words.length; i += 2) out[words[i]] = Number(words[i + 1]);
  return out;
}

for (const offload of [false, true]) {
  cnatTest(`cnat${offload ? ' --offload' : ''}: NAPT of UDP, TCP and ping through the TUN, replies mapped back`, async (t) => {
    const topo = await createTopology({ mode: 'masq', hosts: 2 });
    try {
      if (offload) await softwareChecksums(topo);
      const gw = await startTunProgram(topo, [CNAT_BINARY, topo.gateway.tun, topo.insideNet, topo.external, '--seconds', '60', ...(offload ? ['--offload'] : [])]);
      const udp = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7005, reflect: true });
      const [h1, h2] = topo.inside;
      const u1 = await topo.peer(h1.ns, 'udp-request', { to: topo.server, port: 7005, count: 2, lport: 40000, timeout: 2000 });
      t.deepEqual(u1.replies, [`${topo.external}:40000`, `${topo.external}:40000`], 'the first host keeps its port');
      const u2 = await topo.peer(h2.ns, 'udp-request', { to: topo.server, port: 7005, count: 2, lport: 40000, timeout: 2000 });
      t.is(u2.received, 2, 'the second host gets its replies');
      const [addr2, port2] = (u2.replies[0] ?? '').split(':');
      t.is(addr2, topo.external);
      t.not(Number(port2), 40000, 'the port in use goes to another external port');
      t.true(Number(port2) >= 1024);
      await tcpAndPing(t, topo, h1.ns, h2.ns);
      await udp.stop();
      await gw.stop();
      const c = counters(gw.lastWords());
      t.log(gw.lastWords().trim());
      t.true(c.in > 0 && c.out > 0, 'both directions translated');
      t.is(c.write_errors, 0);
      if (offload) t.true(c.partial_csum > 0, 'partial checksums came through the offload path');
      else t.is(c.partial_csum, 0);
    } finally {
      await topo.destroy();
    }
    t.deepEqual(leftoverNamespaces(topo.prefix), []);
  });
}
