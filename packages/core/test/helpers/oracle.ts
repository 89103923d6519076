/**
 * oracle.ts — an independent, deliberately naive checksum oracle for every packet a test
 * sees emitted (STYLE.md item 14).
 *
 * Owns: the Internet checksum written the plainest way (RFC 1071 §4.1: add 16-bit words into
 * a wide accumulator, fold the carries, complement), the TCP/UDP pseudo-header (RFC 9293
 * §3.1, RFC 768), and a packet checker that reports every checksum or length that is wrong.
 *
 * Contract: nothing here imports packages/core/src — the oracle must not share a bug with the
 * code under test. It never mutates its input except in the explicit `fill*` functions the
 * packet builders use. `problems(pkt)` returns a list of human-readable faults (empty = valid):
 *   - IPv4: version 4, IHL ≥ 5, total length = the bytes emitted, header checksum;
 *   - not a fragment (MF clear, offset 0): TCP data offset and checksum, UDP length and
 *     checksum (0 = "no checksum", RFC 768), ICMP checksum over the whole message;
 *   - ICMP errors (types 3, 4, 11, 12): the quoted IPv4 header's checksum when the whole
 *     header is quoted, and the quoted transport checksum when the whole quoted datagram is
 *     present (a UDP quote of 0 means none; TCP and ICMP quotes cut short are not checkable).
 */

/** RFC 1071 §4.1, literally: sum 16-bit words, fold the carries, complement. */
export function internetChecksum(...chunks: Uint8Array[]): number {
  // Concatenate first so that an odd-length chunk in the middle is handled as one stream.
  let total = 0;
  for (const c of chunks) total += c.length;
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  let sum = 0;
  let i = 0;
  while (i + 1 < all.length) {
    sum += all[i]! * 256 + all[i + 1]!;
    i += 2;
  }
  if (i < all.length) sum += all[i]! * 256;
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return 0xffff - sum;
}

/** True when data that includes its own checksum field sums to all ones. */
export function sumsToOnes(...chunks: Uint8Array[]): boolean {
  return internetChecksum(...chunks) === 0;
}

/** The 12-byte TCP/UDP pseudo-header. */
export function pseudoHeader(src: Uint8Array, dst: Uint8Array, proto: number, length: number): Uint8Array {
  const p = new Uint8Array(12);
  p.set(src.subarray(0, 4), 0);
  p.set(dst.subarray(0, 4), 4);
  p[8] = 0;
  p[9] = proto;
  p[10] = (length >> 8) & 0xff;
  p[11] = length & 0xff;
  return p;
}

function be16(b: Uint8Array, o: number): number {
  return b[o]! * 256 + b[o + 1]!;
}
function setBe16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

const ICMP_ERRORS = new Set([3, 4, 11, 12]);

/** Faults of the IPv4 header at `pkt[0..]`; `emitted` demands total length = pkt.length. */
function ipFaults(pkt: Uint8Array, where: string, emitted: boolean): string[] {
  const out: string[] = [];
  if (pkt.length < 20) return [`${where}: ${pkt.length} bytes, shorter than an IPv4 header`];
  if (pkt[0]! >> 4 !== 4) out.push(`${where}: version ${pkt[0]! >> 4}`);
  const hl = (pkt[0]! & 15) * 4;
  if (hl < 20) return [...out, `${where}: IHL ${hl / 4} < 5`];
  if (hl > pkt.length) return [...out, `${where}: header of ${hl} bytes, only ${pkt.length} present`];
  const tl = be16(pkt, 2);
  if (emitted && tl !== pkt.length) out.push(`${where}: total length ${tl} but ${pkt.length} bytes emitted`);
  if (tl < hl) out.push(`${where}: total length ${tl} < header length ${hl}`);
  if (!sumsToOnes(pkt.subarray(0, hl))) {
    const copy = pkt.slice(0, hl);
    setBe16(copy, 10, 0);
    out.push(`${where}: IP header checksum 0x${be16(pkt, 10).toString(16)}, should be 0x${internetChecksum(copy).toString(16)}`);
  }
  return out;
}

