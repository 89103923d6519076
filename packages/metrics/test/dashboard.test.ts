/**
 * dashboard.test.ts — grafana/masq-dashboard.json, prometheus/alerts.yml and docs/METRICS.md
 * agree with the registry: the dashboard is an importable export (schemaVersion, the
 * DS_PROMETHEUS input, every panel on that datasource, the panels the operator needs), every
 * PromQL expression in it selects only metric names the registry exposes, the alert rules
 * name only exposed metrics, and the document describes every exposed metric.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { DROP_REASON_LABELS } from '@masq/core/drop';

import { sharedMemorySource } from '../src/actor.js';
import { createMasqRegistry } from '../src/registry.js';
import { makeInit, parseExposition, promqlMetricNames, REPO_ROOT } from './helpers.js';

interface Target {
  expr: string;
  refId: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query: string | { query: string }; datasource?: { uid: string } }[] };
}

const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'grafana/masq-dashboard.json'), 'utf8')) as Dashboard;
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
const queryPanels = allPanels.filter((p) => p.type !== 'row');

/** Every series name the registry exposes (histograms with their suffixes), process metrics included. */
async function exposedNames(): Promise<Set<string>> {
  const reg = createMasqRegistry(sharedMemorySource(makeInit()), { collectProcess: true });
  const names = new Set<string>();
  for (const [name, f] of parseExposition(await reg.metrics())) {
    names.add(name);
    if (f.type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
  }
  return names;
}

test('PromQL name extraction sees metrics, not functions, labels, keywords or variables', (t) => {
  t.deepEqual(
    promqlMetricNames('sum by (direction, proto) (rate(masq_packets_total{instance=~"$instance",proto!="x y"}[$__rate_interval])) * 8'),
    ['masq_packets_total'],
  );
  t.deepEqual(
    promqlMetricNames('a_total / on (instance, job) group_left (address) (b > 0) and c offset 5m unless bool d'),
    ['a_total', 'b', 'c', 'd'],
  );
});

test('the dashboard is an importable export with a DS_PROMETHEUS input', (t) => {
  t.true(dashboard.schemaVersion >= 36 && dashboard.schemaVersion <= 41, String(dashboard.schemaVersion));
  t.deepEqual(
    dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]),
    [['DS_PROMETHEUS', 'datasource', 'prometheus']],
  );
  t.is(dashboard.uid, 'masq-gateway');
  const ids = allPanels.map((p) => p.id);
  t.is(new Set(ids).size, ids.length, 'panel ids are unique');
  for (const p of queryPanels) {
    t.is(p.datasource?.uid, '${DS_PROMETHEUS}', p.title);
    t.true((p.targets ?? []).length > 0, `${p.title} has queries`);
    for (const tg of p.targets ?? []) t.is(tg.datasource?.uid, '${DS_PROMETHEUS}', `${p.title} ${tg.refId}`);
    const refIds = (p.targets ?? []).map((tg) => tg.refId);
    t.is(new Set(refIds).size, refIds.length, `${p.title}: refIds unique`);
    t.truthy(p.description, `${p.title} has a description`);
    t.true(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the grid`);
  }
  for (const v of dashboard.templating.list) if (v.datasource) t.is(v.datasource.uid, '${DS_PROMETHEUS}', v.name);
});

test('the dashboard has the panels an operator needs', (t) => {
  const titles = queryPanels.map((p) => p.title);
  for (const want of [
    'Throughput by direction',
    'Packets by direction and protocol',
    'Sessions vs limit',
    'Sessions by protocol and state',
    'Drops by reason',
    'Port use per external address',
    'Packets per worker',
    'Worker ring depth',
    'TUN errors',
    'ALG rewrites and errors',
    'Expectations',
  ]) {
    t.true(titles.includes(want), want);
  }
  const exprOf = (title: string): string => queryPanels.find((p) => p.title === title)!.targets!.map((x) => x.expr).join('\n');
  t.regex(exprOf('Throughput by direction'), /sum by \(direction\) \(rate\(masq_bytes_total\{[^}]*\}\[\$__rate_interval\]\)\) \* 8/);
  t.regex(exprOf('Sessions vs limit'), /masq_sessions_limit/);
  t.regex(exprOf('Port use per external address'), /masq_ports_limit/);
});

test('every dashboard expression selects only metrics the registry exposes', async (t) => {
  const exposed = await exposedNames();
  let checked = 0;
  for (const p of queryPanels) {
    for (const tg of p.targets ?? []) {
      const names = promqlMetricNames(tg.expr);
      t.true(names.length > 0, `${p.title} ${tg.refId}: no metric in ${tg.expr}`);
      for (const n of names) t.true(exposed.has(n), `${p.title} ${tg.refId}: ${n} is not exposed`);
      checked++;
    }
  }
  for (const v of dashboard.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query.query;
    const m = /^label_values\((\w+),\s*\w+\)$/.exec(q);
    t.truthy(m, `variable ${v.name}: ${q}`);
    t.true(exposed.has(m![1]!), `variable ${v.name}: ${m![1]} is not exposed`);
  }
  t.true(checked >= 20, `${checked} expressions`);
});

test('alerts.yml names only exposed metrics; docs/METRICS.md describes every masq metric and no other', async (t) => {
  const exposed = await exposedNames();
  const alerts = readFileSync(join(REPO_ROOT, 'prometheus/alerts.yml'), 'utf8');
  const inAlerts = new Set(alerts.match(/\bmasq_[a-z0-9_]+/g) ?? []);
  t.true(inAlerts.size >= 8);
  for (const n of inAlerts) t.true(exposed.has(n), `alerts.yml: ${n}`);
  for (const alert of ['MasqSessionTableNearFull', 'MasqPortExhaustion', 'MasqDropsRising', 'MasqWorkerRestarted', 'MasqTunWriteErrors']) {
    t.regex(alerts, new RegExp(`- alert: ${alert}\\n`), alert);
  }

  const doc = readFileSync(join(REPO_ROOT, 'docs/METRICS.md'), 'utf8');
  const own = createMasqRegistry(sharedMemorySource(makeInit()), { collectProcess: false });
  for (const name of parseExposition(await own.metrics()).keys()) t.regex(doc, new RegExp(`\\| \`${name}\` \\|`), `METRICS.md row for ${name}`);
  for (const n of new Set(doc.match(/\bmasq_[a-z0-9_]+/g) ?? [])) {
    if (n === 'masq_' || n.endsWith('_')) continue;
    t.true(exposed.has(n), `METRICS.md mentions ${n}, which is not exposed`);
  }
  for (const p of queryPanels) t.true(doc.includes(p.title), `METRICS.md describes panel "${p.title}"`);
  for (const a of alerts.match(/- alert: (\w+)/g) ?? []) t.true(doc.includes(a.slice(9)), `METRICS.md describes ${a.slice(9)}`);
});

test('docs/METRICS.md lists exactly the drop reasons of drop.ts, in order', (t) => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/METRICS.md'), 'utf8');
  const section = doc.slice(doc.indexOf('### Drop reasons'), doc.indexOf('## Grafana dashboard'));
  const listed = [...section.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]);
  t.deepEqual(listed, DROP_REASON_LABELS.slice(1), 'update the drop reasons table in docs/METRICS.md to match packages/core/src/drop.ts');
});
