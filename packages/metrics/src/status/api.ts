/**
 * api.ts — the status page served by the metrics listener: its static files and its two JSON
 * endpoints, answered from the metrics actor's thread.
 *
 * Contract:
 *  - `route(path, params)` answers GET/HEAD requests for
 *        /                         the page (static/index.html)
 *        /static/status.js|.css    the page's script and style (packages/metrics/static)
 *        /static/uPlot.min.js|.css the chart library, uPlot (npm `uplot`, pinned), from the
 *                                  package's own dependency: no CDN, the gateway may be offline
 *        /api/status[?since=T]     counters, gauges, rules and the rate history after time T
 *        /api/sessions?…           one page of the session table (query.ts), never all of it
 *    and returns null for any other path (the server answers 404).
 *  - Read-only: nothing here writes shared memory or talks to the workers; the page has no
 *    action that changes the gateway.
 *  - Every response carries STATUS_HEADERS: a Content-Security-Policy with no 'unsafe-inline'
 *    (scripts and styles only from this origin's files), nosniff, no framing, no referrer.
 *    JSON goes out as application/json; the page inserts every value with textContent, never
 *    as markup.
 *  - A bad query is a 400 with the reason as JSON `{error}`.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { C, MAX_EXTERNALS, PROTO_INDEX_NAMES, TCP_STATE_NAMES, bytesOf, formatRuleTable, packetsSlot, parseRules, sumCounters } from '@masq/core';
import { DROP_REASON_COUNT, DROP_REASON_LABELS } from '@masq/core/drop';

import { DIRECTION_LABELS, MAX_TOP_HOSTS } from '../registry.js';
import type { MetricsSource, TopHost } from '../source.js';
import { RateHistory } from './history.js';
import { QueryError, parseSessionQuery } from './query.js';
import { SharedTables, type TableAccess } from './tables.js';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const STATUS_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

export interface StatusOptions {
  tables: TableAccess;
  /** The rule text in force (comments kept: shown as written, escaped). */
  rulesText: string;
  /** Sampling interval of the rate history (ms). Default 2000. */
  sampleMs?: number;
  /** Points kept per series. Default 150 (5 minutes at 2 s). */
  historyPoints?: number;
}

export interface StatusResponse {
  status: number;
  type: string;
  body: string | Buffer;
}

/** Top hosts are recounted every this many history samples (10 s at the default 2 s). */
export const TOP_HOSTS_EVERY = 5;

const STATIC_DIR = new URL('../../../static/', import.meta.url);
const require = createRequire(import.meta.url);

