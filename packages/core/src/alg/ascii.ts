/**
 * ascii.ts — the text primitives the protocol helpers' parsers share: bytes to a one-char-per-
 * byte string (so string offsets are payload offsets), strict decimal numbers, and the inverse.
 *
 * Contract: pure functions over (bytes, start, end) or strings; nothing throws on any input.
 * Numbers are parsed strictly (ASCII digits only, no sign, no spaces, bounded length and
 * value) so that a rewrite never starts from a guess. The parsers that use them run on the
 * slow path of a helper's own control connection, never on the fast path.
 */

/** The bytes [start, end) as a string with one char per byte (ISO 8859-1). */
export function latin1(b: Uint8Array, start: number, end: number): string {
  let s = '';
  // Chunked: String.fromCharCode's argument count is bounded by the engine's stack.
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  }
  return s;
}

/** The string (one char per byte, chars ≤ 0xff) as bytes. */
export function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** True when the bytes at `at` spell `text` (ASCII, exact case). */
export function startsWith(b: Uint8Array, at: number, end: number, text: string): boolean {
  if (end - at < text.length) return false;
  for (let i = 0; i < text.length; i++) if (b[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

/**
 * A decimal number of 1..`maxDigits` ASCII digits whose value is ≤ `max`, or null. Leading
 * zeros are accepted (RTSP and CTCP writers do not produce them, but they are not ambiguous).
 */
export function decimal(s: string, max: number, maxDigits: number): number | null {
  if (s.length === 0 || s.length > maxDigits) return null;
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return null;
    v = v * 10 + c;
  }
  return v <= max ? v : null;
}

/** A port 1..65535 written in decimal, or null. */
export function port(s: string): number | null {
  const p = decimal(s, 65535, 5);
  return p === null || p === 0 ? null : p;
}
