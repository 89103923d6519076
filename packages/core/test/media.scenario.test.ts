/**
 * media.scenario.test.ts — the RTSP, TFTP and IRC DCC helpers through the whole translator
 * (`Nat`), libalias style, on the captured exchanges (fixtures/alg.ts) replayed by peers that
 * acknowledge exactly what they receive (helpers/tcp-replay.ts), every emitted packet held to
 * the checksum oracle:
 *  - RTSP (ffmpeg and GStreamer rtspsrc against GStreamer's server): SETUP's client_port
 *    rewritten to two expected external ports, the reply written back so the client reads its
 *    own ports, the streams equal after undoing the rewrite, the client's punch datagrams on
 *    the same mappings, RTP and RTCP from the server admitted to the inside ports; without the
 *    helper the RTP is dropped; destination= naming a third host and ports below 1024 refused.
 *  - TFTP (tftp-hpa get and put): with address-and-port-dependent filtering the server's answer
 *    from its new port reaches the client's mapping only with the helper, once, and only from
 *    the server; everything else stays the filtering mode's decision.
 *  - IRC DCC (the hand-made line set): SEND and CHAT rewritten to the external address and an
 *    expected port (the packet grows: the control row shows Init-seq and Delta), a peer from
 *    anywhere connects once; forged address, low port and reverse DCC left alone; off unless
 *    enabled.
 */
import test from 'ava';
import { Nat, type NatOptions } from '../src/nat.js';
import { C, algErrorSlot } from '../src/counters.js';
import { AlgError, EXPECT_TIMEOUT_MS } from '../src/alg/types.js';
import { algId } from '../src/alg/registry.js';
import { listExpectations, type ExpectationRow } from '../src/alg/engine.js';
import { listSessions } from '../src/listing.js';
import { natIn, natOut, tcp, udp, type Parsed } from './helpers/packets.js';
import { TcpReplay } from './helpers/tcp-replay.js';
import { DCC_INSIDE, DCC_LINES, RTSP_CLIENT, RTSP_FFMPEG, RTSP_GSTREAMER, RTSP_SERVER, TFTP_GET, TFTP_PUT } from './fixtures/alg.js';

const EXT = '198.51.100.100';
const EXT_INT = 0xc6336464;
const A = RTSP_CLIENT;
const SERVER = RTSP_SERVER;
const OTHER = '203.0.113.66';
const RULES = 'masquerade all from 10.200.0.0/24 to any';

function mkNat(o: Partial<NatOptions> = {}): Nat {
  return new Nat({ externals: [EXT], rules: RULES, maxSessions: 4096, seed: 11, ...o });
}

const counter = (nat: Nat, slot: number): number => nat.counters()[slot]!;
const rewrites = (nat: Nat, alg: string): number => counter(nat, C.ALG_REWRITES + algId(alg));
const algErr = (nat: Nat, alg: string, reason: AlgError): number => counter(nat, algErrorSlot(algId(alg), reason));

function expectations(nat: Nat, now: number): ExpectationRow[] {
  return nat.partitions.flatMap((p) => listExpectations(p.table, now));
}

function one(r: { all: readonly unknown[]; pkt: Parsed | null; drop: string }, what: string): Parsed {
  if (r.all.length !== 1 || r.pkt === null) throw new Error(`${what}: expected one packet, got ${r.all.length} (drop: ${r.drop})`);
  return r.pkt;
}

// ---------------------------------------------------------------------------------------------
// RTSP

type RtspCapture = typeof RTSP_FFMPEG | typeof RTSP_GSTREAMER;

/** Replay a captured RTSP session up to and including message `until`. */
function replayRtsp(nat: Nat, cap: RtspCapture, until: number, clientPort = 40554): TcpReplay {
  const r = new TcpReplay(nat, { inside: A, insidePort: clientPort, outside: SERVER, outsidePort: 554, opener: 'inside', insideIsn: 0x7a000000, outsideIsn: 0x10000 }).open();
  cap.messages.slice(0, until + 1).forEach((m) => r.send(m.from === 'client' ? 'inside' : 'outside', m.text));
  return r;
}

