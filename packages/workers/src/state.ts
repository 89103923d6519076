/**
 * state.ts — the state file of `masq run --state FILE`: the gateway's shared memory (every
 * partition's table — sessions, mappings, indices, per-host counts, fragment records, port
 * allocator with its quarantine — and the counter blocks) written so that a restarted gateway
 * resumes every session on the same external port.
 *
 * Format (version 1), all integers little-endian:
 *
 *    0  magic "MASQSTAT"                       8 bytes
 *    8  format version (1)                     u32
 *   12  meta length M                          u32
 *   16  body length B                          f64 (an integer; bodies may pass 4 GiB)
 *   24  CRC-32 of meta and body                u32
 *   28  CRC-32 of bytes 0-27                   u32
 *   32  meta: UTF-8 JSON (StateMeta)           M bytes
 *   32+M  body: the sections in meta order     B bytes
 *
 * The file is exactly 32 + M + B bytes: a shorter one is truncated, a longer one is not ours.
 * A section is one SharedArrayBuffer, block-elided: a bitmap of its BLOCK-byte blocks
 * (bit set = the block has a non-zero byte) then the non-zero blocks in order. A table is
 * mostly zeros until it fills, so a quiet gateway's file is small; a full one costs its
 * table's size.
 *
 * Contract:
 *  - `writeStateFile` is atomic: write FILE.tmp (mode 0600), fsync it, rename it over FILE,
 *    fsync the directory. A crash leaves either the old file or the new one, never half.
 *  - `readStateFile` never throws for a bad file: it returns the sections, or a StateRefusal
 *    that says what is wrong in words an operator can act on (missing, truncated, checksum,
 *    version, and each configuration difference that makes the saved table unusable:
 *    external addresses, port range, workers, table sizes). Nothing is written into the
 *    caller's buffers unless the whole file checked out.
 *  - CRC-32 detects accidental damage (a torn disk write, a flipped bit); it does not
 *    authenticate. The file is root's (0600) like the configuration it reflects.
 *  - Times inside the tables are on the saving gateway's clock; each table section records
 *    that clock at the moment it was copied, and the reader rebases (SessionTable.rebaseClock).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

export const STATE_MAGIC = 'MASQSTAT';
/** 2: bytes counted by direction and protocol (the counter block grew). */
export const STATE_VERSION = 2;
export const STATE_HEADER_LEN = 32;
/** Elision granularity: 1 KiB blocks (a 64 MiB table has 64 Ki blocks, an 8 KiB bitmap). */
export const BLOCK = 1024;

/** What must be equal between the saving and the restoring gateway for the bytes to fit. */
export interface StateLayout {
  partitions: number;
  portLo: number;
  portHi: number;
  /** External addresses, dotted, in order (a session records the address and its index). */
  externals: string[];
  /** Per-partition table sizes (capacity, mapCapacity, fragSlots, externals). */
  tableSizes: Record<string, number>;
  tableBytes: number;
}

export interface SectionMeta {
  name: string;
  /** Length of the buffer. */
  bytes: number;
  /** Length of its encoding in the body. */
  encoded: number;
  /** The saving gateway's clock (ms) when this section was copied; 0 for plain counters. */
  clock: number;
}

export interface StateMeta {
  /** Wall-clock time of the save (ms since the epoch), for messages. */
  savedAt: number;
  layout: StateLayout;
  sections: SectionMeta[];
}

/** One buffer to save: its name, its bytes, the clock it was copied at. */
export interface SectionIn {
  name: string;
  data: Uint8Array;
  clock: number;
}

/** One buffer encoded (block-elided), ready for the body. */
export interface EncodedSection {
  name: string;
  bytes: number;
  clock: number;
  encoded: Uint8Array;
}

