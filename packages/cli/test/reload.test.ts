/**
 * reload.test.ts — reload against a stand-in gateway: rules applied only when they changed,
 * timeouts pushed, restart-only keys reported and not applied, a bad file applies nothing; and
 * the control protocol's `reload` over a real UNIX socket (answered by the run hook, or refused
 * with a clear error when the gateway has no config file).
 */
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, resolveConfig, type NatConfig, type Timeouts } from '@masq/core';
import { DEFAULT_TIMEOUTS } from '@masq/core/testing';
import type { Gateway } from '@masq/workers';
import { formatReload, reloadGateway, runSettings, type Reloadable } from '../src/run.js';
import { request, startControlServer, RefusedError } from '../src/control.js';
import { ConfigFileError } from '../src/config.js';

const BASE = `tun = "masq0"
addresses = ["198.51.100.100"]
rules = ["masquerade all from 10.200.0.0/24 to any"]
`;

class FakeGateway implements Reloadable {
  rulesText: string;
  config: NatConfig;
  setRulesCalls: string[] = [];
  setTimeoutsCalls: Timeouts[] = [];
  constructor(rulesText: string, config: NatConfig) {
    this.rulesText = rulesText;
    this.config = config;
  }
  setRules(text: string): Promise<number> {
    if (text.includes('forward') && text.includes('192.0.2.99')) return Promise.reject(new ConfigError('forward: 192.0.2.99 is not one of the external addresses'));
    this.setRulesCalls.push(text);
    this.rulesText = text;
    return Promise.resolve(2);
  }
  setTimeouts(t: Timeouts): Promise<void> {
    this.setTimeoutsCalls.push(t);
    this.config.timeouts = { ...t };
    return Promise.resolve();
  }
  setAlgCalls: string[][] = [];
  setAlg(names: readonly string[], ports: Readonly<Record<string, readonly number[]>> = {}): Promise<void> {
    this.setAlgCalls.push([...names]);
    this.config.alg = [...names];
    this.config.algPorts = Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, [...v]]));
    return Promise.resolve();
  }
}

function setup(text: string, argv: string[] = []): { gw: FakeGateway; file: { text: string }; read: () => string; settings: ReturnType<typeof runSettings> } {
  const file = { text };
  const read = (): string => file.text;
  const settings = runSettings(['--config', 'masq.toml', ...argv], read);
  const gw = new FakeGateway(settings.gateway.rulesText, resolveConfig({ externals: settings.gateway.externals }));
  return { gw, file, read, settings };
}

test('an unchanged file changes nothing', async (t) => {
  const { gw, read, settings } = setup(BASE);
  const r = await reloadGateway(gw, settings, read);
  t.deepEqual(r, { config: 'masq.toml', rules: 1, rulesChanged: false, flushed: 0, timeoutsChanged: [], algChanged: null, restartNeeded: [] });
  t.is(gw.setRulesCalls.length, 0);
  t.is(gw.setTimeoutsCalls.length, 0);
  t.is(formatReload(r), 'reloaded masq.toml: rules unchanged (1 rule(s)); timeouts unchanged');
});

test('changed rules and timeouts apply; restart-only keys are reported, not applied', async (t) => {
  const { gw, file, read, settings } = setup(BASE);
  file.text = BASE.replace('to any"]', 'to any", "accept all from 10.200.0.0/24 to 10.0.0.0/8"]') + 'workers = 17\nfiltering = "endpoint"\noffload = false\nsched = "normal"\n[timeouts]\nudp = "10m"\n';
  const r = await reloadGateway(gw, settings, read);
  t.true(r.rulesChanged);
  t.is(r.flushed, 2);
  t.is(r.rules, 2);
  t.deepEqual(gw.setRulesCalls, ['masquerade all from 10.200.0.0/24 to any\naccept all from 10.200.0.0/24 to 10.0.0.0/8']);
  t.deepEqual(r.timeoutsChanged, ['udp 5m -> 10m']);
  t.deepEqual(gw.setTimeoutsCalls, [{ ...DEFAULT_TIMEOUTS, udp: 600_000 }]);
  t.deepEqual(r.restartNeeded, ['workers', 'filtering', 'offload', 'sched']);
  t.regex(formatReload(r), /rules changed \(2 rule\(s\)\), 2 session\(s\) flushed; timeouts: udp 5m -> 10m; changed but needing a restart \(not applied\): workers, filtering, offload, sched$/);
});

