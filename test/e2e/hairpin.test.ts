/**
 * hairpin.test.ts — one-way hairpinning through the real gateway, under every filtering mode
 * (RFC 4787 REQ-9, RFC 5382 REQ-8): inside host B makes a UDP and a TCP mapping by talking to
 * an outside server only; inside host A then reaches B through B's external endpoint, which B
 * never used toward the gateway's own address. A hairpinned packet comes from an inside host,
 * so no filtering mode refuses it; B sees A as the external address and A's external port, and
 * B's answers reach A. Also: the outside server, a stranger to A's mapping, is still filtered.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */

import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import type { Topology } from '../src/harness/index.js';
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, stats, table, withGateway } from '../src/gateway/e2e.js';

const netnsTest = netnsSuite('gateway e2e tests');
const PEER = fileURLToPath(new URL('../src/gateway/hairpin-peer.js', import.meta.url));

type Event = Record<string, unknown>;

/** A hairpin-peer process and the JSON lines it prints. */
function start(topo: Topology, ns: string, args: readonly string[]): { events: Event[]; waitFor: (pred: (e: Event) => boolean, ms?: number) => Promise<Event>; proc: ChildProcess } {
  const proc = topo.node(ns, PEER, [...args]);
  const events: Event[] = [];
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    try {
      events.push(JSON.parse(l) as Event);
    } catch {
      events.push({ event: 'text', text: l });
    }
  });
  const waitFor = async (pred: (e: Event) => boolean, ms = 10_000): Promise<Event> => {
    const end = Date.now() + ms;
    for (;;) {
      const e = events.find(pred);
      if (e) return e;
      if (Date.now() > end) throw new Error(`no matching event within ${ms} ms: ${JSON.stringify(events)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { events, waitFor, proc };
}

async function run(topo: Topology, ns: string, args: readonly string[]): Promise<Event> {
  const r = await topo.exec(ns, [process.execPath, PEER, ...args], { timeoutMs: 30_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Event;
  } catch {
    return { ok: false, error: `${r.stdout}${r.stderr}` };
  }
}

async function oneWay(t: ExecutionContext, filtering: string): Promise<void> {
  const done = await withGateway({ hosts: 2 }, { extra: ['--filtering', filtering] }, async ({ topo, gw }) => {
    const [a, b] = topo.inside;
    const reflect = await topo.startServer(topo.serverNs, 'udp-echo', { port: 3478, reflect: true });
    const echo = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000 });
    // UDP: B's mapping, made toward the server only.
    const ub = start(topo, b!.ns, ['udp-b', '--lport', '20002', '--server', topo.server, '--port', '3478', '--seconds', '25']);
    const mapped = await ub.waitFor((e) => e.event === 'mapped');
    const [seenAddr, seenPort] = String(mapped.seen).split(':');
    t.is(seenAddr, topo.external);
    const extB = Number(seenPort);
    const ua = await run(topo, a!.ns, ['udp-a', '--to', topo.external, '--port', String(extB), '--lport', '20001', '--timeout', '8000']);
    t.like(ua, { ok: true, from: topo.external, port: extB }, `UDP: A gets B's answer from B's external endpoint: ${JSON.stringify(ua)} ${JSON.stringify(ub.events)}`);
    t.regex(String(ua.data), /^echo:ping-/);
    const extA = (await table(gw, 'udp')).find((r) => r.inside === a!.addr && r.insidePort === 20001)?.externalPort;
    t.truthy(extA);
    const echoed = await ub.waitFor((e) => e.event === 'echoed');
    t.like(echoed, { from: topo.external, port: extA }, 'B sees A as the external address and A\'s external port');
    // TCP: B's mapping, made by a connection to the server that B then closed.
    const tb = start(topo, b!.ns, ['tcp-b', '--lport', '20003', '--server', topo.server, '--port', '7000', '--seconds', '25']);
    await tb.waitFor((e) => e.event === 'listening');
    const tcpExtB = (await table(gw, 'tcp')).find((r) => r.inside === b!.addr && r.insidePort === 20003)?.externalPort;
    t.truthy(tcpExtB, 'B has a TCP mapping toward the server');
    const ta = await run(topo, a!.ns, ['tcp-a', '--to', topo.external, '--port', String(tcpExtB), '--timeout', '10000']);
    t.like(ta, { ok: true, reply: 'hello' }, `TCP: A connects to B through B's mapping: ${JSON.stringify(ta)} ${JSON.stringify(tb.events)}`);
    const accepted = await tb.waitFor((e) => e.event === 'accepted');
    const tcpExtA = (await table(gw, 'tcp')).find((r) => r.inside === a!.addr && r.insidePort === ta.localPort)?.externalPort;
    t.like(accepted, { remote: topo.external, port: tcpExtA });
    const s = await stats(gw);
    t.is(s.drops.filtered ?? 0, 0, `nothing hairpinned was filtered: ${JSON.stringify(s.drops)}`);
    t.true(s.hairpinned >= 4, `hairpinned ${s.hairpinned}`);
    await reflect.stop();
    await echo.stop();
    t.log(`${filtering}: UDP A ${a!.addr}:20001=${topo.external}:${extA} → B ${topo.external}:${extB}; TCP → ${topo.external}:${tcpExtB}`);
  });
  assertTornDown(t, done);
}

for (const filtering of ['endpoint', 'address', 'address-port']) {
  netnsTest(`one-way hairpin under ${filtering} filtering: A reaches B's UDP and TCP mappings that B only used toward a server`, async (t) => {
    await oneWay(t, filtering);
  });
}
