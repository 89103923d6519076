/**
 * coalesce.ts — UDP datagrams of one flow that sit next to each other in a worker's write
 * batch go to the TUN as one UDP super-packet (virtio_net_hdr gso_type UDP_L4), written with
 * one system call; the kernel cuts it back into the same datagrams on the way out. This is the
 * userspace counterpart of Linux's UDP GRO for forwarding (net/ipv4/udp_offload.c), done across
 * the packets of one read batch.
 *
 * Owns: which datagrams may be joined, and the super-packet's headers.
 *
 * Contract: `run(pool, off, len, slot, n)` rewrites the write batch [0, n) (slot offsets of the
 * vnet header, lengths from it, slot numbers) in place and returns its new length; the slots
 * whose bytes went into an earlier entry's super-packet are left in `folded[0, nFolded)` for
 * the caller to recycle after the write. `supers` and `joined` count the super-packets made
 * and the datagrams in them. Nothing allocates. Only for a TUN with UDP segmentation offload
 * (TUN_F_USO4, Linux 6.2+: tun_get_user takes GSO_UDP_L4 from then on).
 *
 * On the way out the kernel (inet_gso_segment, __udp_gso_segment) gives each segment its own
 * IPv4 total length, header checksum and ID (the first ID + i), UDP length and checksum, and
 * copies everything else from the super-packet's headers. So a run is joined only when that
 * gives back exactly the bytes the datagrams would have had alone (RFC 791, RFC 768, RFC 6864):
 *  - IPv4 without options, not a fragment, UDP, not already a super-packet (gso NONE);
 *  - the same source, destination, ports, TOS, TTL and flags; IDs consecutive (id, id+1, ...);
 *  - the same payload size (the segment size), except the last, which may be shorter;
 *  - a checksum the kernel may recompute from the bytes: partial (NEEDS_CSUM), verified by
 *    the kernel on read (DATA_VALID) and not zero, or complete and checked correct here. A zero
 *    checksum ("none", RFC 768) must not gain one, and a wrong one must not be mended;
 *  - at most MAX_SEGMENTS datagrams (the kernel takes 128), 65,535 bytes of IP packet, and
 *    within the first slot's room.
 */
import { fold, pseudoHeaderSum, sumWords, u32 } from '@masq/core';

/** Datagrams per super-packet at most (Linux: UDP_MAX_SEGMENTS = 128). */
export const MAX_SEGMENTS = 64;

const NEEDS_CSUM = 1;
const DATA_VALID = 2;
const GSO_UDP_L4 = 5;
const IP_HDR = 20;
const UDP_HDR = 8;

export class UdpCoalescer {
  /** Slots folded into an earlier entry by the last run (the caller recycles them). */
  readonly folded: Int32Array;
  nFolded = 0;
  /** Super-packets made, and datagrams joined into them, since construction. */
  supers = 0;
  joined = 0;

  /**
   * @param H     vnet header bytes in front of each packet (10).
   * @param room  bytes from the IP header to the end of a slot (the most a super-packet may hold).
   * @param batch the write batch's capacity.
   */
  constructor(
    private readonly H: number,
    private readonly room: number,
    batch: number,
  ) {
    this.folded = new Int32Array(batch);
  }

  run(pool: Uint8Array, off: Uint32Array, len: Uint32Array, slot: Int32Array, n: number): number {
    this.nFolded = 0;
    const H = this.H;
    const limit = Math.min(65535, this.room);
    let w = 0;
    let i = 0;
    while (i < n) {
      const head = off[i]!;
      const seg = this.payload(pool, head, len[i]!);
      let j = i + 1;
      if (seg > 0) {
        const ip = head + H;
        let total = IP_HDR + UDP_HDR + seg;
        let id = (pool[ip + 4]! << 8) | pool[ip + 5]!;
        while (j < n && j - i < MAX_SEGMENTS) {
          const o = off[j]!;
          const p = this.payload(pool, o, len[j]!);
          if (p <= 0 || p > seg || total + p > limit || !sameFlow(pool, ip, o + H)) break;
          const nid = (pool[o + H + 4]! << 8) | pool[o + H + 5]!;
          if (nid !== ((id + 1) & 0xffff)) break;
          id = nid;
          total += p;
          j++;
          if (p < seg) break; // a shorter datagram can only be the last segment
        }
      }
      if (j - i >= 2) {
        this.build(pool, off, len, i, j, seg);
        for (let k = i + 1; k < j; k++) this.folded[this.nFolded++] = slot[k]!;
        this.supers++;
        this.joined += j - i;
      }
      off[w] = off[i]!;
      len[w] = len[i]!;
      slot[w] = slot[i]!;
      w++;
      i = j;
    }
    return w;
  }

