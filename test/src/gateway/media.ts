/**
 * media.ts — real RTSP and TFTP peers from Debian for the protocol helpers' end-to-end tests:
 * GStreamer's RTSP server (`test/src/peers/rtsp-server.py`, a PCMU tone over RTP/UDP) with
 * ffmpeg as the player, and tftpd-hpa with the tftp-hpa client.
 *
 * Contract: every process is started through the topology (tracked, killed at `destroy()`),
 * every wait is bounded, files live in a temporary directory that `removeScratch` deletes.
 * The RTSP player is bounded twice: ffmpeg's own `-timeout` (no media within it: exit with an
 * error) and the exec time limit.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecResult, Topology } from '../harness/index.js';

/** Read from the source tree (Python, not compiled). */
export const RTSP_SERVER_SCRIPT = fileURLToPath(new URL('../../../src/peers/rtsp-server.py', import.meta.url));

/** Debian's Python: the one python3-gst-1.0 and python3-gi are installed for. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export function scratchDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'masq-media-'));
}

export function removeScratch(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Start a process in `ns` and resolve once its stdout or stderr matches `ready` (bounded). */
async function startReady(topo: Topology, ns: string, argv: readonly string[], ready: RegExp, what: string, timeoutMs = 10_000): Promise<ChildProcess> {
  const child = topo.spawn(ns, argv);
  const out: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} not ready within ${timeoutMs} ms: ${out.join('')}`)), timeoutMs);
    const look = (d: Buffer): void => {
      out.push(d.toString());
      if (ready.test(out.join(''))) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', look);
    child.stderr?.on('data', look);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${String(code)}) before it was ready: ${out.join('')}`));
    });
  });
  return child;
}

/** GStreamer's RTSP server on `address:port`, mount `/test`. */
export function startRtspServer(topo: Topology, ns: string, address: string, port: number): Promise<ChildProcess> {
  return startReady(topo, ns, [SYSTEM_PYTHON, RTSP_SERVER_SCRIPT, address, String(port), 'test'], /listening/, 'rtsp-server.py', 15_000);
}

export interface PlayResult {
  readonly result: ExecResult;
  /** Bytes of G.711 audio ffmpeg wrote (0 when nothing arrived). */
  readonly bytes: number;
}

/**
 * Play `url` with ffmpeg over RTP/UDP (`-rtsp_transport udp`: no fallback to TCP) for
 * `seconds` of media, copying the PCMU payload into a file. `timeoutSec` is ffmpeg's own wait
 * for media before it gives up.
 */
export async function playRtsp(topo: Topology, ns: string, url: string, dir: string, opts: { seconds?: number; timeoutSec?: number } = {}): Promise<PlayResult> {
  const out = path.join(dir, `play-${Date.now()}.ulaw`);
  const timeoutSec = opts.timeoutSec ?? 3;
  const argv = ['ffmpeg', '-nostdin', '-hide_banner', '-v', 'error', '-rtsp_transport', 'udp', '-timeout', String(timeoutSec * 1_000_000), '-i', url];
  argv.push('-t', String(opts.seconds ?? 0.5), '-c', 'copy', '-f', 'mulaw', '-y', out);
  const result = await topo.exec(ns, argv, { timeoutMs: (timeoutSec + 10) * 1000 });
  let bytes = 0;
  try {
    bytes = statSync(out).size;
  } catch {
    bytes = 0;
  }
  return { result, bytes };
}

/** tftpd-hpa in the foreground on `address:69`, serving (and accepting new files into) `root`. */
export async function startTftpd(topo: Topology, ns: string, address: string, root: string): Promise<ChildProcess> {
  const child = topo.spawn(ns, ['in.tftpd', '--foreground', '--secure', root, '--create', '--permissive', '--user', 'root', '--address', `${address}:69`]);
  // in.tftpd prints nothing when ready: wait for its socket.
  const deadline = Date.now() + 5_000;
  for (;;) {
    const ss = await topo.exec(ns, ['ss', '-Hunl', 'sport', '=', ':69']);
    if (ss.stdout.includes(`${address}:69`)) return child;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`in.tftpd not listening on ${address}:69 (exit ${String(child.exitCode)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * One tftp-hpa transfer (`get REMOTE LOCAL` or `put LOCAL REMOTE`) in binary mode, retransmit
 * every second and give up after `timeoutSec`. tftp-hpa exits 0 whatever happened in
 * interactive mode: callers check the file and `stdout` ("Transfer timed out.").
 */
export function tftp(topo: Topology, ns: string, server: string, command: string, timeoutSec = 3): Promise<ExecResult> {
  const input = `mode binary\nrexmt 1\ntimeout ${timeoutSec}\n${command}\nquit\n`;
  return topo.exec(ns, ['tftp', server], { input, timeoutMs: (timeoutSec + 10) * 1000 });
}
