/**
 * rtsp.ts — the RTSP helper's parsers and rewriter: the `Transport` header of a SETUP request
 * and of the reply to it (RFC 2326 §10.4 SETUP, §12.39 Transport; TCP 554 by default).
 *
 * Why a NAT needs this: the client tells the server, inside the TCP control connection, which
 * UDP ports it receives RTP and RTCP on (`client_port=a-b`), and the server then sends the
 * media from its own ports to the client's address and those ports. Behind masq the address is
 * the external one but the ports are the inside ones, and no mapping admits the server's UDP.
 * The helper rewrites `client_port` in the SETUP to an external port pair it has set up to
 * reach the inside pair, rewrites the reply back, and expects RTP/RTCP from the server there.
 * This is the seed's RealAudio row done the way today's players speak: Linux 2.0 masqueraded
 * RealAudio's own PNA protocol (TCP 7070, `ip_masq_raudio`); RealNetworks replaced PNA with
 * RTSP, which it co-wrote with Netscape and Columbia University (RFC 2326's authors).
 *
 * Contract: pure functions over (bytes, start, end), `end` bounded by the IP total length.
 * `parseSetupRequest` and `parseSetupReply` return the Transport header's position and its
 * parsed transport specs, or null when the message is not that (another method, no Transport
 * header, a header folded over lines, a line not complete in this segment, a malformed
 * client_port). Null means "pass the segment unmodified"; the helper counts Malformed when the
 * segment did start with `SETUP `. One message per
 * segment is examined, from the segment's first byte: players send each request in one segment
 * and a SETUP's headers are far below one MSS; a SETUP that starts mid-segment or is split
 * before its Transport line passes unmodified (and its media does not get through, as without
 * the helper). `rewriteTransport` builds the replacement text for the header's value.
 * Interleaved (RTP over the TCP connection, `RTP/AVP/TCP`) and multicast specs carry no
 * client_port and need nothing.
 *
 * The helper (`rtsp`, off by default: RFC 5382 REQ-6), for inside clients:
 *  - SETUP (outbound): each unicast UDP spec's `client_port=a-b` gets an external port for a
 *    (RTP) and one for b (RTCP), each a mapping of the inside port with an expectation that
 *    admits one flow from the server's address (any port: servers send from `server_port`);
 *    the spec is rewritten to them. The two external ports keep the inside ports' parity
 *    (ports.ts; not in sequential mode) but need not be adjacent: `client_port` is a pair of
 *    numbers to the servers that matter (GStreamer's, in the end-to-end test; live555), which
 *    send RTP to the first and RTCP to the second.
 *    A `destination=` naming the client itself becomes the external address; one naming
 *    another host is left alone, its spec is not rewritten, and it counts ForeignAddress (the
 *    client may send its media anywhere, but the gateway opens nothing for a third host).
 *    Ports below 1024 count LowPort and are not rewritten.
 *  - The reply (inbound): each `client_port` that names this host's external ports is written
 *    back to the inside ports (`insidePortOf`), `destination=` likewise, so the client reads
 *    what it sent.
 *  The client's own first datagrams from those ports (ffmpeg and GStreamer send one to each
 *  server port right after SETUP) use the same mappings: endpoint-independent mapping.
 */
import { formatIPv4 } from '../addr.js';
import { IpProto } from '../wire/ipv4.js';
import { latin1, port, startsWith } from './ascii.js';
import { AlgError, type AlgHelper, type AlgPacket } from './types.js';

/** The RTSP port (RFC 2326 §3.2). */
export const RTSP_PORT = 554;

/** Offsets into the packet bytes, [start, end). */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** `client_port=lo-hi` (hi === lo when one port is written); the span covers `lo-hi`. */
export interface ClientPort extends Span {
  readonly lo: number;
  readonly hi: number;
}

/** One transport-spec of the header's comma-separated list. */
export interface TransportSpec {
  /** `RTP/AVP`, `RTP/AVP/UDP`, `RTP/AVP/TCP`, ... as written. */
  readonly protocol: string;
  /** Neither `multicast` nor a TCP lower transport. */
  readonly unicastUdp: boolean;
  readonly clientPort: ClientPort | null;
  /** `destination=...` (the address the server should send to), as written. */
  readonly destination: (Span & { readonly text: string }) | null;
}

export interface RtspTransport {
  /** The request's CSeq (or the reply's, which echoes it); null when absent or malformed. */
  readonly cseq: number | null;
  /** Reply only: the status code (0 for a request). */
  readonly status: number;
  /** The header's value: after `Transport:` and its spaces, before the line end. */
  readonly value: Span;
  readonly specs: readonly TransportSpec[];
}

const SETUP = 'SETUP ';
const VERSION = 'RTSP/1.0';

