/**
 * e2e.bench.ts — end-to-end gateway benchmark in network namespaces (a benchmark: it reports,
 * it does not pass or fail on numbers).
 *
 *     node test/dist/bench/e2e.bench.js [mode ...] [--only=tcp,udp,cps,latency,latency1cpu] [--repeat=N]
 *         [--cps-concurrency=N] [--congestion=ALGORITHM] [--json]
 *
 * Owns: the measurements and the report. Per mode (see modes.ts), on a fresh topology with two
 * inside hosts and the server directly behind the gateway, after a warm-up of about 5 s that
 * is not measured (each kind of traffic below, briefly: a gateway on V8 compiles its packet
 * paths in its first seconds of traffic; `warmUp`):
 * - TCP throughput: `iperf3 -c server -t 5 -J`, one stream, receiver-side bits per second,
 *   under the machine's default TCP congestion control (net.ipv4.tcp_congestion_control, which
 *   the namespaces inherit) or `--congestion=ALGORITHM` (iperf3 `-C`); the report names it, as
 *   it moves the figures more than any gateway does (BBR paces the sender, cubic does not);
 * - UDP small packets: `iperf3 -u -l 64 -b 10G -t 3 -J`, datagrams delivered per second at the
 *   receiver (sent minus lost), with the loss;
 * - TCP connections per second: `peer tcp-connect-rate` (connect, 1-byte echo, close), 3 s;
 * - request/response latency: `sockperf ping-pong` for 4 s (64-byte UDP, one exchange at a
 *   time), p50/p99 one way (half the round trip, which crosses the gateway twice), and what
 *   the gateway adds per packet (minus the kernel NAT's); without sockperf, the Node client
 *   `peer udp-latency` (2000 round trips, halved). Measured twice: not pinned (the scheduler
 *   spreads client, server and gateway over the CPUs), and with all three on CPU 0
 *   (`taskset -c 0` for the sockperf client and server, `taskset -a -p -c 0` for every thread
 *   of a userspace gateway, undone afterwards; sockperf only), the harshest case for a
 *   multi-threaded gateway;
 * and, during each, CPU use: the whole machine's busy and softirq time from /proc/stat (kernel
 * forwarding runs in softirq, attributed to no process; this also counts the traffic tools), and
 * for a userspace gateway its own process time from /proc/<pid>/stat. CPU is in cores (1.0 = one
 * core fully busy). Ratios are against `kernel-nat`.
 *
 * `--only` runs a subset of the steps; `--repeat=N` (≤ 10) runs the modes N rounds, one column
 * per mode and round, ratios within a round (the VM's spread shows).
 *
 * After the table it prints issue 13's bar with the ratios of this run and PASS/FAIL (as
 * information: a benchmark is not a test; see `formatBar`), and the load average.
 *
 * Bounded: every step has a time limit and the whole run stops after 55 s per mode and round, at
 * least 170 s per round (the exit handlers remove the namespaces).
 */

import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';
import { benchArgs, endOnClosedOutput } from '@masq/core/bench/cli';
import { canRunNetns, createTopology, haveTool, run, type Topology } from '../src/harness/index.js';
import { allModes, everyMode, BASELINE, getMode, type BenchMode, type GatewayHandle } from './modes.js';

export { registerMode, getMode, allModes, type BenchMode, type GatewayHandle } from './modes.js';

const RUN_LIMIT_MS = 170_000;
const MODE_LIMIT_MS = 55_000;
const CLK_TCK = 100;

export interface BenchSettings {
  readonly tcpSeconds: number;
  readonly udpSeconds: number;
  readonly cpsSeconds: number;
  /** Connections the connection-rate client keeps open at once (`--cps-concurrency=N`). */
  readonly cpsConcurrency: number;
  /** The TCP step's congestion control (`--congestion=ALGORITHM`, iperf3 -C), or null: the machine's default. */
  readonly congestion: string | null;
  readonly latencyCount: number;
  readonly latencySeconds: number;
}

export const DEFAULT_SETTINGS: BenchSettings = { tcpSeconds: 5, udpSeconds: 3, cpsSeconds: 3, cpsConcurrency: 32, congestion: null, latencyCount: 2000, latencySeconds: 4 };

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

