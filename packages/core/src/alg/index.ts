/**
 * alg/index.ts — the protocol-helper seam's public surface (types, registry, engine, pins,
 * sequence arithmetic, the FTP parsers).
 */
export * from './types.js';
export * from './registry.js';
export * from './seq.js';
export * from './pins.js';
export * from './engine.js';
export { ftp, parsePort, parseEprt, parse227, parse229, parseHostPort, type FtpEndpoint } from './ftp.js';
export { rtsp, parseSetupRequest, parseSetupReply, rewriteTransport, RTSP_PORT, type RtspTransport, type TransportSpec } from './rtsp.js';
export { tftp, parseTftpRequest, TFTP_PORT, type TftpRequest } from './tftp.js';
export { irc, parseDccOffer, rewriteDccOffer, IRC_PORT, type DccOffer } from './irc.js';
