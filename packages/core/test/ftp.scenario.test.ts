/**
 * ftp.scenario.test.ts — the FTP helper through the whole translator (`Nat`), with control
 * sessions captured from real lftp, tnftp and vsftpd (fixtures/ftp-sessions.ts) replayed by
 * peers that acknowledge exactly what they receive (helpers/tcp-replay.ts), every emitted
 * packet held to the checksum oracle: PORT, EPRT, 227, 229, a rewrite that grows the packet
 * and one that shrinks it, a retransmitted rewritten segment, sequence wrap-around at 2^32,
 * a command split over two segments, a forged PORT, a low port, no room, SACK-permitted
 * stripped, the expectation admitting exactly one flow from the expected remote and expiring,
 * the data connection across partitions (pinned endpoint), and the control connection kept
 * alive by its data connection (fake clock).
 */
import test from 'ava';
import { Nat, type NatOptions } from '../src/nat.js';
import { C, algErrorSlot } from '../src/counters.js';
import { AlgError, EXPECT_TIMEOUT_MS } from '../src/alg/types.js';
import { listExpectations } from '../src/alg/engine.js';
import { listSessions, formatProc } from '../src/listing.js';
import { insidePartition } from '../src/hash.js';
import { MINUTE } from '../src/config.js';
import { addr, icmpError, natIn, natOut, tcp } from './helpers/packets.js';
import { TcpReplay } from './helpers/tcp-replay.js';
import { completePartial, makePartial } from './helpers/partial.js';
import { problems } from './helpers/oracle.js';
import { Direction } from '../src/verdict.js';
import { LFTP_ACTIVE, TNFTP_EPRT, VSFTPD_EPSV, VSFTPD_PASV, type FtpSession } from './fixtures/ftp-sessions.js';

const EXT = '198.51.100.100';
const A = '10.200.0.2';
const SERVER = '198.51.100.10';
const RULES = 'masquerade all from 10.200.0.0/24 to any';

function mkNat(o: Partial<NatOptions> = {}): Nat {
  return new Nat({ externals: [EXT], rules: RULES, maxSessions: 4096, seed: 7, ...o });
}

function counter(nat: Nat, slot: number): number {
  return nat.counters()[slot]!;
}
function algErr(nat: Nat, reason: AlgError): number {
  return counter(nat, algErrorSlot(1, reason));
}

/** Replay a captured session whose client is inside (active mode): returns the replay. */
function replayClientInside(nat: Nat, s: FtpSession, opts: { insideIsn?: number; until?: (text: string) => boolean } = {}): TcpReplay {
  const r = new TcpReplay(nat, { inside: s.client, insidePort: s.clientPort, outside: s.server, outsidePort: 21, opener: 'inside', insideIsn: opts.insideIsn ?? s.clientIsn, outsideIsn: s.serverIsn }).open();
  for (const seg of s.segments) {
    r.send(seg.from === 'client' ? 'inside' : 'outside', seg.text);
    if (opts.until?.(seg.text)) break;
  }
  return r;
}

