/**
 * alg-parsers.test.ts — the RTSP, TFTP and IRC DCC helpers' pure parsers and rewriters
 * (src/alg/rtsp.ts, tftp.ts, irc.ts, ascii.ts) on exact bytes: the real exchanges captured
 * from GStreamer's RTSP server and ffprobe, from tftp-hpa, and the hand-written DCC lines
 * (fixtures/alg.ts says where each came from), plus the malformed cases each parser refuses.
 * Offsets are asserted against the bytes themselves, so a span that is off by one shows.
 */
import test from 'ava';
import { bytesOf, decimal, latin1, port } from '../src/alg/ascii.js';
import { parseDccOffer, rewriteDccOffer } from '../src/alg/irc.js';
import { parseSetupReply, parseSetupRequest, rewriteTransport } from '../src/alg/rtsp.js';
import { OP_RRQ, OP_WRQ, parseTftpRequest } from '../src/alg/tftp.js';
import { DCC_INSIDE, DCC_LINES, RTSP_FFMPEG, RTSP_GSTREAMER, TFTP_GET, TFTP_PUT } from './fixtures/alg.js';

const enc = (s: string): Uint8Array => bytesOf(s);
const text = (b: Uint8Array, start: number, end: number): string => latin1(b, start, end);

/** The payload with [start, end) replaced: what the helper's splice will produce. */
function splice(b: Uint8Array, start: number, end: number, by: string): string {
  return text(b, 0, start) + by + text(b, end, b.length);
}

// ---------------------------------------------------------------------------------------------
// ascii.ts

test('ascii: decimal is strict (digits only, bounded length and value)', (t) => {
  t.is(decimal('0', 9, 1), 0);
  t.is(decimal('4294967295', 0xffffffff, 10), 4294967295);
  t.is(decimal('4294967296', 0xffffffff, 10), null);
  t.is(decimal('00042', 65535, 5), 42);
  t.is(decimal('123456', 999999, 5), null);
  for (const bad of ['', '-1', '+1', ' 1', '1 ', '1e3', '0x10', '١']) t.is(decimal(bad, 1e9, 10), null, bad);
  t.is(port('0'), null);
  t.is(port('1'), 1);
  t.is(port('65535'), 65535);
  t.is(port('65536'), null);
});

test('ascii: latin1 and bytesOf are inverse for every byte value, across the chunk size', (t) => {
  const all = Uint8Array.from({ length: 9000 }, (_, i) => (i * 7) & 0xff);
  const s = latin1(all, 0, all.length);
  t.is(s.length, 9000);
  t.deepEqual(bytesOf(s), all);
  t.is(latin1(all, 4095, 4098), String.fromCharCode(all[4095]!, all[4096]!, all[4097]!));
});

// ---------------------------------------------------------------------------------------------
// rtsp.ts

for (const [name, cap] of [
  ['ffmpeg', RTSP_FFMPEG],
  ['GStreamer rtspsrc', RTSP_GSTREAMER],
] as const) {
  test(`rtsp: the captured ${name} session: only its SETUP and the reply to it are taken`, (t) => {
    cap.messages.forEach((m, i) => {
      const b = enc(m.text);
      const req = parseSetupRequest(b, 0, b.length);
      const rep = parseSetupReply(b, 0, b.length);
      t.is(req !== null, i === cap.setup, `request parser on message ${i}`);
      t.is(rep !== null, i === cap.reply, `reply parser on message ${i}`);
    });
    const setup = enc(cap.messages[cap.setup]!.text);
    const req = parseSetupRequest(setup, 0, setup.length)!;
    t.is(req.cseq, 3);
    t.is(req.specs.length, 1);
    t.true(req.specs[0]!.unicastUdp);
    t.like(req.specs[0]!.clientPort, { lo: cap.clientPorts[0], hi: cap.clientPorts[1] });
    t.is(text(setup, req.specs[0]!.clientPort!.start, req.specs[0]!.clientPort!.end), `${cap.clientPorts[0]}-${cap.clientPorts[1]}`);
    const reply = enc(cap.messages[cap.reply]!.text);
    const rep = parseSetupReply(reply, 0, reply.length)!;
    t.is(rep.status, 200);
    t.is(rep.cseq, 3);
    t.like(rep.specs[0]!.clientPort, { lo: cap.clientPorts[0], hi: cap.clientPorts[1] });
    t.is(
      text(reply, rep.value.start, rep.value.end),
      `RTP/AVP;unicast;client_port=${cap.clientPorts[0]}-${cap.clientPorts[1]};server_port=${cap.serverPorts[0]}-${cap.serverPorts[1]};ssrc=${/ssrc=([0-9A-F]{8})/.exec(cap.messages[cap.reply]!.text)![1]};mode="PLAY"`,
    );
  });
}

