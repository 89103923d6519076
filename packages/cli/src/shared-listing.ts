/**
 * shared-listing.ts — the masquerade table for the control socket (`masq table`, `table
 * delete`, `masq events`), read from shared memory on the gateway's main thread, never by a
 * translation worker.
 *
 * Why: a worker serves control-plane calls between its packet batches, so a listing it built
 * (the partitions' comlink `list`) held its packets for as long as the rows took: at 100,000
 * sessions forwarding stalled for seconds. The tables are SharedArrayBuffers (layout.ts), so
 * the main thread reads them itself, as the status page does on the metrics thread
 * (packages/metrics/src/status/tables.ts).
 *
 * Contract:
 *  - Never writes a table (one writer per partition: its worker). The views are core's own
 *    `SessionTable` over the gateway's buffers; reads race with the owner as `listSessions`
 *    documents (a row may be torn while its owner writes it; a session freed under the scan
 *    is skipped or shows its last values). Each row is core's `sessionRow`, filtered by core's
 *    `sessionMatches`, timed by the gateway's shared clock: the same rows, fields and order
 *    (partition, then session id) the workers' `list` gave.
 *  - Bounded steps: the scan covers at most `STEP_IDS` session ids, then yields to the event
 *    loop (setImmediate), so other control requests, signals and the supervisor's messages are
 *    served while a large table is listed.
 *  - `filter.limit` caps the rows of the whole listing (all partitions together).
 *  - `events()` is `masq events`' sampler (events.ts EventSource): it keeps, per partition
 *    and session id, a copy of the columns that name a session (addresses, ports, protocol),
 *    its TCP state and its time left, and each sample compares the table with that copy id by
 *    id, in the same bounded steps. Rows are made only for the sessions that changed; the
 *    events are those `diffSessions` finds between two whole listings (same keys: id and
 *    endpoints; same order: new and updated by partition and id, then the destroyed).
 */
import type { Gateway } from '@masq/workers';
import { PortPlan, SessionTable, formatIPv4, protoName, sessionMatches, sessionRow, stateName, type SessionFilter, type SessionRow } from '@masq/core';
import { eventOf, type EventSession, type EventSource, type SessionEvent } from './events.js';

/** Session ids scanned between two yields to the event loop. */
export const STEP_IDS = 8192;

