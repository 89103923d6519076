/**
 * fuzz.ts — the translator's fuzz target: a seeded, replayable stream of hostile and ordinary
 * packets through `Nat.process`, with the whole table checked every few thousand packets.
 *
 * Owns: the packet generators, the per-packet checks and the run loop. `runFuzz(opts)` is
 * used by `pnpm fuzz` (main.ts, any count) and by the test suite (test/fuzz.test.ts, a bounded
 * count); it never throws for a finding, it reports it.
 *
 * Contract:
 *  - Deterministic: everything is drawn from mulberry32 seeded per epoch from (seed, epoch);
 *    a finding names its seed and epoch, and `--seed S --epoch E` replays that epoch alone.
 *  - An epoch is a fresh `Nat` with a random configuration (partitions 1/2/4, the three
 *    filtering modes, the three port modes, full or tiny port ranges, host session and port
 *    limits, 1–2 external addresses, port forwards, accept rules, small tables, ICMP 3/13 on
 *    exhaustion, TTL compensation on or off, few fragment holding places) and a clock that
 *    moves on, jumps (to a session's deadline, past timers) and drives `expire()` with small
 *    and large budgets.
 *  - Packets: new flows and their continuations (TCP with every flag mix, UDP with and
 *    without checksum, ICMP queries), replies, unsolicited inbound, ICMP errors about
 *    emitted packets both ways with every quote length, hairpins, forwards, accept-rule
 *    traffic, fragments in order, reversed, shuffled, interleaved with other traffic,
 *    duplicated or missing; mutations of sent packets (one byte, truncation, lying IP total
 *    length / IHL / UDP length / TCP data offset / quoted header fields, with or without
 *    repaired checksums) and random bytes; batches translated after a `prefetch()` whose
 *    hints have gone stale (bytes replaced, sessions expired in between).
 *  - Checks, per emitted packet: the independent checksum oracle (test/helpers/oracle.ts)
 *    holds for every packet when the input was valid, and for the IP header always; the
 *    mapping that translated a TCP/UDP packet names exactly the endpoints the packet shows;
 *    every later fragment goes to the same addresses as its first fragment did. Every
 *    `checkEvery` packets, after a full expiry: the whole-table check
 *    (test/helpers/consistency.ts). Any exception is a finding.
 */
import { Nat, type NatOptions } from '../src/nat.js';
import { C } from '../src/counters.js';
import { DROP_REASON_LABELS } from '../src/drop.js';
import { formatPacket } from '../src/wire/print.js';
import { Direction } from '../src/verdict.js';
import { fillIpChecksum, fillL4Checksum, problems } from '../test/helpers/oracle.js';
import { addr, fragment, icmpEcho, icmpError, tcp, udp } from '../test/helpers/packets.js';
import { tableFaults } from '../test/helpers/consistency.js';

