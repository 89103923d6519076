/**
 * promtool.test.ts — Prometheus' own linters on our output: `promtool check metrics` on the
 * text scraped over HTTP (process metrics included), `promtool check rules` on
 * prometheus/alerts.yml, and `promtool test rules` on the alert unit tests. Skipped, with the
 * reason printed, only when promtool is not installed.
 */
import { join } from 'node:path';

import test from 'ava';

import { createMasqRegistry } from '../src/registry.js';
import { startMetricsServer } from '../src/server.js';
import { filledSource } from './filled.js';
import { FIXTURES, REPO_ROOT, run, which } from './helpers.js';

const promtool = which('promtool');
const maybe = promtool === null ? test.skip : test;
if (promtool === null) console.log('promtool.test: promtool not found on PATH (apt install prometheus); skipping');

maybe('promtool check metrics accepts the scraped exposition', async (t) => {
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: createMasqRegistry(filledSource()) });
  t.teardown(() => server.close());
  const text = await (await fetch(`http://127.0.0.1:${server.address.port}/metrics`)).text();
  t.true(text.includes('masq_process_cpu_seconds_total'));
  const r = await run(promtool!, ['check', 'metrics'], text);
  t.is(r.code, 0, `promtool check metrics:\n${r.stdout}${r.stderr}`);
  t.is((r.stdout + r.stderr).trim(), '');
});

maybe('promtool check metrics does flag a broken exposition (the check is live)', async (t) => {
  const r = await run(promtool!, ['check', 'metrics'], '# TYPE masq_x_total gauge\nmasq_x_total 1\n');
  t.not(r.code, 0);
  t.regex(r.stdout + r.stderr, /non-counter metrics should not have "_total" suffix/);
});

maybe('promtool check rules accepts prometheus/alerts.yml', async (t) => {
  const r = await run(promtool!, ['check', 'rules', join(REPO_ROOT, 'prometheus/alerts.yml')]);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /SUCCESS: 8 rules found/);
});

maybe('promtool test rules: the alerts fire when they should, and only then', async (t) => {
  const r = await run(promtool!, ['test', 'rules', 'alerts.test.yml'], '', { cwd: FIXTURES });
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /SUCCESS/);
});
