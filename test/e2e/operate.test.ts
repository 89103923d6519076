/**
 * operate.test.ts — the real gateway operated as a newcomer would, in namespaces: a typo given
 * to a destructive command never acts (`masq flush --hots` against a live TCP connection), a
 * live rule that a forward shadows is warned about, `masq events` shows the ICMP external
 * identifier; one gateway per TUN (a second `masq run` exits 3 naming the first, a killed
 * gateway's lock is taken over, `--tun lan0` never advises deleting lan0); `masq run --up`
 * applies the routing recipe and removes its TUN half at stop (fail closed after), SIGINT
 * stops with 0, -q prints nothing, log lines carry the time, `MASQ_CONTROL` is where run
 * listens; and the shipped systemd unit: `systemd-analyze verify` clean, and the gateway run
 * the way the unit runs it — an unprivileged user holding only the unit's capabilities
 * (CAP_NET_ADMIN), with `--up` — passing TCP and UDP.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { request } from '@masq/cli/control';
import { createTopology, leftoverNamespaces, run, type Topology } from '../src/harness/index.js';
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, chat, masqOk, sleep, table, withGateway } from '../src/gateway/e2e.js';
import { MASQ_MAIN, REPO, startMasq } from '../src/gateway/start.js';

const netnsTest = netnsSuite('operate e2e tests');

const TCP_PORT = 7000;
const UDP_PORT = 7001;
const STAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} masq: /;

/** UDP request/reply exchanges from `ns` through the gateway: how many came back. */
async function udpExchanges(topo: Topology, ns: string, count: number, timeoutMs = 2_000): Promise<number> {
  const r = await topo.peerRaw(ns, 'udp-request', { to: topo.server, port: UDP_PORT, count, timeout: timeoutMs });
  return typeof r.json?.['received'] === 'number' ? r.json['received'] : 0;
}

/** A masq run started by hand: its output, and a promise of its exit. */
interface Started {
  proc: ChildProcess;
  out: string[];
  err: string[];
  exit: Promise<[number | null, NodeJS.Signals | null]>;
}

function started(proc: ChildProcess): Started {
  const s: Started = { proc, out: [], err: [], exit: new Promise((r) => proc.once('exit', (c, sig) => r([c, sig]))) };
  if (proc.stdout) createInterface({ input: proc.stdout }).on('line', (l) => s.out.push(l));
  if (proc.stderr) createInterface({ input: proc.stderr }).on('line', (l) => s.err.push(l));
  return s;
}

/** Until the control socket answers (bounded); throws with the output when masq exits first. */
async function waitControl(s: Started, control: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void s.exit.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`masq exited before its control socket answered:\n${s.out.join('\n')}\n${s.err.join('\n')}`);
    try {
      await request(control, 'status', {}, 1_000);
      return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`no answer on ${control} within ${timeoutMs} ms:\n${s.out.join('\n')}\n${s.err.join('\n')}`);
    await sleep(100);
  }
}

async function stopWith(s: Started, signal: NodeJS.Signals): Promise<[number | null, NodeJS.Signals | null]> {
  s.proc.kill(signal);
  const t = setTimeout(() => s.proc.kill('SIGKILL'), 30_000);
  const r = await s.exit;
  clearTimeout(t);
  return r;
}

const ipOut = async (topo: Topology, args: readonly string[]): Promise<string> => (await topo.execOk(topo.ns.gw, ['ip', ...args])).stdout;