/** A SETUP request with a Transport header, or null. */
export function parseSetupRequest(b: Uint8Array, start: number, end: number): RtspTransport | null {
  if (!startsWith(b, start, end, SETUP)) return null;
  const head = headBlock(b, start, end);
  if (head === null) return null;
  const first = head.lines[0]!;
  if (!first.text.endsWith(' ' + VERSION)) return null;
  return transportOf(head, 0);
}

/** A reply (`RTSP/1.0 nnn reason`) with a Transport header, or null. */
export function parseSetupReply(b: Uint8Array, start: number, end: number): RtspTransport | null {
  if (!startsWith(b, start, end, VERSION + ' ')) return null;
  const head = headBlock(b, start, end);
  if (head === null) return null;
  const m = /^RTSP\/1\.0 ([1-5][0-9][0-9])( |$)/.exec(head.lines[0]!.text);
  if (m === null) return null;
  return transportOf(head, Number(m[1]));
}

/**
 * The replacement for `t.value` (one char per byte): each client_port that `mapPort` maps is
 * rewritten to the mapped pair (one port stays one port; `at` is the client_port value's
 * offset, naming the spec), each destination that `mapDestination` maps is replaced; all
 * other bytes are kept. Null when nothing changed.
 */
export function rewriteTransport(
  b: Uint8Array,
  t: RtspTransport,
  mapPort: (lo: number, hi: number, at: number) => readonly [number, number] | null,
  mapDestination: (text: string) => string | null,
): string | null {
  const edits: { start: number; end: number; text: string }[] = [];
  for (const s of t.specs) {
    if (s.clientPort !== null) {
      const to = mapPort(s.clientPort.lo, s.clientPort.hi, s.clientPort.start);
      if (to !== null) {
        const single = s.clientPort.lo === s.clientPort.hi;
        edits.push({ start: s.clientPort.start, end: s.clientPort.end, text: single ? `${to[0]}` : `${to[0]}-${to[1]}` });
      }
    }
    if (s.destination !== null) {
      const to = mapDestination(s.destination.text);
      if (to !== null) edits.push({ start: s.destination.start, end: s.destination.end, text: to });
    }
  }
  if (edits.length === 0) return null;
  edits.sort((x, y) => x.start - y.start);
  let out = '';
  let at = t.value.start;
  for (const e of edits) {
    out += latin1(b, at, e.start) + e.text;
    at = e.end;
  }
  return out + latin1(b, at, t.value.end);
}

// ---------------------------------------------------------------------------------------------

interface Line {
  /** Offset of the line's first byte. */
  readonly start: number;
  /** The line without its CR LF (or LF). */
  readonly text: string;
}

interface Head {
  readonly lines: readonly Line[];
}

/**
 * The start line and header lines that are complete (LF-terminated) in [start, end), up to the
 * empty line that ends them or the segment's end; null when not even the start line is.
 */
function headBlock(b: Uint8Array, start: number, end: number): Head | null {
  const lines: Line[] = [];
  let at = start;
  while (at < end) {
    const lf = b.indexOf(0x0a, at);
    if (lf < 0 || lf >= end) break;
    const stop = lf > at && b[lf - 1] === 0x0d ? lf - 1 : lf;
    if (stop === at) break; // the empty line: headers end here
    lines.push({ start: at, text: latin1(b, at, stop) });
    at = lf + 1;
  }
  return lines.length === 0 ? null : { lines };
}

function transportOf(head: Head, status: number): RtspTransport | null {
  let cseq: number | null = null;
  let found: { line: Line; valueAt: number } | null = null;
  const lines = head.lines;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.text.indexOf(':');
    if (colon <= 0) continue;
    const name = line.text.slice(0, colon).toLowerCase();
    if (name === 'cseq') {
      const v = line.text.slice(colon + 1).trim();
      cseq = /^[0-9]{1,9}$/.test(v) ? Number(v) : null;
    } else if (name === 'transport') {
      // A folded header (continuation line starting with a space or tab) is refused rather
      // than half-rewritten; no player writes one for Transport.
      const next = lines[i + 1];
      if (found !== null || (next !== undefined && /^[ \t]/.test(next.text))) return null;
      let v = colon + 1;
      while (line.text.charCodeAt(v) === 0x20 || line.text.charCodeAt(v) === 0x09) v++;
      found = { line, valueAt: v };
    }
  }
  if (found === null) return null;
  const text = found.line.text;
  let valueEnd = text.length;
  while (valueEnd > found.valueAt && (text.charCodeAt(valueEnd - 1) === 0x20 || text.charCodeAt(valueEnd - 1) === 0x09)) valueEnd--;
  const base = found.line.start;
  const specs = parseSpecs(text, found.valueAt, valueEnd, base);
  if (specs === null) return null;
  return { cseq, status, value: { start: base + found.valueAt, end: base + valueEnd }, specs };
}

