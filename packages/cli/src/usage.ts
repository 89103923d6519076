/**
 * usage.ts — what every command's argument checks share, kept free of heavy imports so that a
 * client command (status, table, flush, ...) starts without loading the gateway: the usage
 * error (exit 2), the dotted-quad diagnosis that points at the bad part, and "did you mean".
 */

/** A usage or configuration error: the command did nothing; main.ts exits 2. */
export class UsageError extends Error {}

/** Why a dotted quad is not one, pointing at the first bad part (1-based column). */
export function addressProblem(s: string): string {
  const parts = s.split('.');
  let col = 1;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (i >= 4 || !/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) {
      return `not an IPv4 address: column ${col}: ${i >= 4 ? 'more than four parts' : p === '' ? 'empty part' : `"${p}" is not 0-255`}\n  ${s}\n  ${' '.repeat(col - 1)}^`;
    }
    col += p.length + 1;
  }
  return `not an IPv4 address: expected four parts a.b.c.d, found ${parts.length}`;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

export function suggest(word: string, known: readonly string[]): string | undefined {
  const w = word.toLowerCase().replaceAll('-', '_');
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const dd = k.startsWith(w) || w.startsWith(k) ? Math.min(distance(w, k), 2) : distance(w, k);
    if (dd < bestD) {
      best = k;
      bestD = dd;
    }
  }
  return best;
}
