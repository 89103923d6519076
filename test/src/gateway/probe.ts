/**
 * probe.ts — small traffic tools for the gateway end-to-end tests, for what the general peer
 * (`../peers/peer.ts`) does not do: see an ICMP error arrive on a socket, punch a UDP hole
 * from a fixed port, keep a TCP connection open across a gateway event, send at a paced rate.
 *
 *     node dist/src/gateway/probe.js <subcommand> --flag value ...
 *
 *   udp-refused --to A --port P [--timeout ms]
 *       A connected UDP socket sends one datagram every 200 ms until the socket reports
 *       ECONNREFUSED (Linux does so for a connected UDP socket when an ICMP port unreachable
 *       for its flow arrives, RFC 1122 4.1.3.3), or until the timeout.
 *   udp-punch --lport L --to A --port P [--count N] [--interval ms] [--grace ms]
 *       From local port L, send `punch-<i>` to A:P N times; report every datagram received
 *       (source address, port, text) until `grace` ms after the last send.
 *   tcp-chat --to A --port P [--timeout ms]
 *       Connect to an echo server, print `connected`, then for each line on stdin send it and
 *       wait until the same bytes come back (`echo` event with the round trip). Exits when
 *       stdin ends (`closed`), or on the first failure (`error`).
 *   tcp-paced --to A --port P --bytes N --rate BYTES_PER_S [--timeout ms]
 *       Like the peer's tcp-send (the sink's sha256 must match ours), but paced: 16 KiB every
 *       16384/rate seconds, so that the transfer is still running when a test acts on the
 *       gateway. Waits for the sink to close its side.
 *
 * Contract: one JSON object per line on stdout; one-shot subcommands print exactly one result
 * line and exit 0 only on success. Every wait is bounded.
 */

import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { emit, int, hardLimit, parseArgs, runMain, str, UsageError, type Flags } from '../peers/args.js';
import { tcpConnect } from '../peers/sockets.js';

export interface UdpRefusedResult {
  readonly ok: boolean;
  /** The socket error's code (`ECONNREFUSED` when the ICMP error arrived), or null. */
  readonly error: string | null;
  readonly sent: number;
  readonly localPort: number;
  readonly ms: number;
}

export interface PunchDatagram {
  readonly from: string;
  readonly port: number;
  readonly data: string;
}

export interface UdpPunchResult {
  readonly ok: boolean;
  readonly sent: number;
  readonly received: readonly PunchDatagram[];
}

export interface TcpPacedResult {
  readonly ok: boolean;
  readonly bytes: number;
  readonly sha256: string;
  readonly localPort: number;
  readonly ms: number;
  readonly error?: string;
}

export type ChatEvent =
  | { readonly event: 'connected'; readonly localPort: number }
  | { readonly event: 'echo'; readonly data: string; readonly ms: number }
  | { readonly event: 'closed' }
  | { readonly event: 'error'; readonly error: string };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function udpRefused(flags: Flags): Promise<UdpRefusedResult> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const timeoutMs = int(flags, 'timeout', 1, 60_000, 3_000);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    let sent = 0;
    let localPort = 0;
    let ticker: NodeJS.Timeout | undefined;
    const finish = (error: string | null): void => {
      clearInterval(ticker);
      clearTimeout(deadline);
      sock.close();
      resolve({ ok: error === 'ECONNREFUSED', error, sent, localPort, ms: Date.now() - t0 });
    };
    const deadline = setTimeout(() => finish(null), timeoutMs);
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? e.message));
    sock.connect(port, to, () => {
      localPort = sock.address().port;
      const send = (): void => {
        sent++;
        sock.send(`probe-${sent}`);
      };
      send();
      ticker = setInterval(send, 200);
    });
  });
}

function udpPunch(flags: Flags): Promise<UdpPunchResult> {
  const lport = int(flags, 'lport', 1, 65535);
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const count = int(flags, 'count', 1, 1000, 20);
  const interval = int(flags, 'interval', 1, 10_000, 100);
  const grace = int(flags, 'grace', 0, 30_000, 1_000);
  return new Promise((resolve, reject) => {
    const sock = createSocket({ type: 'udp4', reuseAddr: true });
    const received: PunchDatagram[] = [];
    sock.on('message', (msg, rinfo) => {
      if (received.length < 1000) received.push({ from: rinfo.address, port: rinfo.port, data: msg.toString('utf8') });
    });
    sock.once('error', reject);
    sock.bind(lport, () => {
      void (async () => {
        for (let i = 0; i < count; i++) {
          sock.send(`punch-${i}`, port, to);
          await sleep(interval);
        }
        await sleep(grace);
        sock.close();
        resolve({ ok: received.length > 0, sent: count, received });
      })();
    });
  });
}

