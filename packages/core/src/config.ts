/**
 * config.ts — the translation core's settings, their defaults and presets, and parsing of
 * the human forms (`2h4m`, `60000-65535`).
 *
 * Contract: `resolveConfig(partial)` returns a complete, validated NatConfig or throws a
 * ConfigError whose message says which setting is wrong and what is allowed. Every duration
 * is in milliseconds. Defaults follow the RFCs:
 *   - TCP established idle 2 h 4 min, never below (RFC 5382 REQ-5); opening (a SYN seen one
 *     way) and closing (FIN both ways, or RST) 4 min each, set apart (RFC 7857 §2.1: "a NAT
 *     SHOULD provide different configurable parameters for configuring the open and closing
 *     idle timeouts"; it also lets them go below 4 min, so they have no minimum);
 *   - UDP 5 min, never below 2 min (RFC 4787 REQ-5);
 *   - ICMP query 60 s, never below (RFC 5508 REQ-1/REQ-2);
 *   The minimums apply to the timers a user sets (flags, file); `timerProblem` says why one is
 *   refused. A preset's own values are not checked: `classic` keeps Linux 2.0's 15-minute TCP
 *   timer on purpose (documented as not conforming in docs/CONFORMANCE.md).
 *   - a freed port is not reused for 120 s (RFC 6888 REQ-8);
 *   - filtering: address-dependent (RFC 4787 REQ-8 recommends it where security matters more
 *     than transparency; mappings stay endpoint-independent, so STUN-style hole punching works).
 * The `classic` preset reproduces Linux 2.0 IP masquerading: TCP 15 min, TCP FIN 2 min,
 * UDP 5 min, masq ports counted up from 60000 (sequential allocation over 60000-65535).
 */
import { parseIPv4 } from './addr.js';
import { DEFAULT_ALGS, checkAlgNames } from './alg/registry.js';
import { MAX_EXTERNALS } from './counters.js';

export type Filtering = 'endpoint' | 'address' | 'address-port';
export type PortModeName = 'random' | 'preserve' | 'sequential';

export interface Timeouts {
  /** TCP established (and one-FIN) idle timeout. */
  tcpEstablished: number;
  /** TCP opening: a SYN seen one way only (RFC 7857 §2.1 "partially open"). */
  tcpOpening: number;
  /** TCP closing: FIN seen both ways, or an RST (RFC 7857 §2.1-2.2). */
  tcpClosing: number;
  udp: number;
  icmp: number;
  /** How long an out-of-order fragment is held waiting for its first fragment. */
  fragment: number;
  /**
   * A session an inbound packet created (filtering let a new remote in, a port forward, the
   * inbound half of a hairpin) lives this long until the inside host answers; inbound packets
   * never extend it (RFC 4787 REQ-6). At most the UDP timer.
   */
  unanswered: number;
}

export interface NatConfig {
  /** External addresses (uint32), at least one. */
  externals: number[];
  /** External port range, inclusive. */
  portLo: number;
  portHi: number;
  portMode: PortModeName;
  /** Milliseconds before a freed external port may go to another inside host. */
  portReuseDelay: number;
  filtering: Filtering;
  timeouts: Timeouts;
  /** Total session capacity across all partitions. */
  maxSessions: number;
  /** Number of partitions (translation workers). */
  partitions: number;
  /** Sessions one inside host may hold (RFC 6888 REQ-5: state per subscriber); 0 = no limit (default 65536). Exact across partitions (hosts.ts). */
  hostSessionLimit: number;
  /** External ports (mappings) one inside host may hold (RFC 6888 REQ-4); 0 = no limit (default 16384). Exact across partitions (hosts.ts). */
  hostPortLimit: number;
  /**
   * Answer a new outbound flow refused for a resource or policy reason (port exhaustion, a
   * per-host limit, a full table) with ICMP destination unreachable code 13, rate-limited (RFC
   * 5508 REQ-8; RFC 6888 REQ-11 allows). On by default.
   */
  icmpOnExhaustion: boolean;
  /** Add 1 to the TTL of translated packets so the two kernel forwards around the TUN count as one hop. */
  hopCompensation: boolean;
  /** Out-of-order fragments held at once (per dispatcher). */
  fragmentHold: number;
  /** Seed for the port randomizer (tests pass one; 0 = from the clock at start). */
  seed: number;
  /** Protocol helpers enabled for new sessions, by name (alg/registry.ts); [] = none. */
  alg: string[];
  /** Server ports per helper name, replacing the helper's defaults (FTP on 2121, ...). */
  algPorts: Record<string, number[]>;
}