/** The inside stream with every PORT/EPRT argument as the helper must have rewritten it. */
function expectOutside(inside: string, ext: string, ports: Map<number, number>): string {
  return inside
    .replace(/PORT (\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\r\n/g, (_m, _a, _b, _c, _d, p1: string, p2: string) => {
      const e = ports.get(Number(p1) * 256 + Number(p2))!;
      return `PORT ${ext.replaceAll('.', ',')},${e >> 8},${e & 255}\r\n`;
    })
    .replace(/EPRT \|1\|([\d.]+)\|(\d+)\|\r\n/g, (_m, _a, p: string) => `EPRT |1|${ext}|${ports.get(Number(p))!}|\r\n`);
}

/** Inside data port → external port, from the table's mappings (via the expectation list or sessions). */
function dataPorts(nat: Nat, now: number): Map<number, number> {
  const m = new Map<number, number>();
  for (const p of nat.partitions) {
    for (const x of listExpectations(p.table, now)) m.set(x.insidePort, x.externalPort);
    for (const s of listSessions(p.table, now)) if (s.remotePort !== 21) m.set(s.insidePort, s.externalPort);
  }
  return m;
}

/** The server opens the data connection from port 20 to the rewritten PORT; returns the SYN as delivered. */
function dataSyn(nat: Nat, from: string, extPort: number, now: number) {
  return natIn(nat, tcp({ src: from, sport: 20, dst: EXT, dport: extPort, flags: 'S', seq: 5000 }), now);
}

// ---------------------------------------------------------------------------------------------

test("a control session in a reused slot starts with no sequence deltas of the slot's last session (a new session clears the helper columns' flags, not the columns)", (t) => {
  const nat = mkNat();
  const tab = nat.partitions[0]!.table;
  // A session whose slot is then freed with every helper column holding junk (as a helper's
  // session would leave it); the slot is the first a new session takes.
  const prev = natOut(nat, tcp({ src: A, sport: 30000, dst: SERVER, dport: 80, flags: 'S' }), 0);
  t.is(prev.drop, 'none');
  const sid = listSessions(tab, 0)[0]!.id;
  const c = tab.cols;
  for (const col of [c.sInitSeq, c.sDelta, c.sPDelta, c.sInitSeqIn, c.sDeltaIn, c.sPDeltaIn, c.sAlgLink]) col[sid] = 0x5a5a5a5a;
  t.like(listSessions(tab, 0)[0], { initSeq: 0, delta: 0, pdelta: 0 }, 'without a helper\'s rewrite the listing shows none');
  t.is(nat.partitions[0]!.flush(1, () => true), 1);
  replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('RETR') });
  const ctl = listSessions(tab, 0).find((s) => s.remotePort === 21)!;
  t.is(ctl.id, sid, 'the control session took the freed slot');
  const ext = dataPorts(nat, 0).get(226 * 256 + 205)!;
  const portSeg = LFTP_ACTIVE.segments.find((s) => s.text.startsWith('PORT'))!;
  t.is(ctl.initSeq, (LFTP_ACTIVE.clientIsn + 1 + portSeg.seq) >>> 0);
  t.is(ctl.delta, `198,51,100,100,${ext >> 8},${ext & 255}`.length - '10,200,0,2,226,205'.length);
  t.is(ctl.pdelta, 0);
});

test('PORT (lftp, active): rewritten to the external address and an expected port; streams match; data connection admitted once', (t) => {
  const nat = mkNat();
  const r = replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('RETR') });
  // The captured PORT: 10,200,0,2,226,205 → 198,51,100,100,E.
  const ports = dataPorts(nat, 0);
  const ext = ports.get(226 * 256 + 205);
  t.truthy(ext);
  t.is(r.text('toOutside'), expectOutside(new TextDecoder('latin1').decode(Uint8Array.from(r.log.filter((s) => s.from === 'inside').flatMap((s) => [...s.pkt.subarray(40)]))), EXT, ports));
  t.regex(r.text('toOutside'), new RegExp(`PORT 198,51,100,100,${ext! >> 8},${ext! & 255}\\r\\n`));
  t.is(r.text('toInside'), LFTP_ACTIVE.segments.filter((s) => s.from === 'server').map((s) => s.text).join('').slice(0, r.inRecv), 'the server side passes unmodified');
  t.is(counter(nat, C.ALG_REWRITES + 1), 1);
  t.is(counter(nat, C.EXPECTATIONS), 1);
  const [x] = listExpectations(nat.partitions[0]!.table, 0);
  t.like(x, { alg: 'ftp', proto: 'tcp', inside: A, insidePort: 226 * 256 + 205, external: EXT, externalPort: ext, remote: SERVER, expiresMs: EXPECT_TIMEOUT_MS });
  // The control row: Init-seq = the PORT segment's sequence number, Delta = +4 (the address
  // 10,200,0,2 → 198,51,100,100) plus the port's change in digits.
  const ctl = listSessions(nat.partitions[0]!.table, 0).find((s) => s.remotePort === 21)!;
  const portSeg = LFTP_ACTIVE.segments.find((s) => s.text.startsWith('PORT'))!;
  t.is(ctl.initSeq, (LFTP_ACTIVE.clientIsn + 1 + portSeg.seq) >>> 0);
  const growth = `198,51,100,100,${ext! >> 8},${ext! & 255}`.length - '10,200,0,2,226,205'.length;
  t.is(ctl.delta, growth);
  t.is(ctl.pdelta, 0);
  t.regex(formatProc([ctl]), new RegExp(` ${(ctl.initSeq >>> 0).toString(16).toUpperCase().padStart(8, '0')} +${growth} +0 `));
  // vsftpd connects from port 20 to the external port: admitted, to the inside data port.
  const syn = dataSyn(nat, SERVER, ext!, 10);
  t.like(syn.pkt, { src: SERVER, sport: 20, dst: A, dport: 226 * 256 + 205 });
  t.is(counter(nat, C.EXPECTATIONS), 0, 'the expectation is used up');
  t.is(listExpectations(nat.partitions[0]!.table, 10).length, 0);
  // ...and is now an ordinary session, so the client's SYN/ACK goes out on it.
  const sa = natOut(nat, tcp({ src: A, sport: 226 * 256 + 205, dst: SERVER, dport: 20, flags: 'SA', seq: 9000, ack: 5001 }), 11);
  t.like(sa.pkt, { src: EXT, sport: ext, dst: SERVER, dport: 20 });
  // Exactly one flow: a second connection to that port, from the server's other port, is refused.
  t.is(natIn(nat, tcp({ src: SERVER, sport: 2020, dst: EXT, dport: ext!, flags: 'S' }), 12).drop, 'filtered');
});

