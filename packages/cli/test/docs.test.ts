/**
 * docs.test.ts — the documents say what the program does: the bytes per session every document
 * quotes is the one `tableBytes` measures; CLI.md's `masq up --dry-run` is the command's
 * output; `masq reload --help` names every key a reload can report as needing a restart;
 * METRICS.md's `worker` label and `ring_depth` unit are the scrape's; the exit-status table
 * has the codes the CLI uses (each one is exercised in strict.test.ts and the e2e tests).
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { partitionSizes, PortPlan, resolveConfig } from '@masq/core';
import { tableBytes } from '@masq/core/testing';
import { helpFor } from '../src/help.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const read = (p: string): string => fs.readFileSync(path.join(ROOT, p), 'utf8');

test('bytes per session: every document quotes what tableBytes measures for the default 1,000,000 sessions', (t) => {
  const measure = (over: Record<string, number>): number => {
    const cfg = resolveConfig({ externals: ['198.51.100.100'], partitions: 1, ...over });
    return tableBytes(partitionSizes(cfg), new PortPlan(cfg.portLo, cfg.portHi, cfg.partitions));
  };
  // Per session slot: without the per-host counts (which are per worker, not per session).
  const per = Math.round(measure({ hostSessionLimit: 0, hostPortLimit: 0 }) / 1_000_000);
  // The whole default table, one worker, per-host limits on as by default.
  const total = Math.round(measure({}) / 1e6);
  const quoted: [string, RegExp, number][] = [
    ['README.md', /About (\d+) bytes per session/g, per],
    ['README.md', /take ≈ (\d+) MB/g, total],
    ['docs/CLI.md', /~(\d+) bytes each/g, per],
    ['docs/CONFIG.md', /~(\d+) bytes each/g, per],
    ['masq.toml.sample', /~(\d+) bytes a session/g, per],
    ['packages/core/src/table.ts', /about (\d+) bytes per session slot/g, per],
  ];
  for (const [file, re, want] of quoted) {
    const found = [...read(file).matchAll(re)].map((m) => Number(m[1]));
    t.true(found.length > 0, `${file} quotes it (${String(re)})`);
    for (const n of found) t.is(n, want, `${file}: ${String(re)}`);
  }
  t.regex(helpFor('run') ?? '', new RegExp(`~${per} bytes each`));
});

test('CLI.md shows masq up --dry-run as the command prints it', (t) => {
  const r = spawnSync(process.execPath, [MAIN, 'up', '--lan', 'br-lan', '--tun', 'masq0', '--address', '198.51.100.100', '--wan', 'eth1', '--dry-run'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const doc = read('docs/CLI.md');
  const at = doc.indexOf('$ masq up --lan br-lan --tun masq0 --address 198.51.100.100 --wan eth1 --dry-run\n');
  t.true(at >= 0);
  const block = doc.slice(at).split('\n').slice(1);
  const shown = block.slice(0, block.findIndex((l) => !l.startsWith('+ '))).join('\n') + '\n';
  t.is(shown, r.stdout);
  t.regex(shown, /accept_local=1/);
});

test('masq reload --help names every key a reload reports as needing a restart', (t) => {
  const src = fs.readFileSync(path.join(ROOT, 'packages/cli/src/run.ts'), 'utf8');
  const body = src.slice(src.indexOf('export function restartKeys'), src.indexOf('/** The timers that differ'));
  const keys = [...body.matchAll(/diff\('([a-z_]+)'/g)].map((m) => m[1]!);
  t.true(keys.length >= 16, `keys found: ${keys.join(', ')}`);
  const help = (helpFor('reload') ?? '').replace(/\s+/g, ' ');
  for (const k of keys) t.regex(help, new RegExp(`[ (]${k}[,)]`), k);
});

test('METRICS.md: the worker label is the worker number, ring_depth counts batches, wildcard binding as it is', (t) => {
  const doc = read('docs/METRICS.md');
  t.notRegex(doc, /xlate-/);
  t.regex(doc, /\| `worker` \| the translation worker's number, `0` to workers − 1/);
  const sup = read('packages/workers/src/supervisor.ts');
  t.regex(sup, /workerNames: Array\.from\(\{ length: this\.config\.partitions \}, \(_, i\) => String\(i\)\)/, 'the label the gateway gives');
  const registry = read('packages/metrics/src/registry.ts');
  t.regex(registry, /gauge\('masq_worker_ring_depth', "Batches waiting in the worker's input ring\."/);
  t.regex(doc, /\| `masq_worker_ring_depth` \| gauge \| `worker` \| Batches waiting/);
  t.notRegex(doc, /masq refuses `0\.0\.0\.0`/, 'naming 0.0.0.0 binds every interface (with a warning)');
});

test('the exit-status table of CLI.md has the codes the commands use, and the README says "as root", not sudo', (t) => {
  const doc = read('docs/CLI.md');
  const table = doc.slice(doc.indexOf('## Exit status'), doc.indexOf('Every command parses its arguments strictly'));
  t.deepEqual([...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1])), [0, 1, 2, 3, 130]);
  const readme = read('README.md');
  t.notRegex(readme, /sudo /);
  t.regex(readme, /\.\/scripts\/demo +# as root/);
  t.regex(readme, /\.\/scripts\/test +# as root/);
});