export interface FuzzOptions {
  seed: number;
  /** Packets to run in total (over as many epochs as that takes). */
  packets: number;
  /** Packets per epoch (one configuration, one Nat). */
  epochPackets?: number;
  /** Whole-table check every this many packets. */
  checkEvery?: number;
  /** Start at this epoch (replay). */
  firstEpoch?: number;
  /** Keep the details of at most this many findings. */
  maxFindings?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface Finding {
  seed: number;
  epoch: number;
  /** Packet index within the epoch. */
  packet: number;
  kind: string;
  detail: string;
  config: string;
  replay: string;
}

export interface FuzzResult {
  seed: number;
  packets: number;
  emitted: number;
  epochs: number;
  tableChecks: number;
  ms: number;
  findings: Finding[];
  findingCount: number;
  drops: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// Randomness

/** mulberry32. */
export class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let x = this.a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** The epoch's seed from the run's seed (fmix32 of both). */
export function epochSeed(seed: number, epoch: number): number {
  let h = (seed ^ Math.imul(epoch + 1, 0x9e3779b1)) | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0 || 1;
}

// ---------------------------------------------------------------------------------------------
// The world

const EXTS = ['198.51.100.100', '198.51.100.101'];
/** The last one is not covered by the masquerade rules. */
const INSIDE = ['10.200.0.2', '10.200.0.3', '10.200.0.4', '10.200.0.5', '10.200.0.77', '10.200.1.9'];
const REMOTES = ['203.0.113.10', '203.0.113.20', '192.0.2.1', '198.51.100.7'];
const ACCEPTED = '10.9.0.5';
const SPORTS = [53, 80, 1024, 4000, 4001, 40000, 65535];
const DPORTS = [53, 80, 443, 5353, 8080, 3478];
const TCP_FLAGS = [0x02, 0x02, 0x02, 0x12, 0x10, 0x10, 0x18, 0x11, 0x01, 0x04, 0x14, 0x03, 0x00, 0xff];
const TIMER_JUMPS = [2_000, 2_001, 60_000, 119_999, 240_000, 300_000, 7_440_000];
const INSIDE_NET = addr('10.200.0.0') >>> 8;

interface Flow {
  proto: number;
  host: string;
  sport: number;
  remote: string;
  dport: number;
}

export interface FuzzConfig {
  options: NatOptions;
  text: string;
}

export function randomConfig(r: Rng): FuzzConfig {
  const externals = r.chance(0.5) ? [EXTS[0]!] : [...EXTS];
  const ext = externals[0]!;
  const rules: string[] = [];
  if (r.chance(0.3)) rules.push(`accept all from 10.200.0.0/24 to ${ACCEPTED}/32`);
  if (r.chance(0.1)) rules.push('masquerade all from 198.51.100.96/28 to any');
  rules.push(r.pick(['masquerade all from 10.200.0.0/24 to any', 'masquerade all from 10.200.0.0/24 to any', 'masquerade udp from 10.200.0.0/24 to any\nmasquerade tcp from 10.200.0.0/25 to any']));
  if (r.chance(0.4)) rules.push(`forward tcp ${ext}:8080 to 10.200.0.3:80`, `forward udp ${externals[externals.length - 1]}:5353 to 10.200.0.4:53`);
  const range = r.pick([null, null, [8075, 8082], [40000, 40015], [1000, 1100]] as const);
  const opts: NatOptions = {
    externals,
    rules: rules.join('\n'),
    partitions: r.pick([1, 1, 2, 4]),
    filtering: r.pick(['endpoint', 'address', 'address-port'] as const),
    portMode: r.pick(['random', 'preserve', 'sequential'] as const),
    hostSessionLimit: r.pick([0, 0, 3, 20]),
    hostPortLimit: r.pick([0, 0, 2, 10]),
    maxSessions: r.pick([64, 512, 4096]),
    icmpOnExhaustion: r.chance(0.5),
    hopCompensation: r.chance(0.7),
    fragmentHold: r.pick([256, 8]),
    seed: r.int(0xffffffff) + 1,
    ...(range ? { portLo: range[0], portHi: range[1] } : {}),
  };
  const { rules: _r, ...rest } = opts;
  void _r;
  return { options: opts, text: `${JSON.stringify(rest)} rules: ${JSON.stringify(opts.rules)}` };
}

class Ring<T> {
  private items: T[] = [];
  private at = 0;
  constructor(private readonly cap: number) {}
  push(x: T): void {
    if (this.items.length < this.cap) this.items.push(x);
    else {
      this.items[this.at] = x;
      this.at = (this.at + 1) % this.cap;
    }
  }
  pick(r: Rng): T | undefined {
    return this.items.length === 0 ? undefined : this.items[r.int(this.items.length)];
  }
  get size(): number {
    return this.items.length;
  }
}

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
function isFragment(b: Uint8Array): boolean {
  return (u16(b, 6) & 0x3fff) !== 0;
}
/** Hex of a packet, cut after 96 bytes (a finding's report; the replay gives the rest). */
function hexOf(b: Uint8Array): string {
  const h = Buffer.from(b.subarray(0, 96)).toString('hex');
  return b.length > 96 ? `${h}…` : h;
}

/** One epoch: a Nat, its clock, what went through it. */
class Epoch {
  readonly nat: Nat;
  now: number;
  readonly out = new Ring<Uint8Array>(256);
  readonly inside = new Ring<Uint8Array>(128);
  readonly sent = new Ring<Uint8Array>(256);
  readonly flows = new Ring<Flow>(128);
  readonly pending: Uint8Array[] = [];
  /** Later fragments' expected addresses: input (src,dst,proto,id) → output src,dst and when. */
  private readonly fragSeen = new Map<string, { src: number; dst: number; at: number }>();
  /** The last few inputs and their times, for a finding's report (formatted only then). */
  private readonly history: Array<[number, Uint8Array]> = [];
  emitted = 0;
  readonly extSet: Set<number>;
  private readonly batchBuf = new Uint8Array(8 * 2048);

