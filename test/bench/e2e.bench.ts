/**
 * e2e.bench.ts — end-to-end gateway benchmark in network namespaces (a benchmark: it reports,
 * it does not pass or fail on numbers).
 *
 *     node test/dist/bench/e2e.bench.js [mode ...] [--json]
 *
 * Owns: the measurements and the report. Per mode (see modes.ts), on a fresh topology with two
 * inside hosts and the server directly behind the gateway:
 * - TCP throughput: `iperf3 -c server -t 5 -J`, one stream, receiver-side bits per second;
 * - UDP small packets: `iperf3 -u -l 64 -b 10G -t 3 -J`, datagrams delivered per second at the
 *   receiver (sent minus lost), with the loss;
 * - TCP connections per second: `peer tcp-connect-rate` (connect, 1-byte echo, close), 3 s;
 * - request/response latency: `peer udp-latency`, 2000 sequential 64-byte UDP round trips,
 *   p50/p99 from hrtime;
 * and, during each, CPU use: the whole machine's busy and softirq time from /proc/stat (kernel
 * forwarding runs in softirq, attributed to no process; this also counts the traffic tools), and
 * for a userspace gateway its own process time from /proc/<pid>/stat. CPU is in cores (1.0 = one
 * core fully busy). Ratios are against `kernel-nat`.
 *
 * Bounded: every step has a time limit and the whole run stops after 170 s (the exit handlers
 * remove the namespaces).
 */

import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { canRunNetns, createTopology, haveTool, type Topology } from '../src/harness/index.js';
import { allModes, BASELINE, getMode, type BenchMode, type GatewayHandle } from './modes.js';

export { registerMode, getMode, allModes, type BenchMode, type GatewayHandle } from './modes.js';

const RUN_LIMIT_MS = 170_000;
const CLK_TCK = 100;

export interface BenchSettings {
  readonly tcpSeconds: number;
  readonly udpSeconds: number;
  readonly cpsSeconds: number;
  readonly latencyCount: number;
}

export const DEFAULT_SETTINGS: BenchSettings = { tcpSeconds: 5, udpSeconds: 3, cpsSeconds: 3, latencyCount: 2000 };

/** CPU used during one measurement, in cores. */
export interface CpuUse {
  readonly hostBusy: number;
  readonly hostSoftirq: number;
  /** The gateway process (userspace modes only). */
  readonly gateway: number | null;
}

export interface Measurement {
  readonly value: number;
  readonly detail: string;
  readonly cpu: CpuUse;
}

export type MetricName = 'tcpMbps' | 'udpPps' | 'tcpCps' | 'latencyP50Us' | 'latencyP99Us';

export interface ModeResult {
  readonly mode: string;
  readonly skipped?: string;
  readonly metrics: Partial<Record<MetricName, Measurement>>;
}

interface CpuSnap {
  readonly busy: number;
  readonly softirq: number;
  readonly total: number;
  readonly gw: number | null;
  readonly at: bigint;
}

function snap(pid: number | null): CpuSnap {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const idle = f[3] + f[4];
  let gw: number | null = null;
  if (pid !== null) {
    try {
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
      gw = Number(fields[11]) + Number(fields[12]);
    } catch {
      gw = null;
    }
  }
  return { busy: total - idle, softirq: f[6], total, gw, at: process.hrtime.bigint() };
}

function cpuBetween(a: CpuSnap, b: CpuSnap): CpuUse {
  const n = cpus().length;
  const dt = b.total - a.total || 1;
  const wall = Number(b.at - a.at) / 1e9;
  return {
    hostBusy: ((b.busy - a.busy) / dt) * n,
    hostSoftirq: ((b.softirq - a.softirq) / dt) * n,
    gateway: a.gw === null || b.gw === null ? null : (b.gw - a.gw) / CLK_TCK / wall,
  };
}

async function measured(pid: number | null, body: () => Promise<{ value: number; detail: string }>): Promise<Measurement> {
  const a = snap(pid);
  const r = await body();
  const b = snap(pid);
  return { ...r, cpu: cpuBetween(a, b) };
}

