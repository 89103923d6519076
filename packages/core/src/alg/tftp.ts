/**
 * tftp.ts — the TFTP helper's parser: a read or write request (RFC 1350 §5, options RFC 2347;
 * UDP 69 by default).
 *
 * Why a NAT needs this: the client sends RRQ/WRQ to the server's port 69, and the server
 * answers from a new port of its own (its transfer identifier, RFC 1350 §4). Under endpoint-
 * or address-dependent filtering that answer is admitted anyway (same server address); under
 * address-and-port-dependent filtering it is not, because the client's mapping has only sent
 * to port 69. On a valid request the helper expects one flow from the server's address, any
 * port, to the client's own mapping, and nothing else: every other inbound packet is left to
 * the filtering mode. The payload is never rewritten (TFTP carries no address).
 *
 *    2 bytes     string    1 byte     string   1 byte   [ string  1 byte  string  1 byte ]...
 *   +--------+-----------+--------+-----------+--------+---------+--------+--------+--------+
 *   | 01/02  |  Filename |   0    |    Mode   |   0    |  opt1   |   0    | value1 |   0    |
 *   +--------+-----------+--------+-----------+--------+---------+--------+--------+--------+
 *
 * Contract: `parseTftpRequest(b, start, end)` over the UDP payload [start, end) returns the
 * request or null: an opcode other than RRQ (1) or WRQ (2), an empty or unterminated filename,
 * a mode other than netascii/octet/mail (any case), an option without its value, or bytes
 * after the last terminator. Null means "no expectation"; the datagram itself passes as any
 * UDP datagram does.
 *
 * The helper (`tftp`, off by default: RFC 4787 REQ-10): a valid request from an inside client
 * puts an expectation on the client's own mapping (`expect` of the session's inside port: the
 * existing mapping, no new port) admitting one flow from the server's address, any port; a
 * retransmitted request renews the same one. A datagram to port 69 that is not a request
 * counts Malformed. Nothing is rewritten and nothing else is opened; whether any other
 * inbound packet reaches the mapping is the filtering mode's decision alone.
 */
import { latin1 } from './ascii.js';
import { IpProto } from '../wire/ipv4.js';
import { AlgError, type AlgHelper, type AlgPacket } from './types.js';

/** The TFTP server port (RFC 1350 §4). */
export const TFTP_PORT = 69;

export const OP_RRQ = 1;
export const OP_WRQ = 2;

export interface TftpRequest {
  readonly opcode: typeof OP_RRQ | typeof OP_WRQ;
  readonly filename: string;
  /** Lower-cased: `netascii`, `octet` or `mail`. */
  readonly mode: string;
  /** RFC 2347 option names (lower-cased) and values, in order. */
  readonly options: readonly (readonly [string, string])[];
}

/** Mode and option strings are short; a longer one is not TFTP. Filenames up to a datagram. */
const MAX_FIELD = 255;

export function parseTftpRequest(b: Uint8Array, start: number, end: number): TftpRequest | null {
  if (end - start < 4 || b[start] !== 0) return null;
  const opcode = b[start + 1];
  if (opcode !== OP_RRQ && opcode !== OP_WRQ) return null;
  const fields: string[] = [];
  let at = start + 2;
  while (at < end) {
    const nul = b.indexOf(0, at);
    if (nul < 0 || nul >= end) return null; // unterminated
    fields.push(latin1(b, at, nul));
    at = nul + 1;
  }
  if (fields.length < 2 || fields.length % 2 !== 0) return null;
  const filename = fields[0]!;
  const mode = fields[1]!.toLowerCase();
  if (filename.length === 0 || (mode !== 'netascii' && mode !== 'octet' && mode !== 'mail')) return null;
  const options: [string, string][] = [];
  for (let i = 2; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.length === 0 || name.length > MAX_FIELD || value.length > MAX_FIELD) return null;
    options.push([name.toLowerCase(), value]);
  }
  return { opcode, filename, mode, options };
}

const UDP = IpProto.Udp;

function requestOut(p: AlgPacket): void {
  if (!p.insideIsClient) return;
  if (parseTftpRequest(p.b, p.start, p.end) === null) {
    p.error(AlgError.Malformed);
    return;
  }
  p.expect(UDP, p.insidePort, p.remote);
}

export const tftp: AlgHelper = {
  name: 'tftp',
  proto: UDP,
  ports: [TFTP_PORT],
  match: (proto, port) => proto === UDP && port === TFTP_PORT,
  outbound: requestOut,
};