  constructor(readonly r: Rng, readonly cfg: FuzzConfig) {
    this.nat = new Nat(cfg.options);
    this.now = 1000 + r.int(100_000);
    this.extSet = new Set(this.nat.config.externals);
  }

  // ------------------------------------------------------------------- generators

  payload(): Uint8Array {
    const r = this.r;
    const n = r.chance(0.05) ? 200 + r.int(1400) : r.int(48);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 0xff;
    return b;
  }

  ipId(): number {
    return this.r.chance(0.3) ? this.r.int(8) : this.r.int(0x10000);
  }

  flowPacket(f: Flow, flags: number): Uint8Array {
    const r = this.r;
    const o = { src: f.host, dst: f.remote, ttl: r.pick([1, 64, 64, 254, 255]), ipId: this.ipId(), payload: this.payload(), df: r.chance(0.2) };
    if (f.proto === 6) return tcp({ ...o, sport: f.sport, dport: f.dport, flags, seq: r.int(0xffffffff) });
    if (f.proto === 17) return udp({ ...o, sport: f.sport, dport: f.dport, zeroChecksum: r.chance(0.1) });
    return icmpEcho({ ...o, id: f.sport, seq: r.int(0x10000), type: r.chance(0.9) ? 8 : r.pick([0, 13, 14]) });
  }

  newFlow(): Uint8Array {
    const r = this.r;
    const f: Flow = {
      proto: r.pick([6, 6, 17, 17, 1]),
      host: r.pick(INSIDE),
      sport: r.chance(0.5) ? r.pick(SPORTS) : r.int(0x10000),
      remote: r.chance(0.05) ? r.pick(this.cfg.options.externals as string[]) : r.chance(0.05) ? ACCEPTED : r.pick(REMOTES),
      dport: r.pick(DPORTS),
    };
    this.flows.push(f);
    return this.flowPacket(f, r.chance(0.85) ? 0x02 : r.pick(TCP_FLAGS));
  }

  continueFlow(): Uint8Array | null {
    const f = this.flows.pick(this.r);
    return f ? this.flowPacket(f, this.r.pick(TCP_FLAGS)) : null;
  }

  /** The reverse of a packet that left towards the outside. */
  reply(): Uint8Array | null {
    const r = this.r;
    const o = this.out.pick(r);
    if (!o || isFragment(o)) return null;
    const hl = (o[0]! & 15) * 4;
    const src = fmt(u32(o, 16));
    const dst = fmt(u32(o, 12));
    const p = o[9]!;
    const base = { src, dst, ttl: r.pick([1, 60, 255]), ipId: this.ipId(), payload: this.payload() };
    if (p === 17) return udp({ ...base, sport: u16(o, hl + 2), dport: u16(o, hl), zeroChecksum: r.chance(0.1) });
    if (p === 6) return tcp({ ...base, sport: u16(o, hl + 2), dport: u16(o, hl), flags: r.pick([0x12, 0x12, 0x10, 0x18, 0x11, 0x04, 0x02, 0x01]), seq: r.int(0xffffffff), ack: r.int(0xffffffff) });
    if (p === 1 && o.length >= hl + 8) return icmpEcho({ ...base, id: u16(o, hl + 4), reply: o[hl] === 8 || r.chance(0.2), seq: r.int(0x10000) });
    return null;
  }

