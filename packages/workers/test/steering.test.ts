/**
 * steering.test.ts — the TUN steering program (steering.ts) computes masq's partition
 * function: run by a small eBPF interpreter (the opcodes the program uses, with the kernel's
 * semantics: 32-bit ALU results zero-extended, LD_ABS/LD_IND in network byte order and ending
 * the program with 0 when out of bounds), it returns for random TCP, UDP and ICMP query packets,
 * both ways, exactly the partition core's Dispatcher gives them; every fragment of a datagram
 * gets one queue; truncated packets end with 0. The kernel's verifier accepting it is the e2e
 * test's part (run-to-completion.test.ts: "eBPF steering" in the start line).
 */
import test from 'ava';
import fc from 'fast-check';
import { Dispatcher, PortPlan, RuleSet, Side, parseRules } from '@masq/core';
import { ownedRuns, steeringProgram, STEERING_MAX_EXTERNALS } from '../src/steering.js';

/** Run `prog` (struct bpf_insn[]) over `pkt` as the kernel runs a socket filter: r0 at exit. */
function run(prog: Uint8Array, pkt: Uint8Array): number {
  const v = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const r = new Array<bigint>(11).fill(0n);
  const M64 = (1n << 64n) - 1n;
  const u32 = (x: bigint): bigint => x & 0xffffffffn;
  const load = (at: number, size: number): bigint | null => {
    if (at < 0 || at + size > pkt.length) return null;
    let x = 0n;
    for (let i = 0; i < size; i++) x = (x << 8n) | BigInt(pkt[at + i]!);
    return x;
  };
  for (let pc = 0, steps = 0; steps < 10_000; steps++) {
    const code = v.getUint8(pc * 8);
    const regs = v.getUint8(pc * 8 + 1);
    const dst = regs & 0x0f;
    const src = regs >> 4;
    const off = v.getInt16(pc * 8 + 2, true);
    const imm = v.getInt32(pc * 8 + 4, true);
    const cls = code & 0x07;
    pc++;
    if (cls === 0x00) {
      // LD ABS / IND
      const size = { 0x00: 4, 0x08: 2, 0x10: 1 }[code & 0x18]!;
      const at = (code & 0xe0) === 0x20 ? imm : Number(u32(r[src]!)) + imm;
      const x = load(at, size);
      if (x === null) return 0;
      r[0] = x;
    } else if (cls === 0x04 || cls === 0x07) {
      const op = code & 0xf0;
      const b64 = cls === 0x07;
      const operand = code & 0x08 ? r[src]! : BigInt.asUintN(64, BigInt(imm));
      const a = b64 ? r[dst]! : u32(r[dst]!);
      const b = b64 ? operand : u32(operand);
      let x: bigint;
      switch (op) {
        case 0x00: x = a + b; break;
        case 0x20: x = a * b; break;
        case 0x40: x = a | b; break;
        case 0x50: x = a & b; break;
        case 0x60: x = a << (b & (b64 ? 63n : 31n)); break;
        case 0x70: x = a >> (b & (b64 ? 63n : 31n)); break;
        case 0x90: x = b === 0n ? a : a % b; break;
        case 0xa0: x = a ^ b; break;
        case 0xb0: x = b; break;
        default: throw new Error(`alu op 0x${op.toString(16)}`);
      }
      r[dst] = b64 ? x & M64 : u32(x);
    } else if (cls === 0x05 || cls === 0x06) {
      const op = code & 0xf0;
      if (op === 0x90) return Number(u32(r[0]!));
      if (op === 0x00) {
        pc += off;
        continue;
      }
      const a = cls === 0x06 ? u32(r[dst]!) : r[dst]!;
      const bv = code & 0x08 ? r[src]! : BigInt.asUintN(64, BigInt(imm));
      const b = cls === 0x06 ? u32(bv) : bv;
      const take = op === 0x10 ? a === b : op === 0x50 ? a !== b : op === 0x20 ? a > b : op === 0xa0 ? a < b : (() => { throw new Error(`jmp op 0x${op.toString(16)}`); })();
      if (take) pc += off;
    } else throw new Error(`class ${cls}`);
  }
  throw new Error('no exit');
}

const EXTERNALS = [0xc6336464, 0xc6336465]; // 198.51.100.100, .101
const RULES = 'masquerade all from 10.0.0.0/8 to any';

