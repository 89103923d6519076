/**
 * control.ts — the control plane between the `masq` command and a running gateway: a UNIX
 * socket (default /run/masq/control.sock, mode 0600: root only) speaking newline-delimited
 * JSON, protocol version 1.
 *
 *   request   {"v":1,"id":7,"cmd":"table","args":{...}}
 *   response  {"v":1,"id":7,"ok":true,"result":...}  or  {"v":1,"id":7,"ok":false,"error":"..."}
 *
 * Commands: status, table, expectations (protocol helpers), delete, flush, rules, rule-add, rule-insert, rule-delete,
 * rule-flush, set-rules, stats, reload (re-read the --config file), crash-worker (testing the
 * supervisor), and events: a stream — after the response, lines {"v":1,"id":7,"event":{...}}
 * follow until the client closes the connection (events.ts). The server never
 * crashes on bad input: every malformed line gets an error response.
 */
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import type { Gateway } from '@masq/workers';
import { EventSampler, eventMatches, type SessionEvent } from './events.js';
import { SharedListing, type SessionLister } from './shared-listing.js';
import { parseIPv4, parseRule, parseRules, formatRule, formatRuleTable, ruleWarnings, C, DROP_REASON_LABELS, PROTO_INDEX_NAMES, TCP_STATE_NAMES, MAX_EXTERNALS, formatIPv4, algNames, algErrorSlot, bytesOf, ALG_ERROR_LABELS, type SessionFilter, type Rule } from '@masq/core';

export const PROTOCOL_VERSION = 1;
export const DEFAULT_CONTROL_PATH = '/run/masq/control.sock';
/** Longest request line the server buffers (1 MiB). */
export const MAX_REQUEST = 1 << 20;

export interface Request {
  v: number;
  id: number;
  cmd: string;
  args?: Record<string, unknown>;
}

/** The gateway could not be reached (no gateway, permissions, timeout, garbage). */
export class ControlError extends Error {}

/** The gateway answered and refused the request; `message` is its reason. */
export class RefusedError extends ControlError {}

function filterOf(a: Record<string, unknown>): SessionFilter {
  const f: SessionFilter = {};
  if (a['proto'] !== undefined) {
    const p = String(a['proto']);
    if (p !== 'tcp' && p !== 'udp' && p !== 'icmp') throw new ControlError(`proto must be tcp, udp or icmp, not "${p}"`);
    f.proto = p;
  }
  if (a['host'] !== undefined) {
    const h = parseIPv4(String(a['host']));
    if (h === null) throw new ControlError(`host "${String(a['host'])}" is not an IPv4 address`);
    f.host = h;
  }
  if (a['port'] !== undefined) {
    const n = Number(a['port']);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ControlError(`port "${String(a['port'])}" is not 0-65535`);
    f.port = n;
  }
  if (a['limit'] !== undefined) f.limit = Number(a['limit']);
  return f;
}

/** Protocol helpers: enabled names, rewrites per helper, non-zero errors as "helper/reason", live expectations. */
function algStats(gw: Gateway, c: Float64Array): Record<string, unknown> {
  const rewrites: Record<string, number> = {};
  const errors: Record<string, number> = {};
  algNames().forEach((name, i) => {
    rewrites[name] = c[C.ALG_REWRITES + i + 1]!;
    ALG_ERROR_LABELS.forEach((reason, r) => {
      const v = c[algErrorSlot(i + 1, r)]!;
      if (v > 0) errors[`${name}/${reason}`] = v;
    });
  });
  return { enabled: [...gw.config.alg], rewrites, errors, expectations: c[C.EXPECTATIONS]! };
}

