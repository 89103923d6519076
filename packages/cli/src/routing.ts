/**
 * routing.ts — the recipe that steers a host's forwarded IPv4 traffic through the masq TUN device.
 *
 * Owns: the list of `sysctl` / `ip` commands (as argv lists) that `masq up`, the demo and the
 * end-to-end harness apply, their undo list, and a small runner for them. Building the lists is
 * pure (no I/O) so it is unit-tested by its output; only `applyRecipe` runs processes.
 *
 * The path a packet takes once the recipe is applied:
 *
 *     inside host ──► lan ──(ip rule iif lan → table T: default dev tun)──► tun ──► gateway process
 *     gateway process ──► tun ──(iif tun: main table)──► wan (or lan, for the reply direction)
 *     upstream ──► wan ──(ext/32 dev tun in main)──► tun ──► gateway process
 *
 * With an outside TUN (`outsideTun`, `masq run --outside-tun`) the last line becomes
 *
 *     upstream ──► wan ──(ext/32 dev otun in main)──► otun ──► gateway process (inbound, always)
 *
 * so the gateway knows a packet came from outside by the device it read it from (RFC 4787
 * REQ-7), never by its source address. The gateway writes both directions to the inside TUN;
 * the kernel routes them by destination as above. The host's own ICMP errors about translated
 * packets are addressed to an external address, so they too arrive on the outside TUN.
 *
 * Contract:
 * - Packets the gateway writes back enter the kernel as `iif <tun>`, which the policy rule does not
 *   match, so they follow the main table and never loop into the TUN again.
 * - External addresses are routed to the TUN, NOT assigned to an interface: were they local, the
 *   kernel would deliver inbound traffic to its own sockets (and answer with RSTs / port
 *   unreachables) instead of forwarding it into the TUN. Upstream learns them by proxy ARP on the
 *   wan interface (`proxy_arp=1`, `proxy_delay=0`: the default delay holds proxied replies up to
 *   0.8 s, which stalls the first packet of every upstream neighbour) or by a route on the
 *   upstream router when no wan is given. Proxy ARP answers only for addresses routed out of an
 *   interface other than the one the request came in on, and only with forwarding enabled.
 * - Reverse-path filtering is off (all, default, lan, wan, tun): translated inbound packets arrive
 *   on the TUN with a remote source whose route points at the wan, which a strict rp_filter drops;
 *   the kernel uses the maximum of `all` and the interface's value, so both must be 0.
 * - Fail closed: table T also holds an `unreachable default` at the worst metric. While the TUN
 *   route exists it wins; when the TUN disappears (the gateway exited and the kernel removed the
 *   routes through it) inside traffic gets ICMP unreachable instead of falling through to the main
 *   table and leaving un-translated.
 * - The recipe comes in two phases. `prepare` needs no TUN (sysctls of lan/wan, the rule, the
 *   fail-closed route); `tun` needs the TUN device to exist, because the kernel refuses routes
 *   through a missing or down device and deletes them when the device goes down. Forwarding is
 *   switched on last, once everything is in place.
 * - Idempotent: `applyRecipe` treats "already exists" on an add and "not found" on a delete as
 *   success, and the rule carries an explicit priority (without one, `ip rule add` picks a new
 *   priority each time and so duplicates the rule).
 * - The undo list removes routes, the rule and proxy ARP. It leaves `ip_forward`, `rp_filter`,
 *   `disable_ipv6` and `txqueuelen` alone: their earlier values are unknown, and turning
 *   forwarding off could break whatever else this host forwards.
 */

import { execFile } from 'node:child_process';
import { parseCidr, parseIPv4 } from '@masq/core/addr';

