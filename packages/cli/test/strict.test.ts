/**
 * strict.test.ts — the client commands as processes against a stand-in gateway (a control
 * socket that records every request and answers as told): strict parsing (an unknown option,
 * a missing value or a stray argument is exit 2 with the usage line, and NOTHING is sent, so a
 * destructive command never acts on a typo), help for every command without a connection, the
 * documented exit codes (0, 1, 2, 3, 130), a closed pipe ending `table --watch` and `events`
 * quietly with 0, and the readable `status`/`stats` layouts.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseArgsMessage } from '../src/args.js';
import { formatStats, formatStatus, formatUptime, type StatsAnswer } from '../src/summary.js';
import { helpFor } from '../src/help.js';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));

interface Recorded {
  cmd: string;
  args: Record<string, unknown>;
}

/** A control socket that records requests; `answer` decides each response (undefined: never answer). */
async function standIn(answer: (r: Recorded) => { ok: boolean; result?: unknown; error?: string; events?: unknown[] } | undefined): Promise<{ path: string; seen: Recorded[]; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'masq-strict-'));
  const sockPath = path.join(dir, 'control.sock');
  const seen: Recorded[] = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    socks.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => socks.delete(sock));
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const req = JSON.parse(buf.slice(0, nl)) as { id: number; cmd: string; args?: Record<string, unknown> };
        buf = buf.slice(nl + 1);
        const r: Recorded = { cmd: req.cmd, args: req.args ?? {} };
        seen.push(r);
        const a = answer(r);
        if (a === undefined) continue;
        sock.write(JSON.stringify({ v: 1, id: req.id, ok: a.ok, result: a.result, error: a.error }) + '\n');
        // A stream of events, one line each, until the client goes.
        const events = a.events;
        if (events) {
          let i = 0;
          const tick = setInterval(() => {
            if (sock.destroyed) return clearInterval(tick);
            sock.write(JSON.stringify({ v: 1, id: req.id, event: events[i++ % events.length] }) + '\n');
          }, 5);
          sock.once('close', () => clearInterval(tick));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(sockPath, () => r()));
  return {
    path: sockPath,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => {
          fs.rmSync(dir, { recursive: true, force: true });
          r();
        });
      }),
  };
}