/** Counters as a plain object for `masq stats`. */
export function statsObject(gw: Gateway): Record<string, unknown> {
  const c = gw.counters();
  const packets: Record<string, Record<string, number>> = { out: {}, in: {} };
  for (let d = 0; d < 2; d++) for (let p = 0; p < 4; p++) packets[d ? 'in' : 'out']![PROTO_INDEX_NAMES[p]!] = c[C.PACKETS + d * 4 + p]!;
  const drops: Record<string, number> = {};
  DROP_REASON_LABELS.forEach((l, i) => {
    if (i > 0 && c[C.DROPS + i]! > 0) drops[l] = c[C.DROPS + i]!;
  });
  const sessions: Record<string, number> = {};
  for (let p = 0; p < 3; p++) sessions[PROTO_INDEX_NAMES[p]!] = c[C.LIVE_BY_PROTO + p]!;
  const tcpStates: Record<string, number> = {};
  TCP_STATE_NAMES.forEach((n, i) => {
    if (c[C.LIVE_TCP_STATE + i]! > 0) tcpStates[n] = c[C.LIVE_TCP_STATE + i]!;
  });
  const ports: Record<string, number> = {};
  gw.config.externals.slice(0, MAX_EXTERNALS).forEach((a, i) => (ports[formatIPv4(a)] = c[C.PORTS_IN_USE + i]!));
  const reads = gw.workerReads();
  const workers = gw.partitionCounters().map((b, i) => ({ worker: i, ...reads[i]!, packets: b[C.PACKETS]! + b[C.PACKETS + 1]! + b[C.PACKETS + 2]! + b[C.PACKETS + 4]! + b[C.PACKETS + 5]! + b[C.PACKETS + 6]!, sessions: b[C.LIVE_BY_PROTO]! + b[C.LIVE_BY_PROTO + 1]! + b[C.LIVE_BY_PROTO + 2]! }));
  return {
    packets,
    bytes: { out: bytesOf(c, 0), in: bytesOf(c, 1) },
    drops,
    sessions,
    tcpStates,
    sessionsLimit: gw.config.maxSessions,
    sessionsCreated: c[C.SESSIONS_CREATED]!,
    mappings: c[C.LIVE_MAPPINGS]!,
    portsInUse: ports,
    portsLimit: gw.config.portHi - gw.config.portLo + 1,
    portAllocationFailures: c[C.PORT_ALLOC_FAILURES]!,
    hairpinned: c[C.HAIRPINNED]!,
    icmpErrorsTranslated: c[C.ICMP_ERRORS_TRANSLATED]!,
    workers,
    alg: algStats(gw, c),
  };
}

/**
 * The config file's lint (ruleWarnings) for a rule added live at 1-based `n`: what it says
 * about the new rule, and about later rules the new one now shadows.
 */
export function newRuleWarnings(rules: readonly Rule[], n: number, externals: readonly number[]): string[] {
  return ruleWarnings(rules, externals).filter((w) => w.startsWith(`rule ${n}: `) || w.includes(` rule ${n} (`));
}

function ruleLines(text: string): Rule[] {
  return parseRules(text);
}

/**
 * Answer one request. Session listings (`table`, `delete`) read the tables from shared memory
 * (`listing`, shared-listing.ts), never through the workers: a worker listing a large table
 * would hold its packets meanwhile.
 */
export async function handle(gw: Gateway, req: Request, listing?: SessionLister): Promise<unknown> {
  const a = req.args ?? {};
  switch (req.cmd) {
    case 'status':
      return { pid: process.pid, tun: gw.tun.name, workers: gw.partitions, externals: gw.config.externals.map(formatIPv4), uptimeMs: Date.now() - gw.startedAt, version: PROTOCOL_VERSION, node: process.version, jit: gw.jitFlag, ...(gw.state ? { state: gw.state } : {}) };
    case 'table':
      return (listing ?? new SharedListing(gw)).list(filterOf(a));
    case 'expectations':
      return gw.listExpectations();
    case 'flush':
      return { flushed: await gw.flush(filterOf(a)) };
    case 'delete':
      // Exactly the sessions the selectors match, in one pass per worker (the same match as
      // the listing: core's sessionMatches); not by their inside endpoints, which would take
      // that endpoint's other sessions too.
      return { deleted: await gw.flush(filterOf(a)) };
    case 'rules': {
      const rules = ruleLines(gw.rulesText);
      return { rules: rules.map(formatRule), table: formatRuleTable(rules) };
    }
    case 'rule-add':
    case 'rule-insert': {
      const r = parseRule(String(a['rule'] ?? ''));
      const rules = ruleLines(gw.rulesText);
      const at = a['position'] === undefined ? (req.cmd === 'rule-add' ? rules.length : 0) : Number(a['position']) - 1;
      if (!Number.isInteger(at) || at < 0 || at > rules.length) throw new ControlError(`position must be 1-${rules.length + 1}`);
      rules.splice(at, 0, r);
      const flushed = await gw.setRules(rules.map(formatRule).join('\n'));
      return { rules: rules.map(formatRule), flushed, warnings: newRuleWarnings(rules, at + 1, gw.config.externals) };
    }
    case 'rule-delete': {
      const rules = ruleLines(gw.rulesText);
      let idx: number;
      if (a['number'] !== undefined) idx = Number(a['number']) - 1;
      else {
        const want = formatRule(parseRule(String(a['rule'] ?? '')));
        idx = rules.findIndex((r) => formatRule(r) === want);
      }
      if (!Number.isInteger(idx) || idx < 0 || idx >= rules.length) throw new ControlError('no such rule (see masq rule list)');
      rules.splice(idx, 1);
      const flushed = await gw.setRules(rules.map(formatRule).join('\n'));
      return { rules: rules.map(formatRule), flushed };
    }
    case 'rule-flush': {
      const flushed = await gw.setRules('');
      return { rules: [], flushed };
    }
    case 'set-rules': {
      const flushed = await gw.setRules(String(a['rules'] ?? ''));
      return { flushed };
    }
    case 'stats':
      return statsObject(gw);
    case 'crash-worker': {
      const p = Number(a['worker'] ?? 0);
      if (!Number.isInteger(p) || p < 0 || p >= gw.partitions) throw new ControlError(`worker must be 0-${gw.partitions - 1}`);
      await gw.crashWorker(p);
      return { crashed: p };
    }
    case 'reload':
      // `masq run` answers reload itself when it has a config file.
      throw new ControlError('this gateway was started without --config: there is no file to reload (change rules live with masq rule, or restart it with masq run --config FILE)');
    default:
      throw new ControlError(`unknown command "${req.cmd}"`);
  }
}