function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const js = 'text/javascript; charset=utf-8';
  const css = 'text/css; charset=utf-8';
  const file = (name: string): Buffer => readFileSync(new URL(name, STATIC_DIR));
  return new Map([
    ['/', { type: 'text/html; charset=utf-8', body: file('index.html') }],
    ['/static/status.js', { type: js, body: file('status.js') }],
    ['/static/status.css', { type: css, body: file('status.css') }],
    ['/static/favicon.svg', { type: 'image/svg+xml', body: file('favicon.svg') }],
    ['/static/uPlot.min.js', { type: js, body: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js')) }],
    ['/static/uPlot.min.css', { type: css, body: readFileSync(require.resolve('uplot/dist/uPlot.min.css')) }],
  ]);
}

/** The rules as the page shows them: the classic listing, and the text as written. */
export function rulesView(text: string): { listing: string[]; source: string[]; error: string | null } {
  const source = text.split('\n').filter((l) => l.trim() !== '');
  try {
    return { listing: formatRuleTable(parseRules(text)).trimEnd().split('\n'), source, error: null };
  } catch (e) {
    return { listing: [], source, error: e instanceof Error ? e.message : String(e) };
  }
}

export class StatusApi {
  readonly headers = STATUS_HEADERS;
  private readonly assets = loadAssets();
  private readonly tables: SharedTables;
  private readonly history: RateHistory;
  private timer: NodeJS.Timeout | null = null;
  private rules: ReturnType<typeof rulesView>;
  private readonly startedAt = Date.now();

  constructor(
    private readonly source: MetricsSource,
    options: StatusOptions,
  ) {
    this.tables = new SharedTables(options.tables);
    this.history = new RateHistory(source, options.historyPoints ?? 150, options.sampleMs ?? 2000);
    this.rules = rulesView(options.rulesText);
  }

  /**
   * Start sampling the rate history (an unref'd timer on this thread) and, every
   * TOP_HOSTS_EVERY samples, counting the top inside hosts from the tables for `onTopHosts`
   * (the metrics actor feeds `masq_top_host_sessions` with it: no worker is asked).
   */
  start(onTopHosts?: (hosts: TopHost[]) => void): void {
    if (this.timer !== null) return;
    let n = 0;
    const tick = (): void => {
      this.history.sample(Date.now());
      if (onTopHosts !== undefined && n++ % TOP_HOSTS_EVERY === 0) onTopHosts(this.tables.topHosts(MAX_TOP_HOSTS));
    };
    tick();
    this.timer = setInterval(tick, this.history.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  setRules(text: string): void {
    this.rules = rulesView(text);
  }

  /** For tests: take a history sample now. */
  sampleNow(t = Date.now()): void {
    this.history.sample(t);
  }

  route(path: string, params: URLSearchParams): StatusResponse | null {
    const asset = this.assets.get(path);
    if (asset !== undefined) return { status: 200, ...asset };
    try {
      if (path === '/api/status') return json(200, this.status(params));
      if (path === '/api/sessions') return json(200, this.tables.query(parseSessionQuery(params)));
    } catch (e) {
      if (e instanceof QueryError) return json(400, { error: e.message });
      throw e;
    }
    return null;
  }

  private status(params: URLSearchParams): unknown {
    const sinceText = params.get('since') ?? '0';
    if (!/^[0-9]{1,16}(\.[0-9]+)?$/.test(sinceText)) throw new QueryError(`since: "${sinceText}" is not a time in ms`);
    const src = this.source;
    const c = sumCounters(src.partitions());
    const fin = (v: number): number => (Number.isFinite(v) ? v : 0);
    const byProto: Record<string, number> = {};
    for (let p = 0; p < PROTO_INDEX_NAMES.length; p++) byProto[PROTO_INDEX_NAMES[p]!] = fin(c[C.LIVE_BY_PROTO + p]!);
    const tcpStates: Record<string, number> = {};
    for (let s = 0; s < TCP_STATE_NAMES.length; s++) tcpStates[TCP_STATE_NAMES[s]!] = fin(c[C.LIVE_TCP_STATE + s]!);
    const packets: Record<string, Record<string, number>> = {};
    for (let d = 0; d < DIRECTION_LABELS.length; d++) {
      const row: Record<string, number> = {};
      for (let p = 0; p < PROTO_INDEX_NAMES.length; p++) row[PROTO_INDEX_NAMES[p]!] = c[packetsSlot(d, p)]!;
      packets[DIRECTION_LABELS[d]!] = row;
    }
    const drops: Record<string, number> = {};
    for (let r = 1; r < DROP_REASON_COUNT; r++) drops[DROP_REASON_LABELS[r]!] = c[C.DROPS + r]!;
    const portsLimit = fin(src.portsLimitPerAddress());
    const ports = src
      .externals()
      .slice(0, MAX_EXTERNALS)
      .map((address, i) => ({ address, inUse: fin(c[C.PORTS_IN_USE + i]!), limit: portsLimit }));
    const top: readonly TopHost[] = src.topHosts?.() ?? [];
    return {
      now: Date.now(),
      startedAt: this.startedAt,
      sessions: { live: this.tables.live(), limit: fin(src.sessionsLimit()), byProto, tcpStates, mappings: fin(c[C.LIVE_MAPPINGS]!), created: c[C.SESSIONS_CREATED]! },
      packets,
      bytes: { out: bytesOf(c, 0), in: bytesOf(c, 1) },
      drops,
      ports,
      topHosts: [...top].sort((a, b) => b.sessions - a.sessions).slice(0, 10),
      workers: src.workers().map((w) => ({ worker: w.worker, packets: w.packets, batches: w.batches, ringDepth: fin(w.ringDepth), ringCapacity: fin(w.ringCapacity), restarts: w.restarts })),
      io: src.io(),
      rules: this.rules,
      history: this.history.since(Number(sinceText)),
    };
  }
}

function json(status: number, value: unknown): StatusResponse {
  return { status, type: 'application/json; charset=utf-8', body: JSON.stringify(value) };
}