const SETUP_FFMPEG = RTSP_FFMPEG.messages[RTSP_FFMPEG.setup]!.text;

test('rtsp: SETUP request: the Transport value span, the client_port span and values, CSeq', (t) => {
  const b = enc(SETUP_FFMPEG);
  const r = parseSetupRequest(b, 0, b.length);
  if (r === null) return t.fail('not parsed');
  t.is(r.cseq, 3);
  t.is(r.status, 0);
  t.is(text(b, r.value.start, r.value.end), 'RTP/AVP/UDP;unicast;client_port=14572-14573');
  t.is(r.specs.length, 1);
  const s = r.specs[0]!;
  t.is(s.protocol, 'RTP/AVP/UDP');
  t.true(s.unicastUdp);
  t.is(s.destination, null);
  t.like(s.clientPort, { lo: 14572, hi: 14573 });
  t.is(text(b, s.clientPort!.start, s.clientPort!.end), '14572-14573');
});

test('rtsp: rewriteTransport maps client_port and keeps every other byte', (t) => {
  const b = enc(SETUP_FFMPEG);
  const r = parseSetupRequest(b, 0, b.length)!;
  const seen: [number, number][] = [];
  const out = rewriteTransport(b, r, (lo, hi) => (seen.push([lo, hi]), [61000, 61001]), () => null);
  t.deepEqual(seen, [[14572, 14573]]);
  if (out === null) return t.fail('no rewrite');
  t.is(out, 'RTP/AVP/UDP;unicast;client_port=61000-61001');
  t.is(splice(b, r.value.start, r.value.end, out), SETUP_FFMPEG.replace('14572-14573', '61000-61001'));
  // Nothing mapped: no rewrite at all.
  t.is(rewriteTransport(b, r, () => null, () => null), null);
});

test('rtsp: a rewrite that shrinks and one that grows the value', (t) => {
  const b = enc('SETUP rtsp://s/a RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;mode="PLAY"\r\n\r\n');
  const r = parseSetupRequest(b, 0, b.length)!;
  t.is(rewriteTransport(b, r, () => [1024, 1025], () => null), 'RTP/AVP;unicast;client_port=1024-1025;mode="PLAY"');
  t.is(rewriteTransport(b, r, () => [65534, 65535], () => null), 'RTP/AVP;unicast;client_port=65534-65535;mode="PLAY"');
  const small = enc('SETUP rtsp://s/a RTSP/1.0\r\nCSeq: 9\r\nTransport: RTP/AVP;unicast;client_port=50000-50001\r\n\r\n');
  const rs = parseSetupRequest(small, 0, small.length)!;
  const shrunk = rewriteTransport(small, rs, () => [2000, 2001], () => null)!;
  t.is(shrunk.length, rs.value.end - rs.value.start - 2);
});

test('rtsp: one port stays one port; several transport specs, each mapped; quoted commas do not split', (t) => {
  const b = enc(
    'SETUP rtsp://s/a RTSP/1.0\r\nCSeq: 4\r\n' +
      'transport:  RTP/AVP;multicast;ttl=4, RTP/AVP/UDP;unicast;client_port=6970;mode="PLAY,RECORD", RTP/AVP/TCP;interleaved=0-1  \r\n\r\n',
  );
  const r = parseSetupRequest(b, 0, b.length)!;
  t.is(r.specs.length, 3);
  t.deepEqual(
    r.specs.map((s) => [s.protocol, s.unicastUdp, s.clientPort === null ? null : [s.clientPort.lo, s.clientPort.hi]]),
    [
      ['RTP/AVP', false, null],
      ['RTP/AVP/UDP', true, [6970, 6970]],
      ['RTP/AVP/TCP', false, null],
    ],
  );
  // Leading and trailing spaces are outside the value.
  t.is(text(b, r.value.start, r.value.end).slice(0, 8), 'RTP/AVP;');
  t.true(text(b, r.value.start, r.value.end).endsWith('interleaved=0-1'));
  const out = rewriteTransport(b, r, (lo) => [lo + 40000, lo + 40001], () => null)!;
  t.is(
    out,
    'RTP/AVP;multicast;ttl=4, RTP/AVP/UDP;unicast;client_port=46970;mode="PLAY,RECORD", RTP/AVP/TCP;interleaved=0-1',
  );
});