export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

/** Serve the control socket at `sockPath` (directory created 0700, socket 0600). */
export async function startControlServer(gw: Gateway, sockPath: string, extra?: (req: Request) => Promise<unknown> | undefined, listing: SessionLister = new SharedListing(gw)): Promise<ControlServer> {
  fs.mkdirSync(path.dirname(sockPath), { recursive: true, mode: 0o700 });
  // Whoever can write the directory can put another socket in our place: it must be ours
  // and writable by no one else.
  const dirStat = fs.statSync(path.dirname(sockPath));
  if (process.getuid && dirStat.uid !== process.getuid()) throw new ControlError(`the control socket's directory ${path.dirname(sockPath)} belongs to uid ${dirStat.uid}, not to this user (${process.getuid()}): refusing to serve the control socket there`);
  // (A sticky directory such as /tmp is shared but nobody can replace another's file in it.)
  if ((dirStat.mode & 0o022) !== 0 && (dirStat.mode & 0o1000) === 0) throw new ControlError(`the control socket's directory ${path.dirname(sockPath)} is writable by group or others and not sticky (mode ${(dirStat.mode & 0o7777).toString(8)}): chmod go-w it, or use --control in a private directory`);
  if (fs.existsSync(sockPath)) {
    // A live gateway answers; a stale socket file from a crash does not.
    const alive = await new Promise<boolean>((resolve) => {
      const s = net.connect(sockPath);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (alive) throw new ControlError(`another masq is running with control socket ${sockPath} (use --control PATH for a second gateway)`);
    fs.unlinkSync(sockPath);
  }
  const sampler = new EventSampler(listing.events?.() ?? (() => listing.list()));
  const streams = new Set<net.Socket>();
  // `events` keeps the connection: the answer, then one {"v","id","event"} line per event
  // until the client closes it (or the gateway stops).
  const stream = (sock: net.Socket, req: Request): void => {
    let filter: SessionFilter;
    try {
      filter = filterOf(req.args ?? {});
    } catch (e) {
      sock.write(JSON.stringify({ v: PROTOCOL_VERSION, id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) }) + '\n');
      return;
    }
    sock.write(JSON.stringify({ v: PROTOCOL_VERSION, id: req.id, ok: true, result: { streaming: true, intervalMs: sampler.intervalMs } }) + '\n');
    streams.add(sock);
    const off = sampler.subscribe((ev) => {
      if (!sock.destroyed && eventMatches(ev, filter)) sock.write(JSON.stringify({ v: PROTOCOL_VERSION, id: req.id, event: ev }) + '\n');
    });
    sock.once('close', () => {
      streams.delete(sock);
      off();
    });
  };
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) {
        // A request line longer than any real one: answer, then hang up (never buffer more).
        sock.end(JSON.stringify({ v: PROTOCOL_VERSION, id: null, ok: false, error: `request longer than ${MAX_REQUEST} bytes without a newline` }) + '\n');
        sock.removeAllListeners('data');
        buf = '';
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const ev = eventsRequest(line);
        if (ev) {
          stream(sock, ev);
          continue;
        }
        void answer(line).then((resp) => {
          if (!sock.destroyed) sock.write(JSON.stringify(resp) + '\n');
        });
      }
    });
  });
  const answer = async (line: string): Promise<Record<string, unknown>> => {
    let req: Request;
    try {
      req = JSON.parse(line) as Request;
      if (typeof req !== 'object' || req === null || typeof req.cmd !== 'string') throw new Error('not a request object');
    } catch (e) {
      return { v: PROTOCOL_VERSION, id: null, ok: false, error: `bad request: ${e instanceof Error ? e.message : String(e)}` };
    }
    if (req.v !== PROTOCOL_VERSION) return { v: PROTOCOL_VERSION, id: req.id, ok: false, error: `protocol version ${String(req.v)} not supported (this gateway speaks ${PROTOCOL_VERSION})` };
    try {
      const r = extra ? await extra(req) : undefined;
      const result = r !== undefined ? r : await handle(gw, req, listing);
      return { v: PROTOCOL_VERSION, id: req.id, ok: true, result };
    } catch (e) {
      return { v: PROTOCOL_VERSION, id: req.id, ok: false, error: e instanceof Error ? e.message : String(e) };
    }
  };
  const eventsRequest = (line: string): Request | null => {
    try {
      const r = JSON.parse(line) as Request;
      return typeof r === 'object' && r !== null && r.cmd === 'events' && r.v === PROTOCOL_VERSION ? r : null;
    } catch {
      return null;
    }
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(sockPath, () => resolve());
  });
  fs.chmodSync(sockPath, 0o600);
  return {
    path: sockPath,
    close: () =>
      new Promise<void>((resolve) => {
        sampler.stop();
        for (const s of streams) s.end();
        server.close(() => resolve());
        try {
          fs.unlinkSync(sockPath);
        } catch {
          /* gone */
        }
      }),
  };
}

