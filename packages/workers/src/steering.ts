/**
 * steering.ts — masq's partition function as a TUN steering program (eBPF), so that the kernel
 * puts each packet on the queue of the worker that owns its flow from the flow's first packet
 * on (run to completion: worker p reads queue p).
 *
 * Owns: `steeringProgram(externals, plan, partitions)`, the program's instructions (struct
 * bpf_insn, 8 bytes each, little-endian), for TUNSETSTEERINGEBPF (a BPF_PROG_TYPE_SOCKET_FILTER
 * program; the kernel takes its return value modulo the number of queues). Without it the
 * kernel's automatic flow steering learns a flow's queue from the worker's writes, so a flow's
 * first packets land on a queue at random and are handed over by ring (measured: ~15 % of the
 * packets of short TCP connections with two workers).
 *
 * What it computes, for an IPv4 packet (skb data from the IP header; LD_ABS/LD_IND loads,
 * which end the program with 0 when out of bounds):
 *  - a fragment (MF set or an offset): a hash of (source, destination), the same for every
 *    fragment of a datagram (the worker that reads them holds them for their first: dispatch.ts);
 *  - TCP/UDP, or an ICMP echo/timestamp query or reply, to one of `externals`: the owner of the
 *    destination port (ICMP: the identifier) in the port plan (ports.ts ownerOf), as the
 *    dispatcher's inbound owner; a port outside the plan gives 0;
 *  - the same from anywhere else: `insidePartition(proto, source, port)` (hash.ts: murmur3's
 *    fmix32), the dispatcher's outbound partition;
 *  - anything else (ICMP errors, other protocols): the (source, destination) hash.
 * It is a hint, not a rule: the dispatcher still decides, and hands over what the program put
 * elsewhere (a port forward's inbound packets, a pinned helper flow, hairpins, ICMP errors).
 * Contract: pure; at most 16 external addresses (more: null, run without a program). The
 * kernel's verifier checks the instructions when they are loaded (tun.c setSteeringProgram).
 */
import type { PortPlan } from '@masq/core';

/** External addresses the program compares against, at most. */
export const STEERING_MAX_EXTERNALS = 16;

// eBPF encoding (linux/bpf_common.h, linux/bpf.h).
const LD = 0x00;
const ALU = 0x04;
const JMP = 0x05;
const JMP32 = 0x06;
const ALU64 = 0x07;
const W = 0x00;
const H = 0x08;
const B = 0x10;
const ABS = 0x20;
const IND = 0x40;
const K = 0x00;
const X = 0x08;
const OP = { ADD: 0x00, MUL: 0x20, OR: 0x40, AND: 0x50, LSH: 0x60, RSH: 0x70, MOD: 0x90, XOR: 0xa0, MOV: 0xb0 } as const;
const JA = 0x00;
const JEQ = 0x10;
const JGT = 0x20;
const JNE = 0x50;
const JLT = 0xa0;
const EXIT = 0x90;

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number | string; // a label until assembled
  imm: number;
}

class Asm {
  readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();
  private emit(code: number, dst: number, src: number, off: number | string, imm: number): void {
    this.insns.push({ code, dst, src, off, imm: imm | 0 });
  }
  label(name: string): void {
    this.labels.set(name, this.insns.length);
  }
  /** r0 = ntoh(packet[imm ..+size)) */
  ldAbs(size: number, imm: number): void {
    this.emit(LD | ABS | size, 0, 0, 0, imm);
  }
  /** r0 = ntoh(packet[reg + imm ..+size)) */
  ldInd(size: number, reg: number, imm: number): void {
    this.emit(LD | IND | size, 0, reg, 0, imm);
  }
  alu(op: number, dst: number, imm: number): void {
    this.emit(ALU | op | K, dst, 0, 0, imm);
  }
  aluX(op: number, dst: number, src: number): void {
    this.emit(ALU | op | X, dst, src, 0, 0);
  }
  mov64X(dst: number, src: number): void {
    this.emit(ALU64 | OP.MOV | X, dst, src, 0, 0);
  }
  /** 32-bit compare of register `dst` with `imm`; to `to` when it holds. */
  jmp(op: number, dst: number, imm: number, to: string): void {
    this.emit(JMP32 | op | K, dst, 0, to, imm);
  }
  ja(to: string): void {
    this.emit(JMP | JA, 0, 0, to, 0);
  }
  exit(): void {
    this.emit(JMP | EXIT, 0, 0, 0, 0);
  }
  /** murmur3's fmix32 of register `r`, in place (r0 is scratch). */
  fmix(r: number): void {
    for (const [shift, mul] of [
      [16, 0x85ebca6b],
      [13, 0xc2b2ae35],
      [16, 0],
    ] as const) {
      this.mov64X(0, r);
      this.alu(OP.RSH, 0, shift);
      this.aluX(OP.XOR, r, 0);
      if (mul !== 0) this.alu(OP.MUL, r, mul);
    }
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.insns.length * 8);
    const v = new DataView(out.buffer);
    this.insns.forEach((x, i) => {
      let off = x.off;
      if (typeof off === 'string') {
        const at = this.labels.get(off);
        if (at === undefined) throw new Error(`steering program: no label ${off}`);
        off = at - i - 1;
      }
      v.setUint8(i * 8, x.code);
      v.setUint8(i * 8 + 1, (x.src << 4) | x.dst);
      v.setInt16(i * 8 + 2, off, true);
      v.setInt32(i * 8 + 4, x.imm, true);
    });
    return out;
  }
}

