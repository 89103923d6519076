/**
 * server.ts — the HTTP endpoint Prometheus scrapes, and the parser for its listen address.
 *
 * Contract:
 *  - GET/HEAD /metrics: the registry's exposition, with the registry's content type.
 *    GET/HEAD /: the status page when a `status` router is given (status/api.ts: the page,
 *    its files and /api/*, each response with its security headers), else a small HTML page
 *    linking to /metrics. Any other path: 404. Any other
 *    method: 405 with `Allow: GET, HEAD`. A registry that throws gives a 500 with the message;
 *    a malformed request gives a 400 on the socket. No request can crash the process.
 *  - Loopback by default (127.0.0.1:9464, the port registered for OpenTelemetry/Prometheus
 *    exporters). Binding every interface (0.0.0.0, ::, or an empty host) is refused unless
 *    `allowAll: true`: metrics name inside hosts and external addresses, so exposing them
 *    should be a decision, made by naming the interface's address.
 *  - parseListen("HOST:PORT") accepts a dotted quad, a hostname or a bracketed IPv6 address
 *    ("[::1]:9464"), and a port 1..65535; every error says what was expected.
 *  - close() stops accepting, ends open connections (keep-alive ones included) and resolves
 *    once the server is closed. Calling it again returns the same promise.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

export const DEFAULT_METRICS_HOST = '127.0.0.1';
export const DEFAULT_METRICS_PORT = 9464;

export interface ListenAddress {
  host: string;
  port: number;
}

export interface MetricsServerOptions {
  /** Address to bind. Default 127.0.0.1. */
  host?: string;
  /** Port to bind; 0 picks a free one (see `address`). Default 9464. */
  port?: number;
  registry: Registry;
  /** Permit 0.0.0.0 / :: (every interface). Default false. */
  allowAll?: boolean;
  /** The status page's router (status/api.ts); absent: / is a link to /metrics. */
  status?: StatusRouter;
}

/** Answers the status page's paths; null for a path it does not serve. */
export interface StatusRouter {
  route(path: string, params: URLSearchParams): { status: number; type: string; body: string | Buffer } | null;
  readonly headers: Readonly<Record<string, string>>;
}

export interface MetricsServer {
  /** The bound address (the actual port when 0 was asked for). */
  readonly address: ListenAddress;
  close(): Promise<void>;
}

/** True for addresses that make a socket listen on every interface. */
export function isWildcardHost(host: string): boolean {
  const h = host.trim();
  if (h === '' || h === '*') return true;
  if (isIP(h) === 4) return h.split('.').every((o) => Number(o) === 0);
  if (isIP(h) === 6) {
    const lower = h.toLowerCase();
    // "::", "::0", "0:0:0:0:0:0:0:0", and the v4-mapped "::ffff:0.0.0.0".
    return /^[0:]+$/.test(lower) || /^[0:]*:ffff:0+\.0+\.0+\.0+$/.test(lower);
  }
  return false;
}

/**
 * Parse "HOST:PORT" (IPv6 as "[ADDR]:PORT"). Throws an Error that names the input and the
 * expected form.
 */
export function parseListen(s: string): ListenAddress {
  const input = s.trim();
  const fail = (why: string): never => {
    throw new Error(`invalid listen address ${JSON.stringify(s)}: ${why} (expected HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464)`);
  };
  if (input === '') fail('empty');
  let host: string;
  let portText: string;
  if (input.startsWith('[')) {
    const close = input.indexOf(']');
    if (close < 0) fail('missing "]" after the IPv6 address');
    host = input.slice(1, close);
    if (isIP(host) !== 6) fail(`"${host}" is not an IPv6 address`);
    const rest = input.slice(close + 1);
    if (!rest.startsWith(':')) fail('missing ":PORT" after "]"');
    portText = rest.slice(1);
  } else {
    const colon = input.lastIndexOf(':');
    if (colon < 0) fail('missing ":PORT"');
    host = input.slice(0, colon);
    portText = input.slice(colon + 1);
    if (host.includes(':')) fail('write an IPv6 address in brackets, e.g. [::1]:9464');
    if (host === '') fail('missing host; give the address to listen on, e.g. 127.0.0.1:9464');
    if (!/^[A-Za-z0-9.-]+$/.test(host)) fail(`"${host}" is neither an IPv4 address nor a hostname`);
    if (/^[0-9.]+$/.test(host) && isIP(host) !== 4) fail(`"${host}" is not a valid IPv4 address`);
  }
  if (portText === '') fail('missing port after ":"');
  if (!/^[0-9]{1,5}$/.test(portText)) fail(`port "${portText}" is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) fail(`port ${port} is out of range 1-65535`);
  return { host, port };
}

const INDEX_PAGE =
  '<!doctype html>\n<html><head><title>masq metrics</title></head>\n' +
  '<body><h1>masq metrics</h1><p><a href="/metrics">/metrics</a></p></body></html>\n';

function send(res: ServerResponse, head: boolean, status: number, type: string, body: string | Buffer, extra: Readonly<Record<string, string>> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : body);
}

async function handle(registry: Registry, status: StatusRouter | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? '';
  const head = method === 'HEAD';
  const url = req.url ?? '';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (method !== 'GET' && !head) {
    send(res, false, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
    return;
  }
  if (path === '/metrics') {
    let body: string;
    try {
      body = await registry.metrics();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      send(res, head, 500, 'text/plain; charset=utf-8', `error collecting metrics: ${msg}\n`);
      return;
    }
    send(res, head, 200, registry.contentType, body);
    return;
  }
  if (status !== undefined) {
    let r: ReturnType<StatusRouter['route']>;
    try {
      r = status.route(path, new URLSearchParams(q < 0 ? '' : url.slice(q + 1)));
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      send(res, head, 500, 'application/json; charset=utf-8', JSON.stringify({ error: msg }), status.headers);
      return;
    }
    if (r !== null) {
      send(res, head, r.status, r.type, r.body, status.headers);
      return;
    }
  } else if (path === '/') {
    send(res, head, 200, 'text/html; charset=utf-8', INDEX_PAGE);
    return;
  }
  send(res, head, 404, 'text/plain; charset=utf-8', 'not found; metrics are at /metrics\n');
}

/** Start serving `registry`. Rejects if the address is refused or cannot be bound. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { host = DEFAULT_METRICS_HOST, port = DEFAULT_METRICS_PORT, registry, allowAll = false, status } = options;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`metrics port must be an integer from 0 to 65535, got ${port}`);
  }
  if (isWildcardHost(host) && !allowAll) {
    throw new Error(
      `refusing to serve metrics on every interface (${JSON.stringify(host)}): they name inside hosts and ` +
        `external addresses. Pass the explicit address to listen on (e.g. 127.0.0.1:${port || DEFAULT_METRICS_PORT} ` +
        `or the management interface's address), or pass allowAll: true if every interface is intended.`,
    );
  }

  const server = createServer((req, res) => {
    handle(registry, status, req, res).catch(() => {
      // Only a failed write can land here (the client went away): nothing to answer.
      res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new Error(`cannot listen for metrics on ${formatHostPort(host, port)}: ${err.message}`));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // After listening, an error on the server object must not become an uncaught exception.
  server.on('error', () => {});

  const bound = server.address() as AddressInfo;
  const address: ListenAddress = { host: bound.address, port: bound.port };
  let closing: Promise<void> | null = null;
  return {
    address,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** "host:port", brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
