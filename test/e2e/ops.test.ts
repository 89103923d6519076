/**
 * ops.test.ts — the real gateway operated as an administrator would: a live reload of its config
 * file (`masq reload`, then SIGHUP) under an established TCP connection, and a real Prometheus
 * scraping its metrics endpoint.
 *
 * Reload (docs/CONFIG.md, Reload): changed rules apply in every worker at once; a session some
 * rule still allows keeps its mapping, external port and counters; a session no rule allows any
 * more is flushed, and its flow is then dropped as `no_rule`; changed timeouts apply to sessions
 * from their next packet on. The TCP connection is one `probe tcp-chat` held open from before the
 * first reload to after the last: same local port, same external port, one accept at the server.
 *
 * Metrics (docs/METRICS.md): `masq_packets_total{direction,proto}` counts translated packets.
 * Exactly N UDP request/reply exchanges are the only IPv4 traffic through the TUN, so Prometheus
 * must see exactly N out and N in; the exposition passes `promtool check metrics`.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */

import type { ExecutionContext } from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTopology, leftoverNamespaces, type Topology, type UdpRequestResult } from '../src/harness/index.js';
import { netnsSuite, isAccept } from '../src/harness/suite.js';
import { chat, drops, masqOk, sleep, stats, table, waitForLog } from '../src/gateway/e2e.js';
import type { RunningGateway } from '../src/gateway/start.js';
import { startMasqConfig, writeConfig, type ConfigFile } from '../src/ops/config-gateway.js';

const HTTP_GET = fileURLToPath(new URL('../src/ops/http-get.js', import.meta.url));

const netnsTest = netnsSuite('ops e2e tests');


const TCP_PORT = 7000;
const UDP_PORT = 7001;

/** One topology, one gateway started by `start`, one temp dir; all removed whatever happens. */
async function withOps(
  t: ExecutionContext,
  start: (topo: Topology, dir: string) => Promise<RunningGateway>,
  body: (topo: Topology, gw: RunningGateway, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'masq-ops-'));
  const topo = await createTopology({ mode: 'masq', hosts: 2 });
  let stopCode: number | null = null;
  try {
    const gw = await start(topo, dir);
    try {
      await body(topo, gw, dir);
    } finally {
      stopCode = await gw.stop();
    }
  } finally {
    await topo.destroy();
    await rm(dir, { recursive: true, force: true });
  }
  t.is(stopCode, 0, 'masq drained and stopped cleanly on SIGTERM');
  t.deepEqual(leftoverNamespaces(topo.prefix), [], 'no namespace left behind');
}

/** `udp-request` from `ns`, success or not. */
async function udp(topo: Topology, ns: string, count: number, timeoutMs: number): Promise<UdpRequestResult> {
  const r = await topo.peerRaw(ns, 'udp-request', { to: topo.server, port: UDP_PORT, count, timeout: timeoutMs });
  if (r.json === null) throw new Error(`udp-request printed no result: ${r.result.stdout}${r.result.stderr}`);
  return r.json as unknown as UdpRequestResult;
}