/** RFC 4787 REQ-5: a UDP mapping timer MUST NOT expire in less than two minutes. */
export const UDP_TIMEOUT_MIN = 2 * 60_000;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/**
 * The default `unanswered` timer: a session that an inbound packet creates (endpoint- or
 * address-dependent filtering let a new remote endpoint in, or a port forward) lives this long
 * until the inside host answers it; only then do the protocol's timers apply. Inbound packets
 * alone never keep a mapping alive longer (RFC 4787 REQ-6: the refresh direction is outbound).
 */
export const UNANSWERED_TIMEOUT = 30_000;

/** The least `unanswered` may be: an inside host must have time to answer. */
export const UNANSWERED_MIN = 1_000;

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  tcpEstablished: 2 * HOUR + 4 * MINUTE,
  tcpOpening: 4 * MINUTE,
  tcpClosing: 4 * MINUTE,
  udp: 5 * MINUTE,
  icmp: 60_000,
  fragment: 2_000,
  unanswered: UNANSWERED_TIMEOUT,
};

export const DEFAULTS: Readonly<Omit<NatConfig, 'externals'>> = {
  portLo: 1024,
  portHi: 65535,
  portMode: 'random',
  portReuseDelay: 120_000,
  filtering: 'address',
  timeouts: DEFAULT_TIMEOUTS,
  maxSessions: 1_000_000,
  partitions: 1,
  // One inside host may hold a sixteenth of the default table and a quarter of one external
  // address's ports (docs/CONFIG.md, "Per-host limits"): a flooding host is contained, and a
  // host opening 68 TCP connections a second, each held 4 min after its close, still fits.
  hostSessionLimit: 65536,
  hostPortLimit: 16384,
  icmpOnExhaustion: true,
  hopCompensation: true,
  fragmentHold: 256,
  seed: 0,
  alg: [...DEFAULT_ALGS],
  algPorts: {},
};

export type PresetName = 'default' | 'classic';

/** Linux 2.0 masquerading (net/ipv4/ip_masq.c): MASQUERADE_EXPIRE_TCP 15 min, _TCP_FIN 2 min, _UDP 5 min, PORT_MASQ_BEGIN 60000. */
export const PRESETS: Record<PresetName, Partial<NatConfig>> = {
  default: {},
  classic: {
    portLo: 60000,
    portHi: 65535,
    portMode: 'sequential',
    timeouts: { tcpEstablished: 15 * MINUTE, tcpOpening: 2 * MINUTE, tcpClosing: 2 * MINUTE, udp: 5 * MINUTE, icmp: 60_000, fragment: 2_000, unanswered: UNANSWERED_TIMEOUT },
  },
};

/** Parse `2h4m`, `5m`, `60s`, `1500ms`, `1d`, or a bare number of seconds. */
export function parseDuration(s: string): number | null {
  const t = s.trim();
  if (/^[0-9]+$/.test(t)) return Number(t) * 1000;
  const re = /([0-9]+(?:\.[0-9]+)?)(ms|d|h|m|s)/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(t)) !== null) {
    const n = Number(m[1]);
    const unit = m[2];
    total += unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * MINUTE : unit === 'h' ? n * HOUR : n * 24 * HOUR;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== t.length) return null;
  return Math.round(total);
}

/** Format milliseconds as `2h4m`, `5m`, `60s`. */
export function formatDuration(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}

/** Timer names (flag spelling) and the Timeouts fields each sets: `tcp-transitory` sets both TCP transitory timers. */
export const TIMER_FIELDS: Record<string, ReadonlyArray<keyof Timeouts>> = {
  tcp: ['tcpEstablished'],
  'tcp-established': ['tcpEstablished'],
  'tcp-opening': ['tcpOpening'],
  'tcp-closing': ['tcpClosing'],
  'tcp-transitory': ['tcpOpening', 'tcpClosing'],
  'tcp-fin': ['tcpClosing'],
  tcpfin: ['tcpClosing'],
  udp: ['udp'],
  icmp: ['icmp'],
  fragment: ['fragment'],
  unanswered: ['unanswered'],
};

