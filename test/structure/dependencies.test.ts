/**
 * dependencies.test.ts — the package design's one-way dependencies, checked on the sources:
 *
 *   cli → workers → core, tun;  cli → metrics → workers (layout only), core
 *   core/wire/  imports nothing outside wire/ (smoltcp's and gVisor's header packages)
 *   core        imports nothing outside core (no package at all: no I/O, no metrics)
 *   workers     does not import metrics (the CLI composes the metrics actor in)
 *   metrics     does not import cli
 *   tun         does not import core (it keeps its own small address parser)
 *   core/translate/ reaches the session table only through its functions (STYLE rule 8): no
 *               record offset (R_*, REC, REC_F, F_*, HI_N) imported, no raw column (`.cols`)
 *   every package's package.json `exports` lists its entries by name (no `./*`), and nothing
 *               outside a package imports a path of it that is not listed: the rest is internal
 *   @masq/core's main entry leaves out the test harness (nat.ts: `@masq/core/testing`), and
 *               no package source imports @masq/core/testing
 *
 * Every `import … from`, `export … from`, `import '…'` and `import('…')` with a string literal
 * in packages/<name>/src is read (type-only imports count too: they are still a dependency of
 * the source), and each package.json's dependencies must agree. A failure names the file,
 * the line and the import.
 */
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { REPO } from '../src/gateway/start.js';

interface Import {
  file: string;
  line: number;
  spec: string;
}

// The third form is the last line of an import or export list written over several lines.
const IMPORT_RE = /(?:^|[;\s}])(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|^\s*\}\s*from\s+['"]([^'"]+)['"]/g;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'dist' && e.name !== 'node_modules') out.push(...sources(p));
    }
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every import specifier of package `pkg`'s sources (packages/<pkg>/src). */
function importsOf(pkg: string): Import[] {
  return importsIn(path.join(REPO, 'packages', pkg, 'src'));
}

/** Every import specifier of the TypeScript sources under `dir`. */
function importsIn(dir: string): Import[] {
  const out: Import[] = [];
  for (const file of sources(dir)) {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((text, i) => {
      // Comment lines quote imports in prose; code never starts with these.
      if (/^\s*(\*|\/\/|\/\*)/.test(text)) return;
      for (const m of text.matchAll(IMPORT_RE)) out.push({ file: path.relative(REPO, file), line: i + 1, spec: (m[1] ?? m[2] ?? m[3])! });
    });
  }
  return out;
}

const where = (i: Import): string => `${i.file}:${i.line} imports '${i.spec}'`;
const isPackage = (spec: string): boolean => !spec.startsWith('.');
const masqPackage = (spec: string): string | null => /^@masq\/([^/]+)/.exec(spec)?.[1] ?? null;

