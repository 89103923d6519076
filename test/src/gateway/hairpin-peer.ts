/**
 * hairpin-peer.ts — the two sides of a one-way hairpin for the end-to-end tests: host B makes
 * a mapping by talking to an outside server only, then serves on the same local port; host A
 * reaches B through B's external endpoint, which B never used toward the gateway's address.
 *
 *     node dist/src/gateway/hairpin-peer.js <subcommand> --flag value ...
 *
 *   udp-b --lport L --server S --port P [--seconds N]
 *       From local port L send `map` to S:P (a reflecting echo server: it answers with the
 *       source it saw); print {"event":"mapped","seen":"ADDR:PORT"}. Then, for N seconds,
 *       answer every datagram from anyone else with `echo:<data>` and print
 *       {"event":"echoed","from":…,"port":…,"data":…}.
 *   udp-a --to A --port P [--lport L] [--timeout ms]
 *       Send `ping-<i>` to A:P every 200 ms until an answer comes; print one result line
 *       {"ok":true,"from":…,"port":…,"data":…,"localPort":…}.
 *   tcp-b --lport L --server S --port P [--seconds N]
 *       Connect from local port L to the echo server S:P, exchange `map`, close; print
 *       {"event":"mapped"}; then listen on L (its mapping stays while the gateway keeps the
 *       closed session), print {"event":"listening"}, echo what each connection sends and
 *       print {"event":"accepted","remote":…,"port":…}.
 *   tcp-a --to A --port P [--timeout ms]
 *       Connect (retrying refused or unanswered attempts until the timeout), send `hello`, wait
 *       for it back; print {"ok":true,"reply":…,"localPort":…}.
 *
 * Contract: one JSON object per line on stdout; every wait is bounded (a hard limit of 60 s).
 */

import { createSocket } from 'node:dgram';
import { createServer, connect, type Socket } from 'node:net';
import { emit, int, runSubcommands, str, type Flags } from '../peers/args.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function udpB(flags: Flags): Promise<number> {
  const lport = int(flags, 'lport', 1, 65535);
  const server = str(flags, 'server');
  const port = int(flags, 'port', 1, 65535);
  const seconds = int(flags, 'seconds', 1, 60, 20);
  return new Promise((resolve, reject) => {
    const sock = createSocket({ type: 'udp4', reuseAddr: true });
    sock.once('error', reject);
    sock.on('message', (msg, rinfo) => {
      const data = msg.toString('utf8');
      if (rinfo.address === server && rinfo.port === port) {
        emit({ event: 'mapped', seen: data });
        return;
      }
      sock.send(`echo:${data}`, rinfo.port, rinfo.address);
      emit({ event: 'echoed', from: rinfo.address, port: rinfo.port, data });
    });
    sock.bind(lport, () => {
      sock.send('map', port, server);
      setTimeout(() => {
        sock.close();
        resolve(0);
      }, seconds * 1000);
    });
  });
}

function udpA(flags: Flags): Promise<number> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const lport = int(flags, 'lport', 0, 65535, 0);
  const timeoutMs = int(flags, 'timeout', 1, 30_000, 5_000);
  return new Promise((resolve) => {
    const sock = createSocket({ type: 'udp4', reuseAddr: true });
    let i = 0;
    let ticker: NodeJS.Timeout | undefined;
    const done = (result: object, code: number): void => {
      clearInterval(ticker);
      clearTimeout(deadline);
      sock.close();
      emit(result);
      resolve(code);
    };
    const deadline = setTimeout(() => done({ ok: false, error: `no answer within ${timeoutMs} ms`, sent: i }, 1), timeoutMs);
    sock.on('message', (msg, rinfo) => done({ ok: true, from: rinfo.address, port: rinfo.port, data: msg.toString('utf8'), localPort: sock.address().port }, 0));
    sock.bind(lport, () => {
      const send = (): void => {
        sock.send(`ping-${i++}`, port, to);
      };
      send();
      ticker = setInterval(send, 200);
    });
  });
}

async function tcpB(flags: Flags): Promise<number> {
  const lport = int(flags, 'lport', 1, 65535);
  const server = str(flags, 'server');
  const port = int(flags, 'port', 1, 65535);
  const seconds = int(flags, 'seconds', 1, 60, 20);
  await new Promise<void>((resolve, reject) => {
    const s = connect({ host: server, port, localPort: lport });
    s.once('error', reject);
    s.once('connect', () => s.write('map'));
    s.once('data', () => s.end());
    s.once('close', () => resolve());
  });
  emit({ event: 'mapped' });
  const srv = createServer((c: Socket) => {
    emit({ event: 'accepted', remote: c.remoteAddress, port: c.remotePort });
    c.on('data', (d) => c.write(d));
    c.on('error', () => c.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(lport, '0.0.0.0', () => resolve());
  });
  emit({ event: 'listening' });
  await sleep(seconds * 1000);
  srv.close();
  return 0;
}

async function tcpA(flags: Flags): Promise<number> {
  const to = str(flags, 'to');
  const port = int(flags, 'port', 1, 65535);
  const timeoutMs = int(flags, 'timeout', 1, 30_000, 10_000);
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    const r = await new Promise<{ reply: string; localPort: number } | string>((resolve) => {
      const s = connect({ host: to, port, timeout: 2_000 });
      let got = '';
      s.once('connect', () => s.write('hello'));
      s.on('data', (d) => {
        got += d.toString('utf8');
        if (got.length >= 5) {
          const localPort = s.localPort ?? 0;
          s.destroy();
          resolve({ reply: got, localPort });
        }
      });
      s.once('timeout', () => {
        s.destroy();
        resolve('timeout');
      });
      s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    if (typeof r !== 'string') {
      emit({ ok: true, ...r });
      return 0;
    }
    last = r;
    await sleep(200);
  }
  emit({ ok: false, error: `no connection within ${timeoutMs} ms (last: ${last})` });
  return 1;
}

runSubcommands({ 'udp-b': udpB, 'udp-a': udpA, 'tcp-b': tcpB, 'tcp-a': tcpA }, 60_000);
