/**
 * tun.bench.ts — microseconds per packet for writeBatch and readBatch at batch sizes 1 and 64,
 * through a real TUN device inside a private network namespace (created here, always deleted).
 *
 *   node packages/tun/dist/bench/tun.bench.js          (as root; re-runs itself in the namespace)
 *
 * What is timed:
 *   writeBatch  92-byte IPv4/UDP packets from 10.77.0.2 to a UDP socket on the TUN address, so
 *               each write includes the kernel's IPv4 input and UDP delivery to the socket.
 *   readBatch   92-byte datagrams that a socket sent to 10.77.0.2 (routed into the TUN) before
 *               the clock starts; each read takes one packet off the TUN's queue.
 * Rounds of 256 packets (the receiving socket is drained between rounds, untimed), a bounded
 * number of rounds, after a warm-up. Each line gives the mean and the best round (on a shared
 * machine the mean carries the time the bench was preempted; the best round is the cost itself).
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';

import { poll, readBatch, TunDevice, writeBatch } from '../src/index.js';
import { buildUdp, ip } from '../test/helpers/packet.js';

const ROUND = 256;
const ROUNDS = 200;
const WARMUP = 20;
const SLOT = 2048;
const PAYLOAD = 64;

function outer(): void {
  if (process.getuid?.() !== 0) {
    console.error('tun.bench: needs root (network namespace + TUN device)');
    process.exit(1);
  }
  const ns = `mqtun-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
  const del = (): void => {
    spawnSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
  };
  process.on('SIGINT', () => {
    del();
    process.exit(130);
  });
  try {
    const add = spawnSync('ip', ['netns', 'add', ns], { stdio: 'inherit' });
    if (add.status !== 0) throw new Error(`ip netns add ${ns} failed`);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, fileURLToPath(import.meta.url), '--inner'], {
      stdio: 'inherit',
      timeout: 300_000,
    });
    if (r.status !== 0) process.exitCode = 1;
  } finally {
    del();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Split slot i*SLOT offsets into per-call arrays of `batch` (built once, outside the timing). */
function batches(batch: number): { offs: Uint32Array[]; lens: Uint32Array[] } {
  const offs: Uint32Array[] = [];
  const lens: Uint32Array[] = [];
  for (let i = 0; i < ROUND; i += batch) {
    offs.push(new Uint32Array(batch).map((_, k) => (i + k) * SLOT));
    lens.push(new Uint32Array(batch));
  }
  return { offs, lens };
}

async function inner(): Promise<void> {
  const dev = TunDevice.open({ name: 'mqbench0' });
  try {
    dev.disableIpv6();
    dev.setAddress('10.77.0.1', 24);
    dev.setTxQueueLen(4 * ROUND);
    dev.up();
    const fd = dev.fds[0];
    const buf = new Uint8Array(new SharedArrayBuffer(ROUND * SLOT));
    const lines: string[] = [];

    // writeBatch
    const rx = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    await new Promise<void>((r) => rx.bind(9000, '10.77.0.1', () => r()));
    let delivered = 0;
    rx.on('message', () => delivered++);
    const pkt = buildUdp({ src: ip('10.77.0.2'), dst: ip('10.77.0.1'), sport: 9001, dport: 9000, payload: new Uint8Array(PAYLOAD) });
    for (let i = 0; i < ROUND; i++) buf.set(pkt, i * SLOT);
    const errors = new Uint32Array(2);
    for (const batch of [1, 64]) {
      const { offs, lens } = batches(batch);
      for (const l of lens) l.fill(pkt.length);
      let ns = 0n;
      let best = Infinity;
      let written = 0;
      delivered = 0;
      for (let round = 0; round < WARMUP + ROUNDS; round++) {
        const t0 = process.hrtime.bigint();
        for (let c = 0; c < offs.length; c++) {
          const n = writeBatch(fd, buf, offs[c], lens[c], batch, errors);
          if (n !== batch || errors[0] !== 0) throw new Error(`writeBatch returned ${n}, errors ${errors[0]}/${errors[1]}`);
        }
        const dt = process.hrtime.bigint() - t0;
        if (round >= WARMUP) {
          ns += dt;
          best = Math.min(best, Number(dt) / ROUND);
          written += ROUND;
        }
        // Let the receiving socket drain (untimed) so every round measures delivery, not drops.
        const want = (round + 1) * ROUND;
        for (let w = 0; w < 100 && delivered < want; w++) await sleep(1);
      }
      const us = Number(ns) / written / 1000;
      lines.push(
        `writeBatch  batch ${String(batch).padStart(2)}: ${us.toFixed(3)} µs/packet, best round ${(best / 1000).toFixed(3)}  ` +
          `(${written} packets, ${((delivered / ((WARMUP + ROUNDS) * ROUND)) * 100).toFixed(1)}% delivered to the socket)`,
      );
    }
    rx.close();

    // readBatch
    const tx = dgram.createSocket('udp4');
    await new Promise<void>((r) => tx.bind(0, '10.77.0.1', () => r()));
    const payload = new Uint8Array(PAYLOAD);
    const fill = (): Promise<void[]> =>
      Promise.all(
        Array.from(
          { length: ROUND },
          () => new Promise<void>((res, rej) => tx.send(payload, 9, '10.77.0.2', (e) => (e ? rej(e) : res()))),
        ),
      );
    for (const batch of [1, 64]) {
      const { offs, lens } = batches(batch);
      let ns = 0n;
      let best = Infinity;
      let read = 0;
      for (let round = 0; round < WARMUP + ROUNDS; round++) {
        await fill();
        if (poll(fd, -1, 1000) !== 1) throw new Error('nothing to read');
        let got = 0;
        const t0 = process.hrtime.bigint();
        for (let c = 0; c < offs.length; c++) {
          const n = readBatch(fd, buf, offs[c], SLOT, lens[c], batch);
          if (n < 0) throw new Error(`readBatch returned ${n}`);
          got += n;
        }
        const dt = process.hrtime.bigint() - t0;
        if (got !== ROUND) throw new Error(`round read ${got} of ${ROUND} packets`);
        if (round >= WARMUP) {
          ns += dt;
          best = Math.min(best, Number(dt) / ROUND);
          read += got;
        }
      }
      const us = Number(ns) / read / 1000;
      lines.push(`readBatch   batch ${String(batch).padStart(2)}: ${us.toFixed(3)} µs/packet, best round ${(best / 1000).toFixed(3)}  (${read} packets)`);
    }
    tx.close();

    // An empty queue: the cost of a readBatch that finds nothing (EAGAIN) and of poll(0).
    const offs1 = new Uint32Array([0]);
    const lens1 = new Uint32Array(1);
    const N = 100_000;
    let t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) readBatch(fd, buf, offs1, SLOT, lens1, 1);
    const emptyUs = Number(process.hrtime.bigint() - t0) / N / 1000;
    t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) poll(fd, -1, 0);
    const pollUs = Number(process.hrtime.bigint() - t0) / N / 1000;
    lines.push(`readBatch on an empty queue (EAGAIN): ${emptyUs.toFixed(3)} µs/call`);
    lines.push(`poll(fd, -1, 0) with nothing ready: ${pollUs.toFixed(3)} µs/call`);

    console.log(`@masq/tun bench (node ${process.version}, ${PAYLOAD + 28}-byte packets, ${ROUNDS} rounds of ${ROUND})`);
    for (const l of lines) console.log(`  ${l}`);
  } finally {
    dev.release();
  }
  process.exit(0);
}

if (process.argv[2] === '--inner') void inner();
else outer();
