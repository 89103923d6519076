/**
 * basetree.ts — what the benches that compare against another commit share (compare.ts,
 * ab.ts): that commit's tree, checked out and built beside this one: a temporary git worktree at
 * /tmp/masq-bench-<commit> with its dependencies installed from the pnpm store (`pnpm install
 * --offline`) and its core built (`tsc -b packages/core`). An existing build of the same
 * commit is reused. Not a test.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This checkout's root. */
export const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

function run(cmd: string, args: string[], cwd: string): void {
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The tree of `commit`, built (its file `artifact`, relative to the root, is there): its root. */
export function baseTree(commit: string, artifact: string, who: string): string {
  const sha = execFileSync('git', ['rev-parse', '--verify', `${commit}^{commit}`], { cwd: HERE, encoding: 'utf8' }).trim();
  const dir = `/tmp/masq-bench-${sha.slice(0, 12)}`;
  if (!existsSync(path.join(dir, artifact))) {
    if (!existsSync(dir)) run('git', ['worktree', 'add', '--detach', dir, sha], HERE);
    process.stderr.write(`${who}: building ${commit} in ${dir}\n`);
    run('pnpm', ['install', '--offline', '--frozen-lockfile', '--reporter=silent'], dir);
    run('pnpm', ['exec', 'tsc', '-b', 'packages/core'], dir);
  }
  return dir;
}

/** Remove a tree baseTree made. */
export function removeTree(dir: string): void {
  run('git', ['worktree', 'remove', '--force', dir], HERE);
}

/** This checkout's commit, short, and whether tracked files differ from it. */
export function headOf(): { head: string; dirty: boolean } {
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: HERE, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: HERE, encoding: 'utf8' }).trim() !== '';
  return { head, dirty };
}