/** Start `iperf3 -s -1` on the server and wait until it listens (iperf3 buffers its stdout, so ask `ss`). */
async function iperfServer(topo: Topology, port: number): Promise<() => void> {
  const child = topo.spawn(topo.serverNs, ['iperf3', '-s', '-1', '-B', topo.server, '-p', String(port)]);
  const stop = (): void => {
    child.kill('SIGKILL');
  };
  const deadline = Date.now() + 3_000;
  for (;;) {
    const r = await topo.exec(topo.serverNs, ['ss', '-Hltn', `sport = :${port}`], { timeoutMs: 2_000 });
    if (r.code === 0 && r.stdout.includes(`:${port}`)) return stop;
    if (child.exitCode !== null || Date.now() > deadline) {
      stop();
      throw new Error(`iperf3 server on port ${port} not listening after 3 s`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}

interface IperfSum {
  readonly seconds: number;
  readonly bytes: number;
  readonly bits_per_second: number;
  readonly packets?: number;
  readonly lost_packets?: number;
}

interface IperfJson {
  readonly error?: string;
  readonly end?: { readonly sum_sent?: IperfSum; readonly sum_received?: IperfSum };
}

async function iperfClient(topo: Topology, port: number, args: readonly string[], seconds: number): Promise<IperfJson> {
  const r = await topo.exec(topo.inside[0].ns, ['iperf3', '-c', topo.server, '-p', String(port), '-t', String(seconds), '-J', '--connect-timeout', '3000', ...args], {
    timeoutMs: (seconds + 10) * 1000,
  });
  let j: IperfJson;
  try {
    j = JSON.parse(r.stdout) as IperfJson;
  } catch {
    throw new Error(`iperf3 client printed no JSON (exit ${String(r.code)}): ${r.stderr.trim()}`);
  }
  if (j.error !== undefined) throw new Error(`iperf3: ${j.error}`);
  return j;
}

async function tcpThroughput(topo: Topology, pid: number | null, s: BenchSettings): Promise<Measurement> {
  const stop = await iperfServer(topo, 5201);
  try {
    return await measured(pid, async () => {
      const j = await iperfClient(topo, 5201, ['-P', '1'], s.tcpSeconds);
      const rx = j.end?.sum_received;
      if (rx === undefined) throw new Error('iperf3 TCP: no sum_received');
      return { value: rx.bits_per_second / 1e6, detail: `${(rx.bytes / 1e6).toFixed(0)} MB in ${rx.seconds.toFixed(1)} s` };
    });
  } finally {
    stop();
  }
}

async function udpPps(topo: Topology, pid: number | null, s: BenchSettings): Promise<Measurement> {
  const stop = await iperfServer(topo, 5202);
  try {
    return await measured(pid, async () => {
      const j = await iperfClient(topo, 5202, ['-u', '-l', '64', '-b', '10G'], s.udpSeconds);
      const rx = j.end?.sum_received;
      if (rx === undefined || rx.packets === undefined || rx.lost_packets === undefined) throw new Error('iperf3 UDP: no receiver packet counts');
      const delivered = rx.packets - rx.lost_packets;
      const lossPct = rx.packets === 0 ? 0 : (100 * rx.lost_packets) / rx.packets;
      return { value: delivered / rx.seconds, detail: `offered ${(rx.packets / rx.seconds).toFixed(0)} pps, loss ${lossPct.toFixed(1)}%` };
    });
  } finally {
    stop();
  }
}

async function tcpCps(topo: Topology, pid: number | null, s: BenchSettings): Promise<Measurement> {
  const srv = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7100, quiet: true, seconds: 60 });
  try {
    return await measured(pid, async () => {
      const r = await topo.peerRaw(topo.inside[0].ns, 'tcp-connect-rate', { to: topo.server, port: 7100, seconds: s.cpsSeconds, max: 500_000, concurrency: 32 }, { timeoutMs: (s.cpsSeconds + 15) * 1000 });
      const j = r.json;
      if (j === null || typeof j.perSecond !== 'number') throw new Error(`tcp-connect-rate failed: ${r.result.stdout} ${r.result.stderr}`);
      return { value: j.perSecond, detail: `${String(j.connections)} ok, ${String(j.failures)} failed` };
    });
  } finally {
    await srv.stop();
  }
}

async function latency(topo: Topology, pid: number | null, s: BenchSettings): Promise<[Measurement, Measurement]> {
  const srv = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7101, quiet: true, seconds: 60 });
  try {
    let p99 = 0;
    let detail = '';
    const m = await measured(pid, async () => {
      const r = await topo.peer(topo.inside[0].ns, 'udp-latency', { to: topo.server, port: 7101, count: s.latencyCount, timeout: 1000 }, { timeoutMs: 60_000 });
      p99 = r.p99Us;
      detail = `${r.received}/${r.sent}, min ${r.minUs.toFixed(0)} max ${r.maxUs.toFixed(0)} µs`;
      return { value: r.p50Us, detail };
    });
    return [m, { value: p99, detail, cpu: m.cpu }];
  } finally {
    await srv.stop();
  }
}