/** The least each timer may be set to, and the requirement that says so. */
const TIMER_MINIMUM: Partial<Record<keyof Timeouts, { ms: number; why: string }>> = {
  tcpEstablished: { ms: 2 * HOUR + 4 * MINUTE, why: '2 hours 4 minutes RFC 5382 REQ-5 requires for established TCP connections' },
  udp: { ms: UDP_TIMEOUT_MIN, why: '2 minutes RFC 4787 REQ-5 requires' },
  icmp: { ms: 60_000, why: '60 seconds RFC 5508 REQ-2 requires for ICMP query sessions' },
  unanswered: { ms: UNANSWERED_MIN, why: '1 second an inside host needs to answer a packet from outside' },
};

/** The least timer `field` may be set to and the requirement that says so (`why`), or null. */
export function timerMinimum(field: keyof Timeouts): { ms: number; why: string } | null {
  return TIMER_MINIMUM[field] ?? null;
}

/**
 * Why `name=ms` may not be used for timer `field` (below its RFC minimum), or null. The
 * message starts with `timeouts: name=…` and says the minimum and the requirement.
 */
export function timerProblem(field: keyof Timeouts, name: string, ms: number): string | null {
  const m = TIMER_MINIMUM[field];
  if (!m || ms >= m.ms) return null;
  return `timeouts: ${name}=${formatDuration(ms)} is below the ${m.why}`;
}

/** The flag spelling of each timer (messages). */
export const TIMER_NAME: Record<keyof Timeouts, string> = {
  tcpEstablished: 'tcp',
  tcpOpening: 'tcp-opening',
  tcpClosing: 'tcp-closing',
  udp: 'udp',
  icmp: 'icmp',
  fragment: 'fragment',
  unanswered: 'unanswered',
};

/** Parse `tcp=2h4m,udp=5m,icmp=60s` into a partial Timeouts (minimums checked, see timerProblem). */
export function parseTimeouts(s: string): Partial<Timeouts> {
  const out: Partial<Timeouts> = {};
  for (const part of s.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new ConfigError(`timeouts: expected NAME=DURATION (e.g. udp=5m), found "${part}"`);
    const name = part.slice(0, eq).trim().toLowerCase();
    const fields = TIMER_FIELDS[name.replaceAll('_', '-')];
    if (!fields) throw new ConfigError(`timeouts: unknown timer "${name}"; known: tcp, tcp-opening, tcp-closing, tcp-transitory (both), udp, icmp, fragment, unanswered`);
    const d = parseDuration(part.slice(eq + 1));
    if (d === null || d <= 0) throw new ConfigError(`timeouts: "${part.slice(eq + 1)}" is not a duration (examples: 2h4m, 5m, 60s)`);
    for (const f of fields) {
      const problem = timerProblem(f, name, d);
      if (problem) throw new ConfigError(problem);
      out[f] = d;
    }
  }
  return out;
}

/** Parse `lo-hi` port range for external ports. */
export function parsePortRangeText(s: string): { lo: number; hi: number } {
  const m = /^\s*([0-9]{1,5})\s*-\s*([0-9]{1,5})\s*$/.exec(s);
  if (!m) throw new ConfigError(`ports: expected LO-HI such as 60000-65535, found "${s}"`);
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > hi) throw new ConfigError(`ports: range ${lo}-${hi} must lie within 1-65535 with LO ≤ HI`);
  return { lo, hi };
}

export interface ConfigInput extends Partial<Omit<NatConfig, 'externals' | 'timeouts'>> {
  externals: Array<number | string>;
  timeouts?: Partial<Timeouts>;
  preset?: PresetName;
}

