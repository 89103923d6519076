/**
 * tables.ts — the status page's one way into the gateway's state: read-only views over the
 * partitions' session tables (the SharedArrayBuffers the translation workers own) and over
 * the shared clock. Everything the page shows about sessions comes through here, so a change
 * of the shared-memory layout touches this file only.
 *
 * Contract:
 *  - Never writes a table (only the owner writes: house rule 9). The views are built with the
 *    table module's own constructor over the existing buffers; reads race with the owner, as
 *    `listSessions` documents: a row may be torn while its owner writes it, and a session may
 *    be freed between the liveness test and the read. The page tolerates both (a row that
 *    changes under the scan shows its newer or older value, never a crash).
 *  - Costs the packet path no work at all: the scan runs on the metrics actor's thread, not on
 *    a translation worker (the control plane's `list` would run on the worker, between its
 *    batches). What it does cost is CPU time on a shared machine and cache lines pulled into
 *    another core; docs/STATUS.md has the measured figure.
 *  - `topHosts(n)` counts live sessions per inside address over every partition (one scan, a
 *    Map of at most one entry per inside host) and returns the n largest, most first.
 *  - `query(q)` scans every partition's ids 1..sessionHigh once, counts the sessions that match
 *    `q` and returns only the rows of the page [offset, offset + limit): the browser never gets
 *    the whole table. Order: partition, then session id (stable while sessions live).
 */
import { PortPlan, SessionTable, formatIPv4, sessionRow, type SessionRow, type TableSizes } from '@masq/core';

import { STATE_ACTIVE, matchesEndpoint, type SessionQuery } from './query.js';

/** What the gateway hands the metrics actor so that it can read the tables. */
export interface TableAccess {
  /** One buffer per partition, index = partition. */
  buffers: readonly SharedArrayBuffer[];
  sizes: TableSizes;
  portLo: number;
  portHi: number;
  /** The gateway clock (Float64Array[1], ms, written by the timer actor); absent: own clock. */
  clock?: SharedArrayBuffer;
}

export interface StatusSessionRow extends SessionRow {
  partition: number;
}

export interface SessionPage {
  /** Live sessions in every partition. */
  live: number;
  /** Sessions that match the query. */
  matched: number;
  offset: number;
  limit: number;
  rows: StatusSessionRow[];
  /** Milliseconds the scan took on the metrics thread. */
  scanMs: number;
}

/** Throw an Error naming what is wrong with `a`. */
export function validateTableAccess(a: TableAccess): void {
  if (typeof a !== 'object' || a === null) throw new Error('tables: missing');
  if (!Array.isArray(a.buffers) || !a.buffers.every((b) => b instanceof SharedArrayBuffer)) throw new Error('tables.buffers: not an array of SharedArrayBuffers');
  if (typeof a.sizes !== 'object' || a.sizes === null) throw new Error('tables.sizes: missing');
  if (!Number.isInteger(a.portLo) || !Number.isInteger(a.portHi) || a.portLo > a.portHi) throw new Error('tables: portLo..portHi is not a port range');
  if (a.clock !== undefined && !(a.clock instanceof SharedArrayBuffer)) throw new Error('tables.clock: not a SharedArrayBuffer');
}

export class SharedTables {
  private readonly tables: SessionTable[];
  private readonly clock: Float64Array | null;

  constructor(access: TableAccess) {
    validateTableAccess(access);
    const plan = new PortPlan(access.portLo, access.portHi, access.buffers.length);
    this.tables = access.buffers.map((b) => new SessionTable(access.sizes, plan, b));
    this.clock = access.clock ? new Float64Array(access.clock) : null;
  }

  /** The gateway's "now" in ms (the timer actor's clock when shared). */
  now(): number {
    const c = this.clock?.[0];
    return c !== undefined && c > 0 ? c : performance.timeOrigin + performance.now();
  }

  /** Live sessions in every partition. */
  live(): number {
    let n = 0;
    for (const t of this.tables) n += t.sessionCount;
    return n;
  }

  /** The `n` inside hosts with the most live sessions, most first (ties: lower address first). */
  topHosts(n: number): { host: string; sessions: number }[] {
    const counts = new Map<number, number>();
    for (const t of this.tables) {
      const high = Math.min(t.sessionHigh, t.capacity);
      for (let sid = 1; sid < high; sid++) {
        if (!t.isLive(sid)) continue;
        const a = t.sIn(sid);
        counts.set(a, (counts.get(a) ?? 0) + 1);
      }
    }
    return [...counts]
      .sort((x, y) => y[1] - x[1] || x[0] - y[0])
      .slice(0, n)
      .map(([a, k]) => ({ host: formatIPv4(a), sessions: k }));
  }

  query(q: SessionQuery): SessionPage {
    const t0 = performance.now();
    const now = this.now();
    const rows: StatusSessionRow[] = [];
    const end = q.offset + q.limit;
    let matched = 0;
    for (let p = 0; p < this.tables.length; p++) {
      const t = this.tables[p]!;
      const high = Math.min(t.sessionHigh, t.capacity);
      for (let sid = 1; sid < high; sid++) {
        if (!t.isLive(sid) || !matches(t, sid, q)) continue;
        if (matched >= q.offset && matched < end) {
          const r = sessionRow(t, sid, now) as StatusSessionRow;
          r.partition = p;
          rows.push(r);
        }
        matched++;
      }
    }
    return { live: this.live(), matched, offset: q.offset, limit: q.limit, rows, scanMs: performance.now() - t0 };
  }
}

function matches(t: SessionTable, sid: number, q: SessionQuery): boolean {
  const proto = t.sProto(sid);
  if (proto === 0) return false; // freed under the scan
  if (q.proto !== 0 && proto !== q.proto) return false;
  if (q.state === STATE_ACTIVE ? proto === 6 : q.state >= 0 && t.sState(sid) !== q.state) return false;
  if (q.port >= 0 && t.sInPort(sid) !== q.port && t.sExtPort(sid) !== q.port && t.sRemPort(sid) !== q.port) return false;
  if (q.inside !== null && !matchesEndpoint(q.inside, t.sIn(sid), t.sInPort(sid))) return false;
  if (q.outside !== null && !matchesEndpoint(q.outside, t.sExt(sid), t.sExtPort(sid)) && !matchesEndpoint(q.outside, t.sRem(sid), t.sRemPort(sid))) return false;
  return true;
}
