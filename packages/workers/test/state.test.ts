/**
 * state.test.ts — the state file (state.ts): a table saved and restored into a fresh one
 * resumes its flows on the same external ports with their timers rebased; a truncated file,
 * any single flipped bit, another format version, a block map that lies, and a file saved by
 * a differently configured gateway are each refused with their reason, never thrown, and
 * nothing is written into the caller's buffers.
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { SessionTable, listSessions, formatIPv4 } from '@masq/core';
import { Nat } from '@masq/core/testing';
import {
  BLOCK,
  STATE_HEADER_LEN,
  checkState,
  decodeSection,
  encodeSection,
  readStateFile,
  stateFileChunks,
  writeStateFile,
  type StateLayout,
} from '../src/state.js';

const RULES = 'masquerade all from 10.200.0.0/24 to any';
const EXT = '198.51.100.100';

function ip4(s: string): number[] {
  return s.split('.').map(Number);
}

/** An IPv4/UDP packet with a correct header checksum and no UDP checksum (RFC 768 allows 0). */
function udp(src: string, sport: number, dst: string, dport: number): Uint8Array {
  const p = new Uint8Array(28 + 4);
  p.set([0x45, 0, 0, p.length, 0, 1, 0, 0, 64, 17, 0, 0, ...ip4(src), ...ip4(dst)]);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p[10] = (~sum >>> 8) & 0xff;
  p[11] = ~sum & 0xff;
  p.set([sport >>> 8, sport & 0xff, dport >>> 8, dport & 0xff, 0, 12, 0, 0, 1, 2, 3, 4], 20);
  return p;
}

function newNat(workers = 2): Nat {
  return new Nat({ externals: [EXT], rules: RULES, maxSessions: 2000, partitions: workers, seed: 7 });
}

function layoutOf(nat: Nat): StateLayout {
  const t = nat.partitions[0]!.table;
  return {
    partitions: nat.config.partitions,
    portLo: nat.config.portLo,
    portHi: nat.config.portHi,
    externals: nat.config.externals.map(formatIPv4),
    tableSizes: { ...t.memory.sizes },
    tableBytes: t.memory.buffer.byteLength,
  };
}

function expectedOf(nat: Nat): Map<string, number> {
  return new Map(nat.partitions.map((p, i) => [`table.${i}`, p.table.memory.buffer.byteLength]));
}

/** A state file's bytes for `nat`'s tables, as if saved when its clock read `clock`. */
function fileOf(nat: Nat, clock: number): Uint8Array {
  const secs = nat.partitions.map((p, i) => encodeSection(`table.${i}`, new Uint8Array(p.table.memory.buffer), clock));
  return Buffer.concat(stateFileChunks(layoutOf(nat), secs, 1_000));
}

/** Out-of-the-box flows: 40 UDP flows from two hosts at time 1000; their external ports. */
function withFlows(nat: Nat): Map<string, number> {
  const ports = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const src = `10.200.0.${2 + (i % 2)}`;
    const p = udp(src, 5000 + i, '203.0.113.9', 53);
    const out = nat.process(p, 0, p.length, 1_000);
    if (out.length !== 1) throw new Error(`flow ${i} not translated`);
    ports.set(`${src}:${5000 + i}`, (out[0]![20]! << 8) | out[0]![21]!);
  }
  return ports;
}

