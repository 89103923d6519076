/**
 * @masq/workers — the gateway's actors and their shared-memory protocol.
 */
export { Gateway, type GatewayOptions, type StateStatus } from './supervisor.js';
export * from './state.js';
export { DEFAULT_SCHED, SchedSyntaxError, formatSched, parseSched, type SchedPolicies, type SchedPolicy } from './sched.js';
export * from './layout.js';
export { Ring, ringBuffer } from './ring.js';
export type { PartitionControl } from './partition-actor.js';
export { openTun, type OffloadLevel, type OpenedTun, type OpenTunOptions } from './tun-open.js';