netnsTest('reload (masq reload, then SIGHUP) changes rules and timeouts live: an established TCP connection keeps its mapping, a flow only the removed rule allowed is flushed and dropped', async (t) => {
  const t0 = Date.now();
  let configFile = '';
  let base: ConfigFile | undefined;
  const udpRule = 'masquerade udp from 10.200.0.3 to any';
  await withOps(
    t,
    async (topo, dir) => {
      configFile = path.join(dir, 'masq.toml');
      base = {
        tun: topo.gateway.tun,
        addresses: topo.externals,
        rules: [`masquerade tcp from ${topo.insideNet} to any`, udpRule],
        control: `/run/masq/${topo.prefix}.sock`,
        timeouts: { udp: '5m' },
      };
      await writeConfig(configFile, base);
      return startMasqConfig(topo, configFile, base.control);
    },
    async (topo, gw) => {
      if (base === undefined) throw new Error('no config');
      const [h1, h2] = topo.inside;
      t.is(h2.addr, '10.200.0.3', 'the UDP rule names h2');
      const echo = await topo.startServer(topo.serverNs, 'tcp-echo', { port: TCP_PORT });
      await topo.startServer(topo.serverNs, 'udp-echo', { port: UDP_PORT, quiet: true });

      const status = JSON.parse(await masqOk(gw, ['status', '--json'])) as { pid: number; config: string | null; node: string; jit: string | null };
      t.is(status.config, configFile, 'masq status names the config file');
      t.deepEqual([status.node, status.jit], [process.version, '--max-inlined-bytecode-size-cumulative=3000'], "masq status names the runtime: node's version and the inlining budget Gateway.start set");
      t.is(status.pid, gw.proc.pid ?? -1, 'the control socket answers for the masq run we started');

      // Before any reload: h1's TCP connection and h2's UDP flow both pass.
      const conn = await chat(topo, h1.ns, topo.server, TCP_PORT);
      t.is((await conn.say('before reload')).event, 'echo');
      const tcpRow = (await table(gw, 'tcp')).find((r) => r.inside === h1.addr && r.insidePort === conn.localPort);
      if (tcpRow === undefined) throw new Error(`no TCP session for ${h1.addr}:${conn.localPort}: ${JSON.stringify(await table(gw))}`);
      t.is(tcpRow.state, 'established');
      const u1 = await udp(topo, h2.ns, 3, 2_000);
      t.true(u1.ok, `h2's UDP passes under the UDP rule: ${JSON.stringify(u1)}`);
      t.is((await table(gw, 'udp')).filter((r) => r.inside === h2.addr).length, 1, 'one UDP session for h2');

      const sameTcp = async (when: string): Promise<void> => {
        const echoed = await conn.say(when);
        t.deepEqual(echoed.event === 'echo' ? echoed.data : echoed, when, `the connection echoes ${when}`);
        const row = (await table(gw, 'tcp')).find((r) => r.inside === h1.addr && r.insidePort === conn.localPort);
        t.is(row?.externalPort, tcpRow.externalPort, `${when}: same external port`);
        t.is(row?.state, 'established', `${when}: still established`);
        t.is(echo.events.filter(isAccept).length, 1, `${when}: the server accepted one connection only`);
      };

      // 1. masq reload: the UDP rule removed, the UDP and TCP established timeouts changed.
      await writeConfig(configFile, { ...base, rules: base.rules.filter((r) => r !== udpRule), timeouts: { udp: '3m', tcp: '3h' } });
      const noRule0 = drops(await stats(gw), 'no_rule');
      const tr = Date.now();
      const reloaded = (await masqOk(gw, ['reload'])).trim();
      t.log(`masq reload (${Date.now() - tr} ms): ${reloaded}`);
      t.is(reloaded, `reloaded ${configFile}: rules changed (1 rule(s)), 1 session(s) flushed; timeouts: tcp 2h4m -> 3h, udp 5m -> 3m`);
      t.is((await table(gw, 'udp')).length, 0, "h2's UDP session was flushed");
      await sameTcp('after masq reload');
      // The echo refreshed the established session under the new 3 h timer (each worker's
      // per-state TCP timer table follows a reload: Partition.setTimeouts).
      const tcpLeft = async (): Promise<number> => (await table(gw, 'tcp')).find((r) => r.inside === h1.addr && r.insidePort === conn.localPort)?.expiresMs ?? -1;
      const left3h = await tcpLeft();
      t.true(left3h > 2 * 3_600_000 + 4 * 60_000 && left3h <= 3 * 3_600_000, `the TCP session's deadline follows the new 3 h timer (${left3h} ms left)`);
      const u2 = await udp(topo, h2.ns, 2, 500);
      t.is(u2.received, 0, `h2's UDP is dropped now: ${JSON.stringify(u2)}`);
      const noRule1 = drops(await stats(gw), 'no_rule');
      t.is(noRule1 - noRule0, 2, 'both datagrams dropped as no_rule');
      t.is((await table(gw, 'udp')).length, 0, 'no UDP session was created for them');

      // 2. SIGHUP: the UDP rule back, with another UDP timeout. Same outcome as masq reload, in the log.
      await writeConfig(configFile, { ...base, timeouts: { udp: '4m' } });
      process.kill(status.pid, 'SIGHUP');
      const line1 = await waitForLog(gw, /reloaded [^\n]*udp 3m -> 4m[^\n]*/);
      t.log(`SIGHUP: ${line1}`);
      t.is(line1, `reloaded ${configFile}: rules changed (2 rule(s)), 0 session(s) flushed; timeouts: tcp 3h -> 2h4m, udp 3m -> 4m`);
      const u3 = await udp(topo, h2.ns, 3, 2_000);
      t.true(u3.ok, `h2's UDP passes again: ${JSON.stringify(u3)}`);
      const udpRow = (await table(gw, 'udp')).find((r) => r.inside === h2.addr);
      t.truthy(udpRow, 'a new UDP session for h2');
      if (udpRow !== undefined) t.true(udpRow.expiresMs > 180_000 && udpRow.expiresMs <= 240_000, `the new UDP session expires under the 4m timeout (${udpRow.expiresMs} ms)`);
      await sameTcp('after the first SIGHUP');
      const left2h = await tcpLeft();
      t.true(left2h > 2 * 3_600_000 && left2h <= 2 * 3_600_000 + 4 * 60_000, `back to the 2h4m timer (${left2h} ms left)`);

      // 3. SIGHUP: the UDP rule removed again; h2's new session flushed, its flow dropped.
      await writeConfig(configFile, { ...base, rules: base.rules.filter((r) => r !== udpRule), timeouts: { udp: '4m' } });
      process.kill(status.pid, 'SIGHUP');
      const line2 = await waitForLog(gw, /reloaded [^\n]*rules changed \(1 rule\(s\)\)[^\n]*timeouts unchanged[^\n]*/);
      t.log(`SIGHUP: ${line2}`);
      t.is(line2, `reloaded ${configFile}: rules changed (1 rule(s)), 1 session(s) flushed; timeouts unchanged`);
      t.is((await table(gw, 'udp')).length, 0, "h2's UDP session was flushed by the SIGHUP reload");
      const u4 = await udp(topo, h2.ns, 2, 500);
      t.is(u4.received, 0, `h2's UDP is dropped again: ${JSON.stringify(u4)}`);
      t.is(drops(await stats(gw), 'no_rule') - noRule1, 2, 'both datagrams dropped as no_rule');
      await sameTcp('after the second SIGHUP');
      t.notRegex(gw.log.join(''), /needing a restart|reload failed|reload refused/);

      await conn.close();
    },
  );
  t.log(`reload test: ${Date.now() - t0} ms`);
});

