/**
 * routing.test.ts — the routing recipe as pure output: order, phases, undo, validation.
 * `applyRecipe` is exercised only in dry-run here; the end-to-end harness runs it for real.
 */

import test from 'ava';
import { applyRecipe, formatCommand, routingPhases, routingRecipe, routingUndo, type Command } from '../src/routing.js';

const base = { lan: 'br-lan', tun: 'masq0', wan: 'eth1', externals: ['198.51.100.100'] };

const text = (cmds: readonly Command[]): string[] => cmds.map((c) => c.join(' '));

test('the recipe, in order', (t) => {
  t.deepEqual(text(routingRecipe(base)), [
    'sysctl -q -w net.ipv4.conf.all.rp_filter=0',
    'sysctl -q -w net.ipv4.conf.default.rp_filter=0',
    'sysctl -q -w net.ipv4.conf.br-lan.rp_filter=0',
    'sysctl -q -w net.ipv4.conf.eth1.rp_filter=0',
    'sysctl -q -w net.ipv4.neigh.eth1.proxy_delay=0',
    'sysctl -q -w net.ipv4.conf.eth1.proxy_arp=1',
    'ip route add unreachable default table 100 metric 4294967295',
    'ip rule add iif br-lan lookup 100 pref 100',
    'sysctl -q -w net.ipv6.conf.masq0.disable_ipv6=1',
    'sysctl -q -w net.ipv4.conf.masq0.rp_filter=0',
    'sysctl -q -w net.ipv4.conf.masq0.accept_local=1',
    'ip link set dev masq0 up txqueuelen 10000',
    'ip route add default dev masq0 table 100',
    'ip route add 198.51.100.100/32 dev masq0',
    'sysctl -q -w net.ipv4.ip_forward=1',
  ]);
});

