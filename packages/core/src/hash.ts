/**
 * hash.ts — integer hashing for the table indices and for choosing a flow's partition.
 *
 * Contract: pure functions of their integer arguments, identical in every thread (the I/O
 * thread and the partition owner must agree on where a flow lives). Mixing is murmur3's
 * fmix32 over a simple combination; no allocation.
 */
export function fmix32(h0: number): number {
  let h = h0 | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Hash of (protocol, address, port): the mapping key and the outbound partition key. */
export function hash3(proto: number, addr: number, port: number): number {
  return fmix32(Math.imul(addr ^ 0x9e3779b9, 0x01000193) ^ ((proto << 16) | port));
}

/** Hash of a five-tuple (protocol, a, aport, b, bport). */
export function hash5(proto: number, a: number, ap: number, b: number, bp: number): number {
  const h = Math.imul(hash3(proto, a, ap) ^ b, 0x27d4eb2d) ^ (bp * 0x10001);
  return fmix32(h);
}

/** Partition of an inside endpoint (outbound flows, forwards). */
export function insidePartition(proto: number, addr: number, port: number, partitions: number): number {
  return partitions === 1 ? 0 : hash3(proto, addr, port) % partitions;
}