test('the expectation admits only the expected remote: another host is refused (wrong_remote), the server still gets in', (t) => {
  const nat = mkNat({ filtering: 'endpoint' });
  replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('PORT') });
  const ext = dataPorts(nat, 0).get(226 * 256 + 205)!;
  t.is(dataSyn(nat, '203.0.113.66', ext, 1).drop, 'filtered');
  t.is(algErr(nat, AlgError.WrongRemote), 1);
  t.like(dataSyn(nat, SERVER, ext, 2).pkt, { dst: A, dport: 226 * 256 + 205 });
});

test('EPRT (tnftp, RFC 2428): |1|10.200.0.2|58833| → |1|198.51.100.100|E|, data connection admitted', (t) => {
  const nat = mkNat();
  const r = replayClientInside(nat, TNFTP_EPRT, { until: (x) => x.startsWith('RETR') });
  const ext = dataPorts(nat, 0).get(58833)!;
  t.regex(r.text('toOutside'), new RegExp(`\\r\\nEPRT \\|1\\|198\\.51\\.100\\.100\\|${ext}\\|\\r\\nRETR file\\.bin\\r\\n$`));
  t.like(dataSyn(nat, SERVER, ext, 1).pkt, { dst: A, dport: 58833 });
});

/** An inside vsftpd behind a forward, the outside client replaying the capture. */
function replayServerInside(nat: Nat, s: FtpSession, until: string): TcpReplay {
  const r = new TcpReplay(nat, { inside: s.server, insidePort: 21, outside: s.client, outsidePort: s.clientPort, opener: 'outside', external: EXT, externalPort: 21, insideIsn: s.serverIsn, outsideIsn: s.clientIsn }).open();
  for (const seg of s.segments) {
    r.send(seg.from === 'server' ? 'inside' : 'outside', seg.text);
    if (seg.text.startsWith(until)) break;
  }
  return r;
}

const FORWARD = `${RULES}\nforward tcp ${EXT}:21 to ${A}:21`;

test('227 (vsftpd inside, behind a forward): (10,200,0,2,44,156) → the external address and an expected port', (t) => {
  const nat = mkNat({ rules: FORWARD });
  const r = replayServerInside(nat, VSFTPD_PASV, '227');
  const ext = dataPorts(nat, 0).get(44 * 256 + 156)!;
  t.true(r.text('toOutside').endsWith(`227 Entering Passive Mode (198,51,100,100,${ext >> 8},${ext & 255}).\r\n`), r.text('toOutside').slice(-60));
  // The client (outside) connects to it: admitted to the inside server's data port.
  const syn = natIn(nat, tcp({ src: VSFTPD_PASV.client, sport: 40000, dst: EXT, dport: ext, flags: 'S' }), 1);
  t.like(syn.pkt, { dst: A, dport: 44 * 256 + 156 });
  const sa = natOut(nat, tcp({ src: A, sport: 44 * 256 + 156, dst: VSFTPD_PASV.client, dport: 40000, flags: 'SA', ack: 1001 }), 2);
  t.like(sa.pkt, { src: EXT, sport: ext });
});