for (const [name, cap] of [
  ['ffmpeg', RTSP_FFMPEG],
  ['GStreamer rtspsrc', RTSP_GSTREAMER],
] as const) {
  test(`RTSP (${name} ↔ GStreamer server, captured): client_port → two expected external ports, the reply written back, RTP and RTCP admitted`, (t) => {
    const nat = mkNat({ alg: ['rtsp'] });
    const [rtpIn, rtcpIn] = cap.clientPorts;
    const [rtpSrv, rtcpSrv] = cap.serverPorts;
    const r = replayRtsp(nat, cap, cap.setup);
    const x = expectations(nat, 0);
    t.is(x.length, 2);
    const rtp = x.find((e) => e.insidePort === rtpIn)!;
    const rtcp = x.find((e) => e.insidePort === rtcpIn)!;
    for (const e of [rtp, rtcp]) t.like(e, { alg: 'rtsp', proto: 'udp', inside: A, external: EXT, remote: SERVER, expiresMs: EXPECT_TIMEOUT_MS });
    t.is(rtp.externalPort % 2, 0, 'RTP port parity kept (even)');
    t.is(rtcp.externalPort % 2, 1, 'RTCP port parity kept (odd)');
    t.not(rtp.externalPort, rtcp.externalPort);
    // The server read the client's messages with exactly that one change.
    const clientText = cap.messages.slice(0, cap.setup + 1).filter((m) => m.from === 'client').map((m) => m.text).join('');
    t.is(r.text('toOutside'), clientText.replace(`client_port=${rtpIn}-${rtcpIn}`, `client_port=${rtp.externalPort}-${rtcp.externalPort}`));
    // The server echoes the ports it was given (the capture had no NAT: there they were the
    // client's own); the client reads the reply exactly as captured: written back.
    const reply = cap.messages[cap.reply]!.text;
    r.send('outside', reply.replace(`client_port=${rtpIn}-${rtcpIn}`, `client_port=${rtp.externalPort}-${rtcp.externalPort}`));
    const serverText = cap.messages.slice(0, cap.reply + 1).filter((m) => m.from === 'server').map((m) => m.text).join('');
    t.is(r.text('toInside'), serverText);
    t.is(rewrites(nat, 'rtsp'), 2, 'the SETUP and its reply');

    // The client's first datagrams (NAT punch) leave on the expected mappings.
    t.like(one(natOut(nat, udp({ src: A, sport: rtpIn, dst: SERVER, dport: rtpSrv, payload: [0x80, 0, 0, 0] }), 1), 'punch RTP'), { src: EXT, sport: rtp.externalPort, dport: rtpSrv });
    t.like(one(natOut(nat, udp({ src: A, sport: rtcpIn, dst: SERVER, dport: rtcpSrv, payload: [0x80, 0xc9, 0, 1] }), 1), 'punch RTCP'), { src: EXT, sport: rtcp.externalPort, dport: rtcpSrv });
    // RTP and RTCP from the server reach the inside ports.
    const media = Uint8Array.from({ length: 172 }, (_, i) => (i === 0 ? 0x80 : i & 0xff));
    t.like(one(natIn(nat, udp({ src: SERVER, sport: rtpSrv, dst: EXT, dport: rtp.externalPort, payload: media }), 2), 'RTP in'), { src: SERVER, sport: rtpSrv, dst: A, dport: rtpIn });
    t.like(one(natIn(nat, udp({ src: SERVER, sport: rtcpSrv, dst: EXT, dport: rtcp.externalPort, payload: [0x80, 0xc8, 0, 6] }), 2), 'RTCP in'), { dst: A, dport: rtcpIn });
    // The punch datagrams made the sessions the media arrives on, so the expectations were not
    // needed for these two flows; they lapse on their own, and the media keeps flowing.
    const later = EXPECT_TIMEOUT_MS + 1;
    nat.expire(later);
    t.is(expectations(nat, later).length, 0);
    t.like(one(natIn(nat, udp({ src: SERVER, sport: rtpSrv, dst: EXT, dport: rtp.externalPort, payload: media }), later), 'RTP later'), { dst: A, dport: rtpIn });
    r.now = later;
    // The rest of the session (PLAY, TEARDOWN) passes unmodified.
    for (const m of cap.messages.slice(cap.reply + 1)) r.send(m.from === 'client' ? 'inside' : 'outside', m.text);
    t.is(r.text('toInside'), cap.messages.filter((m) => m.from === 'server').map((m) => m.text).join(''));
    t.is(rewrites(nat, 'rtsp'), 2);
  });
}