export type MetricName = 'tcpMbps' | 'udpPps' | 'tcpCps' | 'latencyP50Us' | 'latencyP99Us' | 'latency1cpuP50Us' | 'latency1cpuP99Us';

export interface ModeResult {
  readonly mode: string;
  /** With `--repeat=N`: which round (1..N); ratios are taken within a round. */
  readonly round?: number;
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

/** iperf3's client options for the one TCP stream (under `--congestion`'s algorithm when given). */
const streamArgs = (s: BenchSettings): string[] => ['-P', '1', ...(s.congestion === null ? [] : ['-C', s.congestion])];

async function tcpThroughput(topo: Topology, pid: number | null, s: BenchSettings): Promise<Measurement> {
  const stop = await iperfServer(topo, 5201);
  try {
    return await measured(pid, async () => {
      const j = await iperfClient(topo, 5201, streamArgs(s), s.tcpSeconds);
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

/**
 * Traffic of every kind the steps measure, before the first of them, in every mode alike: a
 * TCP stream (2 s), UDP 64-byte packets (1 s), connections (1 s) and 2,000 request/response
 * exchanges. A userspace gateway on V8 spends its first ~3.5 s of traffic compiling its packet
 * paths (optimizing, deoptimizing once on values outside the types it first saw, optimizing
 * again: --trace-opt/--trace-deopt), and until then the compiler's threads take CPU from the
 * traffic; measured cold, whichever step came first paid for it (with `--only`, any step).
 */
async function warmUp(topo: Topology, s: BenchSettings): Promise<void> {
  const iperf = await iperfServer(topo, 5203);
  try {
    await iperfClient(topo, 5203, streamArgs(s), 2);
  } finally {
    iperf();
  }
  const iperfUdp = await iperfServer(topo, 5204);
  try {
    await iperfClient(topo, 5204, ['-u', '-l', '64', '-b', '10G'], 1);
  } finally {
    iperfUdp();
  }
  const tcp = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7101, quiet: true, seconds: 30 });
  try {
    await topo.peerRaw(topo.inside[0].ns, 'tcp-connect-rate', { to: topo.server, port: 7101, seconds: 1, max: 500_000, concurrency: s.cpsConcurrency }, { timeoutMs: 16_000 });
  } finally {
    await tcp.stop();
  }
  const udp = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7102, quiet: true, seconds: 30 });
  try {
    await topo.peer(topo.inside[0].ns, 'udp-latency', { to: topo.server, port: 7102, count: 2000 }, { timeoutMs: 30_000 });
  } finally {
    await udp.stop();
  }
}

async function tcpCps(topo: Topology, pid: number | null, s: BenchSettings): Promise<Measurement> {
  const srv = await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7100, quiet: true, seconds: 60 });
  try {
    // Warm-up, not measured, in every mode alike: the echo server's and (for masq) the
    // gateway's code for connection set-up and tear-down is compiled by the JIT in the first
    // second; measured cold, masq's first round ran ~20 % slower than its next.
    const rate = (seconds: number): ReturnType<Topology['peerRaw']> =>
      topo.peerRaw(topo.inside[0].ns, 'tcp-connect-rate', { to: topo.server, port: 7100, seconds, max: 500_000, concurrency: s.cpsConcurrency }, { timeoutMs: (seconds + 15) * 1000 });
    await rate(1);
    return await measured(pid, async () => {
      const r = await rate(s.cpsSeconds);
      const j = r.json;
      if (j === null || typeof j.perSecond !== 'number') throw new Error(`tcp-connect-rate failed: ${r.result.stdout} ${r.result.stderr}`);
      return { value: j.perSecond, detail: `${String(j.connections)} ok, ${String(j.failures)} failed` };
    });
  } finally {
    await srv.stop();
  }
}

/** sockperf's one-way latency figures (it reports half of each measured round trip). */
export interface SockperfResult {
  readonly p50: number;
  readonly p99: number;
  readonly min: number;
  readonly avg: number;
  readonly samples: number;
}