test('229 (vsftpd inside, behind a forward): (|||7937|) → (|||E|), the client admitted', (t) => {
  const nat = mkNat({ rules: FORWARD });
  const r = replayServerInside(nat, VSFTPD_EPSV, '229');
  const ext = dataPorts(nat, 0).get(7937)!;
  t.true(r.text('toOutside').endsWith(`229 Entering Extended Passive Mode (|||${ext}|)\r\n`));
  t.like(natIn(nat, tcp({ src: VSFTPD_EPSV.client, sport: 40001, dst: EXT, dport: ext, flags: 'S' }), 1).pkt, { dst: A, dport: 7937 });
});

test('a rewrite that grows and one that shrinks the packet: total length, both checksums, Delta', (t) => {
  // Grows: 10,200,0,2 → 198,51,100,100 (+4 before the port digits).
  const big = mkNat();
  const rb = replayClientInside(big, LFTP_ACTIVE, { until: (x) => x.startsWith('PORT') });
  const grown = rb.log.at(-1)!;
  t.true(grown.out.totalLen > grown.pkt.length, `${grown.out.totalLen} > ${grown.pkt.length}`);
  t.is(grown.out.totalLen, grown.raw.length);
  // Shrinks: a 7-character external address (9,9,9,9).
  const small = new Nat({ externals: ['9.9.9.9'], rules: RULES, maxSessions: 4096, seed: 7, portLo: 60000, portHi: 60999 });
  const rs = replayClientInside(small, LFTP_ACTIVE, { until: (x) => x.startsWith('PORT') });
  const shrunk = rs.log.at(-1)!;
  t.true(shrunk.out.totalLen < shrunk.pkt.length, `${shrunk.out.totalLen} < ${shrunk.pkt.length}`);
  const ext = dataPorts(small, 0).get(226 * 256 + 205)!;
  t.is(new TextDecoder().decode(shrunk.out.payload), `PORT 9,9,9,9,${ext >> 8},${ext & 255}\r\n`);
  const ctl = listSessions(small.partitions[0]!.table, 0).find((s) => s.remotePort === 21)!;
  t.is(ctl.delta, shrunk.out.totalLen - shrunk.pkt.length);
  t.true(ctl.delta < 0);
  // Later segments both ways keep working (the replay checks every seq and ack).
  rs.send('outside', '200 PORT command successful.\r\n');
  rs.send('inside', 'RETR file.bin\r\n');
  t.pass();
});

test('a retransmitted PORT is rewritten the same way and does not move Delta; later segments still line up', (t) => {
  const nat = mkNat();
  const r = replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('PORT') });
  const first = r.log.at(-1)!;
  const ctl0 = listSessions(nat.partitions[0]!.table, 0).find((s) => s.remotePort === 21)!;
  const again = r.resend(first);
  t.deepEqual([...again.raw], [...first.raw], 'byte for byte the same segment');
  const ctl1 = listSessions(nat.partitions[0]!.table, 0).find((s) => s.remotePort === 21)!;
  t.deepEqual([ctl1.initSeq, ctl1.delta, ctl1.pdelta], [ctl0.initSeq, ctl0.delta, ctl0.pdelta]);
  t.is(counter(nat, C.EXPECTATIONS), 1, 'still one expectation');
  // A retransmission of a segment from before the PORT keeps PDelta (0): its seq is as sent.
  const before = r.log.find((s) => s.from === 'inside')!;
  t.is(r.resend(before).out.seq, before.out.seq);
  r.send('outside', '200 PORT command successful.\r\n');
  r.send('inside', 'RETR file.bin\r\n');
  t.pass();
});

