#!/usr/bin/env node
/**
 * main.ts — the `masq` command: subcommand dispatch, help texts, exit codes.
 *
 * Exit codes: 0 success; 1 the operation failed (e.g. the gateway refused it); 2 usage or
 * configuration error; 3 system error (TUN, permissions, no gateway running).
 */
import { cmdRun, formatReload, type ReloadResult } from './run.js';
import { request, streamEvents, ControlError, RefusedError, DEFAULT_CONTROL_PATH } from './control.js';
import { formatDuration, formatTable, formatProc, formatExpectations, parseDuration, type SessionRow, type ExpectationRow } from '@masq/core';
import { formatEvent } from './events.js';
import { HELP, helpFor } from './help.js';

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const err = (s: string): void => void process.stderr.write(s.endsWith('\n') ? s : s + '\n');

function takeFlag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
}
function hasFlag(argv: string[], name: string): boolean {
  const i = argv.indexOf(name);
  if (i < 0) return false;
  argv.splice(i, 1);
  return true;
}

/** Redraw the table every `ms` until Ctrl-C; a failed request ends the watch with its error. */
async function watchTable(sock: string, filter: Record<string, unknown>, ms: number, show: (rows: SessionRow[]) => string): Promise<number> {
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
      const rows = (await request(sock, 'table', filter)) as SessionRow[];
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

async function client(cmd: string, argv: string[]): Promise<number> {
  const sock = takeFlag(argv, '--control') ?? process.env['MASQ_CONTROL'] ?? DEFAULT_CONTROL_PATH;
  const json = hasFlag(argv, '--json');
  const filter: Record<string, unknown> = {};
  for (const k of ['proto', 'host', 'port'] as const) {
    const v = takeFlag(argv, `--${k}`);
    if (v !== undefined) filter[k] = v;
  }
  switch (cmd) {
    case 'status': {
      out(JSON.stringify(await request(sock, 'status'), null, json ? 0 : 2));
      return 0;
    }
    case 'table': {
      const proc = hasFlag(argv, '--proc');
      if (argv[0] === 'delete') {
        const r = await request(sock, 'delete', filter);
        out(JSON.stringify(r));
        return 0;
      }
      const watch = hasFlag(argv, '--watch') || hasFlag(argv, '-w');
      const every = takeFlag(argv, '--interval');
      if (every !== undefined && !watch) {
        err('masq table: --interval goes with --watch (masq table --watch --interval 2s)');
        return 2;
      }
      const show = (rows: SessionRow[]): string => (json ? JSON.stringify(rows) : proc ? formatProc(rows) : formatTable(rows));
      if (watch) {
        const ms = every === undefined ? 1000 : parseDuration(every);
        if (ms === null || ms < 100) {
          err(`masq table: --interval "${every ?? ''}" is not a duration of at least 100ms (examples: 1s, 500ms, 2)`);
          return 2;
        }
        return watchTable(sock, filter, ms, show);
      }
      // Protocol helpers' pending expectations: alone with --expectations, else after the
      // readable table (the --json and --proc session layouts stay as they are).
      if (hasFlag(argv, '--expectations')) {
        const xs = (await request(sock, 'expectations')) as ExpectationRow[];
        out(json ? JSON.stringify(xs) : formatExpectations(xs));
        return 0;
      }
      const rows = (await request(sock, 'table', filter)) as SessionRow[];
      out(show(rows));
      if (!json && !proc) {
        const xs = (await request(sock, 'expectations')) as ExpectationRow[];
        if (xs.length > 0) out(`\nexpected (protocol helpers):\n${formatExpectations(xs)}`);
      }
      return 0;
    }
    case 'flush': {
      const r = (await request(sock, 'flush', filter)) as { flushed: number };
      out(`flushed ${r.flushed} session(s)`);
      return 0;
    }
    case 'stats': {
      out(JSON.stringify(await request(sock, 'stats'), null, json ? 0 : 2));
      return 0;
    }
    case 'rule': {
      const sub = argv.shift();
      if (sub === 'list' || sub === undefined) {
        const r = (await request(sock, 'rules')) as { rules: string[]; table: string };
        out(json ? JSON.stringify(r.rules) : r.table);
        return 0;
      }
      if (sub === 'add' || sub === 'insert') {
        const pos = sub === 'insert' && /^[0-9]+$/.test(argv[0] ?? '') ? Number(argv.shift()) : undefined;
        const r = (await request(sock, sub === 'add' ? 'rule-add' : 'rule-insert', { rule: argv.join(' '), position: pos })) as { rules: string[]; flushed: number };
        out(`${r.rules.length} rule(s); ${r.flushed} session(s) flushed`);
        return 0;
      }
      if (sub === 'delete') {
        const args = /^[0-9]+$/.test(argv[0] ?? '') && argv.length === 1 ? { number: Number(argv[0]) } : { rule: argv.join(' ') };
        const r = (await request(sock, 'rule-delete', args)) as { rules: string[]; flushed: number };
        out(`${r.rules.length} rule(s); ${r.flushed} session(s) flushed`);
        return 0;
      }
      if (sub === 'flush') {
        const r = (await request(sock, 'rule-flush')) as { flushed: number };
        out(`rules flushed; ${r.flushed} session(s) flushed`);
        return 0;
      }
      err(`masq rule: unknown subcommand "${sub}" (add, insert, delete, list, flush)`);
      return 2;
    }
    case 'events': {
      const ctl = streamEvents(sock, filter, (e) => out(json ? JSON.stringify(e) : formatEvent(e)));
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
      out(json ? JSON.stringify(r) : formatReload(r));
      return 0;
    }
    case 'debug': {
      if (argv[0] === 'crash-worker') {
        out(JSON.stringify(await request(sock, 'crash-worker', { worker: Number(argv[1] ?? 0) })));
        return 0;
      }
      err('masq debug: crash-worker N');
      return 2;
    }
  }
  err(`masq: unknown command "${cmd}"`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  const rest = argv.slice(1);
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    out(rest[0] ? helpFor(rest[0]) ?? HELP : HELP);
    return 0;
  }
  if (cmd === '--version' || cmd === 'version') {
    out('masq 0.1.0');
    return 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    const h = helpFor(cmd);
    if (h) {
      out(h);
      return 0;
    }
  }
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest, out, err);
      case 'up':
      case 'down': {
        const { cmdUpDown } = await import('./updown.js');
        return await cmdUpDown(cmd, rest, out, err);
      }
      case 'demo': {
        const { cmdDemo } = await import('./demo.js');
        return await cmdDemo(rest, out, err);
      }
      case 'status':
      case 'table':
      case 'flush':
      case 'stats':
      case 'rule':
      case 'reload':
      case 'events':
      case 'debug':
        return await client(cmd, rest);
      default:
        err(`masq: unknown command "${cmd}"\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof RefusedError) {
      err(`masq ${cmd}: the gateway refused: ${e.message}`);
      return 1;
    }
    if (e instanceof ControlError) {
      err(`masq ${cmd}: ${e.message}`);
      return 3;
    }
    if (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string' && (e as { code: string }).code.startsWith('ERR_PARSE_ARGS')) {
      err(`masq ${cmd}: ${e.message}\n(see masq ${cmd} --help)`);
      return 2;
    }
    throw e;
  }
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
