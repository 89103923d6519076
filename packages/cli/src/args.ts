/**
 * args.ts — strict argument parsing for the client subcommands (status, stats, table, flush,
 * events, rule, reload, debug), with node's util.parseArgs as `run`, `up` and `down` use it.
 *
 * Contract: `parseClient` either returns the whole request a command will make, every value
 * checked (protocol, IPv4 address, port, rule text, worker number), or throws a UsageError that
 * names the problem; main.ts turns that into exit 2 with the command's usage line. Nothing
 * connects to the gateway before parsing succeeded, so a destructive command (`flush`,
 * `table delete`, `rule flush`) whose selector does not parse never acts. An unknown option, an
 * option without its value and a stray argument are all usage errors (a typo such as
 * `--hots` must never widen a selector to "everything").
 */
import { parseArgs } from 'node:util';
import { parseIPv4, parseRule, RuleSyntaxError } from '@masq/core';
import { DEFAULT_CONTROL_PATH } from './control.js';
import { addressProblem, suggest, UsageError } from './usage.js';

/** The synopsis of every command: printed with a usage error, and by `masq help`. */
export const USAGE: Readonly<Record<string, string>> = {
  run: 'masq run --tun NAME --address IP --masquerade RULE [flags]   or   masq run --config FILE [flags]',
  up: 'masq up --lan IF --tun NAME --address IP[/N] [--wan IF] [--table N] [--rule-priority N] [--config FILE] [--netns NS] [-n]',
  down: 'masq down --lan IF --tun NAME --address IP[/N] [--wan IF] [--table N] [--rule-priority N] [--config FILE] [--netns NS] [-n]',
  status: 'masq status [--json] [--control PATH]',
  stats: 'masq stats [--json] [--control PATH]',
  table: 'masq table [--proc | --json] [--watch [--interval DUR]] [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]\n       masq table --expectations [--json] [--control PATH]\n       masq table delete [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]',
  flush: 'masq flush [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]',
  events: 'masq events [--json] [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]',
  rule: 'masq rule list [--json] | add RULE | insert [N] RULE | delete N|RULE | flush   [--control PATH]',
  reload: 'masq reload [--json] [--control PATH]',
  debug: 'masq debug crash-worker N [--control PATH]',
  demo: 'masq demo [--workers N]',
  help: 'masq help [COMMAND]',
};

/** Session selector as the control protocol takes it (already checked). */
export interface Selector {
  proto?: 'tcp' | 'udp' | 'icmp';
  host?: string;
  port?: number;
}

export type ClientArgs =
  | { cmd: 'status' | 'stats' | 'reload'; control: string; json: boolean }
  | { cmd: 'table'; control: string; json: boolean; proc: boolean; expectations: boolean; watchMs: number | null; select: Selector }
  | { cmd: 'table-delete' | 'flush'; control: string; select: Selector }
  | { cmd: 'events'; control: string; json: boolean; select: Selector }
  | { cmd: 'rule-list'; control: string; json: boolean }
  | { cmd: 'rule-add'; control: string; rule: string }
  | { cmd: 'rule-insert'; control: string; rule: string; position: number }
  | { cmd: 'rule-delete'; control: string; number?: number; rule?: string }
  | { cmd: 'rule-flush'; control: string }
  | { cmd: 'crash-worker'; control: string; worker: number };

