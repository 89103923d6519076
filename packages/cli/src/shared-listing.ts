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
 */
import type { Gateway } from '@masq/workers';
import { PortPlan, SessionTable, sessionMatches, sessionRow, type SessionFilter, type SessionRow } from '@masq/core';

/** Session ids scanned between two yields to the event loop. */
export const STEP_IDS = 8192;

const yieldLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/** What the reader needs of a gateway (the Gateway itself, or a test's stand-in). */
export type TableSource = Pick<Gateway, 'tables' | 'tableSizes' | 'config' | 'memory'>;

/** A source of session rows: the shared-memory reader, or a test's stand-in. */
export interface SessionLister {
  list(f?: SessionFilter): Promise<SessionRow[]>;
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
}
