/**
 * alg.property.test.ts — fast-check property of the FTP helper through the whole translator:
 * for random control streams (commands and replies of random text, valid PORT and EPRT
 * commands with random data ports, forged, low-port and malformed ones, commands split over
 * segments) with random initial sequence numbers (often just below 2^32) and external
 * addresses of other lengths than the inside one (so rewrites grow and shrink):
 *  - every emitted packet passes the independent checksum oracle (natOut/natIn check it);
 *  - each side receives, in every segment, exactly the sequence number it expects next and an
 *    acknowledgement of exactly what it sent (helpers/tcp-replay.ts);
 *  - the outside stream, with every rewritten PORT/EPRT undone (external endpoint → inside
 *    endpoint, through the table), equals the inside stream byte for byte; the inside host
 *    receives the outside stream unchanged.
 */
import test from 'ava';
import fc from 'fast-check';
import { Nat } from '../src/nat.js';
import { listExpectations } from '../src/alg/engine.js';
import { listSessions } from '../src/listing.js';
import { TcpReplay } from './helpers/tcp-replay.js';

const A = '10.200.0.2';
const SERVER = '198.51.100.10';
const NUM_RUNS = Number(process.env.MASQ_PROPERTY_RUNS ?? 150);

type Piece = { from: 'inside' | 'outside'; text: string; split: number };

const word = fc.stringMatching(/^[A-Z]{3,4}$/);
const junk = fc.stringMatching(/^[ -~]{0,40}$/);
const arbInside: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(word, junk).map(([w, j]) => `${w} ${j}\r\n`) },
  { weight: 3, arbitrary: fc.integer({ min: 1024, max: 65535 }).map((p) => `PORT 10,200,0,2,${p >> 8},${p & 255}\r\n`) },
  { weight: 2, arbitrary: fc.integer({ min: 1024, max: 65535 }).map((p) => `EPRT |1|10.200.0.2|${p}|\r\n`) },
  { weight: 1, arbitrary: fc.integer({ min: 1024, max: 65535 }).map((p) => `PORT 10,200,0,9,${p >> 8},${p & 255}\r\n`) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 1023 }).map((p) => `PORT 10,200,0,2,${p >> 8},${p & 255}\r\n`) },
  { weight: 1, arbitrary: junk.map((j) => `PORT ${j}\r\n`) },
);
const arbOutside: fc.Arbitrary<string> = fc.tuple(fc.integer({ min: 100, max: 599 }), junk).map(([c, j]) => `${c} ${j}\r\n`);
const arbPieces: fc.Arbitrary<Piece[]> = fc.array(
  fc.oneof(
    fc.record({ from: fc.constant('inside' as const), text: arbInside, split: fc.constantFrom(0, 0, 0, 0, 3, 9) }),
    fc.record({ from: fc.constant('outside' as const), text: arbOutside, split: fc.constant(0) }),
  ),
  { minLength: 1, maxLength: 24 },
);
const arbIsn = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0xffffff00, max: 0xffffffff }));

/** Undo the rewrites in the outside stream: the external endpoint back to the inside one. */
function undo(outside: string, ext: string, byExt: Map<number, number>): string {
  const extCommas = ext.replaceAll('.', ',');
  return outside
    .replace(/PORT ([\d,]+),(\d+),(\d+)\r\n/g, (m, a: string, p1: string, p2: string) => {
      const e = Number(p1) * 256 + Number(p2);
      const p = byExt.get(e);
      return a === extCommas && p !== undefined ? `PORT 10,200,0,2,${p >> 8},${p & 255}\r\n` : m;
    })
    .replace(/EPRT \|1\|([\d.]+)\|(\d+)\|\r\n/g, (m, a: string, ps: string) => {
      const p = byExt.get(Number(ps));
      return a === ext && p !== undefined ? `EPRT |1|10.200.0.2|${p}|\r\n` : m;
    });
}

test('random control streams: oracle-valid packets, exact seq/ack both ways, streams equal after undoing the rewrites', (t) => {
  fc.assert(
    fc.property(arbPieces, arbIsn, arbIsn, fc.constantFrom('198.51.100.100', '9.9.9.9', '203.0.113.254'), (pieces, isnIn, isnOut, ext) => {
      const nat = new Nat({ externals: [ext], rules: 'masquerade all from 10.200.0.0/24 to any', maxSessions: 256, seed: 11 });
      const r = new TcpReplay(nat, { inside: A, insidePort: 40000, outside: SERVER, outsidePort: 21, opener: 'inside', insideIsn: isnIn, outsideIsn: isnOut }).open();
      let inside = '';
      let outside = '';
      for (const p of pieces) {
        if (p.from === 'inside') inside += p.text;
        else outside += p.text;
        if (p.split > 0 && p.split < p.text.length) {
          r.send(p.from, p.text.slice(0, p.split));
          r.send(p.from, p.text.slice(p.split));
        } else r.send(p.from, p.text);
      }
      const byExt = new Map<number, number>();
      const table = nat.partitions[0]!.table;
      for (const x of listExpectations(table, 0)) byExt.set(x.externalPort, x.insidePort);
      for (const s of listSessions(table, 0)) byExt.set(s.externalPort, s.insidePort);
      if (undo(r.text('toOutside'), ext, byExt) !== inside) return false;
      return r.text('toInside') === outside;
    }),
    { numRuns: NUM_RUNS * 2 },
  );
  t.pass();
});
