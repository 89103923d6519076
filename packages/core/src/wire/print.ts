/**
 * print.ts — one-line, tcpdump-style descriptions of packets, for test failure messages, the
 * CLI and logs. Never on the fast path (it allocates strings). Never throws: malformed input
 * is described as such.
 *
 *   IP 10.200.0.2.40000 > 198.51.100.10.80: tcp [S] seq 1000 ack 0 win 64240 len 0
 *   IP 10.200.0.2 > 198.51.100.10: ICMP echo request id 7 seq 1 len 64
 *   IP 198.51.100.10 > 198.51.100.100: ICMP unreachable code 3 [IP 198.51.100.100.60001 > 198.51.100.10.53: udp]
 */
import { WireError, WIRE_ERROR_LABELS } from './result.js';
import * as ip from './ipv4.js';
import { formatIPv4, IpProto } from './ipv4.js';
import * as tcp from './tcp.js';
import * as udp from './udp.js';
import * as icmp from './icmp.js';

function l4Summary(b: Uint8Array, p: number, l4: number, avail: number, embedded: boolean): string {
  if (p === IpProto.Tcp && avail >= (embedded ? 8 : tcp.HEADER_LEN)) {
    if (embedded) return 'tcp';
    const dl = avail - tcp.dataOffset(b, l4);
    return `tcp [${tcp.flagString(tcp.flags(b, l4))}] seq ${tcp.seq(b, l4)} ack ${tcp.ack(b, l4)} win ${tcp.window(b, l4)} len ${Math.max(0, dl)}`;
  }
  if (p === IpProto.Udp && avail >= udp.HEADER_LEN) {
    return embedded ? 'udp' : `udp len ${udp.length(b, l4) - udp.HEADER_LEN}`;
  }
  if (p === IpProto.Icmp && avail >= icmp.HEADER_LEN) {
    const t = icmp.type(b, l4);
    if (icmp.isQuery(t)) return `ICMP ${icmp.typeName(t)} id ${icmp.id(b, l4)} seq ${icmp.seq(b, l4)} len ${avail - 8}`;
    if (icmp.isError(t) && !embedded) {
      const inner = l4 + icmp.EMBEDDED;
      const innerAvail = avail - icmp.EMBEDDED;
      const what = ip.validateEmbedded(b, inner, innerAvail) === WireError.None
        ? describe(b, inner, innerAvail, true)
        : 'truncated';
      const mtu = t === icmp.DEST_UNREACH && icmp.code(b, l4) === icmp.CODE_FRAG_NEEDED ? ` mtu ${icmp.nextHopMtu(b, l4)}` : '';
      return `ICMP ${icmp.typeName(t)} code ${icmp.code(b, l4)}${mtu} [${what}]`;
    }
    return `ICMP ${icmp.typeName(t)} code ${icmp.code(b, l4)}`;
  }
  return `proto ${p}`;
}

function describe(b: Uint8Array, o: number, len: number, embedded: boolean): string {
  const hl = ip.headerLen(b, o);
  const p = ip.proto(b, o);
  const s = ip.src(b, o);
  const d = ip.dst(b, o);
  const tl = embedded ? len : Math.min(ip.totalLen(b, o), len);
  const l4 = o + hl;
  const avail = tl - hl;
  const off = ip.fragOffset(b, o);
  const frag = ip.isFragment(b, o) ? ` (frag id ${ip.id(b, o)} off ${off * 8}${ip.moreFragments(b, o) ? '+' : ''})` : '';
  const ports = off === 0 && (p === IpProto.Tcp || p === IpProto.Udp) && avail >= 4;
  const sa = ports ? `${formatIPv4(s)}.${tcp.sport(b, l4)}` : formatIPv4(s);
  const da = ports ? `${formatIPv4(d)}.${tcp.dport(b, l4)}` : formatIPv4(d);
  const rest = off === 0 ? l4Summary(b, p, l4, avail, embedded) : `proto ${p} len ${avail}`;
  return `IP ${sa} > ${da}: ${rest}${frag}${embedded ? '' : ` ttl ${ip.ttl(b, o)}`}`;
}

/** Describe the IPv4 packet at bytes[off, off+len). */
export function formatPacket(bytes: Uint8Array, off = 0, len = bytes.length - off): string {
  const r = ip.validateIPv4(bytes, off, len);
  if (r !== WireError.None) return `invalid packet (${WIRE_ERROR_LABELS[r]}, ${len} bytes)`;
  return describe(bytes, off, len, false);
}