/** Parse `sockperf ping-pong` output; null when the figures are not there. */
export function parseSockperf(out: string): SockperfResult | null {
  const num = (re: RegExp): number | null => {
    const m = re.exec(out);
    return m === null ? null : Number(m[1]);
  };
  const p50 = num(/percentile 50\.000 =\s*([\d.]+)/);
  const p99 = num(/percentile 99\.000 =\s*([\d.]+)/);
  const min = num(/<MIN> observation =\s*([\d.]+)/);
  const avg = num(/avg-latency=([\d.]+)/);
  const samples = num(/Total (\d+) observations/);
  if (p50 === null || p99 === null || min === null || avg === null || samples === null) return null;
  return { p50, p99, min, avg, samples };
}

/**
 * Request/response latency, one way (half the round trip: one crossing of the gateway).
 * With sockperf (a C tool, UDP ping-pong as fast as answers come, 64-byte messages, its own
 * warm-up) when installed; else the Node `udp-latency` client (its event loop adds tens of µs
 * and competes with the gateway for the two cores, so its figures are noisier).
 */
async function latency(topo: Topology, pid: number | null, s: BenchSettings, oneCpu = false): Promise<[Measurement, Measurement]> {
  if (oneCpu && !haveTool(['sockperf', '--version'])) throw new Error('the one-CPU latency needs sockperf');
  if (haveTool(['sockperf', '--version'])) {
    const port = oneCpu ? 7301 : 7300;
    const pin = oneCpu ? ['taskset', '-c', '0'] : [];
    const srv = topo.spawn(topo.serverNs, [...pin, 'sockperf', 'server', '-i', topo.server, '-p', String(port)]);
    // Every thread of the gateway to CPU 0 (threads it starts later inherit it), undone below.
    const pinGateway = async (cpuList: string): Promise<void> => {
      if (!oneCpu || pid === null) return;
      const r = await run(['taskset', '-a', '-p', '-c', cpuList, String(pid)], { timeoutMs: 5_000 });
      if (r.code !== 0) throw new Error(`taskset -a -p -c ${cpuList} ${pid}: ${r.stderr.trim()}`);
    };
    try {
      await pinGateway('0');
      await new Promise((r) => setTimeout(r, 300));
      let p99 = 0;
      let detail = '';
      const m = await measured(pid, async () => {
        const r = await topo.exec(topo.inside[0].ns, [...pin, 'sockperf', 'ping-pong', '-i', topo.server, '-p', String(port), '-t', String(s.latencySeconds), '-m', '64'], {
          timeoutMs: (s.latencySeconds + 10) * 1000,
        });
        const res = parseSockperf(r.stdout + r.stderr);
        if (res === null) throw new Error(`sockperf gave no figures (exit ${String(r.code)}): ${(r.stdout + r.stderr).slice(-300)}`);
        p99 = res.p99;
        detail = `sockperf, ${res.samples} samples, min ${res.min.toFixed(1)} avg ${res.avg.toFixed(1)} µs`;
        return { value: res.p50, detail };
      });
      return [m, { value: p99, detail, cpu: m.cpu }];
    } finally {
      srv.kill('SIGKILL');
      await pinGateway(`0-${cpus().length - 1}`);
    }
  }
  const srv = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7101, quiet: true, seconds: 60 });
  try {
    let p99 = 0;
    let detail = '';
    const m = await measured(pid, async () => {
      const r = await topo.peer(topo.inside[0].ns, 'udp-latency', { to: topo.server, port: 7101, count: s.latencyCount, timeout: 1000 }, { timeoutMs: 60_000 });
      p99 = r.p99Us / 2;
      detail = `node udp-latency (no sockperf), ${r.received}/${r.sent}, RTT min ${r.minUs.toFixed(0)} max ${r.maxUs.toFixed(0)} µs`;
      return { value: r.p50Us / 2, detail };
    });
    return [m, { value: p99, detail, cpu: m.cpu }];
  } finally {
    await srv.stop();
  }
}

/** The measurement steps, as `--only=` names them. */
export const STEPS: readonly string[] = ['tcp', 'udp', 'cps', 'latency', 'latency1cpu'];

