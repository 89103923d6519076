/**
 * updown.ts — `masq up` and `masq down`: apply or remove the routing recipe (routing.ts) that
 * steers a LAN's forwarded traffic through the masq TUN device, printing each command.
 *
 * Contract: both are idempotent (an add of something present, a delete of something absent,
 * counts as done: `applyRecipe`); `--dry-run` prints the commands and runs nothing. The TUN and
 * the external addresses come from the flags or from `--config FILE` (the `masq run` file).
 * Exit codes: 0 done; 1 a command failed; 2 usage error; 3 not root, or the TUN is missing.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { applyRecipe, formatCommand, RecipeError, routingPhases, routingUndo, type Command, type RoutingOptions } from './routing.js';
import { loadConfigFile, ConfigFileError } from './config.js';
import { addressProblem, UsageError } from './run.js';
import { parseArgsMessage, USAGE } from './args.js';

export const UPDOWN_OPTIONS = {
  lan: { type: 'string' },
  tun: { type: 'string' },
  'outside-tun': { type: 'string' },
  address: { type: 'string', multiple: true },
  wan: { type: 'string' },
  table: { type: 'string' },
  'rule-priority': { type: 'string' },
  config: { type: 'string', short: 'c' },
  netns: { type: 'string' },
  'dry-run': { type: 'boolean', short: 'n' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface UpDownPlan {
  routing: RoutingOptions;
  dryRun: boolean;
  netns: string | undefined;
}

/** Why an external address or block is not one, with the column of the bad part. */
export function cidrProblem(s: string): string | null {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  if (!/^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$/.test(addr) || addr.split('.').some((p) => Number(p) > 255)) return addressProblem(addr);
  if (slash < 0) return null;
  const pre = s.slice(slash + 1);
  if (!/^[0-9]{1,2}$/.test(pre) || Number(pre) > 32) return `not a block a.b.c.d/N: column ${slash + 2}: the prefix "${pre}" is not 0-32\n  ${s}\n  ${' '.repeat(slash + 1)}^`;
  return null;
}

function num(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v)) throw new UsageError(`--${flag}: "${v}" is not a whole number`);
  return Number(v);
}