  /** From a remote to an external address: a known external port (another remote), a forward, or any. */
  unsolicited(): Uint8Array {
    const r = this.r;
    const ext = r.pick(this.cfg.options.externals as string[]);
    const o = this.out.pick(r);
    const hl = o ? (o[0]! & 15) * 4 : 0;
    const known = o && !isFragment(o) && o.length >= hl + 8 ? (o[9] === 1 ? u16(o, hl + 4) : u16(o, hl)) : r.int(0x10000);
    const port = r.chance(0.6) ? known : r.pick([8080, 5353, 8075, 8082, 40000, 1000, r.int(0x10000)]);
    const src = r.pick(REMOTES);
    const base = { src, dst: o && r.chance(0.5) ? fmt(u32(o, 12)) : ext, ttl: 64, ipId: this.ipId(), payload: this.payload() };
    const p = r.pick([6, 17, 1]);
    if (p === 6) return tcp({ ...base, sport: r.pick(DPORTS), dport: port, flags: r.pick(TCP_FLAGS) });
    if (p === 17) return udp({ ...base, sport: r.pick(DPORTS), dport: port });
    return icmpEcho({ ...base, id: port, reply: r.chance(0.7), type: r.chance(0.1) ? r.pick([13, 14, 5, 9]) : undefined });
  }

  /** An ICMP error about an emitted packet: from outside about one we sent, or from inside about one we delivered. */
  error(): Uint8Array | null {
    const r = this.r;
    const fromInside = r.chance(0.35);
    const q = (fromInside ? this.inside : this.out).pick(r);
    if (!q) return null;
    const qhl = (q[0]! & 15) * 4;
    const reporter = fromInside ? (r.chance(0.8) ? fmt(u32(q, 16)) : '10.200.0.1') : r.chance(0.5) ? fmt(u32(q, 16)) : r.pick(REMOTES);
    const quoteBytes = r.pick([qhl + 8, qhl + 8, qhl + 18, qhl + 20, qhl + 4, Infinity, qhl + r.int(60)]);
    const type = r.pick([3, 3, 11, 12, 4]);
    const code = type === 3 ? r.pick([0, 1, 3, 4, 13]) : 0;
    return icmpError({ src: reporter, dst: fmt(u32(q, 12)), type, code, mtu: code === 4 ? 1280 : 0, quote: q, quoteBytes, ttl: 64 });
  }

  hairpin(): Uint8Array | null {
    const r = this.r;
    const o = this.out.pick(r);
    if (!o || isFragment(o) || !this.extSet.has(u32(o, 12))) return null;
    const hl = (o[0]! & 15) * 4;
    const host = r.pick(INSIDE);
    const base = { src: host, dst: fmt(u32(o, 12)), ttl: 64, ipId: this.ipId(), payload: this.payload() };
    const p = o[9]!;
    if (p === 17) return udp({ ...base, sport: r.pick(SPORTS), dport: u16(o, hl) });
    if (p === 6) return tcp({ ...base, sport: r.pick(SPORTS), dport: u16(o, hl), flags: r.pick([0x02, 0x02, 0x10, 0x12]) });
    return icmpEcho({ ...base, id: u16(o, hl + 4) });
  }

  /** Traffic of a port forward, from outside or the server's answers. */
  forward(): Uint8Array {
    const r = this.r;
    const exts = this.cfg.options.externals as string[];
    if (r.chance(0.5)) {
      return r.chance(0.5)
        ? tcp({ src: r.pick(REMOTES), dst: exts[0]!, sport: 33000 + r.int(4), dport: 8080, flags: r.pick([0x02, 0x02, 0x10, 0x11]), ipId: this.ipId(), payload: this.payload() })
        : udp({ src: r.pick(REMOTES), dst: exts[exts.length - 1]!, sport: 33000 + r.int(4), dport: 5353, ipId: this.ipId(), payload: this.payload() });
    }
    return r.chance(0.5)
      ? tcp({ src: '10.200.0.3', dst: r.pick(REMOTES), sport: 80, dport: 33000 + r.int(4), flags: r.pick([0x12, 0x10, 0x11]), ipId: this.ipId(), payload: this.payload() })
      : udp({ src: '10.200.0.4', dst: r.pick(REMOTES), sport: 53, dport: 33000 + r.int(4), ipId: this.ipId(), payload: this.payload() });
  }

