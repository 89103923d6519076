/**
 * nat.ts — the whole translator in one thread: a Dispatcher in front of N Partitions, wired
 * exactly as the gateway's threads wire them (hand-offs between partitions, held fragments,
 * the reply buffer), but called directly. Used by scenario tests, benchmarks and the
 * offline demo; the gateway (packages/workers) runs the same pieces on threads.
 *
 * Contract: `process(bytes, off, len, now)` takes one packet that arrived from the TUN and
 * returns the packets to write back (zero, one, or more when held fragments are released),
 * each a view into either the input buffer or a copy. A protocol helper may grow the packet
 * in place into the buffer's room after it (bytes.length - off is its capacity). `lastDrop` says why the last packet
 * produced nothing. Timekeeping is the caller's: `now` in ms.
 */
import { resolveConfig, type ConfigInput, type NatConfig } from './config.js';
import { RuleSet, parseRules, type Rule } from './rules.js';
import { PortPlan } from './ports.js';
import { SessionTable } from './table.js';
import { forwardPortCount, partitionSizes } from './sizing.js';
import { hostCountsFor } from './hosts.js';
import { Partition } from './translate.js';
import { Dispatcher, DISPATCH_DROP, DISPATCH_HELD, DISPATCH_PASS, Side } from './dispatch.js';
import { VerdictKind, verdictArg, verdictKind, Direction } from './verdict.js';
import { C, sumCounters } from './counters.js';
import { DropReason } from './drop.js';
import { PinTable } from './alg/pins.js';

export interface NatOptions extends ConfigInput {
  rules: string | Rule[];
}

export class Nat {
  readonly config: NatConfig;
  readonly plan: PortPlan;
  readonly partitions: Partition[];
  readonly dispatcher: Dispatcher;
  /** The pinned-endpoint table the partitions write and the dispatcher reads (alg/pins.ts). */
  readonly pins: PinTable;
  rules: RuleSet;
  lastDrop = 0;
  /** The last packet was a fragment held back until its first fragment comes. */
  lastHeld = false;
  private heldCopies = new Map<number, Uint8Array>();
  private nextHandle = 1;

  constructor(opts: NatOptions) {
    const { rules, ...cfgIn } = opts;
    this.config = resolveConfig(cfgIn);
    this.rules = new RuleSet(typeof rules === 'string' ? parseRules(rules) : rules);
    this.plan = new PortPlan(this.config.portLo, this.config.portHi, this.config.partitions);
    const sizes = partitionSizes(this.config, forwardPortCount(this.rules.rules));
    this.pins = new PinTable(this.config.partitions);
    this.partitions = [];
    // One per-host count table for all partitions: the limits hold exactly (hosts.ts). Every
    // partition of a Nat runs in this one thread: one writer, no lock.
    const hosts = hostCountsFor(this.config, undefined, 1);
    for (let i = 0; i < this.config.partitions; i++) {
      const table = new SessionTable(sizes, this.plan);
      const p = new Partition({ config: this.config, rules: this.rules, plan: this.plan, index: i, table, pins: this.pins, hosts });
      p.syncStatics(0);
      this.partitions.push(p);
    }
    this.dispatcher = new Dispatcher(this.rules, this.config.externals, this.plan, this.config.partitions, this.config.fragmentHold, this.config.timeouts.fragment, this.pins);
  }

  /** Replace the rules live (reload); returns sessions flushed. */
  setRules(rules: string | Rule[], now: number): number {
    this.rules = new RuleSet(typeof rules === 'string' ? parseRules(rules) : rules);
    this.dispatcher.setRules(this.rules);
    let n = 0;
    for (const p of this.partitions) n += p.applyRules(this.rules, now);
    return n;
  }

  /** Counters summed over partitions. */
  counters(): Float64Array {
    return sumCounters(this.partitions.map((p) => p.table.counters));
  }

  drops(reason: number): number {
    return this.counters()[C.DROPS + reason]!;
  }

  /**
   * Run one packet through; returns what would be written back to the TUN. `side`: where it
   * entered (dispatch.ts Side; the default guesses direction from the rules).
   */
  process(bytes: Uint8Array, off: number, len: number, now: number, side: Side = Side.Unknown): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.lastHeld = false;
    this.sweepHeld(now);
    const handle = this.nextHandle++;
    const part = this.dispatcher.classify(bytes, off, len, now, handle, side);
    if (part === DISPATCH_DROP) {
      this.lastDrop = this.dispatcher.reason;
      this.partitions[0]!.table.drop(this.lastDrop);
      return out;
    }
    if (part === DISPATCH_HELD) {
      this.lastHeld = true;
      this.heldCopies.set(handle, bytes.slice(off, off + len));
      return out;
    }
    if (part === DISPATCH_PASS) {
      this.partitions[0]!.table.counters[C.PASSED]!++;
      // The IP total length, not the captured length: link padding stays behind.
      out.push(bytes.subarray(off, off + ((bytes[off + 2]! << 8) | bytes[off + 3]!)));
      // (An accepted first fragment releases its datagram's early later fragments: below.)
    } else this.run(bytes, off, len, part, this.dispatcher.dir, now, out);
    for (const r of this.dispatcher.released()) {
      const copy = this.heldCopies.get(r.handle);
      this.heldCopies.delete(r.handle);
      if (!copy) continue;
      if (r.partition !== DISPATCH_PASS) {
        this.run(copy, 0, copy.length, r.partition, r.dir, now, out);
        continue;
      }
      // A later fragment of a datagram an accept rule passed: out untranslated, if sound.
      const bad = this.dispatcher.laterFragmentCheck(copy, 0, copy.length);
      if (bad !== DropReason.None) this.partitions[0]!.table.drop(bad);
      else {
        this.partitions[0]!.table.counters[C.PASSED]!++;
        out.push(copy.subarray(0, (copy[2]! << 8) | copy[3]!));
      }
    }
    return out;
  }

  /** Held fragments past their time are dropped (fragment_orphan). */
  private sweepHeld(now: number): void {
    for (const h of this.dispatcher.expired(now)) {
      this.heldCopies.delete(h);
      this.partitions[0]!.table.drop(DropReason.FragmentOrphan);
    }
  }

  private run(bytes: Uint8Array, off: number, len: number, part: number, dir: number, now: number, out: Uint8Array[]): void {
    let p = part;
    let d = dir;
    for (let hops = 0; hops < 4; hops++) {
      const partition = this.partitions[p]!;
      const v = partition.translate(bytes, off, len, d, now, false, bytes.length - off);
      switch (verdictKind(v)) {
        case VerdictKind.Forward:
        case VerdictKind.Pass:
          this.lastDrop = 0;
          out.push(bytes.subarray(off, off + ((bytes[off + 2]! << 8) | bytes[off + 3]!)));
          return;
        case VerdictKind.Reply:
          this.lastDrop = verdictArg(v);
          out.push(partition.reply.slice(0, partition.replyLen));
          return;
        case VerdictKind.Handoff:
          p = verdictArg(v);
          d = Direction.HairpinIn;
          continue;
        default:
          this.lastDrop = verdictArg(v);
          return;
      }
    }
  }

  /** Incremental expiry across partitions. */
  expire(now: number, budget = 1 << 20): number {
    this.sweepHeld(now);
    let n = 0;
    for (const p of this.partitions) {
      n += p.expire(now, budget);
      p.expireExpectations(now);
    }
    return n;
  }

  get sessionCount(): number {
    let n = 0;
    for (const p of this.partitions) n += p.table.sessionCount;
    return n;
  }
}
