/**
 * preflight.ts — can this process build namespace topologies at all?
 *
 * Owns: `canRunNetns` (root, `ip`, /dev/net/tun, and a probe namespace actually created and
 * deleted) and `haveTool`. Tests call it at load time and skip, with the reason printed, when
 * the answer is no. Synchronous and cached: it runs a handful of short commands once.
 */

import { statSync } from 'node:fs';
import { runSync } from './exec.js';
import { DEFAULT_BASE, claimPrefix, releasePrefix } from './cleanup.js';

export interface Preflight {
  readonly ok: boolean;
  readonly reason?: string;
}

let cached: Preflight | undefined;

/** True when `argv` runs and exits 0 (used to probe for tools). */
export function haveTool(argv: readonly string[]): boolean {
  return runSync(argv, 3_000).code === 0;
}

export function canRunNetns(): Preflight {
  if (cached !== undefined) return cached;
  cached = probe();
  return cached;
}

function probe(): Preflight {
  if (process.platform !== 'linux') return { ok: false, reason: `network namespaces need Linux (platform is ${process.platform})` };
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { ok: false, reason: 'not running as root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)' };
  if (!haveTool(['ip', '-V'])) return { ok: false, reason: '`ip` (iproute2) is not installed' };
  if (!haveTool(['sysctl', '--version'])) return { ok: false, reason: '`sysctl` (procps) is not installed' };
  try {
    if (!statSync('/dev/net/tun').isCharacterDevice()) return { ok: false, reason: '/dev/net/tun is not a character device' };
  } catch {
    return { ok: false, reason: '/dev/net/tun is missing' };
  }
  let prefix: string;
  try {
    prefix = claimPrefix(DEFAULT_BASE);
  } catch (e) {
    return { ok: false, reason: `cannot write the owner marker: ${String(e)}` };
  }
  const ns = `${prefix}x`;
  try {
    const add = runSync(['ip', 'netns', 'add', ns]);
    if (add.code !== 0) return { ok: false, reason: `cannot create a network namespace: ${add.stderr.trim()}` };
    const veth = runSync(['ip', '-n', ns, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1']);
    if (veth.code !== 0) return { ok: false, reason: `cannot create a veth pair: ${veth.stderr.trim()}` };
    return { ok: true };
  } finally {
    runSync(['ip', 'netns', 'del', ns]);
    releasePrefix(prefix);
  }
}
