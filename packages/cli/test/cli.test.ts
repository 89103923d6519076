/**
 * cli.test.ts — the `masq` command as a process: help texts of the new subcommands, exit
 * codes of usage errors and of a missing gateway, `masq up --dry-run` end to end.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../src/main.js', import.meta.url));
const NO_GATEWAY = '/tmp/masq-test-no-gateway.sock';

function masq(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('every new subcommand has help with examples', (t) => {
  for (const cmd of ['up', 'down', 'reload', 'events', 'table', 'run']) {
    const r = masq(cmd, '--help');
    t.is(r.code, 0, cmd);
    t.regex(r.stdout, new RegExp(`^masq ${cmd} — `), cmd);
    t.regex(r.stdout, /EXAMPLES/, cmd);
  }
  const top = masq('help');
  for (const cmd of ['up', 'down', 'reload', 'events']) t.regex(top.stdout, new RegExp(`\\n  ${cmd} +\\S`), cmd);
});

test('no gateway running: exit 3 with what to do', (t) => {
  for (const args of [['reload'], ['events'], ['table', '--watch']]) {
    const r = masq(...args, '--control', NO_GATEWAY);
    t.is(r.code, 3, args.join(' '));
    t.regex(r.stderr, /no gateway is running \(nothing answers on \/tmp\/masq-test-no-gateway\.sock\); start one with masq run, or pass --control PATH/);
  }
});

test('usage errors: exit 2', (t) => {
  t.is(masq('table', '--interval', '2s', '--control', NO_GATEWAY).code, 2);
  t.regex(masq('table', '--watch', '--interval', '10ms', '--control', NO_GATEWAY).stderr, /at least 100ms/);
  const run = masq('run', '--config', '/nonexistent/masq.toml');
  t.is(run.code, 2);
  t.regex(run.stderr, /^masq run: \/nonexistent\/masq\.toml: cannot read the config file: no such file/);
  t.is(masq('up', '--tun', 'masq0').code, 2);
});

test('masq up --dry-run as a process prints the recipe on stdout', (t) => {
  const r = masq('up', '--lan', 'lan0', '--tun', 'masq0', '--address', '192.0.2.1', '--dry-run');
  t.is(r.code, 0);
  t.is(r.stdout.split('\n').filter(Boolean).length, 12);
  t.regex(r.stdout, /^\+ sysctl -q -w net\.ipv4\.conf\.all\.rp_filter=0\n/);
  t.regex(r.stdout, /\+ ip route add 192\.0\.2\.1\/32 dev masq0\n\+ sysctl -q -w net\.ipv4\.ip_forward=1\n$/);
});