/** Options of the routing recipe. Interface names are kernel names; addresses are dotted quads. */
export interface RoutingOptions {
  /** Inside interface (or bridge): packets arriving here are steered into the TUN. */
  readonly lan: string;
  /** The masq TUN device. */
  readonly tun: string;
  /** The outside TUN (`--outside-tun`): the external addresses are routed into it instead of `tun`. */
  readonly outsideTun?: string;
  /** Outside interface: gets proxy ARP for the external addresses. Omit when upstream routes them. */
  readonly wan?: string;
  /** External addresses (`a.b.c.d`) or blocks (`a.b.c.d/nn`) that the gateway translates to. */
  readonly externals: readonly string[];
  /** Routing table for traffic from `lan`; default 100. */
  readonly table?: number;
  /** Priority of the `iif lan` rule; default 100 (before `main`, which is 32766). */
  readonly rulePriority?: number;
  /** TUN transmit queue length; default 10000 (the kernel's 500 drops bursts). */
  readonly txqueuelen?: number;
}

/** One command as an argv list (no shell involved). */
export type Command = readonly string[];

/** The recipe split at the point where the TUN device must exist. */
export interface RecipePhases {
  /** Needs only `lan` (and `wan`): sysctls, the policy rule, the fail-closed route. */
  readonly prepare: Command[];
  /** Needs the TUN: its settings, the routes into it, then forwarding on. */
  readonly tun: Command[];
}

export const DEFAULT_TABLE = 100;
export const DEFAULT_RULE_PRIORITY = 100;
export const DEFAULT_TXQUEUELEN = 10000;
/** Metric of the fail-closed route: the largest, so any real route in the table wins. */
export const FAIL_CLOSED_METRIC = 4294967295;

interface Checked {
  readonly lan: string;
  readonly tun: string;
  /** Where the external addresses are routed: the outside TUN, or `tun` without one. */
  readonly extTun: string;
  readonly outsideTun: string | undefined;
  readonly wan: string | undefined;
  /** External destinations in `a.b.c.d/nn` form (a bare address becomes /32). */
  readonly routes: string[];
  readonly table: string;
  readonly pref: string;
  readonly txqueuelen: string;
}

/**
 * A Linux interface name as the kernel accepts it (dev_valid_name): 1..15 bytes, not `.` or `..`,
 * no `/`, `:` or whitespace. A leading `-` is refused too, so a name is never read as an option.
 */
export function checkInterfaceName(role: string, name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new Error(`${role} interface name is empty`);
  if (Buffer.byteLength(name) > 15) throw new Error(`${role} interface name "${name}" is longer than 15 bytes`);
  if (name === '.' || name === '..') throw new Error(`${role} interface name "${name}" is not allowed`);
  if (/[/:\s]/.test(name)) throw new Error(`${role} interface name "${name}" contains '/', ':' or whitespace`);
  if (name.startsWith('-')) throw new Error(`${role} interface name "${name}" starts with '-'`);
  return name;
}

function checkExternal(s: string): string {
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  const a = parseIPv4(addrText);
  if (a === null) throw new Error(`external address "${s}" is not a dotted-quad IPv4 address`);
  const c = parseCidr(s, true);
  if (c === null) throw new Error(`external "${s}" is not a valid block (prefix 0..32, no host bits set)`);
  if (c.prefix < 16) throw new Error(`external block "${s}" is too large (prefix < 16)`);
  const first = a >>> 24;
  if (first === 0 || first === 127 || first >= 224) {
    throw new Error(`external address "${s}" is not a unicast address (0/8, 127/8, 224/4 and above are refused)`);
  }
  return `${addrText}/${c.prefix}`;
}