test('RTSP without the helper (the default set): the SETUP passes unmodified and the server\'s RTP is dropped', (t) => {
  const nat = mkNat();
  const cap = RTSP_FFMPEG;
  const r = replayRtsp(nat, cap, cap.reply);
  t.true(r.text('toOutside').includes(`client_port=${cap.clientPorts[0]}-${cap.clientPorts[1]}`));
  t.is(expectations(nat, 0).length, 0);
  // ffmpeg's punch datagram maps the RTP port to some external port; the server still sends
  // to the port named in the SETUP, which no mapping holds.
  const punch = one(natOut(nat, udp({ src: A, sport: cap.clientPorts[0], dst: SERVER, dport: cap.serverPorts[0], payload: [0x80, 0, 0, 0] }), 1), 'punch');
  const wrong = punch.sport === cap.clientPorts[0] ? cap.clientPorts[0] + 2 : cap.clientPorts[0];
  t.is(natIn(nat, udp({ src: SERVER, sport: cap.serverPorts[0], dst: EXT, dport: wrong, payload: [0x80, 0, 0, 1] }), 2).drop, 'no_mapping');
});

test('RTSP: destination= naming the client becomes the external address; naming a third host opens nothing (foreign_address); ports below 1024 refused (low_port); an unreadable SETUP counted (malformed)', (t) => {
  const setup = (transport: string): string => `SETUP rtsp://${SERVER}/test/stream=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: ${transport}\r\n\r\n`;
  let nat = mkNat({ alg: ['rtsp'] });
  let r = replayRtsp(nat, RTSP_FFMPEG, -1);
  r.send('inside', setup(`RTP/AVP;unicast;destination=${A};client_port=40000-40001`));
  const [e0, e1] = [40000, 40001].map((p) => expectations(nat, 0).find((x) => x.insidePort === p)!.externalPort);
  t.is(r.text('toOutside'), setup(`RTP/AVP;unicast;destination=${EXT};client_port=${e0}-${e1}`));

  nat = mkNat({ alg: ['rtsp'] });
  r = replayRtsp(nat, RTSP_FFMPEG, -1);
  const forged = setup(`RTP/AVP;unicast;destination=10.200.0.3;client_port=40000-40001`);
  r.send('inside', forged);
  t.is(r.text('toOutside'), forged);
  t.is(expectations(nat, 0).length, 0);
  t.is(algErr(nat, 'rtsp', AlgError.ForeignAddress), 1);

  nat = mkNat({ alg: ['rtsp'] });
  r = replayRtsp(nat, RTSP_FFMPEG, -1);
  const low = setup('RTP/AVP;unicast;client_port=554-555');
  r.send('inside', low);
  t.is(r.text('toOutside'), low);
  t.is(expectations(nat, 0).length, 0);
  t.is(algErr(nat, 'rtsp', AlgError.LowPort), 1);

  // A SETUP whose Transport cannot be read passes unmodified and is counted.
  nat = mkNat({ alg: ['rtsp'] });
  r = replayRtsp(nat, RTSP_FFMPEG, -1);
  const bad = setup('RTP/AVP;unicast;client_port=40001-40000');
  r.send('inside', bad);
  t.is(r.text('toOutside'), bad);
  t.is(algErr(nat, 'rtsp', AlgError.Malformed), 1);
  t.is(expectations(nat, 0).length, 0);
});

test('RTSP: the expectations admit only the server; RTP from another host is refused (wrong_remote)', (t) => {
  const nat = mkNat({ alg: ['rtsp'], filtering: 'endpoint' });
  replayRtsp(nat, RTSP_FFMPEG, RTSP_FFMPEG.setup);
  const rtp = expectations(nat, 0).find((x) => x.insidePort === RTSP_FFMPEG.clientPorts[0])!;
  t.is(natIn(nat, udp({ src: OTHER, sport: 5004, dst: EXT, dport: rtp.externalPort, payload: [0x80] }), 1).drop, 'filtered');
  t.is(algErr(nat, 'rtsp', AlgError.WrongRemote), 1);
  t.like(one(natIn(nat, udp({ src: SERVER, sport: 45684, dst: EXT, dport: rtp.externalPort, payload: [0x80] }), 2), 'RTP'), { dst: A, dport: RTSP_FFMPEG.clientPorts[0] });
});

// ---------------------------------------------------------------------------------------------
// TFTP