netnsTest('a typo never acts on a live gateway: masq flush --hots exits 2 and the TCP connection lives on; live rule lint; ICMP ids in events', async (t) => {
  const r = await withGateway({ hosts: 1 }, { workers: 1, forwards: ['tcp 198.51.100.100:8000-8100 to 10.200.0.2:8000-8100'] }, async ({ topo, gw }) => {
    const h1 = topo.inside[0]!;
    await topo.startServer(topo.serverNs, 'tcp-echo', { port: TCP_PORT }, { readyTimeoutMs: 30_000 });
    const conn = await chat(topo, h1.ns, topo.server, TCP_PORT);
    t.is((await conn.say('before')).event, 'echo');
    const rows = async (): Promise<string[]> => (await table(gw)).map((s) => `${s.proto} ${s.inside}:${s.insidePort} ${s.externalPort}`).sort();
    const before = await rows();
    const rulesBefore = await masqOk(gw, ['rule', 'list', '--json']);
    t.true(before.some((s) => s.startsWith(`tcp ${h1.addr}:${conn.localPort} `)), 'the connection is in the table');

    for (const args of [
      ['flush', '--hots', '10.200.0.99'],
      ['flush', '--host'],
      ['flush', '--proto', 'tpc'],
      ['table', 'delete', '--prto', 'tcp'],
      ['rule', 'flush', 'now'],
      ['debug', 'crash-worker', 'abc'],
    ]) {
      const x = await gw.masq(args);
      t.is(x.code, 2, `masq ${args.join(' ')}: ${x.stderr}`);
      t.regex(x.stderr, new RegExp(`\\nusage: masq ${args[0]!} `), `masq ${args.join(' ')}: the usage line`);
      t.is(x.stdout, '');
    }
    t.deepEqual(await rows(), before, 'not one session went');
    t.is(await masqOk(gw, ['rule', 'list', '--json']), rulesBefore, 'the rules are as they were');
    t.is((await conn.say('after the typos')).event, 'echo', 'the connection lives on');

    // Spelt right, the selector selects: no session of 10.200.0.99, then h1's connection.
    t.is(await masqOk(gw, ['flush', '--host', '10.200.0.99']), 'flushed 0 session(s)\n');
    t.is((await conn.say('after flushing nobody')).event, 'echo');

    // A forward shadowed by the existing one: the config file's warning, live.
    const add = await gw.masq(['rule', 'add', 'forward', 'tcp', '198.51.100.100:8080', 'to', '10.200.0.2:80']);
    t.is(add.code, 0, add.stderr);
    t.is(add.stderr, 'masq rule: warning: rule 3: never matches: rule 2 (forward tcp 198.51.100.100:8000-8100 to 10.200.0.2:8000-8100) forwards all of its ports first\n');
    t.is(add.stdout, '3 rule(s); 0 session(s) flushed\n');
    const bad = await gw.masq(['rule', 'add', 'forward', 'tcp', '198.51.100.100:8080', 'to', '10.200.0.300:80']);
    t.is(bad.code, 2, 'a bad address in a rule is a usage error');
    t.regex(bad.stderr, /^masq rule: column \d+: expected .*\n  forward tcp 198\.51\.100\.100:8080 to 10\.200\.0\.300:80\n +\^/);

    // The readable status.
    t.regex(await masqOk(gw, ['status']), new RegExp(`^masq gateway running: pid ${String(gw.proc.pid)}, up \\d+s\\n  tun        ${topo.gateway.tun}, 1 translation worker\\(s\\)\\n  external   198\\.51\\.100\\.100\\n`));

    // events: the ICMP reply tuple carries the external identifier.
    const ev = started(topo.node(topo.ns.gw, MASQ_MAIN, ['events', '--proto', 'icmp', '--control', gw.control]));
    // The first sample is the baseline, taken once the client is connected: ping (a new ICMP
    // session, a new identifier, each time) until an event shows one.
    const newLine = (): string | undefined => ev.out.find((l) => l.includes('[NEW]'));
    for (let i = 0; i < 15 && newLine() === undefined; i++) {
      await topo.execOk(h1.ns, ['ping', '-c', '1', '-W', '2', topo.server]);
      await sleep(1_000);
    }
    ev.proc.kill('SIGINT');
    const [evCode] = await ev.exit;
    t.is(evCode, 0, 'masq events ends with 0 on Ctrl-C');
    const line = newLine() ?? '';
    const m = / icmp src=(\S+) dst=(\S+) id=(\d+) src=(\S+) dst=(\S+) id=(\d+)$/.exec(line);
    if (m === null) throw new Error(`no ICMP [NEW] event: ${ev.out.join('\n')}`);
    const icmp = (await table(gw, 'icmp')).find((s) => s.insidePort === Number(m[3]));
    if (icmp === undefined) throw new Error(`no ICMP session with id ${m[3]!}`);
    t.deepEqual(m.slice(1), [h1.addr, topo.server, String(icmp.insidePort), topo.server, topo.external, String(icmp.externalPort)], 'the reply tuple has the external identifier');
    t.not(icmp.insidePort, icmp.externalPort, 'random port mode: the two identifiers differ, so the line shows which is which');

    // Now the real flush: the connection is cut (so the typo above could have cut it).
    t.is(await masqOk(gw, ['flush', '--host', h1.addr, '--proto', 'tcp']), 'flushed 1 session(s)\n');
    await t.throwsAsync(conn.say('after the flush', 2_000), undefined, 'a flushed TCP connection is dropped');
  });
  assertTornDown(t, r);
});