test('phases: nothing in prepare names the TUN; forwarding comes last', (t) => {
  const p = routingPhases({ ...base, externals: ['198.51.100.100', '198.51.100.101'] });
  t.false(p.prepare.some((c) => c.some((a) => a.includes('masq0'))));
  t.true(p.tun.every((c) => c.some((a) => a.includes('masq0')) || c.includes('net.ipv4.ip_forward=1')));
  t.deepEqual(p.tun[p.tun.length - 1], ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  t.deepEqual(routingRecipe({ ...base, externals: ['198.51.100.100', '198.51.100.101'] }), [...p.prepare, ...p.tun]);
});

test('options: table, rule priority, txqueuelen, a block of externals, no wan', (t) => {
  const cmds = text(routingRecipe({ lan: 'lan0', tun: 'tun7', externals: ['192.0.2.96/29'], table: 7, rulePriority: 900, txqueuelen: 2000 }));
  t.true(cmds.includes('ip rule add iif lan0 lookup 7 pref 900'));
  t.true(cmds.includes('ip route add default dev tun7 table 7'));
  t.true(cmds.includes('ip link set dev tun7 up txqueuelen 2000'));
  t.true(cmds.includes('ip route add 192.0.2.96/29 dev tun7'));
  t.false(cmds.some((c) => c.includes('proxy')));
});

test('interface names with a dot are written with / in sysctl keys', (t) => {
  const cmds = text(routingRecipe({ ...base, wan: 'eth0.100' }));
  t.true(cmds.includes('sysctl -q -w net.ipv4.conf.eth0/100.proxy_arp=1'));
  t.true(cmds.includes('sysctl -q -w net.ipv4.neigh.eth0/100.proxy_delay=0'));
});

test('undo reverses the routes and the rule and tolerates missing pieces', (t) => {
  t.deepEqual(text(routingUndo({ ...base, externals: ['198.51.100.100', '198.51.100.101'] })), [
    'sysctl -e -q -w net.ipv4.conf.eth1.proxy_arp=0',
    'ip route del 198.51.100.101/32 dev masq0',
    'ip route del 198.51.100.100/32 dev masq0',
    'ip route del default dev masq0 table 100',
    'ip rule del iif br-lan lookup 100 pref 100',
    'ip route del unreachable default table 100 metric 4294967295',
  ]);
});

test('validation: names', (t) => {
  t.throws(() => routingRecipe({ ...base, lan: '' }), { message: /lan interface name is empty/ });
  t.throws(() => routingRecipe({ ...base, tun: 'a-very-long-name0' }), { message: /tun interface name .* longer than 15/ });
  t.throws(() => routingRecipe({ ...base, wan: 'eth 1' }), { message: /wan interface name .*whitespace/ });
  t.throws(() => routingRecipe({ ...base, wan: 'a/b' }), { message: /wan interface name/ });
  t.throws(() => routingRecipe({ ...base, lan: '-x' }), { message: /starts with '-'/ });
  t.throws(() => routingRecipe({ ...base, lan: '..' }), { message: /not allowed/ });
  t.throws(() => routingRecipe({ ...base, wan: 'br-lan' }), { message: /must be different/ });
});

test('validation: addresses and numbers', (t) => {
  t.throws(() => routingRecipe({ ...base, externals: [] }), { message: /at least one external/ });
  t.throws(() => routingRecipe({ ...base, externals: ['198.51.100.256'] }), { message: /not a dotted-quad/ });
  t.throws(() => routingRecipe({ ...base, externals: ['198.51.100.010'] }), { message: /not a dotted-quad/ });
  t.throws(() => routingRecipe({ ...base, externals: ['198.51.100.1/24'] }), { message: /host bits/ });
  t.throws(() => routingRecipe({ ...base, externals: ['10.0.0.0/8'] }), { message: /too large/ });
  t.throws(() => routingRecipe({ ...base, externals: ['224.0.0.1'] }), { message: /not a unicast/ });
  t.throws(() => routingRecipe({ ...base, externals: ['127.0.0.1'] }), { message: /not a unicast/ });
  t.throws(() => routingRecipe({ ...base, externals: ['198.51.100.100', '198.51.100.100/32'] }), { message: /listed twice/ });
  t.throws(() => routingRecipe({ ...base, table: 254 }), { message: /reserved/ });
  t.throws(() => routingRecipe({ ...base, table: 0 }), { message: /table 0 is out of range/ });
  t.throws(() => routingRecipe({ ...base, txqueuelen: 1.5 }), { message: /txqueuelen/ });
  t.throws(() => routingUndo({ ...base, tun: 'x:y' }), { message: /tun interface name/ });
});

test('formatCommand quotes what a shell would split', (t) => {
  t.is(formatCommand(['ip', 'route', 'add', '198.51.100.100/32', 'dev', 'masq0']), 'ip route add 198.51.100.100/32 dev masq0');
  t.is(formatCommand(['echo', "it's here"]), `echo 'it'\\''s here'`);
});

test('applyRecipe dry run prints each command (in the namespace) and runs nothing', async (t) => {
  const lines: string[] = [];
  const out = await applyRecipe(routingUndo(base), { dryRun: true, log: (l) => lines.push(l), netns: 'nsx' });
  t.is(out.length, lines.length);
  t.true(out.every((o) => o.status === 'dry-run'));
  t.is(lines[1], '+ ip netns exec nsx ip route del 198.51.100.100/32 dev masq0');
});

test('an outside TUN: set up like the TUN, the external addresses routed into it, the inside default still into the TUN', (t) => {
  const o = { ...base, outsideTun: 'masqo0', externals: ['198.51.100.100', '198.51.100.101'] };
  const p = routingPhases(o);
  t.deepEqual(text(p.tun), [
    'sysctl -q -w net.ipv6.conf.masq0.disable_ipv6=1',
    'sysctl -q -w net.ipv4.conf.masq0.rp_filter=0',
    'sysctl -q -w net.ipv4.conf.masq0.accept_local=1',
    'ip link set dev masq0 up txqueuelen 10000',
    'sysctl -q -w net.ipv6.conf.masqo0.disable_ipv6=1',
    'sysctl -q -w net.ipv4.conf.masqo0.rp_filter=0',
    'sysctl -q -w net.ipv4.conf.masqo0.accept_local=1',
    'ip link set dev masqo0 up txqueuelen 10000',
    'ip route add default dev masq0 table 100',
    'ip route add 198.51.100.100/32 dev masqo0',
    'ip route add 198.51.100.101/32 dev masqo0',
    'sysctl -q -w net.ipv4.ip_forward=1',
  ]);
  t.false(p.prepare.some((c) => c.some((a) => a.includes('masqo0'))), 'prepare needs no TUN');
  t.deepEqual(text(routingUndo(o)).slice(1, 3), ['ip route del 198.51.100.101/32 dev masqo0', 'ip route del 198.51.100.100/32 dev masqo0']);
  t.throws(() => routingRecipe({ ...base, outsideTun: 'masq0' }), { message: /must be different/ });
  t.throws(() => routingRecipe({ ...base, outsideTun: 'eth1' }), { message: /must be different/ });
  t.throws(() => routingRecipe({ ...base, outsideTun: 'o:1' }), { message: /outside tun interface name/ });
});