async function tcpChat(flags: Flags): Promise<number> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const timeoutMs = int(flags, 'timeout', 1, 60_000, 10_000);
  const s = await tcpConnect(to, port, timeoutMs);
  s.setNoDelay(true);
  emit({ event: 'connected', localPort: s.localPort ?? 0 } satisfies ChatEvent);
  let inbox = '';
  let wake: (() => void) | null = null;
  let failure: string | null = null;
  s.setEncoding('utf8');
  s.on('data', (d: string) => {
    inbox += d;
    wake?.();
  });
  s.on('error', (e) => {
    failure = e.message;
    wake?.();
  });
  s.on('close', () => {
    failure ??= 'connection closed by the peer';
    wake?.();
  });
  /** Wait until `want` has come back; false on a failure or after timeoutMs. */
  const awaitEcho = async (want: string): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (!inbox.includes(want)) {
      if (failure !== null || Date.now() > deadline) return false;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
      wake = null;
    }
    inbox = inbox.slice(inbox.indexOf(want) + want.length);
    return true;
  };
  for await (const line of createInterface({ input: process.stdin })) {
    const t0 = Date.now();
    s.write(line);
    if (!(await awaitEcho(line))) {
      emit({ event: 'error', error: failure ?? `no echo of "${line}" within ${timeoutMs} ms` } satisfies ChatEvent);
      s.destroy();
      return 1;
    }
    emit({ event: 'echo', data: line, ms: Date.now() - t0 } satisfies ChatEvent);
  }
  s.end();
  emit({ event: 'closed' } satisfies ChatEvent);
  return 0;
}

const CHUNK = 16 * 1024;

async function tcpPaced(flags: Flags): Promise<TcpPacedResult> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const bytes = int(flags, 'bytes', 1, 1 << 30);
  const rate = int(flags, 'rate', CHUNK, 1 << 30);
  const timeoutMs = int(flags, 'timeout', 1, 600_000, 60_000);
  const t0 = Date.now();
  const s = await tcpConnect(to, port, timeoutMs);
  const localPort = s.localPort ?? 0;
  const h = createHash('sha256');
  const result = (error?: string): TcpPacedResult => ({ ok: error === undefined, bytes, sha256: h.digest('hex'), localPort, ms: Date.now() - t0, ...(error === undefined ? {} : { error }) });
  const ended = new Promise<string | undefined>((resolve) => {
    s.on('data', () => undefined);
    s.once('end', () => resolve(undefined));
    s.once('error', (e) => resolve(e.message));
  });
  const timer = setTimeout(() => s.destroy(new Error(`transfer not finished after ${timeoutMs} ms`)), timeoutMs);
  try {
    let counter = 0;
    for (let done = 0; done < bytes; ) {
      const n = Math.min(CHUNK, bytes - done);
      const b = Buffer.allocUnsafe(n);
      for (let off = 0; off < n; off += 32) createHash('sha256').update(`paced:${counter++}`).digest().copy(b, off, 0, Math.min(32, n - off));
      h.update(b);
      done += n;
      if (!s.write(b)) await new Promise<void>((r) => s.once('drain', r));
      if (s.destroyed) break;
      // Pace against the clock, not per chunk, so that a stall is caught up afterwards.
      const due = t0 + (done / rate) * 1000;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    s.end();
    return result(await ended);
  } finally {
    clearTimeout(timer);
    s.destroy();
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const { cmd, flags } = parseArgs(argv, false);
  // Every run is bounded: 120 s, or what MASQ_PROBE_HARD_LIMIT_MS says (the soak's chat).
  const hardMs = Math.min(Number(process.env['MASQ_PROBE_HARD_LIMIT_MS'] ?? '') || 120_000, 4 * 3_600_000);
  hardLimit(hardMs);
  switch (cmd) {
    case 'tcp-chat':
      return tcpChat(flags);
    case 'udp-refused': {
      const r = await udpRefused(flags);
      emit(r);
      return r.ok ? 0 : 1;
    }
    case 'udp-punch': {
      const r = await udpPunch(flags);
      emit(r);
      return r.ok ? 0 : 1;
    }
    case 'tcp-paced': {
      const r = await tcpPaced(flags);
      emit(r);
      return r.ok ? 0 : 1;
    }
    default:
      throw new UsageError(`unknown subcommand "${cmd}" (udp-refused, udp-punch, tcp-chat, tcp-paced)`);
  }
}

runMain(main);