test('sequence numbers wrap at 2^32 across the rewrite', (t) => {
  const nat = mkNat();
  const portSeg = LFTP_ACTIVE.segments.find((s) => s.text.startsWith('PORT'))!;
  // The PORT segment starts 5 bytes before 2^32 and ends after it.
  const isn = (2 ** 32 - 5 - 1 - portSeg.seq) >>> 0;
  const r = replayClientInside(nat, LFTP_ACTIVE, { insideIsn: isn });
  const ctl = listSessions(nat.partitions[0]!.table, 0).find((s) => s.remotePort === 21)!;
  // Init-seq is the last resized segment's: the second PORT, 40 bytes after the first, past 2^32.
  const second = LFTP_ACTIVE.segments.filter((s) => s.text.startsWith('PORT'))[1]!;
  t.is(second.seq - portSeg.seq, 40);
  t.is(ctl.initSeq, 35);
  t.true(ctl.pdelta !== 0, 'PDelta holds the first rewrite\'s offset');
  t.true(r.inSent > 0 && ((isn + 1 + r.inSent) >>> 0) < 1000, 'the inside stream wrapped');
  // Every segment after it was checked by the replay (seq and ack); the streams match.
  const ports = dataPorts(nat, 0);
  const inside = LFTP_ACTIVE.segments.filter((s) => s.from === 'client').map((s) => s.text).join('');
  t.is(r.text('toOutside'), expectOutside(inside, EXT, ports));
});

test('a PORT split over two segments passes unmodified and is counted (split)', (t) => {
  const nat = mkNat();
  const r = replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('TYPE') });
  r.send('inside', 'PORT 10,200,0,2,');
  r.send('inside', '226,205\r\n');
  t.true(r.text('toOutside').endsWith('PORT 10,200,0,2,226,205\r\n'));
  t.is(algErr(nat, AlgError.Split), 1);
  t.is(counter(nat, C.ALG_REWRITES + 1), 0);
  t.is(counter(nat, C.EXPECTATIONS), 0);
  // The next complete command is handled again.
  r.send('inside', 'PORT 10,200,0,2,226,206\r\n');
  t.is(counter(nat, C.ALG_REWRITES + 1), 1);
});

test('a forged PORT naming another host is refused: unmodified, nothing opened, foreign_address', (t) => {
  const nat = mkNat();
  const r = replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('TYPE') });
  r.send('inside', 'PORT 10,200,0,3,226,205\r\n');
  t.true(r.text('toOutside').endsWith('PORT 10,200,0,3,226,205\r\n'));
  t.is(algErr(nat, AlgError.ForeignAddress), 1);
  t.is(counter(nat, C.EXPECTATIONS), 0);
  t.is(counter(nat, C.ALG_REWRITES + 1), 0);
  r.send('inside', 'PORT 10,200,0,2,0,21\r\n');
  t.is(algErr(nat, AlgError.LowPort), 1, 'a data port below 1024 is refused too');
  r.send('inside', 'PORT 10,200,0,2,x\r\n');
  t.is(algErr(nat, AlgError.Malformed), 1);
  t.is(counter(nat, C.EXPECTATIONS), 0);
});

test('no room for the grown packet: passed unmodified, no_room counted, nothing opened', (t) => {
  const nat = mkNat();
  replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('TYPE') });
  const ctl = listSessions(nat.partitions[0]!.table, 0).find((s) => s.remotePort === 21)!;
  const seg = LFTP_ACTIVE.segments.find((s) => s.text.startsWith('PORT'))!;
  const pkt = tcp({ src: A, sport: ctl.insidePort, dst: SERVER, dport: 21, flags: 'PA', seq: LFTP_ACTIVE.clientIsn + 1 + seg.seq, ack: LFTP_ACTIVE.serverIsn + 1 + seg.ack, payload: seg.text });
  // Exactly the packet's size: no room after it.
  const out = nat.process(pkt, 0, pkt.length, 1);
  t.is(out.length, 1);
  t.true(new TextDecoder().decode(out[0]!.subarray(40)).startsWith('PORT 10,200,0,2,226,205\r\n'));
  t.is(algErr(nat, AlgError.NoRoom), 1);
  t.is(counter(nat, C.EXPECTATIONS), 0);
});

