/**
 * status-cost.bench.ts — what the status page costs the packet path, measured: `pnpm
 * bench:status [-- --rounds=N --sessions=N]`. Figures printed, not a test.
 *
 * One gateway (`masq run`, 1 worker) in a test topology, its table filled with 100,000 UDP
 * sessions from two inside hosts (test/src/status/sweep.ts, bounded), then iperf3 TCP
 * throughput and 64-byte UDP packet rate through it while, side by side in each round, one
 * of these readers runs in the gateway namespace:
 *    none           nobody reads
 *    page           one open status page: /api/status + /api/sessions (50 rows) every 2 s
 *    scan-loop      /api/sessions back to back: a full-table scan on the metrics thread
 *                   without pause (the worst any number of open pages can do)
 *    control-plane  `masq table --json` back to back: the listing through the control
 *                   plane, read from shared memory on the gateway's main thread in steps
 *                   (cli shared-listing.ts; before that it ran on the translation worker
 *                   and stalled its packets, the figures in docs/STATUS.md); a listing the
 *                   client gives up on (10 s) counts as a timeout, not a read
 * and, first, 300 pings at 10 ms intervals through the gateway (RTT average and maximum: a
 * worker stalled by a listing shows as a maximum). Each result is the median over the rounds,
 * with its ratio to `none` from the same run.
 * Bounded: every load has a duration, the whole run stops after 15 minutes, the topology
 * (namespaces, processes) is destroyed on exit, failure included.
 */
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { benchArgs, benchOptions, endOnClosedOutput } from '@masq/core/bench/cli';

import { canRunNetns } from '../src/harness/preflight.js';
import { createTopology, type Topology } from '../src/harness/index.js';
import { MASQ_MAIN, startMasq, type RunningGateway } from '../src/gateway/start.js';
import { stats } from '../src/gateway/e2e.js';

const SWEEP = new URL('../src/status/sweep.js', import.meta.url).pathname;
const POLL = new URL('../src/status/poll.js', import.meta.url).pathname;
const BASE = 'http://127.0.0.1:9464';
const READERS = ['none', 'page', 'scan-loop', 'control-plane'] as const;
type Reader = (typeof READERS)[number];

interface Sample {
  reader: Reader;
  tcpMbps: number;
  udpPps: number;
  rttAvgMs: number;
  rttMaxMs: number;
  /** Reader requests completed during the two measurements. */
  reads: number;
  scanMs: string;
}

async function iperf(topo: Topology, args: readonly string[], seconds: number): Promise<{ bps: number; pps: number }> {
  const r = await topo.exec(topo.inside[0].ns, ['iperf3', '-c', topo.server, '-p', '5201', '-t', String(seconds), '-J', '--connect-timeout', '3000', ...args], { timeoutMs: (seconds + 10) * 1000 });
  const j = JSON.parse(r.stdout) as { error?: string; end?: { sum_received?: { bits_per_second: number; seconds: number; packets?: number; lost_packets?: number } } };
  if (j.error !== undefined || j.end?.sum_received === undefined) throw new Error(`iperf3: ${j.error ?? 'no sum_received'}`);
  const rx = j.end.sum_received;
  return { bps: rx.bits_per_second, pps: rx.packets !== undefined && rx.lost_packets !== undefined ? (rx.packets - rx.lost_packets) / rx.seconds : 0 };
}

async function ping(topo: Topology): Promise<{ avg: number; max: number }> {
  const r = await topo.exec(topo.inside[0].ns, ['ping', '-n', '-q', '-c', '300', '-i', '0.01', '-W', '1', topo.server], { timeoutMs: 20_000 });
  const m = /= [\d.]+\/([\d.]+)\/([\d.]+)\//.exec(r.stdout);
  if (m === null) throw new Error(`ping: ${r.stdout}${r.stderr}`);
  return { avg: Number(m[1]), max: Number(m[2]) };
}