function checkInt(role: string, v: number | undefined, dflt: number, lo: number, hi: number): string {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${role} ${String(n)} is out of range ${lo}..${hi}`);
  return String(n);
}

function check(opts: RoutingOptions): Checked {
  const lan = checkInterfaceName('lan', opts.lan);
  const tun = checkInterfaceName('tun', opts.tun);
  const wan = opts.wan === undefined ? undefined : checkInterfaceName('wan', opts.wan);
  const outsideTun = opts.outsideTun === undefined ? undefined : checkInterfaceName('outside tun', opts.outsideTun);
  const names = [lan, tun, ...(wan === undefined ? [] : [wan]), ...(outsideTun === undefined ? [] : [outsideTun])];
  if (new Set(names).size !== names.length) throw new Error(`lan, tun, wan and the outside tun must be different interfaces (${names.join(', ')})`);
  if (!Array.isArray(opts.externals) || opts.externals.length === 0) throw new Error('at least one external address is needed');
  const routes = opts.externals.map(checkExternal);
  const dup = routes.find((r, i) => routes.indexOf(r) !== i);
  if (dup !== undefined) throw new Error(`external "${dup}" is listed twice`);
  const table = checkInt('table', opts.table, DEFAULT_TABLE, 1, 0xffffffff);
  // 253 default, 254 main, 255 local: the kernel's own tables.
  if (table === '253' || table === '254' || table === '255') throw new Error(`table ${table} is reserved (default/main/local)`);
  const pref = checkInt('rule priority', opts.rulePriority, DEFAULT_RULE_PRIORITY, 1, 32765);
  const txqueuelen = checkInt('txqueuelen', opts.txqueuelen, DEFAULT_TXQUEUELEN, 1, 1_000_000);
  return { lan, tun, extTun: outsideTun ?? tun, outsideTun, wan, routes, table, pref, txqueuelen };
}

/** `sysctl` key for a per-interface setting; dots inside the name are written as `/`. */
function ifKey(family: 'ipv4' | 'ipv6', section: 'conf' | 'neigh', ifname: string, leaf: string): string {
  return `net.${family}.${section}.${ifname.replaceAll('.', '/')}.${leaf}`;
}

function sysctl(key: string, value: string): Command {
  return ['sysctl', '-q', '-w', `${key}=${value}`];
}

/** The recipe in its two phases; validates every input first and throws a named error. */
export function routingPhases(opts: RoutingOptions): RecipePhases {
  const c = check(opts);
  const prepare: Command[] = [
    sysctl('net.ipv4.conf.all.rp_filter', '0'),
    sysctl('net.ipv4.conf.default.rp_filter', '0'),
    sysctl(ifKey('ipv4', 'conf', c.lan, 'rp_filter'), '0'),
  ];
  if (c.wan !== undefined) {
    prepare.push(
      sysctl(ifKey('ipv4', 'conf', c.wan, 'rp_filter'), '0'),
      sysctl(ifKey('ipv4', 'neigh', c.wan, 'proxy_delay'), '0'),
      sysctl(ifKey('ipv4', 'conf', c.wan, 'proxy_arp'), '1'),
    );
  }
  prepare.push(
    ['ip', 'route', 'add', 'unreachable', 'default', 'table', c.table, 'metric', String(FAIL_CLOSED_METRIC)],
    ['ip', 'rule', 'add', 'iif', c.lan, 'lookup', c.table, 'pref', c.pref],
  );
  // The same settings for the outside TUN, when there is one.
  const tunSettings = (dev: string): Command[] => [
    sysctl(ifKey('ipv6', 'conf', dev, 'disable_ipv6'), '1'),
    sysctl(ifKey('ipv4', 'conf', dev, 'rp_filter'), '0'),
    // ICMP errors the gateway host's own kernel sends about translated packets (frag needed,
    // time exceeded) come back out of the TUN with its inside address as their source: without
    // accept_local the kernel drops them as martians and path MTU discovery breaks.
    sysctl(ifKey('ipv4', 'conf', dev, 'accept_local'), '1'),
    ['ip', 'link', 'set', 'dev', dev, 'up', 'txqueuelen', c.txqueuelen],
  ];
  const tun: Command[] = [
    ...tunSettings(c.tun),
    ...(c.outsideTun === undefined ? [] : tunSettings(c.outsideTun)),
    ['ip', 'route', 'add', 'default', 'dev', c.tun, 'table', c.table],
    ...c.routes.map((r): Command => ['ip', 'route', 'add', r, 'dev', c.extTun]),
    sysctl('net.ipv4.ip_forward', '1'),
  ];
  return { prepare, tun };
}

/** The whole recipe in order (both phases): argv lists to run in the gateway's namespace. */
export function routingRecipe(opts: RoutingOptions): Command[] {
  const p = routingPhases(opts);
  return [...p.prepare, ...p.tun];
}

/**
 * The recipe's undo, in reverse order. Every command tolerates the piece being gone already
 * (deletes of missing routes/rules are accepted by `applyRecipe`; `sysctl -e` ignores a missing
 * interface).
 */
export function routingUndo(opts: RoutingOptions): Command[] {
  const c = check(opts);
  const undo: Command[] = [];
  if (c.wan !== undefined) undo.push(['sysctl', '-e', '-q', '-w', `${ifKey('ipv4', 'conf', c.wan, 'proxy_arp')}=0`]);
  for (const r of [...c.routes].reverse()) undo.push(['ip', 'route', 'del', r, 'dev', c.extTun]);
  undo.push(
    ['ip', 'route', 'del', 'default', 'dev', c.tun, 'table', c.table],
    ['ip', 'rule', 'del', 'iif', c.lan, 'lookup', c.table, 'pref', c.pref],
    ['ip', 'route', 'del', 'unreachable', 'default', 'table', c.table, 'metric', String(FAIL_CLOSED_METRIC)],
  );
  return undo;
}

/** Quote an argv list for display (and for pasting into a shell). */
export function formatCommand(argv: Command): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

export interface ApplyOptions {
  /** Print the commands without running them. */
  readonly dryRun?: boolean;
  /** Print each command before running it: `true` writes to stderr, a function receives each line. */
  readonly log?: boolean | ((line: string) => void);
  /** Run every command inside this network namespace (`ip netns exec <netns> ...`). */
  readonly netns?: string;
  /** Per-command time limit; default 10 s. */
  readonly timeoutMs?: number;
}

/** What happened to one command. */
export interface ApplyOutcome {
  readonly argv: Command;
  readonly status: 'ok' | 'dry-run' | 'already-present' | 'already-absent';
}

/** A command of the recipe failed; `stderr` holds what the tool said. */
export class RecipeError extends Error {
  constructor(
    readonly argv: Command,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`command failed (exit ${code === null ? 'signal/timeout' : String(code)}): ${formatCommand(argv)}: ${stderr.trim()}`);
    this.name = 'RecipeError';
  }
}

const EXISTS = /File exists/;
const MISSING = /No such process|No such file or directory|Cannot find device|does not exist/;

function isDelete(argv: Command): boolean {
  return argv[0] === 'ip' && (argv[2] === 'del' || argv[2] === 'delete');
}

function isAdd(argv: Command): boolean {
  return argv[0] === 'ip' && argv[2] === 'add';
}

function run(argv: Command, timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(argv[0], argv.slice(1), { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, _stdout, stderr) => {
      if (err === null) {
        resolve({ code: 0, stderr });
        return;
      }
      const code = typeof err.code === 'number' ? err.code : null;
      resolve({ code, stderr: stderr || err.message });
    });
  });
}

/**
 * Run the commands in order, stopping at the first real failure (a `RecipeError`). An add of
 * something that exists, or a delete of something that is gone, counts as done.
 */
export async function applyRecipe(cmds: readonly Command[], opts: ApplyOptions = {}): Promise<ApplyOutcome[]> {
  const print = opts.log === true ? (l: string) => process.stderr.write(`${l}\n`) : opts.log === false ? undefined : opts.log;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const out: ApplyOutcome[] = [];
  for (const cmd of cmds) {
    if (cmd.length === 0) throw new Error('empty command in recipe');
    const argv: Command = opts.netns === undefined ? cmd : ['ip', 'netns', 'exec', opts.netns, ...cmd];
    if (print !== undefined || opts.dryRun === true) (print ?? ((l: string) => process.stdout.write(`${l}\n`)))(`+ ${formatCommand(argv)}`);
    if (opts.dryRun === true) {
      out.push({ argv: cmd, status: 'dry-run' });
      continue;
    }
    const r = await run(argv, timeoutMs);
    if (r.code === 0) out.push({ argv: cmd, status: 'ok' });
    else if (isAdd(cmd) && EXISTS.test(r.stderr)) out.push({ argv: cmd, status: 'already-present' });
    else if (isDelete(cmd) && MISSING.test(r.stderr)) out.push({ argv: cmd, status: 'already-absent' });
    else throw new RecipeError(argv, r.code, r.stderr);
  }
  return out;
}