/** Encode `data` block-elided: bitmap, then each block holding a non-zero byte. */
export function encodeSection(name: string, data: Uint8Array, clock: number): EncodedSection {
  const n = Math.ceil(data.length / BLOCK);
  const bitmapLen = Math.ceil(n / 8);
  const bitmap = new Uint8Array(bitmapLen);
  // Whole 4-byte words where the view allows (SharedArrayBuffer columns are 8-aligned).
  const words = data.byteOffset % 4 === 0 ? new Int32Array(data.buffer, data.byteOffset, data.length >>> 2) : null;
  let kept = 0;
  for (let b = 0; b < n; b++) {
    const lo = b * BLOCK;
    const hi = Math.min(lo + BLOCK, data.length);
    let any = 0;
    if (words !== null && hi - lo === BLOCK) {
      const w0 = lo >>> 2;
      for (let i = w0; i < w0 + BLOCK / 4; i++) any |= words[i]!;
    } else {
      for (let i = lo; i < hi; i++) any |= data[i]!;
    }
    if (any !== 0) {
      bitmap[b >>> 3]! |= 1 << (b & 7);
      kept += hi - lo;
    }
  }
  const out = new Uint8Array(bitmapLen + kept);
  out.set(bitmap, 0);
  let at = bitmapLen;
  for (let b = 0; b < n; b++) {
    if ((bitmap[b >>> 3]! & (1 << (b & 7))) === 0) continue;
    const lo = b * BLOCK;
    const hi = Math.min(lo + BLOCK, data.length);
    out.set(data.subarray(lo, hi), at);
    at += hi - lo;
  }
  return { name, bytes: data.length, clock, encoded: out };
}

/** The encoded length a section of `bytes` with this bitmap must have, or -1 if the bitmap is malformed. */
function expectedEncoded(bytes: number, enc: Uint8Array): number {
  const n = Math.ceil(bytes / BLOCK);
  const bitmapLen = Math.ceil(n / 8);
  if (enc.length < bitmapLen) return -1;
  let len = bitmapLen;
  for (let b = 0; b < n; b++) if ((enc[b >>> 3]! & (1 << (b & 7))) !== 0) len += Math.min(BLOCK, bytes - b * BLOCK);
  // Bits past the last block must be clear.
  for (let b = n; b < bitmapLen * 8; b++) if ((enc[b >>> 3]! & (1 << (b & 7))) !== 0) return -1;
  return len;
}

/** Decode a checked section into `target` (zero-filled first). */
export function decodeSection(enc: Uint8Array, target: Uint8Array): void {
  const n = Math.ceil(target.length / BLOCK);
  const bitmapLen = Math.ceil(n / 8);
  target.fill(0);
  let at = bitmapLen;
  for (let b = 0; b < n; b++) {
    if ((enc[b >>> 3]! & (1 << (b & 7))) === 0) continue;
    const lo = b * BLOCK;
    const len = Math.min(BLOCK, target.length - lo);
    target.set(enc.subarray(at, at + len), lo);
    at += len;
  }
}

function header(metaLen: number, bodyLen: number, crc: number): Uint8Array {
  const h = new Uint8Array(STATE_HEADER_LEN);
  const v = new DataView(h.buffer);
  h.set(Buffer.from(STATE_MAGIC, 'latin1'), 0);
  v.setUint32(8, STATE_VERSION, true);
  v.setUint32(12, metaLen, true);
  v.setFloat64(16, bodyLen, true);
  v.setUint32(24, crc >>> 0, true);
  v.setUint32(28, zlib.crc32(h.subarray(0, 28)) >>> 0, true);
  return h;
}

/** The whole file as chunks (header, meta, sections), for writing or for tests. */
export function stateFileChunks(layout: StateLayout, sections: readonly EncodedSection[], savedAt = Date.now()): Uint8Array[] {
  const meta: StateMeta = { savedAt, layout, sections: sections.map((s) => ({ name: s.name, bytes: s.bytes, encoded: s.encoded.length, clock: s.clock })) };
  const metaBytes = Buffer.from(JSON.stringify(meta), 'utf8');
  let crc = zlib.crc32(metaBytes);
  let bodyLen = 0;
  for (const s of sections) {
    crc = zlib.crc32(s.encoded, crc);
    bodyLen += s.encoded.length;
  }
  return [header(metaBytes.length, bodyLen, crc), metaBytes, ...sections.map((s) => s.encoded)];
}

