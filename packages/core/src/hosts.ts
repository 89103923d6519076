/**
 * hosts.ts — per-inside-host counts of sessions and external ports, ONE table shared by every
 * partition, so that the per-host limits (RFC 6888 REQ-4 ports, REQ-5 state per subscriber)
 * are exact however a host's flows hash over the partitions.
 *
 * Contract:
 *  - Lives in one SharedArrayBuffer (`HostCounts.bytes(slots)`), written by every partition's
 *    thread. With more than one writing thread (`writers`: a gateway with several workers),
 *    each operation runs under a spin lock in the buffer's header (Atomics compareExchange to
 *    take it, Atomics.store to give it back): the JS memory model orders the plain typed-array
 *    writes inside the section before the releasing store, and a thread that takes the lock
 *    next sees them. Sections are a few dozen instructions on the slow path only (a new
 *    session or mapping, a freed one), never per packet, so contention is short and rare.
 *    With one writing thread (one worker, or a Nat, whose partitions all run in its thread)
 *    no lock is taken: the two atomic operations were a tenth of a new session's cost, and
 *    readers in other threads only ever read (racy, never torn 32-bit words).
 *  - `reserve(host, sessions, ports)` checks the limits and adds in one step: of two
 *    partitions racing for a host's last session, exactly one wins. `add` gives counts back.
 *  - The lock word holds the holder's partition + 1; a restarted partition owner clears a lock
 *    its dead predecessor held (`recover`), so a worker killed inside a section cannot wedge
 *    the others.
 *  - Entries: open addressing with linear probing and backward-shift deletion; an entry goes
 *    when both its counts reach 0. An entry is three adjacent words (host, sessions, ports),
 *    so a probe reads one cache line, not one per column (the table is megabytes: a new
 *    session's lookup misses the cache). At most half the slots are used; a reserve that would pass
 *    that is refused like a limit (the host table is sized for the session table).
 */
import { hash3 } from './hash.js';
import { MF_COUNTED, type SessionTable } from './table.js';

const H_LOCK = 0;
const H_USED = 1;
const H_WORDS = 4;
/** Words per entry: E_KEY host, E_SESS sessions, E_PORTS ports. */
const E = 3;
const E_KEY = 0;
const E_SESS = 1;
const E_PORTS = 2;

export class HostCounts {
  readonly buffer: SharedArrayBuffer;
  private readonly h: Int32Array;
  /** Entry i at words E·i (E_KEY, E_SESS, E_PORTS). */
  private readonly e: Uint32Array;
  private readonly mask: number;
  /**
   * The host the last touch() was for and its home entry's first word (a pure function of the
   * host), so that probe() need not hash it again; -1: none. A typed array, not two fields: a
   * field holding 32-bit addresses would leave V8's small-integer representation and
   * deoptimize its writers.
   */
  private readonly home = Float64Array.of(-1, 0);
  /** More than one thread writes (see the header): sections run under the lock. */
  private readonly shared: boolean;

  /** Bytes for `slots` entries (a power of two). */
  static bytes(slots: number): number {
    return (H_WORDS + E * slots) * 4;
  }

  constructor(
    slots: number,
    readonly sessionLimit: number,
    readonly portLimit: number,
    buffer?: SharedArrayBuffer,
    /** Threads that write this table (one per partition thread); with one, no lock is taken. */
    readonly writers = 2,
  ) {
    if (slots < 2 || (slots & (slots - 1)) !== 0) throw new RangeError(`hosts: ${slots} slots is not a power of two ≥ 2`);
    this.buffer = buffer ?? new SharedArrayBuffer(HostCounts.bytes(slots));
    this.h = new Int32Array(this.buffer, 0, H_WORDS);
    this.e = new Uint32Array(this.buffer, H_WORDS * 4, E * slots);
    this.mask = slots - 1;
    this.shared = writers > 1;
    // A new buffer's pages are mapped lazily: touch them now, at start, as the session table
    // does (table.ts), so that the first burst of new hosts pays no page fault per page.
    if (!buffer) for (let i = 0; i < this.e.length; i += 1024) this.e[i] = 0;
  }