/** Fill defaults (preset first, then explicit settings) and validate. */
export function resolveConfig(input: ConfigInput): NatConfig {
  const preset = PRESETS[input.preset ?? 'default'];
  if (!preset) throw new ConfigError(`preset: unknown "${String(input.preset)}"; known: default, classic`);
  const externals = input.externals.map((e) => {
    const a = typeof e === 'number' ? e >>> 0 : parseIPv4(e);
    if (a === null) throw new ConfigError(`address: "${String(e)}" is not an IPv4 address`);
    return a;
  });
  if (externals.length === 0) throw new ConfigError('address: at least one external address is required (--address IP)');
  if (new Set(externals).size !== externals.length) throw new ConfigError('address: the same external address is given twice');
  // Counters, metrics and the table keep one slot per external address (counters.ts).
  if (externals.length > MAX_EXTERNALS) throw new ConfigError(`address: ${externals.length} external addresses given; at most ${MAX_EXTERNALS} are supported`);
  const timeouts: Timeouts = { ...DEFAULT_TIMEOUTS, ...(preset.timeouts ?? {}), ...(input.timeouts ?? {}) };
  const { preset: _p, timeouts: _t, externals: _e, ...rest } = input;
  void _p; void _t; void _e;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) as Partial<NatConfig>;
  const presetRest = { ...preset };
  delete presetRest.timeouts;
  const c: NatConfig = { ...DEFAULTS, ...presetRest, ...defined, externals, timeouts };
  if (!Number.isInteger(c.portLo) || !Number.isInteger(c.portHi) || c.portLo < 1 || c.portHi > 65535 || c.portLo > c.portHi)
    throw new ConfigError(`ports: range ${c.portLo}-${c.portHi} must lie within 1-65535 with LO ≤ HI`);
  if (!Number.isInteger(c.partitions) || c.partitions < 1 || c.partitions > 64) throw new ConfigError(`workers: ${c.partitions} must be 1-64`);
  // Ports below 1024 go only to privileged source ports (ports.ts, RFC 4787 REQ-3): the rest of
  // the range must serve everything else, with a slice for every worker.
  if (c.portHi < 1024)
    throw new ConfigError(`ports: range ${c.portLo}-${c.portHi} has no port ≥ 1024: flows from unprivileged source ports (nearly all) could never be mapped; ports below 1024 are kept for privileged source ports (RFC 4787 REQ-3)`);
  const unprivileged = c.portHi - Math.max(c.portLo, 1024) + 1;
  if (unprivileged < c.partitions)
    throw new ConfigError(`ports: range ${c.portLo}-${c.portHi} has ${unprivileged} port${unprivileged === 1 ? '' : 's'} ≥ 1024, fewer than the ${c.partitions} workers (each worker needs its own slice)`);
  if (!Number.isInteger(c.maxSessions) || c.maxSessions < c.partitions || c.maxSessions > 64_000_000)
    throw new ConfigError(`max-sessions: ${c.maxSessions} must be between the number of workers and 64000000`);
  // The timers set here (not a preset's) must meet their RFC minimums.
  for (const [k, v] of Object.entries(input.timeouts ?? {}) as Array<[keyof Timeouts, number]>) {
    if (v === undefined) continue;
    const problem = timerProblem(k, TIMER_NAME[k], v);
    if (problem) throw new ConfigError(problem);
  }
  if (c.timeouts.udp < UDP_TIMEOUT_MIN) throw new ConfigError(`timeouts: udp=${formatDuration(c.timeouts.udp)} is below the 2 minutes RFC 4787 REQ-5 requires`);
  for (const [k, v] of Object.entries(c.timeouts)) {
    if (!Number.isFinite(v) || v <= 0) throw new ConfigError(`timeouts: ${k} must be a positive duration`);
  }
  // Longer than the UDP timer, a session no inside host answered would outlive an answered one.
  if (c.timeouts.unanswered > c.timeouts.udp)
    throw new ConfigError(`timeouts: unanswered=${formatDuration(c.timeouts.unanswered)} is longer than udp=${formatDuration(c.timeouts.udp)}: a session nobody inside answered must not outlive an answered one (RFC 4787 REQ-6)`);
  if (!['endpoint', 'address', 'address-port'].includes(c.filtering))
    throw new ConfigError(`filtering: "${c.filtering}" is not one of endpoint, address, address-port`);
  if (!['random', 'preserve', 'sequential'].includes(c.portMode))
    throw new ConfigError(`port-mode: "${c.portMode}" is not one of random, preserve, sequential`);
  if (!Number.isInteger(c.hostSessionLimit) || c.hostSessionLimit < 0) throw new ConfigError('host-limit: must be a whole number ≥ 0');
  if (!Number.isInteger(c.hostPortLimit) || c.hostPortLimit < 0) throw new ConfigError('host-port-limit: must be a whole number ≥ 0');
  try {
    c.alg = checkAlgNames(c.alg);
    checkAlgNames(Object.keys(c.algPorts));
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e));
  }
  for (const [name, ports] of Object.entries(c.algPorts)) {
    if (!Array.isArray(ports) || ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535))
      throw new ConfigError(`alg_ports.${name}: expected a non-empty list of ports 1-65535`);
  }
  return c;
}
