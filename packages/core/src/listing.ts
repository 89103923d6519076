/**
 * listing.ts — the masquerade table as rows, for `masq table`, the control socket and tests.
 *
 * Contract: `listSessions(table, now, filter)` reads the columns (safe from any thread; a row
 * may be torn while its owner writes, which a listing tolerates) and returns plain rows.
 * `formatProc(rows)` prints the Linux 2.0 `/proc/net/ip_masquerade` layout: protocol, then
 * addresses and ports in hex as that kernel printed them, the masq port, the FTP sequence
 * fields (Init-seq, Delta, PDelta) and Expires in hundredths of a second (jiffies at HZ=100).
 * `formatTable(rows)` is the readable default.
 */
import { formatIPv4 } from './addr.js';
import { SessionTable, SF_HAIRPIN, SF_INBOUND_CREATED, SF_SEQ_OUT } from './table.js';
import { TCP_STATE_NAMES } from './counters.js';
import { IpProto } from './wire/ipv4.js';

export interface SessionRow {
  id: number;
  proto: 'tcp' | 'udp' | 'icmp';
  inside: string;
  insidePort: number;
  external: string;
  externalPort: number;
  remote: string;
  remotePort: number;
  state: string;
  idleMs: number;
  expiresMs: number;
  packetsOut: number;
  packetsIn: number;
  bytesOut: number;
  bytesIn: number;
  initSeq: number;
  delta: number;
  pdelta: number;
  inboundCreated: boolean;
  hairpin: boolean;
}

export interface SessionFilter {
  proto?: 'tcp' | 'udp' | 'icmp';
  /** inside, external or remote address equals this */
  host?: number;
  /** inside, external or remote port equals this */
  port?: number;
  limit?: number;
}

const PROTO_NAME: Record<number, 'tcp' | 'udp' | 'icmp'> = { 6: 'tcp', 17: 'udp', 1: 'icmp' };

/** A session's protocol as a row names it (a torn read of an unknown number: 'tcp'). */
export function protoName(p: number): 'tcp' | 'udp' | 'icmp' {
  return PROTO_NAME[p] ?? 'tcp';
}

/** A session's state as a row names it: the TCP state, 'active' for UDP and ICMP. */
export function stateName(p: number, state: number): string {
  return p === IpProto.Tcp ? TCP_STATE_NAMES[state] ?? 'unknown' : 'active';
}
const PROTO_NUM = { tcp: IpProto.Tcp, udp: IpProto.Udp, icmp: IpProto.Icmp } as const;

/** Does session `sid` match the filter? */
export function sessionMatches(t: SessionTable, sid: number, f: SessionFilter): boolean {
  if (f.proto && t.sProto(sid) !== PROTO_NUM[f.proto]) return false;
  if (f.host !== undefined && t.sIn(sid) !== f.host && t.sExt(sid) !== f.host && t.sRem(sid) !== f.host) return false;
  if (f.port !== undefined && t.sInPort(sid) !== f.port && t.sExtPort(sid) !== f.port && t.sRemPort(sid) !== f.port) return false;
  return true;
}

export function sessionRow(t: SessionTable, sid: number, now: number): SessionRow {
  const c = t.cols;
  const p = t.sProto(sid);
  const seqOut = (t.sFlags(sid) & SF_SEQ_OUT) !== 0;
  return {
    id: sid,
    proto: protoName(p),
    inside: formatIPv4(t.sIn(sid)),
    insidePort: t.sInPort(sid),
    external: formatIPv4(t.sExt(sid)),
    externalPort: t.sExtPort(sid),
    remote: formatIPv4(t.sRem(sid)),
    remotePort: t.sRemPort(sid),
    state: stateName(p, t.sState(sid)),
    idleMs: Math.max(0, now - t.sLast(sid)),
    expiresMs: Math.max(0, t.sExpires(sid) - now),
    packetsOut: t.sPktOut(sid),
    packetsIn: t.sPktIn(sid),
    bytesOut: t.sByteOut(sid),
    bytesIn: t.sByteIn(sid),
    // The outbound sequence deltas a helper recorded (the columns are this session's only
    // with SF_SEQ_OUT: table.ts newSession leaves them as the slot's last session left them).
    initSeq: seqOut ? c.sInitSeq[sid]! : 0,
    delta: seqOut ? c.sDelta[sid]! : 0,
    pdelta: seqOut ? c.sPDelta[sid]! : 0,
    inboundCreated: (t.sFlags(sid) & SF_INBOUND_CREATED) !== 0,
    hairpin: (t.sFlags(sid) & SF_HAIRPIN) !== 0,
  };
}

export function listSessions(t: SessionTable, now: number, f: SessionFilter = {}): SessionRow[] {
  const rows: SessionRow[] = [];
  const limit = f.limit ?? Infinity;
  for (let sid = 1; sid < t.sessionHigh && rows.length < limit; sid++) {
    if (t.isLive(sid) && sessionMatches(t, sid, f)) rows.push(sessionRow(t, sid, now));
  }
  return rows;
}

function hex(n: number, w: number): string {
  return (n >>> 0).toString(16).toUpperCase().padStart(w, '0');
}
function ipHex(a: string): string {
  const [x, y, z, w] = a.split('.').map(Number);
  return hex((((x! << 24) | (y! << 16) | (z! << 8) | w!) >>> 0), 8);
}

/** Linux 2.0 /proc/net/ip_masquerade. */
export function formatProc(rows: readonly SessionRow[]): string {
  // Linux 2.0 ended this header with "(free=tcp,udp,icmp)", the free masq ports per protocol;
  // masq's ports are not split by protocol, so that count is left out rather than faked.
  const lines = ['Prc FromIP   FPrt ToIP     TPrt Masq Init-seq  Delta PDelta Expires'];
  for (const r of rows) {
    lines.push(
      `${r.proto.toUpperCase().padEnd(3)} ${ipHex(r.inside)}:${hex(r.insidePort, 4)} ${ipHex(r.remote)}:${hex(r.remotePort, 4)} ${hex(r.externalPort, 4)} ${hex(r.initSeq, 8)} ${String(r.delta).padStart(6)} ${String(r.pdelta).padStart(6)} ${String(Math.round(r.expiresMs / 10)).padStart(7)}`,
    );
  }
  return lines.join('\n') + '\n';
}

function dur(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The readable listing. */
export function formatTable(rows: readonly SessionRow[]): string {
  const head = ['PROTO', 'INSIDE', 'EXTERNAL', 'REMOTE', 'STATE', 'IDLE', 'EXPIRES', 'PKTS', 'BYTES'];
  const body = rows.map((r) => [
    r.proto,
    `${r.inside}:${r.insidePort}`,
    `${r.external}:${r.externalPort}`,
    `${r.remote}:${r.remotePort}`,
    r.state + (r.hairpin ? '*' : ''),
    dur(r.idleMs),
    dur(r.expiresMs),
    `${r.packetsOut}/${r.packetsIn}`,
    `${r.bytesOut}/${r.bytesIn}`,
  ]);
  // Column widths by a loop: a spread of every row into Math.max overflows the stack with a
  // large table (hundreds of thousands of rows).
  const w = head.map((h) => h.length);
  for (const b of body) for (let i = 0; i < w.length; i++) if (b[i]!.length > w[i]!) w[i] = b[i]!.length;
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [fmt(head), ...body.map(fmt)].join('\n') + '\n';
}
