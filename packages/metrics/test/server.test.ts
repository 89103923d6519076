/**
 * server.test.ts — the HTTP endpoint: /metrics, /, 404, 405, HEAD, a failing registry,
 * malformed requests, refusing every-interface binds, close(), and parseListen's errors.
 * Every server here binds 127.0.0.1.
 */
import { connect } from 'node:net';

import test from 'ava';
import { Registry } from 'prom-client';

import { sharedMemorySource } from '../src/actor.js';
import { createMasqRegistry } from '../src/registry.js';
import { isWildcardHost, parseListen, startMetricsServer, type MetricsServer } from '../src/server.js';
import type { MetricsSource } from '../src/source.js';
import { filledSource } from './filled.js';
import { makeInit } from './helpers.js';

async function withServer(t: { teardown(fn: () => Promise<void>): void }, source: MetricsSource = filledSource()): Promise<{ server: MetricsServer; base: string }> {
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: createMasqRegistry(source, { collectProcess: false }) });
  t.teardown(() => server.close());
  return { server, base: `http://127.0.0.1:${server.address.port}` };
}

/** Send raw bytes, return what came back before the server closed the connection. */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (got += d));
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
    sock.setTimeout(5000, () => sock.destroy());
    sock.end(request);
  });
}

test('GET /metrics serves the exposition with the registry content type', async (t) => {
  const { server, base } = await withServer(t);
  t.is(server.address.host, '127.0.0.1');
  t.true(server.address.port > 0);
  const res = await fetch(`${base}/metrics`);
  t.is(res.status, 200);
  t.is(res.headers.get('content-type'), Registry.PROMETHEUS_CONTENT_TYPE);
  const body = await res.text();
  t.regex(body, /^masq_packets_total\{direction="out",proto="udp"\} 303$/m);
  // A query string does not change the path.
  t.is((await fetch(`${base}/metrics?x=1`)).status, 200);
});

test('/ links to /metrics; unknown paths are 404; other methods 405; HEAD has no body', async (t) => {
  const { base } = await withServer(t);
  const index = await fetch(`${base}/`);
  t.is(index.status, 200);
  t.regex(await index.text(), /<a href="\/metrics">/);
  for (const path of ['/nope', '/metrics/', '/Metrics', '/favicon.ico']) {
    const res = await fetch(base + path);
    t.is(res.status, 404, path);
    await res.text();
  }
  const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
  t.is(post.status, 405);
  t.is(post.headers.get('allow'), 'GET, HEAD');
  await post.text();
  const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.true(Number(head.headers.get('content-length')) > 1000);
  t.is(await head.text(), '');
});

test('a registry that throws gives a 500 with the message, and the server keeps serving', async (t) => {
  const broken: MetricsSource = {
    ...sharedMemorySource(makeInit()),
    partitions: () => {
      throw new Error('shared memory gone');
    },
  };
  const { base } = await withServer(t, broken);
  const res = await fetch(`${base}/metrics`);
  t.is(res.status, 500);
  t.regex(await res.text(), /error collecting metrics: shared memory gone/);
  t.is((await fetch(`${base}/`)).status, 200);
});

test('malformed requests get 400 and do not take the server down', async (t) => {
  const { server, base } = await withServer(t);
  const port = server.address.port;
  t.regex(await raw(port, 'GARBAGE\r\n\r\n'), /^HTTP\/1\.1 400/);
  t.regex(await raw(port, 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'), /^HTTP\/1\.1 400/);
  t.regex(await raw(port, `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\nX: ${'b'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 431|^HTTP\/1\.1 400/);
  t.regex(await raw(port, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 404/);
  await raw(port, 'GET /metr'); // half a request, then the client goes away
  t.is((await fetch(`${base}/metrics`)).status, 200);
});

test('refuses every-interface addresses unless allowAll, and says what to pass instead', async (t) => {
  const registry = createMasqRegistry(filledSource(), { collectProcess: false });
  for (const host of ['0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0', '', '::ffff:0.0.0.0']) {
    await t.throwsAsync(startMetricsServer({ host, port: 0, registry }), {
      message: /refusing to serve metrics on every interface .*Pass the explicit address to listen on \(e\.g\. 127\.0\.0\.1:9464 .*allowAll: true/s,
    }, JSON.stringify(host));
  }
  for (const host of ['127.0.0.1', '::1', '10.0.0.1', 'localhost', '0.0.0.1']) t.false(isWildcardHost(host), host);
});

test('a port in use gives a clear error', async (t) => {
  const { server } = await withServer(t);
  const registry = createMasqRegistry(filledSource(), { collectProcess: false });
  await t.throwsAsync(startMetricsServer({ host: '127.0.0.1', port: server.address.port, registry }), {
    message: new RegExp(`^cannot listen for metrics on 127\\.0\\.0\\.1:${server.address.port}: .*EADDRINUSE`),
  });
  await t.throwsAsync(startMetricsServer({ host: '127.0.0.1', port: 70000, registry }), { message: /from 0 to 65535/ });
});

test('close() ends keep-alive connections, resolves, and is idempotent', async (t) => {
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry: createMasqRegistry(filledSource(), { collectProcess: false }) });
  const res = await fetch(`http://127.0.0.1:${server.address.port}/metrics`, { headers: { connection: 'keep-alive' } });
  await res.text();
  const started = Date.now();
  const a = server.close();
  t.is(server.close(), a);
  await a;
  t.true(Date.now() - started < 2000);
  await t.throwsAsync(fetch(`http://127.0.0.1:${server.address.port}/metrics`));
});

test('parseListen accepts HOST:PORT and [IPv6]:PORT', (t) => {
  t.deepEqual(parseListen('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
  t.deepEqual(parseListen(' 10.1.2.3:1 '), { host: '10.1.2.3', port: 1 });
  t.deepEqual(parseListen('[::1]:65535'), { host: '::1', port: 65535 });
  t.deepEqual(parseListen('localhost:9464'), { host: 'localhost', port: 9464 });
  t.deepEqual(parseListen('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 }); // refused later, by the server
});

test('parseListen errors say what is wrong and what was expected', (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/],
    ['127.0.0.1', /missing ":PORT"/],
    ['127.0.0.1:', /missing port after ":"/],
    [':9464', /missing host; give the address to listen on/],
    ['127.0.0.1:http', /port "http" is not a number/],
    ['127.0.0.1:0', /port 0 is out of range 1-65535/],
    ['127.0.0.1:65536', /port 65536 is out of range 1-65535/],
    ['127.0.0.1:-1', /port "-1" is not a number/],
    ['::1:9464', /write an IPv6 address in brackets, e\.g\. \[::1\]:9464/],
    ['[::1:9464', /missing "\]"/],
    ['[::1]9464', /missing ":PORT" after "\]"/],
    ['[127.0.0.1]:9464', /"127\.0\.0\.1" is not an IPv6 address/],
    ['300.1.1.1:9464', /"300\.1\.1\.1" is not a valid IPv4 address/],
    ['my_host:9464', /"my_host" is neither an IPv4 address nor a hostname/],
  ];
  for (const [input, why] of cases) {
    const err = t.throws(() => parseListen(input), undefined, input);
    t.regex(err!.message, why, input);
    t.true(err!.message.startsWith(`invalid listen address ${JSON.stringify(input)}: `), input);
    t.regex(err!.message, /expected HOST:PORT, e\.g\. 127\.0\.0\.1:9464 or \[::1\]:9464/);
  }
});
