/**
 * status.test.ts — the status page's data endpoints over a real translation core: sessions
 * made by real packets through `Nat` (two partitions, tables in SharedArrayBuffers), read by
 * the status API the way the metrics actor reads them. Covers the JSON shape of /api/status
 * and its rate history, paging and every filter of /api/sessions, bad queries (400 naming the
 * parameter), the security headers on every route, markup in a rule comment coming back as
 * text, and the page's files (no inline script or style, no markup insertion). The browser
 * end of it is test/e2e/status-page.test.ts.
 */
import { readFileSync } from 'node:fs';

import test from 'ava';
import { TCP_STATE_NAMES, countersOf, formatRuleTable, parseRules } from '@masq/core';
import { Nat } from '@masq/core/testing';
import { Registry } from 'prom-client';

import { sharedMemorySource } from '../src/actor.js';
import { createMasqRegistry } from '../src/registry.js';
import { startMetricsServer } from '../src/server.js';
import { CONTENT_SECURITY_POLICY, StatusApi, rulesView } from '../src/status/api.js';
import { MAX_PAGE, parseEndpoint } from '../src/status/query.js';
import { makeInit, REPO_ROOT } from './helpers.js';

const EXT = '198.51.100.100';
const HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script>';
const RULES = `masquerade all from 10.0.0.0/16 to any   # lab "${HOSTILE}" & co\naccept tcp from 10.0.9.0/24 to 192.0.2.0/24 22`;

function ip(a: string): number[] {
  return a.split('.').map(Number);
}

/** A minimal IPv4 packet (header checksum filled; UDP checksum 0 = none, RFC 768). */
function packet(proto: number, src: string, dst: string, l4: number[]): Uint8Array {
  const len = 20 + l4.length;
  const p = new Uint8Array(len);
  p.set([0x45, 0, len >> 8, len & 255, 0x12, 0x34, 0, 0, 64, proto, 0, 0, ...ip(src), ...ip(dst)]);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const ck = ~sum & 0xffff;
  p[10] = ck >> 8;
  p[11] = ck & 255;
  p.set(l4, 20);
  return p;
}

function udp(src: string, sport: number, dst: string, dport: number): Uint8Array {
  return packet(17, src, dst, [sport >> 8, sport & 255, dport >> 8, dport & 255, 0, 8, 0, 0]);
}

