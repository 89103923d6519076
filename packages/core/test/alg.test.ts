/**
 * alg.test.ts — the protocol-helper seam's pure parts: the FTP parsers on the captured bytes
 * (fixtures/ftp-sessions.ts) and on malformed text, the sequence-delta arithmetic with the
 * 1996 semantics (wrap-around at 2^32 included), the registry and `--alg` list parsing, and
 * the pinned-endpoint table.
 */
import test from 'ava';
import { parse227, parse229, parseEprt, parsePort } from '../src/alg/ftp.js';
import { after, fixAck, fixSeq, seqUpdate, type SeqState } from '../src/alg/seq.js';
import { algNames, parseAlgList, checkAlgNames } from '../src/alg/registry.js';
import { PinTable } from '../src/alg/pins.js';
import { parseIPv4 } from '../src/addr.js';
import { LFTP_ACTIVE, LFTP_EPSV, LFTP_PASV, TNFTP_EPRT, VSFTPD_EPSV, VSFTPD_PASV, type FtpSession } from './fixtures/ftp-sessions.js';

const enc = new TextEncoder();

/** The captured segment whose text starts with `prefix`. */
function line(s: FtpSession, prefix: string): Uint8Array {
  const seg = s.segments.find((x) => x.text.startsWith(prefix));
  if (!seg) throw new Error(`no segment starting ${prefix}`);
  return enc.encode(seg.text);
}

/** The argument span [4, end before CR LF) of a line. */
function args(b: Uint8Array): [number, number] {
  let e = b.length;
  while (e > 0 && (b[e - 1] === 0x0a || b[e - 1] === 0x0d)) e--;
  return [4, e];
}

test('PORT from lftp: address and port, and the span a rewrite replaces', (t) => {
  const b = line(LFTP_ACTIVE, 'PORT');
  const r = parsePort(b, ...args(b));
  t.deepEqual(r, { addr: parseIPv4('10.200.0.2')!, port: 226 * 256 + 205, from: 5, to: 23, delim: 0 });
  t.is(new TextDecoder().decode(b.subarray(r!.from, r!.to)), '10,200,0,2,226,205');
});

test('EPRT from tnftp (RFC 2428): IPv4 address, port, delimiter', (t) => {
  const b = line(TNFTP_EPRT, 'EPRT');
  const r = parseEprt(b, ...args(b));
  t.deepEqual(r, { addr: parseIPv4('10.200.0.2')!, port: 58833, from: 5, to: 25, delim: 0x7c });
});

test('227 from vsftpd: the six numbers from the first digit (RFC 1123 4.1.2.6)', (t) => {
  const b = line(VSFTPD_PASV, '227');
  const r = parse227(b, ...args(b));
  t.is(r!.addr, parseIPv4('10.200.0.2')!);
  t.is(r!.port, 44 * 256 + 156);
  t.is(new TextDecoder().decode(b.subarray(r!.from, r!.to)), '10,200,0,2,44,156');
  const o = line(LFTP_PASV, '227');
  t.is(parse227(o, ...args(o))!.port, 110 * 256 + 11);
});

test('229 from vsftpd (RFC 2428 3): the port and its digits', (t) => {
  const b = line(VSFTPD_EPSV, '229');
  const r = parse229(b, ...args(b));
  t.deepEqual(r, { addr: 0, port: 7937, from: 39, to: 43, delim: 0x7c });
  const o = line(LFTP_EPSV, '229');
  t.is(parse229(o, ...args(o))!.port, 40714);
});

test('malformed arguments give null, never a throw', (t) => {
  const bad = [
    'PORT 10,200,0,2,4',
    'PORT 10,200,0,256,4,1',
    'PORT 10,200,0,2,4,1,9',
    'PORT 10,200,0,2,4,1x',
    'PORT',
    'PORT ,,,,,',
    'PORT 1000,200,0,2,4,1',
    'PORT 10,200,0,2,4,0001',
  ];
  for (const s of bad) {
    const b = enc.encode(s);
    t.is(parsePort(b, 4, b.length), null, s);
  }
  for (const s of ['EPRT |2|::1|5282|', 'EPRT |1|10.200.0.2|99999|', 'EPRT |1|10.200.0.2|5282', 'EPRT 1|10.200.0.2|5282|', 'EPRT |1|10.200.0|5282|', 'EPRT']) {
    const b = enc.encode(s);
    t.is(parseEprt(b, 4, b.length), null, s);
  }
  for (const s of ['227 Entering Passive Mode', '227 (1,2,3,4,5)', '227 (1,2,3,4,5,300)']) {
    const b = enc.encode(s);
    t.is(parse227(b, 4, b.length), null, s);
  }
  for (const s of ['229 Entering Extended Passive Mode (||7937|)', '229 (|||7937)', '229 (|||70000|)', '229 (|||x|)', '229']) {
    const b = enc.encode(s);
    t.is(parse229(b, 4, b.length), null, s);
  }
});

// ---------------------------------------------------------------------------------------------
// Sequence deltas (Linux 2.0 ip_masq_app.c semantics)