  /** A restarted partition clears the lock its dead predecessor may have held. */
  recover(partition: number): void {
    Atomics.compareExchange(this.h, H_LOCK, partition + 1, 0);
  }

  private lock(who: number): void {
    // Spin: the holder is inside a section of a few dozen instructions (see the header).
    while (Atomics.compareExchange(this.h, H_LOCK, 0, who + 1) !== 0);
  }

  private unlock(): void {
    Atomics.store(this.h, H_LOCK, 0);
  }

  /**
   * Take `dSessions` sessions and `dPorts` ports for host `a` if its limits allow (a limit of
   * 0 is none). Returns true when taken. `who` is the calling partition.
   */
  reserve(a: number, dSessions: number, dPorts: number, who: number): boolean {
    if (dSessions <= 0 && dPorts <= 0) return true;
    if (this.shared) this.lock(who);
    const ok = this.reserveHere(a, dSessions, dPorts);
    if (this.shared) this.unlock();
    return ok;
  }

  /** Give back (negative) or add counts for host `a` without a limit check. */
  add(a: number, dSessions: number, dPorts: number, who: number): void {
    if (this.shared) this.lock(who);
    this.addHere(a, dSessions, dPorts);
    if (this.shared) this.unlock();
  }

  // The sections: plain typed-array reads and writes, nothing in them can throw, so the lock
  // needs no try/finally (which would keep V8 from inlining them into their callers).

  private reserveHere(a: number, dSessions: number, dPorts: number): boolean {
    const e = this.e;
    // One probe finds the host's entry or the empty one it would take.
    const i = this.probe(a);
    if (i < 0) return false;
    const s = e[i + E_SESS]!;
    const p = e[i + E_PORTS]!;
    // An empty entry has both counts 0 (used() is exactly "a count is not 0").
    const known = s !== 0 || p !== 0;
    if (this.sessionLimit > 0 && dSessions > 0 && s + dSessions > this.sessionLimit) return false;
    if (this.portLimit > 0 && dPorts > 0 && p + dPorts > this.portLimit) return false;
    if (!known && !this.take(i, a)) return false;
    e[i + E_SESS] = s + dSessions;
    e[i + E_PORTS] = p + dPorts;
    return true;
  }

  private addHere(a: number, dSessions: number, dPorts: number): void {
    const e = this.e;
    const i = this.probe(a);
    if (i < 0) return;
    if (!this.used(i) && ((dSessions <= 0 && dPorts <= 0) || !this.take(i, a))) return;
    e[i + E_SESS] = Math.max(0, e[i + E_SESS]! + dSessions);
    e[i + E_PORTS] = Math.max(0, e[i + E_PORTS]! + dPorts);
    if (e[i + E_SESS] === 0 && e[i + E_PORTS] === 0) this.removeAt(i);
  }

  /**
   * Read the first word of host `a`'s home entry and return it: a hint that starts the load of
   * that line (a cache miss: the table is megabytes) so that it overlaps the caller's other
   * misses before `reserve` needs it (reads only, any thread; the value means nothing: 16 bits
   * of the word, a small integer, see table.ts touchInbound).
   */
  touch(a: number): number {
    const i = (hash3(0, a, 0) & this.mask) * E;
    this.home[0] = a;
    this.home[1] = i;
    return this.e[i]! & 0xffff;
  }

  /** Sessions host `a` holds (readers: a racy but never torn 32-bit read). */
  sessionsOf(a: number): number {
    const i = this.find(a);
    return i < 0 ? 0 : this.e[i + E_SESS]!;
  }

  /** External ports (mappings) host `a` holds. */
  portsOf(a: number): number {
    const i = this.find(a);
    return i < 0 ? 0 : this.e[i + E_PORTS]!;
  }

