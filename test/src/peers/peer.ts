/**
 * peer.ts — the traffic tool the end-to-end tests run inside namespaces.
 *
 *     node dist/src/peers/peer.js <subcommand> --flag value ...
 *
 * Servers:  tcp-echo --port P [--bind A] [--seconds S] [--quiet]
 *           tcp-sink --port P [--bind A] [--seconds S]
 *           udp-echo --port P [--bind A] [--seconds S] [--quiet] [--reflect]   (one socket per local address)
 * Clients:  tcp-send --to A --port P --bytes N [--timeout ms] [--seed S]
 *           tcp-request --to A --port P --data X [--timeout ms]
 *           udp-request --to A --port P [--count N] [--data X] [--timeout ms] [--lport P]
 *           udp-flows --to A --port P --flows N [--timeout ms]
 *           tcp-connect-rate --to A --port P --seconds S --max N [--concurrency C]
 *           udp-latency --to A --port P --count N [--timeout ms]
 *
 * Contract: the output lines are those of `protocol.ts`, one JSON object per line on stdout.
 * Everything is bounded: servers stop after `--seconds` (default 300) or when stdin closes (when
 * started by the harness), clients have a deadline (`--timeout`, default 10 s per wait, and a hard
 * overall limit) and caps on counts. A client exits 0 only on full success.
 * `udp-echo --reflect` answers each datagram with the `addr:port` it came from instead of its
 * payload, which lets a client behind a NAT see its mapping.
 */

import { createHash } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type {
  AcceptEvent,
  DatagramEvent,
  DoneEvent,
  ListeningEvent,
  SinkEvent,
  TcpConnectRateResult,
  TcpRequestResult,
  TcpSendResult,
  UdpFlowsResult,
  UdpLatencyResult,
  UdpRequestResult,
} from './protocol.js';
import { WATCH_STDIN_ENV } from './protocol.js';
import { bool, emit, hardLimit, int, parseArgs, runMain, str, UsageError, type Flags } from './args.js';
import { tcpConnect } from './sockets.js';

/** Address without an IPv4-mapped `::ffff:` prefix. */
function plain(addr: string | undefined): string {
  return (addr ?? '').replace(/^::ffff:/, '');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// ---------------------------------------------------------------------------------------------
// Servers

/** Run a server until a signal, its lifetime, or (under the harness) stdin closing; then "done". */
async function serve(flags: Flags, start: () => Promise<() => number>): Promise<number> {
  const seconds = int(flags, 'seconds', 1, 3600, 300);
  const count = await start();
  const reason = await new Promise<DoneEvent['reason']>((resolve) => {
    // This timer also keeps the process alive while the server runs.
    setTimeout(() => resolve('time'), seconds * 1000);
    process.once('SIGTERM', () => resolve('signal'));
    process.once('SIGINT', () => resolve('signal'));
    if (process.env[WATCH_STDIN_ENV] === '1') {
      process.stdin.on('data', () => undefined);
      process.stdin.once('end', () => resolve('stdin'));
      process.stdin.once('error', () => resolve('stdin'));
    }
  });
  const done: DoneEvent = { event: 'done', reason, count: count() };
  emit(done);
  return 0;
}

function tcpServer(flags: Flags, onConn: (s: Socket, remote: string, port: number) => void): Promise<() => number> {
  const port = int(flags, 'port', 1, 65535);
  const bind = str(flags, 'bind', '0.0.0.0');
  let count = 0;
  const server = createServer({ allowHalfOpen: true }, (s) => {
    count++;
    s.on('error', () => s.destroy());
    onConn(s, plain(s.remoteAddress), s.remotePort ?? 0);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: bind, backlog: 4096 }, () => {
      const ev: ListeningEvent = { event: 'listening', proto: 'tcp', address: bind, port };
      emit(ev);
      resolve(() => count);
    });
  });
}

function tcpEcho(flags: Flags): Promise<number> {
  const quiet = bool(flags, 'quiet');
  return serve(flags, () =>
    tcpServer(flags, (s, remote, port) => {
      if (!quiet) {
        const ev: AcceptEvent = { event: 'accept', remote, port };
        emit(ev);
      }
      s.pipe(s);
    }),
  );
}

