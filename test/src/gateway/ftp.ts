/**
 * ftp.ts — real FTP peers for the end-to-end tests: Debian's vsftpd as a server (anonymous,
 * uploads allowed, active and passive) in any namespace of a topology, and lftp as a client.
 *
 * Contract: every file lives in a fresh directory under the OS temp dir, removed by
 * `cleanup()`; vsftpd runs in the foreground (`background=NO`) as a tracked process of the
 * topology, listening only on the address given, so `destroy()` ends it and its children;
 * every lftp run is bounded (`net:timeout`, `net:max-retries`, and the exec timeout).
 */
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { ExecResult, Topology } from '../harness/index.js';

export interface FtpServer {
  /** The directory served; `pub/` in it is writable by the anonymous user. */
  readonly root: string;
  /** A work directory for the client's downloads and uploads. */
  readonly work: string;
  readonly address: string;
  cleanup(): void;
}

/** uid and gid of the `ftp` user (the Debian package creates it). */
function ftpUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('ftp:'));
  if (!line) throw new Error('no ftp user: is Debian package vsftpd installed? (scripts/setup --with-test-tools)');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** A file of `bytes` random bytes at `path`. */
export function randomFile(path: string, bytes: number): void {
  writeFileSync(path, randomBytes(bytes));
}

/** Start vsftpd in `ns`, listening on `address`:21. Resolves once it accepts connections. */
export async function startVsftpd(topo: Topology, ns: string, address: string): Promise<FtpServer> {
  const dir = mkdtempSync(join(tmpdir(), 'masq-ftp-'));
  const root = join(dir, 'root');
  const work = join(dir, 'work');
  mkdirSync(join(root, 'pub'), { recursive: true });
  mkdirSync(work);
  const u = ftpUser();
  chownSync(join(root, 'pub'), u.uid, u.gid);
  const conf = join(dir, 'vsftpd.conf');
  writeFileSync(
    conf,
    [
      'listen=YES',
      'listen_ipv6=NO',
      'background=NO',
      `listen_address=${address}`,
      'anonymous_enable=YES',
      'local_enable=NO',
      'no_anon_password=YES',
      `anon_root=${root}`,
      'write_enable=YES',
      'anon_upload_enable=YES',
      'anon_umask=022',
      // Active mode from port 20, as Debian configures it; PORT must name the control
      // connection's own peer (port_promiscuous=NO, the default): masq's rewrite is checked.
      'connect_from_port_20=YES',
      'pasv_enable=YES',
      'seccomp_sandbox=NO',
      'secure_chroot_dir=/var/run/vsftpd/empty',
      'xferlog_enable=NO',
      'idle_session_timeout=60',
      'data_connection_timeout=30',
      '',
    ].join('\n'),
  );
  mkdirSync('/var/run/vsftpd/empty', { recursive: true });
  topo.spawn(ns, ['vsftpd', conf]);
  const deadline = Date.now() + 5_000;
  for (;;) {
    const r = await topo.exec(ns, ['ss', '-Htln', `src ${address}:21`]);
    if (r.stdout.includes(':21')) break;
    if (Date.now() > deadline) throw new Error(`vsftpd did not listen on ${address}:21 within 5 s`);
    await new Promise((res) => setTimeout(res, 50));
  }
  return {
    root,
    work,
    address,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Run lftp in `ns` against ftp://anonymous@`host`: `settings` (e.g. "set ftp:passive-mode
 * off") then `commands`, then quit. Bounded: 10 s per network step, no retries, `timeoutMs`.
 */
export async function lftp(topo: Topology, ns: string, host: string, settings: readonly string[], commands: readonly string[], cwd: string, timeoutMs = 60_000): Promise<ExecResult> {
  const script = ['set net:timeout 10', 'set net:max-retries 1', 'set net:reconnect-interval-base 1', 'set cmd:fail-exit yes', ...settings, `lcd ${cwd}`, ...commands, 'quit'].join('; ');
  return topo.exec(ns, ['lftp', '-e', script, `ftp://anonymous:masq@${host}`], { timeoutMs });
}

/** True when the Debian FTP programs the tests drive are installed. */
export function ftpToolsMissing(): string | null {
  for (const p of ['vsftpd', 'lftp']) {
    try {
      execFileSync('sh', ['-c', `command -v ${p}`], { stdio: 'ignore' });
    } catch {
      return `${p} is not installed (scripts/setup --with-test-tools installs it)`;
    }
  }
  return null;
}