/** The runs of consecutive ports one partition owns in the plan: [first, last, owner]. */
export function ownedRuns(plan: PortPlan): [number, number, number][] {
  const runs: [number, number, number][] = [];
  for (let p = 0; p < 65536; p++) {
    const o = plan.ownerOf[p]!;
    if (o === 0xff) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last[2] === o && last[1] === p - 1) last[1] = p;
    else runs.push([p, p, o]);
  }
  return runs;
}

/**
 * The steering program for `partitions` workers, or null when there is nothing to steer (one
 * partition) or too many external addresses.
 */
export function steeringProgram(externals: readonly number[], plan: PortPlan, partitions: number): Uint8Array | null {
  if (partitions < 2 || externals.length > STEERING_MAX_EXTERNALS) return null;
  // Registers: r6 = the packet (the context LD_ABS/LD_IND need), r7 = IP header length (for
  // ICMP: plus 4, the identifier read as either port), r8 = protocol, then the hash key;
  // r9 = an address, then the hash; r0 = loads and scratch. LD_ABS and LD_IND clobber r1-r5.
  const a = new Asm();
  a.mov64X(6, 1);
  a.ldAbs(B, 0);
  a.alu(OP.AND, 0, 0x0f);
  a.alu(OP.LSH, 0, 2);
  a.mov64X(7, 0);
  a.ldAbs(B, 9);
  a.mov64X(8, 0);
  a.ldAbs(H, 6);
  a.alu(OP.AND, 0, 0x3fff);
  a.jmp(JNE, 0, 0, 'pair'); // a fragment
  a.jmp(JEQ, 8, 6, 'ports');
  a.jmp(JEQ, 8, 17, 'ports');
  a.jmp(JNE, 8, 1, 'pair');
  a.ldInd(B, 7, 0); // the ICMP type: queries and their replies carry an identifier
  a.jmp(JEQ, 0, 8, 'icmp');
  a.jmp(JEQ, 0, 0, 'icmp');
  a.jmp(JEQ, 0, 13, 'icmp');
  a.jmp(JEQ, 0, 14, 'icmp');
  a.ja('pair');
  a.label('icmp');
  a.alu(OP.ADD, 7, 4);
  a.ldAbs(W, 16);
  a.mov64X(9, 0);
  for (const e of externals) a.jmp(JEQ, 9, e, 'inbound_icmp');
  a.ja('outbound');
  a.label('inbound_icmp');
  a.ldInd(H, 7, 0);
  a.ja('owner');
  a.label('ports');
  a.ldAbs(W, 16);
  a.mov64X(9, 0);
  for (const e of externals) a.jmp(JEQ, 9, e, 'inbound');
  a.label('outbound');
  // insidePartition: fmix32(imul(src ^ 0x9e3779b9, 0x01000193) ^ ((proto << 16) | port)) % P
  a.ldInd(H, 7, 0);
  a.alu(OP.LSH, 8, 16);
  a.aluX(OP.OR, 8, 0);
  a.ldAbs(W, 12);
  a.mov64X(9, 0);
  a.alu(OP.XOR, 9, 0x9e3779b9);
  a.alu(OP.MUL, 9, 0x01000193);
  a.aluX(OP.XOR, 9, 8);
  a.fmix(9);
  a.alu(OP.MOD, 9, partitions);
  a.mov64X(0, 9);
  a.exit();
  a.label('inbound');
  a.ldInd(H, 7, 2);
  a.label('owner');
  // The owner of port r0 in the plan, run by run.
  ownedRuns(plan).forEach(([lo, hi, owner], i) => {
    const next = `run${i + 1}`;
    a.jmp(JLT, 0, lo, next);
    a.jmp(JGT, 0, hi, next);
    a.alu(OP.MOV, 0, owner);
    a.exit();
    a.label(next);
  });
  a.alu(OP.MOV, 0, 0);
  a.exit();
  a.label('pair');
  a.ldAbs(W, 12);
  a.mov64X(9, 0);
  a.ldAbs(W, 16);
  a.aluX(OP.XOR, 9, 0);
  a.fmix(9);
  a.alu(OP.MOD, 9, partitions);
  a.mov64X(0, 9);
  a.exit();
  return a.bytes();
}