function masq(args: readonly string[], env: NodeJS.ProcessEnv = {}): { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Async variant (the stand-in server runs in this process, so spawnSync would block it). */
function masqAsync(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

const ROWS = [
  { id: 1, proto: 'udp', inside: '10.200.0.2', insidePort: 5000, external: '198.51.100.100', externalPort: 40000, remote: '198.51.100.10', remotePort: 53, state: 'active', idleMs: 0, expiresMs: 300_000, packetsOut: 1, packetsIn: 1, bytesOut: 60, bytesIn: 60, initSeq: 0, delta: 0, pdelta: 0, inboundCreated: false, hairpin: false },
];

// The typos of issue 12, and more: every one exit 2, the usage line, nothing sent.
const BAD: readonly (readonly [string[], RegExp])[] = [
  [['flush', '--hots', '10.200.0.99'], /unknown option --hots \(did you mean --host\?\)/],
  [['flush', '--host'], /option --host needs a value/],
  [['flush', '--host', '10.200.0.256'], /--host 10\.200\.0\.256: not an IPv4 address: column 10/],
  [['flush', '--proto', 'sctp'], /--proto: "sctp" is not one of tcp, udp, icmp/],
  [['flush', '--port', '70000'], /--port: "70000" is not a port number/],
  [['flush', 'all'], /unexpected argument "all"/],
  [['table', 'delete', '--hots', '10.200.0.99'], /unknown option --hots/],
  [['table', 'delete', '--port', 'http'], /--port: "http" is not a port number/],
  [['table', 'delete', 'now'], /unexpected argument "now" after delete/],
  [['table', '--prto', 'udp'], /unknown option --prto \(did you mean --proto\?\)/],
  [['table', '--port'], /option --port needs a value/],
  [['table', '--port', '--json'], /option --port needs a value/],
  [['table', 'foo'], /unexpected argument "foo"/],
  [['table', '--proc', '--json'], /choose one/],
  [['events', '--bogus'], /unknown option --bogus/],
  [['rule', 'flush', 'now'], /unexpected argument "now" after rule flush/],
  [['rule', 'flush', '--force'], /unknown option --force/],
  [['rule', 'ad', 'masquerade', 'all', 'from', 'any', 'to', 'any'], /unknown subcommand "ad" \(did you mean add\?\)/],
  [['rule', 'add', 'masquerade', 'all', 'from', '10.0.0.0/33', 'to', 'any'], /column 21: expected a CIDR/],
  [['rule', 'add'], /a rule is needed/],
  [['rule', 'delete', '0'], /numbered from 1/],
  [['rule', 'delete', 'forward', 'tcp', '198.51.100.100:80', 'to'], /column \d+: expected/],
  [['status', 'now'], /unexpected argument "now"/],
  [['stats', '--jsno'], /unknown option --jsno \(did you mean --json\?\)/],
  [['reload', '--force'], /unknown option --force/],
  [['debug', 'crash-worker', 'abc'], /crash-worker: "abc" is not a worker number 0-63/],
  [['debug', 'crash-worker'], /needs a worker number/],
  [['debug', 'crash'], /unknown subcommand "crash"/],
];

test('strict parsing: every typo is exit 2 with the usage line, and nothing reaches the gateway', async (t) => {
  const gw = await standIn(() => ({ ok: true, result: { flushed: 7, deleted: 7, rules: [], crashed: 0 } }));
  try {
    // Four at a time: each is a node process.
    const results: Awaited<ReturnType<typeof masqAsync>>[] = [];
    for (let i = 0; i < BAD.length; i += 4) results.push(...(await Promise.all(BAD.slice(i, i + 4).map(([args]) => masqAsync([...args, '--control', gw.path])))));
    for (const [i, [args, message]] of BAD.entries()) {
      const r = results[i]!;
      const what = `masq ${args.join(' ')}`;
      t.is(r.code, 2, `${what}: ${r.stderr}`);
      t.regex(r.stderr, new RegExp(`^masq ${args[0]}: `), what);
      t.regex(r.stderr, message, what);
      t.regex(r.stderr, new RegExp(`\\nusage: masq ${args[0]} `), `${what}: the usage line`);
      t.is(r.stdout, '', `${what}: nothing on stdout`);
    }
    t.deepEqual(gw.seen, [], 'not one request was sent');
    // The same selectors, spelt right, are sent as given (--proto=udp is the same as --proto udp).
    t.is((await masqAsync(['flush', '--host', '10.200.0.99', '--control', gw.path])).stdout, 'flushed 7 session(s)\n');
    t.is((await masqAsync(['table', 'delete', '--proto=udp', '--port', '53', '--control', gw.path])).stdout, 'deleted 7 session(s)\n');
    t.deepEqual(gw.seen, [
      { cmd: 'flush', args: { host: '10.200.0.99' } },
      { cmd: 'delete', args: { proto: 'udp', port: 53 } },
    ]);
  } finally {
    await gw.close();
  }
});

test('every command has --help and masq help CMD shows the same text; neither connects', (t) => {
  for (const cmd of ['run', 'up', 'down', 'reload', 'table', 'events', 'flush', 'rule', 'stats', 'status', 'demo', 'debug']) {
    const a = masq([cmd, '--help'], { MASQ_CONTROL: '/nonexistent/control.sock' });
    t.is(a.code, 0, `masq ${cmd} --help: ${a.stderr}`);
    t.regex(a.stdout, new RegExp(`^masq ${cmd} — `), cmd);
    t.regex(a.stdout, /\nSYNOPSIS\n/, cmd);
    t.regex(a.stdout, /\nEXAMPLES\n/, cmd);
    t.regex(a.stdout, /\nEXIT STATUS\n/, cmd);
    t.is(a.stdout, helpFor(cmd) ?? "", cmd);
    t.is(masq(['help', cmd]).stdout, a.stdout, `masq help ${cmd}`);
  }
  t.is(masq(['flush', '--host', '10.0.0.1', '-h']).stdout, `${helpFor('flush')!}`, 'masq flush ... -h: help, nothing flushed');
  const nope = masq(['help', 'reloda']);
  t.is(nope.code, 2);
  t.regex(nope.stderr, /no command "reloda" \(did you mean reload\?\)/);
  const unknown = masq(['reloda']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /^masq: unknown command "reloda" \(did you mean reload\?\)\nusage: masq <command>/);
});

test('exit codes as documented: 0 done, 1 refused, 2 usage, 3 no gateway, 130 interrupted', async (t) => {
  const gw = await standIn((r) => (r.cmd === 'rule-delete' ? { ok: false, error: 'no such rule (see masq rule list)' } : r.cmd === 'status' ? undefined : { ok: true, result: { rules: ['masquerade all from 10.0.0.0/8 to any'], table: 'IP masquerade rules\n', flushed: 0 } }));
  try {
    t.is((await masqAsync(['rule', 'list', '--control', gw.path])).code, 0);
    const refused = await masqAsync(['rule', 'delete', '9', '--control', gw.path]);
    t.is(refused.code, 1);
    t.is(refused.stderr, 'masq rule: the gateway refused: no such rule (see masq rule list)\n');
    t.is((await masqAsync(['rule', 'delete', 'nine', '--control', gw.path])).code, 2);
    const none = await masqAsync(['stats', '--control', '/nonexistent/masq.sock']);
    t.is(none.code, 3);
    t.regex(none.stderr, /no gateway is running \(nothing answers on \/nonexistent\/masq\.sock\)/);
    // MASQ_CONTROL is where clients look without --control.
    t.is((await masqAsync(['rule', 'list'], { MASQ_CONTROL: gw.path })).code, 0);
    // Ctrl-C while waiting for an answer (this stand-in never answers status): the shell's 130.
    const c = spawn(process.execPath, [MAIN, 'status', '--control', gw.path]);
    while (!gw.seen.some((r) => r.cmd === 'status')) await new Promise((r) => setTimeout(r, 20));
    c.kill('SIGINT');
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => c.once('exit', (cd, s) => r([cd, s])));
    t.is(signal, 'SIGINT', `killed by SIGINT (a shell shows 130); exit ${String(code)}`);
  } finally {
    await gw.close();
  }
});

/** Spawn masq with its stdout read until `lines` lines came, then close the pipe (like head). */
async function headOf(args: readonly string[], lines: number): Promise<{ code: number | null; signal: string | null; stderr: string; got: string }> {
  const c = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let got = '';
  c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  c.stdout.on('data', (d: Buffer) => {
    got += d.toString();
    if (got.split('\n').length > lines) c.stdout.destroy();
  });
  const kill = setTimeout(() => c.kill('SIGKILL'), 15_000);
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => c.once('exit', (cd, s) => r([cd, s])));
  clearTimeout(kill);
  return { code, signal, stderr, got };
}

