/**
 * alg/types.ts — the protocol-helper seam: what a helper (an ALG: FTP, RTSP, TFTP, IRC DCC)
 * is, what it may do to a packet, and the closed set of reasons it may count.
 *
 * Contract:
 *  - A helper is one object implementing `AlgHelper`, in one file, listed once in
 *    registry.ts. It is chosen for a new session by protocol and the server-side port
 *    (`match`), and from then on sees every segment of that session that carries payload
 *    (`outbound`: inside → outside, `inbound`: outside → inside), BEFORE the address and
 *    port rewrite: the header still holds the addresses the sender wrote.
 *  - Everything a helper does goes through the `AlgPacket` it is handed: read the payload
 *    (`b[start, end)`), `replace` a byte range (the engine moves the tail, fixes the IPv4
 *    total length, both checksums, and the TCP sequence deltas), `expect` a related flow
 *    (a mapping from the control session's own port slice plus an expectation that admits one
 *    flow from `remote`), and `error` to count a closed-enum reason. The `AlgPacket` object is
 *    reused for every call: keep nothing from it after the call returns.
 *  - Parsers are pure functions (bytes in, value or null out), tested on their own.
 *  - A helper never throws on any input: malformed text passes unmodified and is counted.
 */

/** Helper ids are small integers (1..MAX_ALGS-1) kept in the session flags word (bits 8-15). */
export const MAX_ALGS = 8;

/** How long an expectation waits for its one flow (ms). netfilter's FTP helper: 5 min. */
export const EXPECT_TIMEOUT_MS = 60_000;

/** Expectation slots per partition (in the table's shared buffer). */
export const EXPECT_SLOTS = 256;

/**
 * Why a helper left a packet as it was, or refused a flow: the `reason` label of
 * `masq_alg_errors_total`. Closed: adding one means adding it here and to the labels below.
 */
export const enum AlgError {
  /** A command or reply the helper watches for whose arguments do not parse. */
  Malformed = 0,
  /** A watched command or reply not complete in one segment (see ftp.ts for why: counted, not reassembled). */
  Split = 1,
  /** The advertised address is not the sender's own (a forged PORT/227): not rewritten, nothing opened. */
  ForeignAddress = 2,
  /** The advertised port is below 1024: not rewritten, nothing opened. */
  LowPort = 3,
  /** The rewritten packet would not fit in its buffer (the slot's headroom, layout.ts). */
  NoRoom = 4,
  /** No free external port in the control session's slice for the related flow. */
  NoPort = 5,
  /** The expectation table (or the pinned-endpoint table) of the partition is full. */
  ExpectFull = 6,
  /** A flow to an expected port from another remote address than the one expected: dropped. */
  WrongRemote = 7,
}

export const ALG_ERROR_COUNT = 8;

/** Prometheus label of each AlgError, index = enum value. */
export const ALG_ERROR_LABELS: readonly string[] = ['malformed', 'split', 'foreign_address', 'low_port', 'no_room', 'no_port', 'expect_full', 'wrong_remote'];

/** Direction of a segment a helper sees. */
export const enum AlgDir {
  /** inside → outside */
  Out = 0,
  /** outside → inside */
  In = 1,
}

/** The packet a helper is looking at, and what it may do with it. */
export interface AlgPacket {
  /** The buffer; the payload is b[start, end). Valid during the call only. */
  readonly b: Uint8Array;
  readonly start: number;
  readonly end: number;
  readonly dir: AlgDir;
  /** The session's inside endpoint, its external (masqueraded) endpoint, the remote one. */
  readonly inside: number;
  readonly insidePort: number;
  readonly external: number;
  readonly externalPort: number;
  readonly remote: number;
  readonly remotePort: number;
  /** True when the inside host opened the connection (an inside client); false behind a port forward (an inside server). */
  readonly insideIsClient: boolean;
  /** The segment does not start at a line boundary (the previous segment this way ended mid-line). */
  readonly midLine: boolean;
  /**
   * Replace b[from, to) (within the payload) by `text` (ASCII). The payload after it moves;
   * `end` follows. Returns false (and counts NoRoom) when the packet would not fit.
   */
  replace(from: number, to: number, text: string): boolean;
  /**
   * Open a related flow: the inside endpoint (this session's inside address, `insidePort`)
   * gets a mapping on this session's external address, from this partition's port slice, and
   * an expectation admitting exactly one flow of `proto` from `remote` (any port) within
   * EXPECT_TIMEOUT_MS; `remote` 0 admits one flow from any remote address (IRC DCC: the peer is
   * not the server). Asking again for the same inside endpoint returns the same port (a
   * retransmitted command is rewritten the same way). Returns the external port, or -1
   * (counted: NoPort or ExpectFull).
   */
  expect(proto: number, insidePort: number, remote: number): number;
  /**
   * The inside port of this session's inside host behind external port `externalPort` (on
   * this session's external address), or -1 when that mapping is not this host's: to write a
   * rewritten port back in a reply (RTSP `client_port`).
   */
  insidePortOf(proto: number, externalPort: number): number;
  /** Count a reason (the packet passes unmodified unless the helper rewrote it). */
  error(reason: AlgError): void;
}

export interface AlgHelper {
  /** The name used by `--alg` and the config (`alg = ["ftp"]`), and the metrics label. */
  readonly name: string;
  /** IP protocol of the control flow (6 TCP, 17 UDP). */
  readonly proto: number;
  /** Default server-side ports. */
  readonly ports: readonly number[];
  /**
   * Whether a new flow of `proto` to server port `port` gets this helper. A pure function of
   * its arguments: alg/select.ts evaluates it once per protocol and port and keeps the answers.
   */
  match(proto: number, port: number): boolean;
  /** A segment inside → outside with payload. */
  outbound?(p: AlgPacket): void;
  /** A segment outside → inside with payload. */
  inbound?(p: AlgPacket): void;
}