  /** A sent packet changed: one byte, a cut, or a lying length field. */
  mutate(): Uint8Array | null {
    const r = this.r;
    const base = this.sent.pick(r);
    if (!base) return null;
    let m = base.slice();
    const hl = (m[0]! & 15) * 4;
    const p = m[9]!;
    switch (r.int(9)) {
      case 0:
        m[r.int(m.length)] = r.int(256);
        break;
      case 1:
        m = m.slice(0, r.int(m.length));
        break;
      case 2:
        put16(m, 2, r.chance(0.5) ? u16(m, 2) + 1 + r.int(64) : r.int(u16(m, 2)));
        break;
      case 3:
        m[0] = 0x40 | r.int(16);
        break;
      case 4:
        if (p === 17 && m.length >= hl + 8) put16(m, hl + 4, r.pick([0, 7, 8, u16(m, hl + 4) + 1, u16(m, hl + 4) - 1, 0xffff]));
        else if (p === 6 && m.length >= hl + 13) m[hl + 12] = (r.int(16) << 4) | (m[hl + 12]! & 15);
        else m[r.int(m.length)] = r.int(256);
        break;
      case 5: {
        // Quoted header fields of an ICMP error (or the L4 header): length, IHL, addresses, ports.
        const at = hl + 8 + r.pick([0, 2, 3, 9, 12, 15, 16, 19, 20, 21, 22, 23, 24, 25, 26, 27]);
        if (at < m.length) m[at] = r.int(256);
        break;
      }
      case 6:
        m[6] = r.int(256);
        m[7] = r.int(256);
        break;
      case 7:
        m[hl + r.int(Math.max(1, m.length - hl))] = r.int(256);
        break;
      default:
        m[9] = r.pick([0, 1, 2, 6, 17, 47, 50, 99, 132]);
        break;
    }
    const valid = m.length >= 20 && (m[0]! & 15) >= 5 && (m[0]! & 15) * 4 <= m.length;
    if (valid && r.chance(0.5) && !isFragment(m) && (m[0]! & 15) * 4 + 8 <= m.length && u16(m, 2) <= m.length && r.chance(0.5)) {
      try {
        fillL4Checksum(m.subarray(0, Math.max(u16(m, 2), (m[0]! & 15) * 4)));
      } catch {
        // headers the filler cannot walk: leave the checksum as it is
      }
    }
    if (valid && r.chance(0.8)) fillIpChecksum(m);
    return m;
  }

  randomBytes(): Uint8Array {
    const r = this.r;
    const b = r.bytes(r.int(100));
    if (b.length >= 20 && r.chance(0.7)) {
      b[0] = 0x45;
      put16(b, 2, b.length);
      b[6] = r.chance(0.8) ? 0 : b[6]!;
      b[9] = r.pick([1, 6, 17, b[9]!]);
      const a = addr(r.pick([...INSIDE, ...EXTS, ...REMOTES]));
      const at = r.pick([12, 16]);
      b[at] = a >>> 24;
      b[at + 1] = (a >>> 16) & 0xff;
      b[at + 2] = (a >>> 8) & 0xff;
      b[at + 3] = a & 0xff;
      fillIpChecksum(b);
    }
    return b;
  }

  /** Fragments of a flow packet or a reply, queued in some order (some lost, some twice). */
  fragments(): Uint8Array | null {
    const r = this.r;
    let whole: Uint8Array | null = r.chance(0.5) ? this.reply() : r.chance(0.3) ? this.hairpin() : r.chance(0.5) ? this.continueFlow() : this.newFlow();
    if (!whole) return null;
    if (whole.length < 60) {
      // grow the payload so that it can be cut
      const big = whole[9] === 17 ? growUdp(whole, 64 + r.int(300)) : null;
      if (!big) return null;
      whole = big;
    }
    const hl = (whole[0]! & 15) * 4;
    const body = whole.length - hl;
    const sizes: number[] = [];
    for (let left = body; left > 8; ) {
      const s = 8 * (1 + r.int(Math.max(1, Math.min(64, Math.floor(left / 8) - 1))));
      sizes.push(s);
      left -= s;
    }
    let frags = fragment(whole, sizes);
    if (frags.length < 2) return null;
    const order = r.int(5);
    if (order === 1) frags = [...frags].reverse();
    else if (order === 2) frags = shuffle(r, frags);
    else if (order === 3) frags.splice(1 + r.int(frags.length - 1), 1);
    else if (order === 4) frags.push(frags[r.int(frags.length)]!.slice());
    const first = frags.shift()!;
    // The rest arrive later, interleaved with other traffic.
    for (const f of frags) this.pending.splice(r.int(this.pending.length + 1), 0, f);
    return first;
  }