netnsTest('one gateway per TUN: a second masq run exits 3 naming the first, traffic is untouched; a killed gateway\'s lock is taken over; --tun lan0 never advises deleting lan0', async (t) => {
  const topo = await createTopology({ mode: 'masq', hosts: 1 });
  try {
    const h1 = topo.inside[0]!;
    await topo.startServer(topo.serverNs, 'udp-echo', { port: UDP_PORT, quiet: true }, { readyTimeoutMs: 30_000 });
    const first = await startMasq(topo, { workers: 2 });
    const tun = topo.gateway.tun;
    const base = ['run', '--address', topo.external, '--masquerade', `all from ${topo.insideNet} to any`, '--workers', '2', '--metrics', 'off'];
    const second = await topo.exec(topo.ns.gw, [process.execPath, MASQ_MAIN, ...base, '--tun', tun, '--control', `/run/masq/${topo.prefix}-2.sock`], { timeoutMs: 60_000 });
    t.is(second.code, 3, second.stderr);
    t.regex(second.stderr, new RegExp(`^masq run: another masq gateway already runs on TUN ${tun} in this network namespace: pid ${String(first.proc.pid)}, control socket ${first.control.replaceAll('.', '\\.')}, started \\d+ s ago\\. One gateway per device: stop that one first`));
    t.is(second.stdout, '');
    t.is(await udpExchanges(topo, h1.ns, 10), 10, '10 of 10 exchanges through the first gateway');

    const lan = await topo.exec(topo.ns.gw, [process.execPath, MASQ_MAIN, ...base, '--tun', topo.gateway.lan, '--control', `/run/masq/${topo.prefix}-3.sock`], { timeoutMs: 60_000 });
    t.is(lan.code, 3, lan.stderr);
    t.regex(lan.stderr, /"lan0" exists with other settings: it is not a TUN device .*give masq a device name of its own \(--tun masq0\)/);
    t.notRegex(lan.stderr, /delete|del dev/, 'never advise deleting the operator\'s interface');
    t.regex(await ipOut(topo, ['link', 'show', 'dev', 'lan0']), /lan0: .*UP/, 'lan0 is untouched');

    // SIGKILL: no clean-up at all. The next gateway on the device starts all the same.
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    const next = await startMasq(topo, { workers: 2 });
    t.regex(next.log.join(''), /gateway up on masq0/);
    t.is(await udpExchanges(topo, h1.ns, 5), 5, 'traffic through the gateway that took the device over');
    t.is(await next.stop(), 0);
  } finally {
    await topo.destroy();
  }
  t.deepEqual(leftoverNamespaces(topo.prefix), []);
});

