/**
 * drop.ts — the closed set of reasons a packet is dropped.
 *
 * Contract: every drop anywhere in masq carries exactly one of these; the enum's label (see
 * DROP_REASON_LABELS) is the `reason` label of `masq_drops_total`, so the label set is bounded
 * by construction. Adding a reason means adding it here, nowhere else. 0 is "no drop".
 * The header checks in wire/ answer with their own codes (wire/result.ts); `wireDrop` maps
 * each to its reason.
 */
import { WireError } from './wire/result.js';

export const enum DropReason {
  None = 0,
  /** Fewer bytes than the IPv4 header (or the L4 header) needs. */
  Truncated = 1,
  /** IP version is neither 4 nor 6. */
  NotIp = 2,
  /** IPv6 packets are not translated (masq is an IPv4 NAT); counted, never crash. */
  Ipv6 = 3,
  /** IHL below 5. */
  BadIhl = 4,
  /** Total length below the header length or beyond the bytes captured. */
  BadTotalLength = 5,
  /** IPv4 header checksum wrong. */
  BadIpChecksum = 6,
  /** TCP data offset / UDP length inconsistent with the packet. */
  BadL4Header = 7,
  /** Neither TCP, UDP nor ICMP (and no exclusion rule passes it). */
  UnsupportedProtocol = 8,
  /** Outbound source matches no masquerade or accept rule. */
  NoRule = 9,
  /** Inbound packet for an external address:port with no mapping (unsolicited). */
  NoMapping = 10,
  /** Inbound packet refused by the filtering mode (RFC 4787 REQ-8). */
  Filtered = 11,
  /** No free external port in the partition's slice (RFC 6888 REQ-11: never evict). */
  PortExhausted = 12,
  /** Inside host over its session limit (RFC 6888 REQ-4). */
  HostLimit = 13,
  /** Session table full. */
  TableFull = 14,
  /** New outbound TCP flow that does not start with a SYN. */
  TcpNotSyn = 15,
  /** ICMP error whose embedded packet matches no session. */
  IcmpErrorNoSession = 16,
  /** ICMP error whose embedded packet is malformed or too short. */
  IcmpErrorMalformed = 17,
  /** ICMP type masq does not translate (redirect, router advertisement, ...). */
  IcmpUnsupported = 18,
  /** ICMP checksum wrong. */
  BadIcmpChecksum = 19,
  /** Non-first fragment whose first fragment never came (or timed out). */
  FragmentOrphan = 20,
  /** Fragment buffer full: out-of-order fragments beyond the memory bound. */
  FragmentBufferFull = 21,
  /** A hairpinned packet whose inbound half has no owner (external port outside every slice). */
  Hairpin = 22,
  /** Packet from an inside source with an external address as source (spoofing/loop). */
  Martian = 23,
  /** Ring to a translation worker full (I/O thread back-pressure). */
  RingFull = 24,
  /**
   * An inbound RST or FIN whose sequence number lies outside the inside host's receive window
   * (RFC 5961 §3, §4 style): forged or stale; it must not end the session.
   */
  TcpOutOfWindow = 25,
}

/** Prometheus label for each reason, index = enum value (a reason is added here and above). */
export const DROP_REASON_LABELS: readonly string[] = [
  'none',
  'truncated',
  'not_ip',
  'ipv6',
  'bad_ihl',
  'bad_total_length',
  'bad_ip_checksum',
  'bad_l4_header',
  'unsupported_protocol',
  'no_rule',
  'no_mapping',
  'filtered',
  'port_exhausted',
  'host_limit',
  'table_full',
  'tcp_not_syn',
  'icmp_error_no_session',
  'icmp_error_malformed',
  'icmp_unsupported',
  'bad_icmp_checksum',
  'fragment_orphan',
  'fragment_buffer_full',
  'hairpin',
  'martian',
  'ring_full',
  'tcp_out_of_window',
];

/** Number of reasons including None: size of per-reason counter arrays (one label each). */
export const DROP_REASON_COUNT = DROP_REASON_LABELS.length;

/** The drop reason of each wire/ check result (index = WireError). */
const WIRE_DROP: readonly number[] = [
  DropReason.None, // WireError.None
  DropReason.Truncated, // WireError.Truncated
  DropReason.NotIp, // WireError.NotIp
  DropReason.Ipv6, // WireError.Ipv6
  DropReason.BadIhl, // WireError.BadIhl
  DropReason.BadTotalLength, // WireError.BadTotalLength
  DropReason.BadIpChecksum, // WireError.BadIpChecksum
  DropReason.BadL4Header, // WireError.BadL4Header
  DropReason.BadIcmpChecksum, // WireError.BadIcmpChecksum
  DropReason.IcmpErrorMalformed, // WireError.EmbeddedMalformed
];

/** The drop reason for a wire/ check's result (0 stays 0). */
export function wireDrop(e: WireError): DropReason {
  return WIRE_DROP[e]! as DropReason;
}
