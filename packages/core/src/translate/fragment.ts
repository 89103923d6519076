/**
 * translate/fragment.ts — non-first fragments (RFC 4787 REQ-14). They carry no ports: each
 * follows the session its first fragment found, remembered in the table's fragment cache by
 * (src, dst, proto, IP ID) when the first fragment went through the fast path.
 *
 * Contract: called by Partition.translate() for a validated IPv4 header whose fragment offset
 * is not 0. Ordering is restored before this point (dispatch.ts holds fragments that arrive
 * before their first); a fragment with no remembered first is a FragmentOrphan drop. Only the
 * IPv4 header is rewritten (address, TTL when compensating, header checksum).
 *
 * References: RFC 4787 REQ-14, RFC 791 (fragmentation), RFC 4787 REQ-9 (a hairpinned first
 * fragment's followers are hairpinned too).
 */
import { DropReason } from '../drop.js';
import { C, packetsSlot, bytesSlot, protoIndex } from '../counters.js';
import { SF_HAIRPIN } from '../table.js';
import { u16, u32, put32 } from '../wire/bytes.js';
import * as ip from '../wire/ipv4.js';
import { Direction, FORWARD } from '../verdict.js';
import type { Partition } from '../translate.js';
import { finishIpHeader } from './header.js';
import { hairpinRoute, HERE } from './hairpin.js';

/** A non-first fragment: no ports; it follows the session its first fragment found. */
export function laterFragment(pt: Partition, b: Uint8Array, off: number, tl: number, p: number, dir: number, now: number): number {
  const t = pt.table;
  const src = u32(b, off + ip.SRC);
  const dst = u32(b, off + ip.DST);
  const ipId = u16(b, off + ip.ID);
  const d = dir === Direction.Out ? 0 : 1;
  const sid = t.fragGet(src, dst, p, ipId, d, now);
  if (sid === 0) return pt.dropped(DropReason.FragmentOrphan);
  pt.counters[C.FRAGMENTS]!++;
  let dIp: number;
  if (d === 0) {
    put32(b, off + ip.SRC, t.sExt(sid));
    dIp = t.sDIp(sid);
    t.countBytes(sid, 0, tl);
  } else {
    put32(b, off + ip.DST, t.sIn(sid));
    dIp = ~t.sDIp(sid) & 0xffff;
    t.countBytes(sid, 1, tl);
  }
  finishIpHeader(b, off, dIp, dir !== Direction.HairpinIn && pt.cfg.hopCompensation);
  const pi = protoIndex(p);
  pt.counters[packetsSlot(d, pi)]!++;
  pt.counters[bytesSlot(d, pi)]! += tl;
  if (d === 0 && (t.sFlags(sid) & SF_HAIRPIN) !== 0) {
    // Route by the remote port the session recorded: later fragments carry none.
    const v = hairpinRoute(pt, p, dst, t.sRemPort(sid));
    return v !== HERE ? v : laterFragment(pt, b, off, tl, p, Direction.HairpinIn, now);
  }
  return FORWARD;
}
