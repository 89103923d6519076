/**
 * sizing.ts — how big one partition's table is for a configuration: session slots from
 * `maxSessions` split over the partitions, mapping slots for the sessions plus the static
 * mappings the port forwards claim. The gateway (packages/workers) and the one-thread harness
 * (nat.ts) size their tables with these, so both hold the same.
 *
 * Contract: pure functions of the configuration and the rules; no allocation of the table
 * itself (table.ts `tableBytes` says what a size costs).
 */
import type { NatConfig } from './config.js';
import type { Rule } from './rules.js';
import type { TableSizes } from './table.js';

/** External ports the forwards of a rule set claim (each is a static mapping). */
export function forwardPortCount(rules: readonly Rule[]): number {
  let n = 0;
  for (const r of rules) if (r.kind === 'forward') n += r.extPorts.hi - r.extPorts.lo + 1;
  return n;
}

/**
 * Table sizes for one partition of a gateway with `cfg`. Mapping slots: one per session plus
 * the static mappings of the forwards (`staticPorts`, with room for as many again added by a
 * reload), at least 1024 spare.
 */
export function partitionSizes(cfg: NatConfig, staticPorts = 0): TableSizes {
  const cap = Math.ceil(cfg.maxSessions / cfg.partitions) + 1;
  return {
    capacity: cap,
    mapCapacity: cap + Math.max(1024, 2 * staticPorts),
    fragSlots: 1024,
    externals: cfg.externals.length,
  };
}
