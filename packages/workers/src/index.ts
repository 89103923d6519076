/**
 * @masq/workers — the gateway's actors and their shared-memory protocol. This entry exports
 * what the CLI composes a gateway from; the shared-memory layout is `@masq/workers/layout`
 * (the metrics actor reads the statistics blocks by it).
 */
export { Gateway, natConfigOf, type GatewayOptions } from './supervisor.js';
export { DEFAULT_SCHED, SchedSyntaxError, formatSched, parseSched, type SchedPolicies, type SchedPolicy } from './sched.js';
export { openTun, type OffloadLevel, type OpenedTun, type OpenTunOptions } from './tun-open.js';
