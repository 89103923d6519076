/**
 * cli.ts — the command line every masq bench shares (exported as `@masq/core/bench/cli` for the
 * benches of the other packages and test/). Not a test.
 *
 * Owns:
 * - `benchArgs`: the bench's own arguments. pnpm 12 passes the `--` of `pnpm bench -- --quick`
 *   through to the script: a bare `--` is dropped, so both spellings work.
 * - `benchOptions`: `--name=VALUE` options (a bare `--name` is "true") checked against the
 *   names the bench allows: an unknown option (a typo) is exit 2 before anything runs;
 *   `--help` prints the calling file's header comment and exits 0.
 * - `endOnClosedOutput`: once stdout or stderr is a pipe whose reader has gone (EPIPE, `| head`),
 *   the bench ends with exit status 0, as `masq` does, instead of dying of an unhandled 'error'
 *   event with a stack trace; 'exit' handlers still run (the namespace harness removes its
 *   namespaces there). Node reports the error at the bench's next await, so a bench that
 *   measures in one synchronous stretch (the translate bench) finishes that stretch first. Any
 *   other output error is rethrown.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** `process.argv.slice(2)` without the bare `--` pnpm passes through. */
export function benchArgs(argv: readonly string[] = process.argv.slice(2)): string[] {
  return argv.filter((a) => a !== '--');
}

/** The header comment of the file at `selfUrl` (an import.meta.url), without its comment marks. */
export function headerOf(selfUrl: string): string {
  const lines = readFileSync(fileURLToPath(selfUrl), 'utf8').split('\n');
  return lines.slice(1, lines.indexOf(' */')).map((l) => l.replace(/^ \* ?/, '')).join('\n') + '\n';
}

/**
 * The `--name=VALUE` options in `args` (a bare `--name` is "true"), checked against `allowed`;
 * anything else (a positional argument included) is exit 2 naming it; `--help` prints the
 * header comment of the bench at `selfUrl` (its import.meta.url) and exits.
 */
export function benchOptions(args: readonly string[], allowed: readonly string[], who: string, selfUrl: string): Map<string, string> {
  const opts = new Map<string, string>();
  for (const a of args) {
    if (a === '--') continue;
    if (!a.startsWith('--')) {
      process.stderr.write(`${who}: unexpected argument "${a}" (see --help)\n`);
      process.exit(2);
    }
    const eq = a.indexOf('=');
    const k = eq < 0 ? a.slice(2) : a.slice(2, eq);
    if (k !== 'help' && !allowed.includes(k)) {
      process.stderr.write(`${who}: unknown option --${k} (options: ${allowed.map((o) => `--${o}`).join(', ')}; see --help)\n`);
      process.exit(2);
    }
    opts.set(k, eq < 0 ? 'true' : a.slice(eq + 1));
  }
  if (opts.has('help')) {
    process.stdout.write(headerOf(selfUrl));
    process.exit(0);
  }
  return opts;
}

/** Ends the bench quietly (exit 0) when its stdout or stderr reader has gone (see the header). */
export function endOnClosedOutput(): void {
  const end = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  };
  process.stdout.on('error', end);
  process.stderr.on('error', end);
}
