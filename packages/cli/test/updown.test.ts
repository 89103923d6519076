/**
 * updown.test.ts — `masq up` / `masq down` in dry-run: the printed commands, values from the
 * config file, and usage errors (with the column of a bad address) before anything runs.
 */
import test from 'ava';
import { cmdUpDown, cidrProblem, missingTunAdvice, upDownPlan } from '../src/updown.js';

async function run(cmd: 'up' | 'down', argv: string[], read?: (p: string) => string): Promise<{ code: number; out: string[]; err: string }> {
  const out: string[] = [];
  let err = '';
  const code = await cmdUpDown(cmd, argv, (l) => out.push(l), (l) => (err += l), read);
  return { code, out, err };
}

test('masq up --dry-run prints the whole recipe, in order, and runs nothing', async (t) => {
  const r = await run('up', ['--lan', 'br-lan', '--tun', 'masq0', '--address', '198.51.100.100', '--wan', 'eth1', '--dry-run']);
  t.is(r.code, 0);
  t.deepEqual(r.out, [
    '+ sysctl -q -w net.ipv4.conf.all.rp_filter=0',
    '+ sysctl -q -w net.ipv4.conf.default.rp_filter=0',
    '+ sysctl -q -w net.ipv4.conf.br-lan.rp_filter=0',
    '+ sysctl -q -w net.ipv4.conf.eth1.rp_filter=0',
    '+ sysctl -q -w net.ipv4.neigh.eth1.proxy_delay=0',
    '+ sysctl -q -w net.ipv4.conf.eth1.proxy_arp=1',
    '+ ip route add unreachable default table 100 metric 4294967295',
    '+ ip rule add iif br-lan lookup 100 pref 100',
    '+ sysctl -q -w net.ipv6.conf.masq0.disable_ipv6=1',
    '+ sysctl -q -w net.ipv4.conf.masq0.rp_filter=0',
    '+ sysctl -q -w net.ipv4.conf.masq0.accept_local=1',
    '+ ip link set dev masq0 up txqueuelen 10000',
    '+ ip route add default dev masq0 table 100',
    '+ ip route add 198.51.100.100/32 dev masq0',
    '+ sysctl -q -w net.ipv4.ip_forward=1',
  ]);
  t.is(r.err, '');
});

test('masq down --dry-run prints the undo; --table and --netns are honoured', async (t) => {
  const r = await run('down', ['--lan', 'lan0', '--tun', 'masq0', '--address', '192.0.2.1', '--address', '192.0.2.2', '--table', '7', '-n', '--netns', 'gw']);
  t.is(r.code, 0);
  t.deepEqual(r.out, [
    '+ ip netns exec gw ip route del 192.0.2.2/32 dev masq0',
    '+ ip netns exec gw ip route del 192.0.2.1/32 dev masq0',
    '+ ip netns exec gw ip route del default dev masq0 table 7',
    '+ ip netns exec gw ip rule del iif lan0 lookup 7 pref 100',
    '+ ip netns exec gw ip route del unreachable default table 7 metric 4294967295',
  ]);
});

test('tun and addresses may come from the masq run config file; flags win', (t) => {
  const read = (): string => 'tun = "t9"\naddresses = ["192.0.2.5", "192.0.2.6"]\n';
  const p = upDownPlan('up', ['--lan', 'lan0', '--config', 'm.toml'], read);
  t.is(p.routing.tun, 't9');
  t.deepEqual(p.routing.externals, ['192.0.2.5', '192.0.2.6']);
  t.deepEqual(upDownPlan('up', ['--lan', 'lan0', '--config', 'm.toml', '--address', '192.0.2.9'], read).routing.externals, ['192.0.2.9']);
});

test('usage errors exit 2 before anything runs, and say what to do', async (t) => {
  const noLan = await run('up', ['--tun', 'masq0', '--address', '192.0.2.1']);
  t.is(noLan.code, 2);
  t.regex(noLan.err, /--lan IF is required/);
  t.regex((await run('up', ['--lan', 'l', '--address', '192.0.2.1'])).err, /--tun NAME is required \(or take it from the masq run file with --config FILE\)/);
  const bad = await run('up', ['--lan', 'l', '--tun', 't', '--address', '198.51.100.0/33']);
  t.is(bad.code, 2);
  t.regex(bad.err, /--address 198\.51\.100\.0\/33: not a block a\.b\.c\.d\/N: column 14: the prefix "33" is not 0-32/);
  t.regex((await run('up', ['--lan', 'l', '--tun', 't', '--address', '198.51.100.1/24'])).err, /host bits/);
  t.regex((await run('up', ['--lan', 'l', '--tun', 't', '--address', '192.0.2.1', '--table', '254'])).err, /reserved/);
  t.is((await run('up', ['--lan', 'l', '--tun', 't', '--address', '192.0.2.1', '--bogus'])).code, 2);
  t.regex(cidrProblem('10.0.300.0/24') ?? '', /column 6: "300" is not 0-255/);
  t.is(cidrProblem('10.0.0.0/24'), null);
});

test('masq up names the missing TUN device(s) and how to make them: the TUN, the outside TUN, both', (t) => {
  const r = { tun: 'masq0', outsideTun: 'masq1' };
  t.is(
    missingTunAdvice({ tun: 'masq0' }, ['masq0']),
    [
      'masq up: the TUN device masq0 does not exist yet, so the routes into it cannot be added.',
      '  The LAN side is prepared (inside traffic is refused until masq runs: fail closed).',
      '  Start the gateway (masq run --tun masq0 ...; it creates the device), then run masq up again;',
      '  or create a persistent device first: ip tuntap add dev masq0 mode tun',
    ].join('\n'),
  );
  t.is(
    missingTunAdvice(r, ['masq0', 'masq1']),
    [
      'masq up: the TUN devices masq0 and masq1 (--outside-tun) do not exist yet, so the routes into them cannot be added.',
      '  The LAN side is prepared (inside traffic is refused until masq runs: fail closed).',
      '  Start the gateway (masq run --tun masq0 --outside-tun masq1 ...; it creates both devices), then run masq up again;',
      '  or create persistent devices first: ip tuntap add dev masq0 mode tun; ip tuntap add dev masq1 mode tun',
    ].join('\n'),
  );
  t.regex(missingTunAdvice(r, ['masq1']), /^masq up: the outside TUN device masq1 \(--outside-tun\) does not exist yet, so the external addresses cannot be routed into it\.\n/);
});
