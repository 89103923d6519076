/**
 * run.ts — `masq run`: parse the gateway flags (and the --config file, config.ts; flags win)
 * into rules and settings, start the Gateway,
 * the control socket and (optionally) the metrics endpoint, and shut down cleanly on
 * SIGINT/SIGTERM (stop reading, drain, release the TUN). Exit codes: 0 clean stop, 2 usage or
 * configuration error, 3 TUN/system error.
 */
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { fstatSync } from 'node:fs';
import {
  ConfigError,
  formatDuration,
  formatIPv4,
  formatRule,
  parseDuration,
  parseIPv4,
  parsePortRangeText,
  parseRule,
  parseRules,
  parseTimeouts,
  parseAlgList,
  resolveConfig,
  RuleSyntaxError,
  type Filtering,
  type NatConfig,
  type PresetName,
  type PortModeName,
  type Timeouts,
} from '@masq/core';
import { DEFAULT_SCHED, Gateway, SchedSyntaxError, formatSched, natConfigOf, parseSched, type GatewayOptions, type SchedPolicies } from '@masq/workers';
import { TunError } from '@masq/tun';
import { handle, startControlServer, DEFAULT_CONTROL_PATH } from './control.js';
import { ConfigFileError, loadConfigFile, mergeInputs, type RunInput } from './config.js';
import { parseArgsMessage, USAGE } from './args.js';
import { DeviceLockError, lockDevice, type DeviceLock } from './lock.js';
import { applyRecipe, checkInterfaceName, routingPhases, routingRecipe, routingUndo, type Command, type RoutingOptions } from './routing.js';

import { UsageError, addressProblem } from './usage.js';

export { UsageError, addressProblem };

/** Metrics are on by default, on loopback only (in the gateway's own network namespace). */
export const DEFAULT_METRICS = '127.0.0.1:9464';

export const RUN_OPTIONS = {
  tun: { type: 'string' },
  'outside-tun': { type: 'string' },
  address: { type: 'string', multiple: true },
  masquerade: { type: 'string', multiple: true },
  accept: { type: 'string', multiple: true },
  forward: { type: 'string', multiple: true },
  rules: { type: 'string' },
  workers: { type: 'string' },
  ports: { type: 'string' },
  'port-mode': { type: 'string' },
  filtering: { type: 'string' },
  timeouts: { type: 'string' },
  preset: { type: 'string' },
  'max-sessions': { type: 'string' },
  'host-limit': { type: 'string' },
  'host-port-limit': { type: 'string' },
  'icmp-on-exhaustion': { type: 'boolean' },
  'no-icmp-on-exhaustion': { type: 'boolean' },
  'no-hop-compensation': { type: 'boolean' },
  mtu: { type: 'string' },
  metrics: { type: 'string' },
  control: { type: 'string' },
  state: { type: 'string' },
  'state-interval': { type: 'string' },
  offload: { type: 'boolean' },
  'no-offload': { type: 'boolean' },
  'io-thread-reads': { type: 'boolean' },
  'no-steering': { type: 'boolean' },
  'no-udp-coalesce': { type: 'boolean' },
  'no-park-read': { type: 'boolean' },
  'no-io-uring': { type: 'boolean' },
  sched: { type: 'string' },
  alg: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  up: { type: 'boolean' },
  lan: { type: 'string' },
  wan: { type: 'string' },
  table: { type: 'string' },
  'rule-priority': { type: 'string' },
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** --sched TEXT → the policies, or a usage error that says what is wrong. */
function schedFlag(text: string): SchedPolicies {
  try {
    return parseSched(text);
  } catch (e) {
    if (e instanceof SchedSyntaxError) throw new UsageError(`--sched: ${e.message}`);
    throw e;
  }
}

function int(name: string, v: string | undefined, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v) || Number(v) < lo || Number(v) > hi) throw new UsageError(`--${name}: "${v}" must be a whole number from ${lo} to ${hi}`);
  return Number(v);
}

