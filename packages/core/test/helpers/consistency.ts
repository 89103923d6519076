/**
 * consistency.ts — the whole-table check shared by the property tests and the fuzz target:
 * every invariant of the masquerade table that can be stated from its columns alone.
 *
 * Contract: `tableFaults(nat, now)` reads (never writes) every partition and returns a list
 * of human-readable faults, empty when the table is consistent:
 *  - the listing has exactly `sessionCount` rows in each partition;
 *  - every live session is found through both five-tuple indices, and its mapping is live,
 *    agrees with it, and is found through both endpoint indices;
 *  - every mapping's session list has `mCount` entries; a dynamic mapping has at least one;
 *  - no two mappings share an external (address, protocol family, port), and no inside
 *    endpoint (protocol, address, port) has two mappings (RFC 4787 REQ-1), across partitions;
 *  - every dynamic mapping's port is marked in use by the allocator of the partition that
 *    owns the port;
 *  - gauges (live sessions by protocol and TCP state, mappings, ports in use per external
 *    address) agree with the rows;
 *  - the shared per-host counts (when a host limit is configured) agree with the sessions and
 *    counted mappings each inside host holds over all partitions, and with `limits: true` no
 *    host holds more than its limits;
 *  - with `expired: true` (call it right after a full `expire(now)`): no session is live past
 *    its deadline.
 */
import type { Nat } from '../../src/nat.js';
import { C, TCP_STATE_NAMES, MAX_EXTERNALS } from '../../src/counters.js';
import { listSessions } from '../../src/listing.js';
import { MF_STATIC, MF_COUNTED } from '../../src/table.js';
import { portFamily } from '../../src/ports.js';
import { formatIPv4, parseIPv4 } from '../../src/addr.js';

function addr(s: string): number {
  return parseIPv4(s)!;
}

export interface ConsistencyOptions {
  /** A full expiry sweep has just run at `now`: nothing may be live past its deadline. */
  expired?: boolean;
  /** Hold every host to its configured limits, summed over partitions (default true). */
  limits?: boolean;
}