/** Build the mode's topology, start its gateway, measure everything, tear it all down. */
export async function benchMode(
  mode: BenchMode,
  settings: BenchSettings = DEFAULT_SETTINGS,
  log: (l: string) => void = () => undefined,
  only: ReadonlySet<string> | null = null,
): Promise<ModeResult> {
  if (mode.needsGateway === true && mode.startGateway === undefined) return { mode: mode.name, skipped: 'no startGateway registered yet', metrics: {} };
  const unavailable = mode.unavailable?.() ?? null;
  if (unavailable !== null) return { mode: mode.name, skipped: unavailable, metrics: {} };
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
    log(`  ${mode.name}: warm-up, not measured`);
    await warmUp(topo, settings);
    const step = async (key: string, name: string, f: () => Promise<void>): Promise<void> => {
      if (only !== null && !only.has(key)) return;
      log(`  ${mode.name}: ${name}`);
      try {
        await f();
      } catch (e) {
        log(`  ${mode.name}: ${name} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    await step('tcp', 'tcp throughput', async () => {
      metrics.tcpMbps = await tcpThroughput(topo, pid, settings);
    });
    await step('udp', 'udp 64-byte pps', async () => {
      metrics.udpPps = await udpPps(topo, pid, settings);
    });
    await step('cps', 'tcp connections/s', async () => {
      metrics.tcpCps = await tcpCps(topo, pid, settings);
    });
    await step('latency', 'udp latency', async () => {
      [metrics.latencyP50Us, metrics.latencyP99Us] = await latency(topo, pid, settings);
    });
    await step('latency1cpu', 'udp latency, everything on CPU 0', async () => {
      [metrics.latency1cpuP50Us, metrics.latency1cpuP99Us] = await latency(topo, pid, settings, true);
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
  { key: 'latencyP50Us', label: 'UDP latency p50, one way (µs)', digits: 1 },
  { key: 'latencyP99Us', label: 'UDP latency p99, one way (µs)', digits: 1 },
  { key: 'latency1cpuP50Us', label: 'UDP latency p50, all on CPU 0 (µs)', digits: 1 },
  { key: 'latency1cpuP99Us', label: 'UDP latency p99, all on CPU 0 (µs)', digits: 1 },
];

/** The report: one row per metric (value and ratio to kernel-nat), CPU rows under each. */
export function formatTable(results: readonly ModeResult[]): string {
  const baseOf = (r: ModeResult): ModeResult | undefined => results.find((x) => x.mode === BASELINE && x.round === r.round);
  const cols = results.filter((r) => r.skipped === undefined);
  const head = ['', ...cols.map((r) => (r.round === undefined ? r.mode : `${r.mode} #${r.round}`))];
  const rows: string[][] = [];
  for (const row of ROWS) {
    // A metric no column measured (an --only run) is left out.
    if (cols.every((r) => r.metrics[row.key] === undefined)) continue;
    rows.push([
      row.label,
      ...cols.map((r) => {
        const m = r.metrics[row.key];
        if (m === undefined) return 'n/a';
        const b = baseOf(r)?.metrics[row.key];
        const ratio = b === undefined || b.value === 0 ? '' : ` (${(m.value / b.value).toFixed(2)}x)`;
        return `${m.value.toFixed(row.digits)}${ratio}`;
      }),
    ]);
    if (row.key === 'latencyP99Us' || row.key === 'latency1cpuP99Us') continue;
    if (row.key === 'latencyP50Us' || row.key === 'latency1cpuP50Us') {
      // One way is half a round trip: one crossing of the gateway. The difference to the
      // kernel NAT's is what the userspace gateway adds to each packet.
      rows.push([
        '  added per packet vs kernel NAT (µs)',
        ...cols.map((r) => {
          const m = r.metrics[row.key];
          const b = baseOf(r)?.metrics[row.key];
          if (m === undefined || b === undefined || r.mode === BASELINE) return '';
          return (m.value - b.value).toFixed(1);
        }),
      ]);
    }
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

/** The userspace baseline of the bar: the single-threaded C NAT without offloads (modes.ts). */
export const BAR_CNAT = 'cnat';
/** masq as shipped: its default settings. */
export const BAR_MASQ = 'masq';

interface BarItem {
  readonly what: string;
  readonly key: MetricName;
  /** Latency: masq must be at most `bound` times the other; else at least. */
  readonly atMost: boolean;
  readonly against: readonly (readonly [mode: string, bound: number])[];
  /**
   * A mode shown beside masq for reference, with no bound: its ratio to the first `against`
   * mode, when the round measured it (the C NAT with offloads on the same TUN, for the stream:
   * what a minimal gateway on that device reaches here).
   */
  readonly reference?: string;
}

/** Issue 13's bar, item by item. */
export const BAR: readonly BarItem[] = [
  { what: 'TCP 1 stream', key: 'tcpMbps', atMost: false, against: [[BASELINE, 0.85]], reference: 'cnat-offload' },
  { what: 'UDP 64 B delivered', key: 'udpPps', atMost: false, against: [[BAR_CNAT, 1.0], [BASELINE, 0.8]] },
  { what: 'TCP connections/s', key: 'tcpCps', atMost: false, against: [[BAR_CNAT, 1.0], [BASELINE, 0.8]] },
  { what: 'UDP request/response p50, client, server and gateway on CPU 0', key: 'latency1cpuP50Us', atMost: true, against: [[BAR_CNAT, 1.2]] },
  { what: 'UDP request/response p50, not pinned (spread over the CPUs)', key: 'latencyP50Us', atMost: true, against: [[BAR_CNAT, 1.2]] },
];

/**
 * The bar with the ratios of `masq` (its defaults) to the C NAT and the kernel NAT of the same
 * round, and PASS/FAIL per item: information for the reader, the benchmark does not fail on it.
 * An item whose modes or metric were not measured says which and shows n/a.
 */
export function formatBar(results: readonly ModeResult[]): string {
  const rounds = [...new Set(results.map((r) => r.round))];
  const lines: string[] = [];
  for (const round of rounds) {
    const of = (mode: string): ModeResult | undefined => results.find((r) => r.mode === mode && r.round === round && r.skipped === undefined);
    lines.push(`The bar (issue 13; ${BAR_MASQ} = masq with its default settings; ratios within this run${round === undefined ? '' : `, round ${round}`}; information, not a test):`);
    for (const item of BAR) {
      const bounds = item.against.map(([m, b]) => `${item.atMost ? '≤' : '≥'} ${b.toFixed(2)}x ${m}`).join(' and ');
      const masq = of(BAR_MASQ)?.metrics[item.key]?.value;
      const parts: string[] = [];
      let verdict: 'PASS' | 'FAIL' | 'n/a ' = 'PASS';
      for (const [mode, bound] of item.against) {
        const other = of(mode)?.metrics[item.key]?.value;
        if (masq === undefined || other === undefined || other === 0) {
          parts.push(`${masq === undefined ? BAR_MASQ : mode} not measured`);
          verdict = 'n/a ';
          continue;
        }
        const ratio = masq / other;
        parts.push(`${ratio.toFixed(2)}x ${mode}`);
        const ok = item.atMost ? ratio <= bound : ratio >= bound;
        if (!ok && verdict === 'PASS') verdict = 'FAIL';
      }
      const ref = item.reference === undefined ? undefined : of(item.reference)?.metrics[item.key]?.value;
      const refBase = of(item.against[0]![0])?.metrics[item.key]?.value;
      const refText = ref === undefined || refBase === undefined || refBase === 0 ? '' : `; for reference, ${item.reference!} on the same TUN: ${(ref / refBase).toFixed(2)}x ${item.against[0]![0]}`;
      lines.push(`  ${verdict}  ${item.what} ${bounds}: ${parts.join(', ')}${refText}`);
    }
  }
  return lines.join('\n');
}

const loadLine = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

const USAGE = 'usage: node test/dist/bench/e2e.bench.js [mode ...] [--only=tcp,udp,cps,latency,latency1cpu] [--repeat=N] [--cps-concurrency=N] [--congestion=ALGORITHM] [--json]';

/** The kernel's TCP congestion controls: the default (what the namespaces inherit) and those it offers. */
function congestionControls(): { fallback: string; available: string[] } {
  const read = (f: string): string => readFileSync(`/proc/sys/net/ipv4/${f}`, 'utf8').trim();
  return { fallback: read('tcp_congestion_control'), available: read('tcp_available_congestion_control').split(/\s+/) };
}

export async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    const modes = everyMode()
      .map((m) => `  ${m.name.padEnd(22)}${m.optIn === true ? '(opt-in) ' : ''}${m.description}`)
      .join('\n');
    process.stdout.write(`${USAGE}\n\nModes (no mode named: every mode not marked opt-in):\n${modes}\n\nSteps (--only): ${STEPS.join(', ')}. Runs in network namespaces it creates and removes; as root.\n`);
    return 0;
  }
  const unknown = argv.find((a) => a.startsWith('-') && !/^--(json|only=.*|repeat=.*|cps-concurrency=.*|congestion=.*)$/.test(a));
  if (unknown !== undefined) {
    process.stderr.write(`e2e bench: unknown option ${unknown}\n${USAGE}\n`);
    return 2;
  }
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
  // The value of --name=VALUE, or undefined.
  const opt = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const onlyArg = opt('only');
  const only = onlyArg === undefined ? null : new Set(onlyArg.split(','));
  if (only !== null) {
    for (const k of only) {
      if (!STEPS.includes(k)) {
        process.stderr.write(`e2e bench: unknown --only step "${k}" (steps: ${STEPS.join(', ')})\n`);
        return 2;
      }
    }
  }
  const repeatArg = opt('repeat');
  const repeat = repeatArg === undefined ? 1 : Math.max(1, Math.min(10, Number.parseInt(repeatArg, 10) || 1));
  const ccArg = opt('cps-concurrency');
  const cc = ccArg === undefined ? DEFAULT_SETTINGS.cpsConcurrency : Number(ccArg);
  if (!Number.isInteger(cc) || cc < 1 || cc > 1024) {
    process.stderr.write(`e2e bench: --cps-concurrency must be a whole number from 1 to 1024\n`);
    return 2;
  }
  const ccs = congestionControls();
  const congestion = opt('congestion') ?? null;
  if (congestion !== null && !ccs.available.includes(congestion)) {
    process.stderr.write(`e2e bench: --congestion=${congestion}: this kernel offers ${ccs.available.join(', ')} (net.ipv4.tcp_available_congestion_control)\n`);
    return 2;
  }
  const tcpCc = congestion === null ? `${ccs.fallback} (this machine's default; --congestion=ALGORITHM to choose)` : `${congestion} (--congestion; this machine's default is ${ccs.fallback})`;
  const settings: BenchSettings = { ...DEFAULT_SETTINGS, cpsConcurrency: cc, congestion };
  const modes = names.length === 0 ? allModes() : names.map(getMode);
  const limitMs = Math.max(RUN_LIMIT_MS, MODE_LIMIT_MS * modes.length) * repeat;
  const limit = setTimeout(() => {
    process.stderr.write(`e2e bench: stopped after ${limitMs / 1000} s\n`);
    process.exit(2);
  }, limitMs);
  limit.unref();
  const log = (l: string): void => {
    process.stderr.write(`${l}\n`);
  };
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const loadBefore = loadLine();
  log(`e2e bench: ${cpus().length} CPUs, Linux ${kernel}, Node ${process.version}, load average ${loadBefore}; TCP congestion control ${tcpCc}`);
  const results: ModeResult[] = [];
  for (let r = 0; r < repeat; r++) {
    for (const m of modes) {
      log(`mode ${m.name}: ${m.description}${repeat > 1 ? ` (round ${r + 1}/${repeat})` : ''}`);
      const res = await benchMode(m, settings, log, only);
      results.push(repeat > 1 ? { ...res, round: r + 1 } : res);
    }
  }
  process.stdout.write(`${formatTable(results)}\n\n${formatBar(results)}\n`);
  process.stdout.write(`\n${cpus().length} CPUs, Linux ${kernel}; load average (1, 5, 15 min) at the start ${loadBefore}, at the end ${loadLine()}\n`);
  if (only === null || only.has('tcp')) process.stdout.write(`TCP throughput under the congestion control ${tcpCc}\n`);
  if (json) process.stdout.write(`${JSON.stringify(results)}\n`);
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  endOnClosedOutput();
  main(benchArgs()).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`e2e bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
