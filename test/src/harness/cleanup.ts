/**
 * cleanup.ts — naming, ownership and removal of the harness's network namespaces.
 *
 * Owns: the namespace naming scheme, the owner markers, the registry of live topologies with the
 * exit/signal handlers that destroy them, and `sweepStale` for what crashed runs left behind.
 *
 * Naming: a run's prefix is `<base>` + 4 random hex digits (base `mqt` by default, so `mqt3fa9`);
 * its namespaces are the prefix plus a role suffix (`h1`..`h99`, `gw`, `gw1`..`gw9`, `out`, `rt`, `x`). Names stay
 * ≤ 15 characters. Nothing that does not match `^<base>[0-9a-f]{4}(h[0-9]{1,2}|gw[0-9]?|out|rt|x)$` is
 * ever touched.
 *
 * Ownership: before creating any namespace, a run claims its prefix by creating
 * `/run/mqt-owners/<prefix>.json` exclusively (O_EXCL), holding its pid and the pid's start time.
 * `sweepStale` removes a prefix's namespaces only when that owner is gone (pid dead, or reused by
 * another process: different start time), so concurrent runs never sweep each other. A matching
 * namespace without a marker is removed only when older than a minute.
 *
 * Contract: every live topology is in the registry until destroyed; on `exit`, SIGINT, SIGTERM and
 * SIGHUP the registry is destroyed synchronously (kill the processes inside, delete the
 * namespaces, drop the marker and the prefix's control sockets in /run/masq) and a signal is
 * then re-raised so the process still dies of it.
 * A SIGKILLed run leaves its namespaces for `sweepStale`.
 */

import { closeSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync, mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { runSync } from './exec.js';

export const DEFAULT_BASE = 'mqt';
export const OWNER_DIR = '/run/mqt-owners';
const NETNS_DIR = '/run/netns';
/** A namespace without an owner marker is left alone for this long (it may be in creation). */
const UNOWNED_GRACE_MS = 60_000;

function checkBase(base: string): void {
  if (!/^[a-z]{2,6}$/.test(base)) throw new Error(`namespace base "${base}" must be 2..6 lowercase letters`);
}

/** The pattern of every namespace a run with this base creates. */
export function namespacePattern(base = DEFAULT_BASE): RegExp {
  checkBase(base);
  return new RegExp(`^(${base}[0-9a-f]{4})(h[0-9]{1,2}|gw[0-9]?|out|rt|x)$`);
}

/** Names in /run/netns (the named namespaces), or [] when there are none. */
export function listNamespaces(): string[] {
  try {
    return readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/** Start time of a process (field 22 of /proc/<pid>/stat), or null when it does not exist. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

interface OwnerMarker {
  readonly pid: number;
  readonly start: string;
}

function markerPath(prefix: string): string {
  return `${OWNER_DIR}/${prefix}.json`;
}

/**
 * Claim a fresh prefix: pick `<base>` + 4 hex digits whose marker can be created exclusively and
 * that no existing namespace uses. Returns the prefix.
 */
export function claimPrefix(base = DEFAULT_BASE): string {
  const pattern = namespacePattern(base);
  mkdirSync(OWNER_DIR, { recursive: true, mode: 0o755 });
  const taken = new Set(listNamespaces().map((n) => pattern.exec(n)?.[1]).filter((p): p is string => p !== undefined));
  for (let attempt = 0; attempt < 64; attempt++) {
    const prefix = base + randomBytes(2).toString('hex');
    if (taken.has(prefix)) continue;
    let fd: number;
    try {
      fd = openSync(markerPath(prefix), 'wx', 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    const marker: OwnerMarker = { pid: process.pid, start: processStartTime(process.pid) ?? '' };
    writeSync(fd, JSON.stringify(marker));
    closeSync(fd);
    return prefix;
  }
  throw new Error(`no free namespace prefix for base "${base}" after 64 attempts`);
}

/** Where the harness's gateways keep their control sockets: `/run/masq/<prefix>[-suffix].sock`. */
const CONTROL_DIR = '/run/masq';

/**
 * Give a prefix back (its namespaces must be gone, and with them its gateways): drop the marker
 * and the control sockets the prefix's gateways left in /run/masq (a gateway killed with SIGKILL,
 * as the crash tests do, cannot remove its own).
 */
export function releasePrefix(prefix: string): void {
  try {
    for (const f of readdirSync(CONTROL_DIR)) {
      if (f.startsWith(prefix) && f.endsWith('.sock') && (f.length === prefix.length + 5 || f[prefix.length] === '-')) {
        rmSync(`${CONTROL_DIR}/${f}`, { force: true });
      }
    }
  } catch {
    // no control directory
  }
  rmSync(markerPath(prefix), { force: true });
}

function ownerAlive(prefix: string): boolean | null {
  let marker: OwnerMarker;
  try {
    marker = JSON.parse(readFileSync(markerPath(prefix), 'utf8')) as OwnerMarker;
  } catch {
    return null;
  }
  if (typeof marker.pid !== 'number') return null;
  const start = processStartTime(marker.pid);
  return start !== null && start === marker.start;
}

/** Kill every process inside a namespace (they are ours: they live in our namespace), then delete it. */
export function deleteNamespaceSync(ns: string): void {
  const pids = runSync(['ip', 'netns', 'pids', ns]).stdout.split(/\s+/).filter((s) => /^[0-9]+$/.test(s));
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  runSync(['ip', 'netns', 'del', ns]);
}

/**
 * Remove the namespaces of crashed runs: those matching this base's pattern whose owner process
 * is gone. Namespaces of live runs (this one included) are left alone. Returns the names removed.
 */
export function sweepStale(base = DEFAULT_BASE): string[] {
  const pattern = namespacePattern(base);
  const removed: string[] = [];
  const verdict = new Map<string, boolean>();
  for (const ns of listNamespaces()) {
    const m = pattern.exec(ns);
    if (m === null) continue;
    const prefix = m[1];
    let stale = verdict.get(prefix);
    if (stale === undefined) {
      const alive = ownerAlive(prefix);
      if (alive === null) {
        let age = 0;
        try {
          age = Date.now() - statSync(`${NETNS_DIR}/${ns}`).mtimeMs;
        } catch {
          age = 0;
        }
        stale = age > UNOWNED_GRACE_MS;
      } else {
        stale = !alive;
      }
      verdict.set(prefix, stale);
    }
    if (!stale) continue;
    deleteNamespaceSync(ns);
    removed.push(ns);
  }
  for (const [prefix, stale] of verdict) if (stale) releasePrefix(prefix);
  // Markers whose owner died before creating anything.
  try {
    for (const f of readdirSync(OWNER_DIR)) {
      const m = new RegExp(`^(${base}[0-9a-f]{4})\\.json$`).exec(f);
      if (m !== null && ownerAlive(m[1]) === false) releasePrefix(m[1]);
    }
  } catch {
    // no marker directory
  }
  return removed;
}

/** What the registry needs from a topology. */
export interface Destroyable {
  /** Kill processes, delete namespaces; synchronous, for exit and signal handlers. */
  destroySync(): void;
}

const live = new Set<Destroyable>();
let handlersInstalled = false;

function destroyAllSync(): void {
  for (const t of [...live]) {
    try {
      t.destroySync();
    } catch {
      // keep going: the others must still be removed
    }
    live.delete(t);
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', destroyAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      destroyAllSync();
      process.removeListener(sig, onSignal);
      // Die of the signal as if we had not caught it (unless someone else also listens).
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

export function register(t: Destroyable): void {
  installHandlers();
  live.add(t);
}

export function unregister(t: Destroyable): void {
  live.delete(t);
}

/** Number of live topologies in this process (for tests of the harness). */
export function liveCount(): number {
  return live.size;
}
