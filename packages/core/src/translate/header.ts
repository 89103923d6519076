/**
 * translate/header.ts — the one IPv4 header step every translation ends with: the address
 * change's checksum delta, plus the TTL + 1 of hop compensation when asked, applied to the
 * header checksum incrementally (RFC 1624). Used by the fast path both ways, later fragments
 * and ICMP errors; the caller has already written the new address.
 *
 * Contract: `b[off..]` is a validated IPv4 header; `dIp` is a one's complement delta (not
 * necessarily folded). With `compensate`, a TTL below 255 grows by one (a TTL of 255 is left
 * alone: it cannot grow). No allocation; small enough to inline into the fast path.
 *
 * References: RFC 1624 (incremental checksum update), RFC 791 (TTL).
 */
import { applyDelta, getCheck, putCheck } from '../wire/checksum.js';
import * as ip from '../wire/ipv4.js';

/** The constant checksum delta of TTL + 1 (the TTL/protocol word grows by 0x0100). */
const TTL_PLUS_ONE = 0x0100;

/** TTL + 1 when `compensate` (and TTL < 255), then the header checksum moved by `dIp`. */
export function finishIpHeader(b: Uint8Array, off: number, dIp: number, compensate: boolean): void {
  if (compensate) {
    const ttl = b[off + ip.TTL]!;
    if (ttl < 255) {
      b[off + ip.TTL] = ttl + 1;
      dIp += TTL_PLUS_ONE;
    }
  }
  putCheck(b, off + ip.CHECK, applyDelta(getCheck(b, off + ip.CHECK), dIp));
}