test('a saved table restored into a fresh one resumes every flow on its external port, timers rebased', (t) => {
  const a = newNat();
  const ports = withFlows(a);
  const bytes = fileOf(a, 1_000);
  t.true(bytes.length < a.partitions.length * a.partitions[0]!.table.memory.buffer.byteLength / 4, `block elision keeps a quiet table small: ${bytes.length} bytes`);

  const b = newNat();
  const r = checkState(bytes, 'state', layoutOf(b), expectedOf(b));
  if (!r.ok) return t.fail(r.message);
  // The restoring gateway's clock reads 501000: 500 s later.
  for (let p = 0; p < b.partitions.length; p++) {
    const tab = b.partitions[p]!.table;
    decodeSection(r.sections.get(`table.${p}`)!.encoded, new Uint8Array(tab.memory.buffer));
    t.is(tab.headerProblem(), null);
    tab.rebaseClock(501_000 - r.sections.get(`table.${p}`)!.meta.clock);
  }
  t.is(b.sessionCount, 40);
  // Each flow's UDP timer (5 min from t=1000) now runs from t=501000.
  const rows = b.partitions.flatMap((p) => listSessions(p.table, 501_000));
  t.is(rows.length, 40);
  for (const row of rows) t.is(row.expiresMs, 300_000, `${row.inside}:${row.insidePort} has its whole idle time left`);
  t.is(b.expire(501_000 + 299_000), 0, 'nothing expires before its rebased deadline');
  // Outbound: same external port; inbound replies reach the inside host.
  for (const [k, port] of ports) {
    const [src, sp] = k.split(':');
    const o = udp(src!, Number(sp), '203.0.113.9', 53);
    const out = b.process(o, 0, o.length, 501_500);
    t.is(out.length, 1);
    t.is((out[0]![20]! << 8) | out[0]![21]!, port, `${k} kept external port ${port}`);
    const reply = udp('203.0.113.9', 53, EXT, port);
    const back = b.process(reply, 0, reply.length, 501_600);
    t.is(back.length, 1, `reply to ${port} translated back`);
    t.deepEqual([...back[0]!.subarray(16, 20)], ip4(src!));
  }
  t.is(b.sessionCount, 40, 'no new sessions: the restored ones were used');
  t.is(b.expire(501_600 + 299_000), 0);
  t.is(b.expire(501_600 + 300_001), 40, 'and they expire on their timer');
});

test('block elision round-trips any bytes, including a partial last block', (t) => {
  for (const len of [0, 1, BLOCK - 1, BLOCK, BLOCK + 3, 5 * BLOCK + 17]) {
    const src = new Uint8Array(len);
    for (let i = 0; i < len; i += 97) src[i] = (i * 31) & 0xff || 1;
    if (len > BLOCK) src.fill(0, 0, BLOCK); // one all-zero block elided
    const enc = encodeSection('x', src, 0);
    const dst = new Uint8Array(len).fill(0xa5);
    decodeSection(enc.encoded, dst);
    t.deepEqual(dst, src, `length ${len}`);
  }
});

test('a truncated state file is refused with its length, never thrown', (t) => {
  const a = newNat();
  withFlows(a);
  const bytes = fileOf(a, 1_000);
  for (const n of [0, 7, STATE_HEADER_LEN - 1, STATE_HEADER_LEN, STATE_HEADER_LEN + 10, bytes.length >> 1, bytes.length - 1]) {
    const r = checkState(bytes.subarray(0, n), 'masq.state', layoutOf(a), expectedOf(a));
    t.false(r.ok, `truncated at ${n}`);
    if (!r.ok) {
      t.is(r.kind, 'truncated', `kind at ${n}`);
      t.regex(r.message, /masq\.state is truncated/);
    }
  }
});

test('every single flipped bit in a state file is refused (checksums), never thrown', (t) => {
  const a = newNat();
  withFlows(a);
  const bytes = fileOf(a, 1_000);
  // Every bit of the header and the description, and a seeded sample of the body.
  const positions: number[] = [];
  const metaEnd = STATE_HEADER_LEN + new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
  for (let i = 0; i < metaEnd * 8; i++) positions.push(i);
  let x = 12345;
  for (let k = 0; k < 2000; k++) {
    x = (x * 1103515245 + 12345) >>> 0;
    positions.push(metaEnd * 8 + (x % ((bytes.length - metaEnd) * 8)));
  }
  const kinds = new Map<string, number>();
  for (const bit of positions) {
    const bad = Uint8Array.from(bytes);
    bad[bit >>> 3]! ^= 1 << (bit & 7);
    const r = checkState(bad, 'masq.state', layoutOf(a), expectedOf(a));
    if (r.ok) {
      t.fail(`bit ${bit} flipped and the file was accepted`);
      return;
    }
    kinds.set(r.kind, (kinds.get(r.kind) ?? 0) + 1);
  }
  t.log(`${positions.length} single-bit flips: ${JSON.stringify(Object.fromEntries(kinds))}`);
  t.deepEqual([...kinds.keys()].sort(), ['corrupt'], 'each is damage, caught by a checksum or the signature');
});