test('seq deltas: Init-seq, Delta, PDelta after two rewrites; segments before use PDelta', (t) => {
  const st: SeqState = { initSeq: 0, delta: 0, pdelta: 0 };
  t.true(seqUpdate(st, false, 1000, 4));
  t.deepEqual(st, { initSeq: 1000, delta: 4, pdelta: 0 });
  t.is(fixSeq(1000, st.initSeq, st.delta, st.pdelta), 1000, 'the rewritten segment itself starts where it did');
  t.is(fixSeq(1030, st.initSeq, st.delta, st.pdelta), 1034);
  t.is(fixSeq(900, st.initSeq, st.delta, st.pdelta), 900, 'a retransmission from before keeps PDelta');
  t.true(seqUpdate(st, true, 2000, -3));
  t.deepEqual(st, { initSeq: 2000, delta: 1, pdelta: 4 });
  t.is(fixSeq(2000, st.initSeq, st.delta, st.pdelta), 2004);
  t.is(fixSeq(2100, st.initSeq, st.delta, st.pdelta), 2101);
  // A retransmission of the rewritten segment does not count twice.
  t.false(seqUpdate(st, true, 2000, -3));
  t.deepEqual(st, { initSeq: 2000, delta: 1, pdelta: 4 });
  // Acks from the receiver: 2101 acknowledges up to inside 2100; 2004 is the start of the change.
  t.is(fixAck(2101, st.initSeq, st.delta, st.pdelta), 2100);
  t.is(fixAck(2004, st.initSeq, st.delta, st.pdelta), 2000);
  t.is(fixAck(1500, st.initSeq, st.delta, st.pdelta), 1496);
});

test('seq deltas wrap at 2^32', (t) => {
  const st: SeqState = { initSeq: 0, delta: 0, pdelta: 0 };
  seqUpdate(st, false, 0xfffffff0, 6);
  t.true(after(5, 0xfffffff0), '5 is after 2^32 - 16');
  t.is(fixSeq(0xfffffffe, st.initSeq, st.delta, st.pdelta), 4);
  t.is(fixSeq(10, st.initSeq, st.delta, st.pdelta), 16);
  t.is(fixAck(16, st.initSeq, st.delta, st.pdelta), 10);
  t.is(fixAck(2, st.initSeq, st.delta, st.pdelta), 0xfffffffc);
  seqUpdate(st, true, 20, -10);
  t.deepEqual(st, { initSeq: 20, delta: -4, pdelta: 6 });
  t.is(fixSeq(0xfffffff8, st.initSeq, st.delta, st.pdelta), 0xfffffffe, 'before the second change: PDelta');
  t.is(fixSeq(30, st.initSeq, st.delta, st.pdelta), 26);
});

// ---------------------------------------------------------------------------------------------
// Registry and --alg

test('--alg: names, none, unknown and empty names refused with the known list', (t) => {
  t.deepEqual(parseAlgList('ftp'), ['ftp']);
  t.deepEqual(parseAlgList('none'), []);
  t.deepEqual(parseAlgList('ftp,ftp'), ['ftp']);
  t.true(algNames().includes('ftp'));
  t.throws(() => parseAlgList('ftp,gopher'), { message: /unknown helper "gopher"; known: .*ftp.* \(or none\)/ });
  t.throws(() => parseAlgList('ftp,'), { message: /empty helper name/ });
  t.throws(() => checkAlgNames(['none', 'ftp']), { message: /"none" cannot be combined/ });
});

// ---------------------------------------------------------------------------------------------
// Pinned endpoints

test('pins: owner writes, reader finds the owner; removal; a region never sees another owner', (t) => {
  const p = new PinTable(4);
  t.is(p.lookup(6, 0x0ac80002, 5000), -1);
  t.true(p.pin(2, 6, 0x0ac80002, 5000));
  t.true(p.pin(2, 6, 0x0ac80002, 5000), 'pinning twice is one pin');
  t.is(p.count(2), 1);
  t.true(p.pin(1, 17, 0x0ac80002, 5000));
  t.is(p.lookup(6, 0x0ac80002, 5000), 2);
  t.is(p.lookup(17, 0x0ac80002, 5000), 1);
  t.is(p.lookup(6, 0x0ac80003, 5000), -1);
  p.unpin(2, 6, 0x0ac80002, 5000);
  t.is(p.lookup(6, 0x0ac80002, 5000), -1);
  t.is(p.count(2), 0);
  // Another view over the same buffer (another thread) sees the same.
  const q = new PinTable(4, p.buffer);
  t.is(q.lookup(17, 0x0ac80002, 5000), 1);
  // Fill a region: the 1025th distinct pin is refused, not a throw.
  let ok = 0;
  for (let i = 0; i < 1100; i++) if (p.pin(3, 6, 0x0a000000 + i, 2000)) ok++;
  t.is(ok, 1024);
  t.is(p.lookup(6, 0x0a000000 + 1023, 2000), 3);
});