/** A TCP SYN with a correct checksum (pseudo-header included). */
function syn(src: string, sport: number, dst: string, dport: number): Uint8Array {
  const l4 = [sport >> 8, sport & 255, dport >> 8, dport & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
  let sum = 6 + 20;
  for (const a of [...ip(src), ...ip(dst)].reduce<number[]>((w, b, i, all) => (i % 2 ? w : [...w, (b << 8) | all[i + 1]!]), [])) sum += a;
  for (let i = 0; i < 20; i += 2) sum += (l4[i]! << 8) | l4[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const ck = ~sum & 0xffff;
  l4[16] = ck >> 8;
  l4[17] = ck & 255;
  return packet(6, src, dst, l4);
}

interface Fixture {
  nat: Nat;
  api: StatusApi;
  now: number;
}

/**
 * 2 partitions; 10.0.0.2 sends 600 UDP flows (ports 20000+) to 203.0.113.7:53, 10.0.1.5 sends
 * 300 to 203.0.113.8:4500, 10.0.0.3 opens 5 TCP connections (SYN only) to 192.0.2.10:443.
 */
function fixture(): Fixture {
  const now = 1_000_000;
  const nat = new Nat({ externals: [EXT], partitions: 2, maxSessions: 4096, rules: RULES });
  for (let i = 0; i < 600; i++) nat.process(...bytes(udp('10.0.0.2', 20000 + i, '203.0.113.7', 53)), now);
  for (let i = 0; i < 300; i++) nat.process(...bytes(udp('10.0.1.5', 30000 + i, '203.0.113.8', 4500)), now);
  for (let i = 0; i < 5; i++) nat.process(...bytes(syn('10.0.0.3', 40000 + i, '192.0.2.10', 443)), now);
  const buffers = nat.partitions.map((p) => p.table.memory.buffer);
  const init = makeInit({ partitions: buffers.map(countersOf), externals: [EXT], sessionsLimit: 4096, portsLimitPerAddress: nat.config.portHi - nat.config.portLo + 1 });
  const source = sharedMemorySource(init);
  source.setTopHosts([{ host: '10.0.0.2', sessions: 600 }, { host: '10.0.1.5', sessions: 300 }]);
  const api = new StatusApi(source, {
    tables: { buffers, sizes: nat.partitions[0]!.table.memory.sizes, portLo: nat.config.portLo, portHi: nat.config.portHi },
    rulesText: RULES,
  });
  return { nat, api, now };
}

function bytes(p: Uint8Array): [Uint8Array, number, number] {
  return [p, 0, p.length];
}

interface Page {
  live: number;
  matched: number;
  offset: number;
  limit: number;
  rows: { partition: number; id: number; proto: string; inside: string; insidePort: number; external: string; externalPort: number; remote: string; remotePort: number; state: string; packetsOut: number }[];
}

function get(api: StatusApi, path: string, query = ''): { status: number; type: string; json: unknown } {
  const r = api.route(path, new URLSearchParams(query));
  if (r === null) throw new Error(`${path}: not routed`);
  return { status: r.status, type: r.type, json: r.type.startsWith('application/json') ? JSON.parse(String(r.body)) : null };
}

const page = (api: StatusApi, query: string): Page => {
  const r = get(api, '/api/sessions', query);
  if (r.status !== 200) throw new Error(`${query}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json as Page;
};

test('/api/sessions pages through the table: disjoint pages of at most `limit` rows cover every session once', (t) => {
  const { api } = fixture();
  const seen = new Set<string>();
  let pages = 0;
  for (let offset = 0; ; offset += 100) {
    const p = page(api, `limit=100&offset=${offset}`);
    t.is(p.live, 905);
    t.is(p.matched, 905);
    t.true(p.rows.length <= 100);
    if (p.rows.length === 0) break;
    pages++;
    for (const r of p.rows) {
      const k = `${r.partition}/${r.id}`;
      t.false(seen.has(k), `row ${k} on two pages`);
      seen.add(k);
    }
  }
  t.is(pages, 10);
  t.is(seen.size, 905);
  // The default page is 50 rows; the largest MAX_PAGE; beyond that, 400.
  t.is(page(api, '').rows.length, 50);
  t.is(page(api, `limit=${MAX_PAGE}`).rows.length, MAX_PAGE);
  const tooMany = get(api, '/api/sessions', `limit=${MAX_PAGE + 1}`);
  t.is(tooMany.status, 400);
  t.regex((tooMany.json as { error: string }).error, /^limit: "501" is not a whole number from 1 to 500/);
});

test('/api/sessions filters by protocol, state, inside and outside endpoint and port', (t) => {
  const { api } = fixture();
  const all = (q: string): Page['rows'] => {
    const p = page(api, `${q}&limit=500`);
    const rows = [...p.rows];
    for (let off = 500; off < p.matched; off += 500) rows.push(...page(api, `${q}&limit=500&offset=${off}`).rows);
    t.is(rows.length, p.matched, q);
    return rows;
  };
  const tcp = all('proto=tcp');
  t.is(tcp.length, 5);
  t.true(tcp.every((r) => r.proto === 'tcp' && r.inside === '10.0.0.3' && r.remotePort === 443 && r.state === 'syn_sent'));
  t.is(all('state=syn_sent').length, 5);
  t.is(all('state=established').length, 0);
  t.is(all('state=active').length, 900);
  t.is(all('proto=udp').length, 900);
  t.is(all('proto=icmp').length, 0);

  const a = all('inside=10.0.0.2');
  t.is(a.length, 600);
  t.true(a.every((r) => r.inside === '10.0.0.2' && r.remote === '203.0.113.7' && r.external === EXT));
  t.is(all('inside=10.0.1.').length, 300, 'an octet prefix');
  t.is(all('inside=10.0.1').length, 300, 'an octet prefix without the dot');
  t.is(all('inside=10.0.0.0/24').length, 605, 'a CIDR');
  t.is(all('inside=10.0.0.2:20007').length, 1, 'address and port');
  t.is(all('inside=:20007').length, 1, 'a port alone');
  t.is(all('outside=203.0.113.8').length, 300, 'outside matches the remote');
  t.is(all(`outside=${EXT}`).length, 905, 'outside matches the external address');
  const one = all('outside=203.0.113.8&inside=10.0.1.5:30042');
  t.is(one.length, 1);
  t.is(one[0]!.insidePort, 30042);
  t.is(all(`port=${one[0]!.externalPort}`).filter((r) => r.insidePort === 30042).length, 1, 'port matches the external port');
  // (Exactly the 300 remote-port rows, plus any session whose random external port is 4500.)
  const p4500 = all('port=4500');
  t.is(p4500.filter((r) => r.remotePort === 4500).length, 300, 'port matches the remote port');
  t.true(p4500.every((r) => r.remotePort === 4500 || r.externalPort === 4500 || r.insidePort === 4500), 'and nothing without the port');
  t.is(all('proto=tcp&inside=10.0.0.2').length, 0, 'filters combine');
});

test('/api/sessions refuses bad queries with 400 and a message naming the parameter', (t) => {
  const { api } = fixture();
  for (const [q, re] of [
    ['proto=sctp', /^proto: "sctp" is not one of tcp, udp, icmp$/],
    ['state=open', /^state: "open" is not one of none, syn_sent/],
    ['proto=udp&state=established', /^state: "established" is a TCP state, but proto is not tcp$/],
    ['inside=10.0.0.256', /^inside: "10.0.0.256" is not an address/],
    ['inside=<b>x', /^inside: "<b>x" is not an address/],
    ['outside=10.0.0.0/33', /^outside: prefix length "\/33" is not 0-32/],
    ['outside=10.0/8', /^outside: "10.0\/8": write all four octets before \/n/],
    ['port=65536', /^port: port "65536" is not a number from 0 to 65535$/],
    ['offset=-1', /^offset: "-1" is not a whole number/],
  ] as const) {
    const r = get(api, '/api/sessions', q);
    t.is(r.status, 400, q);
    t.is(r.type, 'application/json; charset=utf-8');
    t.regex((r.json as { error: string }).error, re, q);
  }
  t.deepEqual(parseEndpoint('10.1.', 'x'), { addr: (10 << 24) | (1 << 16), mask: 0xffff0000, port: -1 });
});

test('/api/status: sessions by protocol and state against the limit, ports per address, workers, top hosts, rules, rate history', (t) => {
  const { api, nat, now } = fixture();
  api.sampleNow(10_000);
  // 40 more UDP packets on existing flows, 2 s later: 20 packets/s out.
  for (let i = 0; i < 40; i++) nat.process(...bytes(udp('10.0.0.2', 20000 + i, '203.0.113.7', 53)), now + 1);
  api.sampleNow(12_000);
  const s = get(api, '/api/status').json as {
    sessions: { live: number; limit: number; byProto: Record<string, number>; tcpStates: Record<string, number>; mappings: number };
    packets: { out: Record<string, number> };
    ports: { address: string; inUse: number; limit: number }[];
    workers: { worker: string }[];
    topHosts: { host: string; sessions: number }[];
    rules: { listing: string[]; source: string[]; error: string | null };
    history: { t: number[]; series: Record<string, number[]> };
    drops: Record<string, number>;
  };
  t.deepEqual(s.sessions.byProto, { tcp: 5, udp: 900, icmp: 0, other: 0 });
  t.is(s.sessions.live, 905);
  t.is(s.sessions.limit, 4096);
  t.deepEqual(Object.keys(s.sessions.tcpStates), [...TCP_STATE_NAMES]);
  t.is(s.sessions.tcpStates['syn_sent'], 5);
  t.is(s.packets.out['udp'], 940);
  t.deepEqual(s.ports, [{ address: EXT, inUse: 905, limit: 64512 }]);
  t.deepEqual(s.workers.map((w) => w.worker), ['xlate-0', 'xlate-1']);
  t.deepEqual(s.topHosts[0], { host: '10.0.0.2', sessions: 600 });
  t.deepEqual(s.rules.listing, formatRuleTable(parseRules(RULES)).trimEnd().split('\n'));
  t.is(s.rules.error, null);
  t.true(s.rules.source[0]!.includes(HOSTILE), 'the comment comes back as written (as text: the page sets textContent)');
  t.deepEqual(s.history.t, [12_000]);
  t.deepEqual(s.history.series['packets.out.udp'], [20]);
  t.deepEqual(s.history.series['packets.in.udp'], [0]);
  t.deepEqual(s.history.series['bytes.out.udp'], [20 * 28], 'bytes/s by protocol: 20 UDP packets/s of 28 bytes');
  t.deepEqual(s.history.series['bytes.out.tcp'], [0]);
  t.deepEqual(s.history.series['bytes.in.udp'], [0]);
  t.true('drops.no_mapping' in s.history.series);
  // since= returns only what the page has not seen.
  t.deepEqual((get(api, '/api/status', 'since=12000').json as { history: { t: number[] } }).history.t, []);
  t.is(get(api, '/api/status', 'since=<x>').status, 400);
  t.deepEqual(rulesView('masquerade bogus').listing, []);
  t.regex(rulesView('masquerade bogus').error ?? '', /./);
});

test('the top inside hosts are counted from the shared tables (no worker asked), most first, at start and every TOP_HOSTS_EVERY samples', (t) => {
  const { api } = fixture();
  const got: { host: string; sessions: number }[][] = [];
  api.start((hosts) => got.push(hosts));
  api.stop();
  t.deepEqual(got, [
    [
      { host: '10.0.0.2', sessions: 600 },
      { host: '10.0.1.5', sessions: 300 },
      { host: '10.0.0.3', sessions: 5 },
    ],
  ]);
});

test('every status route carries the CSP (no unsafe-inline), nosniff and no framing; /metrics is unchanged', async (t) => {
  const { api } = fixture();
  const registry = createMasqRegistry(sharedMemorySource(makeInit()), { collectProcess: false });
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry, status: api });
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${server.address.port}`;
  t.false(CONTENT_SECURITY_POLICY.includes('unsafe'));
  t.regex(CONTENT_SECURITY_POLICY, /script-src 'self'/);
  t.regex(CONTENT_SECURITY_POLICY, /default-src 'none'/);
  for (const [path, type] of [
    ['/', 'text/html; charset=utf-8'],
    ['/static/status.js', 'text/javascript; charset=utf-8'],
    ['/static/status.css', 'text/css; charset=utf-8'],
    ['/static/uPlot.min.js', 'text/javascript; charset=utf-8'],
    ['/static/uPlot.min.css', 'text/css; charset=utf-8'],
    ['/api/status', 'application/json; charset=utf-8'],
    ['/api/sessions?inside=10.0.0.2', 'application/json; charset=utf-8'],
    ['/api/sessions?proto=bogus', 'application/json; charset=utf-8'],
  ] as const) {
    const res = await fetch(base + path);
    await res.arrayBuffer();
    t.is(res.status, path.includes('bogus') ? 400 : 200, path);
    t.is(res.headers.get('content-type'), type, path);
    t.is(res.headers.get('content-security-policy'), CONTENT_SECURITY_POLICY, path);
    t.is(res.headers.get('x-content-type-options'), 'nosniff', path);
    t.is(res.headers.get('x-frame-options'), 'DENY', path);
  }
  const m = await fetch(`${base}/metrics`);
  t.is(m.headers.get('content-type'), Registry.PROMETHEUS_CONTENT_TYPE);
  t.is(m.headers.get('content-security-policy'), null);
  await m.text();
  t.is((await fetch(`${base}/api/nope`)).status, 404);
  t.is((await fetch(`${base}/static/../package.json`)).status, 404);
  t.is((await fetch(`${base}/api/status`, { method: 'POST' })).status, 405, 'read-only: GET and HEAD only');
  const head = await fetch(`${base}/`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(await head.text(), '');
});

test("the page's files: no inline script or style, no markup insertion; uPlot pinned and served from the package", (t) => {
  const html = readFileSync(`${REPO_ROOT}packages/metrics/static/index.html`, 'utf8');
  const js = readFileSync(`${REPO_ROOT}packages/metrics/static/status.js`, 'utf8');
  for (const m of html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)) {
    t.regex(m[0], /\bsrc="\/static\/[A-Za-z.]+\.js"/, 'every script is a file');
    t.is(m[1], '', 'no inline script');
  }
  t.notRegex(html, /<style\b/i, 'no <style> element');
  t.notRegex(html, /\sstyle=/i, 'no style attribute');
  t.notRegex(html, /\son[a-z]+=/i, 'no inline event handler');
  t.notRegex(html, /https?:\/\/(?!127\.0\.0\.1)/, 'nothing from another origin');
  for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function', 'setAttribute(\'style']) {
    t.false(js.includes(sink), `status.js uses ${sink}`);
  }
  const pkg = JSON.parse(readFileSync(`${REPO_ROOT}packages/metrics/package.json`, 'utf8')) as { dependencies: Record<string, string> };
  t.regex(pkg.dependencies['uplot'] ?? '', /^\d+\.\d+\.\d+$/, 'uplot pinned to one version');
  const { api } = fixture();
  const lib = api.route('/static/uPlot.min.js', new URLSearchParams());
  t.truthy(lib);
  t.regex(String(lib!.body).slice(0, 400), /uPlot/);
});
