/**
 * soak.ts — `pnpm soak [-- --minutes N] [--workers N]`: the real gateway in namespaces for N
 * minutes (default 10; bounded: every step has a timeout, the run ends at the deadline) under
 * mixed TCP, UDP and ICMP traffic with churn (new flows every round, old ones expiring on
 * short timers), a reload every 3rd round, a worker crash (`masq debug crash-worker`) every
 * 4th, and one gateway restart with `--state` half way. One long-lived TCP connection must
 * echo in every round, across all of it. Every round prints the gateway's memory (RSS), open
 * file descriptors, sessions and drops; the end prints the series and exits 1 on any failed
 * exchange or any drop the soak cannot explain.
 *
 * Not part of the test suite (docs/RELIABILITY.md has a run's figures).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createTopology, type Topology } from '../harness/index.js';
import { chat, probe, sleep, type Chat } from '../gateway/e2e.js';
import { launchMasq, type RunningGateway } from '../gateway/start.js';
import type { UdpPunchResult } from '../gateway/probe.js';
import { endOnClosedOutput } from '@masq/core/bench/cli';

endOnClosedOutput();

const usage = (): never => {
  process.stderr.write('usage: pnpm soak [-- --minutes N (0-240, default 10)] [--workers N (1-8, default 2)]\n');
  process.exit(2);
};
let values: { minutes?: string; workers?: string } = {};
try {
  // pnpm passes its `--` through.
  values = parseArgs({ args: process.argv.slice(2).filter((a) => a !== '--'), options: { minutes: { type: 'string' }, workers: { type: 'string' } }, strict: true }).values;
} catch {
  usage();
}
const minutes = Number(values.minutes ?? '10');
const workers = Number(values.workers ?? '2');
if (!(minutes > 0 && minutes <= 240) || !Number.isInteger(workers) || workers < 1 || workers > 8) {
  process.stderr.write('usage: pnpm soak [-- --minutes N (0-240, default 10)] [--workers N (1-8, default 2)]\n');
  process.exit(2);
}

interface Sample {
  t: number;
  rssMb: number;
  fds: number;
  sessions: number;
  drops: Record<string, number>;
  event: string;
}

interface StatsJson {
  sessions: Record<string, number>;
  drops: Record<string, number>;
  sessionsCreated: number;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'masq-soak-'));
const conf = path.join(dir, 'masq.toml');
const state = path.join(dir, 'masq.state');
const writeConf = (udp: string): void =>
  fs.writeFileSync(conf, `rules = ["masquerade all from 10.200.0.0/24 to any"]\n[timeouts]\nudp = "${udp}"\ntcp_transitory = "20s"\nicmp = "60s"\n`);

function procStats(pid: number): { rssMb: number; fds: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  return { rssMb: Math.round(rss), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
}

async function masqJson<T>(gw: RunningGateway, args: readonly string[]): Promise<T> {
  const r = await gw.masq(args);
  if (r.code !== 0) throw new Error(`masq ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

async function start(topo: Topology): Promise<RunningGateway> {
  const control = `/run/masq/${topo.prefix}.sock`;
  const args = ['run', '--tun', topo.gateway.tun, '--control', control, '--workers', String(workers), '--address', topo.external, '--config', conf, '--state', state, '--state-interval', '30s', '--metrics', 'off', '--max-sessions', '200000'];
  return launchMasq(topo, args, control, 60_000);
}

const failures: string[] = [];
const samples: Sample[] = [];
const t0 = Date.now();
const deadline = t0 + minutes * 60_000;
const log = (s: string): void => void process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${s}\n`);

const topo = await createTopology({ mode: 'masq', hosts: 3 });
let gw: RunningGateway | null = null;
let conn: Chat | null = null;
try {
  writeConf('5m');
  gw = await start(topo);
  const [h1, h2, h3] = topo.inside;
  await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000 });
  await topo.startServer(topo.serverNs, 'udp-echo', { port: 7001, quiet: true, reflect: true });
  conn = await chat(topo, h3.ns, topo.server, 7000, minutes * 60_000 + 600_000);
  let restarted = false;
  let crashes = 0;
  let reloads = 0;
  let exchanges = 0;
  for (let round = 1; Date.now() < deadline; round++) {
    let event = '';
    const step = async (what: string, f: () => Promise<void>): Promise<void> => {
      try {
        await f();
        exchanges++;
      } catch (e) {
        failures.push(`round ${round}: ${what}: ${e instanceof Error ? e.message : String(e)}`);
        log(`FAILED ${what}: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
      }
    };
    // Churn: 100 new UDP flows, 10 new TCP connections, pings, and the long-lived connection.
    await Promise.all([
      step('udp flows', async () => {
        const r = await topo.peer(h1.ns, 'udp-flows', { to: topo.server, port: 7001, flows: 100, timeout: 5_000 }, { timeoutMs: 30_000 });
        if (r.received !== 100) throw new Error(`${r.received} of 100 answered`);
      }),
      step('tcp connections', async () => {
        for (let i = 0; i < 10; i++) {
          const r = await topo.peer(h2.ns, 'tcp-request', { to: topo.server, port: 7000, data: `r${round}-${i}` });
          if (r.reply !== `r${round}-${i}`) throw new Error(`reply ${r.reply}`);
        }
      }),
      step('ping', async () => {
        const r = await topo.exec(h1.ns, ['ping', '-c', '5', '-i', '0.2', '-W', '2', topo.server], { timeoutMs: 15_000 });
        if (r.code !== 0) throw new Error(r.stdout.split('\n').slice(-3).join(' '));
      }),
      step('udp punch (fixed port)', async () => {
        const r = await probe<UdpPunchResult>(topo, h2.ns, 'udp-punch', { lport: 45000, to: topo.server, port: 7001, count: 3, interval: 100, grace: 1000 });
        if (r.json === null || !r.json.ok) throw new Error('no answer');
      }),
    ]);
    await step('long-lived connection', async () => {
      const e = await conn!.say(`round ${round}`);
      if (e.event !== 'echo') throw new Error(JSON.stringify(e));
    });
    // Faults.
    if (round % 3 === 0) {
      writeConf(reloads % 2 === 0 ? '4m' : '5m');
      await step('reload', async () => void (await masqJson(gw!, ['reload', '--json'])));
      reloads++;
      event += ' reload';
    }
    if (round % 4 === 0) {
      const w = crashes % workers;
      await step('crash worker', async () => {
        const r = await gw!.masq(['debug', 'crash-worker', String(w)]);
        if (r.code !== 0) throw new Error(`masq debug crash-worker ${w}: exit ${String(r.code)}: ${r.stderr}`);
      });
      crashes++;
      event += ` crash-worker ${w}`;
      await sleep(500);
    }
    if (!restarted && Date.now() > t0 + (deadline - t0) / 2) {
      restarted = true;
      const before = await masqJson<StatsJson>(gw, ['stats', '--json']);
      const r0 = Date.now();
      await gw.stop();
      gw = await start(topo);
      const m = /state: restored (\d+) session/.exec(gw.log.join(''));
      event += ` restart (${before.sessions['tcp']! + before.sessions['udp']! + before.sessions['icmp']!} sessions before, ${m?.[1] ?? 'none'} restored, up again in ${Date.now() - r0} ms)`;
      await step('long-lived connection after the restart', async () => {
        const e = await conn!.say('after the restart');
        if (e.event !== 'echo') throw new Error(JSON.stringify(e));
      });
    }
    const st = await masqJson<StatsJson>(gw, ['stats', '--json']);
    const p = procStats(gw.proc.pid!);
    const s: Sample = { t: Math.round((Date.now() - t0) / 1000), ...p, sessions: (st.sessions['tcp'] ?? 0) + (st.sessions['udp'] ?? 0) + (st.sessions['icmp'] ?? 0), drops: st.drops, event: event.trim() };
    samples.push(s);
    log(`round ${round}: rss ${s.rssMb} MB, fds ${s.fds}, sessions ${s.sessions}, drops ${JSON.stringify(s.drops)}${s.event ? `; ${s.event}` : ''}`);
    await sleep(2_000);
  }
  log(`done: ${samples.length} rounds, ${exchanges} exchanges, ${reloads} reloads, ${crashes} worker crashes, restart ${restarted ? 'done' : 'not reached'}`);
} finally {
  if (conn) await conn.close().catch(() => undefined);
  if (gw) await gw.stop();
  await topo.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
}

// Drops the soak could explain (none expected: it sends nothing the gateway should refuse).
const EXPLAINED = new Set<string>();
const last = samples.at(-1)?.drops ?? {};
const unexplained = Object.entries(last).filter(([k, v]) => v > 0 && !EXPLAINED.has(k));
const first = samples[0];
const end = samples.at(-1);
process.stdout.write('\n  t(s)  rss(MB)  fds  sessions  event\n');
for (const s of samples) process.stdout.write(`${String(s.t).padStart(6)} ${String(s.rssMb).padStart(8)} ${String(s.fds).padStart(4)} ${String(s.sessions).padStart(9)}  ${s.event}\n`);
process.stdout.write(`\nmemory ${first?.rssMb} MB -> ${end?.rssMb} MB, fds ${first?.fds} -> ${end?.fds}; drops ${JSON.stringify(last)}; unexplained drops ${unexplained.length === 0 ? 'none' : JSON.stringify(Object.fromEntries(unexplained))}; failed exchanges ${failures.length}\n`);
for (const f of failures) process.stdout.write(`  ${f}\n`);
process.exit(failures.length === 0 && unexplained.length === 0 ? 0 : 1);
