/**
 * testing.ts — `@masq/core/testing`: what tests and benchmarks of the other packages use and
 * the gateway does not. The one-thread harness (nat.ts: a Dispatcher and N Partitions called
 * directly), the default timers a test compares against, the table's byte size for a docs
 * check, and the partition a forward's inside endpoint hashes to.
 *
 * Contract: nothing under packages/<name>/src imports this entry (the dependency test in
 * test/structure checks it); core's own tests import the modules directly.
 */
export { Nat, type NatOptions } from './nat.js';
export { DEFAULT_TIMEOUTS } from './config.js';
export { tableBytes } from './table.js';
export { insidePartition } from './hash.js';