const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** What the reader needs of a gateway (the Gateway itself, or a test's stand-in). */
export type TableSource = Pick<Gateway, 'tables' | 'tableSizes' | 'config' | 'memory'>;

/** A source of session rows: the shared-memory reader, or a test's stand-in. */
export interface SessionLister {
  list(f?: SessionFilter): Promise<SessionRow[]>;
  /** `masq events`' sampler over this table, where the lister has a cheaper one than diffing listings. */
  events?(): EventSource;
}

/** Words per session id in a sample's copy: inside, remote, external, ports, extPort|proto|state. */
const W = 5;

/** One partition as the last sample saw it, by session id. */
interface Seen {
  live: Uint8Array;
  words: Uint32Array;
  /** ms the session's timer had left at that sample. */
  left: Float64Array;
  /** No id from here on was live at that sample. */
  top: number;
}

/** A session's endpoints and state from a sample's copy (a destroyed session has no row any more). */
function seenSession(w: Uint32Array, o: number): EventSession {
  const ep = w[o + 4]!;
  const p = (ep >>> 8) & 0xff;
  return {
    proto: protoName(p),
    inside: formatIPv4(w[o]!),
    insidePort: w[o + 3]! >>> 16,
    external: formatIPv4(w[o + 2]!),
    externalPort: ep >>> 16,
    remote: formatIPv4(w[o + 1]!),
    remotePort: w[o + 3]! & 0xffff,
    state: stateName(p, ep & 0xff),
  };
}

export class SharedListing implements SessionLister {
  private views: { tables: SessionTable[]; clock: Float64Array } | null = null;

  /** The views are made at the first listing (a gateway's buffers never change). */
  constructor(private readonly gw: TableSource) {}

  private open(): { tables: SessionTable[]; clock: Float64Array } {
    if (this.views === null) {
      const gw = this.gw;
      const plan = new PortPlan(gw.config.portLo, gw.config.portHi, gw.tables.length);
      this.views = { tables: gw.tables.map((b) => new SessionTable(gw.tableSizes, plan, b)), clock: new Float64Array(gw.memory.clock) };
    }
    return this.views;
  }

  /** Live sessions matching `f`, partition by partition, in steps of `step` ids. */
  async list(f: SessionFilter = {}, step = STEP_IDS): Promise<SessionRow[]> {
    const { tables, clock } = this.open();
    const rows: SessionRow[] = [];
    const limit = f.limit ?? Infinity;
    for (const t of tables) {
      for (let from = 1; rows.length < limit; from += step) {
        const high = Math.min(t.sessionHigh, t.capacity);
        if (from >= high) break;
        const now = clock[0]!;
        const end = Math.min(high, from + step);
        for (let sid = from; sid < end && rows.length < limit; sid++) {
          if (t.isLive(sid) && sessionMatches(t, sid, f)) rows.push(sessionRow(t, sid, now));
        }
        await yieldLoop();
      }
    }
    return rows;
  }

  /** `masq events`' sampler: the table's columns against the last sample's copy (see the header). */
  events(step = STEP_IDS): EventSource {
    let seen: Seen[] | null = null;
    let gen = 0;
    const sample = async (now: () => number, lastAt: number): Promise<{ time: number; events: SessionEvent[] | null }> => {
      const g = gen;
      const { tables, clock } = this.open();
      const first = seen === null;
      const views = seen ?? tables.map((t) => ({ live: new Uint8Array(t.capacity), words: new Uint32Array(t.capacity * W), left: new Float64Array(t.capacity), top: 1 }));
      // Rows of sessions new or changed, and sessions gone (from the copy, with their time left).
      const fresh: { type: 'new' | 'update'; row: SessionRow }[] = [];
      const gone: { s: EventSession; left: number }[] = [];
      for (let p = 0; p < tables.length; p++) {
        const t = tables[p]!;
        const v = views[p]!;
        // Ids 1..capacity-1; above the high-water mark none is live (but the copy may hold one).
        const high = Math.min(t.sessionHigh, t.capacity);
        const top = Math.max(high, v.top);
        for (let from = 1; from < top; from += step) {
          const c = clock[0]!;
          const end = Math.min(top, from + step);
          for (let sid = from; sid < end; sid++) {
            const live = sid < high && t.isLive(sid);
            const was = v.live[sid] === 1;
            if (!live && !was) continue;
            const o = sid * W;
            const w = v.words;
            if (live) {
              const a = t.sIn(sid);
              const r = t.sRem(sid);
              const e = t.sExt(sid);
              const ports = ((t.sInPort(sid) << 16) | t.sRemPort(sid)) >>> 0;
              const ep = ((t.sExtPort(sid) << 16) | (t.sProto(sid) << 8) | t.sState(sid)) >>> 0;
              const same = was && w[o] === a && w[o + 1] === r && w[o + 2] === e && w[o + 3] === ports && w[o + 4]! >>> 8 === ep >>> 8;
              if (was && !same) gone.push({ s: seenSession(w, o), left: v.left[sid]! });
              if (!same) fresh.push({ type: 'new', row: sessionRow(t, sid, c) });
              else if ((w[o + 4]! & 0xff) !== (ep & 0xff)) fresh.push({ type: 'update', row: sessionRow(t, sid, c) });
              w[o] = a;
              w[o + 1] = r;
              w[o + 2] = e;
              w[o + 3] = ports;
              w[o + 4] = ep;
              v.left[sid] = Math.max(0, t.sExpires(sid) - c);
              v.live[sid] = 1;
            } else {
              gone.push({ s: seenSession(w, o), left: v.left[sid]! });
              v.live[sid] = 0;
            }
          }
          await yieldLoop();
        }
        v.top = high;
      }
      const time = now();
      if (g !== gen) return { time, events: null };
      seen = views;
      if (first) return { time, events: null };
      const elapsed = time - lastAt;
      const events = fresh.map((f) => eventOf(f.type, f.row, time));
      // The timer actor sweeps every 250 ms: allow for that between deadline and free (as diffSessions).
      for (const d of gone) events.push(eventOf('destroy', d.s, time, d.left <= elapsed + 250 ? 'expired' : 'removed'));
      return { time, events };
    };
    return {
      sample,
      reset() {
        seen = null;
        gen++;
      },
    };
  }
}
