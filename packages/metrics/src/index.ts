/**
 * @masq/metrics — the metrics actor: a prom-client registry that reads the gateway's shared
 * statistics blocks at scrape time, and the HTTP endpoint that serves it. Not imported by the
 * packet path; the Worker entry is `@masq/metrics/worker`.
 */
export * from './actor.js';
export * from './registry.js';
export * from './server.js';
export * from './source.js';
export * from './statsLayout.js';
