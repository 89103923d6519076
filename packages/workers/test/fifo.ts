/**
 * fifo.ts — a named pipe standing in for a TUN queue in the parkread and uring tests: made in
 * a fresh temporary directory, opened read-write (so neither end blocks on open), closed and
 * removed at the test's teardown.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function fifo(t: { teardown(f: () => void): void }, prefix: string): { path: string; fd: number } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const path = join(dir, 'q');
  execFileSync('mkfifo', [path]);
  const fd = openSync(path, 'r+');
  t.teardown(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return { path, fd };
}
