/**
 * main.ts — `pnpm fuzz` (packages/core): runs the fuzz target (fuzz.ts) from the command line
 * and prints what it found.
 *
 *   pnpm fuzz [--packets=N] [--seed=S] [--epoch=E] [--epoch-packets=N] [--check-every=N]
 *
 * Defaults: 1,000,000 packets, a random seed (printed), epochs of 20,000 packets, the whole
 * table checked every 4,096. A finding prints the line that replays it (its seed and epoch).
 * Exit status: 0 no finding, 1 findings, 2 bad arguments.
 */
import { randomInt } from 'node:crypto';
import { runFuzz } from './fuzz.js';

const USAGE = 'usage: pnpm fuzz [--packets=N] [--seed=S] [--epoch=E] [--epoch-packets=N] [--check-every=N]';

function parseArgs(argv: string[]): Record<string, number> {
  const known = new Set(['packets', 'seed', 'epoch', 'epoch-packets', 'check-every']);
  const out: Record<string, number> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') continue;
    if (a === '-h' || a === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m || !known.has(m[1]!)) {
      console.error(`fuzz: unknown argument "${a}"\n${USAGE}`);
      process.exit(2);
    }
    const v = m[2] ?? argv[++i];
    const n = Number(String(v).replace(/_/g, ''));
    if (v === undefined || !Number.isInteger(n) || n < 0 || n > 0xffffffff) {
      console.error(`fuzz: --${m[1]} needs a whole number from 0 to 4294967295, found "${v ?? ''}"\n${USAGE}`);
      process.exit(2);
    }
    out[m[1]!] = n;
  }
  return out;
}

const a = parseArgs(process.argv.slice(2));
const seed = a.seed ?? randomInt(1, 0xffffffff);
const packets = a.packets ?? 1_000_000;
console.log(`fuzz: seed ${seed}, ${packets} packets${a.epoch !== undefined ? ` from epoch ${a.epoch}` : ''}`);
const res = runFuzz({
  seed,
  packets,
  firstEpoch: a.epoch,
  epochPackets: a['epoch-packets'],
  checkEvery: a['check-every'],
  log: (l) => console.log(`fuzz: ${l}`),
});
console.log(`fuzz: ${res.packets} packets in ${(res.ms / 1000).toFixed(1)} s (${Math.round((res.packets / res.ms) * 1000)}/s), ${res.emitted} emitted, ${res.epochs} epochs, ${res.tableChecks} table checks, seed ${res.seed}`);
console.log(`fuzz: drops ${Object.entries(res.drops).map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(`fuzz: ${res.findingCount} findings${res.findingCount > res.findings.length ? ` (${res.findings.length} distinct shown)` : ''}`);
for (const f of res.findings) {
  console.log(`\n--- ${f.kind.split('\n')[0]}\n  epoch ${f.epoch}, packet ${f.packet}; replay: ${f.replay}\n  config: ${f.config}\n  ${f.detail}`);
}
process.exit(res.findingCount > 0 ? 1 : 0);
