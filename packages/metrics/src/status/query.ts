/**
 * query.ts — the status page's session query: parsed and validated once from the URL's
 * search parameters into numbers, so that the table scan compares integers and builds no
 * string for a row that does not match.
 *
 * Contract:
 *  - `parseSessionQuery(params)` returns a SessionQuery or throws QueryError with a message
 *    that names the parameter and the expected form (the API answers 400 with it).
 *  - Parameters (all optional): proto=tcp|udp|icmp; state=<TCP state name>|active (active =
 *    any non-TCP session; a TCP state implies proto=tcp); inside=ADDR (the inside endpoint);
 *    outside=ADDR (the external OR the remote endpoint); port=N (any of the three ports);
 *    offset=N (≥ 0); limit=N (1..MAX_PAGE, default DEFAULT_PAGE).
 *  - ADDR is `a.b.c.d`, `a.b.c.d/n`, a prefix of whole octets (`10.1`, `10.1.` = 10.1.0.0/16),
 *    each optionally followed by `:port`, or `:port` alone.
 *  - `matchesEndpoint` / the mask test are pure integer comparisons (uint32 addresses).
 */
import { TCP_STATE_NAMES } from '@masq/core';

/** Rows a page holds unless `limit` says otherwise. */
export const DEFAULT_PAGE = 50;
/** The most rows one request may ask for: the browser never receives a whole large table. */
export const MAX_PAGE = 500;
/** The highest offset accepted (beyond any table: 2^26 sessions per partition × 256). */
export const MAX_OFFSET = 2 ** 34;

export class QueryError extends Error {}

/** An address (masked) and optionally a port; mask 0 = any address. */
export interface EndpointMatch {
  addr: number;
  mask: number;
  /** -1 = any port. */
  port: number;
}

export interface SessionQuery {
  /** IP protocol number, 0 = any. */
  proto: number;
  /** TCP state index (TCP_STATE_NAMES), -1 = any, -2 = "active" (every non-TCP session). */
  state: number;
  inside: EndpointMatch | null;
  outside: EndpointMatch | null;
  /** -1 = any. */
  port: number;
  offset: number;
  limit: number;
}

const PROTOS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1 };
export const STATE_ACTIVE = -2;

function parsePort(s: string, what: string): number {
  if (!/^[0-9]{1,5}$/.test(s) || Number(s) > 65535) throw new QueryError(`${what}: port "${s}" is not a number from 0 to 65535`);
  return Number(s);
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse an ADDR (see the header); `what` names the parameter in errors. */
export function parseEndpoint(text: string, what: string): EndpointMatch {
  const s = text.trim();
  const form = `expected a.b.c.d, a.b.c.d/n or a prefix such as 10.1., each optionally with :port, or :port`;
  let addrText = s;
  let port = -1;
  const colon = s.indexOf(':');
  if (colon >= 0) {
    addrText = s.slice(0, colon);
    port = parsePort(s.slice(colon + 1), what);
  }
  if (addrText === '') {
    if (port < 0) throw new QueryError(`${what}: empty (${form})`);
    return { addr: 0, mask: 0, port };
  }
  let prefix: number;
  let octetsText: string;
  const slash = addrText.indexOf('/');
  if (slash >= 0) {
    octetsText = addrText.slice(0, slash);
    const p = addrText.slice(slash + 1);
    if (!/^[0-9]{1,2}$/.test(p) || Number(p) > 32) throw new QueryError(`${what}: prefix length "/${p}" is not 0-32 (${form})`);
    prefix = Number(p);
  } else {
    octetsText = addrText.endsWith('.') ? addrText.slice(0, -1) : addrText;
    prefix = -1;
  }
  const parts = octetsText.split('.');
  if (parts.length > 4 || parts.some((o) => !/^[0-9]{1,3}$/.test(o) || Number(o) > 255)) {
    throw new QueryError(`${what}: "${text}" is not an address (${form})`);
  }
  if (prefix >= 0 && parts.length !== 4) throw new QueryError(`${what}: "${text}": write all four octets before /n (${form})`);
  if (prefix < 0) prefix = parts.length * 8;
  let addr = 0;
  for (let i = 0; i < 4; i++) addr = addr * 256 + (i < parts.length ? Number(parts[i]) : 0);
  const mask = maskOf(prefix);
  return { addr: (addr & mask) >>> 0, mask, port };
}

function parseCount(v: string, what: string, lo: number, hi: number): number {
  if (!/^[0-9]{1,12}$/.test(v) || Number(v) < lo || Number(v) > hi) throw new QueryError(`${what}: "${v}" is not a whole number from ${lo} to ${hi}`);
  return Number(v);
}

/** Parse the page's query parameters; empty values count as absent. */
export function parseSessionQuery(params: URLSearchParams): SessionQuery {
  const get = (k: string): string | null => {
    const v = params.get(k);
    return v === null || v.trim() === '' ? null : v.trim();
  };
  const q: SessionQuery = { proto: 0, state: -1, inside: null, outside: null, port: -1, offset: 0, limit: DEFAULT_PAGE };
  const proto = get('proto');
  if (proto !== null) {
    const p = PROTOS[proto.toLowerCase()];
    if (p === undefined) throw new QueryError(`proto: "${proto}" is not one of tcp, udp, icmp`);
    q.proto = p;
  }
  const state = get('state');
  if (state !== null) {
    const st = state.toLowerCase();
    if (st === 'active') q.state = STATE_ACTIVE;
    else {
      const i = (TCP_STATE_NAMES as readonly string[]).indexOf(st);
      if (i < 0) throw new QueryError(`state: "${state}" is not one of ${[...TCP_STATE_NAMES, 'active'].join(', ')}`);
      if (q.proto !== 0 && q.proto !== 6) throw new QueryError(`state: "${state}" is a TCP state, but proto is not tcp`);
      q.state = i;
      q.proto = 6;
    }
  }
  const inside = get('inside');
  if (inside !== null) q.inside = parseEndpoint(inside, 'inside');
  const outside = get('outside');
  if (outside !== null) q.outside = parseEndpoint(outside, 'outside');
  const port = get('port');
  if (port !== null) q.port = parsePort(port, 'port');
  const offset = get('offset');
  if (offset !== null) q.offset = parseCount(offset, 'offset', 0, MAX_OFFSET);
  const limit = get('limit');
  if (limit !== null) q.limit = parseCount(limit, 'limit', 1, MAX_PAGE);
  return q;
}

/** Does (addr, port) fall in `m`? */
export function matchesEndpoint(m: EndpointMatch, addr: number, port: number): boolean {
  return ((addr & m.mask) >>> 0) === m.addr && (m.port < 0 || m.port === port);
}
