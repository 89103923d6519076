/**
 * property.test.ts — fast-check properties of the whole translator (`Nat.process`):
 *  - random bytes, and valid packets with random mutations, only ever give a drop or packets
 *    that are valid IPv4 (and fully oracle-valid whenever the input was); nothing throws;
 *  - after any sequence of packets, expiries, flushes and rule reloads the session table is
 *    consistent: every live session is found through both five-tuple indices and its mapping
 *    through both endpoint indices, the counts and gauges agree with the rows, every dynamic
 *    mapping's port is marked in use by its allocator, and no two mappings share an external
 *    (address, protocol family, port);
 *  - ICMP errors quoting whole datagrams of any length come out with every quoted checksum
 *    right (RFC 5508 REQ-4).
 * Sequences are generated as small "ops" that pick earlier packets by index, so that replies,
 * errors, hairpins and mutations hit live state and shrink to readable counterexamples.
 */
import test from 'ava';
import fc from 'fast-check';
import { logSeed } from './helpers/seed.js';
import { Nat, type NatOptions } from '../src/nat.js';
import { C } from '../src/counters.js';
import { formatPacket } from '../src/wire/print.js';
import { DROP_REASON_LABELS } from '../src/drop.js';
import { fillIpChecksum, fillL4Checksum, problems } from './helpers/oracle.js';
import { tableFaults } from './helpers/consistency.js';
import { addr, fragment, icmpEcho, icmpError, parse, tcp, udp } from './helpers/packets.js';
import { completePartial, makePartial } from './helpers/partial.js';

const EXT = '198.51.100.100';
const EXT2 = '198.51.100.101';
const HOSTS = ['10.200.0.2', '10.200.0.3', '10.200.0.4', '10.200.1.9'];
const REMOTES = ['203.0.113.10', '203.0.113.20', '192.0.2.1'];
const RULES = 'masquerade all from 10.200.0.0/24 to any';
const FWD = `forward tcp ${EXT}:8080 to 10.200.0.3:80\nforward udp ${EXT}:5353 to 10.200.0.4:53`;
const NUM_RUNS = Number(process.env.MASQ_PROPERTY_RUNS ?? 150);

// ---------------------------------------------------------------------------------------------
// Ops

type Op =
  | { t: 'out'; proto: 0 | 1 | 2; host: number; sport: number; remote: number; dport: number; flags: number; len: number; ttl: number; zero: boolean; frag: number }
  | { t: 'reply'; pick: number; flags: number; len: number }
  | { t: 'error'; pick: number; type: number; code: number; quote: number; fromInside: boolean }
  | { t: 'hairpin'; pick: number; host: number; sport: number }
  | { t: 'mutate'; pick: number; edits: Array<[number, number]>; cut: number; fixIp: boolean; fixL4: boolean }
  | { t: 'raw'; bytes: Uint8Array; fixIp: boolean }
  | { t: 'time'; dt: number }
  | { t: 'flush'; host: number }
  | { t: 'reload'; variant: number };

const arbOp: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({
    t: fc.constant('out' as const), proto: fc.constantFrom(0 as const, 1 as const, 2 as const), host: fc.nat(3), sport: fc.oneof(fc.constantFrom(53, 80, 1024, 40000, 65535), fc.nat(0xffff)),
    remote: fc.nat(2), dport: fc.constantFrom(53, 80, 443, 8080, 5353), flags: fc.constantFrom(0x02, 0x02, 0x02, 0x02, 0x12, 0x10, 0x11, 0x04, 0x18, 0x03),
    len: fc.nat(60), ttl: fc.constantFrom(1, 64, 254, 255), zero: fc.boolean(), frag: fc.constantFrom(0, 0, 0, 8, 16, 24),
  }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('reply' as const), pick: fc.nat(), flags: fc.constantFrom(0x12, 0x10, 0x11, 0x04, 0x02), len: fc.nat(40) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('error' as const), pick: fc.nat(), type: fc.constantFrom(3, 11, 12, 4), code: fc.constantFrom(0, 1, 3, 4), quote: fc.nat(80), fromInside: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('hairpin' as const), pick: fc.nat(), host: fc.nat(3), sport: fc.nat(0xffff) }) },
  { weight: 4, arbitrary: fc.record({
    t: fc.constant('mutate' as const), pick: fc.nat(), edits: fc.array(fc.tuple(fc.nat(80), fc.nat(255)), { maxLength: 4 }), cut: fc.nat(100),
    fixIp: fc.boolean(), fixL4: fc.boolean(),
  }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('raw' as const), bytes: fc.uint8Array({ maxLength: 90 }), fixIp: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('time' as const), dt: fc.constantFrom(1, 1000, 60_000, 240_000, 300_000, 2 * 3600_000 + 240_000) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('flush' as const), host: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('reload' as const), variant: fc.nat(3) }) },
);

