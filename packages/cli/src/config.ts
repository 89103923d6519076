/**
 * config.ts — the `masq run --config FILE` TOML file: parse, type-check, locate errors, and
 * merge with the command-line flags (flags win).
 *
 * Contract:
 * - `parseConfigText(text, name)` returns a `RunInput` (every value checked and converted:
 *   addresses stay strings, ports become {lo, hi}, durations become milliseconds, each rule is
 *   parsed once) or throws a `ConfigFileError` whose message starts `FILE:LINE:COLUMN:` and
 *   says what is wrong and what is allowed — an unknown key lists the known ones, a wrong type
 *   names the expected and the found type, a bad rule carries the RuleSyntaxError's column
 *   mapped into the file and echoes the file line with a caret.
 * - `mergeInputs(file, flags)` is the precedence rule: a flag given on the command line
 *   replaces the file's value; for rules, any rule flag (--masquerade, --accept, --forward,
 *   --rules) replaces the file's whole rule list; timeouts merge per timer.
 * - Pure apart from `loadConfigFile`, which reads the file.
 *
 * The TOML keys are the flag names with `_` for `-` (`port_mode`, `max_sessions`), except
 * `addresses` (a list) for --address and `rules` (a list of rule strings in the classic words,
 * or one multi-line string) for the rule flags.
 */
import fs from 'node:fs';
import { suggest } from './usage.js';
import { parse as parseToml, TomlError } from 'smol-toml';
import { SchedSyntaxError, parseSched, type SchedPolicies } from '@masq/workers';
import {
  ConfigError,
  RuleSyntaxError,
  parseDuration,
  parseIPv4,
  parsePortRangeText,
  parseRule,
  checkAlgNames,
  algNames,
  timerMinimum,
  type Filtering,
  type PortModeName,
  type PresetName,
  type Timeouts,
} from '@masq/core';

/** Everything `masq run` can be told, from flags or from the file; all optional here. */
export interface RunInput {
  tun?: string;
  /** The outside TUN (--outside-tun; `outside_tun = "..."`): direction by where a packet entered. */
  outsideTun?: string;
  addresses?: string[];
  /** Rule lines, each already parsed once (so known to be valid). */
  rules?: string[];
  workers?: number;
  ports?: { lo: number; hi: number };
  portMode?: PortModeName;
  filtering?: Filtering;
  timeouts?: Partial<Timeouts>;
  preset?: PresetName;
  maxSessions?: number;
  hostLimit?: number;
  hostPortLimit?: number;
  icmpOnExhaustion?: boolean;
  hopCompensation?: boolean;
  mtu?: number;
  offload?: boolean;
  /** --io-thread-reads: false (the default is true: workers read their own TUN queues). */
  runToCompletion?: boolean;
  /** --no-steering: false (the default is true: masq's eBPF steering program on the TUN). */
  steering?: boolean;
  /** --no-udp-coalesce: false (the default is true where the TUN has UDP segmentation offload). */
  udpCoalesce?: boolean;
  /** --no-park-read: false (the default is true: an idle worker sleeps in read(2) on its queue). */
  parkRead?: boolean;
  /** --no-io-uring: false (the default is true: each worker's queue through io_uring where the kernel has it). */
  ioUring?: boolean;
  /** Scheduling policies of the packet threads (--sched). */
  sched?: SchedPolicies;
  /** Protocol helpers (--alg; `alg = ["ftp"]`); [] = none. */
  alg?: string[];
  /** Server ports per helper (`[alg_ports]`, e.g. ftp = [21, 2121]), replacing its defaults. */
  algPorts?: Record<string, number[]>;
  metrics?: string;
  control?: string;
  /** State file (--state) and how often it is written while running (ms; 0 = only at stop). */
  state?: string;
  stateInterval?: number;
}

/** A problem in the config file, located. `line`/`column` are 1-based (0 when unknown). */
export class ConfigFileError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly detail: string,
    lineText?: string,
    width = 1,
  ) {
    const where = line > 0 ? `${file}:${line}:${column > 0 ? `${column}:` : ''}` : `${file}:`;
    const echo = lineText !== undefined && column > 0 ? `\n  ${lineText.replace(/\t/g, ' ')}\n  ${' '.repeat(column - 1)}^${'~'.repeat(Math.max(0, width - 1))}` : '';
    super(`${where} ${detail}${echo}`);
    this.name = 'ConfigFileError';
  }
}

