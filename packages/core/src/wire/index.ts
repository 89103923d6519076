/** The packet views, one namespace per header. */
export * as ipv4 from './ipv4.js';
export * as tcp from './tcp.js';
export * as udp from './udp.js';
export * as icmp from './icmp.js';
export * as checksum from './checksum.js';
export * from './bytes.js';
export { formatPacket } from './print.js';
export * from './result.js';
