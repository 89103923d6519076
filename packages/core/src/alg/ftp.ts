/**
 * alg/ftp.ts — the FTP helper (RFC 959, RFC 2428, RFC 1123 §4.1.2.6): the feature 1996
 * masquerading was known for (Linux 2.0 ip_masq_ftp.c).
 *
 * What it rewrites (all on segments going inside → outside):
 *  - from an inside client: `PORT h1,h2,h3,h4,p1,p2` (RFC 959 §4.1.2) and `EPRT |1|a.b.c.d|port|`
 *    (RFC 2428 §2): the address becomes the external one, the port an external port from the
 *    control session's partition, with an expectation admitting the server's one data
 *    connection;
 *  - from an inside server behind a port forward: `227 ... (h1,h2,h3,h4,p1,p2)` (RFC 959
 *    §4.2, parsed from the first digit as RFC 1123 §4.1.2.6 asks) and `229 ... (|||port|)`
 *    (RFC 2428 §3), with an expectation admitting the client's one data connection.
 *
 * The classic checks: the advertised address must be the sender's own (else ForeignAddress:
 * no rewrite, nothing opened — a forged PORT naming a third host must not punch a hole for it)
 * and the port at least 1024 (else LowPort). Malformed arguments pass unmodified and count
 * Malformed. EPRT/229 for IPv6 (net-prt 2) cannot occur on an IPv4 control connection: Malformed.
 *
 * A command split over two segments is counted (Split) and passes unmodified, not
 * reassembled: reassembly would mean holding the first segment in the gateway (a pure core has
 * nowhere to keep it and no timer to give up on it), and real clients write a command in one
 * send() far below any MSS; netfilter's nf_conntrack_ftp does the same (it parses only lines
 * that start and end in one segment). Only lines that start at a line boundary are parsed:
 * a segment that begins where the previous one ended mid-line is not a command start.
 *
 * Parsers are pure (bytes in, value or null out) and exported for the tests.
 */
import { AlgError, type AlgHelper, type AlgPacket } from './types.js';
import { IpProto } from '../wire/ipv4.js';

const TCP = IpProto.Tcp;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const COMMA = 0x2c;