for (const [name, cap] of [
  ['get (RRQ)', TFTP_GET],
  ['put (WRQ)', TFTP_PUT],
] as const) {
  test(`TFTP ${name}, address-and-port filtering: the answer from the server's new port reaches the client's mapping once, with the helper only`, (t) => {
    for (const alg of [[], ['tftp']]) {
      const nat = mkNat({ alg, filtering: 'address-port' });
      const req = one(natOut(nat, udp({ src: A, sport: cap.clientPort, dst: SERVER, dport: 69, payload: cap.request }), 0), 'request');
      t.like(req, { src: EXT, dport: 69 });
      t.deepEqual(req.payload, cap.request, 'a TFTP request is never rewritten');
      const answer = Uint8Array.from({ length: cap.answerLength }, (_, i) => (i < 4 ? cap.answerHead[i]! : i & 0xff));
      const ans = natIn(nat, udp({ src: SERVER, sport: cap.serverPort, dst: EXT, dport: req.sport!, payload: answer }), 1);
      if (alg.length === 0) {
        t.is(ans.drop, 'filtered', 'without the helper the filtering mode refuses the new port');
        t.is(expectations(nat, 1).length, 0);
        continue;
      }
      t.like(ans.pkt, { src: SERVER, sport: cap.serverPort, dst: A, dport: cap.clientPort });
      t.deepEqual(ans.pkt!.payload, answer);
      // The transfer goes on on the same mapping, both ways.
      t.like(one(natOut(nat, udp({ src: A, sport: cap.clientPort, dst: SERVER, dport: cap.serverPort, payload: [0, 4, 0, 1] }), 2), 'ACK'), { src: EXT, sport: req.sport, dport: cap.serverPort });
      t.like(one(natIn(nat, udp({ src: SERVER, sport: cap.serverPort, dst: EXT, dport: req.sport!, payload: [0, 3, 0, 2] }), 3), 'DATA 2'), { dst: A, dport: cap.clientPort });
      // One flow only: a third port of the server is the filtering mode's business again.
      t.is(natIn(nat, udp({ src: SERVER, sport: cap.serverPort + 1, dst: EXT, dport: req.sport!, payload: [0, 3, 0, 1] }), 4).drop, 'filtered');
      t.is(expectations(nat, 4).length, 0);
      t.is(rewrites(nat, 'tftp'), 0);
    }
  });
}

test('TFTP: the expectation is the server\'s only (wrong_remote), expires with the fake clock, and a request that is not one opens nothing (malformed)', (t) => {
  let nat = mkNat({ alg: ['tftp'], filtering: 'address-port' });
  const req = one(natOut(nat, udp({ src: A, sport: TFTP_GET.clientPort, dst: SERVER, dport: 69, payload: TFTP_GET.request }), 0), 'RRQ');
  t.is(natIn(nat, udp({ src: OTHER, sport: 40000, dst: EXT, dport: req.sport!, payload: [0, 3, 0, 1] }), 1).drop, 'filtered');
  t.is(algErr(nat, 'tftp', AlgError.WrongRemote), 1);
  t.like(expectations(nat, 1)[0], { alg: 'tftp', proto: 'udp', inside: A, insidePort: TFTP_GET.clientPort, externalPort: req.sport, remote: SERVER });
  // Past its time the expectation is gone and the answer is filtered.
  nat.expire(EXPECT_TIMEOUT_MS + 1);
  t.is(expectations(nat, EXPECT_TIMEOUT_MS + 1).length, 0);
  t.is(natIn(nat, udp({ src: SERVER, sport: TFTP_GET.serverPort, dst: EXT, dport: req.sport!, payload: [0, 3, 0, 1] }), EXPECT_TIMEOUT_MS + 2).drop, 'filtered');

  nat = mkNat({ alg: ['tftp'], filtering: 'address-port' });
  natOut(nat, udp({ src: A, sport: 50000, dst: SERVER, dport: 69, payload: TFTP_GET.ack }), 0);
  t.is(expectations(nat, 0).length, 0);
  t.is(algErr(nat, 'tftp', AlgError.Malformed), 1);
});

// ---------------------------------------------------------------------------------------------
// IRC DCC

const IRC_SERVER = '198.51.100.11';

function replayIrc(nat: Nat): TcpReplay {
  return new TcpReplay(nat, { inside: A, insidePort: 45000, outside: IRC_SERVER, outsidePort: 6667, opener: 'inside', insideIsn: 0xfffffff0, outsideIsn: 777 }).open();
}

