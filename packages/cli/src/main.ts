#!/usr/bin/env node
/**
 * main.ts — the `masq` command: subcommand dispatch, help texts, exit codes.
 *
 * Exit codes: 0 success; 1 the operation failed (e.g. the gateway refused it); 2 usage or
 * configuration error; 3 system error (TUN, permissions, no gateway running).
 */
import type { ReloadResult } from './run.js';
import { suggest, UsageError } from './usage.js';
import { request, streamEvents, ControlError, RefusedError } from './control.js';
import { formatDuration, formatTable, formatProc, formatExpectations, parseDuration, type SessionRow, type ExpectationRow } from '@masq/core';
import { formatEvent } from './events.js';
import { HELP, helpFor } from './help.js';
import { parseClient, USAGE, type ClientArgs, type Selector } from './args.js';
import { formatStats, formatStatus, type StatsAnswer, type StatusAnswer } from './summary.js';

const COMMANDS = ['run', 'up', 'down', 'reload', 'table', 'events', 'flush', 'rule', 'stats', 'status', 'demo', 'debug', 'help'];

function commandSuggestion(word: string): string {
  const s = suggest(word, COMMANDS);
  return s ? ` (did you mean ${s}?)` : '';
}

/**
 * A closed pipe (`masq table -w | head -5`, `masq events | head -1`) ends the command quietly
 * with status 0, as Unix tools do; any other output error is reported once.
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    process.exit(1);
  });
}
quietOnClosedPipe(process.stdout);
quietOnClosedPipe(process.stderr);

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const err = (s: string): void => void process.stderr.write(s.endsWith('\n') ? s : s + '\n');

/** Redraw the table every `ms` until Ctrl-C; a failed request ends the watch with its error. */
async function watchTable(sock: string, filter: Selector, ms: number, show: (rows: SessionRow[]) => string): Promise<number> {
  let stopped = false;
  let wake: () => void = () => {};
  const stop = (): void => {
    stopped = true;
    wake();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const tty = process.stdout.isTTY === true;
  try {
    while (!stopped) {
      const rows = (await request(sock, 'table', { ...filter })) as SessionRow[];
      if (stopped) break;
      const head = `masq table — every ${formatDuration(ms)} — ${new Date().toTimeString().slice(0, 8)} — ${rows.length} session(s) — Ctrl-C to stop`;
      // On a terminal: home the cursor and clear, so the table redraws in place.
      process.stdout.write(`${tty ? '\x1b[H\x1b[2J' : ''}${head}\n${show(rows).replace(/\n?$/, '\n')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, ms);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return 0;
}

/** Print the gateway's lint of a live rule change (the same warnings a config file gets). */
function warnRules(r: { warnings?: string[] }): void {
  for (const w of r.warnings ?? []) err(`masq rule: warning: ${w}`);
}

/** Run a parsed client command against the gateway. */
async function client(a: ClientArgs): Promise<number> {
  const sock = a.control;
  switch (a.cmd) {
    case 'status': {
      const st = (await request(sock, 'status')) as StatusAnswer;
      out(a.json ? JSON.stringify(st) : formatStatus(st, sock));
      return 0;
    }
    case 'stats': {
      const st = (await request(sock, 'stats')) as StatsAnswer;
      out(a.json ? JSON.stringify(st) : formatStats(st));
      return 0;
    }
    case 'table': {
      const show = (rows: SessionRow[]): string => (a.json ? JSON.stringify(rows) : a.proc ? formatProc(rows) : formatTable(rows));
      if (a.watchMs !== null) return watchTable(sock, a.select, a.watchMs, show);
      // Protocol helpers' pending expectations: alone with --expectations, else after the
      // readable table (the --json and --proc session layouts stay as they are).
      if (a.expectations) {
        const xs = (await request(sock, 'expectations')) as ExpectationRow[];
        out(a.json ? JSON.stringify(xs) : formatExpectations(xs));
        return 0;
      }
      out(show((await request(sock, 'table', { ...a.select })) as SessionRow[]));
      if (!a.json && !a.proc) {
        const xs = (await request(sock, 'expectations')) as ExpectationRow[];
        if (xs.length > 0) out(`\nexpected (protocol helpers):\n${formatExpectations(xs)}`);
      }
      return 0;
    }
    case 'table-delete': {
      const r = (await request(sock, 'delete', { ...a.select })) as { deleted: number };
      out(`deleted ${r.deleted} session(s)`);
      return 0;
    }
    case 'flush': {
      const r = (await request(sock, 'flush', { ...a.select })) as { flushed: number };
      out(`flushed ${r.flushed} session(s)`);
      return 0;
    }
    case 'rule-list': {
      const r = (await request(sock, 'rules')) as { rules: string[]; table: string };
      out(a.json ? JSON.stringify(r.rules) : r.table);
      return 0;
    }
    case 'rule-add':
    case 'rule-insert': {
      const args = a.cmd === 'rule-add' ? { rule: a.rule } : { rule: a.rule, position: a.position };
      const r = (await request(sock, a.cmd, args)) as { rules: string[]; flushed: number; warnings?: string[] };
      warnRules(r);
      out(`${r.rules.length} rule(s); ${r.flushed} session(s) flushed`);
      return 0;
    }
    case 'rule-delete': {
      const r = (await request(sock, 'rule-delete', a.number !== undefined ? { number: a.number } : { rule: a.rule })) as { rules: string[]; flushed: number };
      out(`${r.rules.length} rule(s); ${r.flushed} session(s) flushed`);
      return 0;
    }
    case 'rule-flush': {
      const r = (await request(sock, 'rule-flush')) as { flushed: number };
      out(`rules flushed; ${r.flushed} session(s) flushed`);
      return 0;
    }
    case 'events': {
      const ctl = streamEvents(sock, { ...a.select }, (e) => out(a.json ? JSON.stringify(e) : formatEvent(e)));
      let interrupted = false;
      const stop = (): void => {
        interrupted = true;
        ctl.close();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await ctl.done;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
      if (!interrupted) err('masq events: the gateway ended the stream (it stopped)');
      return 0;
    }
    case 'reload': {
      const r = (await request(sock, 'reload', {}, 60_000)) as ReloadResult;
      const { formatReload } = await import('./run.js');
      out(a.json ? JSON.stringify(r) : formatReload(r));
      return 0;
    }
    case 'crash-worker': {
      const r = (await request(sock, 'crash-worker', { worker: a.worker })) as { crashed: number };
      // JSON, as before: scripts and the supervisor tests read it.
      out(JSON.stringify(r));
      return 0;
    }
  }
}

const CLIENT_COMMANDS = new Set(['status', 'table', 'flush', 'stats', 'rule', 'reload', 'events', 'debug']);

/** A usage error: the message, the command's synopsis, where the full help is. Exit 2. */
function usage(cmd: string, message: string): number {
  const syn = USAGE[cmd];
  err(`masq ${cmd}: ${message}\n${syn ? `usage: ${syn}\n` : ''}(see masq ${cmd} --help)`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  const rest = argv.slice(1);
  if (!cmd || cmd === '--help' || cmd === '-h') {
    out(HELP);
    return 0;
  }
  if (cmd === 'help') {
    if (rest.length === 0) {
      out(HELP);
      return 0;
    }
    const h = rest.length === 1 ? helpFor(rest[0]!) : undefined;
    if (h === undefined) return usage('help', rest.length > 1 ? `one command at a time, not "${rest.join(' ')}"` : `no command "${rest[0]}"${commandSuggestion(rest[0]!)}; the commands are ${COMMANDS.join(', ')}`);
    out(h);
    return 0;
  }
  if (cmd === '--version' || cmd === 'version') {
    if (rest.length > 0) return usage('help', `unexpected argument "${rest[0]}"`);
    out('masq 0.1.0');
    return 0;
  }
  // --help anywhere (before any other check, so a help request never connects or acts).
  if (rest.includes('--help') || rest.includes('-h')) {
    const h = helpFor(cmd);
    if (h) {
      out(h);
      return 0;
    }
  }
  if (CLIENT_COMMANDS.has(cmd)) {
    let parsed: ClientArgs;
    try {
      parsed = parseClient(cmd, rest, process.env, parseDuration);
    } catch (e) {
      if (e instanceof UsageError) return usage(cmd, e.message);
      throw e;
    }
    try {
      return await client(parsed);
    } catch (e) {
      const code = controlExit(cmd, e);
      if (code !== null) return code;
      throw e;
    }
  }
  try {
    switch (cmd) {
      case 'run': {
        const { cmdRun } = await import('./run.js');
        return await cmdRun(rest, out, err);
      }
      case 'up':
      case 'down': {
        const { cmdUpDown } = await import('./updown.js');
        return await cmdUpDown(cmd, rest, out, err);
      }
      case 'demo': {
        const { cmdDemo } = await import('./demo.js');
        return await cmdDemo(rest, out, err);
      }
      default:
        err(`masq: unknown command "${cmd}"${commandSuggestion(cmd)}\nusage: masq <command> [options]; the commands are ${COMMANDS.join(', ')}\n(see masq help)`);
        return 2;
    }
  } catch (e) {
    const code = controlExit(cmd, e);
    if (code !== null) return code;
    if (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string' && (e as { code: string }).code.startsWith('ERR_PARSE_ARGS')) {
      err(`masq ${cmd}: ${e.message}\n(see masq ${cmd} --help)`);
      return 2;
    }
    throw e;
  }
}

/** The exit status of a control-plane failure, said on stderr: 1 the gateway refused, 3 no
 * gateway or a transport error; null when `e` is not one (the caller goes on). */
function controlExit(cmd: string, e: unknown): number | null {
  if (e instanceof RefusedError) {
    err(`masq ${cmd}: the gateway refused: ${e.message}`);
    return 1;
  }
  if (e instanceof ControlError) {
    err(`masq ${cmd}: ${e.message}`);
    return 3;
  }
  return null;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    err(`masq: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exitCode = 1;
  },
);