function dependenciesOf(pkg: string): string[] {
  const j = JSON.parse(fs.readFileSync(path.join(REPO, 'packages', pkg, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  return Object.keys(j.dependencies ?? {});
}

test('core/wire imports nothing outside wire/', (t) => {
  const wire = path.join('packages', 'core', 'src', 'wire');
  const bad = importsOf('core')
    .filter((i) => i.file.startsWith(wire + path.sep))
    .filter((i) => isPackage(i.spec) || !path.join(path.dirname(i.file), i.spec).startsWith(wire + path.sep));
  t.deepEqual(bad.map(where), []);
});

/** The names a file imports from a module whose specifier ends with `from` (value and type). */
function namesImported(file: string, from: string): { name: string; line: number }[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: { name: string; line: number }[] = [];
  for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"]([^'"]+)['"]/g)) {
    if (!m[2]!.endsWith(from)) continue;
    const line = text.slice(0, m.index).split('\n').length;
    for (const n of m[1]!.split(',')) {
      const name = n.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!;
      if (name !== '') out.push({ name, line });
    }
  }
  return out;
}

test('core/translate/ reaches the session table through its functions: no record offset, no raw column', (t) => {
  const dir = path.join(REPO, 'packages', 'core', 'src', 'translate');
  const files = sources(dir);
  const bad: string[] = [];
  for (const file of files) {
    const rel = path.relative(REPO, file);
    for (const { name, line } of namesImported(file, '/table.js')) {
      if (/^(R_|REC$|REC_F$|F_|HI_N$)/.test(name)) bad.push(`${rel}:${line} imports the record offset ${name} from the table`);
    }
    fs.readFileSync(file, 'utf8').split('\n').forEach((text, i) => {
      if (/^\s*(\*|\/\/|\/\*)/.test(text)) return;
      if (/\.cols\b/.test(text)) bad.push(`${rel}:${i + 1} reads the table's raw columns (.cols)`);
    });
  }
  t.deepEqual(bad, []);
  // The scanner sees table imports at all (a guard against a broken pattern).
  t.true(files.some((f) => namesImported(f, '/table.js').some((n) => n.name === 'SF_HAIRPIN')));
});

test('core imports no other package (not even a Node built-in: no I/O)', (t) => {
  t.deepEqual(importsOf('core').filter((i) => isPackage(i.spec)).map(where), []);
  t.deepEqual(dependenciesOf('core'), []);
});

test('workers does not import metrics', (t) => {
  t.deepEqual(importsOf('workers').filter((i) => masqPackage(i.spec) === 'metrics').map(where), []);
  t.false(dependenciesOf('workers').includes('@masq/metrics'), 'workers/package.json lists @masq/metrics');
});

test('metrics does not import cli', (t) => {
  t.deepEqual(importsOf('metrics').filter((i) => masqPackage(i.spec) === 'cli').map(where), []);
  t.false(dependenciesOf('metrics').includes('@masq/cli'), 'metrics/package.json lists @masq/cli');
});

test('tun does not import core', (t) => {
  t.deepEqual(importsOf('tun').filter((i) => masqPackage(i.spec) === 'core').map(where), []);
  t.false(dependenciesOf('tun').includes('@masq/core'), 'tun/package.json lists @masq/core');
});

test('no package imports a masq package its package.json does not list, and none imports cli', (t) => {
  const bad: string[] = [];
  for (const pkg of ['core', 'tun', 'workers', 'metrics', 'cli']) {
    const deps = dependenciesOf(pkg);
    for (const i of importsOf(pkg)) {
      const m = masqPackage(i.spec);
      if (m === null || m === pkg) continue;
      if (m === 'cli') bad.push(`${where(i)}: nothing depends on the CLI`);
      else if (!deps.includes(`@masq/${m}`)) bad.push(`${where(i)}: not in packages/${pkg}/package.json`);
    }
  }
  t.deepEqual(bad, []);
});

const PACKAGES = ['core', 'tun', 'workers', 'metrics', 'cli'];

function exportsOf(pkg: string): string[] {
  const j = JSON.parse(fs.readFileSync(path.join(REPO, 'packages', pkg, 'package.json'), 'utf8')) as { exports?: Record<string, string> };
  return Object.keys(j.exports ?? {});
}

/** Imports of masq packages in every source outside the package itself: other packages' src, test and bench, and test/. */
function importsFromOutside(): { pkg: string; sub: string; i: Import }[] {
  const dirs = [path.join(REPO, 'test'), ...PACKAGES.flatMap((p) => ['src', 'test', 'bench', 'fuzz'].map((d) => path.join(REPO, 'packages', p, d)))].filter((d) => fs.existsSync(d));
  const out: { pkg: string; sub: string; i: Import }[] = [];
  for (const d of dirs) {
    for (const i of importsIn(d)) {
      const m = /^@masq\/([^/]+)(\/.*)?$/.exec(i.spec);
      if (m === null || i.file.startsWith(path.join('packages', m[1]!) + path.sep)) continue;
      out.push({ pkg: m[1]!, sub: m[2] === undefined ? '.' : `.${m[2]}`, i });
    }
  }
  return out;
}

test('every package exports its entries by name, and nothing outside it imports a path it does not export', (t) => {
  for (const pkg of PACKAGES) t.deepEqual(exportsOf(pkg).filter((k) => k.includes('*')), [], `packages/${pkg}/package.json exports a wildcard`);
  const seen = importsFromOutside();
  const bad = seen.filter(({ pkg, sub }) => !exportsOf(pkg).includes(sub)).map(({ pkg, i }) => `${where(i)}: not in packages/${pkg}/package.json exports`);
  t.deepEqual(bad, []);
  // The scanner sees subpath imports from tests too (a guard against a broken pattern).
  t.true(seen.some(({ sub, i }) => sub === './testing' && i.file.startsWith('packages' + path.sep + 'workers' + path.sep + 'test')));
});

test('@masq/core leaves the test harness out of its main entry; no package source imports @masq/core/testing', async (t) => {
  const core = (await import('@masq/core')) as Record<string, unknown>;
  const testing = (await import('@masq/core/testing')) as Record<string, unknown>;
  t.is(typeof testing.Nat, 'function');
  t.false('Nat' in core, '@masq/core exports the harness Nat (nat.ts)');
  t.false(importsOf('core').some((i) => i.file === path.join('packages', 'core', 'src', 'index.ts') && i.spec === './nat.js'), 'core index.ts exports from nat.ts');
  const bad = PACKAGES.flatMap((p) => importsOf(p)).filter((i) => i.spec === '@masq/core/testing' || (i.file.startsWith(path.join('packages', 'core', 'src')) && i.spec.endsWith('/testing.js')));
  t.deepEqual(bad.map(where), []);
});

test('the scanner sees the imports it checks (a guard against a broken pattern)', (t) => {
  const cli = importsOf('cli').map((i) => i.spec);
  t.true(cli.includes('@masq/workers'), 'cli imports @masq/workers');
  t.true(cli.includes('@masq/metrics/server'), 'cli imports @masq/metrics/server');
  t.true(importsOf('core').some((i) => i.file.endsWith(path.join('wire', 'print.ts')) && i.spec === './ipv4.js'));
  t.true(importsOf('workers').some((i) => i.spec === '@masq/core'));
  // A list over several lines (`} from '@masq/core';`, run.ts) is seen too.
  t.true(importsOf('cli').some((i) => i.file.endsWith('run.ts') && i.spec === '@masq/core'));
});