/** An address and port found in a command or reply, and the byte span a rewrite replaces. */
export interface FtpEndpoint {
  addr: number;
  port: number;
  /** b[from, to): the text that names them (to be replaced). */
  from: number;
  to: number;
  /** EPRT/EPSV delimiter character code (0 for PORT/227). */
  delim: number;
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

/** Parse up to `max` decimal digits at b[i, to) as a number ≤ limit; returns [value, next] or null. */
function num(b: Uint8Array, i: number, to: number, maxDigits: number, limit: number): [number, number] | null {
  let v = 0;
  let k = 0;
  let j = i;
  while (j < to && isDigit(b[j]) && k < maxDigits) {
    v = v * 10 + (b[j]! - 0x30);
    j++;
    k++;
  }
  if (k === 0 || v > limit || (j < to && isDigit(b[j]))) return null;
  return [v, j];
}

/** `h1,h2,h3,h4,p1,p2` at b[from, to) (spaces before it skipped). */
export function parseHostPort(b: Uint8Array, from: number, to: number): FtpEndpoint | null {
  let i = from;
  while (i < to && b[i] === SP) i++;
  const start = i;
  const v = [0, 0, 0, 0, 0, 0];
  for (let k = 0; k < 6; k++) {
    const r = num(b, i, to, 3, 255);
    if (r === null) return null;
    v[k] = r[0];
    i = r[1];
    if (k < 5) {
      if (b[i] !== COMMA || i >= to) return null;
      i++;
    }
  }
  const addr = ((v[0]! << 24) | (v[1]! << 16) | (v[2]! << 8) | v[3]!) >>> 0;
  return { addr, port: (v[4]! << 8) | v[5]!, from: start, to: i, delim: 0 };
}

/** The argument of `PORT` (b[from, to) is what follows "PORT"), or null. */
export function parsePort(b: Uint8Array, from: number, to: number): FtpEndpoint | null {
  const r = parseHostPort(b, from, to);
  if (r === null) return null;
  let i = r.to;
  while (i < to && b[i] === SP) i++;
  return i === to ? r : null;
}

/** Dotted quad at b[i, to) ending at `delim`; returns [addr, next] or null. */
function dotted(b: Uint8Array, i: number, to: number, delim: number): [number, number] | null {
  let a = 0;
  let j = i;
  for (let k = 0; k < 4; k++) {
    const r = num(b, j, to, 3, 255);
    if (r === null) return null;
    a = a * 256 + r[0];
    j = r[1];
    if (k < 3) {
      if (b[j] !== 0x2e) return null;
      j++;
    }
  }
  return b[j] === delim ? [a >>> 0, j] : null;
}

/** RFC 2428 §2: `EPRT <d>1<d>a.b.c.d<d>port<d>` (b[from, to) follows "EPRT"). IPv4 only. */
export function parseEprt(b: Uint8Array, from: number, to: number): FtpEndpoint | null {
  let i = from;
  while (i < to && b[i] === SP) i++;
  const start = i;
  const d = b[i];
  // The delimiter: any printable ASCII character (33-126), RFC 2428 §2.
  if (d === undefined || d < 33 || d > 126 || isDigit(d) || i + 1 >= to) return null;
  if (b[i + 1] !== 0x31 || b[i + 2] !== d) return null;
  const a = dotted(b, i + 3, to, d);
  if (a === null) return null;
  const p = num(b, a[1] + 1, to, 5, 65535);
  if (p === null || b[p[1]] !== d) return null;
  let j = p[1] + 1;
  const end = j;
  while (j < to && b[j] === SP) j++;
  if (j !== to) return null;
  return { addr: a[0], port: p[0], from: start, to: end, delim: d };
}

/** RFC 959 227 reply: the six numbers found from the first digit (RFC 1123 §4.1.2.6). */
export function parse227(b: Uint8Array, from: number, to: number): FtpEndpoint | null {
  let i = from;
  while (i < to && !isDigit(b[i])) i++;
  if (i >= to) return null;
  return parseHostPort(b, i, to);
}

/** RFC 2428 §3 229 reply: `(<d><d><d>port<d>)`; `addr` is 0 (EPSV names no address). */
export function parse229(b: Uint8Array, from: number, to: number): FtpEndpoint | null {
  let i = from;
  while (i < to && b[i] !== 0x28) i++;
  if (i + 5 >= to) return null;
  const d = b[i + 1]!;
  if (d < 33 || d > 126 || isDigit(d) || b[i + 2] !== d || b[i + 3] !== d) return null;
  const p = num(b, i + 4, to, 5, 65535);
  if (p === null || b[p[1]] !== d || b[p[1] + 1] !== 0x29) return null;
  return { addr: 0, port: p[0], from: i + 4, to: p[1], delim: d };
}

function formatIp(a: number, sep: string): string {
  return `${a >>> 24}${sep}${(a >>> 16) & 255}${sep}${(a >>> 8) & 255}${sep}${a & 255}`;
}

/** Case-insensitive ASCII keyword of 4 characters followed by a space (or line end) at b[i]. */
function keyword(b: Uint8Array, i: number, to: number, kw: string): boolean {
  if (i + 4 > to) return false;
  for (let k = 0; k < 4; k++) if ((b[i + k]! | 0x20) !== (kw.charCodeAt(k) | 0x20)) return false;
  return i + 4 === to || b[i + 4] === SP || b[i + 4] === CR || b[i + 4] === LF;
}

const enum Kind {
  None = 0,
  Port = 1,
  Eprt = 2,
  R227 = 3,
  R229 = 4,
}

/** Which watched line starts at b[i] (up to `to`), for this side of the connection. */
function lineKind(b: Uint8Array, i: number, to: number, client: boolean): number {
  if (client) {
    if (keyword(b, i, to, 'PORT')) return Kind.Port;
    if (keyword(b, i, to, 'EPRT')) return Kind.Eprt;
    return Kind.None;
  }
  if (i + 4 > to || b[i] !== 0x32 || b[i + 1] !== 0x32 || b[i + 3] !== SP) return Kind.None;
  return b[i + 2] === 0x37 ? Kind.R227 : b[i + 2] === 0x39 ? Kind.R229 : Kind.None;
}

/** Rewrite one complete watched line b[i, eol); returns the line's new end. */
function rewriteLine(p: AlgPacket, kind: number, i: number, eol: number): number {
  const b = p.b;
  const argFrom = i + 4;
  const e = kind === Kind.Port ? parsePort(b, argFrom, eol) : kind === Kind.Eprt ? parseEprt(b, argFrom, eol) : kind === Kind.R227 ? parse227(b, argFrom, eol) : parse229(b, argFrom, eol);
  if (e === null) {
    p.error(AlgError.Malformed);
    return eol;
  }
  // The address must be the sender's own: the inside client (PORT/EPRT) or the inside server
  // (227). 229 names none: the data connection goes to the control connection's server.
  if (kind !== Kind.R229 && e.addr !== p.inside) {
    p.error(AlgError.ForeignAddress);
    return eol;
  }
  if (e.port < 1024) {
    p.error(AlgError.LowPort);
    return eol;
  }
  const ext = p.expect(TCP, e.port, p.remote);
  if (ext < 0) return eol;
  let text: string;
  if (kind === Kind.Port || kind === Kind.R227) text = `${formatIp(p.external, ',')},${ext >>> 8},${ext & 255}`;
  else if (kind === Kind.Eprt) {
    const d = String.fromCharCode(e.delim);
    text = `${d}1${d}${formatIp(p.external, '.')}${d}${ext}${d}`;
  } else text = String(ext);
  const grow = text.length - (e.to - e.from);
  if (!p.replace(e.from, e.to, text)) return eol;
  return eol + grow;
}

/** Scan the payload's lines; rewrite the watched ones (see the header). */
function scan(p: AlgPacket, client: boolean): void {
  const b = p.b;
  let i = p.start;
  let atLineStart = !p.midLine;
  while (i < p.end) {
    let eol = i;
    while (eol < p.end && b[eol] !== LF) eol++;
    const complete = eol < p.end;
    if (atLineStart) {
      const kind = lineKind(b, i, eol, client);
      if (kind !== Kind.None) {
        if (!complete) {
          p.error(AlgError.Split);
          return;
        }
        // The text to parse stops before CR LF.
        const textEnd = eol > i && b[eol - 1] === CR ? eol - 1 : eol;
        eol = rewriteLine(p, kind, i, textEnd) + (eol - textEnd);
      }
    }
    atLineStart = true;
    i = eol + 1;
  }
}

export const ftp: AlgHelper = {
  name: 'ftp',
  proto: TCP,
  ports: [21],
  match: (proto, port) => proto === TCP && port === 21,
  outbound: (p) => scan(p, p.insideIsClient),
};