/** Client: send one request, await its response. */
export async function request(sockPath: string, cmd: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sockPath);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new ControlError(`the gateway did not answer within ${timeoutMs} ms (${sockPath})`));
    }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify({ v: PROTOCOL_VERSION, id: 1, cmd, args }) + '\n'));
    // A large answer (100,000 rows: tens of MB) comes in many chunks: look for the newline
    // in each new chunk only, not again in everything received so far.
    const parts: string[] = [];
    s.on('data', (d: string) => {
      const nl = d.indexOf('\n');
      if (nl < 0) {
        parts.push(d);
        return;
      }
      parts.push(d.slice(0, nl));
      clearTimeout(timer);
      s.end();
      try {
        const resp = JSON.parse(parts.join('')) as { ok: boolean; result?: unknown; error?: string };
        if (resp.ok) resolve(resp.result);
        else reject(new RefusedError(resp.error ?? 'error'));
      } catch (e) {
        reject(new ControlError(`bad response from the gateway: ${String(e)}`));
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new ControlError(`no gateway is running (nothing answers on ${sockPath}); start one with masq run, or pass --control PATH`));
      else if (e.code === 'EACCES') reject(new ControlError(`permission denied on ${sockPath}: the control socket (mode 0600) belongs to the user the gateway runs as: run this command as that user or as root`));
      else reject(new ControlError(`cannot reach the gateway at ${sockPath}: ${e.message}`));
    });
  });
}

/**
 * Client for a streaming command (`events`): send the request, reject if the gateway refuses,
 * then hand every event to `onEvent` until the connection ends. Returns a promise that
 * settles when the stream ends and a function that ends it (for Ctrl-C).
 */
export function streamEvents(sockPath: string, args: Record<string, unknown>, onEvent: (e: SessionEvent) => void): { done: Promise<void>; close: () => void } {
  const s = net.connect(sockPath);
  const done = new Promise<void>((resolve, reject) => {
    let buf = '';
    let started = false;
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify({ v: PROTOCOL_VERSION, id: 1, cmd: 'events', args }) + '\n'));
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: { ok?: boolean; error?: string; event?: SessionEvent };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch (e) {
          s.destroy();
          reject(new ControlError(`bad message from the gateway: ${String(e)}`));
          return;
        }
        if (!started) {
          started = true;
          if (!msg.ok) {
            s.destroy();
            reject(new RefusedError(msg.error ?? 'error'));
            return;
          }
        } else if (msg.event) onEvent(msg.event);
      }
    });
    s.on('close', () => resolve());
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') reject(new ControlError(`no gateway is running (nothing answers on ${sockPath}); start one with masq run, or pass --control PATH`));
      else if (e.code === 'EACCES') reject(new ControlError(`permission denied on ${sockPath}: the control socket (mode 0600) belongs to the user the gateway runs as: run this command as that user or as root`));
      else reject(new ControlError(`cannot reach the gateway at ${sockPath}: ${e.message}`));
    });
  });
  return { done, close: () => s.end() };
}