test('--offload: a grown PORT with a partial checksum: the pseudo-header length follows, the completed checksum verifies', (t) => {
  const nat = mkNat();
  replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('TYPE') });
  const ctl = listSessions(nat.partitions[0]!.table, 0).find((s) => s.remotePort === 21)!;
  const seg = LFTP_ACTIVE.segments.find((s) => s.text.startsWith('PORT'))!;
  const pkt = tcp({ src: A, sport: ctl.insidePort, dst: SERVER, dport: 21, flags: 'PA', seq: LFTP_ACTIVE.clientIsn + 1 + seg.seq, ack: LFTP_ACTIVE.serverIsn + 1 + seg.ack, payload: seg.text });
  makePartial(pkt);
  const buf = new Uint8Array(pkt.length + 64);
  buf.set(pkt);
  t.is(nat.partitions[0]!.translate(buf, 0, pkt.length, Direction.Out, 1, true, buf.length), 1);
  const tl = (buf[2]! << 8) | buf[3]!;
  t.true(tl > pkt.length);
  const out = buf.slice(0, tl);
  // Before completion the field must be the pseudo-header sum of the NEW addresses and length.
  const check = (out[36]! << 8) | out[37]!;
  const probe = out.slice();
  makePartial(probe);
  t.is(check, (probe[36]! << 8) | probe[37]!);
  completePartial(out);
  t.deepEqual(problems(out), []);
  t.regex(new TextDecoder().decode(out.subarray(40)), /^PORT 198,51,100,100,\d+,\d+\r\n$/);
});

test('SACK-permitted is stripped from the SYN of a watched connection (NOPs), not from others', (t) => {
  const nat = mkNat();
  const r = new TcpReplay(nat, { inside: A, insidePort: 40000, outside: SERVER, outsidePort: 21, opener: 'inside', insideIsn: 1, outsideIsn: 2, synOptions: [2, 4, 5, 0xb4, 4, 2, 1, 1] }).open();
  t.deepEqual([...r.syn!.payload.subarray(0, 0)], []);
  const syn = natOut(nat, tcp({ src: A, sport: 40001, dst: SERVER, dport: 21, flags: 'S', options: [2, 4, 5, 0xb4, 4, 2, 1, 1] }), 0);
  t.deepEqual([...syn.bytes[0]!.subarray(40, 48)], [2, 4, 5, 0xb4, 1, 1, 1, 1]);
  const other = natOut(nat, tcp({ src: A, sport: 40002, dst: SERVER, dport: 80, flags: 'S', options: [2, 4, 5, 0xb4, 4, 2, 1, 1] }), 0);
  t.deepEqual([...other.bytes[0]!.subarray(40, 48)], [2, 4, 5, 0xb4, 4, 2, 1, 1]);
});

test('an unused expectation expires after its time: mapping freed, gauge back to 0', (t) => {
  const nat = mkNat();
  replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('PORT') });
  const ext = dataPorts(nat, 0).get(226 * 256 + 205)!;
  t.is(counter(nat, C.EXPECTATIONS), 1);
  const mappings = counter(nat, C.LIVE_MAPPINGS);
  nat.expire(EXPECT_TIMEOUT_MS - 1);
  t.is(counter(nat, C.EXPECTATIONS), 1);
  nat.expire(EXPECT_TIMEOUT_MS);
  t.is(counter(nat, C.EXPECTATIONS), 0);
  t.is(counter(nat, C.LIVE_MAPPINGS), mappings - 1);
  t.is(dataSyn(nat, SERVER, ext, EXPECT_TIMEOUT_MS + 1).drop, 'no_mapping');
});

test('two partitions: the data connection lives with its control session; the client\'s packets are pinned there', (t) => {
  const nat = mkNat({ partitions: 2 });
  const r = replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('TYPE') });
  void r;
  const ctlPart = insidePartition(6, addr(A), LFTP_ACTIVE.clientPort, 2);
  // A data port that hashes to the other partition.
  let port = 50000;
  while (insidePartition(6, addr(A), port, 2) === ctlPart) port++;
  r.send('inside', `PORT 10,200,0,2,${port >> 8},${port & 255}\r\n`);
  const ext = dataPorts(nat, 0).get(port)!;
  t.is(nat.plan.ownerOf[ext], ctlPart, 'the external port comes from the control session\'s slice');
  t.is(nat.pins.lookup(6, addr(A), port), ctlPart);
  const syn = dataSyn(nat, SERVER, ext, 1);
  t.like(syn.pkt, { dst: A, dport: port });
  // Without the pin this SYN/ACK would go to the hash's partition and be dropped (tcp_not_syn).
  const sa = natOut(nat, tcp({ src: A, sport: port, dst: SERVER, dport: 20, flags: 'SA', seq: 9000, ack: 5001 }), 2);
  t.like(sa.pkt, { src: EXT, sport: ext });
  t.is(nat.partitions[1 - ctlPart]!.table.sessionCount, 0, 'nothing landed in the other partition');
  // An ICMP error from the inside host about that flow follows the pin too.
  const err = natOut(nat, icmpError({ src: A, dst: SERVER, type: 3, code: 3, quote: syn.bytes[0]! }), 3);
  t.like(err.pkt, { src: EXT, dst: SERVER, type: 3 });
  t.like(err.pkt!.inner, { src: SERVER, sport: 20, dst: EXT, dport: ext });
  // The pin goes with the data session.
  nat.partitions[ctlPart]!.flush(4, (sid) => nat.partitions[ctlPart]!.table.sRemPort(sid) === 20);
  t.is(nat.pins.lookup(6, addr(A), port), -1);
});

