/**
 * events.ts — `masq events`: session NEW / UPDATE / DESTROY events, like `conntrack -E`.
 *
 * How: while at least one client listens, the gateway process samples the table (read
 * from shared memory on its main thread, shared-listing.ts) every 500 ms and diffs it against
 * the previous sample. No code runs on the packet path. The gateway's sampler compares the
 * table's columns with the last sample's copy of them, id by id, and makes rows only for the
 * sessions that changed (shared-listing.ts `events`: measured 1 ms a sample for 64,512
 * sessions that did not change, where diffing whole listings took 210-370 ms);
 * `rowEvents` diffs whole listings instead (any SessionLister, e.g. a test's stand-in). The
 * cost: a session that lives less than one interval may go unseen, an event is reported up to
 * one interval late; the next sample starts one interval after the previous one finished.
 *
 * A session is known by its partition-local id together with its addresses and ports, so an
 * id freed and reused for another flow between two samples shows as DESTROY + NEW. A
 * DESTROY is labelled `expired` when the session's timer was due by the time it went, else
 * `removed` (flush, rule change, TCP teardown, table reset).
 */
import type { SessionFilter, SessionRow } from '@masq/core';
import { formatIPv4 } from '@masq/core';

export const EVENT_INTERVAL_MS = 500;

export type EventType = 'new' | 'update' | 'destroy';

/** The session's endpoints and state, as the table lists them. */
export type EventSession = Pick<SessionRow, 'proto' | 'inside' | 'insidePort' | 'external' | 'externalPort' | 'remote' | 'remotePort' | 'state'>;

export interface SessionEvent extends EventSession {
  type: EventType;
  /** For destroy: expired (timer) or removed (flush, rules, teardown). */
  reason?: 'expired' | 'removed';
  /** Wall-clock milliseconds when the sample that saw it was taken. */
  time: number;
}

export function sessionKey(r: SessionRow): string {
  return `${r.id}|${r.proto}|${r.inside}:${r.insidePort}|${r.external}:${r.externalPort}|${r.remote}:${r.remotePort}`;
}

/** The event of `type` for session `r` (its endpoints and state), seen at `time`. */
export function eventOf(type: EventType, r: EventSession, time: number, reason?: 'expired' | 'removed'): SessionEvent {
  const e: SessionEvent = { type, time, proto: r.proto, inside: r.inside, insidePort: r.insidePort, external: r.external, externalPort: r.externalPort, remote: r.remote, remotePort: r.remotePort, state: r.state };
  if (reason) e.reason = reason;
  return e;
}

/**
 * Compare a new sample with the previous one (keyed by sessionKey). `elapsedMs` is the time
 * between the two samples: a session gone whose timer had less than that left expired.
 */
export function diffSessions(prev: ReadonlyMap<string, SessionRow>, rows: readonly SessionRow[], time: number, elapsedMs: number): { events: SessionEvent[]; next: Map<string, SessionRow> } {
  const next = new Map<string, SessionRow>();
  const events: SessionEvent[] = [];
  for (const r of rows) {
    const k = sessionKey(r);
    next.set(k, r);
    const old = prev.get(k);
    if (!old) events.push(eventOf('new', r, time));
    else if (old.state !== r.state) events.push(eventOf('update', r, time));
  }
  for (const [k, r] of prev) {
    // The timer actor sweeps every 250 ms: allow for that between deadline and free.
    if (!next.has(k)) events.push(eventOf('destroy', r, time, r.expiresMs <= elapsedMs + 250 ? 'expired' : 'removed'));
  }
  return { events, next };
}

/** Does an event pass a table filter (proto; host or port on any side)? */
export function eventMatches(e: SessionEvent, f: SessionFilter): boolean {
  if (f.proto !== undefined && e.proto !== f.proto) return false;
  if (f.host !== undefined) {
    const h = formatIPv4(f.host);
    if (e.inside !== h && e.external !== h && e.remote !== h) return false;
  }
  if (f.port !== undefined && e.insidePort !== f.port && e.externalPort !== f.port && e.remotePort !== f.port) return false;
  return true;
}

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/**
 * One line in the manner of `conntrack -E`: the original direction (inside → remote), then
 * the reply direction as the remote host sees it (remote → external address and port).
 */