export interface RunSettings {
  gateway: GatewayOptions;
  control: string;
  metrics: string | null;
  /** No metrics address was given: the default is used (and may be skipped if taken). */
  metricsDefaulted: boolean;
  /** The resolved core configuration (validated; what the gateway will run with). */
  resolved: NatConfig;
  /** --config FILE, for reload; null when the gateway runs from flags only. */
  configPath: string | null;
  /** What the flags said, kept so a reload merges the re-read file under them again. */
  flags: RunInput;
  /** --up: the routing recipe to apply at start and take down at stop (null: the operator routes). */
  up?: RoutingOptions | null;
  /** -q: no log lines, no "gateway up" line. */
  quiet?: boolean;
}

/** One rule flag's value, parsed on its own so that an error points into what was typed. */
function flagRule(flag: string, kind: string, value: string): string {
  const text = `${kind} ${value}`;
  try {
    parseRule(text);
  } catch (e) {
    if (!(e instanceof RuleSyntaxError)) throw e;
    const col = Math.max(1, e.column - kind.length - 1);
    const found = e.found === '' ? 'end of rule' : JSON.stringify(e.found);
    throw new UsageError(`--${flag} "${value}": column ${col}: expected ${e.expected}, found ${found}\n  ${value}\n  ${' '.repeat(col - 1)}^${'~'.repeat(Math.max(0, e.found.length - 1))}`);
  }
  return text;
}