netnsTest('masq run --up applies the routing recipe, idempotently; at stop the TUN half goes and inside traffic fails closed; SIGINT stops with 0; -q prints nothing; MASQ_CONTROL is where run listens', async (t) => {
  const topo = await createTopology({ mode: 'masq', hosts: 1 });
  try {
    const h1 = topo.inside[0]!;
    await topo.startServer(topo.serverNs, 'udp-echo', { port: UDP_PORT, quiet: true }, { readyTimeoutMs: 30_000 });
    await topo.unrouteTun();
    t.notRegex(await ipOut(topo, ['rule', 'show']), /iif lan0/, 'nothing of the recipe before the start');
    const control = `/run/masq/${topo.prefix}-env.sock`;
    const args = ['run', '--tun', topo.gateway.tun, '--address', topo.external, '--masquerade', `all from ${topo.insideNet} to any`, '--workers', '1', '--metrics', 'off', '--up', '--lan', topo.gateway.lan, '--wan', topo.gateway.wan];
    const a = started(topo.node(topo.ns.gw, MASQ_MAIN, args, { env: { MASQ_CONTROL: control } }));
    await waitControl(a, control);
    while (!a.out.some((l) => l.includes('gateway up'))) await sleep(50);
    t.regex(a.out.join('\n'), new RegExp(`${STAMP.source}gateway up on masq0: .*control ${control.replaceAll('.', '\\.')}`), 'run listens on MASQ_CONTROL; the up line has the time');
    t.true(a.err.length > 0 && a.err.every((l) => STAMP.test(l)), `every log line has the time: ${a.err.join('\n')}`);
    t.true(a.err.some((l) => l.includes('routing applied (--up): lan0 -> masq0, table 100')), a.err.join('\n'));
    t.regex(await ipOut(topo, ['rule', 'show']), /100:\s+from all iif lan0 lookup 100/);
    t.regex(await ipOut(topo, ['route', 'show', 'table', '100']), /default dev masq0/);
    t.is(await udpExchanges(topo, h1.ns, 5), 5, 'traffic passes with the routing masq applied itself');
    const st = await topo.exec(topo.ns.gw, [process.execPath, MASQ_MAIN, 'status', '--json'], { env: { MASQ_CONTROL: control } });
    t.is((JSON.parse(st.stdout) as { pid: number }).pid, a.proc.pid ?? -1, 'the client finds it through MASQ_CONTROL');

    t.deepEqual(await stopWith(a, 'SIGINT'), [0, null], 'Ctrl-C stops the gateway with 0');
    t.true(a.err.some((l) => l.includes('routing into masq0 removed (--up)')), a.err.join('\n'));
    const table100 = await ipOut(topo, ['route', 'show', 'table', '100']);
    t.notRegex(table100, /masq0/, 'the TUN half is gone');
    t.regex(table100, /unreachable default/, 'the fail-closed route stays');
    t.regex(await ipOut(topo, ['rule', 'show']), /iif lan0 lookup 100/, 'the rule stays');
    t.is(await udpExchanges(topo, h1.ns, 2, 1_000), 0, 'while no gateway runs, inside traffic is refused (fail closed), not leaked');

    // Restart, quiet: the recipe is applied again (what is there is "already present").
    const b = started(topo.node(topo.ns.gw, MASQ_MAIN, [...args, '-q'], { env: { MASQ_CONTROL: control } }));
    await waitControl(b, control);
    t.is(await udpExchanges(topo, h1.ns, 5), 5, 'traffic passes after the restart');
    t.deepEqual(await stopWith(b, 'SIGTERM'), [0, null]);
    t.deepEqual([b.out, b.err], [[], []], '-q: not a line, not even "gateway up"');
  } finally {
    await topo.destroy();
  }
  t.deepEqual(leftoverNamespaces(topo.prefix), []);
});

/** `Key=value` lines of a unit file (the last one of each key). */
function unitKeys(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const x = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (x) m.set(x[1]!, x[2]!);
  }
  return m;
}

const UNIT = path.join(REPO, 'systemd/masq.service');

/** CAP_* names of the unit → setpriv's "-all,+net_admin". */
const setprivCaps = (caps: string): string => `-all,${caps.split(/\s+/).filter(Boolean).map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',')}`;