/** GET `url` from inside `ns` (loopback servers there are not reachable from here). */
async function httpGet(topo: Topology, ns: string, url: string): Promise<{ ok: boolean; body: string; error: string }> {
  const r = await topo.exec(ns, [process.execPath, HTTP_GET, url, '--timeout', '3000'], { timeoutMs: 5_000 });
  return { ok: r.code === 0, body: r.stdout, error: r.stderr.trim() };
}

interface PromVector {
  readonly status: string;
  readonly data: { readonly result: readonly { readonly metric: Readonly<Record<string, string>>; readonly value: readonly [number, string] }[] };
}

/** The value of an instant query with a single series, or null (no series yet, or not answered). */
async function promValue(topo: Topology, api: string, query: string): Promise<number | null> {
  const r = await httpGet(topo, topo.ns.gw, `${api}/api/v1/query?query=${encodeURIComponent(query)}`);
  if (!r.ok) return null;
  const v = JSON.parse(r.body) as PromVector;
  if (v.status !== 'success' || v.data.result.length !== 1) return null;
  return Number(v.data.result[0].value[1]);
}

netnsTest('a real Prometheus scrapes the gateway: exactly N UDP exchanges show as N packets out and N in, and the exposition passes promtool', async (t) => {
  const t0 = Date.now();
  const N = 37;
  const METRICS = '127.0.0.1:9464';
  const PROM = '127.0.0.1:9090';
  await withOps(
    t,
    async (topo, dir) => {
      const configFile = path.join(dir, 'masq.toml');
      const control = `/run/masq/${topo.prefix}.sock`;
      await writeConfig(configFile, { tun: topo.gateway.tun, addresses: topo.externals, rules: [`masquerade all from ${topo.insideNet} to any`], control });
      return startMasqConfig(topo, configFile, control);
    },
    async (topo, gw, dir) => {
      t.regex(gw.log.join(''), new RegExp(`metrics http://${METRICS.replace(/\./g, '\\.')}/metrics`), 'metrics on by default');
      const promDir = await mkdtemp(path.join(dir, 'prometheus-'));
      const promConfig = path.join(promDir, 'prometheus.yml');
      await writeFile(
        promConfig,
        ['global:', '  scrape_interval: 1s', '  evaluation_interval: 1s', 'scrape_configs:', '  - job_name: masq', '    static_configs:', `      - targets: ['${METRICS}']`, ''].join('\n'),
      );
      const prom = topo.spawn(topo.ns.gw, ['prometheus', `--config.file=${promConfig}`, `--storage.tsdb.path=${path.join(promDir, 'data')}`, `--web.listen-address=${PROM}`]);
      let promLog = '';
      prom.stdout?.on('data', (d: Buffer) => (promLog = (promLog + d.toString()).slice(-8192)));
      prom.stderr?.on('data', (d: Buffer) => (promLog = (promLog + d.toString()).slice(-8192)));
      const promExit = new Promise<void>((r) => prom.once('exit', () => r()));
      const api = `http://${PROM}`;
      try {
        // Prometheus ready, and its first scrape of masq in (the counters at 0).
        const ready = Date.now() + 20_000;
        while (!(await httpGet(topo, topo.ns.gw, `${api}/-/ready`)).ok) {
          if (prom.exitCode !== null || Date.now() > ready) throw new Error(`prometheus not ready:\n${promLog}`);
          await sleep(200);
        }
        t.log(`prometheus ready after ${Date.now() - t0} ms`);
        const out = 'masq_packets_total{direction="out",proto="udp"}';
        const inn = 'masq_packets_total{direction="in",proto="udp"}';
        const scraped = Date.now() + 10_000;
        while ((await promValue(topo, api, out)) !== 0) {
          if (Date.now() > scraped) throw new Error(`prometheus has no first scrape of ${out} = 0:\n${promLog}`);
          await sleep(250);
        }
        t.is(await promValue(topo, api, 'up{job="masq"}'), 1, 'the masq target is up');

        await topo.startServer(topo.serverNs, 'udp-echo', { port: UDP_PORT, quiet: true });
        const sent = await udp(topo, topo.inside[0].ns, N, 2_000);
        t.true(sent.ok, `${N} UDP exchanges through the gateway: ${JSON.stringify(sent)}`);

        const tw = Date.now();
        const deadline = tw + 30_000;
        let seen: [number | null, number | null] = [null, null];
        for (;;) {
          seen = [await promValue(topo, api, out), await promValue(topo, api, inn)];
          if (seen[0] === N && seen[1] === N) break;
          if ((seen[0] ?? 0) > N || (seen[1] ?? 0) > N) break;
          if (Date.now() > deadline) break;
          await sleep(250);
        }
        t.log(`prometheus saw out=${String(seen[0])} in=${String(seen[1])} ${Date.now() - tw} ms after the exchanges`);
        t.deepEqual(seen, [N, N], `Prometheus: ${out} and ${inn} are ${N}`);
        t.is(await promValue(topo, api, 'sum(masq_packets_total{proto!="udp"})'), 0, 'no other packets were translated');

        // The exposition itself passes promtool's linter.
        const metrics = await httpGet(topo, topo.ns.gw, `http://${METRICS}/metrics`);
        t.true(metrics.ok, metrics.error);
        t.regex(metrics.body, new RegExp(`^masq_packets_total\\{direction="out",proto="udp"\\} ${N}$`, 'm'));
        const lint = await topo.exec(topo.ns.gw, ['promtool', 'check', 'metrics'], { input: metrics.body, timeoutMs: 10_000 });
        t.is(lint.code, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
        t.is(`${lint.stdout}${lint.stderr}`.trim(), '', 'promtool reports no problem');
      } finally {
        if (prom.exitCode === null && prom.signalCode === null) {
          prom.kill('SIGTERM');
          const killer = setTimeout(() => prom.kill('SIGKILL'), 5_000);
          await promExit;
          clearTimeout(killer);
        }
        await rm(promDir, { recursive: true, force: true });
      }
    },
  );
  t.log(`prometheus test: ${Date.now() - t0} ms`);
});