test('rtsp: destination= is offered to the address mapper', (t) => {
  const b = enc('SETUP rtsp://s/a RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;destination=10.200.0.2;client_port=4588-4589\r\n\r\n');
  const r = parseSetupRequest(b, 0, b.length)!;
  t.like(r.specs[0]!.destination, { text: '10.200.0.2' });
  const out = rewriteTransport(b, r, () => [4588, 4589], (a) => (a === '10.200.0.2' ? '198.51.100.100' : null))!;
  t.is(out, 'RTP/AVP;unicast;destination=198.51.100.100;client_port=4588-4589');
});

test('rtsp: the reply to SETUP (status, CSeq, client_port), LF-only line ends', (t) => {
  const b = enc('RTSP/1.0 200 OK\nCSeq: 3\nTransport: RTP/AVP;unicast;client_port=61000-61001;server_port=6970-6971;ssrc=1A2B3C4D\nSession: 1;timeout=60\n\n');
  const r = parseSetupReply(b, 0, b.length);
  if (r === null) return t.fail('not parsed');
  t.is(r.status, 200);
  t.is(r.cseq, 3);
  t.like(r.specs[0]!.clientPort, { lo: 61000, hi: 61001 });
  const out = rewriteTransport(b, r, () => [14572, 14573], () => null)!;
  t.is(out, 'RTP/AVP;unicast;client_port=14572-14573;server_port=6970-6971;ssrc=1A2B3C4D');
  // A request parser does not take a reply and vice versa.
  t.is(parseSetupRequest(b, 0, b.length), null);
  t.is(parseSetupReply(enc(SETUP_FFMPEG), 0, SETUP_FFMPEG.length), null);
});

test('rtsp: the message is read from the segment\'s first byte and bounded by end', (t) => {
  const b = enc('xx' + SETUP_FFMPEG);
  t.is(parseSetupRequest(b, 0, b.length), null);
  const r = parseSetupRequest(b, 2, b.length)!;
  t.is(text(b, r.value.start, r.value.end), 'RTP/AVP/UDP;unicast;client_port=14572-14573');
  // Cut inside the Transport line: that line is not complete, so there is no Transport.
  const cut = SETUP_FFMPEG.indexOf('14573') + 2;
  t.is(parseSetupRequest(b, 2, 2 + cut), null);
  // Cut after the Transport line, before the rest of the headers: still found.
  const after = SETUP_FFMPEG.indexOf('CSeq');
  t.like(parseSetupRequest(b, 2, 2 + after), { cseq: null });
});

test('rtsp: refused messages', (t) => {
  const bad = [
    'PLAY rtsp://s/a RTSP/1.0\r\nCSeq: 5\r\nTransport: RTP/AVP;client_port=1-2\r\n\r\n', // not SETUP
    'setup rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;client_port=1-2\r\n\r\n', // methods are case-sensitive
    'SETUP rtsp://s/a HTTP/1.1\r\nTransport: RTP/AVP;client_port=1-2\r\n\r\n', // not RTSP
    'SETUP rtsp://s/a RTSP/1.0\r\nCSeq: 5\r\n\r\n', // no Transport
    'SETUP rtsp://s/a RTSP/1.0\r\nCSeq: 5\r\n\r\nTransport: RTP/AVP;client_port=1-2\r\n', // in the body
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;\r\n client_port=1-2\r\n\r\n', // folded
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;client_port=0-1\r\n\r\n', // port 0
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;client_port=65535-65536\r\n\r\n',
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;client_port=5001-5000\r\n\r\n', // reversed
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;client_port=5000-\r\n\r\n',
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;client_port=50 00\r\n\r\n',
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;client_port=1-2;client_port=3-4\r\n\r\n', // twice
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: ;client_port=1-2\r\n\r\n', // no protocol
    'SETUP rtsp://s/a RTSP/1.0\r\nTransport: RTP/AVP;client_port=1-2\r\nTransport: RTP/AVP;client_port=3-4\r\n\r\n', // two headers
    'SETUP rtsp://s/a RTSP/1.0', // no line end
    '',
  ];
  for (const s of bad) t.is(parseSetupRequest(enc(s), 0, s.length), null, JSON.stringify(s));
  for (const s of ['RTSP/1.0 2000 OK\r\nTransport: RTP/AVP;client_port=1-2\r\n\r\n', 'RTSP/1.1 200 OK\r\nTransport: RTP/AVP;client_port=1-2\r\n\r\n', 'RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n']) {
    t.is(parseSetupReply(enc(s), 0, s.length), null, JSON.stringify(s));
  }
});