netnsTest('the systemd unit: systemd-analyze verify is clean; as the unit runs it (an unprivileged user, only CAP_NET_ADMIN, --up) the gateway routes and passes TCP and UDP', async (t) => {
  const text = readFileSync(UNIT, 'utf8');
  const keys = unitKeys(text);
  t.is(keys.get('AmbientCapabilities'), 'CAP_NET_ADMIN');
  t.is(keys.get('CapabilityBoundingSet'), 'CAP_NET_ADMIN');
  t.is(keys.get('RuntimeDirectory'), 'masq', 'control socket under /run/masq');
  t.is(keys.get('StateDirectory'), 'masq', 'state under /var/lib/masq');
  t.is(keys.get('Restart'), 'on-failure');
  t.is(keys.get('RestartPreventExitStatus'), '2');
  const exec = keys.get('ExecStart') ?? '';
  t.regex(exec, /^\/opt\/masq\/bin\/masq run --config \/etc\/masq\/masq\.toml --control \/run\/masq\/control\.sock --up \$MASQ_ROUTING \$MASQ_ARGS$/);

  // verify, with the executable where this checkout has it.
  const dir = `/run/masq/${process.pid}-unit`;
  mkdirSync(dir, { recursive: true });
  try {
    writeFileSync(path.join(dir, 'masq.service'), text.replaceAll('/opt/masq/', `${REPO}/`));
    const v = await run(['systemd-analyze', 'verify', path.join(dir, 'masq.service')], { timeoutMs: 30_000 });
    t.is(v.code, 0, v.stderr);
    t.is(`${v.stdout}${v.stderr}`, '', 'verify prints nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const topo = await createTopology({ mode: 'masq', hosts: 1 });
  // As the unit's RuntimeDirectory=masq: a directory of /run, 0700, owned by the service user.
  const runtime = `/run/masq-${topo.prefix}`;
  try {
    const h1 = topo.inside[0]!;
    await topo.startServer(topo.serverNs, 'udp-echo', { port: UDP_PORT, quiet: true }, { readyTimeoutMs: 30_000 });
    await topo.startServer(topo.serverNs, 'tcp-echo', { port: TCP_PORT }, { readyTimeoutMs: 30_000 });
    await topo.unrouteTun();
    mkdirSync(runtime, { recursive: true, mode: 0o700 });
    const NOBODY = 65534;
    chownSync(runtime, NOBODY, NOBODY);
    const config = path.join(runtime, 'masq.toml');
    writeFileSync(config, `tun = "${topo.gateway.tun}"\naddresses = ["${topo.external}"]\nrules = ["masquerade all from ${topo.insideNet} to any"]\nworkers = 1\n`);
    chmodSync(config, 0o644);
    const control = path.join(runtime, 'control.sock');
    // ExecStart with this checkout's paths; MASQ_ROUTING as /etc/default/masq would set it.
    const argv = exec
      .replace('/opt/masq/bin/masq', MASQ_MAIN)
      .replace('/etc/masq/masq.toml', config)
      .replace('/run/masq/control.sock', control)
      .replace('$MASQ_ROUTING', `--lan ${topo.gateway.lan} --wan ${topo.gateway.wan}`)
      .replace(' $MASQ_ARGS', '')
      .split(' ');
    const caps = setprivCaps(keys.get('AmbientCapabilities') ?? '');
    const setpriv = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', `--inh-caps=${caps}`, `--ambient-caps=${caps}`, `--bounding-set=${setprivCaps(keys.get('CapabilityBoundingSet') ?? '')}`, '--no-new-privs', '--', process.execPath, ...argv];
    // Debian's udev makes /dev/net/tun 0666; where it is not (a container), give this one
    // process a 0666 node for it in a private mount namespace, so the test needs no other privilege.
    const tunMode = statSync('/dev/net/tun').mode & 0o777;
    let cmd = setpriv;
    const devDir = `/run/masq-${topo.prefix}-dev`;
    if ((tunMode & 0o006) !== 0o006) {
      t.log(`/dev/net/tun is ${tunMode.toString(8)} here: a 0666 node for the gateway in a private mount namespace`);
      mkdirSync(devDir, { recursive: true });
      const script = `mount -t tmpfs -o mode=0755,size=64k masqdev ${devDir} && mknod -m 0666 ${devDir}/tun c 10 200 && mount --bind ${devDir}/tun /dev/net/tun && exec "$@"`;
      cmd = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', ...setpriv];
    }
    const gw = started(topo.spawn(topo.ns.gw, cmd));
    try {
      await waitControl(gw, control);
      const status = readFileSync(`/proc/${String(gw.proc.pid)}/status`, 'utf8');
      t.regex(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m, 'runs as the unprivileged user');
      t.regex(status, /^CapEff:\s+0000000000001000$/m, 'effective capabilities: CAP_NET_ADMIN (bit 12) only');
      t.regex(status, /^CapBnd:\s+0000000000001000$/m, 'bounding set: CAP_NET_ADMIN only');
      const sock = statSync(control);
      t.is(sock.uid, NOBODY, 'the control socket belongs to the service user');
      t.is(sock.mode & 0o777, 0o600);
      t.regex(await ipOut(topo, ['route', 'show', 'table', '100']), /default dev masq0/, 'the unprivileged gateway applied the recipe');
      t.is(await udpExchanges(topo, h1.ns, 5), 5, 'UDP through the unprivileged gateway');
      const conn = await chat(topo, h1.ns, topo.server, TCP_PORT);
      const echoed = await conn.say('least privilege');
      t.deepEqual(echoed.event === 'echo' ? echoed.data : echoed, 'least privilege', 'TCP through the unprivileged gateway');
      await conn.close();
      const st = JSON.parse((await topo.execOk(topo.ns.gw, [process.execPath, MASQ_MAIN, 'status', '--json', '--control', control])).stdout) as { pid: number; config: string };
      t.is(st.config, config);
      t.deepEqual(await stopWith(gw, 'SIGTERM'), [0, null], `stopped cleanly: ${gw.err.join('\n')}`);
      t.notRegex(await ipOut(topo, ['route', 'show', 'table', '100']), /masq0/, 'the TUN half removed at stop');
    } finally {
      if (gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL');
    }
  } finally {
    await topo.destroy();
    rmSync(runtime, { recursive: true, force: true });
    rmSync(`/run/masq-${topo.prefix}-dev`, { recursive: true, force: true });
  }
  t.deepEqual(leftoverNamespaces(topo.prefix), []);
});