function ipv4(proto: number, src: number, dst: number, l4: Uint8Array, fragField = 0): Uint8Array {
  const p = new Uint8Array(20 + l4.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  v.setUint16(6, fragField);
  p[8] = 64;
  p[9] = proto;
  v.setUint32(12, src);
  v.setUint32(16, dst);
  let s = 0;
  for (let i = 0; i < 20; i += 2) s += v.getUint16(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  v.setUint16(10, ~s & 0xffff);
  p.set(l4, 20);
  return p;
}
function ports(sport: number, dport: number, proto: number): Uint8Array {
  const l4 = new Uint8Array(proto === 6 ? 20 : 8);
  const v = new DataView(l4.buffer);
  v.setUint16(0, sport);
  v.setUint16(2, dport);
  if (proto === 6) {
    l4[12] = 0x50;
    l4[13] = 0x02; // SYN
  } else v.setUint16(4, 8);
  return l4;
}
function icmpQuery(type: number, id: number): Uint8Array {
  const l4 = new Uint8Array(8);
  l4[0] = type;
  new DataView(l4.buffer).setUint16(4, id);
  return l4;
}

for (const partitions of [2, 3, 4, 7]) {
  test(`the program gives the dispatcher's partition for TCP, UDP and ICMP queries, both ways (${partitions} workers)`, (t) => {
    const plan = new PortPlan(1024, 65535, partitions);
    const prog = steeringProgram(EXTERNALS, plan, partitions)!;
    const d = new Dispatcher(new RuleSet(parseRules(RULES)), EXTERNALS, plan, partitions);
    let checked = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(6, 17, 1),
        fc.integer({ min: 0x0a000001, max: 0x0affffff }),
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 0x08080808, max: 0x08ffffff }),
        fc.integer({ min: 1, max: 65535 }),
        fc.boolean(),
        fc.constantFrom(8, 0, 13, 14),
        (proto, inside, iport, remote, rport, outbound, itype) => {
          const ext = EXTERNALS[iport % 2]!;
          const l4 = proto === 1 ? icmpQuery(outbound ? (itype === 0 ? 8 : itype === 14 ? 13 : itype) : itype === 8 ? 0 : itype === 13 ? 14 : itype, iport) : outbound ? ports(iport, rport, proto) : ports(rport, iport, proto);
          const pkt = outbound ? ipv4(proto, inside, remote, l4) : ipv4(proto, remote, ext, l4);
          const want = d.classify(pkt, 0, pkt.length, 0, 0, Side.Unknown);
          if (want < 0) return; // dropped (no mapping, a port outside the plan): any queue
          checked++;
          t.is(run(prog, pkt) % partitions, want, `proto ${proto} ${outbound ? 'out' : 'in'} port ${iport}`);
        },
      ),
      { numRuns: 600 },
    );
    t.true(checked > 400, `${checked} packets compared`);
  });
}

test('every fragment of a datagram gets one queue, first or later, whatever its ports', (t) => {
  const plan = new PortPlan(1024, 65535, 4);
  const prog = steeringProgram(EXTERNALS, plan, 4)!;
  fc.assert(
    fc.property(fc.integer({ min: 0x0a000001, max: 0x0affffff }), fc.integer({ min: 0x08080808, max: 0x08ffffff }), fc.integer({ min: 1, max: 65535 }), (src, dst, sport) => {
      const first = ipv4(17, src, dst, ports(sport, 53, 17), 0x2000); // MF, offset 0
      const middle = ipv4(17, src, dst, new Uint8Array(16), 0x2000 | 3);
      const last = ipv4(17, src, dst, new Uint8Array(16), 5);
      const q = run(prog, first) % 4;
      t.is(run(prog, middle) % 4, q);
      t.is(run(prog, last) % 4, q);
    }),
    { numRuns: 200 },
  );
});

test('a truncated packet ends the program with 0 (LD_ABS out of bounds); ICMP errors and other protocols get the address-pair queue', (t) => {
  const plan = new PortPlan(1024, 65535, 4);
  const prog = steeringProgram(EXTERNALS, plan, 4)!;
  t.is(run(prog, new Uint8Array([0x45, 0, 0, 8, 0, 0, 0, 0])), 0);
  const tcpNoPorts = ipv4(6, 0x0a000002, 0x08080808, new Uint8Array(0));
  t.is(run(prog, tcpNoPorts), 0, 'TCP without its ports: out of bounds');
  const err = ipv4(1, 0x08080808, EXTERNALS[0]!, new Uint8Array([3, 3, 0, 0, 0, 0, 0, 0]));
  const gre = ipv4(47, 0x08080808, EXTERNALS[0]!, new Uint8Array(8));
  t.is(run(prog, err), run(prog, gre), 'same pair, same queue');
});

test('ownedRuns lists the plan exactly; no program for one worker or too many external addresses', (t) => {
  const plan = new PortPlan(600, 2000, 3);
  const runs = ownedRuns(plan);
  let n = 0;
  for (const [lo, hi, o] of runs) {
    for (let p = lo; p <= hi; p++) t.is(plan.ownerOf[p], o);
    n += hi - lo + 1;
  }
  t.is(n, 2000 - 600 + 1);
  t.is(runs.length, 6, 'three partitions, the ports below 1024 and above split apart');
  t.is(steeringProgram(EXTERNALS, plan, 1), null);
  t.is(steeringProgram(Array.from({ length: STEERING_MAX_EXTERNALS + 1 }, (_, i) => 0xc6336400 + i), plan, 3), null);
  t.not(steeringProgram(Array.from({ length: STEERING_MAX_EXTERNALS }, (_, i) => 0xc6336400 + i), plan, 3), null);
});
