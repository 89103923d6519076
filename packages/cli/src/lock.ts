/**
 * lock.ts — one gateway per TUN device: an exclusive lock named after the device, taken by
 * `masq run` before it opens the TUN.
 *
 * Two gateways on one multi-queue TUN would each attach queues to the same device and the
 * kernel would spread one flow's packets over two unrelated tables. The lock is a listening
 * UNIX socket in the abstract namespace, `@masq/tun/<device>`:
 * - exclusive: a second bind of the same name fails with EADDRINUSE;
 * - named after the device, and scoped like it: abstract socket names belong to the network
 *   namespace, as interface names do, so `masq0` in two namespaces are two locks;
 * - never stale: the kernel releases the name when the process that holds it dies, however
 *   it dies (SIGKILL, OOM kill), so a killed gateway's lock is taken over by the next start
 *   without any clean-up or pid guessing;
 * - it names its holder: whoever connects reads one JSON line {pid, tun, control, since},
 *   which the refused second gateway prints.
 * Limits: any process of the namespace may bind the name first (it then holds the device's
 * lock and the gateway refuses to start, naming an unknown holder: `ss -xlp` shows it).
 */
import net from 'node:net';

export interface LockHolder {
  pid: number;
  tun: string;
  control: string;
  /** Wall-clock ms when the holder took the lock. */
  since: number;
}

/** Another gateway holds the device (or something else holds its lock name). */
export class DeviceLockError extends Error {
  constructor(
    message: string,
    readonly holder: LockHolder | null,
  ) {
    super(message);
    this.name = 'DeviceLockError';
  }
}

export interface DeviceLock {
  readonly name: string;
  release(): Promise<void>;
}

/** The abstract socket name (shown as `@masq/tun/NAME` by `ss -xl`). */
export function lockName(tun: string): string {
  return `\0masq/tun/${tun}`;
}

/** Ask the holder of `tun`'s lock who it is; null when it does not answer as masq within `timeoutMs`. */
export function askHolder(tun: string, timeoutMs = 2_000): Promise<LockHolder | null> {
  return new Promise((resolve) => {
    const s = net.connect(lockName(tun));
    let buf = '';
    const done = (h: LockHolder | null): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(h);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.length > 4096) return done(null);
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const h = JSON.parse(buf.slice(0, nl)) as Partial<LockHolder>;
        done(typeof h.pid === 'number' && typeof h.control === 'string' ? { pid: h.pid, tun: String(h.tun ?? tun), control: h.control, since: Number(h.since ?? 0) } : null);
      } catch {
        done(null);
      }
    });
    s.on('error', () => done(null));
    s.on('end', () => done(null));
  });
}

/**
 * Take the lock of `tun` for this process. Throws DeviceLockError naming the running gateway
 * when the device is taken.
 */
export async function lockDevice(tun: string, control: string, now: () => number = Date.now): Promise<DeviceLock> {
  const me: LockHolder = { pid: process.pid, tun, control, since: now() };
  const line = JSON.stringify(me) + '\n';
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.end(line);
  });
  const bound = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    server.listen(lockName(tun), () => resolve(null));
  });
  if (bound !== null) {
    if (bound.code !== 'EADDRINUSE') throw new DeviceLockError(`cannot take the lock of TUN ${tun} (@masq/tun/${tun}): ${bound.message}`, null);
    const h = await askHolder(tun);
    if (h === null)
      throw new DeviceLockError(
        `TUN ${tun} is locked by a process that does not answer as masq (the lock is the abstract socket @masq/tun/${tun}; find its holder with: ss -xlp | grep masq/tun/${tun})`,
        null,
      );
    const age = Math.max(0, Math.round((now() - h.since) / 1000));
    throw new DeviceLockError(
      `another masq gateway already runs on TUN ${tun} in this network namespace: pid ${h.pid}, control socket ${h.control}, started ${age} s ago. ` +
        `One gateway per device: stop that one first (masq status --control ${h.control}; kill ${h.pid}), or give this one another --tun`,
      h,
    );
  }
  // The lock must never keep a stopping process alive.
  server.unref();
  return {
    name: `@masq/tun/${tun}`,
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
