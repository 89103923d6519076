/**
 * fuzz.test.ts — the fuzz target (fuzz/fuzz.ts) for a bounded count in the test suite: at
 * least 1,000,000 packets (MASQ_FUZZ_PACKETS to change), in a hundred parts of one epoch
 * (10,000 packets, one configuration) each, so that no single test runs for long, from a printed seed
 * (MASQ_FUZZ_SEED to replay; each part runs the epochs that follow the previous part's, so
 * one seed covers the whole count). Any finding fails the test with the line that replays it
 * (`pnpm fuzz --seed S --epoch E --epoch-packets 10000`).
 */
import test from 'ava';
import { runFuzz } from '../fuzz/fuzz.js';

const PACKETS = Number(process.env.MASQ_FUZZ_PACKETS ?? 1_000_000);
const SEED = process.env.MASQ_FUZZ_SEED ? Number(process.env.MASQ_FUZZ_SEED) : 1 + Math.floor(Math.random() * 0xfffffffe);
const PARTS = 100;
const EPOCH = 10_000;
const PER_PART = Math.ceil(PACKETS / PARTS / EPOCH) * EPOCH;

for (let part = 0; part < PARTS; part++) {
  // Serial, and each part first yields to the event loop: the worker reports each part's
  // result as it ends (back-to-back synchronous parts would report nothing until the last).
  test.serial(`fuzz: ${PER_PART} packets (part ${part + 1}/${PARTS}), no finding`, async (t) => {
    t.timeout(600_000);
    await new Promise((resolve) => setImmediate(resolve));
    const firstEpoch = (part * PER_PART) / EPOCH;
    const r = runFuzz({ seed: SEED, packets: PER_PART, firstEpoch, epochPackets: EPOCH });
    t.log(`seed ${SEED} (replay: MASQ_FUZZ_SEED=${SEED}, or pnpm fuzz --seed=${SEED} --epoch=${firstEpoch} --epoch-packets=${EPOCH} --packets=${PER_PART}); ${r.packets} packets in ${(r.ms / 1000).toFixed(1)} s, ${r.emitted} emitted, ${r.epochs} epochs, ${r.tableChecks} table checks`);
    const f = r.findings[0];
    t.is(r.findingCount, 0, f ? `${f.kind}\n  replay: ${f.replay}\n  config: ${f.config}\n  ${f.detail}` : '');
    t.is(r.packets, PER_PART);
    t.true(r.emitted > r.packets / 10, 'a fair share of the packets is translated and emitted');
    t.true(r.tableChecks >= PER_PART / 4096, 'the whole table was checked every few thousand packets');
  });
}
