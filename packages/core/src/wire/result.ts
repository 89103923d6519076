/**
 * result.ts — what a header check in wire/ can say about a packet: a small closed set of
 * codes, 0 meaning "valid". wire/ knows nothing of the NAT: the core maps each code to its
 * drop reason (drop.ts `wireDrop`), and the labels here are the same words as those drop
 * reasons' labels, so a packet printed as invalid reads like the counter it lands in.
 */
export const enum WireError {
  None = 0,
  /** Fewer bytes than the header needs (or the offset and length run past the buffer). */
  Truncated = 1,
  /** IP version is neither 4 nor 6. */
  NotIp = 2,
  /** An IPv6 packet (version 6). */
  Ipv6 = 3,
  /** IHL below 5. */
  BadIhl = 4,
  /** Total length below the header length or beyond the bytes captured. */
  BadTotalLength = 5,
  /** IPv4 header checksum wrong. */
  BadIpChecksum = 6,
  /** TCP data offset / UDP length inconsistent with the segment. */
  BadL4Header = 7,
  /** ICMP checksum wrong. */
  BadIcmpChecksum = 8,
  /** The packet quoted in an ICMP error is not an IPv4 header plus 8 bytes. */
  EmbeddedMalformed = 9,
}

/** Label of each code, index = code. */
export const WIRE_ERROR_LABELS: readonly string[] = [
  'none',
  'truncated',
  'not_ip',
  'ipv6',
  'bad_ihl',
  'bad_total_length',
  'bad_ip_checksum',
  'bad_l4_header',
  'bad_icmp_checksum',
  'icmp_error_malformed',
];
