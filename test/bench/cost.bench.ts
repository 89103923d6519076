/**
 * cost.bench.ts — what one request/response costs a userspace gateway, counted rather than
 * timed (a benchmark: it reports, it does not pass or fail).
 *
 *     node test/dist/bench/cost.bench.js [mode ...] [--exchanges=N] [--threads]
 *
 * For each mode (modes.ts; default: cnat, masq (as shipped), masq-io-thread, masq-1w, masq-1w-io-thread) on
 * a fresh namespace topology: N sequential 64-byte UDP exchanges (one request, one reply: two
 * packets through the gateway, one at a time, so nothing is batched) after 5 s of unmeasured
 * ones (V8 is done compiling the packet path by then), and across them, from
 * /proc/<pid>/task/<tid>/{status,stat}: the gateway's context switches (voluntary: a thread
 * went to sleep; involuntary: it was preempted) and its CPU time (user + system, from each
 * thread's schedstat in ns), per packet; `--threads` also prints it by thread. Counts do not
 * depend on how fast the VM is today, so they compare runs of different days better than times
 * do; the CPU time per packet is the time side of the
 * same picture and moves with the machine. With `perf` (Debian's linux-perf) it also counts the
 * gateway's system calls per packet (`perf stat -e raw_syscalls:sys_enter -p PID` across the
 * measured exchanges; on this PVM guest one system call costs ~1.1 µs), else "n/a".
 *
 * Bounded: at most 20,000 exchanges per mode, a 60 s limit per mode; namespaces are the
 * harness's (unique prefix, removed on exit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { benchArgs, endOnClosedOutput } from '@masq/core/bench/cli';
import { canRunNetns, createTopology } from '../src/harness/index.js';
import type { UdpLatencyResult } from '../src/harness/index.js';
import { getMode } from './modes.js';

interface Sample {
  voluntary: number;
  involuntary: number;
  threads: number;
  /** Per thread (by tid): its name (comm) and its time on a CPU in ns (schedstat: exact, not in ticks). */
  perThread: Map<string, { comm: string; ns: number }>;
}

/** Context switches and CPU seconds summed over every thread of `pid`. */
function sample(pid: number): Sample {
  const s: Sample = { voluntary: 0, involuntary: 0, threads: 0, perThread: new Map() };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      s.voluntary += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
      s.involuntary += Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(st)?.[1] ?? 0);
      s.threads++;
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      s.perThread.set(tid, { comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim(), ns });
    } catch {
      // A thread that ended between the listing and the read.
    }
  }
  return s;
}

export interface CostResult {
  mode: string;
  exchanges: number;
  p50Us: number;
  switchesPerPacket: number;
  voluntaryPerPacket: number;
  cpuUsPerPacket: number;
  threads: number;
  /** System calls per packet (perf), or null without perf. */
  syscallsPerPacket: number | null;
  /** CPU µs per packet of each thread that ran, busiest first (thread name and tid). */
  perThread: Array<{ comm: string; tid: string; us: number }>;
}

