/**
 * run.ts — `masq run`: parse the gateway flags into rules and settings, start the Gateway,
 * the control socket and (optionally) the metrics endpoint, and shut down cleanly on
 * SIGINT/SIGTERM (stop reading, drain, release the TUN). Exit codes: 0 clean stop, 2 usage or
 * configuration error, 3 TUN/system error.
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseDuration, parsePortRangeText, parseTimeouts, RuleSyntaxError, type Filtering, type PresetName, type PortModeName } from '@masq/core';
import { Gateway, type GatewayOptions } from '@masq/workers';
import { TunError } from '@masq/tun';
import { startControlServer, DEFAULT_CONTROL_PATH } from './control.js';

export class UsageError extends Error {}

export const RUN_OPTIONS = {
  tun: { type: 'string' },
  address: { type: 'string', multiple: true },
  masquerade: { type: 'string', multiple: true },
  accept: { type: 'string', multiple: true },
  forward: { type: 'string', multiple: true },
  rules: { type: 'string' },
  workers: { type: 'string' },
  ports: { type: 'string' },
  'port-mode': { type: 'string' },
  filtering: { type: 'string' },
  timeouts: { type: 'string' },
  preset: { type: 'string' },
  'max-sessions': { type: 'string' },
  'host-limit': { type: 'string' },
  'icmp-on-exhaustion': { type: 'boolean' },
  'no-hop-compensation': { type: 'boolean' },
  mtu: { type: 'string' },
  metrics: { type: 'string' },
  control: { type: 'string' },
  offload: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

function int(name: string, v: string | undefined, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new UsageError(`--${name}: "${v}" must be a whole number from ${lo} to ${hi}`);
  return Number(v);
}

export interface RunSettings {
  gateway: GatewayOptions;
  control: string;
  metrics: string | null;
}

/** Turn `masq run` flags into settings (pure: no I/O), with precise errors. */
export function runSettings(argv: string[]): RunSettings {
  const { values } = parseArgs({ args: argv, options: RUN_OPTIONS, allowPositionals: false, strict: true });
  if (!values.tun) throw new UsageError('--tun NAME is required (the TUN device to attach to or create, e.g. --tun masq0)');
  if (!values.address?.length) throw new UsageError('--address IP is required (an external address routed into the TUN, not assigned to an interface)');
  const lines: string[] = [];
  for (const a of values.accept ?? []) lines.push(`accept ${a}`);
  for (const m of values.masquerade ?? []) lines.push(`masquerade ${m}`);
  for (const f of values.forward ?? []) lines.push(`forward ${f}`);
  if (values.rules) lines.push(values.rules);
  if (lines.length === 0) throw new UsageError('no rules: give at least --masquerade "all from 10.0.0.0/24 to 0.0.0.0/0"');
  const filtering = values.filtering as Filtering | undefined;
  if (filtering && !['endpoint', 'address', 'address-port'].includes(filtering)) throw new UsageError(`--filtering: "${filtering}" is not one of endpoint, address, address-port`);
  const preset = values.preset as PresetName | undefined;
  if (preset && preset !== 'classic' && preset !== 'default') throw new UsageError(`--preset: "${preset}" is not one of default, classic`);
  const portMode = values['port-mode'] as PortModeName | undefined;
  if (portMode && !['random', 'preserve', 'sequential'].includes(portMode)) throw new UsageError(`--port-mode: "${portMode}" is not one of random, preserve, sequential`);
  const ports = values.ports ? parsePortRangeText(values.ports) : undefined;
  const gateway: GatewayOptions = {
    tun: values.tun,
    externals: values.address,
    rulesText: lines.join('\n'),
    workers: int('workers', values.workers, 1, 64),
    preset,
    filtering,
    portMode,
    portLo: ports?.lo,
    portHi: ports?.hi,
    timeouts: values.timeouts ? parseTimeouts(values.timeouts) : undefined,
    maxSessions: int('max-sessions', values['max-sessions'], 1, 64_000_000),
    hostSessionLimit: int('host-limit', values['host-limit'], 0, 64_000_000),
    icmpOnExhaustion: values['icmp-on-exhaustion'] ?? undefined,
    hopCompensation: values['no-hop-compensation'] ? false : undefined,
    mtu: int('mtu', values.mtu, 576, 9000),
  };
  if (values.offload) throw new UsageError('--offload: TUN offloads (IFF_VNET_HDR, TSO) are not switched on in this version; run without --offload');
  return { gateway, control: values.control ?? DEFAULT_CONTROL_PATH, metrics: values.metrics ?? null };
}

export async function cmdRun(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let settings: RunSettings;
  try {
    settings = runSettings(argv);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof RuleSyntaxError || (e instanceof TypeError && 'code' in e)) {
      err(`masq run: ${e.message}\n(see masq run --help)`);
      return 2;
    }
    throw e;
  }
  const quiet = argv.includes('--quiet') || argv.includes('-q');
  const log = (l: string): void => {
    if (!quiet) err(`masq: ${l}`);
  };
  let gw: Gateway;
  try {
    gw = await Gateway.start({ ...settings.gateway, log });
  } catch (e) {
    if (e instanceof ConfigError || e instanceof RuleSyntaxError) {
      err(`masq run: ${e.message}`);
      return 2;
    }
    if (e instanceof TunError) {
      err(`masq run: ${e.message}`);
      return 3;
    }
    throw e;
  }
  for (const w of gw.warnings) log(`warning: ${w}`);
  let control;
  try {
    control = await startControlServer(gw, settings.control);
  } catch (e) {
    await gw.stop();
    err(`masq run: ${e instanceof Error ? e.message : String(e)}`);
    return 3;
  }
  let metricsClose: (() => Promise<void>) | null = null;
  if (settings.metrics) {
    try {
      const { startGatewayMetrics } = await import('./metrics.js');
      metricsClose = await startGatewayMetrics(gw, settings.metrics, log);
    } catch (e) {
      await control.close();
      await gw.stop();
      err(`masq run: --metrics ${settings.metrics}: ${e instanceof Error ? e.message : String(e)}`);
      return 2;
    }
  }
  out(`masq: gateway up on ${gw.tun.name}: ${gw.partitions} worker(s), external ${settings.gateway.externals.join(', ')}, control ${control.path}${settings.metrics ? `, metrics http://${settings.metrics}/metrics` : ''}`);
  await new Promise<void>((resolve) => {
    const done = (): void => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    gw.once('fatal', done);
  });
  log('stopping: draining workers, releasing the TUN');
  if (metricsClose) await metricsClose();
  await control.close();
  await gw.stop();
  log('stopped');
  return 0;
}

export { parseDuration };
