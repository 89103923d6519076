/**
 * tcp-replay.ts — a TCP connection through a Nat between two simulated peers that behave like
 * real stacks: each sends with its own next sequence number and acknowledges exactly what it
 * received, so a helper's length changes show in the sequence and acknowledgement numbers the
 * other side sees. Used by the protocol-helper scenario and property tests.
 *
 * Contract: every packet goes through natOut/natIn (so the checksum oracle checks each one
 * emitted); `send` asserts that exactly one packet came out and that its sequence number is
 * the receiver's next expected one and its acknowledgement the sender-of-that-ack's own next
 * sequence number (the deltas are right); each side's received byte stream is kept.
 */
import type { Nat } from '../../src/nat.js';
import { natIn, natOut, tcp, type NatResult, type Parsed } from './packets.js';

export interface ReplayOptions {
  /** The inside host's address and port. */
  inside: string;
  insidePort: number;
  /** The outside host's address and port. */
  outside: string;
  outsidePort: number;
  /** Who opens the connection: the inside host (a client), or the outside one (to a port forward). */
  opener: 'inside' | 'outside';
  /** With opener 'outside': the external address and port it connects to. */
  external?: string;
  externalPort?: number;
  insideIsn: number;
  outsideIsn: number;
  /** TCP options of the opener's SYN (e.g. SACK-permitted). */
  synOptions?: number[];
}

export interface Sent {
  from: 'inside' | 'outside';
  /** The packet as sent (before the Nat). */
  pkt: Uint8Array;
  /** What came out. */
  out: Parsed;
  raw: Uint8Array;
}

const u32 = (n: number): number => n >>> 0;

export class TcpReplay {
  /** Bytes each side sent (in its own space) and received (as emitted to it). */
  inSent = 0;
  inRecv = 0;
  outSent = 0;
  outRecv = 0;
  readonly toOutside: number[] = [];
  readonly toInside: number[] = [];
  external = '';
  externalPort = 0;
  readonly log: Sent[] = [];
  /** The SYN as the far side received it. */
  syn: Parsed | null = null;

  constructor(
    readonly nat: Nat,
    readonly o: ReplayOptions,
    public now = 0,
  ) {}

  private inPkt(flags: string, seq: number, ack: number, payload?: Uint8Array, options?: number[]): Uint8Array {
    const o = this.o;
    return tcp({ src: o.inside, dst: o.outside, sport: o.insidePort, dport: o.outsidePort, flags, seq: u32(seq), ack: u32(ack), payload, options });
  }
  private outPkt(flags: string, seq: number, ack: number, payload?: Uint8Array, options?: number[]): Uint8Array {
    const o = this.o;
    return tcp({ src: o.outside, dst: this.external, sport: o.outsidePort, dport: this.externalPort, flags, seq: u32(seq), ack: u32(ack), payload, options });
  }

  private one(r: NatResult, what: string): Parsed {
    if (r.all.length !== 1) throw new Error(`${what}: expected one packet out, got ${r.all.length} (drop: ${r.drop})`);
    return r.pkt!;
  }

  /** The three-way handshake. */
  open(): this {
    const o = this.o;
    if (o.opener === 'inside') {
      const s = this.one(natOut(this.nat, this.inPkt('S', o.insideIsn, 0, undefined, o.synOptions), this.now), 'SYN out');
      this.syn = s;
      this.external = s.src;
      this.externalPort = s.sport!;
      this.one(natIn(this.nat, this.outPkt('SA', o.outsideIsn, o.insideIsn + 1), this.now), 'SYN/ACK in');
      this.one(natOut(this.nat, this.inPkt('A', o.insideIsn + 1, o.outsideIsn + 1), this.now), 'ACK out');
    } else {
      this.external = o.external!;
      this.externalPort = o.externalPort!;
      const s = this.one(natIn(this.nat, this.outPkt('S', o.outsideIsn, 0, undefined, o.synOptions), this.now), 'SYN in');
      this.syn = s;
      this.one(natOut(this.nat, this.inPkt('SA', o.insideIsn, o.outsideIsn + 1), this.now), 'SYN/ACK out');
      this.one(natIn(this.nat, this.outPkt('A', o.outsideIsn + 1, o.insideIsn + 1), this.now), 'ACK in');
    }
    return this;
  }

  /** Send `data` from one side; returns what came out (checked: seq and ack as a real peer expects). */
  send(from: 'inside' | 'outside', data: Uint8Array | string): Sent {
    const payload = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    const o = this.o;
    let pkt: Uint8Array;
    let r: NatResult;
    if (from === 'inside') {
      pkt = this.inPkt('PA', o.insideIsn + 1 + this.inSent, o.outsideIsn + 1 + this.inRecv, payload);
      r = natOut(this.nat, pkt, this.now);
    } else {
      pkt = this.outPkt('PA', o.outsideIsn + 1 + this.outSent, o.insideIsn + 1 + this.outRecv, payload);
      r = natIn(this.nat, pkt, this.now);
    }
    const out = this.one(r, `${from} segment ${JSON.stringify(new TextDecoder('latin1').decode(payload))}`);
    // The receiver sees its next expected sequence number, and an ack of exactly what it sent.
    if (from === 'inside') {
      check(out.seq, u32(o.insideIsn + 1 + this.outRecv), 'seq the outside host expects');
      check(out.ack, u32(o.outsideIsn + 1 + this.outSent), 'ack of what the outside host sent');
      this.inSent += payload.length;
      this.outRecv += out.payload.length;
      this.toOutside.push(...out.payload);
    } else {
      check(out.seq, u32(o.outsideIsn + 1 + this.inRecv), 'seq the inside host expects');
      check(out.ack, u32(o.insideIsn + 1 + this.inSent), 'ack of what the inside host sent');
      this.outSent += payload.length;
      this.inRecv += out.payload.length;
      this.toInside.push(...out.payload);
    }
    const sent = { from, pkt, out, raw: r.bytes[0]! };
    this.log.push(sent);
    return sent;
  }

  /** Send an earlier packet again, unchanged (a retransmission); what came out. */
  resend(s: Sent): { out: Parsed; raw: Uint8Array } {
    const r = s.from === 'inside' ? natOut(this.nat, s.pkt, this.now) : natIn(this.nat, s.pkt, this.now);
    return { out: this.one(r, 'retransmission'), raw: r.bytes[0]! };
  }

  /** An ACK-only segment from one side acknowledging everything; what came out. */
  ackOnly(from: 'inside' | 'outside'): Parsed {
    const o = this.o;
    if (from === 'inside') return this.one(natOut(this.nat, this.inPkt('A', o.insideIsn + 1 + this.inSent, o.outsideIsn + 1 + this.inRecv), this.now), 'ACK out');
    return this.one(natIn(this.nat, this.outPkt('A', o.outsideIsn + 1 + this.outSent, o.insideIsn + 1 + this.outRecv), this.now), 'ACK in');
  }

  text(which: 'toOutside' | 'toInside'): string {
    return new TextDecoder('latin1').decode(Uint8Array.from(this[which]));
  }
}

function check(got: number | undefined, want: number, what: string): void {
  if (got !== want) throw new Error(`${what}: got ${String(got)}, want ${want}`);
}
