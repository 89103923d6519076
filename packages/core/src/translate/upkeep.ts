/**
 * translate/upkeep.ts — the partition's table upkeep outside the packet path: freeing
 * sessions and mappings, expiry (the owner's confirmation of a nominated session, and the
 * incremental sweep), flushes, and rule reload with its static forward mappings.
 *
 * Contract: only the partition that owns a table calls these (single writer). A freed mapping
 * releases its port (with the allocator's reuse delay) and its per-host counts; static forward
 * mappings survive flushes and follow the forwards this partition owns after a reload.
 *
 * References: RFC 4787 REQ-5 / RFC 5382 REQ-5 (mapping timers), RFC 7857 §2.1-2.2 (TCP
 * timers), RFC 6888 REQ-4 (per-host counts), RFC 6056 (port reuse delay).
 */
import { DropReason } from '../drop.js';
import { C, protoIndex } from '../counters.js';
import { type RuleSet, RuleAction } from '../rules.js';
import { MF_STATIC, MF_COUNTED, MF_EXPECT, MF_PINNED } from '../table.js';
import { insidePartition } from '../hash.js';
import type { Partition } from '../translate.js';
import { nominateExpired } from '../expiry.js';
import { IpProto } from '../wire/ipv4.js';

/** Free a mapping with no sessions left and release its port. */
export function releaseMapping(pt: Partition, mid: number, now: number): void {
  const t = pt.table;
  const ei = t.mExtIdx(mid);
  pt.ports.release(ei, t.mProto(mid), t.mExtPort(mid), now);
  pt.counters[C.PORTS_IN_USE + ei]!--;
  // A helper's expectation or pin must not outlive (or point at a reused) mapping.
  if ((t.mFlags(mid) & (MF_EXPECT | MF_PINNED)) !== 0) pt.alg.mappingFreed(mid);
  if ((t.mFlags(mid) & MF_COUNTED) !== 0) pt.hosts?.add(t.mIn(mid), 0, -1, pt.index);
  pt.table.freeMapping(mid);
}

/** Free one session (and its mapping if that was the last). */
export function removeSession(pt: Partition, sid: number, now: number): void {
  const t = pt.table;
  if (!t.isLive(sid)) return;
  const inA = t.sIn(sid);
  const mid = t.freeSession(sid);
  pt.hosts?.add(inA, -1, 0, pt.index);
  if (mid !== 0) releaseMapping(pt, mid, now);
}

/** Owner's check of a nominated session: free it if it really has expired. */
export function confirmExpired(pt: Partition, sid: number, now: number): boolean {
  const t = pt.table;
  if (!t.isLive(sid) || t.sExpires(sid) > now) return false;
  const p = t.sProto(sid);
  removeSession(pt, sid, now);
  pt.counters[C.SESSIONS_EXPIRED + protoIndex(p)]!++;
  return true;
}

/**
 * Incremental expiry in one thread: the gateway's sweep (expiry.ts nominateExpired, as the
 * timer actor runs it) over at most `budget` slots from where the last call stopped, each
 * nomination confirmed by the owner's check at once. Returns how many were freed.
 */
export function expire(pt: Partition, now: number, budget: number): number {
  const t = pt.table;
  let freed = 0;
  t.expireCursor = nominateExpired(t, t.expireCursor, now, budget, (sid) => {
    if (confirmExpired(pt, sid, now)) freed++;
    return true;
  });
  return freed;
}

/**
 * Remove sessions matching a predicate (flush by protocol, inside host, rule change).
 * Static forward mappings stay. Returns the number removed.
 */
export function flush(pt: Partition, now: number, match: (sid: number) => boolean): number {
  const t = pt.table;
  let n = 0;
  for (let sid = 1; sid < t.sessionHigh; sid++) {
    if (t.isLive(sid) && match(sid)) {
      removeSession(pt, sid, now);
      n++;
    }
  }
  pt.counters[C.SESSIONS_FLUSHED]! += n;
  if (n > 0) t.fragClear();
  return n;
}

/**
 * Install a new rule set (reload): static mappings follow the forwards this partition
 * owns; sessions that no rule allows any more are flushed; everything else keeps running.
 * Returns the number of sessions flushed.
 */
