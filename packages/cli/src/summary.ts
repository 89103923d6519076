/**
 * summary.ts — the readable layouts of `masq status` and `masq stats` (a person reads these;
 * scripts use `--json`, whose objects are the control protocol's answers unchanged).
 *
 * Contract: pure functions from the control answers to text; every number the JSON carries
 * appears, zero-valued drop reasons and TCP states are left out (as `conntrack -S` leaves out
 * nothing but we have some forty reasons), and nothing is re-derived from a second source.
 */
/** The `status` answer (docs/CLI.md, control protocol). */
export interface StatusAnswer {
  pid: number;
  tun: string;
  workers: number;
  externals: string[];
  uptimeMs: number;
  version: number;
  config?: string | null;
  /** The gateway's node version, and the V8 flag masq set for it (null: V8's own setting). */
  node?: string;
  jit?: string | null;
}

/** The `stats` answer (control.ts statsObject). */
export interface StatsAnswer {
  packets: { out: Record<string, number>; in: Record<string, number> };
  bytes: { out: number; in: number };
  drops: Record<string, number>;
  sessions: Record<string, number>;
  tcpStates: Record<string, number>;
  sessionsLimit: number;
  sessionsCreated: number;
  /** Live endpoint-independent mappings (inside endpoint ↔ external address and port), port forwards included. */
  mappings: number;
  portsInUse: Record<string, number>;
  portsLimit: number;
  portAllocationFailures: number;
  hairpinned: number;
  icmpErrorsTranslated: number;
  workers: { worker: number; reads?: number; handedOver?: number; udpSupers?: number; udpCoalesced?: number; uringPasses?: number; slotsReclaimed?: number; homeSlots?: number; freeSlots?: number; kernelSlots?: number; packets: number; sessions: number }[];
  /** Protocol helpers: enabled ones, rewrites per helper, errors as "helper/reason", live expectations. */
  alg?: { enabled: string[]; rewrites: Record<string, number>; errors: Record<string, number>; expectations: number };
}

const sum = (o: Record<string, number>): number => Object.values(o).reduce((a, b) => a + b, 0);
const pairs = (o: Record<string, number>): string =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

/** Uptime as "3d 4h05m", "2h04m", "4m10s", "12s". */
export function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (d > 0) return `${d}d ${h}h${pad(m)}m`;
  if (h > 0) return `${h}h${pad(m)}m`;
  if (m > 0) return `${m}m${pad(s % 60)}s`;
  return `${s}s`;
}

export function formatStatus(s: StatusAnswer, control: string): string {
  const config = s.config === undefined ? '' : s.config === null ? 'none (started from flags: masq reload is refused)' : `${s.config} (masq reload or SIGHUP re-reads it)`;
  const lines = [
    `masq gateway running: pid ${s.pid}, up ${formatUptime(s.uptimeMs)}`,
    `  tun        ${s.tun}, ${s.workers} translation worker(s)`,
    `  external   ${s.externals.join(', ')}`,
    `  control    ${control} (protocol ${s.version})`,
  ];
  if (config) lines.push(`  config     ${config}`);
  if (s.node !== undefined) lines.push(`  runtime    node ${s.node}; ${s.jit ? `V8 ${s.jit} (masq's inlining budget)` : "V8's own inlining budget (MASQ_JIT_DEFAULTS=1 or node's command line)"}`);
  return lines.join('\n');
}

export function formatStats(s: StatsAnswer): string {
  const live = sum(s.sessions);
  const lines = [
    `packets    out ${sum(s.packets.out)} (${pairs(s.packets.out)})`,
    `           in  ${sum(s.packets.in)} (${pairs(s.packets.in)})`,
    `bytes      out ${s.bytes.out}, in ${s.bytes.in}`,
    `sessions   ${live} of ${s.sessionsLimit} (${pairs(s.sessions)}); ${s.sessionsCreated} created since start`,
    `mappings   ${s.mappings} (inside endpoint to external port; port forwards included)`,
    `tcp        ${Object.keys(s.tcpStates).length ? pairs(s.tcpStates) : 'no sessions'}`,
    `ports      ${Object.entries(s.portsInUse)
      .map(([a, n]) => `${a} ${n} of ${s.portsLimit} in use`)
      .join(', ')}; ${s.portAllocationFailures} allocation failure(s)`,
    `drops      ${Object.keys(s.drops).length ? `${sum(s.drops)} (${pairs(s.drops)})` : '0'}`,
    `hairpinned ${s.hairpinned}; ICMP errors translated ${s.icmpErrorsTranslated}`,
  ];
  if (s.alg)
    lines.push(
      `helpers    ${s.alg.enabled.length ? s.alg.enabled.join(', ') : 'none'}; rewrites ${Object.keys(s.alg.rewrites).length ? pairs(s.alg.rewrites) : '0'}; errors ${Object.keys(s.alg.errors).length ? pairs(s.alg.errors) : '0'}; ${s.alg.expectations} expectation(s)`,
    );
  for (const w of s.workers) lines.push(`worker ${String(w.worker).padEnd(3)} ${w.packets} packet(s), ${w.sessions} session(s)${w.reads ? `; read ${w.reads} from its queue, ${w.handedOver ?? 0} handed over` : ''}${w.uringPasses ? `; ${w.uringPasses} io_uring pass(es)` : ''}${w.udpSupers ? `; ${w.udpCoalesced ?? 0} datagram(s) written in ${w.udpSupers} UDP super-packet(s)` : ''}${w.homeSlots !== undefined ? `; slots ${w.freeSlots ?? 0} free, ${w.kernelSlots ?? 0} with the kernel, of ${w.homeSlots}` : ''}${w.slotsReclaimed ? `; ${w.slotsReclaimed} slot(s) taken back after restarts` : ''}`);
  return lines.join('\n');
}