/** Write the state file atomically (temp file, fsync, rename, fsync of the directory). Returns its size. */
export async function writeStateFile(file: string, layout: StateLayout, sections: readonly EncodedSection[]): Promise<number> {
  const chunks = stateFileChunks(layout, sections);
  const tmp = `${file}.tmp`;
  const fh = await fs.promises.open(tmp, 'w', 0o600);
  let size = 0;
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.length) {
        const { bytesWritten } = await fh.write(c, off, c.length - off);
        off += bytesWritten;
      }
      size += c.length;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
  try {
    const dir = await fs.promises.open(path.dirname(path.resolve(file)), 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself is atomic.
  }
  return size;
}

/** Why a state file was not used. `kind` sorts them (tests, status); `message` is for people. */
export interface StateRefusal {
  ok: false;
  kind: 'missing' | 'unreadable' | 'truncated' | 'corrupt' | 'version' | 'incompatible';
  message: string;
}

export interface StateContents {
  ok: true;
  meta: StateMeta;
  /** Encoded sections by name (views into the file's bytes), checked against their bitmaps. */
  sections: Map<string, { meta: SectionMeta; encoded: Uint8Array }>;
  size: number;
}

const refuse = (kind: StateRefusal['kind'], message: string): StateRefusal => ({ ok: false, kind, message });

/** The first difference between two layouts, as advice; null when they match. */
export function layoutDifference(saved: StateLayout, now: StateLayout): string | null {
  if (saved.partitions !== now.partitions)
    return `it was saved by a gateway with ${saved.partitions} worker(s) and this one has ${now.partitions} (each worker owns a slice of the ports): start with --workers ${saved.partitions} to resume its sessions`;
  if (saved.portLo !== now.portLo || saved.portHi !== now.portHi) return `it was saved with --ports ${saved.portLo}-${saved.portHi} and this gateway has ${now.portLo}-${now.portHi}`;
  if (JSON.stringify(saved.externals) !== JSON.stringify(now.externals))
    return `it was saved with external address(es) ${saved.externals.join(', ')} and this gateway has ${now.externals.join(', ')} (sessions are bound to their external address)`;
  for (const k of new Set([...Object.keys(saved.tableSizes), ...Object.keys(now.tableSizes)])) {
    if (saved.tableSizes[k] !== now.tableSizes[k]) {
      const why = k === 'capacity' ? ' (--max-sessions)' : k === 'mapCapacity' ? ' (--max-sessions, or many more forwarded ports)' : '';
      return `its tables were sized for ${k} ${String(saved.tableSizes[k])} and this gateway's are ${String(now.tableSizes[k])}${why}`;
    }
  }
  if (saved.tableBytes !== now.tableBytes) return `its table layout (${saved.tableBytes} bytes per worker) differs from this version's (${now.tableBytes})`;
  return null;
}

/**
 * Read and check a state file against the layout this gateway has and the sections it
 * expects (name → length). Never throws for a bad file.
 */
