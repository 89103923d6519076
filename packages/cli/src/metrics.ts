/**
 * metrics.ts — `masq run --metrics HOST:PORT`: start the gateway's metrics actor and report
 * where it listens: the CLI composes the metrics actor (@masq/metrics) into the gateway.
 * Binding to all interfaces is refused unless the address says so explicitly (the metrics
 * server's rule), and then a warning is logged.
 */
import type { Gateway } from '@masq/workers';
import { parseListen } from '@masq/metrics/server';

/** The metrics actor the gateway runs in its pool (composed here: workers does not know it). */
const METRICS_ACTOR = import.meta.resolve('@masq/metrics/actor');

export async function startGatewayMetrics(gw: Gateway, listen: string, log: (l: string) => void): Promise<() => Promise<void>> {
  // Naming a wildcard address on the command line is the explicit request the server wants.
  const everywhere = /^(0\.0\.0\.0|\[::\]|::)(:|$)/.test(listen);
  const a = await gw.startMetrics(METRICS_ACTOR, parseListen(listen), everywhere);
  log(`metrics on http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/metrics`);
  if (everywhere) log(`warning: metrics served on every interface (${listen}): whoever reaches this host can read the inside hosts' addresses; prefer the management interface's address`);
  return async () => {};
}