/** The flags as a RunInput (each value checked, nothing defaulted). */
export function flagInput(values: ReturnType<typeof parseFlags>): RunInput {
  const input: RunInput = {};
  if (values.tun !== undefined) input.tun = values.tun;
  if (values['outside-tun'] !== undefined) {
    try {
      input.outsideTun = checkInterfaceName('outside TUN', values['outside-tun']);
    } catch (e) {
      throw new UsageError(`--outside-tun: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (values.address?.length) {
    for (const a of values.address) if (parseIPv4(a) === null) throw new UsageError(`--address ${a}: ${addressProblem(a)}`);
    input.addresses = values.address;
  }
  const rules: string[] = [];
  for (const a of values.accept ?? []) rules.push(flagRule('accept', 'accept', a));
  for (const m of values.masquerade ?? []) rules.push(flagRule('masquerade', 'masquerade', m));
  for (const f of values.forward ?? []) rules.push(flagRule('forward', 'forward', f));
  if (values.rules) {
    try {
      parseRules(values.rules);
    } catch (e) {
      if (e instanceof RuleSyntaxError) throw new UsageError(`--rules: ${e.message}`);
      throw e;
    }
    rules.push(values.rules);
  }
  if (rules.length) input.rules = rules;
  const filtering = values.filtering as Filtering | undefined;
  if (filtering && !['endpoint', 'address', 'address-port'].includes(filtering)) throw new UsageError(`--filtering: "${filtering}" is not one of endpoint, address, address-port`);
  if (filtering) input.filtering = filtering;
  const preset = values.preset as PresetName | undefined;
  if (preset && preset !== 'classic' && preset !== 'default') throw new UsageError(`--preset: "${preset}" is not one of default, classic`);
  if (preset) input.preset = preset;
  const portMode = values['port-mode'] as PortModeName | undefined;
  if (portMode && !['random', 'preserve', 'sequential'].includes(portMode)) throw new UsageError(`--port-mode: "${portMode}" is not one of random, preserve, sequential`);
  if (portMode) input.portMode = portMode;
  if (values.ports) input.ports = parsePortRangeText(values.ports);
  if (values.timeouts) input.timeouts = parseTimeouts(values.timeouts);
  const workers = int('workers', values.workers, 1, 64);
  if (workers !== undefined) input.workers = workers;
  const maxSessions = int('max-sessions', values['max-sessions'], 1, 64_000_000);
  if (maxSessions !== undefined) input.maxSessions = maxSessions;
  const hostLimit = int('host-limit', values['host-limit'], 0, 64_000_000);
  if (hostLimit !== undefined) input.hostLimit = hostLimit;
  const hostPortLimit = int('host-port-limit', values['host-port-limit'], 0, 65535);
  if (hostPortLimit !== undefined) input.hostPortLimit = hostPortLimit;
  const mtu = int('mtu', values.mtu, 576, 9000);
  if (mtu !== undefined) input.mtu = mtu;
  if (values['icmp-on-exhaustion'] && values['no-icmp-on-exhaustion']) throw new UsageError('--icmp-on-exhaustion and --no-icmp-on-exhaustion contradict each other: give one');
  if (values['icmp-on-exhaustion']) input.icmpOnExhaustion = true;
  if (values['no-icmp-on-exhaustion']) input.icmpOnExhaustion = false;
  if (values['no-hop-compensation']) input.hopCompensation = false;
  if (values.metrics !== undefined) input.metrics = values.metrics;
  if (values.control !== undefined) input.control = values.control;
  if (values.offload && values['no-offload']) throw new UsageError('--offload and --no-offload contradict each other: give one (offloads are on by default)');
  if (values.offload) input.offload = true;
  if (values['no-offload']) input.offload = false;
  if (values['io-thread-reads']) input.runToCompletion = false;
  if (values['no-steering']) input.steering = false;
  if (values['no-udp-coalesce']) input.udpCoalesce = false;
  if (values['no-park-read']) input.parkRead = false;
  if (values['no-io-uring']) input.ioUring = false;
  if (values.state !== undefined) {
    if (values.state === '') throw new UsageError('--state: the file name is empty');
    input.state = values.state;
  }
  if (values['state-interval'] !== undefined) {
    const d = parseDuration(values['state-interval']);
    if (d === null && values['state-interval'] !== '0') throw new UsageError(`--state-interval: "${values['state-interval']}" is not a duration (examples: 60s, 5m; 0 = only at stop)`);
    input.stateInterval = d ?? 0;
  }
  if (values.sched !== undefined) input.sched = schedFlag(values.sched);
  if (values.alg !== undefined) {
    try {
      input.alg = parseAlgList(values.alg);
    } catch (e) {
      throw new UsageError(`--alg ${values.alg}: ${e instanceof Error ? e.message.replace(/^alg: /, '') : String(e)}`);
    }
  }
  return input;
}

/** Required values, defaults and the core's validation: RunInput → what the gateway starts with. */
export function settingsFrom(input: RunInput, configPath: string | null, flags: RunInput): RunSettings {
  const inFile = configPath ? ` in ${configPath}` : '';
  if (!input.tun) throw new UsageError(`the TUN device is not given: pass --tun NAME${configPath ? ` or set tun = "masq0"${inFile}` : ''} (the TUN device to attach to or create)`);
  if (!input.addresses?.length)
    throw new UsageError(`no external address: pass --address IP${configPath ? ` or set addresses = ["198.51.100.100"]${inFile}` : ''} (an address routed into the TUN, not assigned to an interface)`);
  if (!input.rules?.length)
    throw new UsageError(`no rules: give at least --masquerade "all from 10.0.0.0/24 to 0.0.0.0/0"${configPath ? ` or rules = ["masquerade all from 10.0.0.0/24 to any"]${inFile}` : ''}`);
  const rulesText = input.rules.join('\n');
  if (!parseRules(rulesText).some((r) => r.kind === 'masquerade'))
    throw new UsageError(`no masquerade rule: nothing would be translated; add one such as "masquerade all from 10.0.0.0/24 to any"`);
  if (input.outsideTun !== undefined && input.outsideTun === input.tun) throw new UsageError(`the outside TUN "${input.outsideTun}" is also the TUN: the outside side needs its own device (--outside-tun masq1)`);
  const gateway: GatewayOptions = {
    tun: input.tun,
    outsideTun: input.outsideTun,
    externals: input.addresses,
    rulesText,
    // One translation worker per core the machine offers, unless told otherwise.
    workers: input.workers ?? Math.min(64, availableParallelism()),
    preset: input.preset,
    filtering: input.filtering,
    portMode: input.portMode,
    portLo: input.ports?.lo,
    portHi: input.ports?.hi,
    timeouts: input.timeouts,
    maxSessions: input.maxSessions,
    hostSessionLimit: input.hostLimit,
    hostPortLimit: input.hostPortLimit,
    icmpOnExhaustion: input.icmpOnExhaustion,
    hopCompensation: input.hopCompensation,
    mtu: input.mtu,
    offload: input.offload,
    sched: input.sched ?? { ...DEFAULT_SCHED },
    runToCompletion: input.runToCompletion,
    steering: input.steering,
    udpCoalesce: input.udpCoalesce,
    parkRead: input.parkRead,
    ioUring: input.ioUring,
    state: input.state,
    stateInterval: input.stateInterval,
    alg: input.alg,
    algPorts: input.algPorts,
  };
  const resolved = resolveConfig(natConfigOf(gateway));
  const metrics = input.metrics ?? DEFAULT_METRICS;
  return { gateway, control: input.control ?? DEFAULT_CONTROL_PATH, metrics: metrics === 'off' ? null : metrics, metricsDefaulted: input.metrics === undefined, resolved, configPath, flags };
}

function parseFlags(argv: string[]) {
  return parseArgs({ args: argv, options: RUN_OPTIONS, allowPositionals: false, strict: true }).values;
}

/** Turn `masq run` flags (and the --config file) into settings, with precise errors. */
export function runSettings(argv: string[], read?: (p: string) => string, env: NodeJS.ProcessEnv = process.env): RunSettings {
  const values = parseFlags(argv);
  const flags = flagInput(values);
  // The gateway listens where the clients look: --control, else MASQ_CONTROL, else the file's.
  if (flags.control === undefined && env['MASQ_CONTROL']) flags.control = env['MASQ_CONTROL'];
  const configPath = values.config ?? null;
  const file = configPath ? loadConfigFile(configPath, read) : null;
  const settings = settingsFrom(mergeInputs(file, flags), configPath, flags);
  settings.up = upOptions(values, settings.gateway.externals.map((a) => (typeof a === 'number' ? formatIPv4(a) : a)));
  settings.quiet = values.quiet === true;
  return settings;
}

/** --up --lan IF [--wan IF] [--table N] [--rule-priority N] → the recipe's options, checked. */
function upOptions(values: ReturnType<typeof parseFlags>, externals: readonly string[]): RoutingOptions | null {
  const routingFlags = (['lan', 'wan', 'table', 'rule-priority'] as const).filter((k) => values[k] !== undefined);
  if (!values.up) {
    if (routingFlags.length) throw new UsageError(`--${routingFlags[0]} goes with --up (apply the routing recipe at start: masq run --up --lan IF ...)`);
    return null;
  }
  if (!values.lan) throw new UsageError('--up needs --lan IF: the inside interface or bridge whose traffic goes through masq');
  const num = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    if (!/^[0-9]+$/.test(v)) throw new UsageError(`--${flag}: "${v}" is not a whole number`);
    return Number(v);
  };
  const opts: RoutingOptions = { lan: values.lan, tun: values.tun ?? '', wan: values.wan, externals, table: num('table', values.table), rulePriority: num('rule-priority', values['rule-priority']) };
  return opts;
}

/** The --up recipe for the TUN the gateway runs on, validated (a usage error never half-applies). */
export function checkedUp(up: RoutingOptions, tun: string, outsideTun?: string): RoutingOptions {
  const opts = { ...up, tun, ...(outsideTun === undefined ? {} : { outsideTun }) };
  try {
    routingPhases(opts);
  } catch (e) {
    throw new UsageError(`--up: ${e instanceof Error ? e.message : String(e)}`);
  }
  return opts;
}

/**
 * What --up takes down at stop: the routes into the TUN and proxy ARP. The policy rule and its
 * unreachable route stay, so that while no gateway runs inside traffic is refused (fail closed)
 * instead of leaving untranslated with its private source; `masq down` removes them too.
 */
export function upUndo(opts: RoutingOptions): Command[] {
  return routingUndo(opts).filter((c) => !(c[1] === 'rule' || c.includes('unreachable')));
}

/** Log lines carry the time, except when stderr is the journal (which stamps them itself). */
export function logStamp(env: NodeJS.ProcessEnv = process.env, now: Date = new Date()): string {
  const js = env['JOURNAL_STREAM'];
  if (js) {
    try {
      const [dev, ino] = js.split(':').map(Number);
      const st = fstatSync(2);
      if (st.dev === dev && st.ino === ino) return '';
    } catch {
      /* stderr not a stream we can stat: stamp */
    }
  }
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())} ${p(now.getHours())}:${p(now.getMinutes())}:${p(now.getSeconds())}.${p(now.getMilliseconds(), 3)} `;
}

/** Re-read the config file under the same flags (for reload). */
export function reloadSettings(prev: RunSettings, read?: (p: string) => string): RunSettings {
  if (!prev.configPath) throw new UsageError('this gateway was started without --config: there is no file to reload (change rules live with masq rule, or restart with --config FILE)');
  return settingsFrom(mergeInputs(loadConfigFile(prev.configPath, read), prev.flags), prev.configPath, prev.flags);
}

/** What a reload did, as the control command `reload` answers it. */
export interface ReloadResult {
  config: string;
  rules: number;
  rulesChanged: boolean;
  flushed: number;
  timeoutsChanged: string[];
  /** The enabled protocol helpers, when the reload changed them (else null). */
  algChanged: string[] | null;
  /** Keys whose new value differs from the running one and needs a restart to take effect. */
  restartNeeded: string[];
}

const TIMER_NAMES: Record<keyof Timeouts, string> = { tcpEstablished: 'tcp', tcpOpening: 'tcp_opening', tcpClosing: 'tcp_closing', udp: 'udp', icmp: 'icmp', fragment: 'fragment', unanswered: 'unanswered' };

/** Keys (config-file names) whose value differs between the running settings and new ones. */
export function restartKeys(running: RunSettings, next: RunSettings): string[] {
  const a = running.resolved;
  const b = next.resolved;
  const keys: string[] = [];
  const diff = (k: string, x: unknown, y: unknown): void => {
    if (JSON.stringify(x) !== JSON.stringify(y)) keys.push(k);
  };
  diff('tun', running.gateway.tun, next.gateway.tun);
  diff('outside_tun', running.gateway.outsideTun, next.gateway.outsideTun);
  diff('addresses', a.externals, b.externals);
  diff('workers', a.partitions, b.partitions);
  diff('ports', [a.portLo, a.portHi], [b.portLo, b.portHi]);
  diff('port_mode', a.portMode, b.portMode);
  diff('filtering', a.filtering, b.filtering);
  diff('max_sessions', a.maxSessions, b.maxSessions);
  diff('host_limit', a.hostSessionLimit, b.hostSessionLimit);
  diff('host_port_limit', a.hostPortLimit, b.hostPortLimit);
  diff('icmp_on_exhaustion', a.icmpOnExhaustion, b.icmpOnExhaustion);
  diff('hop_compensation', a.hopCompensation, b.hopCompensation);
  diff('mtu', running.gateway.mtu, next.gateway.mtu);
  diff('offload', running.gateway.offload ?? true, next.gateway.offload ?? true);
  diff('sched', running.gateway.sched ?? DEFAULT_SCHED, next.gateway.sched ?? DEFAULT_SCHED);
  diff('metrics', running.metrics, next.metrics);
  diff('control', running.control, next.control);
  diff('state', running.gateway.state ?? null, next.gateway.state ?? null);
  diff('state_interval', running.gateway.stateInterval ?? null, next.gateway.stateInterval ?? null);
  return keys;
}

/** The timers that differ, as "udp 5m -> 10m". */
export function timeoutChanges(from: Timeouts, to: Timeouts): string[] {
  return (Object.keys(TIMER_NAMES) as Array<keyof Timeouts>).filter((k) => from[k] !== to[k]).map((k) => `${TIMER_NAMES[k]} ${formatDuration(from[k])} -> ${formatDuration(to[k])}`);
}

const canonicalRules = (text: string): string => parseRules(text).map(formatRule).join('\n');

/**
 * Re-read the config file and apply what can change live: the rules (sessions no rule allows
 * any more are flushed, every other session stays) and the timeouts. Nothing is applied when
 * the file has an error or a forward rule names an address the gateway does not own.
 */
/** The part of a Gateway a reload uses. */
export type Reloadable = Pick<Gateway, 'rulesText' | 'config' | 'setRules' | 'setTimeouts' | 'setAlg'>;

export async function reloadGateway(gw: Reloadable, running: RunSettings, read?: (p: string) => string): Promise<ReloadResult> {
  const next = reloadSettings(running, read);
  const rulesChanged = canonicalRules(next.gateway.rulesText) !== canonicalRules(gw.rulesText);
  const flushed = rulesChanged ? await gw.setRules(next.gateway.rulesText) : 0;
  const timeoutsChanged = timeoutChanges(gw.config.timeouts, next.resolved.timeouts);
  if (timeoutsChanged.length) await gw.setTimeouts(next.resolved.timeouts);
  // Protocol helpers: new sessions from now on get the new set; watched sessions keep theirs.
  const algChanged =
    JSON.stringify([gw.config.alg, gw.config.algPorts]) !== JSON.stringify([next.resolved.alg, next.resolved.algPorts]) ? [...next.resolved.alg] : null;
  if (algChanged) await gw.setAlg(algChanged, next.resolved.algPorts);
  return { config: running.configPath!, rules: parseRules(next.gateway.rulesText).length, rulesChanged, flushed, timeoutsChanged, algChanged, restartNeeded: restartKeys(running, next) };
}

/** One line for the log and for `masq reload`. */
export function formatReload(r: ReloadResult): string {
  const parts = [`reloaded ${r.config}: ${r.rulesChanged ? `rules changed (${r.rules} rule(s)), ${r.flushed} session(s) flushed` : `rules unchanged (${r.rules} rule(s))`}`];
  parts.push(r.timeoutsChanged.length ? `timeouts: ${r.timeoutsChanged.join(', ')}` : 'timeouts unchanged');
  if (r.algChanged) parts.push(`alg: ${r.algChanged.length ? r.algChanged.join(',') : 'none'}`);
  if (r.restartNeeded.length) parts.push(`changed but needing a restart (not applied): ${r.restartNeeded.join(', ')}`);
  return parts.join('; ');
}

export async function cmdRun(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let settings: RunSettings;
  try {
    settings = runSettings(argv);
  } catch (e) {
    if (e instanceof TypeError && 'code' in e) {
      err(`masq run: ${parseArgsMessage(e as Error & { code: string }, RUN_OPTIONS)}\nusage: ${USAGE['run']}\n(see masq run --help)`);
      return 2;
    }
    if (e instanceof UsageError || e instanceof ConfigError || e instanceof ConfigFileError || e instanceof RuleSyntaxError) {
      err(`masq run: ${e.message}\n(see masq run --help)`);
      return 2;
    }
    throw e;
  }
  const quiet = settings.quiet === true;
  const log = (l: string): void => {
    if (!quiet) err(`${logStamp()}masq: ${l}`);
  };
  let up: RoutingOptions | null = null;
  try {
    if (settings.up) up = checkedUp(settings.up, settings.gateway.tun, settings.gateway.outsideTun);
  } catch (e) {
    err(`masq run: ${e instanceof Error ? e.message : String(e)}\n(see masq run --help)`);
    return 2;
  }
  // One gateway per device: taken before the TUN is opened, so a second gateway never
  // attaches queues to a device another one serves.
  let lock: DeviceLock;
  try {
    lock = await lockDevice(settings.gateway.tun, settings.control);
  } catch (e) {
    if (!(e instanceof DeviceLockError)) throw e;
    err(`masq run: ${e.message}`);
    return 3;
  }
  let gw: Gateway;
  try {
    gw = await Gateway.start({ ...settings.gateway, log });
  } catch (e) {
    if (e instanceof ConfigError || e instanceof RuleSyntaxError) {
      err(`masq run: ${e.message}`);
      return 2;
    }
    if (e instanceof TunError) {
      err(`masq run: ${e.message}`);
      return 3;
    }
    throw e;
  }
  for (const w of gw.warnings) log(`warning: ${w}`);
  // Reloads run one at a time (SIGHUP and `masq reload` may race).
  let reloading: Promise<unknown> = Promise.resolve();
  const reload = (): Promise<ReloadResult> => {
    const r = reloading.then(() => reloadGateway(gw, settings));
    reloading = r.catch(() => undefined);
    return r;
  };
  const onHup = (): void => {
    if (!settings.configPath) {
      log('SIGHUP ignored: this gateway was started without --config, there is no file to reload');
      return;
    }
    reload().then(
      (r) => log(formatReload(r)),
      (e: unknown) => log(`reload failed, running configuration kept: ${e instanceof Error ? e.message : String(e)}`),
    );
  };
  process.on('SIGHUP', onHup);
  // --up: the routes go in before the control socket answers, so a client (or a service
  // manager) that sees the gateway answering sees it routed.
  const undoUp = async (): Promise<void> => {
    if (!up) return;
    try {
      await applyRecipe(upUndo(up));
      log(`routing into ${up.tun} removed (--up); the rule for ${up.lan} and its unreachable route stay: inside traffic is refused until a gateway runs again (masq down removes them)`);
    } catch (e) {
      log(`warning: removing the routing failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  if (up) {
    try {
      const done = await applyRecipe(routingRecipe(up));
      const already = done.filter((o) => o.status === 'already-present').length;
      log(`routing applied (--up): ${up.lan} -> ${up.tun}${up.outsideTun ? `, externals -> ${up.outsideTun}` : ''}, table ${up.table ?? 100}, ${done.length - already} command(s) run, ${already} already present`);
    } catch (e) {
      process.off('SIGHUP', onHup);
      await gw.stop();
      await lock.release();
      err(`masq run: --up: ${e instanceof Error ? e.message : String(e)}\n  (the commands before it stay applied; masq down with the same --lan/--wan removes them)`);
      return 3;
    }
  }
  let control;
  try {
    control = await startControlServer(gw, settings.control, (req) => {
      if (req.cmd === 'status') return handle(gw, req).then((st) => ({ ...(st as Record<string, unknown>), config: settings.configPath }));
      if (req.cmd !== 'reload') return undefined;
      return reload().then(
        (r) => {
          log(formatReload(r));
          return r;
        },
        (e: unknown) => {
          log(`reload refused, running configuration kept: ${e instanceof Error ? e.message : String(e)}`);
          throw e;
        },
      );
    });
  } catch (e) {
    process.off('SIGHUP', onHup);
    await undoUp();
    await gw.stop();
    err(`masq run: ${e instanceof Error ? e.message : String(e)}`);
    return 3;
  }
  let metricsClose: (() => Promise<void>) | null = null;
  let metricsAt = settings.metrics;
  if (settings.metrics) {
    try {
      const { startGatewayMetrics } = await import('./metrics.js');
      metricsClose = await startGatewayMetrics(gw, settings.metrics, log);
    } catch (e) {
      // The default endpoint taken (a second gateway in this namespace): run without metrics
      // rather than refuse to start; an address the user asked for must work or we stop.
      const msg = e instanceof Error ? e.message : String(e);
      if (settings.metricsDefaulted && /EADDRINUSE|in use/i.test(msg)) {
        log(`warning: metrics not served: ${settings.metrics} is in use (give --metrics HOST:PORT or --metrics off)`);
        metricsAt = null;
      } else {
        process.off('SIGHUP', onHup);
        await control.close();
        await undoUp();
        await gw.stop();
        err(`masq run: --metrics ${settings.metrics}: ${msg}`);
        return 2;
      }
    }
  }
  if (!quiet) out(`${logStamp()}masq: gateway up on ${gw.tun.name}${gw.outsideTun ? ` (outside ${gw.outsideTun.name})` : ''}: ${gw.partitions} worker(s) (sched ${formatSched(settings.gateway.sched ?? DEFAULT_SCHED)}, offload ${gw.offload}, ${gw.runToCompletion ? `workers read their queues${gw.steering === 'ebpf' ? ', eBPF steering' : gw.steering === 'kernel' ? ', kernel steering' : ''}${gw.ioUring ? ', io_uring' : ''}` : 'I/O thread reads'}), external ${settings.gateway.externals.join(', ')}, control ${control.path}${settings.configPath ? `, config ${settings.configPath} (SIGHUP reloads)` : ''}${metricsAt ? `, metrics http://${metricsAt}/metrics` : ', metrics off'}`);
  await new Promise<void>((resolve) => {
    const done = (): void => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    gw.once('fatal', done);
  });
  process.off('SIGHUP', onHup);
  log('stopping: draining workers, releasing the TUN');
  if (metricsClose) await metricsClose();
  await control.close();
  await undoUp();
  await gw.stop();
  await lock.release();
  log('stopped');
  return 0;
}

export { parseDuration };
