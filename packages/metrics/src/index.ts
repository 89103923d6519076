/**
 * @masq/metrics — the metrics actor: a prom-client registry that reads the gateway's shared
 * statistics blocks at scrape time, and the HTTP endpoint that serves it. Not imported by the
 * packet path. The CLI composes the actor into the gateway by its module URL
 * (`@masq/metrics/actor`) and parses the listen address with `@masq/metrics/server`; the
 * Worker entry is `@masq/metrics/worker`. This entry exports those two pieces.
 */
export { runMetricsActor, type MetricsActorInit } from './actor.js';
export { parseListen, type ListenAddress } from './server.js';
