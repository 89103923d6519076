/**
 * pipe.ts — how masq's benches end when their output is cut short (`pnpm bench | head`).
 *
 * Owns: `endOnClosedOutput` (exported as `@masq/core/bench/pipe` for the benches of the other
 * packages and test/). Contract: once stdout or stderr is a pipe whose reader has gone (EPIPE),
 * the bench ends with exit status 0, as `masq` does, instead of dying of an unhandled 'error'
 * event with a stack trace; 'exit' handlers still run (the namespace harness removes its
 * namespaces there). Node reports the error at the bench's next await, so a bench that measures
 * in one synchronous stretch (the translate bench) finishes that stretch first. Any other output
 * error is rethrown. Not a test.
 */
export function endOnClosedOutput(): void {
  const end = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  };
  process.stdout.on('error', end);
  process.stderr.on('error', end);
}
