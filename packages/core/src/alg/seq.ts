/**
 * alg/seq.ts — TCP sequence-number deltas after a helper changed a payload's length, with
 * the semantics of Linux 2.0's ip_masq_app.c (masq_fix_seq, masq_fix_ack_seq,
 * masq_seq_update), kept visible in `masq table --proc` as Init-seq, Delta and PDelta:
 *
 *   Init-seq  the (sender's) sequence number of the last segment whose length changed;
 *   Delta     the offset for segments after it (the sum of all length changes so far);
 *   PDelta    the previous offset: for the changed segment itself and retransmissions of
 *             anything before it.
 *
 * One state per direction of a session. All arithmetic is modulo 2^32 (RFC 9293 §3.4: "all
 * arithmetic dealing with sequence numbers must be performed modulo 2**32"); `after(a, b)`
 * is RFC 1982-style serial comparison.
 *
 * Acknowledgements travel the other way and are mapped back: an ack is in the receiver's
 * (rewritten) space, so it is first taken back by PDelta and compared with Init-seq, as
 * netfilter's nf_ct_seqadj does (Linux 2.0 compared the raw ack, off by PDelta).
 */

/** a is after b in sequence space (a > b modulo 2^32). */
export function after(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** The sequence number a sender's `seq` becomes on the wire. */
export function fixSeq(seq: number, initSeq: number, delta: number, pdelta: number): number {
  return (seq + (after(seq, initSeq) ? delta : pdelta)) >>> 0;
}

/** The acknowledgement the sender of `seq`-space data must see for a receiver's `ack`. */
export function fixAck(ack: number, initSeq: number, delta: number, pdelta: number): number {
  return (ack - (after((ack - pdelta) >>> 0, initSeq) ? delta : pdelta)) >>> 0;
}

/**
 * The state after a segment starting at `seq` changed length by `diff`. `active` says whether
 * a change was recorded before. A segment that is not after Init-seq is a retransmission of
 * one already accounted for: the state stays (its rewrite, done again the same way, already
 * counts). Returns false when nothing changed.
 */
export function seqUpdate(st: SeqState, active: boolean, seq: number, diff: number): boolean {
  if (active && !after(seq, st.initSeq)) return false;
  st.pdelta = st.delta;
  st.delta = (st.delta + diff) | 0;
  st.initSeq = seq >>> 0;
  return true;
}

/** A mutable view of one direction's state (the engine copies columns in and out). */
export interface SeqState {
  initSeq: number;
  delta: number;
  pdelta: number;
}
