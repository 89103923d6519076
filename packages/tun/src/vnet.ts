/**
 * vnet.ts — struct virtio_net_hdr, the 10-byte header that precedes every packet read from or
 * written to a TUN opened with IFF_VNET_HDR (include/uapi/linux/virtio_net.h, virtio spec
 * 1.1 §5.1.6 "Device Operation").
 *
 *    0        1        2                 4                 6                 8                10
 *   +--------+--------+-----------------+-----------------+-----------------+-----------------+
 *   | flags  |gso_type|     hdr_len     |    gso_size     |   csum_start    |   csum_offset   |
 *   +--------+--------+-----------------+-----------------+-----------------+-----------------+
 *
 *   flags        VIRTIO_NET_HDR_F_NEEDS_CSUM (1): the L4 checksum is partial. The checksum field
 *                at csum_start + csum_offset holds only the pseudo-header sum; the sum over
 *                csum_start..end must still be folded in. Set by the kernel on reads once
 *                TUN_F_CSUM is enabled; a writer may set it to let the kernel finish the sum.
 *                VIRTIO_NET_HDR_F_DATA_VALID (2): the checksum was verified already.
 *   gso_type     VIRTIO_NET_HDR_GSO_NONE (0), _TCPV4 (1), _UDP (3), _TCPV6 (4), _UDP_L4 (5),
 *                | _ECN (0x80). Not NONE only with TUN_F_TSO4/6 (TCP) or TUN_F_USO4/6 (UDP_L4,
 *                Linux 6.2+): the packet is a super-packet (up to 64 KiB) to be cut into
 *                gso_size-byte segments. A UDP_L4 super-packet's UDP length field covers the
 *                whole super-packet; each segment gets its own on the way out.
 *   hdr_len      length of the headers (IP + TCP) of a GSO packet.
 *   gso_size     payload bytes per segment of a GSO packet (the MSS).
 *   csum_start   offset from the start of the IP header where checksumming starts.
 *   csum_offset  offset from csum_start of the 16-bit checksum field.
 *
 * The u16 fields are in the TUN's virtio byte order: little-endian on little-endian hosts (all
 * that masq runs on), unless TUNSETVNETBE was used. An all-zero header means "complete packet,
 * checksums correct, no GSO", which is what a writer that does no offload puts in front.
 *
 * Without TUN_F_CSUM the kernel completes checksums before handing packets to us; the header is
 * then all zeros on read (flags may carry DATA_VALID).
 */

export const VNET_HDR_LEN = 10;

export const VNET_FLAGS = 0;
export const VNET_GSO_TYPE = 1;
export const VNET_HDR_LEN_FIELD = 2;
export const VNET_GSO_SIZE = 4;
export const VNET_CSUM_START = 6;
export const VNET_CSUM_OFFSET = 8;

export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 0x01;
export const VIRTIO_NET_HDR_F_DATA_VALID = 0x02;

export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** TUNSETOFFLOAD bits (include/uapi/linux/if_tun.h). */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
/** UDP segmentation offload (Linux 6.2+); the kernel takes it only with both bits and csum. */
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;

function le16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

function setLe16(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
}

export function vnetFlags(b: Uint8Array, o: number): number {
  return b[o + VNET_FLAGS];
}
export function vnetGsoType(b: Uint8Array, o: number): number {
  return b[o + VNET_GSO_TYPE];
}
export function vnetHdrLen(b: Uint8Array, o: number): number {
  return le16(b, o + VNET_HDR_LEN_FIELD);
}
export function vnetGsoSize(b: Uint8Array, o: number): number {
  return le16(b, o + VNET_GSO_SIZE);
}
export function vnetCsumStart(b: Uint8Array, o: number): number {
  return le16(b, o + VNET_CSUM_START);
}
export function vnetCsumOffset(b: Uint8Array, o: number): number {
  return le16(b, o + VNET_CSUM_OFFSET);
}

/** Write an all-zero header: a complete packet, checksums done, no GSO. */
export function writeVnetNone(b: Uint8Array, o: number): void {
  b.fill(0, o, o + VNET_HDR_LEN);
}

/** Write a NEEDS_CSUM header asking the kernel to finish the L4 checksum. */
export function writeVnetNeedsCsum(
  b: Uint8Array,
  o: number,
  csumStart: number,
  csumOffset: number,
): void {
  b[o + VNET_FLAGS] = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  b[o + VNET_GSO_TYPE] = VIRTIO_NET_HDR_GSO_NONE;
  setLe16(b, o + VNET_HDR_LEN_FIELD, 0);
  setLe16(b, o + VNET_GSO_SIZE, 0);
  setLe16(b, o + VNET_CSUM_START, csumStart);
  setLe16(b, o + VNET_CSUM_OFFSET, csumOffset);
}