function tcpSink(flags: Flags): Promise<number> {
  return serve(flags, () =>
    tcpServer(flags, (s, remote, port) => {
      const h = createHash('sha256');
      let bytes = 0;
      s.on('data', (b: Buffer) => {
        bytes += b.length;
        h.update(b);
      });
      s.on('end', () => {
        const ev: SinkEvent = { event: 'sink', remote, port, bytes, sha256: h.digest('hex') };
        emit(ev);
        s.end();
      });
    }),
  );
}

/** Distinct UDP remotes logged before udp-echo goes quiet (bounds the output). */
const MAX_LOGGED_REMOTES = 2000;

/**
 * Local IPv4 addresses to bind UDP servers to. One socket per address: a socket bound to 0.0.0.0
 * answers from the primary address whatever address the request went to (no IP_PKTINFO in Node),
 * and clients rightly ignore replies from an address they did not send to.
 */
function localIPv4(): string[] {
  const out: string[] = [];
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4') out.push(a.address);
  }
  return out;
}

function udpEcho(flags: Flags): Promise<number> {
  const port = int(flags, 'port', 1, 65535);
  const binds = flags.has('bind') ? [str(flags, 'bind')] : localIPv4();
  const quiet = bool(flags, 'quiet');
  const reflect = bool(flags, 'reflect');
  const seen = new Set<string>();
  let count = 0;
  const open = (bind: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const sock = createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      sock.on('message', (msg, rinfo) => {
        count++;
        const key = `${rinfo.address}:${rinfo.port}`;
        if (!quiet && seen.size < MAX_LOGGED_REMOTES && !seen.has(key)) {
          seen.add(key);
          const ev: DatagramEvent = { event: 'datagram', remote: rinfo.address, port: rinfo.port };
          emit(ev);
        }
        sock.send(reflect ? Buffer.from(key) : msg, rinfo.port, rinfo.address);
      });
      sock.once('error', reject);
      sock.bind(port, bind, () => resolve());
    });
  return serve(flags, async () => {
    await Promise.all(binds.map(open));
    const ev: ListeningEvent = { event: 'listening', proto: 'udp', address: binds.join(','), port };
    emit(ev);
    return () => count;
  });
}

// ---------------------------------------------------------------------------------------------
// TCP clients

/** Deterministic pseudo-random bytes: SHA-256 in counter mode over the seed. */
function* payload(seed: string, total: number): Generator<Buffer> {
  const block = 64 * 1024;
  let counter = 0;
  for (let done = 0; done < total; ) {
    const n = Math.min(block, total - done);
    const b = Buffer.allocUnsafe(n);
    for (let off = 0; off < n; off += 32) {
      createHash('sha256').update(`${seed}:${counter++}`).digest().copy(b, off, 0, Math.min(32, n - off));
    }
    done += n;
    yield b;
  }
}

async function tcpSend(flags: Flags): Promise<TcpSendResult> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const bytes = int(flags, 'bytes', 0, 1 << 30);
  const timeoutMs = int(flags, 'timeout', 1, 600_000, 30_000);
  const seed = str(flags, 'seed', 'masq');
  const t0 = process.hrtime.bigint();
  const s = await tcpConnect(to, port, timeoutMs, true);
  const localPort = s.localPort ?? 0;
  const h = createHash('sha256');
  const timer = setTimeout(() => s.destroy(new Error(`transfer not finished after ${timeoutMs} ms`)), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      // The sink ends its side once it has read everything: that is the acknowledgement.
      s.on('data', () => undefined);
      s.once('end', () => resolve());
      const gen = payload(seed, bytes);
      const pump = (): void => {
        for (;;) {
          const next = gen.next();
          if (next.done === true) {
            s.end();
            return;
          }
          h.update(next.value);
          if (!s.write(next.value)) {
            s.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  } finally {
    clearTimeout(timer);
    s.destroy();
  }
  return { ok: true, bytes, sha256: h.digest('hex'), localPort, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

async function tcpRequest(flags: Flags): Promise<TcpRequestResult> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const data = str(flags, 'data');
  const timeoutMs = int(flags, 'timeout', 1, 600_000, 10_000);
  const s = await tcpConnect(to, port, timeoutMs, true);
  const localAddress = plain(s.localAddress);
  const localPort = s.localPort ?? 0;
  const chunks: Buffer[] = [];
  const timer = setTimeout(() => s.destroy(new Error(`no complete reply after ${timeoutMs} ms`)), timeoutMs);
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.on('data', (b: Buffer) => chunks.push(b));
      s.once('end', () => resolve());
      s.end(data);
    });
  } finally {
    clearTimeout(timer);
    s.destroy();
  }
  return { ok: true, reply: Buffer.concat(chunks).toString('utf8'), localAddress, localPort };
}