/** `perf stat` counting the system calls of every thread of `pid` until `stop()`; null without perf. */
function countSyscalls(pid: number): { stop(): Promise<number | null> } {
  let child: ChildProcess;
  try {
    child = spawn('perf', ['stat', '-x', ',', '-e', 'raw_syscalls:sys_enter', '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch {
    return { stop: () => Promise.resolve(null) };
  }
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<number | null>((resolve) => {
    child.once('error', () => resolve(null));
    child.once('exit', () => {
      const m = /^(\d+),,raw_syscalls:sys_enter/m.exec(err);
      resolve(m ? Number(m[1]) : null);
    });
  });
  return {
    stop: async () => {
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
      const n = await done;
      clearTimeout(t);
      return n;
    },
  };
}

/** How long a gateway carries warm-up exchanges before the measured ones. */
const WARM_MS = 5_000;

export async function measure(modeName: string, exchanges: number): Promise<CostResult> {
  const mode = getMode(modeName);
  if (mode.startGateway === undefined) throw new Error(`${modeName}: not a gateway mode`);
  const why = mode.unavailable?.() ?? null; // e.g. cnat built with cc on first use
  if (why !== null) throw new Error(`${modeName}: ${why}`);
  const topo = await createTopology(mode.topology);
  const timer = setTimeout(() => void topo.destroy(), 60_000);
  try {
    const gw = await mode.startGateway(topo);
    try {
      const srv = await topo.startServer(topo.serverNs, 'udp-echo', { port: 7201, quiet: true, reflect: true, seconds: 60 });
      // Warm-up until V8 is done with the packet path: rounds of 3,000 exchanges for at least
      // WARM_MS after the gateway came up (at most 8 rounds). V8 optimizes, deoptimizes once
      // (the first addresses, timers and slots outside the types it first saw) and optimizes
      // again for about 3.5 s here (--trace-opt/--trace-deopt); before that its compiler threads
      // ran in the measured window: ~17 µs per packet of masq's 60 after 200 exchanges, ~20 of
      // 44 after 3,000.
      const up = performance.now();
      for (let round = 0; round < 8 && (round === 0 || performance.now() - up < WARM_MS); round++) {
        await topo.peer(topo.inside[0].ns, 'udp-latency', { to: topo.server, port: 7201, count: 3000 }, { timeoutMs: 30_000 });
      }
      const perf = countSyscalls(gw.pid);
      await new Promise((r) => setTimeout(r, 300)); // perf attaches
      const a = sample(gw.pid);
      const r = (await topo.peer(topo.inside[0].ns, 'udp-latency', { to: topo.server, port: 7201, count: exchanges }, { timeoutMs: 50_000 })) as UdpLatencyResult;
      const b = sample(gw.pid);
      const calls = await perf.stop();
      await srv.stop();
      // The client's 20 unmeasured warm-up exchanges come on top of `count`.
      const packets = 2 * (r.sent + 20);
      const sw = b.voluntary - a.voluntary + (b.involuntary - a.involuntary);
      return {
        mode: modeName,
        exchanges: r.sent,
        p50Us: r.p50Us,
        switchesPerPacket: sw / packets,
        voluntaryPerPacket: (b.voluntary - a.voluntary) / packets,
        cpuUsPerPacket: [...b.perThread].reduce((sum, [tid, t]) => sum + t.ns - (a.perThread.get(tid)?.ns ?? 0), 0) / 1e3 / packets,
        perThread: [...b.perThread]
          .map(([tid, t]) => ({ comm: t.comm, tid, us: (t.ns - (a.perThread.get(tid)?.ns ?? 0)) / 1e3 / packets }))
          .filter((t) => t.us >= 0.05)
          .sort((x, y) => y.us - x.us),
        threads: b.threads,
        // Counted from before the first to after the last exchange (the idle gaps at both ends count too).
        syscallsPerPacket: calls === null ? null : calls / packets,
      };
    } finally {
      await gw.stop();
    }
  } finally {
    clearTimeout(timer);
    await topo.destroy();
  }
}

const USAGE = 'usage: node test/dist/bench/cost.bench.js [mode ...] [--exchanges=N] [--threads]  (modes: see e2e.bench.js --help; default cnat masq masq-io-thread masq-1w masq-1w-io-thread)';

export async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const unknown = argv.find((a) => a.startsWith('-') && !/^--(exchanges=.*|threads)$/.test(a));
  if (unknown !== undefined) {
    process.stderr.write(`cost bench: unknown option ${unknown}\n${USAGE}\n`);
    return 2;
  }
  const pre = canRunNetns();
  if (!pre.ok) {
    console.error(`cost bench: cannot create network namespaces here: ${pre.reason}`);
    return 1;
  }
  const n = Math.min(20_000, Math.max(100, Number(argv.find((a) => a.startsWith('--exchanges='))?.slice(12) ?? 3000)));
  const names = argv.filter((a) => !a.startsWith('--'));
  const modes = names.length > 0 ? names : ['cnat', 'masq', 'masq-io-thread', 'masq-1w', 'masq-1w-io-thread'];
  const rows: CostResult[] = [];
  for (const m of modes) {
    console.error(`mode ${m}: ${n} exchanges`);
    rows.push(await measure(m, n));
  }
  const pad = (s: string, w: number): string => s.padStart(w);
  console.log(`${'mode'.padEnd(20)}${pad('p50 RTT µs', 12)}${pad('switches/pkt', 14)}${pad('(sleeps)', 10)}${pad('CPU µs/pkt', 12)}${pad('threads', 9)}${pad('syscalls/pkt', 14)}`);
  for (const r of rows) {
    console.log(`${r.mode.padEnd(20)}${pad(r.p50Us.toFixed(1), 12)}${pad(r.switchesPerPacket.toFixed(2), 14)}${pad(r.voluntaryPerPacket.toFixed(2), 10)}${pad(r.cpuUsPerPacket.toFixed(1), 12)}${pad(String(r.threads), 9)}${pad(r.syscallsPerPacket === null ? 'n/a' : r.syscallsPerPacket.toFixed(2), 14)}`);
  }
  if (argv.includes('--threads')) {
    console.log('\nCPU µs per packet by thread (name [tid]), threads under 0.05 µs left out:');
    for (const r of rows) console.log(`${r.mode.padEnd(20)}${r.perThread.map((t) => `${t.comm} [${t.tid}] ${t.us.toFixed(1)}`).join(', ')}`);
  }
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  endOnClosedOutput();
  main(benchArgs()).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e instanceof Error ? e.stack : String(e));
      process.exit(1);
    },
  );
}
