/**
 * sockets.ts — small socket helpers shared by the traffic tools (peer.ts, ../gateway/probe.ts):
 * a TCP connect bounded in time.
 */
import { connect, type Socket } from 'node:net';

/** Connect to host:port, or reject after timeoutMs (the socket is destroyed). */
export function tcpConnect(host: string, port: number, timeoutMs: number, allowHalfOpen = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