export function tableFaults(nat: Nat, now: number, opts: ConsistencyOptions = {}): string[] {
  const out: string[] = [];
  const extPorts = new Map<string, string>();
  const insideEndpoints = new Map<string, string>();
  const portsInUse = new Array<number>(MAX_EXTERNALS).fill(0);
  const liveMappingsByExt = new Array<number>(MAX_EXTERNALS).fill(0);
  const counting = nat.config.hostSessionLimit > 0 || nat.config.hostPortLimit > 0;
  // inside host → [sessions, counted mappings], per partition and in total
  const hostTotals = new Map<number, [number, number]>();
  for (const part of nat.partitions) {
    const t = part.table;
    const c = t.cols;
    const rows = listSessions(t, now);
    if (rows.length !== t.sessionCount) out.push(`partition ${part.index}: ${rows.length} live rows, sessionCount ${t.sessionCount}`);
    const byProto = [0, 0, 0, 0];
    const byState = new Array<number>(TCP_STATE_NAMES.length).fill(0);
    const hosts = new Map<number, [number, number]>();
    for (const r of rows) {
      const proto = r.proto === 'tcp' ? 6 : r.proto === 'udp' ? 17 : 1;
      const id = r.id;
      const fo = t.findSessionOut(proto, addr(r.inside), r.insidePort, addr(r.remote), r.remotePort);
      const fi = t.findSessionIn(proto, addr(r.external), r.externalPort, addr(r.remote), r.remotePort);
      if (fo !== id) out.push(`session ${id} (${r.proto} ${r.inside}:${r.insidePort} → ${r.remote}:${r.remotePort}): outside index finds ${fo}`);
      if (fi !== id) out.push(`session ${id} (${r.proto} ${r.external}:${r.externalPort} ← ${r.remote}:${r.remotePort}): inside index finds ${fi}`);
      const mid = t.sMap(id);
      if (!t.isMappingLive(mid)) out.push(`session ${id} on dead mapping ${mid}`);
      if (c.mIn[mid] !== addr(r.inside) || c.mInPort[mid] !== r.insidePort || c.mExtPort[mid] !== r.externalPort || c.mExt[mid] !== addr(r.external)) out.push(`session ${id} disagrees with its mapping ${mid}`);
      if (opts.expired && t.sExpires(id) <= now) out.push(`session ${id} (${r.proto} ${r.inside}:${r.insidePort} → ${r.remote}:${r.remotePort}) live ${now - t.sExpires(id)} ms past its deadline`);
      byProto[proto === 6 ? 0 : proto === 17 ? 1 : 2]!++;
      if (proto === 6) byState[t.sState(id)]!++;
      const h = hosts.get(t.sIn(id)) ?? [0, 0];
      h[0]++;
      hosts.set(t.sIn(id), h);
    }
    for (let mid = 1; mid < t.mappingHigh; mid++) {
      if (!t.isMappingLive(mid)) continue;
      const proto = c.mProto[mid]!;
      if (t.findMappingOut(proto, c.mIn[mid]!, c.mInPort[mid]!) !== mid) out.push(`mapping ${mid}: not found by inside endpoint`);
      if (t.findMappingIn(proto, c.mExt[mid]!, c.mExtPort[mid]!) !== mid) out.push(`mapping ${mid}: not found by external endpoint`);
      const who = `${part.index}:${mid}`;
      const key = `${portFamily(proto)}/${formatIPv4(c.mExt[mid]!)}/${c.mExtPort[mid]}`;
      if (extPorts.has(key)) out.push(`external ${key} held by mappings ${extPorts.get(key)} and ${who}`);
      extPorts.set(key, who);
      const inKey = `${proto}/${formatIPv4(c.mIn[mid]!)}:${c.mInPort[mid]}`;
      if (insideEndpoints.has(inKey)) out.push(`inside endpoint ${inKey} has mappings ${insideEndpoints.get(inKey)} and ${who}`);
      insideEndpoints.set(inKey, who);
      const ei = c.mExtIdx[mid]!;
      if (nat.config.externals[ei] !== c.mExt[mid]) out.push(`mapping ${mid}: external index ${ei} is not ${formatIPv4(c.mExt[mid]!)}`);
      liveMappingsByExt[ei]!++;
      let n = 0;
      for (let s = c.mHead[mid]!; s !== 0 && n <= t.capacity; s = c.sNext[s]!) n++;
      if (n !== c.mCount[mid]) out.push(`mapping ${mid}: ${n} sessions linked, count ${c.mCount[mid]}`);
      if (n === 0 && (c.mFlags[mid]! & MF_STATIC) === 0) out.push(`mapping ${mid}: dynamic with no sessions`);
      const owner = nat.plan.ownerOf[c.mExtPort[mid]!]!;
      if ((c.mFlags[mid]! & MF_STATIC) === 0 && owner !== 0xff && !nat.partitions[owner]!.ports.isInUse(ei, proto, c.mExtPort[mid]!)) {
        out.push(`mapping ${mid}: port ${c.mExtPort[mid]} not marked in use by partition ${owner}`);
      }
      if ((c.mFlags[mid]! & MF_COUNTED) !== 0) {
        const h = hosts.get(c.mIn[mid]!) ?? [0, 0];
        h[1]++;
        hosts.set(c.mIn[mid]!, h);
      }
    }
    const k = t.counters;
    for (let i = 0; i < 3; i++) if (k[C.LIVE_BY_PROTO + i] !== byProto[i]) out.push(`partition ${part.index}: live gauge proto ${i} = ${k[C.LIVE_BY_PROTO + i]}, rows ${byProto[i]}`);
    for (let s = 0; s < byState.length; s++) {
      if (k[C.LIVE_TCP_STATE + s] !== byState[s]) out.push(`partition ${part.index}: TCP ${TCP_STATE_NAMES[s]} gauge ${k[C.LIVE_TCP_STATE + s]}, rows ${byState[s]}`);
    }
    if (k[C.LIVE_MAPPINGS] !== t.mappingCount) out.push(`partition ${part.index}: mapping gauge ${k[C.LIVE_MAPPINGS]}, count ${t.mappingCount}`);
    for (let e = 0; e < MAX_EXTERNALS; e++) portsInUse[e]! += k[C.PORTS_IN_USE + e]!;
    if (counting) {
      for (const [h, v] of hosts) {
        const tot = hostTotals.get(h) ?? [0, 0];
        tot[0] += v[0];
        tot[1] += v[1];
        hostTotals.set(h, tot);
      }
    }
  }
  for (let e = 0; e < nat.config.externals.length; e++) {
    if (portsInUse[e] !== liveMappingsByExt[e]) out.push(`external ${e}: ports-in-use gauge ${portsInUse[e]}, live mappings ${liveMappingsByExt[e]}`);
  }
  if (counting) out.push(...hostCountFaults(nat, hostTotals));
  if (counting && opts.limits !== false) out.push(...hostLimitFaults(nat, hostTotals));
  return out;
}

/** The shared per-host counts agree with what the hosts hold over all partitions, and hold no one else. */
function hostCountFaults(nat: Nat, totals: Map<number, [number, number]>): string[] {
  const out: string[] = [];
  const hc = nat.partitions[0]!.hosts;
  if (hc === null) return ['host limits set but no host counts kept'];
  for (const p of nat.partitions) if (p.hosts !== hc) out.push(`partition ${p.index} keeps its own host counts`);
  for (const [h, [s, m]] of totals) {
    if (hc.sessionsOf(h) !== s) out.push(`host ${formatIPv4(h)}: counted ${hc.sessionsOf(h)} sessions, holds ${s}`);
    if (hc.portsOf(h) !== m) out.push(`host ${formatIPv4(h)}: counted ${hc.portsOf(h)} ports, holds ${m}`);
  }
  if (hc.hosts !== totals.size) out.push(`host counts have ${hc.hosts} entries, ${totals.size} hosts hold anything`);
  return out;
}

/** No host holds more than its limits allow. */
function hostLimitFaults(nat: Nat, totals: Map<number, [number, number]>): string[] {
  const out: string[] = [];
  const cfg = nat.config;
  for (const [h, [s, m]] of totals) {
    if (cfg.hostSessionLimit > 0 && s > cfg.hostSessionLimit) out.push(`host ${formatIPv4(h)} holds ${s} sessions, limit ${cfg.hostSessionLimit}`);
    if (cfg.hostPortLimit > 0 && m > cfg.hostPortLimit) out.push(`host ${formatIPv4(h)} holds ${m} ports, limit ${cfg.hostPortLimit}`);
  }
  return out;
}