/** Start `reader` for `seconds`; resolves with the number of reads it made. */
function startReader(topo: Topology, gw: RunningGateway, reader: Reader, seconds: number): Promise<{ reads: number; scanMs: string }> {
  const poll = async (urls: string[], interval: number): Promise<{ reads: number; scanMs: string }> => {
    const r = await topo.exec(topo.ns.gw, [process.execPath, POLL, ...urls.flatMap((u) => ['--url', u]), '--interval', String(interval), '--seconds', String(seconds)], { timeoutMs: (seconds + 30) * 1000 });
    const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { requests: number; scanMs: [number, number] };
    return { reads: j.requests, scanMs: `p50 ${j.scanMs[0]} / max ${j.scanMs[1]}` };
  };
  switch (reader) {
    case 'none':
      return new Promise((r) => setTimeout(() => r({ reads: 0, scanMs: '' }), seconds * 1000));
    case 'page':
      return poll([`${BASE}/api/status`, `${BASE}/api/sessions?limit=50`], 2000);
    case 'scan-loop':
      return poll([`${BASE}/api/sessions?limit=50`], 0);
    case 'control-plane':
      return (async () => {
        const t0 = Date.now();
        let reads = 0;
        let timeouts = 0;
        while (Date.now() - t0 < seconds * 1000) {
          const r = await topo.exec(topo.ns.gw, [process.execPath, MASQ_MAIN, 'table', '--json', '--control', gw.control], { timeoutMs: 60_000 });
          if (r.code === 0) reads++;
          else if (/did not answer/.test(r.stderr)) timeouts++;
          else throw new Error(`masq table: ${r.stderr}`);
        }
        return { reads, scanMs: timeouts > 0 ? `${timeouts} timed out` : '' };
      })();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function main(argv: readonly string[]): Promise<number> {
  const opts = benchOptions(argv, ['rounds', 'sessions'], 'status bench', import.meta.url);
  const pre = canRunNetns();
  if (!pre.ok) {
    process.stdout.write(`status bench skipped: ${pre.reason ?? 'unknown'}\n`);
    return 0;
  }
  const rounds = Math.max(1, Math.min(10, Number(opts.get('rounds') ?? 3)));
  const dports = Math.max(1, Math.min(20_000, Math.ceil(Number(opts.get('sessions') ?? 100_000) / 50)));
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  const limit = setTimeout(() => {
    log('status bench: stopped after 15 minutes');
    process.exit(2);
  }, 15 * 60_000);
  limit.unref();
  log(`status bench: ${cpus().length} CPUs, Node ${process.version}, ${rounds} rounds, ${50 * dports} sessions`);
  const topo = await createTopology({ mode: 'masq', hosts: 2 });
  const samples: Sample[] = [];
  try {
    const gw = await startMasq(topo, {});
    try {
      // Two inside hosts, 25 source ports each: under the default per-host limit (65,536).
      for (let i = 0; i < 3; i++) {
        for (const h of topo.inside) {
          const r = await topo.exec(h.ns, [process.execPath, SWEEP, '--to', topo.servers[1], '--sockets', '25', '--dports', String(dports), '--sport-base', '20000', '--dport-base', '10000', '--timeout', '60000'], { timeoutMs: 70_000 });
          if (r.code !== 0) throw new Error(`sweep: ${r.stderr}`);
        }
        const live = Object.values((await stats(gw)).sessions).reduce((a, b) => a + b, 0);
        log(`sessions live: ${live}`);
        if (live >= 50 * dports) break;
      }
      topo.spawn(topo.serverNs, ['iperf3', '-s', '-B', topo.server, '-p', '5201']);
      await new Promise((r) => setTimeout(r, 500));
      for (let round = 0; round < rounds; round++) {
        for (const reader of READERS) {
          // The reader's own start (a Node process) must not fall into the measurement.
          const load = startReader(topo, gw, reader, 15);
          await new Promise((r) => setTimeout(r, 2500));
          const rtt = await ping(topo);
          const tcp = await iperf(topo, ['-P', '1'], 4);
          const udp = await iperf(topo, ['-u', '-l', '64', '-b', '10G'], 3);
          const l = await load;
          const s: Sample = { reader, tcpMbps: tcp.bps / 1e6, udpPps: udp.pps, rttAvgMs: rtt.avg, rttMaxMs: rtt.max, reads: l.reads, scanMs: l.scanMs };
          log(`round ${round + 1} ${reader}: ping avg ${rtt.avg} max ${rtt.max} ms, TCP ${s.tcpMbps.toFixed(0)} Mbit/s, UDP ${s.udpPps.toFixed(0)} pps, ${s.reads} reads ${s.scanMs}`);
          samples.push(s);
        }
      }
    } finally {
      await gw.stop();
    }
  } finally {
    await topo.destroy();
  }
  const base = samples.filter((s) => s.reader === 'none');
  const tcp0 = median(base.map((s) => s.tcpMbps));
  const udp0 = median(base.map((s) => s.udpPps));
  const lines = ['reader          ping avg/max ms   TCP Mbit/s   ratio   UDP pps   ratio   reads/run'];
  for (const reader of READERS) {
    const mine = samples.filter((s) => s.reader === reader);
    const tcp = median(mine.map((s) => s.tcpMbps));
    const udp = median(mine.map((s) => s.udpPps));
    lines.push(
      `${reader.padEnd(15)} ${`${median(mine.map((s) => s.rttAvgMs)).toFixed(2)}/${median(mine.map((s) => s.rttMaxMs)).toFixed(1)}`.padStart(15)}   ${tcp.toFixed(0).padStart(10)}   ${(tcp / tcp0).toFixed(2).padStart(5)}   ${udp.toFixed(0).padStart(7)}   ${(udp / udp0).toFixed(2).padStart(5)}   ${String(median(mine.map((s) => s.reads))).padStart(9)}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  endOnClosedOutput();
  main(benchArgs()).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`status bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
