/**
 * addr.ts — IPv4 addresses, CIDR blocks and port ranges at the edges (config, CLI, listings).
 *
 * Contract: inside masq an IPv4 address is an unsigned 32-bit number (host order, as read
 * big-endian off the wire). Strings exist only here, at the edges. Parsers return null on bad
 * input (callers turn that into an error that names the column); they never throw.
 * RFC 1918 (formerly RFC 1597) private ranges are known here for the rule warnings.
 */

/** Parse dotted-quad `a.b.c.d` into a uint32, or null. Leading zeros are refused (ambiguous octal). */
export function parseIPv4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = v * 256 + n;
  }
  return v >>> 0;
}

/** Format a uint32 as dotted quad (defined with the IPv4 header view, wire/ipv4.ts). */
export { formatIPv4 } from './wire/ipv4.js';
import { formatIPv4 } from './wire/ipv4.js';

export interface Cidr {
  /** Network address (host bits cleared). */
  readonly addr: number;
  readonly prefix: number;
  /** Netmask as uint32 (prefix 0 gives 0). */
  readonly mask: number;
}

export function prefixMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Parse `a.b.c.d/nn` or a bare address (as /32). Host bits set below the prefix are an error
 * when `strict` (the default), since `10.0.0.1/24` usually hides a typo.
 */
export function parseCidr(s: string, strict = true): Cidr | null {
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  const a = parseIPv4(addrText);
  if (a === null) return null;
  let prefix = 32;
  if (slash >= 0) {
    const pt = s.slice(slash + 1);
    if (!/^(0|[1-9][0-9]?)$/.test(pt)) return null;
    prefix = Number(pt);
    if (prefix > 32) return null;
  }
  const mask = prefixMask(prefix);
  const net = (a & mask) >>> 0;
  if (strict && net !== a) return null;
  return { addr: net, prefix, mask };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.addr)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, a: number): boolean {
  return ((a & c.mask) >>> 0) === c.addr;
}

/** True when every address of `inner` lies in `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.addr);
}

/** True when the two blocks share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrCovers(a, b) || cidrCovers(b, a);
}

/** RFC 1918 private blocks (RFC 1597 named the same three in 1994). */
export const PRIVATE_BLOCKS: readonly Cidr[] = [
  parseCidr('10.0.0.0/8')!,
  parseCidr('172.16.0.0/12')!,
  parseCidr('192.168.0.0/16')!,
];

/** RFC 6598 shared address space (carrier-grade NAT), also not globally routed. */
export const SHARED_BLOCK: Cidr = parseCidr('100.64.0.0/10')!;

/** True when the whole block lies inside one private (RFC 1918) or shared (RFC 6598) block. */
export function isPrivateCidr(c: Cidr): boolean {
  return PRIVATE_BLOCKS.some((p) => cidrCovers(p, c)) || cidrCovers(SHARED_BLOCK, c);
}

export interface PortRange {
  readonly lo: number;
  readonly hi: number;
}

/** Parse `n` or `lo-hi` (0..65535, lo ≤ hi), or null. */
export function parsePortRange(s: string): PortRange | null {
  const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(s);
  if (!m) return null;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > 65535 || hi > 65535 || lo > hi) return null;
  return { lo, hi };
}

export function formatPortRange(r: PortRange): string {
  return r.lo === r.hi ? String(r.lo) : `${r.lo}-${r.hi}`;
}