export function applyRules(pt: Partition, rules: RuleSet, now: number, externals?: readonly number[]): number {
  pt.rules = rules;
  if (externals) {
    pt.cfg = { ...pt.cfg, externals: [...externals] };
    pt.externalSet = Uint32Array.from(externals);
  }
  const removed = syncStatics(pt, now);
  const t = pt.table;
  return removed + flush(pt, now, (sid) => {
    const mid = t.sMap(sid);
    if ((t.mFlags(mid) & MF_STATIC) !== 0) return false;
    if (!pt.isExternal(t.sExt(sid))) return true;
    const ri = rules.matchOutbound(t.sProto(sid), t.sIn(sid), t.sInPort(sid), t.sRem(sid), t.sRemPort(sid));
    return ri < 0 || rules.actionOf(ri) !== RuleAction.Masquerade;
  });
}

/**
 * Create the static mappings for forwards owned here; remove those no longer configured and
 * any dynamic mapping holding a forwarded port. Returns the sessions removed. A static
 * mapping that does not fit in the mapping table counts a table_full drop.
 */
export function syncStatics(pt: Partition, now: number): number {
  let removed = 0;
  const t = pt.table;
  const P = pt.cfg.partitions;
  const wanted = new Set<string>();
  const rs = pt.rules;
  for (let i = 0; i < rs.rules.length; i++) {
    const r = rs.rules[i]!;
    if (r.kind !== 'forward') continue;
    const p = r.proto === 'tcp' ? IpProto.Tcp : IpProto.Udp;
    const ei = pt.extIndex(r.extAddr);
    if (ei < 0) continue;
    for (let port = r.extPorts.lo; port <= r.extPorts.hi; port++) {
      const inP = r.inPorts.lo + (port - r.extPorts.lo);
      const existing = t.findMappingIn(p, r.extAddr, port);
      const owner = insidePartition(p, r.inAddr, inP, P) === pt.index;
      // A dynamic mapping allocated this port before the forward existed: it must go, in
      // whichever partition holds it, or two inside endpoints would share the port.
      if (existing !== 0 && (t.mFlags(existing) & MF_STATIC) === 0 && !(owner && t.mIn(existing) === r.inAddr && t.mInPort(existing) === inP)) {
        removed += dropMapping(pt, existing, now);
      }
      pt.ports.reserve(ei, p, port);
      if (!owner) continue;
      wanted.add(`${p}/${r.extAddr}/${port}`);
      const kept = t.findMappingIn(p, r.extAddr, port);
      if (kept !== 0 && t.mIn(kept) === r.inAddr && t.mInPort(kept) === inP) {
        t.addMapFlags(kept, MF_STATIC);
        continue;
      }
      if (kept !== 0) removed += dropMapping(pt, kept, now);
      const clash = t.findMappingOut(p, r.inAddr, inP);
      if (clash !== 0) removed += dropMapping(pt, clash, now);
      if (t.newMapping(p, r.inAddr, inP, ei, r.extAddr, port, MF_STATIC) !== 0) pt.counters[C.PORTS_IN_USE + ei]!++;
      else t.drop(DropReason.TableFull);
    }
  }
  // Remove statics that are no longer wanted (walk all mappings).
  for (let mid = 1; mid < t.mappingHigh; mid++) {
    if (!t.isMappingLive(mid) || (t.mFlags(mid) & MF_STATIC) === 0) continue;
    if (!wanted.has(`${t.mProto(mid)}/${t.mExt(mid)}/${t.mExtPort(mid)}`)) {
      const ei = t.mExtIdx(mid);
      const p = t.mProto(mid);
      const port = t.mExtPort(mid);
      removed += dropMapping(pt, mid, now);
      pt.ports.unreserve(ei, p, port, now);
    }
  }
  return removed;
}

/** Remove a mapping and all its sessions now; returns the sessions removed. */
function dropMapping(pt: Partition, mid: number, now: number): number {
  const t = pt.table;
  t.clearMapFlags(mid, MF_STATIC);
  let s = t.mHead(mid);
  if (s === 0) {
    releaseMapping(pt, mid, now);
    return 0;
  }
  let n = 0;
  while (s !== 0) {
    const next = t.sNext(s);
    removeSession(pt, s, now);
    pt.counters[C.SESSIONS_FLUSHED]!++;
    n++;
    s = next;
  }
  return n;
}