async function tcpConnectRate(flags: Flags): Promise<TcpConnectRateResult> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const seconds = int(flags, 'seconds', 1, 60);
  const max = int(flags, 'max', 1, 1_000_000);
  const concurrency = int(flags, 'concurrency', 1, 1024, 32);
  const timeoutMs = int(flags, 'timeout', 1, 60_000, 5_000);
  const deadline = Date.now() + seconds * 1000;
  let started = 0;
  let connections = 0;
  let failures = 0;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = connect({ host: to, port });
      const timer = setTimeout(() => s.destroy(new Error('timeout')), timeoutMs);
      let echoed = false;
      s.once('connect', () => s.write('x'));
      s.on('data', () => {
        if (!echoed) {
          echoed = true;
          s.end();
        }
      });
      s.once('error', () => undefined);
      s.once('close', (hadError) => {
        clearTimeout(timer);
        if (echoed && !hadError) connections++;
        else failures++;
        resolve();
      });
    });
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline && started < max) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  return { ok: connections > 0 && failures === 0, connections, failures, seconds: elapsed, perSecond: connections / elapsed };
}

// ---------------------------------------------------------------------------------------------
// UDP clients

function udpBound(lport = 0): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(lport, () => {
      s.removeListener('error', reject);
      resolve(s);
    });
  });
}

/** Send one datagram and wait for the next datagram from the server, or null after timeoutMs. */
function exchange(sock: UdpSocket, to: string, port: number, data: Buffer, timeoutMs: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const onMsg = (msg: Buffer, rinfo: { address: string; port: number }): void => {
      if (rinfo.address !== to || rinfo.port !== port) return;
      clearTimeout(timer);
      sock.removeListener('message', onMsg);
      resolve(msg);
    };
    const timer = setTimeout(() => {
      sock.removeListener('message', onMsg);
      resolve(null);
    }, timeoutMs);
    sock.on('message', onMsg);
    sock.send(data, port, to);
  });
}

async function udpRequest(flags: Flags): Promise<UdpRequestResult> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const count = int(flags, 'count', 1, 100_000, 1);
  const data = str(flags, 'data', 'ping');
  const timeoutMs = int(flags, 'timeout', 1, 60_000, 2_000);
  const sock = await udpBound(int(flags, 'lport', 0, 65535, 0));
  const localPort = sock.address().port;
  const replies: string[] = [];
  let received = 0;
  try {
    for (let i = 0; i < count; i++) {
      const r = await exchange(sock, to, port, Buffer.from(count === 1 ? data : `${data}-${i}`), timeoutMs);
      if (r === null) continue;
      received++;
      if (replies.length < 100) replies.push(r.toString('utf8'));
    }
  } finally {
    sock.close();
  }
  return { ok: received === count, sent: count, received, localPort, replies };
}