test('rules written differently but meaning the same are not re-applied', async (t) => {
  const { gw, file, read, settings } = setup(BASE);
  file.text = BASE.replace('"masquerade all from 10.200.0.0/24 to any"', '"masquerade   all from 10.200.0.0/24 to 0.0.0.0/0  # same"');
  t.false((await reloadGateway(gw, settings, read)).rulesChanged);
});

test('flags still win at reload; a preset change moves the timeouts', async (t) => {
  const { gw, file, read, settings } = setup(BASE, ['--timeouts', 'udp=3m']);
  gw.config.timeouts = { ...DEFAULT_TIMEOUTS, udp: 180_000 };
  file.text = BASE + 'preset = "classic"\n[timeouts]\nudp = "20m"\n';
  const r = await reloadGateway(gw, settings, read);
  t.deepEqual(r.timeoutsChanged, ['tcp 2h4m -> 15m', 'tcp_opening 4m -> 2m', 'tcp_closing 4m -> 2m']);
  t.deepEqual(r.restartNeeded, ['ports', 'port_mode']);
});

test('a broken file or a refused rule set applies nothing', async (t) => {
  const { gw, file, read, settings } = setup(BASE);
  file.text = BASE + 'wokers = 2\n[timeouts]\nudp = "10m"\n';
  await t.throwsAsync(reloadGateway(gw, settings, read), { instanceOf: ConfigFileError, message: /unknown key "wokers"/ });
  file.text = BASE.replace('to any"]', 'to any", "forward tcp 192.0.2.99:80 to 10.200.0.2:80"]') + '[timeouts]\nudp = "10m"\n';
  await t.throwsAsync(reloadGateway(gw, settings, read), { message: /not one of the external addresses/ });
  t.is(gw.setRulesCalls.length, 0);
  t.is(gw.setTimeoutsCalls.length, 0);
});

test('control protocol: reload answered by the run hook, or refused without a config file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'masq-reload-'));
  const { gw, file, read, settings } = setup(BASE);
  const stand = gw as unknown as Gateway;
  const a = await startControlServer(stand, path.join(dir, 'a.sock'), (req) => (req.cmd === 'reload' ? reloadGateway(gw, settings, read) : undefined));
  const b = await startControlServer(stand, path.join(dir, 'b.sock'));
  try {
    file.text = BASE + '[timeouts]\nicmp = "90s"\n';
    const r = (await request(a.path, 'reload')) as { timeoutsChanged: string[] };
    t.deepEqual(r.timeoutsChanged, ['icmp 1m -> 1m30s']);
    await t.throwsAsync(request(b.path, 'reload'), { instanceOf: RefusedError, message: /started without --config/ });
    await t.throwsAsync(request(path.join(dir, 'none.sock'), 'reload'), { message: /no gateway is running/ });
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('alg: a changed helper list applies live (new sessions); an unknown name is refused with its place', async (t) => {
  const { gw, file, read, settings } = setup(BASE);
  t.deepEqual(gw.config.alg, ['ftp']);
  file.text = BASE + 'alg = []\n';
  const r = await reloadGateway(gw, settings, read);
  t.deepEqual(r.algChanged, []);
  t.deepEqual(gw.setAlgCalls, [[]]);
  t.deepEqual(r.restartNeeded, []);
  t.regex(formatReload(r), /; alg: none$/);
  file.text = BASE + 'alg = ["ftp", "gopher"]\n';
  const e = await t.throwsAsync(reloadGateway(gw, settings, read), { instanceOf: ConfigFileError });
  t.regex(e!.message, /^masq\.toml:4:16: alg\[1\]: unknown helper "gopher"; known: ftp/);
  t.deepEqual(gw.setAlgCalls, [[]], 'nothing applied from a file with an error');
});

test('alg_ports: FTP on another port applies live; a bad port list is located', async (t) => {
  const { gw, file, read, settings } = setup(BASE);
  file.text = BASE + '[alg_ports]\nftp = [21, 2121]\n';
  const r = await reloadGateway(gw, settings, read);
  t.deepEqual(r.algChanged, ['ftp']);
  t.deepEqual(gw.config.algPorts, { ftp: [21, 2121] });
  file.text = BASE + '[alg_ports]\nftp = [0]\n';
  await t.throwsAsync(reloadGateway(gw, settings, read), { instanceOf: ConfigFileError, message: /^masq\.toml:5:1: alg_ports\.ftp: expected a non-empty array of ports 1-65535/ });
  file.text = BASE + '[alg_ports]\ngopher = [70]\n';
  await t.throwsAsync(reloadGateway(gw, settings, read), { message: /alg_ports: unknown helper "gopher"; known: ftp/ });
});