/** Faults of a transport header + payload `l4` (whole datagram present). */
function l4Faults(proto: number, src: Uint8Array, dst: Uint8Array, l4: Uint8Array, where: string): string[] {
  if (proto === 6) {
    if (l4.length < 20) return [`${where}: TCP segment of ${l4.length} bytes`];
    const doff = (l4[12]! >> 4) * 4;
    if (doff < 20 || doff > l4.length) return [`${where}: TCP data offset ${doff} in a ${l4.length}-byte segment`];
    if (!sumsToOnes(pseudoHeader(src, dst, 6, l4.length), l4)) {
      const copy = l4.slice();
      setBe16(copy, 16, 0);
      return [`${where}: TCP checksum 0x${be16(l4, 16).toString(16)}, should be 0x${internetChecksum(pseudoHeader(src, dst, 6, l4.length), copy).toString(16)}`];
    }
    return [];
  }
  if (proto === 17) {
    if (l4.length < 8) return [`${where}: UDP datagram of ${l4.length} bytes`];
    const ul = be16(l4, 4);
    if (ul !== l4.length) return [`${where}: UDP length ${ul} but ${l4.length} bytes follow the IP header`];
    if (be16(l4, 6) === 0) return []; // RFC 768: no checksum
    if (!sumsToOnes(pseudoHeader(src, dst, 17, l4.length), l4)) {
      const copy = l4.slice();
      setBe16(copy, 6, 0);
      let want = internetChecksum(pseudoHeader(src, dst, 17, l4.length), copy);
      if (want === 0) want = 0xffff;
      return [`${where}: UDP checksum 0x${be16(l4, 6).toString(16)}, should be 0x${want.toString(16)}`];
    }
    return [];
  }
  if (proto === 1) {
    if (l4.length < 8) return [`${where}: ICMP message of ${l4.length} bytes`];
    if (!sumsToOnes(l4)) {
      const copy = l4.slice();
      setBe16(copy, 2, 0);
      return [`${where}: ICMP checksum 0x${be16(l4, 2).toString(16)}, should be 0x${internetChecksum(copy).toString(16)}`];
    }
    return [];
  }
  return [];
}

/**
 * Every checksum and length fault of the IPv4 packet `pkt` (exactly the emitted bytes).
 * Options: `embeddedIp: false` skips the quoted header's checksum (routers that quote a header
 * after changing its TTL without fixing its checksum).
 */
export function problems(pkt: Uint8Array, opts: { embeddedIp?: boolean } = {}): string[] {
  const out = ipFaults(pkt, 'IP', true);
  if (out.length > 0) return out;
  const hl = (pkt[0]! & 15) * 4;
  const tl = be16(pkt, 2);
  const proto = pkt[9]!;
  const fragged = (be16(pkt, 6) & 0x3fff) !== 0;
  if (fragged) return out; // the transport checksum spans fragments we do not have
  const src = pkt.subarray(12, 16);
  const dst = pkt.subarray(16, 20);
  const l4 = pkt.subarray(hl, tl);
  out.push(...l4Faults(proto, src, dst, l4, 'L4'));
  if (proto !== 1 || l4.length < 8 || !ICMP_ERRORS.has(l4[0]!)) return out;
  // The quoted packet of an ICMP error.
  const q = l4.subarray(8);
  if (q.length < 20) return out;
  const qhl = (q[0]! & 15) * 4;
  if (q[0]! >> 4 !== 4 || qhl < 20 || qhl > q.length) return out;
  if (opts.embeddedIp !== false && !sumsToOnes(q.subarray(0, qhl))) {
    out.push(`quoted IP header checksum 0x${be16(q, 10).toString(16)} does not verify`);
  }
  const qtl = be16(q, 2);
  const qfrag = (be16(q, 6) & 0x3fff) !== 0;
  if (!qfrag && qtl >= qhl && qtl <= q.length) {
    // The whole quoted datagram is present: its transport checksum is checkable.
    out.push(...l4Faults(q[9]!, q.subarray(12, 16), q.subarray(16, 20), q.subarray(qhl, qtl), 'quoted L4'));
  }
  return out;
}

export function isValid(pkt: Uint8Array): boolean {
  return problems(pkt).length === 0;
}

// ---------------------------------------------------------------------------------------------
// Filling checksums (for the packet builders)

/** Compute and store the IPv4 header checksum of `pkt`. */
export function fillIpChecksum(pkt: Uint8Array): void {
  const hl = (pkt[0]! & 15) * 4;
  setBe16(pkt, 10, 0);
  setBe16(pkt, 10, internetChecksum(pkt.subarray(0, hl)));
}

/**
 * Compute and store the transport checksum of a whole (unfragmented) datagram whose IPv4
 * header is at pkt[0..]. UDP: a computed 0 is sent as 0xFFFF (RFC 768).
 */
export function fillL4Checksum(pkt: Uint8Array): void {
  const hl = (pkt[0]! & 15) * 4;
  const tl = be16(pkt, 2);
  const proto = pkt[9]!;
  const l4 = pkt.subarray(hl, tl);
  const ph = pseudoHeader(pkt.subarray(12, 16), pkt.subarray(16, 20), proto, l4.length);
  if (proto === 6) {
    setBe16(l4, 16, 0);
    setBe16(l4, 16, internetChecksum(ph, l4));
  } else if (proto === 17) {
    setBe16(l4, 6, 0);
    const c = internetChecksum(ph, l4);
    setBe16(l4, 6, c === 0 ? 0xffff : c);
  } else if (proto === 1) {
    setBe16(l4, 2, 0);
    setBe16(l4, 2, internetChecksum(l4));
  }
}