test('DCC SEND (irssi line): address and port rewritten, the packet grows (Init-seq, Delta), any peer connects once', (t) => {
  const nat = mkNat({ alg: ['irc'] });
  const r = replayIrc(nat);
  r.send('inside', 'NICK alice\r\n');
  const sent = r.send('inside', DCC_LINES.send);
  const [x] = expectations(nat, 0);
  t.like(x, { alg: 'irc', proto: 'tcp', inside: A, insidePort: 40123, external: EXT, remote: '0.0.0.0' });
  const want = DCC_LINES.send.replace(`${DCC_INSIDE} 40123`, `${EXT_INT} ${x!.externalPort}`);
  t.is(r.text('toOutside'), 'NICK alice\r\n' + want);
  const grow = want.length - DCC_LINES.send.length;
  t.true(grow >= 1, 'the external address has more digits than the inside one');
  const ctl = nat.partitions.flatMap((p) => listSessions(p.table, 0)).find((s) => s.remotePort === 6667)!;
  t.is(ctl.initSeq, (0xfffffff0 + 1 + 'NICK alice\r\n'.length) >>> 0, 'Init-seq: the inside sequence number of the rewritten segment');
  t.is(sent.out.seq, ctl.initSeq, 'the rewritten segment itself keeps its sequence number');
  t.is(ctl.delta, grow);
  // The stream goes on with shifted sequence numbers (TcpReplay checks them), across 2^32.
  r.send('inside', 'PRIVMSG bob :sent you a file\r\n');
  r.send('outside', ':bob PRIVMSG alice :thanks\r\n');
  // A peer anywhere connects to the expected port, once.
  const syn = one(natIn(nat, tcp({ src: OTHER, sport: 51000, dst: EXT, dport: x!.externalPort, flags: 'S', seq: 1 }), 1), 'peer SYN');
  t.like(syn, { src: OTHER, dst: A, dport: 40123 });
  t.is(natIn(nat, tcp({ src: '203.0.113.77', sport: 51000, dst: EXT, dport: x!.externalPort, flags: 'S', seq: 1 }), 2).drop, 'filtered');
});

test('DCC CHAT and a plain file name; forged address, low port and reverse DCC are left alone', (t) => {
  const nat = mkNat({ alg: ['irc'] });
  const r = replayIrc(nat);
  r.send('inside', DCC_LINES.chat);
  const chat = expectations(nat, 0).find((x) => x.insidePort === 40200)!;
  t.is(r.text('toOutside'), DCC_LINES.chat.replace(`${DCC_INSIDE} 40200`, `${EXT_INT} ${chat.externalPort}`));
  const before = r.text('toOutside').length;
  for (const line of [DCC_LINES.forged, DCC_LINES.lowPort, DCC_LINES.passive]) r.send('inside', line);
  t.is(r.text('toOutside').slice(before), DCC_LINES.forged + DCC_LINES.lowPort + DCC_LINES.passive);
  t.is(algErr(nat, 'irc', AlgError.ForeignAddress), 1);
  t.is(algErr(nat, 'irc', AlgError.LowPort), 1);
  t.is(expectations(nat, 0).length, 1);
  // Two offers in one segment: both rewritten.
  r.send('inside', DCC_LINES.sendPlain + DCC_LINES.chat.replace('40200', '40300'));
  const ports = new Map(expectations(nat, 0).map((x) => [x.insidePort, x.externalPort]));
  t.true(r.text('toOutside').endsWith(DCC_LINES.sendPlain.replace(`${DCC_INSIDE} 5000`, `${EXT_INT} ${ports.get(5000)!}`) + DCC_LINES.chat.replace(`${DCC_INSIDE} 40200`, `${EXT_INT} ${ports.get(40300)!}`)));
  t.is(rewrites(nat, 'irc'), 3);
});

test('IRC is off by default (RFC 5382 REQ-6): the offer passes unmodified and nothing is expected', (t) => {
  const nat = mkNat();
  const r = replayIrc(nat);
  r.send('inside', DCC_LINES.send);
  t.is(r.text('toOutside'), DCC_LINES.send);
  t.is(expectations(nat, 0).length, 0);
});

test('DCC: two offers back to back in one line, each rewrite shrinking the text (external 1.2.3.4): both found and rewritten', (t) => {
  const nat = new Nat({ externals: ['1.2.3.4'], rules: RULES, maxSessions: 4096, seed: 11, alg: ['irc'] });
  const r = replayIrc(nat);
  const line = `PRIVMSG bob :\x01DCC CHAT chat ${DCC_INSIDE} 40200\x01\x01DCC CHAT chat ${DCC_INSIDE} 40201\x01\r\n`;
  r.send('inside', line);
  const ports = new Map(expectations(nat, 0).map((x) => [x.insidePort, x.externalPort]));
  t.is(ports.size, 2);
  t.is(r.text('toOutside'), `PRIVMSG bob :\x01DCC CHAT chat 16909060 ${ports.get(40200)!}\x01\x01DCC CHAT chat 16909060 ${ports.get(40201)!}\x01\r\n`);
});
