/**
 * partial.ts — the TUN offload's partial checksum, simulated for tests: what the kernel
 * hands over with VIRTIO_NET_HDR_F_NEEDS_CSUM (the TCP/UDP checksum field holds only the
 * folded pseudo-header sum, RFC 9293 §3.1 / RFC 768), and what it does on the way out (sum
 * from the L4 header on, complement). Written plainly, importing nothing from src.
 */

/** Replace the packet's L4 checksum by the folded pseudo-header sum (a NEEDS_CSUM read). */
export function makePartial(pkt: Uint8Array): void {
  const hl = (pkt[0]! & 15) * 4;
  const tl = (pkt[2]! << 8) | pkt[3]!;
  const at = hl + (pkt[9] === 6 ? 16 : 6);
  let s = 0;
  for (let i = 12; i < 20; i += 2) s += (pkt[i]! << 8) | pkt[i + 1]!;
  s += pkt[9]! + (tl - hl);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  pkt[at] = s >> 8;
  pkt[at + 1] = s & 0xff;
}

/** What the kernel (or NIC) does with it on the way out: sum from the L4 header on, complement. */
export function completePartial(pkt: Uint8Array): void {
  const hl = (pkt[0]! & 15) * 4;
  const tl = (pkt[2]! << 8) | pkt[3]!;
  const at = hl + (pkt[9] === 6 ? 16 : 6);
  let s = 0;
  for (let i = hl; i + 1 < tl; i += 2) s += (pkt[i]! << 8) | pkt[i + 1]!;
  if ((tl - hl) & 1) s += pkt[tl - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  const c = ~s & 0xffff;
  const v = c === 0 ? 0xffff : c;
  pkt[at] = v >> 8;
  pkt[at + 1] = v & 0xff;
}