export const TOP_KEYS = [
  'tun',
  'addresses',
  'rules',
  'workers',
  'ports',
  'port_mode',
  'filtering',
  'timeouts',
  'preset',
  'max_sessions',
  'host_limit',
  'host_port_limit',
  'icmp_on_exhaustion',
  'hop_compensation',
  'mtu',
  'offload',
  'sched',
  'alg',
  'alg_ports',
  'metrics',
  'control',
  'state',
  'state_interval',
  'outside_tun',
] as const;

/** Timer names in the [timeouts] table, and the Timeouts fields each sets (tcp_transitory: both TCP transitory timers). */
export const TIMEOUT_KEYS: Record<string, ReadonlyArray<keyof Timeouts>> = {
  tcp: ['tcpEstablished'],
  tcp_opening: ['tcpOpening'],
  tcp_closing: ['tcpClosing'],
  tcp_transitory: ['tcpOpening', 'tcpClosing'],
  udp: ['udp'],
  icmp: ['icmp'],
  fragment: ['fragment'],
  unanswered: ['unanswered'],
};

export { suggest };

function describe(v: unknown): string {
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer ${v}` : `float ${v}`;
  if (typeof v === 'bigint') return `integer ${v}`;
  if (typeof v === 'boolean') return `boolean ${v}`;
  if (Array.isArray(v)) return 'an array';
  if (v !== null && typeof v === 'object') return v.constructor?.name === 'TomlDate' ? 'a date' : 'a table';
  return typeof v;
}

/** Where things are in the source text (smol-toml gives values, not positions). */
class Source {
  readonly lines: string[];
  constructor(
    readonly name: string,
    readonly text: string,
  ) {
    this.lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  }

  /** Offset → 1-based line and column. */
  pos(ptr: number): { line: number; column: number } {
    let line = 1;
    let start = 0;
    for (let i = 0; i < ptr && i < this.text.length; i++) {
      if (this.text.charCodeAt(i) === 10) {
        line++;
        start = i + 1;
      }
    }
    return { line, column: ptr - start + 1 };
  }

  /** Offset of `key =` (bare or quoted key) inside `[table]` (or at top level), or -1. */
  keyOffset(key: string, table: string | null = null): number {
    let current: string | null = null;
    let off = 0;
    const re = new RegExp(`^(\\s*)(?:${key.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&')}|"${key}"|'${key}')\\s*=`);
    for (const l of this.lines) {
      const h = /^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]/.exec(l);
      if (h) current = h[1]!;
      else if (current === table) {
        const m = re.exec(l);
        if (m) return off + m[1]!.length;
      }
      off += l.length + 1;
    }
    return -1;
  }

  /** Offset of the table header `[name]`, or -1. */
  tableOffset(name: string): number {
    let off = 0;
    for (const l of this.lines) {
      const m = new RegExp(`^(\\s*)\\[\\s*${name}\\s*\\]`).exec(l);
      if (m) return off + m[1]!.length;
      off += l.length + 1;
    }
    return -1;
  }

  /**
   * Offsets of the content start of each string in the array value of `key` (a basic "…",
   * literal '…' or multi-line string), or of the single string when the value is a string.
   */
  stringOffsets(key: string): number[] {
    const k = this.keyOffset(key);
    if (k < 0) return [];
    const s = this.text;
    let i = s.indexOf('=', k) + 1;
    const out: number[] = [];
    const skip = (): void => {
      while (i < s.length) {
        const c = s[i]!;
        if (c === '#') while (i < s.length && s[i] !== '\n') i++;
        else if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === ',') i++;
        else break;
      }
    };
    const str = (): boolean => {
      const q = s[i];
      if (q !== '"' && q !== "'") return false;
      const triple = s.startsWith(q.repeat(3), i);
      i += triple ? 3 : 1;
      if (triple && s[i] === '\n') i++;
      else if (triple && s.startsWith('\r\n', i)) i += 2;
      out.push(i);
      const close = triple ? q.repeat(3) : q;
      while (i < s.length && !s.startsWith(close, i)) i += q === '"' && s[i] === '\\' ? 2 : 1;
      i += close.length;
      return true;
    };
    skip();
    if (s[i] === '[') {
      i++;
      for (;;) {
        skip();
        if (i >= s.length || s[i] === ']' || !str()) break;
      }
    } else str();
    return out;
  }

  /** An error at offset `ptr` (underlining `width` characters), or unlocated when ptr < 0. */
  error(detail: string, ptr: number, width = 1): ConfigFileError {
    if (ptr < 0) return new ConfigFileError(this.name, 0, 0, detail);
    const { line, column } = this.pos(ptr);
    return new ConfigFileError(this.name, line, column, detail, this.lines[line - 1], width);
  }
}