test('another format version is refused by name', (t) => {
  const a = newNat();
  const bytes = Uint8Array.from(fileOf(a, 0));
  const v = new DataView(bytes.buffer);
  v.setUint32(8, 3, true);
  v.setUint32(28, zlib.crc32(bytes.subarray(0, 28)) >>> 0, true);
  const r = checkState(bytes, 'masq.state', layoutOf(a), expectedOf(a));
  t.false(r.ok);
  if (!r.ok) {
    t.is(r.kind, 'version');
    t.is(r.message, 'masq.state has format version 3; this masq reads version 2');
  }
});

test('a block map that disagrees with its section length is refused even with a good checksum', (t) => {
  const a = newNat(1);
  const sec = encodeSection('table.0', new Uint8Array(a.partitions[0]!.table.memory.buffer), 0);
  sec.encoded[0]! ^= 1; // block 0 claimed or disclaimed: the lengths no longer add up
  const bytes = Buffer.concat(stateFileChunks(layoutOf(a), [sec]));
  const r = checkState(bytes, 'masq.state', layoutOf(a), expectedOf(a));
  t.false(r.ok);
  if (!r.ok) t.regex(r.message, /table\.0's block map does not match/);
});

test('a file saved by a differently configured gateway is refused with the difference', (t) => {
  const a = newNat(2);
  const bytes = fileOf(a, 0);
  const cases: Array<[Nat, RegExp]> = [
    [newNat(1), /saved by a gateway with 2 worker\(s\) and this one has 1 .*--workers 2/],
    [new Nat({ externals: ['198.51.100.101'], rules: RULES, maxSessions: 2000, partitions: 2 }), /external address\(es\) 198\.51\.100\.100 and this gateway has 198\.51\.100\.101/],
    [new Nat({ externals: [EXT], rules: RULES, maxSessions: 2000, partitions: 2, portLo: 20000, portHi: 30000 }), /--ports 1024-65535 and this gateway has 20000-30000/],
    [new Nat({ externals: [EXT], rules: RULES, maxSessions: 4000, partitions: 2 }), /sized for capacity 1001 and this gateway's are 2001 \(--max-sessions\)/],
  ];
  for (const [b, re] of cases) {
    const r = checkState(bytes, 'masq.state', layoutOf(b), expectedOf(b));
    t.false(r.ok);
    if (!r.ok) {
      t.is(r.kind, 'incompatible');
      t.regex(r.message, re);
    }
  }
});

test('writeStateFile is atomic and private; readStateFile reports a missing file as missing', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'masq-state-'));
  try {
    const file = path.join(dir, 'masq.state');
    const a = newNat(1);
    withFlows(a);
    t.is(readStateFile(file, layoutOf(a), expectedOf(a)).ok, false);
    const missing = readStateFile(file, layoutOf(a), expectedOf(a));
    if (!missing.ok) t.is(missing.kind, 'missing');
    const secs = [encodeSection('table.0', new Uint8Array(a.partitions[0]!.table.memory.buffer), 5)];
    const size = await writeStateFile(file, layoutOf(a), secs);
    t.is(fs.statSync(file).size, size);
    t.is(fs.statSync(file).mode & 0o777, 0o600);
    t.false(fs.existsSync(`${file}.tmp`), 'the temporary file was renamed');
    const r = readStateFile(file, layoutOf(a), expectedOf(a));
    t.true(r.ok);
    if (r.ok) {
      const tab = new SessionTable(a.partitions[0]!.table.memory.sizes, a.plan);
      decodeSection(r.sections.get('table.0')!.encoded, new Uint8Array(tab.memory.buffer));
      t.is(tab.sessionCount, 40);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a table whose header is impossible is reported, not trusted', (t) => {
  const a = newNat(1);
  const tab = a.partitions[0]!.table;
  t.is(tab.headerProblem(), null);
  new Int32Array(tab.memory.buffer, 0, 16)[0] = tab.capacity + 5; // session high-water mark
  t.regex(tab.headerProblem() ?? '', /session high-water mark \d+ outside 1-\d+/);
});
