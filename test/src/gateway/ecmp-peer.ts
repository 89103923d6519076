/**
 * ecmp-peer.ts — the traffic of the ECMP end-to-end test (test/e2e/ecmp.test.ts): many inside
 * hosts in one namespace, each a source address, each talking to several servers.
 *
 *   tcp-reflect --port P
 *       TCP server: answers each connection with the `addr:port` it came from, then closes.
 *       Prints `{"event":"listening",...}` once bound; exits when stdin closes.
 *   client --hosts A,B,.. --servers S,T,.. --udp-port P --tcp-port Q [--source-port N] [--timeout MS]
 *       One UDP socket per host, bound to (host, N) for the whole run, so that every round
 *       reuses the same inside endpoint (a mapping that survives shows the same external
 *       endpoint). For each line read on stdin (`NAME [TIMEOUT_MS]`: a round) it sends one
 *       datagram from every host's socket to every server (`udp-echo --reflect` answers with
 *       the endpoint it saw; one resend at half the timeout) and opens one TCP connection from
 *       every host to every server, from port N + 1 + S × k + i (round k counting from 0, S
 *       servers, server i): every connection has its own inside endpoint, so the test can count
 *       mappings exactly (an ephemeral port could come round again and share a mapping). Then
 *       it prints one line, `{"round":NAME,"udp":{HOST:[SEEN,..]},"tcp":{HOST:[SEEN,..]}}`, one
 *       SEEN per server in order: the `addr:port` the server saw, `timeout`, or `error:CODE`
 *       (`error:EHOSTUNREACH`...).
 *       Exits 0 when stdin closes.
 *
 * Contract: every wait is bounded (a round by its timeout, the process by a hard limit of 240 s);
 * only the addresses given are used.
 */

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { emit, int, runSubcommands, str, UsageError, type Flags } from '../peers/args.js';

export interface EcmpRound {
  readonly round: string;
  /** Per host, per server (in --servers order): what the server saw. */
  readonly udp: Readonly<Record<string, readonly string[]>>;
  readonly tcp: Readonly<Record<string, readonly string[]>>;
}

const list = (flags: Flags, name: string): string[] => str(flags, name).split(',').filter((s) => s !== '');

function tcpReflect(flags: Flags): Promise<number> {
  const port = int(flags, 'port', 1, 65535);
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.end(`${s.remoteAddress ?? '?'}:${String(s.remotePort ?? 0)}`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host: '0.0.0.0', backlog: 1024 }, () => {
      emit({ event: 'listening', proto: 'tcp', address: '0.0.0.0', port });
      process.stdin.resume();
      process.stdin.once('end', () => server.close(() => resolve(0)));
    });
  });
}

function tcpSeen(host: string, localPort: number, to: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const s = connect({ host: to, port, localAddress: host, localPort });
    const timer = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, timeoutMs);
    const done = (v: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    s.on('data', (b: Buffer) => (text += b.toString()));
    s.on('end', () => done(text));
    s.on('error', (e: NodeJS.ErrnoException) => done(`error:${e.code ?? e.message}`));
  });
}

interface HostSocket {
  readonly sock: UdpSocket;
  /** Server address → the waiter of the pending exchange. */
  readonly waiting: Map<string, (seen: string) => void>;
}

function udpSeen(h: HostSocket, to: string, port: number, payload: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const resend = setTimeout(() => h.sock.send(payload, port, to), timeoutMs / 2);
    const timer = setTimeout(() => {
      h.waiting.delete(to);
      resolve('timeout');
    }, timeoutMs);
    h.waiting.set(to, (seen) => {
      clearTimeout(resend);
      clearTimeout(timer);
      h.waiting.delete(to);
      resolve(seen);
    });
    h.sock.send(payload, port, to);
  });
}

async function client(flags: Flags): Promise<number> {
  const hosts = list(flags, 'hosts');
  const servers = list(flags, 'servers');
  const udpPort = int(flags, 'udp-port', 1, 65535);
  const tcpPort = int(flags, 'tcp-port', 1, 65535);
  const sourcePort = int(flags, 'source-port', 1024, 65535, 40000);
  const timeoutMs = int(flags, 'timeout', 100, 30_000, 2_000);
  if (hosts.length === 0 || servers.length === 0) throw new UsageError('--hosts and --servers need at least one address each');
  let round = 0;
  const sockets = new Map<string, HostSocket>();
  for (const host of hosts) {
    const sock = createSocket('udp4');
    const h: HostSocket = { sock, waiting: new Map() };
    sock.on('message', (msg, rinfo) => h.waiting.get(rinfo.address)?.(msg.toString()));
    sock.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(sourcePort, host, () => resolve());
    });
    sockets.set(host, h);
  }
  emit({ event: 'ready', hosts: hosts.length, sourcePort });
  const rounds = createInterface({ input: process.stdin });
  for await (const line of rounds) {
    const [name, ms] = line.trim().split(/\s+/);
    if (name === undefined || name === '') continue;
    const waitMs = ms === undefined ? timeoutMs : Number(ms);
    if (!Number.isInteger(waitMs) || waitMs < 100 || waitMs > 30_000) throw new UsageError(`round "${line}": the timeout must be 100..30000 ms`);
    const tcpBase = sourcePort + 1 + servers.length * round++;
    if (tcpBase + servers.length > 65535) throw new UsageError(`round ${round}: no TCP source ports left above ${sourcePort}`);
    const perHost = async (f: (host: string, to: string, i: number) => Promise<string>): Promise<Record<string, string[]>> =>
      Object.fromEntries(await Promise.all(hosts.map(async (host) => [host, await Promise.all(servers.map((to, i) => f(host, to, i)))] as const)));
    const [udp, tcp] = await Promise.all([
      perHost((host, to) => udpSeen(sockets.get(host)!, to, udpPort, `${name}:${host}`, waitMs)),
      perHost((host, to, i) => tcpSeen(host, tcpBase + i, to, tcpPort, waitMs)),
    ]);
    const r: EcmpRound = { round: name, udp, tcp };
    emit(r);
  }
  for (const h of sockets.values()) h.sock.close();
  return 0;
}

runSubcommands({ 'tcp-reflect': tcpReflect, client }, 240_000);
