/**
 * demo.ts — `masq demo`: masquerading between network namespaces with real traffic.
 *
 * Builds (with a unique prefix, removed on exit, failure or signal):
 *
 *   h1 10.200.0.2 ─┐                                      ┌─ out 198.51.100.10
 *   h2 10.200.0.3 ─┴─ lan0 10.200.0.1 [gw: masq on masq0] wan0 198.51.100.1 ─┘
 *                       external address 198.51.100.100 (routed into the TUN, proxy ARP)
 *
 * The server has no route back to 10.200.0.0/24: only masquerading makes the traffic work.
 * Runs a telnet-like TCP session (h1), a DNS-like UDP query (h2), a connection from outside
 * through the port forward to h1, a ping (h1), then prints
 * the rule list and the masquerade table (readable and the classic /proc layout).
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { routingPhases, applyRecipe } from './routing.js';
import { parseArgs } from 'node:util';
import { parseArgsMessage } from './args.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

const SERVER = `
const net = require('net'), dgram = require('dgram');
net.createServer((s) => {
  s.write('Welcome to the outside host. You came from ' + s.remoteAddress.replace('::ffff:', '') + ':' + s.remotePort + '\\r\\nlogin: ');
  s.on('data', (d) => { s.write('echo: ' + d.toString().trim() + '\\r\\n'); if (/quit/.test(d)) s.end('bye\\r\\n'); });
  s.on('error', () => {});
}).listen(23, () => {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(Buffer.from('A ' + m.toString() + ' 198.51.100.53 (asked by ' + r.address + ':' + r.port + ')'), r.port, r.address));
  u.bind(53, () => console.log('ready'));
});`;

const TCP_CLIENT = `
const s = require('net').connect(23, '198.51.100.10');
let out = ''; s.on('data', (d) => { out += d; if (/login: $/.test(out)) s.write('masq\\r\\n'); if (/echo: masq/.test(out) && !/quit/.test(out)) { out += '> quit\\r\\n'; s.write('quit\\r\\n'); } });
s.on('end', () => { console.log(out.trim()); process.exit(0); });
setTimeout(() => { console.log(out + ' (timeout)'); process.exit(1); }, 5000);`;

const INSIDE_SERVER = `
require('net').createServer((s) => { s.end('h1 (10.200.0.2:23) here, you are ' + s.remoteAddress.replace('::ffff:', '') + ':' + s.remotePort + '\\r\\n'); })
  .listen(23, () => console.log('ready'));`;

const OUTSIDE_CLIENT = `
const s = require('net').connect(2323, '198.51.100.100');
let out = ''; s.on('data', (d) => (out += d)); s.on('end', () => { console.log(out.trim()); process.exit(0); });
setTimeout(() => { console.log(out + ' (timeout)'); process.exit(1); }, 5000);`;

const UDP_CLIENT = `
const u = require('dgram').createSocket('udp4');
u.on('message', (m) => { console.log(m.toString()); process.exit(0); });
u.send('www.example.masq. IN A', 53, '198.51.100.10');
setTimeout(() => { console.log('(no answer)'); process.exit(1); }, 3000);`;

function sh(argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function cmdDemo(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let workers: string;
  try {
    const { values } = parseArgs({ args: argv, options: { workers: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: false, strict: true });
    workers = values.workers ?? '1';
  } catch (e) {
    if (!(e instanceof TypeError && 'code' in e)) throw e;
    err(`masq demo: ${parseArgsMessage(e as Error & { code: string }, { workers: { type: 'string' }, help: { type: 'boolean' } })}\nusage: masq demo [--workers N]`);
    return 2;
  }
  if (!/^[0-9]+$/.test(workers) || Number(workers) < 1 || Number(workers) > 64) {
    err(`masq demo: --workers: "${workers}" must be a whole number from 1 to 64\nusage: masq demo [--workers N]`);
    return 2;
  }
  if (process.getuid && process.getuid() !== 0) {
    err('masq demo: needs root (network namespaces, a TUN device): run it as root (./scripts/demo)');
    return 3;
  }
  const p = `mqdemo${randomBytes(2).toString('hex')}`;
  const ns = { h1: `${p}h1`, h2: `${p}h2`, gw: `${p}gw`, out: `${p}out` };
  const control = `/run/masq/${p}.sock`;
  const procs: ChildProcess[] = [];
  const cleanup = (): void => {
    for (const c of procs) c.kill('SIGKILL');
    for (const n of Object.values(ns)) {
      try {
        execFileSync('ip', ['netns', 'delete', n], { stdio: 'ignore' });
      } catch {
        /* not created */
      }
    }
  };
  const onSignal = (): void => {
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const inNs = (n: string, a: string[]): string => sh(['ip', 'netns', 'exec', n, ...a]);
  const t0 = Date.now();
  try {
    out(`masq demo: building namespaces ${Object.values(ns).join(', ')}`);
    for (const n of Object.values(ns)) {
      sh(['ip', 'netns', 'add', n]);
      inNs(n, ['ip', 'link', 'set', 'lo', 'up']);
      inNs(n, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    }
    inNs(ns.gw, ['ip', 'link', 'add', 'lan0', 'type', 'bridge']);
    inNs(ns.gw, ['ip', 'addr', 'add', '10.200.0.1/24', 'dev', 'lan0']);
    inNs(ns.gw, ['ip', 'link', 'set', 'lan0', 'up']);
    for (const [i, h] of [ns.h1, ns.h2].entries()) {
      sh(['ip', 'link', 'add', `v${p}${i}`.slice(0, 15), 'netns', ns.gw, 'type', 'veth', 'peer', 'eth0', 'netns', h]);
      inNs(ns.gw, ['ip', 'link', 'set', `v${p}${i}`.slice(0, 15), 'master', 'lan0', 'up']);
      inNs(h, ['ip', 'addr', 'add', `10.200.0.${i + 2}/24`, 'dev', 'eth0']);
      inNs(h, ['ip', 'link', 'set', 'eth0', 'up']);
      inNs(h, ['ip', 'route', 'add', 'default', 'via', '10.200.0.1']);
    }
    sh(['ip', 'link', 'add', 'wan0', 'netns', ns.gw, 'type', 'veth', 'peer', 'eth0', 'netns', ns.out]);
    inNs(ns.gw, ['ip', 'addr', 'add', '198.51.100.1/24', 'dev', 'wan0']);
    inNs(ns.gw, ['ip', 'link', 'set', 'wan0', 'up']);
    inNs(ns.out, ['ip', 'addr', 'add', '198.51.100.10/24', 'dev', 'eth0']);
    inNs(ns.out, ['ip', 'link', 'set', 'eth0', 'up']);
    const routing = { lan: 'lan0', wan: 'wan0', tun: 'masq0', externals: ['198.51.100.100'] };
    const phases = routingPhases(routing);
    await applyRecipe(phases.prepare, { netns: ns.gw });

    const server = spawn('ip', ['netns', 'exec', ns.out, 'node', '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      server.once('exit', () => reject(new Error('demo server exited')));
    });

    const rules = ['--masquerade', 'all from 10.200.0.0/24 to 0.0.0.0/0', '--forward', 'tcp 198.51.100.100:2323 to 10.200.0.2:23'];
    out(`masq demo: starting  masq run --tun masq0 --address 198.51.100.100 --masquerade "all from 10.200.0.0/24 to 0.0.0.0/0" --forward "tcp 198.51.100.100:2323 to 10.200.0.2:23" --workers ${workers}`);
    const gw = spawn('ip', ['netns', 'exec', ns.gw, process.execPath, MAIN, 'run', '--tun', 'masq0', '--address', '198.51.100.100', ...rules, '--workers', workers, '--control', control], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(gw);
    let gwLog = '';
    gw.stderr!.on('data', (d: Buffer) => (gwLog += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${gwLog}`)), 15000);
      gw.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('gateway up')) {
          clearTimeout(timer);
          resolve();
        }
      });
      gw.once('exit', (c) => reject(new Error(`gateway exited (${String(c)}):\n${gwLog}`)));
    });
    await applyRecipe(phases.tun, { netns: ns.gw });

    out('\n--- h1 (10.200.0.2): telnet-like TCP session to 198.51.100.10:23');
    out(inNs(ns.h1, ['node', '-e', TCP_CLIENT]).trim());
    out('\n--- h2 (10.200.0.3): DNS-like UDP query to 198.51.100.10:53');
    out(inNs(ns.h2, ['node', '-e', UDP_CLIENT]).trim());
    out('\n--- outside (198.51.100.10) → 198.51.100.100:2323, the port forward to h1:23');
    const inside = spawn('ip', ['netns', 'exec', ns.h1, process.execPath, '-e', INSIDE_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    procs.push(inside);
    await new Promise<void>((resolve, reject) => {
      inside.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      inside.once('exit', () => reject(new Error('demo inside server exited')));
    });
    out(inNs(ns.out, [process.execPath, '-e', OUTSIDE_CLIENT]).trim());
    inside.kill();
    out('\n--- h1: ping -c 2 198.51.100.10');
    out(inNs(ns.h1, ['ping', '-c', '2', '-i', '0.2', '-W', '2', '198.51.100.10']).trim().split('\n').slice(-2).join('\n'));
    const masq = (a: string[]): string => inNs(ns.gw, [process.execPath, MAIN, ...a, '--control', control]);
    out('\n--- masq rule list');
    out(masq(['rule', 'list']).trimEnd());
    out('\n--- masq table');
    out(masq(['table']).trimEnd());
    out('\n--- masq table --proc   (the classic /proc/net/ip_masquerade layout)');
    out(masq(['table', '--proc']).trimEnd());
    gw.kill('SIGTERM');
    await new Promise((r) => gw.once('exit', r));
    out(`\nmasq demo: done in ${((Date.now() - t0) / 1000).toFixed(1)} s; namespaces removed`);
    return 0;
  } catch (e) {
    err(`masq demo: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  } finally {
    cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