test('a closed pipe ends table --watch and events quietly with 0 (masq table -w | head -5, masq events | head -1)', async (t) => {
  const event = { type: 'new', time: 0, proto: 'udp', inside: '10.200.0.2', insidePort: 5000, external: '198.51.100.100', externalPort: 40000, remote: '198.51.100.10', remotePort: 53, state: 'active' };
  const gw = await standIn((r) => (r.cmd === 'events' ? { ok: true, result: { streaming: true, intervalMs: 500 }, events: [event] } : { ok: true, result: ROWS }));
  try {
    const w = await headOf(['table', '-w', '--interval', '100ms', '--control', gw.path], 5);
    t.is(w.stderr, '', 'no EPIPE stack trace');
    t.is(w.code, 0);
    t.true(w.got.split('\n').length > 5, 'it wrote before the pipe closed');
    const e = await headOf(['events', '--control', gw.path], 1);
    t.is(e.stderr, '');
    t.is(e.code, 0);
    t.regex(e.got, /^\d\d:\d\d:\d\d\.\d{3} \[NEW\]     udp  src=10\.200\.0\.2/);
  } finally {
    await gw.close();
  }
});

const STATS: StatsAnswer = {
  packets: { out: { tcp: 10, udp: 5, icmp: 2, other: 0 }, in: { tcp: 9, udp: 5, icmp: 2, other: 0 } },
  bytes: { out: 1500, in: 1400 },
  drops: { no_rule: 3, tcp_not_syn: 1 },
  sessions: { tcp: 2, udp: 1, icmp: 0 },
  tcpStates: { established: 1, time_wait: 1 },
  sessionsLimit: 1000,
  sessionsCreated: 9,
  mappings: 2,
  portsInUse: { '198.51.100.100': 3 },
  portsLimit: 64512,
  portAllocationFailures: 0,
  hairpinned: 4,
  icmpErrorsTranslated: 1,
  workers: [
    { worker: 0, packets: 20, sessions: 2, reads: 30, handedOver: 2, uringPasses: 25, udpSupers: 3, udpCoalesced: 40 },
    { worker: 1, packets: 13, sessions: 1, homeSlots: 1024, freeSlots: 960, kernelSlots: 64, slotsReclaimed: 64 },
  ],
  alg: { enabled: ['ftp'], rewrites: { ftp: 2 }, errors: {}, expectations: 1 },
};

