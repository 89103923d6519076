/**
 * @masq/core — the translation core: packet views, rules, the masquerade table and
 * translate(). No I/O, no clock, no threads: the gateway (packages/workers) supplies those.
 */
export * from './addr.js';
export * from './arena.js';
export * from './config.js';
export * from './counters.js';
export * from './dispatch.js';
export * from './drop.js';
export * from './expiry.js';
export * from './hash.js';
export * from './hosts.js';
export * from './listing.js';
export * from './nat.js';
export * from './ports.js';
export * from './rules.js';
export * from './table.js';
export * from './tcpstate.js';
export * from './translate.js';
export * from './verdict.js';
export { formatPacket } from './wire/print.js';
export * as wire from './wire/index.js';
export const VERSION = '0.1.0';
export * from './alg/index.js';