async function udpFlows(flags: Flags): Promise<UdpFlowsResult> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const flows = int(flags, 'flows', 1, 20_000);
  const timeoutMs = int(flags, 'timeout', 1, 60_000, 3_000);
  const socks: UdpSocket[] = [];
  try {
    for (let i = 0; i < flows; i++) socks.push(await udpBound());
    const replies = await Promise.all(socks.map((s, i) => exchange(s, to, port, Buffer.from(`flow-${i}`), timeoutMs)));
    const received = replies.filter((r) => r !== null).length;
    return {
      ok: received === flows,
      flows,
      received,
      localPorts: socks.map((s) => s.address().port),
      replies: replies.map((r) => (r === null ? null : r.toString('utf8'))),
    };
  } finally {
    for (const s of socks) s.close();
  }
}

async function udpLatency(flags: Flags): Promise<UdpLatencyResult> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const count = int(flags, 'count', 1, 1_000_000);
  const timeoutMs = int(flags, 'timeout', 1, 10_000, 1_000);
  const sock = await udpBound();
  const rtts: number[] = [];
  const data = Buffer.alloc(64, 0x61);
  try {
    // A few unmeasured round trips first: ARP, NAT session setup, JIT.
    for (let i = 0; i < Math.min(20, count); i++) await exchange(sock, to, port, data, timeoutMs);
    for (let i = 0; i < count; i++) {
      const t0 = process.hrtime.bigint();
      const r = await exchange(sock, to, port, data, timeoutMs);
      if (r !== null) rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    sock.close();
  }
  rtts.sort((a, b) => a - b);
  return {
    ok: rtts.length === count,
    sent: count,
    received: rtts.length,
    p50Us: quantile(rtts, 0.5),
    p99Us: quantile(rtts, 0.99),
    minUs: rtts[0] ?? 0,
    maxUs: rtts[rtts.length - 1] ?? 0,
  };
}

// ---------------------------------------------------------------------------------------------

const clients: Record<string, (flags: Flags) => Promise<{ ok: boolean }>> = {
  'tcp-send': tcpSend,
  'tcp-request': tcpRequest,
  'udp-request': udpRequest,
  'udp-flows': udpFlows,
  'tcp-connect-rate': tcpConnectRate,
  'udp-latency': udpLatency,
};

const servers: Record<string, (flags: Flags) => Promise<number>> = {
  'tcp-echo': tcpEcho,
  'tcp-sink': tcpSink,
  'udp-echo': udpEcho,
};

/** Hard limit on any client run, whatever its flags say. */
const CLIENT_HARD_LIMIT_MS = 120_000;

/** Flags each subcommand accepts; anything else is a usage error (a typo must not pass silently). */
const KNOWN_FLAGS: Record<string, readonly string[]> = {
  'tcp-echo': ['port', 'bind', 'seconds', 'quiet'],
  'tcp-sink': ['port', 'bind', 'seconds'],
  'udp-echo': ['port', 'bind', 'seconds', 'quiet', 'reflect'],
  'tcp-send': ['to', 'port', 'bytes', 'timeout', 'seed'],
  'tcp-request': ['to', 'port', 'data', 'timeout'],
  'udp-request': ['to', 'port', 'count', 'data', 'timeout', 'lport'],
  'udp-flows': ['to', 'port', 'flows', 'timeout'],
  'tcp-connect-rate': ['to', 'port', 'seconds', 'max', 'concurrency', 'timeout'],
  'udp-latency': ['to', 'port', 'count', 'timeout'],
};

async function main(argv: readonly string[]): Promise<number> {
  const { cmd, flags } = parseArgs(argv, true);
  const known = KNOWN_FLAGS[cmd];
  if (known === undefined) throw new UsageError(`unknown subcommand "${cmd}" (known: ${Object.keys(KNOWN_FLAGS).join(', ')})`);
  for (const f of flags.keys()) if (!known.includes(f)) throw new UsageError(`${cmd} does not take --${f}`);
  const server = servers[cmd];
  if (server !== undefined) return server(flags);
  const client = clients[cmd];
  if (client === undefined) throw new UsageError(`unknown subcommand "${cmd}"`);
  hardLimit(CLIENT_HARD_LIMIT_MS, `${CLIENT_HARD_LIMIT_MS} ms`);
  const result = await client(flags);
  emit(result);
  await sleep(0);
  return result.ok ? 0 : 1;
}

runMain(main);
