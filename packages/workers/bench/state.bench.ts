/**
 * state.bench.ts — the cost of the state file (state.ts) by table fill: a default-sized table
 * (1,000,000 sessions, one partition) holding 0, 10 000, 100 000 and 1 000 000 UDP sessions is
 * encoded (the pass a worker's packet path waits for during a periodic save), written
 * atomically (temp file, fsync, rename), read back, checked and decoded. Figures, not a test.
 *
 *     node packages/workers/dist/bench/state.bench.js [--sessions 0,10000,100000,1000000] [--dir /tmp]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatIPv4 } from '@masq/core';
import { Nat } from '@masq/core/testing';
import { benchArgs, endOnClosedOutput } from '@masq/core/bench/cli';
import { decodeSection, encodeSection, readStateFile, writeStateFile, type StateLayout } from '../src/state.js';

const { values } = parseArgs({ args: benchArgs(), options: { sessions: { type: 'string' }, dir: { type: 'string' } } });
const fills = (values.sessions ?? '0,10000,100000,1000000').split(',').map(Number);
const dir = fs.mkdtempSync(path.join(values.dir ?? os.tmpdir(), 'masq-state-bench-'));

function udp(src: number, sport: number, dport: number): Uint8Array {
  const p = new Uint8Array(28);
  p.set([0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, src >>> 24, (src >>> 16) & 255, (src >>> 8) & 255, src & 255, 203, 0, 113, 9]);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p[10] = (~sum >>> 8) & 0xff;
  p[11] = ~sum & 0xff;
  p.set([sport >>> 8, sport & 255, dport >>> 8, dport & 255, 0, 8, 0, 0], 20);
  return p;
}

const ms = (t0: number): string => (performance.now() - t0).toFixed(0).padStart(6);
endOnClosedOutput();
console.log('sessions   table MB   file MB   encode ms   write+fsync ms   read+check ms   decode ms');
try {
  for (const n of fills) {
    // 10 remote ports per inside endpoint (one mapping, ten sessions), 1000 endpoints per
    // inside host: 100 hosts and 100 000 mappings for 1M sessions.
    const nat = new Nat({ externals: ['198.51.100.100', '198.51.100.101', '198.51.100.102', '198.51.100.103'], rules: 'masquerade all from 10.0.0.0/8 to any', maxSessions: 1_000_000, seed: 1 });
    for (let i = 0; i < n; i++) {
      const m = Math.floor(i / 10);
      const p = udp((10 << 24) + Math.floor(m / 1000) + 1, 1024 + (m % 1000), 53 + (i % 10));
      nat.process(p, 0, p.length, 1);
    }
    if (nat.sessionCount !== n) throw new Error(`filled ${nat.sessionCount} of ${n}`);
    const tab = nat.partitions[0]!.table;
    const buf = new Uint8Array(tab.memory.buffer);
    const layout: StateLayout = { partitions: 1, portLo: nat.config.portLo, portHi: nat.config.portHi, externals: nat.config.externals.map(formatIPv4), tableSizes: { ...tab.memory.sizes }, tableBytes: buf.length };
    let t0 = performance.now();
    const sec = encodeSection('table.0', buf, 1);
    const enc = ms(t0);
    const file = path.join(dir, `s${n}.state`);
    t0 = performance.now();
    const size = await writeStateFile(file, layout, [sec]);
    const wr = ms(t0);
    t0 = performance.now();
    const r = readStateFile(file, layout, new Map([['table.0', buf.length]]));
    const rd = ms(t0);
    if (!r.ok) throw new Error(r.message);
    const target = new Uint8Array(new SharedArrayBuffer(buf.length));
    t0 = performance.now();
    decodeSection(r.sections.get('table.0')!.encoded, target);
    const dec = ms(t0);
    console.log(`${String(n).padStart(8)}   ${(buf.length / 1e6).toFixed(0).padStart(8)}   ${(size / 1e6).toFixed(1).padStart(7)}   ${enc.padStart(9)}   ${wr.padStart(14)}   ${rd.padStart(13)}   ${dec.padStart(9)}`);
    fs.rmSync(file);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