const COMMON = { control: { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;
const SELECT = { proto: { type: 'string' }, host: { type: 'string' }, port: { type: 'string' } } as const;
const JSON_FLAG = { json: { type: 'boolean' } } as const;

type Spec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** The options each client command accepts (also what "did you mean" suggests from). */
export const CLIENT_OPTIONS: Readonly<Record<string, Spec>> = {
  status: { ...COMMON, ...JSON_FLAG },
  stats: { ...COMMON, ...JSON_FLAG },
  reload: { ...COMMON, ...JSON_FLAG },
  table: { ...COMMON, ...JSON_FLAG, ...SELECT, proc: { type: 'boolean' }, expectations: { type: 'boolean' }, watch: { type: 'boolean', short: 'w' }, interval: { type: 'string' } },
  flush: { ...COMMON, ...SELECT },
  events: { ...COMMON, ...JSON_FLAG, ...SELECT },
  rule: { ...COMMON, ...JSON_FLAG },
  debug: { ...COMMON },
};

/** node's parseArgs error → a short message that names the option (and a likely one meant). */
export function parseArgsMessage(e: Error & { code?: string }, options: Spec): string {
  const quoted = /'([^']*)'/.exec(e.message)?.[1] ?? '';
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const name = quoted.replace(/^-+/, '').split('=')[0]!;
      const known = Object.keys(options);
      // A default that only has an off switch (--io-uring, --steering, --park-read...).
      if (known.includes(`no-${name}`)) return `unknown option ${quoted} (${name} is on by default; --no-${name} turns it off)`;
      const s = name.length > 1 ? suggest(name, known.map((k) => k.replaceAll('-', '_'))) : undefined;
      return `unknown option ${quoted}${s ? ` (did you mean --${s.replaceAll('_', '-')}?)` : ''}`;
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const opt = quoted.split(' ')[0] ?? quoted;
      if (/argument missing/.test(e.message)) return `option ${opt} needs a value`;
      if (/ambiguous/.test(e.message)) return `option ${opt} needs a value (the next word starts with "-"; write ${opt}=VALUE if that is meant)`;
      if (/does not take an argument/.test(e.message)) return `option ${opt} takes no value`;
      return e.message;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${quoted}"`;
    default:
      return e.message;
  }
}

function strictParse(cmd: string, argv: readonly string[], positionals: boolean): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const options = CLIENT_OPTIONS[cmd]!;
  try {
    const r = parseArgs({ args: [...argv], options, allowPositionals: positionals, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    if (e instanceof TypeError && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw new UsageError(parseArgsMessage(e as Error & { code: string }, options));
    throw e;
  }
}

/** --proto/--host/--port, each checked; a bad one is a usage error, never "no filter". */
export function selector(values: Record<string, string | boolean | undefined>): Selector {
  const s: Selector = {};
  const proto = values['proto'];
  if (typeof proto === 'string') {
    if (proto !== 'tcp' && proto !== 'udp' && proto !== 'icmp') throw new UsageError(`--proto: "${proto}" is not one of tcp, udp, icmp`);
    s.proto = proto;
  }
  const host = values['host'];
  if (typeof host === 'string') {
    if (parseIPv4(host) === null) throw new UsageError(`--host ${host}: ${addressProblem(host)}`);
    s.host = host;
  }
  const port = values['port'];
  if (typeof port === 'string') {
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) > 65535) throw new UsageError(`--port: "${port}" is not a port number 0-65535`);
    s.port = Number(port);
  }
  return s;
}

/** A rule given on the command line, checked as the gateway will parse it (caret under the error). */
export function ruleArg(words: readonly string[]): string {
  const text = words.join(' ');
  if (text.trim() === '') throw new UsageError('a rule is needed, e.g. masquerade all from 192.168.1.0/24 to any');
  try {
    parseRule(text);
  } catch (e) {
    if (!(e instanceof RuleSyntaxError)) throw e;
    const found = e.found === '' ? 'end of rule' : JSON.stringify(e.found);
    throw new UsageError(`column ${e.column}: expected ${e.expected}, found ${found}\n  ${text}\n  ${' '.repeat(e.column - 1)}^${'~'.repeat(Math.max(0, e.found.length - 1))}`);
  }
  return text;
}

const WHOLE = /^[0-9]+$/;

/**
 * Parse a client command's arguments completely. `parseDuration` turns `--interval` text into
 * milliseconds (or null). Throws UsageError; never connects.
 */
