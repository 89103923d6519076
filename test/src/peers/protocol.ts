/**
 * protocol.ts — what the peer tool prints: its subcommands, their flags and their JSON lines.
 *
 * Owns: the types shared by the peer CLI (`peer.ts`, which writes the lines) and the harness
 * (which reads them). Every line the peer writes to stdout is one JSON object.
 *
 * Servers (`tcp-echo`, `tcp-sink`, `udp-echo`) print `{"event":"listening",...}` once bound, then
 * one event line per connection (or per new UDP remote, up to a cap), and a `{"event":"done",...}`
 * line when they stop (SIGTERM, SIGINT, `--seconds` elapsed, or stdin closed when started by the
 * harness). Clients print exactly one result line, with `ok` false and an `error` on failure, and
 * exit non-zero on failure. Addresses in output are dotted quads; ports are numbers.
 */

export interface ListeningEvent {
  readonly event: 'listening';
  readonly proto: 'tcp' | 'udp';
  /** The bound address; for udp-echo without --bind, every local address, comma-separated. */
  readonly address: string;
  readonly port: number;
}

/** tcp-echo: a connection accepted. */
export interface AcceptEvent {
  readonly event: 'accept';
  readonly remote: string;
  readonly port: number;
}

/** tcp-sink: one connection read to its end. */
export interface SinkEvent {
  readonly event: 'sink';
  readonly remote: string;
  readonly port: number;
  readonly bytes: number;
  readonly sha256: string;
}

/** udp-echo: the first datagram from a remote (address, port) not seen before. */
export interface DatagramEvent {
  readonly event: 'datagram';
  readonly remote: string;
  readonly port: number;
}

export interface DoneEvent {
  readonly event: 'done';
  readonly reason: 'signal' | 'time' | 'stdin';
  /** Connections accepted (TCP) or datagrams echoed (UDP). */
  readonly count: number;
}

export type ServerEvent = ListeningEvent | AcceptEvent | SinkEvent | DatagramEvent | DoneEvent;

export interface Failure {
  readonly ok: false;
  readonly error: string;
}

export interface TcpSendResult {
  readonly ok: true;
  readonly bytes: number;
  readonly sha256: string;
  readonly localPort: number;
  readonly ms: number;
}

export interface TcpRequestResult {
  readonly ok: true;
  readonly reply: string;
  readonly localAddress: string;
  readonly localPort: number;
}

export interface UdpRequestResult {
  readonly ok: boolean;
  readonly sent: number;
  readonly received: number;
  readonly localPort: number;
  /** The first replies, as text (at most 100). */
  readonly replies: string[];
}

export interface UdpFlowsResult {
  readonly ok: boolean;
  readonly flows: number;
  readonly received: number;
  /** Local port of each flow, in order. */
  readonly localPorts: number[];
  /** Reply text of each flow (null when none came back); with `udp-echo --reflect` it is the `addr:port` the server saw. */
  readonly replies: (string | null)[];
}

export interface TcpConnectRateResult {
  readonly ok: boolean;
  /** Connections completed: connect, 1-byte echo, close. */
  readonly connections: number;
  readonly failures: number;
  readonly seconds: number;
  readonly perSecond: number;
}

export interface UdpLatencyResult {
  readonly ok: boolean;
  readonly sent: number;
  readonly received: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly minUs: number;
  readonly maxUs: number;
}

/** Client subcommands and the result line each prints on success. */
export interface ClientResults {
  'tcp-send': TcpSendResult;
  'tcp-request': TcpRequestResult;
  'udp-request': UdpRequestResult;
  'udp-flows': UdpFlowsResult;
  'tcp-connect-rate': TcpConnectRateResult;
  'udp-latency': UdpLatencyResult;
}

export type ClientCommand = keyof ClientResults;
export type ServerCommand = 'tcp-echo' | 'tcp-sink' | 'udp-echo';

/** Flags as the harness passes them: `{ to: '198.51.100.10', port: 7 }` → `--to 198.51.100.10 --port 7`. */
export type PeerFlags = Readonly<Record<string, string | number | boolean>>;

/** Set in the environment of peers the harness starts: exit when stdin closes (the harness died). */
export const WATCH_STDIN_ENV = 'MQT_PEER_WATCH_STDIN';

export function flagsToArgv(flags: PeerFlags): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(flags)) {
    if (v === false) continue;
    out.push(`--${k}`);
    if (v !== true) out.push(String(v));
  }
  return out;
}