const arbConfig: fc.Arbitrary<Partial<NatOptions>> = fc.record({
  partitions: fc.constantFrom(1, 1, 2, 4),
  filtering: fc.constantFrom('endpoint' as const, 'address' as const, 'address-port' as const),
  portMode: fc.constantFrom('random' as const, 'preserve' as const, 'sequential' as const),
  smallRange: fc.boolean(),
  hostSessionLimit: fc.constantFrom(0, 0, 3),
  icmpOnExhaustion: fc.boolean(),
  externals: fc.constantFrom([EXT], [EXT, EXT2]),
  forwards: fc.boolean(),
}).map(({ smallRange, forwards, externals, ...c }) => ({
  ...c,
  externals: [...externals],
  ...(smallRange ? { portLo: 8075, portHi: 8082 } : {}),
  rules: forwards ? `${RULES}\n${FWD}` : RULES,
}));

// ---------------------------------------------------------------------------------------------
// Running ops

interface World {
  nat: Nat;
  now: number;
  /** Packets that went out of the gateway towards the outside (for replies and errors). */
  outside: Uint8Array[];
  /** Packets that went in to inside hosts (for inside errors). */
  inside: Uint8Array[];
  /** Every valid packet sent so far (mutation material). */
  sent: Uint8Array[];
  emitted: number;
}

function pick<T>(xs: T[], n: number): T | undefined {
  return xs.length === 0 ? undefined : xs[n % xs.length];
}

function payload(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
}

/** The reverse packet of one that left towards the outside. */
function reverse(p: Uint8Array, flags: number, len: number): Uint8Array | null {
  const x = parse(p);
  if (x.fragOffset !== 0) return null;
  if (x.proto === 17) return udp({ src: x.dst, dst: x.src, sport: x.dport!, dport: x.sport!, payload: payload(len) });
  if (x.proto === 6) return tcp({ src: x.dst, dst: x.src, sport: x.dport!, dport: x.sport!, flags, ack: (x.seq ?? 0) + 1, payload: payload(len) });
  if (x.proto === 1 && (x.type === 8 || x.type === 0)) return icmpEcho({ src: x.dst, dst: x.src, id: x.icmpId!, reply: x.type === 8, payload: payload(len) });
  return null;
}

/** Process one packet; check what comes out; remember it. */
function send(w: World, pkt: Uint8Array, inputValid: boolean): Uint8Array[] {
  const before = pkt.slice();
  const work = pkt.slice();
  const out = w.nat.process(work, 0, work.length, w.now).map((b) => b.slice());
  for (const o of out) {
    const faults = problems(o);
    const tolerated = inputValid ? [] : faults.filter((f) => !f.startsWith('IP:'));
    if (faults.length > tolerated.length) {
      throw new Error(`emitted packet fails the oracle: ${faults.join('; ')}\n  in:  ${formatPacket(before)}${inputValid ? '' : ' (input not valid)'}\n  out: ${formatPacket(o)}\n  in hex:  ${Buffer.from(before).toString('hex')}\n  out hex: ${Buffer.from(o).toString('hex')}`);
    }
    const dst = (o[16]! << 24 | o[17]! << 16 | o[18]! << 8 | o[19]!) >>> 0;
    (w.nat.rules.isInsideSource(dst) ? w.inside : w.outside).push(o);
  }
  if (inputValid) w.sent.push(before);
  w.emitted += out.length;
  return out;
}