/** Build the mode's topology, start its gateway, measure everything, tear it all down. */
export async function benchMode(mode: BenchMode, settings: BenchSettings = DEFAULT_SETTINGS, log: (l: string) => void = () => undefined): Promise<ModeResult> {
  if (mode.needsGateway === true && mode.startGateway === undefined) return { mode: mode.name, skipped: 'no startGateway registered yet', metrics: {} };
  const topo = await createTopology(mode.topology);
  let gw: GatewayHandle | null = null;
  const metrics: Partial<Record<MetricName, Measurement>> = {};
  try {
    if (mode.startGateway !== undefined) gw = await mode.startGateway(topo);
    const pid = gw === null ? null : gw.pid;
    // A first exchange so neighbour resolution and (for NATs) session setup are not measured.
    const warm = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7199, quiet: true, seconds: 30 });
    await topo.peer(topo.inside[0].ns, 'udp-request', { to: topo.server, port: 7199, count: 3, timeout: 1000 });
    await warm.stop();
    const step = async (name: string, f: () => Promise<void>): Promise<void> => {
      log(`  ${mode.name}: ${name}`);
      try {
        await f();
      } catch (e) {
        log(`  ${mode.name}: ${name} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    await step('tcp throughput', async () => {
      metrics.tcpMbps = await tcpThroughput(topo, pid, settings);
    });
    await step('udp 64-byte pps', async () => {
      metrics.udpPps = await udpPps(topo, pid, settings);
    });
    await step('tcp connections/s', async () => {
      metrics.tcpCps = await tcpCps(topo, pid, settings);
    });
    await step('udp latency', async () => {
      [metrics.latencyP50Us, metrics.latencyP99Us] = await latency(topo, pid, settings);
    });
  } finally {
    if (gw !== null) await gw.stop();
    await topo.destroy();
  }
  return { mode: mode.name, metrics };
}

const ROWS: readonly { key: MetricName; label: string; digits: number }[] = [
  { key: 'tcpMbps', label: 'TCP throughput (Mbit/s)', digits: 0 },
  { key: 'udpPps', label: 'UDP 64 B delivered (pps)', digits: 0 },
  { key: 'tcpCps', label: 'TCP connections/s', digits: 0 },
  { key: 'latencyP50Us', label: 'UDP RTT p50 (µs)', digits: 1 },
  { key: 'latencyP99Us', label: 'UDP RTT p99 (µs)', digits: 1 },
];

/** The report: one row per metric (value and ratio to kernel-nat), CPU rows under each. */
export function formatTable(results: readonly ModeResult[]): string {
  const base = results.find((r) => r.mode === BASELINE);
  const cols = results.filter((r) => r.skipped === undefined);
  const head = ['', ...cols.map((r) => r.mode)];
  const rows: string[][] = [];
  for (const row of ROWS) {
    rows.push([
      row.label,
      ...cols.map((r) => {
        const m = r.metrics[row.key];
        if (m === undefined) return 'n/a';
        const b = base?.metrics[row.key];
        const ratio = b === undefined || b.value === 0 ? '' : ` (${(m.value / b.value).toFixed(2)}x)`;
        return `${m.value.toFixed(row.digits)}${ratio}`;
      }),
    ]);
    if (row.key === 'latencyP99Us') continue;
    rows.push([
      '  cpu cores: busy/softirq/gw',
      ...cols.map((r) => {
        const c = r.metrics[row.key]?.cpu;
        if (c === undefined) return '';
        return `${c.hostBusy.toFixed(2)}/${c.hostSoftirq.toFixed(2)}/${c.gateway === null ? '-' : c.gateway.toFixed(2)}`;
      }),
    ]);
    rows.push(['  detail', ...cols.map((r) => r.metrics[row.key]?.detail ?? '')]);
  }
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const lines = all.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  for (const r of results) if (r.skipped !== undefined) lines.push(`(${r.mode} skipped: ${r.skipped})`);
  return lines.join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const pre = canRunNetns();
  if (!pre.ok) {
    process.stdout.write(`e2e bench skipped: ${pre.reason ?? 'unknown'}\n`);
    return 0;
  }
  if (!haveTool(['iperf3', '--version'])) {
    process.stdout.write('e2e bench skipped: iperf3 is not installed\n');
    return 0;
  }
  const json = argv.includes('--json');
  const names = argv.filter((a) => !a.startsWith('--'));
  const modes = names.length === 0 ? allModes() : names.map(getMode);
  const limit = setTimeout(() => {
    process.stderr.write(`e2e bench: stopped after ${RUN_LIMIT_MS / 1000} s\n`);
    process.exit(2);
  }, RUN_LIMIT_MS);
  limit.unref();
  const log = (l: string): void => {
    process.stderr.write(`${l}\n`);
  };
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  log(`e2e bench: ${cpus().length} CPUs, Linux ${kernel}, Node ${process.version}`);
  const results: ModeResult[] = [];
  for (const m of modes) {
    log(`mode ${m.name}: ${m.description}`);
    results.push(await benchMode(m, DEFAULT_SETTINGS, log));
  }
  process.stdout.write(`${formatTable(results)}\n`);
  if (json) process.stdout.write(`${JSON.stringify(results)}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`e2e bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