  /** One step's input. */
  generate(): Uint8Array | null {
    const r = this.r;
    if (this.pending.length > 0 && r.chance(0.4)) return this.pending.shift()!;
    const k = r.int(100);
    if (k < 18) return this.newFlow();
    if (k < 30) return this.continueFlow();
    if (k < 46) return this.reply();
    if (k < 52) return this.unsolicited();
    if (k < 58) return this.error();
    if (k < 63) return this.hairpin();
    if (k < 67) return this.forward();
    if (k < 72) return this.fragments();
    if (k < 90) return this.mutate();
    return this.randomBytes();
  }

  // ------------------------------------------------------------------- running

  /** Process one packet at b[off..off+len); returns findings (empty: all well). */
  send(b: Uint8Array, off: number, len: number): string[] {
    const input = b.slice(off, off + len);
    const inputValid = problems(input).length === 0;
    const faults: string[] = [];
    this.history.push([this.now, input]);
    if (this.history.length > 12) this.history.shift();
    const out = this.nat.process(b, off, len, this.now).map((x) => x.slice());
    if (inputValid) this.sent.push(input);
    for (const o of out) {
      const f = problems(o);
      const bad = inputValid ? f : f.filter((x) => x.startsWith('IP:'));
      if (bad.length > 0) faults.push(`oracle: ${bad.join('; ')}\n    out: ${formatPacket(o)} ${hexOf(o)}`);
      faults.push(...this.checkMapping(input, o), ...this.checkFragment(input, o));
      const dst = u32(o, 16);
      if (dst >>> 8 === INSIDE_NET) this.inside.push(o);
      else this.out.push(o);
    }
    this.emitted += out.length;
    return faults;
  }

  /** The last inputs, one line each. */
  recent(): string {
    return this.history.map(([t, p]) => `${t} ms ${formatPacket(p)} ${hexOf(p)}`).join('\n    ');
  }

  /** A translated TCP/UDP packet shows the endpoints of the mapping that translated it. */
  private checkMapping(input: Uint8Array, o: Uint8Array): string[] {
    const p = o[9]!;
    if ((p !== 6 && p !== 17) || isFragment(o) || input.length < 20 || input[9] !== p) return [];
    const ihl = (input[0]! & 15) * 4;
    const ohl = (o[0]! & 15) * 4;
    if (o.length < ohl + 4 || input.length < ihl + 4) return [];
    const out: string[] = [];
    const inSrc = u32(input, 12);
    const outSrc = u32(o, 12);
    const inDst = u32(input, 16);
    const outDst = u32(o, 16);
    if (outSrc !== inSrc && this.extSet.has(outSrc)) {
      const m = this.mappingIn(p, outSrc, u16(o, ohl));
      if (!m || m.inA !== inSrc || m.inP !== u16(input, ihl)) out.push(`mapping: ${fmt(inSrc)}:${u16(input, ihl)} went out as ${fmt(outSrc)}:${u16(o, ohl)}, whose mapping is ${m ? `${fmt(m.inA)}:${m.inP}` : 'none'}`);
    }
    if (outDst !== inDst && this.extSet.has(inDst)) {
      const m = this.mappingIn(p, inDst, u16(input, ihl + 2));
      if (!m || m.inA !== outDst || m.inP !== u16(o, ohl + 2)) out.push(`mapping: ${fmt(inDst)}:${u16(input, ihl + 2)} came in to ${fmt(outDst)}:${u16(o, ohl + 2)}, whose mapping is ${m ? `${fmt(m.inA)}:${m.inP}` : 'none'}`);
    }
    return out;
  }

