/**
 * prometheus.test.ts — end to end with a real Prometheus: the metrics actor runs in its own
 * worker thread over shared blocks, Prometheus (127.0.0.1 only, scrape every second, its own
 * temporary TSDB) scrapes it, and PromQL through the HTTP API returns what the test wrote
 * into the shared counter block, before and after a change. The same Prometheus loads
 * prometheus/alerts.yml (every rule must evaluate healthy) and evaluates every expression of
 * the Grafana dashboard. Prometheus is killed and its directory removed afterwards; every
 * wait is bounded (25 s in all). Skipped, with the reason printed, if prometheus is absent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { packetsSlot } from '@masq/core/counters';
import { DROP_REASON_COUNT } from '@masq/core/drop';

import { filledInit } from './filled.js';
import { REPO_ROOT, freePort, sleep, startActorWorker, which } from './helpers.js';

const prometheus = which('prometheus');
const maybe = prometheus === null ? test.skip : test;
if (prometheus === null) console.log('prometheus.test: prometheus not found on PATH (apt install prometheus); skipping');

interface ApiResponse<T> {
  status: string;
  data: T;
  error?: string;
}
interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}
interface RulesData {
  groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[];
}

async function api<T>(base: string, path: string): Promise<ApiResponse<T>> {
  const res = await fetch(base + path, { signal: AbortSignal.timeout(3000) });
  return (await res.json()) as ApiResponse<T>;
}

/** Poll `probe` until it returns a value, or fail after the deadline. */
async function until<T>(deadline: number, what: string, probe: () => Promise<T | undefined>): Promise<T> {
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err; // not up yet
    }
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}${lastErr instanceof Error ? ` (last error: ${lastErr.message})` : ''}`);
}

function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Every PromQL expression of the dashboard, with Grafana's variables given concrete values. */
function dashboardExpressions(): string[] {
  const dash = JSON.parse(readFileSync(join(REPO_ROOT, 'grafana/masq-dashboard.json'), 'utf8')) as {
    panels: { targets?: { expr: string }[] }[];
  };
  return dash.panels
    .flatMap((p) => p.targets ?? [])
    .map((tg) => tg.expr.replaceAll('$__rate_interval', '1m').replaceAll('$instance', '.*'));
}

maybe('a real Prometheus scrapes the actor and PromQL returns the shared counters', async (t) => {
  const deadline = Date.now() + 25_000;
  const init = filledInit();
  const [p0, p1] = init.partitions;
  const udpOut = packetsSlot(0, 1);
  p0![udpOut] = 1234;
  p1![udpOut] = 4321;

  const actor = await startActorWorker({ ...init, collectProcess: true });
  t.teardown(() => actor.stop().then(() => undefined));
  t.is(actor.host, '127.0.0.1');

  const dir = mkdtempSync(join(tmpdir(), 'masq-prom-'));
  const promPort = await freePort();
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 900ms',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${JSON.stringify(join(REPO_ROOT, 'prometheus/alerts.yml'))}`,
      'scrape_configs:',
      '  - job_name: masq',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${actor.port}']`,
      '',
    ].join('\n'),
  );
  let log = '';
  const child = spawn(
    prometheus!,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
  t.teardown(async () => {
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${promPort}`;

  const query = (q: string): Promise<ApiResponse<{ result: VectorSample[] }>> =>
    api<{ result: VectorSample[] }>(base, `/api/v1/query?query=${encodeURIComponent(q)}`);
  const valueOf = async (q: string): Promise<string | undefined> => {
    const r = await query(q);
    return r.status === 'success' && r.data.result.length === 1 ? r.data.result[0]!.value[1] : undefined;
  };
  const QUERY = 'masq_packets_total{direction="out",proto="udp"}';

  try {
    t.is(await until(deadline, `${QUERY} = 5555`, async () => ((await valueOf(QUERY)) === '5555' ? '5555' : undefined)), '5555');

    // The actor reads shared memory at scrape time: a change shows up at the next scrape.
    p1![udpOut] = 5321;
    t.is(await until(deadline, `${QUERY} = 6555`, async () => ((await valueOf(QUERY)) === '6555' ? '6555' : undefined)), '6555');

    const up = await valueOf('up{job="masq"}');
    t.is(up, '1');
    t.is(await valueOf('masq_sessions_limit'), '65536');
    t.is(await valueOf('count(masq_drops_total)'), String(DROP_REASON_COUNT - 1));
    t.is(await valueOf('masq_top_host_sessions{rank="1"}'), undefined, 'no top hosts were sent to the actor');

    // Every alert rule loaded and evaluates without error against real series.
    const rules = await until(deadline, 'alert rules evaluated', async () => {
      const r = await api<RulesData>(base, '/api/v1/rules');
      const all = r.data.groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((x) => x.health !== 'unknown') ? all : undefined;
    });
    t.is(rules.length, 8);
    for (const r of rules) t.is(r.health, 'ok', `${r.name}: ${r.lastError ?? ''}`);

    // Every dashboard expression parses and evaluates.
    for (const expr of dashboardExpressions()) {
      const r = await query(expr);
      t.is(r.status, 'success', `${expr}: ${r.error ?? ''}`);
    }
  } catch (err) {
    t.log(`prometheus log:\n${log}`);
    throw err;
  }
});
