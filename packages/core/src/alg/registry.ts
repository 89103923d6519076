/**
 * alg/registry.ts — the one table of protocol helpers. A helper's id is its position here
 * plus one (0 = none), stored in a session's flags word; the table is the same in every
 * thread because it is this module's constant.
 *
 * To add a helper: write `alg/NAME.ts` exporting an `AlgHelper`, import it here and append it
 * to HELPERS. Its name is then accepted by `--alg` and the config's `alg = [...]`, counted
 * under its name in `masq_alg_*`, and selectable per session; nothing else changes.
 *
 * Default set (RFC 4787 REQ-10 / RFC 5382 REQ-6: helpers that rewrite payloads are a
 * trade-off; FTP is on by default because that is what 1996 masquerading did): DEFAULT_ALGS.
 */
import { ftp } from './ftp.js';
import { irc } from './irc.js';
import { rtsp } from './rtsp.js';
import { tftp } from './tftp.js';
import { MAX_ALGS, type AlgHelper } from './types.js';

export const HELPERS: readonly AlgHelper[] = [ftp, rtsp, tftp, irc];

if (HELPERS.length >= MAX_ALGS) throw new Error(`alg registry: at most ${MAX_ALGS - 1} helpers`);

/** The helpers enabled when neither `--alg` nor the config says otherwise. */
export const DEFAULT_ALGS: readonly string[] = ['ftp'];

/** Names of every registered helper, in id order. */
export function algNames(): string[] {
  return HELPERS.map((h) => h.name);
}

/** A helper's id (1..), or 0 for an unknown name. */
export function algId(name: string): number {
  return HELPERS.findIndex((h) => h.name === name) + 1;
}

/** The helper with id `id` (1..), or undefined. */
export function algById(id: number): AlgHelper | undefined {
  return HELPERS[id - 1];
}

/**
 * Parse the `--alg` value: comma-separated helper names, or `none`. Throws an Error whose
 * message names the unknown helper and the known ones.
 */
export function parseAlgList(text: string): string[] {
  const t = text.trim();
  if (t === 'none') return [];
  const names = t.split(',').map((s) => s.trim());
  return checkAlgNames(names);
}

/** Validate a list of helper names (duplicates removed, order kept). */
export function checkAlgNames(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    if (n === '') throw new Error(`alg: empty helper name in the list (comma-separated names: ${algNames().join(', ')}; or none)`);
    if (n === 'none') throw new Error('alg: "none" cannot be combined with helper names');
    if (algId(n) === 0) throw new Error(`alg: unknown helper "${n}"; known: ${algNames().join(', ')} (or none)`);
    if (!out.includes(n)) out.push(n);
  }
  return out;
}