export function formatEvent(e: SessionEvent): string {
  const tag = `[${e.type.toUpperCase()}]`.padEnd(9);
  const ports = (sp: number, dp: number): string => (e.proto === 'icmp' ? `id=${sp}` : `sport=${sp} dport=${dp}`);
  const state = e.proto === 'tcp' ? ` ${e.state}` : '';
  const why = e.reason ? ` (${e.reason})` : '';
  return (
    `${clock(e.time)} ${tag} ${e.proto.padEnd(4)}${state} src=${e.inside} dst=${e.remote} ${ports(e.insidePort, e.remotePort)}` +
    // ICMP has one identifier per side: the reply carries the external one (the remote port
    // is the identifier the inside host chose, as the remote never sees it).
    ` src=${e.remote} dst=${e.external} ${e.proto === 'icmp' ? `id=${e.externalPort}` : ports(e.remotePort, e.externalPort)}${why}`
  );
}

/**
 * Where a sampler's events come from. Each `sample` compares the table with the view the
 * previous call took and takes a new one; the first call (and the first after `reset`) only
 * takes the view: `events` null. `time` is `now()` read when the sample ended (stamped on its
 * events); a session gone counts as `expired` when its timer had less than the time since
 * `lastAt` (plus the timer actor's 250 ms sweep) left at the previous sample. A sample still
 * running when `reset` is called keeps nothing of what it saw.
 */
export interface EventSource {
  sample(now: () => number, lastAt: number): Promise<{ time: number; events: SessionEvent[] | null }>;
  reset(): void;
}

/** Events from whole listings (diffSessions): for any lister (a test's stand-in gateway). */
export function rowEvents(list: () => Promise<SessionRow[]>): EventSource {
  let prev: Map<string, SessionRow> | null = null;
  let gen = 0;
  return {
    async sample(now, lastAt) {
      const g = gen;
      const rows = await list();
      const time = now();
      if (g !== gen) return { time, events: null };
      if (prev === null) {
        prev = new Map(rows.map((r) => [sessionKey(r), r]));
        return { time, events: null };
      }
      const { events, next } = diffSessions(prev, rows, time, time - lastAt);
      prev = next;
      return { time, events };
    },
    reset() {
      prev = null;
      gen++;
    },
  };
}

/**
 * Samples the table while someone listens. `source` reads it (the control server passes the
 * shared-memory listing's column differ, shared-listing.ts; a function listing rows is
 * diffed by `rowEvents`); a failed sample is skipped.
 */
export class EventSampler {
  private readonly listeners = new Set<(e: SessionEvent) => void>();
  private readonly source: EventSource;
  private lastAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  /** Bumped by every start, so a sample still in flight from an earlier run stops there. */
  private gen = 0;

  constructor(
    source: EventSource | (() => Promise<SessionRow[]>),
    readonly intervalMs = EVENT_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.source = typeof source === 'function' ? rowEvents(source) : source;
  }

  subscribe(fn: (e: SessionEvent) => void): () => void {
    this.listeners.add(fn);
    if (!this.running) {
      this.running = true;
      void this.sample(++this.gen);
    }
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.stop();
    };
  }

  get listening(): number {
    return this.listeners.size;
  }

  stop(): void {
    this.running = false;
    this.source.reset();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async sample(gen: number): Promise<void> {
    try {
      const { time, events } = await this.source.sample(this.now, this.lastAt);
      if (!this.running || gen !== this.gen) return;
      if (events !== null) for (const e of events) for (const fn of this.listeners) fn(e);
      this.lastAt = time;
    } catch {
      /* a worker restarting: try again next interval */
    }
    if (this.running && gen === this.gen) this.timer = setTimeout(() => void this.sample(gen), this.intervalMs);
  }
}