test('masq stats and masq status: a readable summary by default, the JSON with --json', async (t) => {
  t.is(
    formatStats(STATS),
    [
      'packets    out 17 (tcp 10, udp 5, icmp 2, other 0)',
      '           in  16 (tcp 9, udp 5, icmp 2, other 0)',
      'bytes      out 1500, in 1400',
      'sessions   3 of 1000 (tcp 2, udp 1, icmp 0); 9 created since start',
      'mappings   2 (inside endpoint to external port; port forwards included)',
      'tcp        established 1, time_wait 1',
      'ports      198.51.100.100 3 of 64512 in use; 0 allocation failure(s)',
      'drops      4 (no_rule 3, tcp_not_syn 1)',
      'hairpinned 4; ICMP errors translated 1',
      'helpers    ftp; rewrites ftp 2; errors 0; 1 expectation(s)',
      'worker 0   20 packet(s), 2 session(s); read 30 from its queue, 2 handed over; 25 io_uring pass(es); 40 datagram(s) written in 3 UDP super-packet(s)',
      'worker 1   13 packet(s), 1 session(s); slots 960 free, 64 with the kernel, of 1024; 64 slot(s) taken back after restarts',
    ].join('\n'),
  );
  const status = { pid: 42, tun: 'masq0', workers: 2, externals: ['198.51.100.100'], uptimeMs: 7_445_000, version: 1, config: null };
  t.is(
    formatStatus(status, '/run/masq/control.sock'),
    'masq gateway running: pid 42, up 2h04m\n  tun        masq0, 2 translation worker(s)\n  external   198.51.100.100\n  control    /run/masq/control.sock (protocol 1)\n  config     none (started from flags: masq reload is refused)',
  );
  t.is(formatStatus({ ...status, node: 'v20.20.2', jit: '--max-inlined-bytecode-size-cumulative=3000' }, '/c').split('\n').at(-1), "  runtime    node v20.20.2; V8 --max-inlined-bytecode-size-cumulative=3000 (masq's inlining budget)");
  t.is(formatStatus({ ...status, node: 'v20.20.2', jit: null }, '/c').split('\n').at(-1), "  runtime    node v20.20.2; V8's own inlining budget (MASQ_JIT_DEFAULTS=1 or node's command line)");
  t.deepEqual([formatUptime(12_000), formatUptime(250_000), formatUptime(90_061_000)], ['12s', '4m10s', '1d 1h01m']);
  const gw = await standIn((r) => ({ ok: true, result: r.cmd === 'stats' ? STATS : status }));
  try {
    t.is((await masqAsync(['stats', '--control', gw.path])).stdout, `${formatStats(STATS)}\n`);
    t.deepEqual(JSON.parse((await masqAsync(['stats', '--json', '--control', gw.path])).stdout), STATS);
    t.is((await masqAsync(['status', '--control', gw.path])).stdout, `${formatStatus(status, gw.path)}\n`);
    t.deepEqual(JSON.parse((await masqAsync(['status', '--json', '--control', gw.path])).stdout), status);
  } finally {
    await gw.close();
  }
});

test('live rule add and insert get the config file lint of the new rule (a shadowed forward "never matches")', async (t) => {
  const { handle } = await import('../src/control.js');
  const { parseIPv4 } = await import('@masq/core');
  let rulesText = 'masquerade all from 10.200.0.0/24 to any\nforward tcp 198.51.100.100:8000-8100 to 10.200.0.2:8000-8100';
  const gw = { rulesText: '', config: { externals: [parseIPv4('198.51.100.100')!] }, setRules: (text: string) => ((rulesText = text), Promise.resolve(0)) };
  Object.defineProperty(gw, 'rulesText', { get: () => rulesText });
  const stand = gw as unknown as Parameters<typeof handle>[0];
  const added = (await handle(stand, { v: 1, id: 1, cmd: 'rule-add', args: { rule: 'forward tcp 198.51.100.100:8080 to 10.200.0.3:80' } })) as { warnings: string[]; rules: string[] };
  t.deepEqual(added.warnings, ['rule 3: never matches: rule 2 (forward tcp 198.51.100.100:8000-8100 to 10.200.0.2:8000-8100) forwards all of its ports first']);
  t.is(added.rules.length, 3, 'the rule is added all the same');
  // Inserted first, a masquerade rule that covers the existing one shadows it: that is said too.
  const inserted = (await handle(stand, { v: 1, id: 2, cmd: 'rule-insert', args: { rule: 'accept all from 10.200.0.0/16 to any', position: 1 } })) as { warnings: string[] };
  t.deepEqual(inserted.warnings, ['rule 2: never matches: rule 1 (accept all from 10.200.0.0/16 to any) accepts all of its traffic first']);
  const clean = (await handle(stand, { v: 1, id: 3, cmd: 'rule-add', args: { rule: 'masquerade udp from 10.201.0.0/24 to any' } })) as { warnings: string[] };
  t.deepEqual(clean.warnings, []);
});

test('an option that is on by default and only has an off switch: the message says so', (t) => {
  const spec = { 'no-io-uring': { type: 'boolean' }, 'no-steering': { type: 'boolean' }, workers: { type: 'string' } } as const;
  const message = (args: string[]): string => {
    try {
      parseArgs({ args, options: spec, strict: true, allowPositionals: false });
    } catch (e) {
      return parseArgsMessage(e as Error & { code: string }, spec);
    }
    return '';
  };
  t.is(message(['--io-uring']), 'unknown option --io-uring (io-uring is on by default; --no-io-uring turns it off)');
  t.is(message(['--steering']), 'unknown option --steering (steering is on by default; --no-steering turns it off)');
  t.is(message(['--worker', '2']), 'unknown option --worker (did you mean --workers?)');
});
