/**
 * config-gateway.ts — start the real gateway from a config file (`masq run --config FILE`) in a
 * topology's gateway namespace, for the operations tests (reload, SIGHUP, metrics).
 *
 * `startMasq` (../gateway/start.ts) passes `--tun`, `--address` and `--masquerade` itself, and a
 * rule flag replaces the file's whole rule list (docs/CONFIG.md, Precedence) at start and at
 * every reload; a reload test needs the rules to come from the file alone, so this starter
 * passes nothing but `--config`.
 *
 * Contract: resolves once masq printed `gateway up` and the TUN is routed; the process is tracked
 * by the topology (killed at its `destroy()`); every wait is bounded. The returned value is a
 * `RunningGateway`, so the helpers of ../gateway/e2e.ts (`stats`, `table`, `masqOk`,
 * `waitForLog`) work on it.
 */

import { writeFile } from 'node:fs/promises';
import type { Topology } from '../harness/index.js';
import { launchMasq, type RunningGateway } from '../gateway/start.js';

export interface ConfigFile {
  readonly tun: string;
  readonly addresses: readonly string[];
  readonly rules: readonly string[];
  readonly control: string;
  /** `[timeouts]` entries, e.g. `{ udp: '5m' }`. */
  readonly timeouts?: Readonly<Record<string, string>>;
  /** `metrics = "..."`; the default (127.0.0.1:9464) when absent. */
  readonly metrics?: string;
}

/** The TOML text of `c` (strings JSON-quoted: TOML basic strings share JSON's escapes for these). */
export function configText(c: ConfigFile): string {
  const q = (s: string): string => JSON.stringify(s);
  const lines = [
    `tun = ${q(c.tun)}`,
    `addresses = [${c.addresses.map(q).join(', ')}]`,
    'rules = [',
    ...c.rules.map((r) => `  ${q(r)},`),
    ']',
    `control = ${q(c.control)}`,
  ];
  if (c.metrics !== undefined) lines.push(`metrics = ${q(c.metrics)}`);
  if (c.timeouts !== undefined) {
    lines.push('', '[timeouts]');
    for (const [k, v] of Object.entries(c.timeouts)) lines.push(`${k} = ${q(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function writeConfig(file: string, c: ConfigFile): Promise<void> {
  await writeFile(file, configText(c));
}

/** Start `masq run --config FILE` in `topo.ns.gw`; `control` must be the file's control path. */
export async function startMasqConfig(topo: Topology, configFile: string, control: string, upTimeoutMs = 15_000): Promise<RunningGateway> {
  return launchMasq(topo, ['run', '--config', configFile], control, upTimeoutMs);
}