// ---------------------------------------------------------------------------------------------
// tftp.ts

test('tftp: RRQ and WRQ with and without RFC 2347 options', (t) => {
  const rrq = Uint8Array.from([0, 1, ...enc('boot/pxelinux.0'), 0, ...enc('octet'), 0]);
  t.deepEqual(parseTftpRequest(rrq, 0, rrq.length), { opcode: OP_RRQ, filename: 'boot/pxelinux.0', mode: 'octet', options: [] });
  const wrq = Uint8Array.from([0xee, 0, 2, ...enc('up.bin'), 0, ...enc('NetASCII'), 0, ...enc('blksize'), 0, ...enc('1428'), 0, ...enc('TSize'), 0, ...enc('0'), 0]);
  t.deepEqual(parseTftpRequest(wrq, 1, wrq.length), {
    opcode: OP_WRQ,
    filename: 'up.bin',
    mode: 'netascii',
    options: [
      ['blksize', '1428'],
      ['tsize', '0'],
    ],
  });
});

test('tftp: the captured tftp-hpa requests; the answers and ACKs are not requests', (t) => {
  t.deepEqual(parseTftpRequest(TFTP_GET.request, 0, TFTP_GET.request.length), { opcode: OP_RRQ, filename: 'hello.bin', mode: 'octet', options: [] });
  t.deepEqual(parseTftpRequest(TFTP_PUT.request, 0, TFTP_PUT.request.length), { opcode: OP_WRQ, filename: 'up.bin', mode: 'octet', options: [] });
  for (const b of [TFTP_GET.answerHead, TFTP_GET.ack, TFTP_PUT.answerHead]) t.is(parseTftpRequest(b, 0, b.length), null);
});

test('tftp: refused requests', (t) => {
  const z = (...parts: (string | number)[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : [...enc(p)])));
  const bad: [string, Uint8Array][] = [
    ['DATA', z(0, 3, 0, 1, 'x')],
    ['ACK', z(0, 4, 0, 1)],
    ['ERROR', z(0, 5, 0, 1, 'no', 0)],
    ['opcode high byte', z(1, 1, 'f', 0, 'octet', 0)],
    ['empty filename', z(0, 1, 0, 'octet', 0)],
    ['unterminated filename', z(0, 1, 'file')],
    ['unterminated mode', z(0, 1, 'f', 0, 'octet')],
    ['unknown mode', z(0, 1, 'f', 0, 'binary', 0)],
    ['option without value', z(0, 1, 'f', 0, 'octet', 0, 'blksize', 0)],
    ['trailing byte', z(0, 1, 'f', 0, 'octet', 0, 'x')],
    ['empty option name', z(0, 1, 'f', 0, 'octet', 0, 0, '1', 0)],
    ['too short', z(0, 1, 0)],
  ];
  for (const [why, b] of bad) t.is(parseTftpRequest(b, 0, b.length), null, why);
  // Bounded by end: the same request cut before its mode's NUL is refused.
  const ok = z(0, 1, 'f', 0, 'octet', 0);
  t.not(parseTftpRequest(ok, 0, ok.length), null);
  t.is(parseTftpRequest(ok, 0, ok.length - 1), null);
});

// ---------------------------------------------------------------------------------------------
// irc.ts

test('irc: the DCC line set', (t) => {
  const parse = (s: string) => parseDccOffer(enc(s), 0, s.length);
  t.like(parse(DCC_LINES.send), { type: 'SEND', argument: 'my file.txt', addr: DCC_INSIDE, port: 40123 });
  t.like(parse(DCC_LINES.sendPlain), { type: 'SEND', argument: 'report.pdf', addr: DCC_INSIDE, port: 5000 });
  t.like(parse(DCC_LINES.chat), { type: 'CHAT', argument: 'chat', addr: DCC_INSIDE, port: 40200 });
  t.is(parse(DCC_LINES.passive), null);
  // The parser reads; the helper refuses these two (another host's address, port < 1024).
  t.like(parse(DCC_LINES.forged), { addr: DCC_INSIDE + 1, port: 40123 });
  t.like(parse(DCC_LINES.lowPort), { addr: DCC_INSIDE, port: 23 });
});

