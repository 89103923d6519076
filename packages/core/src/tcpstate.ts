/**
 * tcpstate.ts — the TCP session state machine a NAT keeps (RFC 7857 §2.1 and the RFC 6146
 * §3.5.2 machine, reduced to what decides lifetimes).
 *
 * Contract: `tcpNext(state, flags, dir)` is pure. States and the timer they select:
 *   SynOut / SynIn  one side's SYN seen            opening (4 min, RFC 7857 §2.1)
 *   Established     SYN seen both ways             established (2 h 4 min, RFC 5382 REQ-5)
 *   FinOut / FinIn  one side's FIN seen            established (the other half may still talk)
 *   Closing         FIN seen both ways             closing (4 min, RFC 7857 §2.1)
 *   Reset           RST seen                       closing: RFC 7857 §2.2 — a NAT should
 *                   not drop state on a RST at once, since the RST may be forged or lost;
 *                   a later ACK (no SYN/FIN/RST) returns it to Established (and the RST
 *                   never lengthens the deadline: Partition.tcpDeadline)
 * A simultaneous open (SYN crossing SYN, RFC 5382 REQ-2) reaches Established like SYN/SYN-ACK.
 * A SYN on a Closing or Reset session starts a new connection on the same five-tuple.
 */
import { TcpFlag } from './wire/tcp.js';
export const enum TcpState {
  None = 0,
  SynOut = 1,
  SynIn = 2,
  Established = 3,
  FinOut = 4,
  FinIn = 5,
  Closing = 6,
  Reset = 7,
}

/** dir: 0 outbound (inside → outside), 1 inbound. */
export function tcpNext(state: number, flags: number, dir: number): number {
  if (flags & TcpFlag.Rst) return TcpState.Reset;
  if (flags & TcpFlag.Syn) {
    switch (state) {
      case TcpState.SynOut:
        return dir === 1 ? TcpState.Established : TcpState.SynOut;
      case TcpState.SynIn:
        return dir === 0 ? TcpState.Established : TcpState.SynIn;
      case TcpState.Closing:
      case TcpState.Reset:
      case TcpState.None:
        return dir === 0 ? TcpState.SynOut : TcpState.SynIn;
      default:
        return state;
    }
  }
  if (flags & TcpFlag.Fin) {
    switch (state) {
      case TcpState.Established:
        return dir === 0 ? TcpState.FinOut : TcpState.FinIn;
      case TcpState.FinOut:
        return dir === 1 ? TcpState.Closing : TcpState.FinOut;
      case TcpState.FinIn:
        return dir === 0 ? TcpState.Closing : TcpState.FinIn;
      default:
        return state;
    }
  }
  // RFC 7857 §2.2: the state goes after the transitory timer only "if no packets are received"
  // meanwhile. An acknowledgement after a RST means the connection lives on (the RST was
  // forged, or answered by an RFC 5961 challenge ACK): back to established.
  if (state === TcpState.Reset && (flags & TcpFlag.Ack) !== 0) return TcpState.Established;
  return state;
}

/**
 * The fast path's form of `tcpNext`: the same function as a table of 512 bytes, indexed by
 * state (3 bits), the flag bits tcpNext reads and PSH (FIN, SYN, RST, PSH, ACK: the low five)
 * and the direction. A lookup is a few bytes of bytecode, where tcpNext's branches are 200:
 * V8 inlines it into the fast path without spending the inlining budget the rest needs
 * (docs/BENCHMARKS.md, "the inlining budget"). Built from tcpNext itself, so the two cannot
 * disagree (tests check every entry anyway).
 */
const STEP = new Uint8Array(8 * 32 * 2);
for (let s = 0; s < 8; s++) for (let f = 0; f < 32; f++) for (let d = 0; d < 2; d++) STEP[(s << 6) | (f << 1) | d] = tcpNext(s, f, d);

/** tcpNext(state, flags, dir) by table (flags: the TCP header's flag byte; dir 0 or 1). */
export function tcpStep(state: number, flags: number, dir: number): number {
  return STEP[((state & 7) << 6) | ((flags & 0x1f) << 1) | dir]!;
}

/** True for the states whose timer is the established one. */
export function tcpLongLived(state: number): boolean {
  return state === TcpState.Established || state === TcpState.FinOut || state === TcpState.FinIn;
}

/** True for the states whose timer is the closing one (FIN both ways, RST). */
export function tcpClosingState(state: number): boolean {
  return state === TcpState.Closing || state === TcpState.Reset;
}