export function readStateFile(file: string, layout: StateLayout, expected: ReadonlyMap<string, number>, read: (p: string) => Uint8Array = (p) => fs.readFileSync(p)): StateContents | StateRefusal {
  let buf: Uint8Array;
  try {
    buf = read(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return refuse('missing', `${file} does not exist yet`);
    return refuse('unreadable', `cannot read ${file}: ${code ?? (e instanceof Error ? e.message : String(e))}`);
  }
  return checkState(buf, file, layout, expected);
}

/** The checks of readStateFile on bytes in memory. */
export function checkState(buf: Uint8Array, file: string, layout: StateLayout, expected: ReadonlyMap<string, number>): StateContents | StateRefusal {
  if (buf.length < STATE_HEADER_LEN) return refuse('truncated', `${file} is truncated: ${buf.length} bytes, shorter than the ${STATE_HEADER_LEN}-byte header`);
  if (Buffer.from(buf.subarray(0, 8)).toString('latin1') !== STATE_MAGIC) return refuse('corrupt', `${file} is not a masq state file (no ${STATE_MAGIC} signature)`);
  const v = new DataView(buf.buffer, buf.byteOffset, STATE_HEADER_LEN);
  if (v.getUint32(28, true) !== zlib.crc32(buf.subarray(0, 28)) >>> 0) return refuse('corrupt', `${file} is damaged: its header checksum does not match`);
  const version = v.getUint32(8, true);
  if (version !== STATE_VERSION) return refuse('version', `${file} has format version ${version}; this masq reads version ${STATE_VERSION}`);
  const metaLen = v.getUint32(12, true);
  const bodyLen = v.getFloat64(16, true);
  const total = STATE_HEADER_LEN + metaLen + bodyLen;
  if (!Number.isSafeInteger(bodyLen) || bodyLen < 0) return refuse('corrupt', `${file} is damaged: body length ${bodyLen}`);
  if (buf.length < total) return refuse('truncated', `${file} is truncated: ${buf.length} of ${total} bytes`);
  if (buf.length > total) return refuse('corrupt', `${file} has ${buf.length - total} bytes after its end`);
  if (zlib.crc32(buf.subarray(STATE_HEADER_LEN, total)) >>> 0 !== v.getUint32(24, true)) return refuse('corrupt', `${file} is damaged: its checksum does not match (a bit changed on disk, or a torn write)`);
  let meta: StateMeta;
  try {
    meta = JSON.parse(Buffer.from(buf.subarray(STATE_HEADER_LEN, STATE_HEADER_LEN + metaLen)).toString('utf8')) as StateMeta;
  } catch {
    return refuse('corrupt', `${file} is damaged: its description is not JSON`);
  }
  if (typeof meta !== 'object' || meta === null || !Array.isArray(meta.sections) || typeof meta.layout !== 'object' || meta.layout === null) return refuse('corrupt', `${file} is damaged: its description lacks the layout or the sections`);
  const diff = layoutDifference(meta.layout, layout);
  if (diff !== null) return refuse('incompatible', `${file} does not fit this gateway: ${diff}`);
  const sections = new Map<string, { meta: SectionMeta; encoded: Uint8Array }>();
  let at = STATE_HEADER_LEN + metaLen;
  for (const s of meta.sections) {
    if (typeof s.name !== 'string' || !Number.isSafeInteger(s.bytes) || !Number.isSafeInteger(s.encoded) || s.encoded < 0 || typeof s.clock !== 'number' || !Number.isFinite(s.clock)) return refuse('corrupt', `${file} is damaged: a section is described wrongly`);
    if (at + s.encoded > total) return refuse('corrupt', `${file} is damaged: section ${s.name} runs past the end`);
    const enc = buf.subarray(at, at + s.encoded);
    at += s.encoded;
    const want = expected.get(s.name);
    if (want === undefined) continue;
    if (want !== s.bytes) return refuse('incompatible', `${file} does not fit this gateway: section ${s.name} has ${s.bytes} bytes, this gateway's has ${want}`);
    if (expectedEncoded(s.bytes, enc) !== s.encoded) return refuse('corrupt', `${file} is damaged: section ${s.name}'s block map does not match its length`);
    sections.set(s.name, { meta: s, encoded: enc });
  }
  if (at !== total) return refuse('corrupt', `${file} is damaged: the sections do not fill the body`);
  for (const name of expected.keys()) if (!sections.has(name)) return refuse('incompatible', `${file} does not fit this gateway: it has no section ${name}`);
  return { ok: true, meta, sections, size: buf.length };
}