test('irc: DCC SEND with a quoted file name and a size; the address-and-port span', (t) => {
  const line = 'PRIVMSG bob :\x01DCC SEND "my file.txt" 181403650 40123 1048576\x01\r\n';
  const b = enc(line);
  const o = parseDccOffer(b, 0, b.length);
  if (o === null) return t.fail('not parsed');
  t.like(o, { type: 'SEND', argument: 'my file.txt', addr: 181403650, port: 40123 });
  t.is(text(b, o.start, o.end), '181403650 40123');
  t.is(o.ctcpEnd, line.indexOf('\x01\r\n') + 1);
  t.is(splice(b, o.start, o.end, rewriteDccOffer(0xc6336464, 61000)), 'PRIVMSG bob :\x01DCC SEND "my file.txt" 3325256804 61000 1048576\x01\r\n');
});

test('irc: DCC CHAT; the next offer in the same segment is found from ctcpEnd', (t) => {
  const s = ':alice!a@h PRIVMSG bob :\x01VERSION\x01\r\nPRIVMSG bob :\x01DCC CHAT chat 3232235778 5000\x01\r\nPRIVMSG carol :\x01DCC SEND f 167772162 2000\x01\r\n';
  const b = enc(s);
  const a = parseDccOffer(b, 0, b.length)!;
  t.like(a, { type: 'CHAT', argument: 'chat', addr: 3232235778, port: 5000 });
  t.is(text(b, a.start, a.end), '3232235778 5000');
  const c = parseDccOffer(b, a.ctcpEnd, b.length)!;
  t.like(c, { type: 'SEND', argument: 'f', addr: 167772162, port: 2000 });
  t.is(parseDccOffer(b, c.ctcpEnd, b.length), null);
});

test('irc: rewriteDccOffer writes the address as an unsigned decimal', (t) => {
  t.is(rewriteDccOffer(0xffffffff, 65535), '4294967295 65535');
  t.is(rewriteDccOffer(0x0ac80002 | 0, 1024), '180879362 1024');
  t.is(rewriteDccOffer(0xc0000201 | 0, 1), '3221225985 1');
});

test('irc: refused or absent offers', (t) => {
  const bad = [
    'PRIVMSG bob :hello DCC SEND f 1 2\r\n', // no CTCP
    'PRIVMSG bob :\x01DCC SEND f 181403650 40123\r\n', // unterminated on its line
    'PRIVMSG bob :\x01DCC SEND f 181403650 40123', // cut by end
    'PRIVMSG bob :\x01DCC SEND f 4294967296 40123\x01\r\n', // > 32 bits
    'PRIVMSG bob :\x01DCC SEND f 10.200.0.2 40123\x01\r\n', // dotted quad
    'PRIVMSG bob :\x01DCC SEND f ::1 40123\x01\r\n', // IPv6
    'PRIVMSG bob :\x01DCC SEND f 181403650 0 100 7\x01\r\n', // reverse DCC (port 0, token)
    'PRIVMSG bob :\x01DCC SEND f 181403650 70000\x01\r\n',
    'PRIVMSG bob :\x01DCC RESUME f 40123 1000\x01\r\n', // carries no address
    'PRIVMSG bob :\x01DCC ACCEPT f 40123 1000\x01\r\n',
    'PRIVMSG bob :\x01DCC SEND "unclosed 181403650 40123\x01\r\n',
    'PRIVMSG bob :\x01DCC SEND  f 181403650 40123\x01\r\n', // two spaces
    'PRIVMSG bob :\x01DCC SEND f 181403650 40123 \x01\r\n', // trailing space
    'PRIVMSG bob :\x01dcc send f 181403650 40123\x01\r\n', // CTCP commands are upper case
    '',
  ];
  for (const s of bad) t.is(parseDccOffer(enc(s), 0, s.length), null, JSON.stringify(s));
  // A malformed offer does not hide a good one after it.
  const s = 'PRIVMSG bob :\x01DCC SEND f 10.0.0.1 1\x01 \x01DCC CHAT chat 1 2\x01\r\n';
  t.like(parseDccOffer(enc(s), 0, s.length), { type: 'CHAT', addr: 1, port: 2 });
});