/**
 * transport-spec = protocol/profile[/lower] *(";" parameter), comma-separated (RFC 2326
 * §12.39). Separators inside a quoted string (`mode="PLAY,RECORD"`) do not split.
 */
function parseSpecs(text: string, from: number, to: number, base: number): TransportSpec[] | null {
  const specs: TransportSpec[] = [];
  for (const [s0, s1] of split(text, from, to, ',')) {
    const params = split(text, s0, s1, ';');
    const [p0, p1] = params[0]!;
    const protocol = text.slice(p0, p1).trim();
    if (!/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)?$/.test(protocol)) return null;
    let multicast = false;
    let clientPort: ClientPort | null = null;
    let destination: (Span & { text: string }) | null = null;
    for (let k = 1; k < params.length; k++) {
      let [a, z] = params[k]!;
      while (a < z && text.charCodeAt(a) === 0x20) a++;
      while (z > a && text.charCodeAt(z - 1) === 0x20) z--;
      const eq = text.indexOf('=', a);
      const name = (eq < 0 || eq >= z ? text.slice(a, z) : text.slice(a, eq)).toLowerCase();
      if (name === 'multicast') multicast = true;
      if (eq < 0 || eq >= z) continue;
      const v = text.slice(eq + 1, z);
      if (name === 'client_port') {
        if (clientPort !== null) return null; // two client_port parameters in one spec: refuse
        const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(v);
        const lo = m === null ? null : port(m[1]!);
        const hi = m === null ? null : m[2] === undefined ? lo : port(m[2]);
        if (lo === null || hi === null || hi < lo) return null;
        clientPort = { lo, hi, start: base + eq + 1, end: base + z };
      } else if (name === 'destination') {
        destination = { text: v, start: base + eq + 1, end: base + z };
      }
    }
    const lower = protocol.split('/')[2];
    const unicastUdp = !multicast && (lower === undefined || lower.toUpperCase() === 'UDP');
    specs.push({ protocol, unicastUdp, clientPort, destination });
  }
  return specs;
}

/** [start, end) pieces of text[from, to) between `sep`s that are outside double quotes. */
function split(text: string, from: number, to: number, sep: string): [number, number][] {
  const out: [number, number][] = [];
  let quoted = false;
  let a = from;
  for (let i = from; i < to; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === sep && !quoted) {
      out.push([a, i]);
      a = i + 1;
    }
  }
  out.push([a, to]);
  return out;
}

const TCP = IpProto.Tcp;
const UDP = IpProto.Udp;

function setupOut(p: AlgPacket): void {
  if (!p.insideIsClient || p.midLine) return;
  const t = parseSetupRequest(p.b, p.start, p.end);
  if (t === null) {
    if (startsWith(p.b, p.start, p.end, SETUP)) p.error(AlgError.Malformed);
    return;
  }
  const inside = formatIPv4(p.inside);
  const external = formatIPv4(p.external);
  // A spec whose destination names a third host opens nothing: mapPort sees its ports only
  // after mapDestination has judged it, so judge destinations first.
  const foreign = new Set<number>();
  for (const s of t.specs) if (s.destination !== null && s.destination.text !== inside && s.clientPort !== null) foreign.add(s.clientPort.start);
  if (foreign.size > 0) p.error(AlgError.ForeignAddress);
  const text = rewriteTransport(
    p.b,
    t,
    (lo, hi, at) => {
      if (foreign.has(at)) return null;
      if (lo < 1024) {
        p.error(AlgError.LowPort);
        return null;
      }
      const rtp = p.expect(UDP, lo, p.remote);
      const rtcp = hi === lo || rtp < 0 ? rtp : p.expect(UDP, hi, p.remote);
      return rtp < 0 || rtcp < 0 ? null : [rtp, rtcp];
    },
    (dest) => (dest === inside ? external : null),
  );
  if (text !== null) p.replace(t.value.start, t.value.end, text);
}

function setupReplyIn(p: AlgPacket): void {
  if (!p.insideIsClient || p.midLine) return;
  const t = parseSetupReply(p.b, p.start, p.end);
  if (t === null) return;
  const inside = formatIPv4(p.inside);
  const external = formatIPv4(p.external);
  const text = rewriteTransport(
    p.b,
    t,
    (lo, hi) => {
      const rtp = p.insidePortOf(UDP, lo);
      const rtcp = hi === lo ? rtp : p.insidePortOf(UDP, hi);
      return rtp < 0 || rtcp < 0 ? null : [rtp, rtcp];
    },
    (dest) => (dest === external ? inside : null),
  );
  if (text !== null) p.replace(t.value.start, t.value.end, text);
}

export const rtsp: AlgHelper = {
  name: 'rtsp',
  proto: TCP,
  ports: [RTSP_PORT],
  match: (proto, port) => proto === TCP && port === RTSP_PORT,
  outbound: setupOut,
  inbound: setupReplyIn,
};