function runOp(w: World, op: Op): void {
  switch (op.t) {
    case 'out': {
      const src = HOSTS[op.host]!;
      const dst = REMOTES[op.remote]!;
      const o = { src, dst, ttl: op.ttl, ipId: (op.sport * 7 + op.len) & 0xffff, payload: payload(op.len) };
      const p = op.proto === 0
        ? udp({ ...o, sport: op.sport, dport: op.dport, zeroChecksum: op.zero })
        : op.proto === 1
          ? tcp({ ...o, sport: op.sport, dport: op.dport, flags: op.flags })
          : icmpEcho({ ...o, id: op.sport });
      if (op.frag > 0 && p.length - 20 > op.frag) {
        const fs = fragment(p, [op.frag]);
        // Later fragments first: they are held until the first arrives.
        for (const f of [...fs.slice(1), fs[0]!]) send(w, f, true);
      } else {
        send(w, p, true);
      }
      return;
    }
    case 'reply': {
      const o = pick(w.outside, op.pick);
      const r = o && reverse(o, op.flags, op.len);
      if (r) send(w, r, true);
      return;
    }
    case 'error': {
      const pool = op.fromInside ? w.inside : w.outside;
      const o = pick(pool, op.pick);
      if (!o) return;
      const x = parse(o);
      const reporter = op.fromInside ? x.dst : op.type === 3 && op.code === 3 ? x.dst : REMOTES[2]!;
      const e = icmpError({ src: reporter, dst: x.src, type: op.type, code: op.code, mtu: op.code === 4 ? 1280 : 0, quote: o, quoteBytes: 28 + op.quote });
      send(w, e, problems(e).length === 0);
      return;
    }
    case 'hairpin': {
      const o = pick(w.outside, op.pick);
      if (!o) return;
      const x = parse(o);
      if (x.fragOffset !== 0 || !w.nat.config.externals.includes(addr(x.src))) return;
      const src = HOSTS[op.host]!;
      const p = x.proto === 17 ? udp({ src, sport: op.sport, dst: x.src, dport: x.sport!, payload: 'hp' })
        : x.proto === 6 ? tcp({ src, sport: op.sport, dst: x.src, dport: x.sport!, flags: 'S' })
          : icmpEcho({ src, id: op.sport, dst: x.src });
      send(w, p, true);
      return;
    }
    case 'mutate': {
      const base = pick(w.sent, op.pick);
      if (!base) return;
      // Half the time keep the whole packet; otherwise cut `cut` bytes off its end.
      const m = base.slice(0, op.cut >= 50 ? base.length : Math.max(1, base.length - op.cut));
      for (const [at, v] of op.edits) if (at < m.length) m[at] = v;
      const frag = m.length >= 20 && ((m[6]! << 8 | m[7]!) & 0x3fff) !== 0;
      if (op.fixL4 && m.length >= 20 && !frag && (m[0]! >> 4) === 4 && (m[0]! & 15) >= 5 && (m[0]! & 15) * 4 + 8 <= m.length) {
        m[2] = m.length >> 8;
        m[3] = m.length & 0xff;
        try {
          fillL4Checksum(m);
        } catch {
          // A header the oracle's filler cannot walk: leave it.
        }
      }
      if (op.fixIp && m.length >= 20 && (m[0]! & 15) >= 5 && (m[0]! & 15) * 4 <= m.length) fillIpChecksum(m);
      send(w, m, problems(m).length === 0);
      return;
    }
    case 'raw': {
      const m = op.bytes.slice();
      if (op.fixIp && m.length >= 20) {
        m[0] = 0x45;
        fillIpChecksum(m);
      }
      send(w, m, false);
      return;
    }
    case 'time':
      w.now += op.dt;
      w.nat.expire(w.now);
      return;
    case 'flush': {
      const h = addr(HOSTS[op.host]!);
      for (const p of w.nat.partitions) p.flush(w.now, (sid) => p.table.sIn(sid) === h);
      return;
    }
    case 'reload': {
      const variants = [RULES, `${RULES}\n${FWD}`, 'masquerade all from 10.200.0.2 to any', `masquerade udp from 10.200.0.0/24 to any\n${FWD}`];
      w.nat.setRules(variants[op.variant]!, w.now);
      return;
    }
  }
}

function newWorld(cfg: Partial<NatOptions>): World {
  const nat = new Nat({ externals: [EXT], rules: RULES, maxSessions: 512, seed: 3, ...cfg });
  return { nat, now: 1000, outside: [], inside: [], sent: [], emitted: 0 };
}

// ---------------------------------------------------------------------------------------------
// Properties

test('random bytes through Nat.process: drops only, never a throw', (t) => {
  const nat = new Nat({ externals: [EXT], rules: RULES, maxSessions: 256, seed: 5, partitions: 2 });
  let now = 0;
  logSeed(t);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), fc.constantFrom(0, 12, 16), fc.nat(HOSTS.length + 2), (raw, fixIp, addrAt, which) => {
      const b = raw.slice();
      if (fixIp && b.length >= 20) {
        b[0] = 0x40 | Math.max(5, b[0]! & 15);
        if ((b[0]! & 15) * 4 > b.length) b[0] = 0x45;
        b[2] = b.length >> 8;
        b[3] = b.length & 0xff;
        // Aim some at our addresses so that classification gets past "for nobody".
        const a = [...HOSTS, EXT, ...REMOTES][which % (HOSTS.length + 1 + REMOTES.length)]!;
        if (addrAt) {
          const v = addr(a);
          b[addrAt] = v >>> 24;
          b[addrAt + 1] = (v >>> 16) & 0xff;
          b[addrAt + 2] = (v >>> 8) & 0xff;
          b[addrAt + 3] = v & 0xff;
        }
        fillIpChecksum(b);
      }
      const out = nat.process(b, 0, b.length, now++);
      for (const o of out) {
        const f = problems(o).filter((x) => x.startsWith('IP:'));
        if (f.length > 0) throw new Error(`${f.join('; ')}: ${formatPacket(o)}`);
      }
      return true;
    }),
    { numRuns: 10_000 },
  );
  t.deepEqual(tableFaults(nat, now), []);
});