/** Parse and check a config file's text. `name` labels errors (the path, usually). */
export function parseConfigText(text: string, name = 'masq.toml'): RunInput {
  const src = new Source(name, text);
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.replace(/^Invalid TOML document: /, '').split('\n')[0]!;
      throw new ConfigFileError(name, e.line, e.column, `not valid TOML: ${first}`, src.lines[e.line - 1]);
    }
    throw e;
  }
  const input: RunInput = {};
  const at = (key: string): number => src.keyOffset(key);
  const wrong = (key: string, expected: string, v: unknown): ConfigFileError => src.error(`${key}: expected ${expected}, found ${describe(v)}`, at(key));
  const str = (key: string, v: unknown): string => {
    if (typeof v !== 'string') throw wrong(key, 'a string', v);
    return v;
  };
  const int = (key: string, v: unknown, lo: number, hi: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw wrong(key, `an integer from ${lo} to ${hi}`, v);
    if (v < lo || v > hi) throw src.error(`${key}: ${v} is out of range; expected an integer from ${lo} to ${hi}`, at(key));
    return v;
  };
  const bool = (key: string, v: unknown): boolean => {
    if (typeof v !== 'boolean') throw wrong(key, 'true or false', v);
    return v;
  };
  const oneOf = <T extends string>(key: string, v: unknown, allowed: readonly T[]): T => {
    const s = str(key, v);
    if (!(allowed as readonly string[]).includes(s)) throw src.error(`${key}: "${s}" is not one of ${allowed.join(', ')}`, at(key));
    return s as T;
  };

  for (const [key, v] of Object.entries(doc)) {
    switch (key) {
      case 'tun': {
        const s = str(key, v);
        if (s.length === 0 || Buffer.byteLength(s) > 15 || /[/:\s]/.test(s)) throw src.error(`tun: "${s}" is not an interface name (1-15 bytes, no '/', ':' or whitespace)`, at(key));
        input.tun = s;
        break;
      }
      case 'outside_tun': {
        const s = str(key, v);
        if (s.length === 0 || Buffer.byteLength(s) > 15 || /[/:\s]/.test(s)) throw src.error(`outside_tun: "${s}" is not an interface name (1-15 bytes, no '/', ':' or whitespace)`, at(key));
        input.outsideTun = s;
        break;
      }
      case 'addresses': {
        if (!Array.isArray(v)) throw wrong(key, typeof v === 'string' ? `an array of strings (write addresses = [${JSON.stringify(v)}])` : 'an array of strings', v);
        const offs = src.stringOffsets(key);
        input.addresses = v.map((a: unknown, i) => {
          if (typeof a !== 'string') throw src.error(`addresses[${i}]: expected a string, found ${describe(a)}`, at(key));
          if (parseIPv4(a) === null) throw src.error(`addresses[${i}]: "${a}" is not an IPv4 address (a.b.c.d)`, offs[i] ?? at(key), offs[i] === undefined ? 1 : a.length);
          return a;
        });
        if (input.addresses.length === 0) throw src.error('addresses: the list is empty; give at least one external address', at(key));
        break;
      }
      case 'rules': {
        const offs = src.stringOffsets(key);
        let items: Array<{ text: string; ptr: number; label: string }>;
        if (typeof v === 'string') {
          const base = offs[0] ?? at(key);
          let ptr = base;
          items = v.split('\n').map((l, i) => {
            const it = { text: l.endsWith('\r') ? l.slice(0, -1) : l, ptr, label: `rules (line ${i + 1})` };
            ptr += l.length + 1;
            return it;
          });
        } else if (Array.isArray(v)) {
          items = v.map((r: unknown, i) => {
            if (typeof r !== 'string') throw src.error(`rules[${i}]: expected a rule string such as "masquerade all from 10.0.0.0/24 to any", found ${describe(r)}`, offs[i] ?? at(key));
            return { text: r, ptr: offs[i] ?? -1, label: `rules[${i}]` };
          });
        } else throw wrong(key, 'an array of rule strings', v);
        const lines: string[] = [];
        for (const it of items) {
          if (/^\s*(#.*)?$/.test(it.text)) continue;
          try {
            parseRule(it.text);
          } catch (e) {
            if (!(e instanceof RuleSyntaxError)) throw e;
            const found = e.found === '' ? 'end of rule' : JSON.stringify(e.found);
            if (it.ptr < 0) throw src.error(`${it.label}: column ${e.column}: expected ${e.expected}, found ${found}`, at(key));
            throw src.error(`${it.label}: expected ${e.expected}, found ${found}`, it.ptr + e.column - 1, e.found.length);
          }
          lines.push(it.text.trim());
        }
        input.rules = lines;
        break;
      }
      case 'workers':
        input.workers = int(key, v, 1, 64);
        break;
      case 'ports': {
        const s = str(key, v);
        try {
          input.ports = parsePortRangeText(s);
        } catch (e) {
          if (e instanceof ConfigError) throw src.error(e.message, at(key));
          throw e;
        }
        break;
      }
      case 'port_mode':
        input.portMode = oneOf<PortModeName>(key, v, ['random', 'preserve', 'sequential']);
        break;
      case 'filtering':
        input.filtering = oneOf<Filtering>(key, v, ['endpoint', 'address', 'address-port']);
        break;
      case 'preset':
        input.preset = oneOf<PresetName>(key, v, ['default', 'classic']);
        break;
      case 'timeouts': {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw wrong(key, 'a table ([timeouts] with tcp, tcp_opening, tcp_closing, tcp_transitory, udp, icmp, fragment, unanswered)', v);
        const t: Partial<Timeouts> = {};
        for (const [name, d] of Object.entries(v as Record<string, unknown>)) {
          const fields = TIMEOUT_KEYS[name.replaceAll('-', '_')];
          const ptr = src.keyOffset(name, 'timeouts') >= 0 ? src.keyOffset(name, 'timeouts') : src.tableOffset('timeouts');
          if (!fields) {
            const s = suggest(name, Object.keys(TIMEOUT_KEYS));
            throw src.error(`timeouts: unknown timer "${name}"${s ? ` (did you mean ${s}?)` : ''}; known: ${Object.keys(TIMEOUT_KEYS).join(', ')}`, ptr);
          }
          let ms: number | null;
          if (typeof d === 'number' && Number.isInteger(d) && d > 0) ms = d * 1000;
          else if (typeof d === 'string') ms = parseDuration(d);
          else throw src.error(`timeouts.${name}: expected a duration such as "5m", "2h4m", "60s" (or whole seconds), found ${describe(d)}`, ptr);
          if (ms === null || ms <= 0) throw src.error(`timeouts.${name}: "${String(d)}" is not a duration (examples: "2h4m", "5m", "60s", "1500ms")`, ptr);
          for (const f of fields) {
            const min = timerMinimum(f);
            if (min !== null && ms < min.ms) throw src.error(`timeouts.${name}: "${String(d)}" is below the ${min.why}`, ptr);
            t[f] = ms;
          }
        }
        input.timeouts = t;
        break;
      }
      case 'max_sessions':
        input.maxSessions = int(key, v, 1, 64_000_000);
        break;
      case 'host_limit':
        input.hostLimit = int(key, v, 0, 64_000_000);
        break;
      case 'host_port_limit':
        input.hostPortLimit = int(key, v, 0, 65535);
        break;
      case 'icmp_on_exhaustion':
        input.icmpOnExhaustion = bool(key, v);
        break;
      case 'hop_compensation':
        input.hopCompensation = bool(key, v);
        break;
      case 'mtu':
        input.mtu = int(key, v, 576, 9000);
        break;
      case 'offload':
        input.offload = bool(key, v);
        break;
      case 'sched': {
        const s = str(key, v);
        try {
          input.sched = parseSched(s);
        } catch (e) {
          if (e instanceof SchedSyntaxError) throw src.error(`sched: ${e.message}`, at(key));
          throw e;
        }
        break;
      }
      case 'alg': {
        if (!Array.isArray(v)) throw wrong(key, `an array of helper names such as ["ftp"] ([] for none; known: ${algNames().join(', ')})`, v);
        const offs = src.stringOffsets(key);
        v.forEach((a: unknown, i) => {
          if (typeof a !== 'string') throw src.error(`alg[${i}]: expected a helper name string, found ${describe(a)}`, offs[i] ?? at(key));
          try {
            checkAlgNames([a]);
          } catch (e) {
            throw src.error(`alg[${i}]: ${e instanceof Error ? e.message.replace(/^alg: /, '') : String(e)}`, offs[i] ?? at(key), offs[i] === undefined ? 1 : a.length);
          }
        });
        input.alg = checkAlgNames(v as string[]);
        break;
      }
      case 'alg_ports': {
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw wrong(key, `a table ([alg_ports] with lines such as ftp = [21, 2121])`, v);
        const out: Record<string, number[]> = {};
        for (const [name, list] of Object.entries(v as Record<string, unknown>)) {
          const ptr = src.keyOffset(name, 'alg_ports') >= 0 ? src.keyOffset(name, 'alg_ports') : src.tableOffset('alg_ports');
          if (!algNames().includes(name)) throw src.error(`alg_ports: unknown helper "${name}"; known: ${algNames().join(', ')}`, ptr);
          if (!Array.isArray(list) || list.length === 0 || list.some((p) => typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535))
            throw src.error(`alg_ports.${name}: expected a non-empty array of ports 1-65535 such as [21, 2121], found ${describe(list)}`, ptr);
          out[name] = list as number[];
        }
        input.algPorts = out;
        break;
      }
      case 'metrics': {
        const s = str(key, v);
        if (s !== 'off' && !/^[^\s]+:[0-9]{1,5}$/.test(s)) throw src.error(`metrics: "${s}" is not HOST:PORT (e.g. "127.0.0.1:9464")`, at(key));
        input.metrics = s;
        break;
      }
      case 'control': {
        const s = str(key, v);
        if (s.length === 0) throw src.error('control: the socket path is empty', at(key));
        input.control = s;
        break;
      }
      case 'state': {
        const s = str(key, v);
        if (s.length === 0) throw src.error('state: the file name is empty', at(key));
        input.state = s;
        break;
      }
      case 'state_interval': {
        let ms: number | null;
        if (typeof v === 'number' && Number.isInteger(v) && v >= 0) ms = v * 1000;
        else if (typeof v === 'string') ms = v.trim() === '0' ? 0 : parseDuration(v);
        else throw wrong(key, 'a duration such as "60s" or "5m" (0: only at stop)', v);
        if (ms === null) throw src.error(`state_interval: "${String(v)}" is not a duration (examples: "60s", "5m"; 0 = only at stop)`, at(key));
        input.stateInterval = ms;
        break;
      }
      default: {
        const s = suggest(key, TOP_KEYS);
        const ptr = at(key) >= 0 ? at(key) : src.tableOffset(key);
        throw src.error(`unknown key "${key}"${s ? ` (did you mean ${s}?)` : ''}; known keys: ${TOP_KEYS.join(', ')}`, ptr);
      }
    }
  }
  return input;
}

/** Read and parse a config file; a missing or unreadable file is a ConfigFileError too. */
export function loadConfigFile(path: string, read: (p: string) => string = (p) => fs.readFileSync(p, 'utf8')): RunInput {
  let text: string;
  try {
    text = read(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : e instanceof Error ? e.message : String(e);
    throw new ConfigFileError(path, 0, 0, `cannot read the config file: ${why}`);
  }
  return parseConfigText(text, path);
}

/** Flags over file: a defined flag value wins; rule flags replace the file's rules as a whole. */
export function mergeInputs(file: RunInput | null, flags: RunInput): RunInput {
  if (!file) return { ...flags };
  const out: RunInput = { ...file };
  for (const [k, v] of Object.entries(flags) as Array<[keyof RunInput, unknown]>) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  if (file.timeouts || flags.timeouts) out.timeouts = { ...(file.timeouts ?? {}), ...(flags.timeouts ?? {}) };
  return out;
}