test('fake clock: a long download keeps its idle control connection alive', (t) => {
  // The established timer at its RFC 5382 minimum (2h4m): a download longer than that.
  const nat = mkNat();
  const EST = nat.config.timeouts.tcpEstablished;
  replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('PORT') });
  const ext = dataPorts(nat, 0).get(226 * 256 + 205)!;
  dataSyn(nat, SERVER, ext, 0);
  natOut(nat, tcp({ src: A, sport: 226 * 256 + 205, dst: SERVER, dport: 20, flags: 'SA', seq: 9000, ack: 5001 }), 0);
  // 130 minutes of data, one segment a minute; the control connection says nothing.
  for (let m = 1; m <= 130; m++) {
    const now = m * MINUTE;
    t.is(natIn(nat, tcp({ src: SERVER, sport: 20, dst: EXT, dport: ext, flags: 'A', seq: 5001 + m, ack: 9001, payload: 'x' }), now).drop, 'none');
    nat.expire(now);
  }
  const rows = listSessions(nat.partitions[0]!.table, 130 * MINUTE);
  t.truthy(rows.find((s) => s.remotePort === 21), 'the control connection is still there after 130 idle minutes');
  // Once the data connection stops, the control connection expires on its own timer.
  nat.expire(130 * MINUTE + EST + MINUTE);
  t.falsy(listSessions(nat.partitions[0]!.table, 130 * MINUTE + EST + MINUTE).find((s) => s.remotePort === 21));
});

test('--alg none: PORT passes unmodified and nothing is counted', (t) => {
  const nat = mkNat({ alg: [] });
  const r = replayClientInside(nat, LFTP_ACTIVE, { until: (x) => x.startsWith('PORT') });
  t.true(r.text('toOutside').endsWith('PORT 10,200,0,2,226,205\r\n'));
  t.is(counter(nat, C.ALG_REWRITES + 1), 0);
  t.is(counter(nat, C.EXPECTATIONS), 0);
});

test('[alg_ports]: FTP on port 2121 is watched; port 21 then is not', (t) => {
  const nat = mkNat({ algPorts: { ftp: [2121] } });
  const on2121 = new TcpReplay(nat, { inside: A, insidePort: 41000, outside: SERVER, outsidePort: 2121, opener: 'inside', insideIsn: 1, outsideIsn: 2 }).open();
  on2121.send('inside', 'PORT 10,200,0,2,200,1\r\n');
  t.regex(on2121.text('toOutside'), /^PORT 198,51,100,100,\d+,\d+\r\n$/);
  const on21 = new TcpReplay(nat, { inside: A, insidePort: 41001, outside: SERVER, outsidePort: 21, opener: 'inside', insideIsn: 1, outsideIsn: 2 }).open();
  on21.send('inside', 'PORT 10,200,0,2,200,2\r\n');
  t.is(on21.text('toOutside'), 'PORT 10,200,0,2,200,2\r\n');
  // Live: the partition's setAlg (a reload) moves it back to the helper's default.
  nat.partitions[0]!.setAlg(['ftp']);
  const again = new TcpReplay(nat, { inside: A, insidePort: 41002, outside: SERVER, outsidePort: 21, opener: 'inside', insideIsn: 1, outsideIsn: 2 }).open();
  again.send('inside', 'PORT 10,200,0,2,200,3\r\n');
  t.regex(again.text('toOutside'), /^PORT 198,51,100,100,/);
  t.throws(() => mkNat({ algPorts: { ftp: [70000] } }), { message: /alg_ports\.ftp: expected a non-empty list of ports 1-65535/ });
});