test('packet sequences (flows, replies, errors, hairpins, mutations, expiry, flush, reload): valid output, consistent table', (t) => {
  let runs = 0;
  let emitted = 0;
  const dropTally = new Map<string, number>();
  logSeed(t);
  fc.assert(
    fc.property(arbConfig, fc.array(arbOp, { minLength: 20, maxLength: 80 }), (cfg, ops) => {
      const w = newWorld(cfg);
      for (const op of ops) {
        runOp(w, op);
        const f = tableFaults(w.nat, w.now);
        if (f.length > 0) throw new Error(`after ${JSON.stringify(op, (_, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}: ${f.join('\n')}`);
      }
      runs++;
      emitted += w.emitted;
      const k = w.nat.counters();
      DROP_REASON_LABELS.forEach((l, i) => {
        if (k[C.DROPS + i]) dropTally.set(l, (dropTally.get(l) ?? 0) + k[C.DROPS + i]!);
      });
      return true;
    }),
    { numRuns: NUM_RUNS * 2 },
  );
  t.log(`${runs} sequences, ${emitted} packets emitted; drops: ${[...dropTally].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  t.true(emitted > runs, 'sequences do reach translation');
});

test('ICMP errors quoting whole datagrams of any size come out with every quoted checksum right', (t) => {
  const nats = new Map([1, 4].map((n) => [n, new Nat({ externals: [EXT], rules: RULES, maxSessions: 4096, seed: 9, partitions: n })]));
  let now = 0;
  logSeed(t);
  fc.assert(
    fc.property(
      fc.constantFrom(6, 17, 17, 1),
      fc.nat(300),
      fc.nat(0xffff),
      fc.boolean(),
      fc.constantFrom(1, 4),
      fc.nat(20),
      (proto, len, port, zero, partitions, h) => {
        const nat = nats.get(partitions)!;
        // A second per run: sessions expire as fast as runs make them (≤ 300 live), so the
        // shared table never fills however many runs (MASQ_PROPERTY_RUNS) there are.
        now += 1000;
        nat.expire(now);
        const host = `10.200.0.${2 + h}`;
        const src = { src: host, dst: REMOTES[0]!, payload: payload(len) };
        const p = proto === 6 ? tcp({ ...src, sport: port, dport: 80 }) : proto === 17 ? udp({ ...src, sport: port, dport: 53, zeroChecksum: zero }) : icmpEcho({ ...src, id: port });
        const wire = nat.process(p.slice(), 0, p.length, now)[0]!.slice();
        const e = icmpError({ src: REMOTES[0]!, dst: EXT, type: 3, code: 3, quote: wire, quoteBytes: Infinity });
        const got = nat.process(e.slice(), 0, e.length, now + 1).map((x) => x.slice());
        if (got.length !== 1) throw new Error(`error dropped: ${formatPacket(e)}`);
        const f = problems(got[0]!);
        if (f.length > 0) throw new Error(`${f.join('; ')}\n  ${formatPacket(got[0]!)}`);
        // The quote is what the host sent, but for the TTL the gateway added.
        const q = got[0]!.subarray(28);
        const want = p.slice();
        want[8] = want[8]! + 1;
        fillIpChecksum(want);
        return Buffer.from(q).equals(Buffer.from(want));
      },
    ),
    { numRuns: NUM_RUNS * 4 },
  );
  t.pass();
});

test('the consistency check itself notices a broken index, gauge or allocator', (t) => {
  const w = newWorld({});
  for (let i = 0; i < 20; i++) runOp(w, { t: 'out', proto: 0, host: i % 3, sport: 1000 + i, remote: 0, dport: 53, flags: 2, len: 4, ttl: 64, zero: false, frag: 0 });
  t.deepEqual(tableFaults(w.nat, w.now), []);
  const table = w.nat.partitions[0]!.table;
  const c = table.cols;
  const slot = c.ixSessOut.findIndex((id) => id !== 0);
  const saved = c.ixSessOut[slot]!;
  c.ixSessOut[slot] = 0;
  t.true(tableFaults(w.nat, w.now).some((f) => f.includes('outside index')));
  c.ixSessOut[slot] = saved;
  table.counters[C.LIVE_BY_PROTO + 1]!++;
  t.true(tableFaults(w.nat, w.now).some((f) => f.includes('live gauge')));
  table.counters[C.LIVE_BY_PROTO + 1]!--;
  const mid = table.sMap(1);
  w.nat.partitions[0]!.ports.release(c.mExtIdx[mid]!, 17, c.mExtPort[mid]!, w.now);
  t.true(tableFaults(w.nat, w.now).some((f) => f.includes('not marked in use')));
});

// ---------------------------------------------------------------------------------------------
// Bounds: translation touches only the packet it was given

test('a packet at any offset in a larger buffer: only its own bytes change, junk after it is ignored', (t) => {
  const nat = new Nat({ externals: [EXT], rules: RULES, maxSessions: 4096, seed: 4 });
  let now = 0;
  logSeed(t);
  fc.assert(
    fc.property(fc.constantFrom(0, 1, 2), fc.nat(40), fc.nat(13), fc.nat(9), fc.nat(0xffff), (proto, len, lead, trail, port) => {
      now += 1000;
      nat.expire(now);
      const o = { src: HOSTS[0]!, dst: REMOTES[0]!, payload: payload(len) };
      const p = proto === 0 ? udp({ ...o, sport: port, dport: 53 }) : proto === 1 ? tcp({ ...o, sport: port, dport: 80 }) : icmpEcho({ ...o, id: port });
      const buf = new Uint8Array(lead + p.length + trail).fill(0xa5);
      buf.set(p, lead);
      // The captured length includes the trailing junk (link padding); the total length bounds the packet.
      const out = nat.process(buf, lead, p.length + trail, now);
      if (out.length !== 1 || out[0]!.length !== p.length) throw new Error(`emitted ${out.map((x) => x.length).join(',')} bytes`);
      if (out[0]!.byteOffset !== lead) throw new Error('emitted view is not the packet in place');
      for (let i = 0; i < lead; i++) if (buf[i] !== 0xa5) throw new Error(`byte ${i} before the packet changed`);
      for (let i = lead + p.length; i < buf.length; i++) if (buf[i] !== 0xa5) throw new Error(`byte ${i} after the packet changed`);
      const f = problems(out[0]!.slice());
      if (f.length > 0) throw new Error(f.join('; '));
      return true;
    }),
    { numRuns: NUM_RUNS * 2 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------------------------
// Partial checksums (TUN offload, VIRTIO_NET_HDR_F_NEEDS_CSUM)

test('partial checksums: translate(partial) folds the address change in and the completed checksum verifies', (t) => {
  const nat = new Nat({ externals: [EXT], rules: RULES, maxSessions: 4096, seed: 8 });
  const part = nat.partitions[0]!;
  let now = 0;
  // Offload round trip of one packet: partial checksum in, translated, completed as the
  // kernel would, then checked by the oracle.
  const translatePartial = (pkt: Uint8Array, dir: number, what: string): void => {
    makePartial(pkt);
    if (part.translate(pkt, 0, pkt.length, dir, now, true) !== 1) throw new Error(`${what} not forwarded`);
    completePartial(pkt);
    const f = problems(pkt);
    if (f.length > 0) throw new Error(`${what}: ${f.join('; ')}: ${formatPacket(pkt)}`);
  };
  logSeed(t);
  fc.assert(
    fc.property(fc.boolean(), fc.nat(61), fc.nat(0xffff), fc.nat(3), (isTcp, len, port, h) => {
      now += 1000;
      nat.expire(now);
      const o = { src: HOSTS[h % 3]!, dst: REMOTES[0]!, payload: payload(len), sport: port, dport: 443 };
      const out = isTcp ? tcp({ ...o, flags: 'S' }) : udp(o);
      translatePartial(out, 0, 'outbound');
      const x = parse(out);
      const back = isTcp
        ? tcp({ src: x.dst, dst: x.src, sport: x.dport!, dport: x.sport!, flags: 'SA', payload: payload(len) })
        : udp({ src: x.dst, dst: x.src, sport: x.dport!, dport: x.sport!, payload: payload(len) });
      translatePartial(back, 1, 'inbound');
      const y = parse(back);
      return y.dst === o.src && y.dport === port;
    }),
    { numRuns: NUM_RUNS * 2 },
  );
  t.pass();
});
