/**
 * irc.ts — the IRC DCC helper's parser and rewriter: `DCC SEND` and `DCC CHAT` offers inside
 * a CTCP message (RFC 1459 §4.4.1 PRIVMSG; CTCP and DCC as the clients implement them, the
 * de-facto spec being the irchelp.org "CTCP" and "DCC" texts; TCP 6667 by default). Off by
 * default: "it is RECOMMENDED that all of those ALGs (except for FTP) be disabled by default"
 * (RFC 5382 REQ-6).
 *
 *   PRIVMSG bob :\x01DCC SEND "my file.txt" 181403650 40123 1048576\x01\r\n
 *                            type  argument  address    port  [size]
 *
 * Why a NAT needs this: the offer carries the offering (inside) host's IPv4 address as one
 * decimal integer and a port it listens on; the peer, anywhere on the Internet, connects
 * there. The helper rewrites the pair to the external address and a port it expects the
 * connection on (any remote address: the peer is not the IRC server), as Linux 2.0's
 * `ip_masq_irc` did.
 *
 * Contract: `parseDccOffer(b, start, end)` finds the first `\x01DCC SEND|CHAT ...\x01` in the
 * payload [start, end) (`end` bounded by the IP total length; `DCC`, `SEND` and `CHAT` in upper
 * case, as clients write them and as netfilter's irc helper matches them) and returns its address, port
 * and the span of the `address port` text, or null when there is none or it is not a
 * well-formed offer (unterminated CTCP, an address that is not a decimal uint32 (IPv6, dotted
 * quad), a port outside 1..65535: port 0 is a "reverse" DCC that asks the peer to listen and
 * needs nothing here). Scanning again from `ctcpEnd` finds the next one. The helper decides
 * what to do with it (the address must be the sender's own, the port ≥ 1024); this file only
 * reads and builds text. A CTCP split across TCP segments is not found (clients write each
 * line with one send, far below one MSS).
 *
 * The helper (`irc`): for an inside client, each offer naming the client's own address and a
 * port ≥ 1024 is rewritten to the external address and a port from the control session's
 * slice, with an expectation admitting one TCP connection from any remote address within the
 * expectation's time (the peer is whoever accepts the offer). An offer naming another
 * address counts ForeignAddress, a port below 1024 LowPort; neither is rewritten nor opens
 * anything.
 */
import { decimal, latin1, port } from './ascii.js';
import { IpProto } from '../wire/ipv4.js';
import { AlgError, type AlgHelper, type AlgPacket } from './types.js';

/** The usual IRC port. */
export const IRC_PORT = 6667;

export type DccType = 'SEND' | 'CHAT';

export interface DccOffer {
  readonly type: DccType;
  /** The file name (SEND, quotes removed) or `chat` (CHAT). */
  readonly argument: string;
  /** IPv4 address, uint32. */
  readonly addr: number;
  readonly port: number;
  /** The `address port` text, [start, end) in the packet bytes. */
  readonly start: number;
  readonly end: number;
  /** Just past the CTCP's closing \x01. */
  readonly ctcpEnd: number;
}

const CTCP = 0x01;
const MARK = [CTCP, 0x44, 0x43, 0x43, 0x20]; // \x01 "DCC "

export function parseDccOffer(b: Uint8Array, start: number, end: number): DccOffer | null {
  let at = start;
  while (at < end) {
    const open = find(b, at, end);
    if (open < 0) return null;
    const body = open + MARK.length;
    let close = body;
    while (close < end && b[close] !== CTCP && b[close] !== 0x0d && b[close] !== 0x0a) close++;
    if (close >= end || b[close] !== CTCP) return null; // unterminated on this line
    const offer = parseBody(b, body, close);
    if (offer !== null) return offer;
    at = close + 1;
  }
  return null;
}

/** The replacement for the offer's `address port` text. */
export function rewriteDccOffer(addr: number, port: number): string {
  return `${addr >>> 0} ${port}`;
}

function parseBody(b: Uint8Array, body: number, close: number): DccOffer | null {
  const text = latin1(b, body, close);
  const m = /^(SEND|CHAT) ("[^"]*"|[^ "]+) ([0-9]{1,10}) ([0-9]{1,5})( [0-9]+)*$/.exec(text);
  if (m === null) return null;
  const addr = decimal(m[3]!, 0xffffffff, 10);
  const p = port(m[4]!);
  if (addr === null || p === null) return null;
  const arg = m[2]!;
  const argument = arg.startsWith('"') ? arg.slice(1, -1) : arg;
  const start = body + m[1]!.length + 1 + arg.length + 1;
  const end = start + m[3]!.length + 1 + m[4]!.length;
  return { type: m[1] as DccType, argument, addr, port: p, start, end, ctcpEnd: close + 1 };
}

function find(b: Uint8Array, from: number, end: number): number {
  for (let i = b.indexOf(CTCP, from); i >= 0 && i + MARK.length <= end; i = b.indexOf(CTCP, i + 1)) {
    let k = 1;
    while (k < MARK.length && b[i + k] === MARK[k]) k++;
    if (k === MARK.length) return i;
  }
  return -1;
}

const TCP = IpProto.Tcp;
/** `expect`'s remote that admits any address. */
const ANY_REMOTE = 0;

function offersOut(p: AlgPacket): void {
  if (!p.insideIsClient) return;
  let at = p.start;
  for (;;) {
    const o = parseDccOffer(p.b, at, p.end);
    if (o === null) return;
    at = o.ctcpEnd;
    if (o.addr !== p.inside) {
      p.error(AlgError.ForeignAddress);
      continue;
    }
    if (o.port < 1024) {
      p.error(AlgError.LowPort);
      continue;
    }
    const ext = p.expect(TCP, o.port, ANY_REMOTE);
    if (ext < 0) continue;
    const text = rewriteDccOffer(p.external, ext);
    if (!p.replace(o.start, o.end, text)) return;
    at += text.length - (o.end - o.start);
  }
}

export const irc: AlgHelper = {
  name: 'irc',
  proto: TCP,
  ports: [IRC_PORT],
  match: (proto, port) => proto === TCP && port === IRC_PORT,
  outbound: offersOut,
};
