/**
 * alg-select.property.test.ts — the engine's one-lookup helper choice (alg/select.ts) against
 * the rule it replaces, written out here as it was: for each enabled helper in registry order,
 * its configured server ports (its own protocol only) or else its `match`; the first that
 * wants the flow. fast-check draws the enabled helpers, configured ports (duplicates, other
 * helpers' ports, the edges 0 and 65535) and the flows (ICMP, TCP, UDP and others; the
 * helpers' ports, those ±1, random ports).
 */
import test from 'ava';
import fc from 'fast-check';
import { Nat } from '../src/nat.js';
import { HELPERS, algId, algNames } from '../src/alg/registry.js';

/** The choice as select() made it before the lookup table: helper by helper. */
function reference(enabled: readonly string[], ports: Readonly<Record<string, readonly number[]>>, proto: number, port: number): number {
  for (let i = 0; i < HELPERS.length; i++) {
    const h = HELPERS[i]!;
    if (!enabled.includes(h.name)) continue;
    const own = ports[h.name];
    if (own === undefined ? h.match(proto, port) : proto === h.proto && own.includes(port)) return i + 1;
  }
  return 0;
}

const names = algNames();
const special = [0, 1, 65535, ...HELPERS.flatMap((h) => h.ports.flatMap((p) => [p - 1, p, p + 1]))];
const arbPort = fc.oneof(fc.constantFrom(...special), fc.integer({ min: 0, max: 65535 }));
const arbConfig = fc.record({
  enabled: fc.subarray(names),
  ports: fc.dictionary(fc.constantFrom(...names), fc.array(arbPort, { maxLength: 6 }), { maxKeys: names.length }),
});
const arbFlow = fc.record({ proto: fc.constantFrom(1, 6, 17, 6, 17, 132, 47), port: arbPort });

test('the helper a new flow gets from the lookup is the one the helper-by-helper rule chose, for any configuration and flow', (t) => {
  const nat = new Nat({ externals: ['198.51.100.100'], rules: 'masquerade all from 10.0.0.0/8 to any', seed: 1 });
  const part = nat.partitions[0]!;
  fc.assert(
    fc.property(arbConfig, fc.array(arbFlow, { minLength: 1, maxLength: 40 }), (cfg, flows) => {
      part.setAlg(cfg.enabled, cfg.ports);
      for (const f of flows) {
        const got = part.alg.select(f.proto, f.port);
        const want = reference(cfg.enabled, cfg.ports, f.proto, f.port);
        if (got !== want) throw new Error(`${JSON.stringify(cfg)}: proto ${f.proto} port ${f.port}: lookup ${got}, rule ${want}`);
        // And every configured port of an enabled helper, which a random flow rarely hits.
        for (const n of cfg.enabled) for (const p of cfg.ports[n] ?? []) {
          const h = HELPERS[algId(n) - 1]!;
          if (part.alg.select(h.proto, p) !== reference(cfg.enabled, cfg.ports, h.proto, p)) throw new Error(`${JSON.stringify(cfg)}: ${n}'s port ${p}`);
        }
      }
      return true;
    }),
    { numRuns: 400 },
  );
  t.pass();
});

test('the defaults: FTP on TCP 21 only; every helper on its own ports when all are on; none with none', (t) => {
  const nat = new Nat({ externals: ['198.51.100.100'], rules: 'masquerade all from 10.0.0.0/8 to any', seed: 1 });
  const part = nat.partitions[0]!;
  t.is(part.alg.select(6, 21), algId('ftp'));
  t.is(part.alg.select(17, 21), 0);
  t.is(part.alg.select(6, 22), 0);
  t.is(part.alg.select(6, 554), 0, 'rtsp is not on by default');
  part.setAlg(names);
  for (const h of HELPERS) for (const p of h.ports) t.is(part.alg.select(h.proto, p), algId(h.name), `${h.name} ${p}`);
  part.setAlg(names, { ftp: [2121] });
  t.is(part.alg.select(6, 21), 0, "configured ports replace the helper's own");
  t.is(part.alg.select(6, 2121), algId('ftp'));
  part.setAlg([]);
  for (const h of HELPERS) for (const p of h.ports) t.is(part.alg.select(h.proto, p), 0);
});