  /** UDP payload bytes of the packet at `o` (vnet header first) if it may be joined, else -1. */
  private payload(pool: Uint8Array, o: number, l: number): number {
    const ip = o + this.H;
    if (pool[o + 1] !== 0 || pool[ip] !== 0x45 || pool[ip + 9] !== 17) return -1; // gso NONE, IPv4 no options, UDP
    if ((pool[ip + 6]! & 0x3f) !== 0 || pool[ip + 7] !== 0) return -1; // MF or an offset: a fragment
    const tot = (pool[ip + 2]! << 8) | pool[ip + 3]!;
    const ulen = (pool[ip + 24]! << 8) | pool[ip + 25]!;
    if (tot + this.H !== l || ulen !== tot - IP_HDR || ulen <= UDP_HDR) return -1;
    const flags = pool[o]!;
    if ((flags & NEEDS_CSUM) !== 0) return ulen - UDP_HDR;
    const check = (pool[ip + 26]! << 8) | pool[ip + 27]!;
    if (check === 0) return -1;
    if ((flags & DATA_VALID) !== 0) return ulen - UDP_HDR;
    // Complete and unverified: joined only if correct (the kernel will write a fresh one).
    const s = sumWords(pool, ip + IP_HDR, ulen, pseudoHeaderSum(u32(pool, ip + 12), u32(pool, ip + 16), 17, ulen));
    return fold(s) === 0xffff ? ulen - UDP_HDR : -1;
  }

  /** Entries [i, j) become one super-packet in entry i's slot. */
  private build(pool: Uint8Array, off: Uint32Array, len: Uint32Array, i: number, j: number, seg: number): void {
    const H = this.H;
    const o = off[i]!;
    const ip = o + H;
    let end = ip + IP_HDR + UDP_HDR + seg;
    for (let k = i + 1; k < j; k++) {
      const from = off[k]! + H + IP_HDR + UDP_HDR;
      const p = len[k]! - H - IP_HDR - UDP_HDR;
      pool.copyWithin(end, from, from + p);
      end += p;
    }
    const tot = end - ip;
    const ulen = tot - IP_HDR;
    pool[ip + 2] = tot >>> 8;
    pool[ip + 3] = tot & 0xff;
    pool[ip + 10] = 0;
    pool[ip + 11] = 0;
    const hc = ~fold(sumWords(pool, ip, IP_HDR, 0)) & 0xffff;
    pool[ip + 10] = hc >>> 8;
    pool[ip + 11] = hc & 0xff;
    pool[ip + 24] = ulen >>> 8;
    pool[ip + 25] = ulen & 0xff;
    // Partial checksum: the pseudo-header's folded sum; the kernel adds each segment's bytes.
    const ps = fold(pseudoHeaderSum(u32(pool, ip + 12), u32(pool, ip + 16), 17, ulen));
    pool[ip + 26] = ps >>> 8;
    pool[ip + 27] = ps & 0xff;
    // virtio_net_hdr (little-endian u16s): NEEDS_CSUM, UDP_L4, hdr_len, gso_size, csum_start, csum_offset.
    pool[o] = NEEDS_CSUM;
    pool[o + 1] = GSO_UDP_L4;
    pool[o + 2] = IP_HDR + UDP_HDR;
    pool[o + 3] = 0;
    pool[o + 4] = seg & 0xff;
    pool[o + 5] = seg >>> 8;
    pool[o + 6] = IP_HDR;
    pool[o + 7] = 0;
    pool[o + 8] = 6;
    pool[o + 9] = 0;
    len[i] = H + tot;
  }
}

/** Same TOS, flags (DF), TTL, addresses and ports: everything the kernel copies to each segment. */
function sameFlow(b: Uint8Array, a: number, c: number): boolean {
  return (
    b[a + 1] === b[c + 1] && // TOS
    b[a + 6] === b[c + 6] && // flags (fragment bits were checked zero)
    b[a + 8] === b[c + 8] && // TTL
    b[a + 12] === b[c + 12] && b[a + 13] === b[c + 13] && b[a + 14] === b[c + 14] && b[a + 15] === b[c + 15] &&
    b[a + 16] === b[c + 16] && b[a + 17] === b[c + 17] && b[a + 18] === b[c + 18] && b[a + 19] === b[c + 19] &&
    b[a + 20] === b[c + 20] && b[a + 21] === b[c + 21] && b[a + 22] === b[c + 22] && b[a + 23] === b[c + 23]
  );
}