  /** Hosts with an entry. */
  get hosts(): number {
    return this.h[H_USED]!;
  }

  // Below, i is an entry's first word (E · slot).

  private used(i: number): boolean {
    return this.e[i + E_SESS] !== 0 || this.e[i + E_PORTS] !== 0;
  }

  /** The first word of the entry after entry i, wrapping. */
  private next(i: number): number {
    const n = i + E;
    return n === this.e.length ? 0 : n;
  }

  /** Entry of host `a`, or -1. */
  private find(a: number): number {
    const i = this.probe(a);
    return i >= 0 && this.used(i) ? i : -1;
  }

  /**
   * The entry of host `a` if it has one (used), else the empty entry where its probe ends
   * (free); -1 only if no entry is empty (never: take() keeps half the table free).
   */
  private probe(a: number): number {
    // The home entry touch() just computed for this host, or its hash now.
    let i = a === this.home[0] ? this.home[1]! : (hash3(0, a, 0) & this.mask) * E;
    for (let k = 0; k <= this.mask; k++) {
      if (!this.used(i) || this.e[i + E_KEY] === a) return i;
      i = this.next(i);
    }
    return -1;
  }

  /** Give the empty entry i (from probe) to host `a`, counts 0; false when half full. */
  private take(i: number, a: number): boolean {
    if (this.h[H_USED]! * 2 >= this.mask + 1) return false;
    this.e[i + E_KEY] = a;
    this.h[H_USED]!++;
    return true;
  }

  private removeAt(at: number): void {
    const e = this.e;
    const mask = this.mask;
    // Backward-shift deletion over slot numbers.
    let i = at / E;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (!this.used(j * E)) break;
      const k = hash3(0, e[j * E + E_KEY]!, 0) & mask;
      const inRange = i <= j ? k > i && k <= j : k > i || k <= j;
      if (!inRange) {
        e[i * E + E_KEY] = e[j * E + E_KEY]!;
        e[i * E + E_SESS] = e[j * E + E_SESS]!;
        e[i * E + E_PORTS] = e[j * E + E_PORTS]!;
        i = j;
      }
    }
    e[i * E + E_KEY] = 0;
    e[i * E + E_SESS] = 0;
    e[i * E + E_PORTS] = 0;
    this.h[H_USED]!--;
  }
}

/** Host table slots for a gateway with `cfg` (0: no limit configured, no counting). */
export function hostSlotsFor(cfg: { maxSessions: number; hostSessionLimit: number; hostPortLimit: number }): number {
  if (cfg.hostSessionLimit <= 0 && cfg.hostPortLimit <= 0) return 0;
  let n = 2;
  while (n < Math.min(cfg.maxSessions * 2, 1 << 18)) n *= 2;
  return n;
}

/** The shared host counts of a gateway with `cfg` (over `buffer` when given), or null when no limit is set. */
export function hostCountsFor(cfg: { maxSessions: number; hostSessionLimit: number; hostPortLimit: number; partitions: number }, buffer?: SharedArrayBuffer, writers = cfg.partitions): HostCounts | null {
  const slots = hostSlotsFor(cfg);
  return slots === 0 ? null : new HostCounts(slots, cfg.hostSessionLimit, cfg.hostPortLimit, buffer, writers);
}

/**
 * Count again, from the tables, what every inside host holds (after the tables were filled
 * from a state file: the counts live outside the tables). `hosts` must be empty.
 */
export function recountHosts(hosts: HostCounts, tables: readonly SessionTable[]): void {
  for (const t of tables) {
    const c = t.cols;
    for (let sid = 1; sid < t.sessionHigh; sid++) if (t.isLive(sid)) hosts.add(t.sIn(sid), 1, 0, 0);
    for (let mid = 1; mid < t.mappingHigh; mid++) if (t.isMappingLive(mid) && (c.mFlags[mid]! & MF_COUNTED) !== 0) hosts.add(c.mIn[mid]!, 0, 1, 0);
  }
}