/** Flags (and the config file) → what to apply; validates everything the recipe needs. */
export function upDownPlan(cmd: 'up' | 'down', argv: string[], read?: (p: string) => string): UpDownPlan {
  const { values } = parseArgs({ args: argv, options: UPDOWN_OPTIONS, allowPositionals: false, strict: true });
  const file = values.config ? loadConfigFile(values.config, read) : null;
  const tun = values.tun ?? file?.tun;
  const outsideTun = values['outside-tun'] ?? file?.outsideTun;
  const externals = values.address?.length ? values.address : (file?.addresses ?? []);
  const fromFile = values.config ? ` (or set it in ${values.config})` : ' (or take it from the masq run file with --config FILE)';
  if (!values.lan) throw new UsageError(`--lan IF is required: the inside interface or bridge whose traffic goes through masq`);
  if (!tun) throw new UsageError(`--tun NAME is required${fromFile}`);
  if (externals.length === 0) throw new UsageError(`--address IP is required${fromFile}: the external address(es) to route into the TUN`);
  for (const a of externals) {
    const p = cidrProblem(a);
    if (p !== null) throw new UsageError(`--address ${a}: ${p}`);
  }
  const routing: RoutingOptions = {
    lan: values.lan,
    tun,
    ...(outsideTun === undefined ? {} : { outsideTun }),
    wan: values.wan,
    externals,
    table: num('table', values.table),
    rulePriority: num('rule-priority', values['rule-priority']),
  };
  try {
    // Validate now (names, ranges, reserved tables) so a usage error never half-applies.
    if (cmd === 'up') routingPhases(routing);
    else routingUndo(routing);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  return { routing, dryRun: values['dry-run'] ?? false, netns: values.netns };
}

const NOT_ROOT = /Permission denied|Operation not permitted|permission denied/;
const NO_DEVICE = /Cannot find device|No such device|cannot stat \/proc\/sys\/net\//;

/** Does network device `name` exist (in network namespace `netns`, when given)? */
function deviceExists(name: string, netns: string | undefined): boolean {
  if (netns === undefined) return fs.existsSync(`/sys/class/net/${name}`);
  return spawnSync('ip', ['-n', netns, 'link', 'show', 'dev', name], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/**
 * What to say when the TUN, the outside TUN, or both do not exist yet: which device, what
 * could not be done without it, and the two ways to make it (the gateway creates both at
 * start; or persistent devices it attaches to).
 */
export function missingTunAdvice(r: { tun: string; outsideTun?: string | undefined }, missing: readonly string[]): string {
  const outside = r.outsideTun !== undefined && missing.includes(r.outsideTun);
  const inside = missing.includes(r.tun);
  const what = inside && outside ? `the TUN devices ${r.tun} and ${r.outsideTun} (--outside-tun) do not exist yet` : inside ? `the TUN device ${r.tun} does not exist yet` : `the outside TUN device ${r.outsideTun} (--outside-tun) does not exist yet`;
  const cannot = inside && outside ? 'the routes into them cannot be added' : inside ? 'the routes into it cannot be added' : 'the external addresses cannot be routed into it';
  const run = `masq run --tun ${r.tun}${r.outsideTun !== undefined ? ` --outside-tun ${r.outsideTun}` : ''} ...`;
  const make = missing.map((d) => `ip tuntap add dev ${d} mode tun`).join('; ');
  return (
    `masq up: ${what}, so ${cannot}.\n` +
    `  The LAN side is prepared (inside traffic is refused until masq runs: fail closed).\n` +
    `  Start the gateway (${run}; it creates ${r.outsideTun !== undefined ? 'both devices' : 'the device'}), then run masq up again;\n` +
    `  or create ${missing.length > 1 ? 'persistent devices' : 'a persistent device'} first: ${make}`
  );
}

/** Run `cmds` one by one, printing `+ command` and how it went. */
async function apply(cmds: readonly Command[], plan: UpDownPlan, out: (s: string) => void): Promise<{ done: number; already: number }> {
  let done = 0;
  let already = 0;
  for (const c of cmds) {
    const shown = plan.netns === undefined ? c : ['ip', 'netns', 'exec', plan.netns, ...c];
    if (plan.dryRun) {
      out(`+ ${formatCommand(shown)}`);
      continue;
    }
    const [o] = await applyRecipe([c], { netns: plan.netns });
    const note = o!.status === 'already-present' ? '   # already present' : o!.status === 'already-absent' ? '   # already gone' : '';
    out(`+ ${formatCommand(shown)}${note}`);
    if (note) already++;
    else done++;
  }
  return { done, already };
}

export async function cmdUpDown(cmd: 'up' | 'down', argv: string[], out: (s: string) => void, err: (s: string) => void, read?: (p: string) => string): Promise<number> {
  let plan: UpDownPlan;
  try {
    plan = upDownPlan(cmd, argv, read);
  } catch (e) {
    if (e instanceof TypeError && 'code' in e) {
      err(`masq ${cmd}: ${parseArgsMessage(e as Error & { code: string }, UPDOWN_OPTIONS)}\nusage: ${USAGE[cmd]}\n(see masq ${cmd} --help)`);
      return 2;
    }
    if (e instanceof UsageError || e instanceof ConfigFileError) {
      err(`masq ${cmd}: ${e.message}\n(see masq ${cmd} --help)`);
      return 2;
    }
    throw e;
  }
  const r = plan.routing;
  try {
    if (cmd === 'down') {
      const n = await apply(routingUndo(r), plan, out);
      if (!plan.dryRun) out(`masq down: routing through ${r.tun} removed (${n.done} removed, ${n.already} already gone); ip_forward and rp_filter left as they are`);
      return 0;
    }
    const phases = routingPhases(r);
    const pre = await apply(phases.prepare, plan, out);
    const missing = plan.dryRun ? [] : [r.tun, ...(r.outsideTun === undefined ? [] : [r.outsideTun])].filter((d) => !deviceExists(d, plan.netns));
    if (missing.length > 0) {
      err(missingTunAdvice(r, missing));
      return 3;
    }
    const n = await apply(phases.tun, plan, out);
    if (!plan.dryRun) out(`masq up: ${r.lan} -> ${r.tun} (table ${r.table ?? 100}) for ${r.externals.join(', ')}; ${pre.done + n.done} applied, ${pre.already + n.already} already present`);
    return 0;
  } catch (e) {
    if (!(e instanceof RecipeError)) throw e;
    if (NOT_ROOT.test(e.stderr)) {
      err(`masq ${cmd}: permission denied: changing routes and sysctls needs root or CAP_NET_ADMIN (run masq ${cmd} as root)\n  ${e.message}`);
      return 3;
    }
    if (NO_DEVICE.test(e.stderr)) {
      err(`masq ${cmd}: an interface is missing (check --lan, --wan${r.outsideTun !== undefined ? ', --tun and --outside-tun' : ' and --tun'}; is the gateway running?)\n  ${e.message}`);
      return 3;
    }
    err(`masq ${cmd}: ${e.message}\n  the commands above it were applied; fix the cause and run masq ${cmd} again (it is idempotent)`);
    return 1;
  }
}