  private mappingIn(p: number, ext: number, port: number): { inA: number; inP: number } | null {
    for (const part of this.nat.partitions) {
      const t = part.table;
      const mid = t.findMappingIn(p, ext, port);
      if (mid !== 0) return { inA: t.cols.mIn[mid]!, inP: t.cols.mInPort[mid]! };
    }
    return null;
  }

  /** Every fragment of a datagram leaves with the addresses its first fragment was given. */
  private checkFragment(input: Uint8Array, o: Uint8Array): string[] {
    const ff = u16(o, 6);
    if ((ff & 0x3fff) === 0) return [];
    const k = `${u32(input, 12)}/${u32(input, 16)}/${input[9]}/${u16(input, 4)}`;
    const src = u32(o, 12);
    const dst = u32(o, 16);
    if ((ff & 0x1fff) === 0) {
      this.fragSeen.set(k, { src, dst, at: this.now });
      return [];
    }
    const seen = this.fragSeen.get(k);
    if (!seen || this.now - seen.at >= this.nat.config.timeouts.fragment) return [];
    if (seen.src !== src || seen.dst !== dst) return [`fragment: a later fragment of ${fmt(u32(input, 12))} → ${fmt(u32(input, 16))} id ${u16(input, 4)} left as ${fmt(src)} → ${fmt(dst)}, its first fragment as ${fmt(seen.src)} → ${fmt(seen.dst)} (${this.now - seen.at} ms before)`];
    return [];
  }

  /** The clock: small steps, now and then a jump past a timer or to a session's deadline. */
  tick(): void {
    const r = this.r;
    this.now += r.chance(0.9) ? r.int(3) : r.int(400);
    if (r.chance(1 / 1500)) this.now += r.pick(TIMER_JUMPS);
    if (r.chance(1 / 800)) this.toDeadline();
  }

  /** Move the clock to (just around) the deadline of some live session. */
  private toDeadline(): void {
    const r = this.r;
    const part = r.pick(this.nat.partitions);
    const t = part.table;
    for (let k = 0; k < 8 && t.sessionHigh > 1; k++) {
      const sid = 1 + r.int(t.sessionHigh - 1);
      if (!t.isLive(sid)) continue;
      this.now = Math.max(this.now, t.sExpires(sid) - 1 + r.int(3));
      return;
    }
  }

