/**
 * metrics.ts — wires the gateway's shared-memory counters to the metrics endpoint.
 * Placeholder until the metrics actor is wired: serves nothing.
 */
import type { Gateway } from '@masq/workers';
export async function startGatewayMetrics(gw: Gateway, listen: string, log: (l: string) => void): Promise<() => Promise<void>> {
  void gw;
  void listen;
  log('metrics endpoint not wired yet');
  return async () => {};
}
