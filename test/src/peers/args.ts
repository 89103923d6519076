/**
 * args.ts — the command line of the traffic tools (peer.ts, ../gateway/probe.ts):
 * `<subcommand> --flag value ...`, typed flag readers that throw UsageError (the tools exit 2
 * on it), and the one-JSON-object-per-line output; `runSubcommands` is the whole `main` of a
 * tool made of subcommands (gateway/ecmp-peer.ts, gateway/hairpin-peer.ts).
 */

export type Flags = ReadonlyMap<string, string>;

export class UsageError extends Error {}

/**
 * Split argv into the subcommand and its flags. With `bare`, a flag not followed by a value
 * (the end, or another --flag) is a boolean set to 'true'; without it every flag needs a value.
 */
export function parseArgs(argv: readonly string[], bare: boolean): { cmd: string; flags: Flags } {
  const [cmd, ...rest] = argv;
  if (cmd === undefined) throw new UsageError('missing subcommand');
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const next = rest[i + 1];
    if (!a.startsWith('--')) throw new UsageError(bare ? `unexpected argument "${a}"` : `expected --flag value at "${a}"`);
    if (next === undefined || (bare && next.startsWith('--'))) {
      if (!bare) throw new UsageError(`expected --flag value at "${a}"`);
      flags.set(a.slice(2), 'true');
    } else {
      flags.set(a.slice(2), next);
      i++;
    }
  }
  return { cmd, flags };
}

export function str(flags: Flags, name: string, dflt?: string): string {
  const v = flags.get(name) ?? dflt;
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v;
}

export function int(flags: Flags, name: string, lo: number, hi: number, dflt?: number): number {
  const raw = flags.get(name);
  const v = raw === undefined ? dflt : Number(raw);
  if (v === undefined) throw new UsageError(`--${name} is required`);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new UsageError(`--${name} must be an integer in ${lo}..${hi}`);
  return v;
}

export function bool(flags: Flags, name: string): boolean {
  return flags.get(name) === 'true';
}

/** One result or event line on stdout. */
export function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** Bound the whole run: after `ms`, a JSON failure line and exit status 3. */
export function hardLimit(ms: number, what = `${ms / 1000} s`): void {
  setTimeout(() => {
    emit({ ok: false, error: `hard time limit of ${what} reached` });
    process.exit(3);
  }, ms).unref();
}

/**
 * Run a tool's `main` on the command line and exit with the status it returns (nothing a tool
 * leaves behind keeps the process up); an error is a JSON failure line and status 2 for a
 * UsageError, 1 for anything else.
 */
export function runMain(main: (argv: readonly string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
      setImmediate(() => process.exit(code));
    },
    (e: unknown) => {
      process.stdout.write(`${JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) })}\n`, () => process.exit(e instanceof UsageError ? 2 : 1));
    },
  );
}

/**
 * The whole command line of a tool made of subcommands that each take `--flag value` pairs:
 * bound the run by `hardLimitMs`, hand the flags to the named subcommand and exit with its
 * status (runMain); an unknown subcommand is a UsageError naming the known ones.
 */
export function runSubcommands(subcommands: Readonly<Record<string, (flags: Flags) => Promise<number>>>, hardLimitMs: number): void {
  runMain(async (argv) => {
    const { cmd, flags } = parseArgs(argv, false);
    hardLimit(hardLimitMs);
    const run = Object.hasOwn(subcommands, cmd) ? subcommands[cmd] : undefined;
    if (run === undefined) throw new UsageError(`unknown subcommand "${cmd}" (${Object.keys(subcommands).join(', ')})`);
    return run(flags);
  });
}