  /**
   * A batch as the gateway translates it: the packets laid out in one buffer, prefetched by
   * every partition, then some bytes replaced or the clock moved and sessions expired (the
   * hints go stale), then translated in order.
   */
  batch(): string[] {
    const r = this.r;
    const n = 2 + r.int(7);
    const b = this.batchBuf;
    const offs = new Uint32Array(n);
    const dirs = new Uint8Array(n);
    const lens: number[] = [];
    for (let k = 0; k < n; k++) {
      let p = this.generate();
      while (!p || p.length > 1900) p = this.newFlow();
      offs[k] = k * 2048 + r.int(4);
      b.set(p, offs[k]!);
      lens.push(p.length);
      dirs[k] = p.length >= 20 && this.extSet.has(u32(p, 16)) ? Direction.In : Direction.Out;
    }
    for (const part of this.nat.partitions) part.prefetch(b, offs, dirs, n);
    if (r.chance(0.5)) {
      // Stale hints: replace some packets after the prefetch.
      for (let k = 0; k < n; k++) {
        if (!r.chance(0.3)) continue;
        let p = r.chance(0.5) ? this.continueFlow() : this.reply();
        if (!p || p.length > 1900) continue;
        if (r.chance(0.3) && p.length >= 20) p[9] = p[9] === 6 ? 17 : 6; // same addresses, other protocol
        b.set(p, offs[k]!);
        lens[k] = p.length;
      }
    }
    if (r.chance(0.2)) {
      this.toDeadline();
      this.nat.expire(this.now, r.pick([16, 1 << 20]));
    }
    const faults: string[] = [];
    for (let k = 0; k < n; k++) faults.push(...this.send(b, offs[k]!, lens[k]!));
    return faults;
  }
}

function fmt(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

function shuffle<T>(r: Rng, xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** A copy of UDP datagram `p` with `n` more payload bytes and fresh checksums. */
function growUdp(p: Uint8Array, n: number): Uint8Array {
  const hl = (p[0]! & 15) * 4;
  const g = new Uint8Array(p.length + n);
  g.set(p);
  for (let i = p.length; i < g.length; i++) g[i] = i & 0xff;
  put16(g, 2, g.length);
  put16(g, hl + 4, g.length - hl);
  const zero = u16(p, hl + 6) === 0;
  if (!zero) fillL4Checksum(g);
  fillIpChecksum(g);
  return g;
}

// ---------------------------------------------------------------------------------------------
// The run

export function runFuzz(opts: FuzzOptions): FuzzResult {
  const epochPackets = opts.epochPackets ?? 20_000;
  const checkEvery = opts.checkEvery ?? 4096;
  const maxFindings = opts.maxFindings ?? 20;
  const log = opts.log ?? (() => {});
  const findings: Finding[] = [];
  const kinds = new Set<string>();
  let findingCount = 0;
  let total = 0;
  let emitted = 0;
  let tableChecks = 0;
  let epochs = 0;
  const drops = new Float64Array(DROP_REASON_LABELS.length);
  const t0 = Date.now();
  let nextLog = 1_000_000;
  for (let e = opts.firstEpoch ?? 0; total < opts.packets; e++) {
    const seed = epochSeed(opts.seed, e);
    const r = new Rng(seed);
    const cfg = randomConfig(r);
    const ep = new Epoch(r, cfg);
    epochs++;
    const n = Math.min(epochPackets, opts.packets - total);
    let i = 0;
    let sinceCheck = 0;
    let sinceExpire = 0;
    let expireEvery = 64 + r.int(2048);
    const report = (kind: string, detail: string): void => {
      findingCount++;
      const head = kind.split('\n')[0]!.replace(/0x[0-9a-f]+|[0-9]+/g, 'N');
      if (findings.length < maxFindings && !kinds.has(head)) {
        kinds.add(head);
        findings.push({
          seed: opts.seed,
          epoch: e,
          packet: i,
          kind,
          detail: `${detail}\n  last inputs:\n    ${ep.recent()}`,
          config: cfg.text,
          replay: `pnpm fuzz --seed=${opts.seed} --epoch=${e} --epoch-packets=${epochPackets} --packets=${i + 1}`,
        });
      }
    };
    try {
      while (i < n) {
        ep.tick();
        let faults: string[];
        if (r.chance(0.02)) {
          faults = ep.batch();
        } else {
          const p = ep.generate();
          if (!p) continue;
          faults = ep.send(p, 0, p.length);
        }
        i++;
        if (faults.length > 0) {
          report(faults[0]!, faults.join('\n'));
          break;
        }
        if (++sinceExpire >= expireEvery) {
          sinceExpire = 0;
          expireEvery = 64 + r.int(2048);
          ep.nat.expire(ep.now, r.pick([8, 64, 1024, 1 << 20]));
        }
        if (++sinceCheck >= checkEvery || i === n) {
          sinceCheck = 0;
          ep.nat.expire(ep.now);
          tableChecks++;
          const f = tableFaults(ep.nat, ep.now, { expired: true, limits: true });
          if (f.length > 0) {
            report(`table: ${f[0]}`, f.slice(0, 10).join('\n'));
            break;
          }
        }
      }
    } catch (err) {
      report(`exception: ${(err as Error).message.split('\n')[0]}`, (err as Error).stack ?? String(err));
    }
    total += i;
    emitted += ep.emitted;
    const k = ep.nat.counters();
    for (let d = 0; d < drops.length; d++) drops[d]! += k[C.DROPS + d]!;
    if (total >= nextLog) {
      log(`${total} packets, ${epochs} epochs, ${findingCount} findings, ${Math.round((total / (Date.now() - t0)) * 1000)} packets/s`);
      nextLog += 1_000_000;
    }
  }
  const dropRec: Record<string, number> = {};
  DROP_REASON_LABELS.forEach((l, d) => {
    if (drops[d]) dropRec[l] = drops[d]!;
  });
  return { seed: opts.seed, packets: total, emitted, epochs, tableChecks, ms: Date.now() - t0, findings, findingCount, drops: dropRec };
}