export function parseClient(cmd: string, argv: readonly string[], env: NodeJS.ProcessEnv, parseDuration: (s: string) => number | null): ClientArgs {
  const takesPositionals = cmd === 'table' || cmd === 'rule' || cmd === 'debug';
  const { values, positionals } = strictParse(cmd, argv, takesPositionals);
  const control = (values['control'] as string | undefined) ?? (env['MASQ_CONTROL'] || DEFAULT_CONTROL_PATH);
  if (control === '') throw new UsageError('--control: the path is empty');
  const json = values['json'] === true;
  switch (cmd) {
    case 'status':
    case 'stats':
    case 'reload':
      return { cmd, control, json };
    case 'flush':
      return { cmd, control, select: selector(values) };
    case 'events':
      return { cmd, control, json, select: selector(values) };
    case 'table': {
      const select = selector(values);
      const watch = values['watch'] === true;
      const proc = values['proc'] === true;
      const interval = values['interval'] as string | undefined;
      if (positionals.length > 0) {
        if (positionals[0] !== 'delete') throw new UsageError(`unexpected argument "${positionals[0]}" (the only subcommand is delete)`);
        if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}" after delete`);
        if (watch || proc || json || interval !== undefined || values['expectations'] === true) throw new UsageError('table delete takes only the selectors --proto, --host and --port');
        return { cmd: 'table-delete', control, select };
      }
      const expectations = values['expectations'] === true;
      if (proc && json) throw new UsageError('--proc and --json are two layouts: choose one');
      if (expectations && (proc || watch || Object.keys(select).length > 0)) throw new UsageError('--expectations lists the helpers\' expectations, alone or with --json');
      if (interval !== undefined && !watch) throw new UsageError('--interval goes with --watch (masq table --watch --interval 2s)');
      let watchMs: number | null = null;
      if (watch) {
        const ms = interval === undefined ? 1000 : parseDuration(interval);
        if (ms === null || ms < 100) throw new UsageError(`--interval "${interval ?? ''}" is not a duration of at least 100ms (examples: 1s, 500ms, 2)`);
        watchMs = ms;
      }
      return { cmd, control, json, proc, expectations, watchMs, select };
    }
    case 'rule': {
      const [sub, ...rest] = positionals;
      const only = (what: string): void => {
        if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}" after rule ${what}`);
      };
      switch (sub) {
        case undefined:
        case 'list':
          only('list');
          return { cmd: 'rule-list', control, json };
        case 'flush':
          only('flush');
          return { cmd: 'rule-flush', control };
        case 'add':
          return { cmd: 'rule-add', control, rule: ruleArg(rest) };
        case 'insert': {
          const pos = rest.length > 0 && WHOLE.test(rest[0]!) ? Number(rest.shift()) : 1;
          if (pos < 1) throw new UsageError('rule insert: positions count from 1');
          return { cmd: 'rule-insert', control, rule: ruleArg(rest), position: pos };
        }
        case 'delete':
          if (rest.length === 1 && WHOLE.test(rest[0]!)) {
            if (Number(rest[0]) < 1) throw new UsageError('rule delete: rules are numbered from 1 (see masq rule list)');
            return { cmd: 'rule-delete', control, number: Number(rest[0]) };
          }
          if (rest.length === 0) throw new UsageError('rule delete needs a rule number (see masq rule list) or the rule itself');
          return { cmd: 'rule-delete', control, rule: ruleArg(rest) };
        default: {
          const s = suggest(sub, ['list', 'add', 'insert', 'delete', 'flush']);
          throw new UsageError(`unknown subcommand "${sub}"${s ? ` (did you mean ${s}?)` : ''}; one of list, add, insert, delete, flush`);
        }
      }
    }
    case 'debug': {
      const [sub, n, ...extra] = positionals;
      if (sub !== 'crash-worker') throw new UsageError(sub === undefined ? 'a debug subcommand is needed: crash-worker N' : `unknown subcommand "${sub}": the only one is crash-worker N`);
      if (n === undefined) throw new UsageError('crash-worker needs a worker number (0 is the first; masq status shows how many)');
      if (!WHOLE.test(n) || Number(n) > 63) throw new UsageError(`crash-worker: "${n}" is not a worker number 0-63`);
      if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
      return { cmd: 'crash-worker', control, worker: Number(n) };
    }
  }
  throw new UsageError(`unknown command "${cmd}"`);
}
