/**
 * config.test.ts — the --config TOML file: every key converted, errors located (file:line:column
 * with the known keys / expected type / rule column), flags over file, reload re-reading the
 * file under the same flags, and the sample in the repository root parsing cleanly.
 */
import test from 'ava';
import fs from 'node:fs';
import { ConfigFileError, mergeInputs, parseConfigText, suggest, TOP_KEYS } from '../src/config.js';
import { addressProblem, checkedUp, logStamp, reloadSettings, restartKeys, runSettings, timeoutChanges, UsageError } from '../src/run.js';

const SAMPLE = new URL('../../../../masq.toml.sample', import.meta.url);

const minimal = `tun = "masq0"
addresses = ["198.51.100.100"]
rules = ["masquerade all from 10.200.0.0/24 to any"]
`;

const fileErr = (text: string): ConfigFileError => {
  try {
    parseConfigText(text, 'masq.toml');
  } catch (e) {
    if (e instanceof ConfigFileError) return e;
    throw e;
  }
  throw new Error('expected a ConfigFileError');
};

test('the sample in the repository root parses, with every key', (t) => {
  const text = fs.readFileSync(SAMPLE, 'utf8');
  const c = parseConfigText(text, 'masq.toml.sample');
  t.is(c.tun, 'masq0');
  t.deepEqual(c.addresses, ['198.51.100.100']);
  t.is(c.rules?.length, 3);
  t.is(c.workers, 2);
  t.deepEqual(c.ports, { lo: 1024, hi: 65535 });
  t.is(c.portMode, 'random');
  t.is(c.filtering, 'address');
  t.is(c.preset, 'default');
  t.is(c.maxSessions, 1_000_000);
  t.is(c.hostLimit, 65536);
  t.is(c.hostPortLimit, 16384);
  t.true(c.icmpOnExhaustion);
  t.true(c.hopCompensation);
  t.true(c.offload);
  t.deepEqual(c.sched, { io: 'batch', workers: 'batch' });
  t.is(c.control, '/run/masq/control.sock');
  t.deepEqual(c.timeouts, { tcpEstablished: 124 * 60_000, tcpOpening: 240_000, tcpClosing: 240_000, udp: 300_000, icmp: 60_000, fragment: 2_000, unanswered: 30_000 });
  const s = runSettings(['--config', 'masq.toml.sample'], () => text);
  t.is(s.gateway.rulesText.split('\n').length, 3);
  t.is(s.resolved.timeouts.udp, 300_000);
});

test('all keys convert; timeouts take durations or whole seconds; rules may be one multi-line string', (t) => {
  const c = parseConfigText(`tun = "t0"
addresses = ["192.0.2.1", "192.0.2.2"]
rules = """
# comment lines and blank lines are skipped

masquerade tcp from 10.0.0.0/8 to any
"""
workers = 4
ports = "60000-65535"
port_mode = "sequential"
filtering = "endpoint"
preset = "classic"
max_sessions = 5000
host_limit = 100
icmp_on_exhaustion = true
hop_compensation = false
mtu = 1400
offload = true
sched = "io=normal"
metrics = "127.0.0.1:9464"
control = "/tmp/m.sock"
[timeouts]
udp = 600
tcp-transitory = "1m30s"
`);
  t.deepEqual(c, {
    tun: 't0',
    addresses: ['192.0.2.1', '192.0.2.2'],
    rules: ['masquerade tcp from 10.0.0.0/8 to any'],
    workers: 4,
    ports: { lo: 60000, hi: 65535 },
    portMode: 'sequential',
    filtering: 'endpoint',
    preset: 'classic',
    maxSessions: 5000,
    hostLimit: 100,
    icmpOnExhaustion: true,
    hopCompensation: false,
    mtu: 1400,
    offload: true,
    sched: { io: 'normal', workers: 'batch' },
    metrics: '127.0.0.1:9464',
    control: '/tmp/m.sock',
    timeouts: { udp: 600_000, tcpOpening: 90_000, tcpClosing: 90_000 },
  });
});

test('unknown key: located, with a suggestion and the known keys', (t) => {
  const e = fileErr(`tun = "masq0"\nwokers = 2\n`);
  t.is(e.line, 2);
  t.is(e.column, 1);
  t.regex(e.message, /^masq\.toml:2:1: unknown key "wokers" \(did you mean workers\?\); known keys: tun, addresses, rules,/);
  t.regex(e.message, /\n {2}wokers = 2\n {2}\^$/);
  t.regex(fileErr(`address = "1.2.3.4"\n`).message, /did you mean addresses\?/);
  t.regex(fileErr(`port-mode = "random"\n`).message, /did you mean port_mode\?/);
  t.regex(fileErr(`[timeout]\nudp = "5m"\n`).message, /^masq\.toml:1:1: unknown key "timeout" \(did you mean timeouts\?\)/);
  t.is(suggest('zzzzzz', TOP_KEYS), undefined);
});

test('unknown timer in [timeouts], and a bad duration', (t) => {
  const e = fileErr(`[timeouts]\nudp = "5m"\ntcp_fin = "2m"\n`);
  t.is(e.line, 3);
  t.regex(e.message, /timeouts: unknown timer "tcp_fin".*known: tcp, tcp_opening, tcp_closing, tcp_transitory, udp, icmp, fragment/);
  t.regex(fileErr(`[timeouts]\nudp = "5 minutes"\n`).message, /^masq\.toml:2:1: timeouts\.udp: "5 minutes" is not a duration/);
  t.regex(fileErr(`[timeouts]\nudp = true\n`).message, /timeouts\.udp: expected a duration .* found boolean true/);
  t.regex(fileErr(`timeouts = "udp=5m"\n`).message, /timeouts: expected a table/);
  // Below RFC 4787's two minutes: located in the file, not only named.
  t.regex(fileErr(`[timeouts]\nudp = "30s"\n`).message, /^masq\.toml:2:1: timeouts\.udp: "30s" is below the 2 minutes RFC 4787 REQ-5 requires\n {2}udp = "30s"\n {2}\^$/);
});

test('MASQ_CONTROL: masq run listens where the clients look (flag, then MASQ_CONTROL, then the file); --up needs --lan', (t) => {
  const read = (): string => minimal + 'control = "/run/masq/file.sock"\n';
  t.is(runSettings(['--config', 'x.toml'], read, {}).control, '/run/masq/file.sock');
  t.is(runSettings(['--config', 'x.toml'], read, { MASQ_CONTROL: '/run/masq/env.sock' }).control, '/run/masq/env.sock');
  t.is(runSettings(['--config', 'x.toml', '--control', '/run/masq/flag.sock'], read, { MASQ_CONTROL: '/run/masq/env.sock' }).control, '/run/masq/flag.sock');
  t.deepEqual(runSettings(['--config', 'x.toml', '--up', '--lan', 'br-lan', '--wan', 'eth1'], read, {}).up, { lan: 'br-lan', tun: '', wan: 'eth1', externals: ['198.51.100.100'], table: undefined, rulePriority: undefined });
  t.is(runSettings(['--config', 'x.toml'], read, {}).up, null);
  t.throws(() => runSettings(['--config', 'x.toml', '--up'], read, {}), { instanceOf: UsageError, message: /--up needs --lan IF/ });
  t.throws(() => runSettings(['--config', 'x.toml', '--lan', 'br-lan'], read, {}), { instanceOf: UsageError, message: /--lan goes with --up/ });
  t.throws(() => runSettings(['--config', 'x.toml', '--up', '--lan', 'br-lan', '--table', 'main'], read, {}), { instanceOf: UsageError, message: /--table: "main" is not a whole number/ });
});

test('log lines: local date and time, none when stderr is the journal (JOURNAL_STREAM names fd 2)', (t) => {
  t.is(logStamp({}, new Date(2026, 11, 6, 9, 5, 7, 42)), '2026-12-06 09:05:07.042 ');
  const st = fs.fstatSync(2);
  t.is(logStamp({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }), '');
  t.regex(logStamp({ JOURNAL_STREAM: '1:1' }), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} $/, 'another stream: stamped');
});

test('wrong types name the expected and the found type', (t) => {
  t.regex(fileErr(`workers = "2"\n`).message, /^masq\.toml:1:1: workers: expected an integer from 1 to 64, found string "2"/);
  t.regex(fileErr(`workers = 2.5\n`).message, /found float 2\.5/);
  t.regex(fileErr(`workers = 65\n`).message, /workers: 65 is out of range/);
  t.regex(fileErr(`icmp_on_exhaustion = "yes"\n`).message, /expected true or false, found string "yes"/);
  t.regex(fileErr(`addresses = "192.0.2.1"\n`).message, /addresses: expected an array of strings \(write addresses = \["192\.0\.2\.1"\]\)/);
  t.regex(fileErr(`filtering = "full-cone"\n`).message, /filtering: "full-cone" is not one of endpoint, address, address-port/);
  t.regex(fileErr(`ports = "70000-1"\n`).message, /ports: /);
  t.regex(fileErr(`metrics = "9464"\n`).message, /metrics: "9464" is not HOST:PORT/);
  t.regex(fileErr(`tun = "a very long name0"\n`).message, /tun: .* is not an interface name/);
  t.regex(fileErr(`sched = "fifo"\n`).message, /^masq\.toml:1:1: sched: "fifo" is not a policy or THREADS=POLICY: use "normal", "batch", or/);
  t.regex(fileErr(`sched = 3\n`).message, /sched: expected a string/);
});

test('a bad address points at the string in the file', (t) => {
  const e = fileErr(`addresses = [\n  "192.0.2.1",\n  "192.0.2.300",\n]\n`);
  t.is(e.line, 3);
  t.is(e.column, 4);
  t.regex(e.message, /addresses\[1\]: "192\.0\.2\.300" is not an IPv4 address/);
});

test('a bad rule carries the rule parser column, mapped into the file', (t) => {
  const text = `tun = "masq0"\nrules = [\n  "masquerade all from 10.200.0.0/24 to any",\n  "masquerade all from 10.200.0.0/33 to any",\n]\n`;
  const e = fileErr(text);
  t.is(e.line, 4);
  // The string's content starts at column 4; "10.200.0.0/33" is at column 21 of the rule.
  t.is(e.column, 4 + 20);
  t.regex(e.message, /^masq\.toml:4:24: rules\[1\]: expected /);
  t.regex(e.message, /\n {2} {2}"masquerade all from 10\.200\.0\.0\/33 to any",\n {2} {23}\^~{12}$/);
  const m = fileErr(`rules = """\nmasquerade all from any to any\nmasquerad all from any to any\n"""\n`);
  t.is(m.line, 3);
  t.is(m.column, 1);
  t.regex(m.message, /rules \(line 2\): expected/);
  t.regex(fileErr(`rules = [1]\n`).message, /rules\[0\]: expected a rule string/);
});

test('TOML syntax errors keep their line and column', (t) => {
  const e = fileErr(`tun = "masq0"\nworkers = = 2\n`);
  t.is(e.line, 2);
  t.regex(e.message, /^masq\.toml:2:\d+: not valid TOML: /);
});

test('flags win over the file; rule flags replace the file rules; timeouts merge per timer', (t) => {
  const file = parseConfigText(minimal + `workers = 2\n[timeouts]\nudp = "10m"\nicmp = "70s"\n`);
  const m = mergeInputs(file, { workers: 3, timeouts: { icmp: 90_000 }, rules: ['masquerade udp from 10.0.0.0/8 to any'] });
  t.is(m.workers, 3);
  t.is(m.tun, 'masq0');
  t.deepEqual(m.rules, ['masquerade udp from 10.0.0.0/8 to any']);
  t.deepEqual(m.timeouts, { udp: 600_000, icmp: 90_000 });
  t.deepEqual(mergeInputs(null, { workers: 2 }), { workers: 2 });

  const read = (): string => minimal + 'workers = 2\n';
  const s = runSettings(['--config', 'x.toml', '--workers', '4', '--address', '192.0.2.7'], read);
  t.is(s.gateway.workers, 4);
  t.deepEqual(s.gateway.externals, ['192.0.2.7']);
  t.is(s.gateway.rulesText, 'masquerade all from 10.200.0.0/24 to any');
  t.is(s.configPath, 'x.toml');
  t.is(s.gateway.offload, undefined);
  t.true(runSettings(['--config', 'x.toml', '--offload'], read).gateway.offload);
  // Offloads are on unless a flag or the file says otherwise; the flag beats the file.
  t.is(runSettings(['--config', 'x.toml', '--no-offload'], read).gateway.offload, false);
  t.is(runSettings(['--config', 'x.toml'], () => minimal + 'offload = false\n').gateway.offload, false);
  t.true(runSettings(['--config', 'x.toml', '--offload'], () => minimal + 'offload = false\n').gateway.offload);
  t.throws(() => runSettings(['--config', 'x.toml', '--offload', '--no-offload'], read), { message: /--offload and --no-offload contradict each other/ });
  // The packet threads run under SCHED_BATCH unless told otherwise; a flag beats the file.
  t.deepEqual(s.gateway.sched, { io: 'batch', workers: 'batch' });
  t.deepEqual(runSettings(['--config', 'x.toml', '--sched', 'normal'], () => minimal + 'sched = "batch"\n').gateway.sched, { io: 'normal', workers: 'normal' });
  t.deepEqual(runSettings(['--config', 'x.toml'], () => minimal + 'sched = "workers=normal"\n').gateway.sched, { io: 'batch', workers: 'normal' });
  t.throws(() => runSettings(['--config', 'x.toml', '--sched', 'io=rt'], read), { instanceOf: UsageError, message: /^--sched: "rt" is not a policy/ });
  const s2 = runSettings(['-c', 'x.toml', '--masquerade', 'tcp from 10.1.0.0/16 to any'], read);
  t.is(s2.gateway.rulesText, 'masquerade tcp from 10.1.0.0/16 to any');
});

test('required values say where to put them; a missing file is a located error', (t) => {
  t.throws(() => runSettings(['--config', 'x.toml'], () => 'addresses = ["192.0.2.1"]\n'), { instanceOf: UsageError, message: /pass --tun NAME or set tun = "masq0" in x\.toml/ });
  t.throws(() => runSettings(['--config', 'x.toml'], () => 'tun = "t"\naddresses = ["192.0.2.1"]\nrules = ["accept all from any to any"]\n'), { message: /no masquerade rule/ });
  t.throws(
    () =>
      runSettings(['--config', '/nonexistent/masq.toml'], () => {
        throw Object.assign(new Error('x'), { code: 'ENOENT' });
      }),
    { instanceOf: ConfigFileError, message: /^\/nonexistent\/masq\.toml: cannot read the config file: no such file/ },
  );
  t.throws(() => runSettings(['--config', 'x.toml'], () => minimal + '[timeouts]\nudp = "1m"\n'), { message: /below the 2 minutes/ });
});

test('flag rule errors point into the flag value; bad addresses point at the octet', (t) => {
  const e = t.throws(() => runSettings(['--tun', 't', '--address', '192.0.2.1', '--masquerade', 'all from 10.0.0.0/33 to any']));
  t.regex(e.message, /^--masquerade "all from 10\.0\.0\.0\/33 to any": column 10: expected /);
  t.regex(e.message, /\n {2}all from 10\.0\.0\.0\/33 to any\n {2} {9}\^~{10}$/);
  t.regex(addressProblem('198.51.100.256'), /column 12: "256" is not 0-255\n {2}198\.51\.100\.256\n {2} {11}\^/);
  t.regex(addressProblem('1.2.3'), /four parts/);
  t.throws(() => runSettings(['--tun', 't', '--address', '10.0.0.999', '--masquerade', 'all from any to any']), { message: /^--address 10\.0\.0\.999: not an IPv4 address: column 8/ });
});

test('reload re-reads the file under the same flags; without --config it refuses', (t) => {
  let text = minimal;
  const read = (): string => text;
  const s = runSettings(['--config', 'x.toml', '--workers', '2'], read);
  text = minimal.replace('to any"]', 'to any", "accept all from 10.200.0.0/24 to 10.0.0.0/8"]') + '[timeouts]\nudp = "7m"\n';
  const r = reloadSettings(s, read);
  t.is(r.gateway.rulesText.split('\n').length, 2);
  t.is(r.gateway.workers, 2);
  t.is(r.resolved.timeouts.udp, 420_000);
  const flagsOnly = runSettings(['--tun', 't', '--address', '192.0.2.1', '--masquerade', 'all from any to any']);
  t.throws(() => reloadSettings(flagsOnly), { message: /started without --config/ });
});

test('--alg and alg = [...]: default ftp, none, the flag beats the file, unknown names refused', (t) => {
  const read = (): string => minimal;
  t.deepEqual(runSettings(['--config', 'x.toml'], read).resolved.alg, ['ftp']);
  t.deepEqual(runSettings(['--config', 'x.toml', '--alg', 'none'], read).resolved.alg, []);
  t.deepEqual(runSettings(['--config', 'x.toml', '--alg', 'ftp'], () => minimal + 'alg = []\n').resolved.alg, ['ftp']);
  t.deepEqual(runSettings(['--config', 'x.toml'], () => minimal + 'alg = []\n').resolved.alg, []);
  t.throws(() => runSettings(['--config', 'x.toml', '--alg', 'ftp,gopher'], read), { instanceOf: UsageError, message: /^--alg ftp,gopher: unknown helper "gopher"; known: ftp/ });
  t.throws(() => runSettings(['--config', 'x.toml', '--alg', ''], read), { instanceOf: UsageError, message: /^--alg : empty helper name/ });
  t.throws(() => parseConfigText(minimal + 'alg = "ftp"\n', 'x.toml'), { instanceOf: ConfigFileError, message: /^x\.toml:4:1: alg: expected an array of helper names such as \["ftp"\]/ });
  t.true(TOP_KEYS.includes('alg'));
});

test('timer minimums are located errors in the file and clear errors as flags; transitory splits into opening and closing', (t) => {
  const e = fileErr(`[timeouts]\nudp = "5m"\ntcp = "1h"\n`);
  t.is(e.line, 3);
  t.is(e.message, 'masq.toml:3:1: timeouts.tcp: "1h" is below the 2 hours 4 minutes RFC 5382 REQ-5 requires for established TCP connections\n  tcp = "1h"\n  ^');
  t.is(fileErr(`[timeouts]\nicmp = 59\n`).message, 'masq.toml:2:1: timeouts.icmp: "59" is below the 60 seconds RFC 5508 REQ-2 requires for ICMP query sessions\n  icmp = 59\n  ^');
  t.deepEqual(parseConfigText(`[timeouts]\ntcp = "2h4m"\nicmp = "60s"\ntcp_opening = "30s"\ntcp_closing = "10s"\n`).timeouts, { tcpEstablished: 124 * 60_000, icmp: 60_000, tcpOpening: 30_000, tcpClosing: 10_000 });
  const flag = (v: string) => t.throws(() => runSettings(['--tun', 't', '--address', '192.0.2.1', '--masquerade', 'all from any to any', '--timeouts', v]))!.message;
  t.is(flag('tcp=2h'), 'timeouts: tcp=2h is below the 2 hours 4 minutes RFC 5382 REQ-5 requires for established TCP connections');
  t.is(flag('icmp=30s'), 'timeouts: icmp=30s is below the 60 seconds RFC 5508 REQ-2 requires for ICMP query sessions');
  const ok = runSettings(['--tun', 't', '--address', '192.0.2.1', '--masquerade', 'all from any to any', '--timeouts', 'tcp-opening=20s,tcp-closing=5s,tcp=3h']);
  t.like(ok.resolved.timeouts, { tcpOpening: 20_000, tcpClosing: 5_000, tcpEstablished: 3 * 3_600_000 });
  // The classic preset's own 15-minute TCP timer is the documented exception (not a user setting).
  t.is(runSettings(['--tun', 't', '--address', '192.0.2.1', '--masquerade', 'all from any to any', '--preset', 'classic']).resolved.timeouts.tcpEstablished, 15 * 60_000);
});

test('ICMP 3/13 on refusal is on by default; --no-icmp-on-exhaustion or icmp_on_exhaustion = false turns it off', (t) => {
  const base = ['--tun', 't', '--address', '192.0.2.1', '--masquerade', 'all from any to any'];
  t.true(runSettings(base).resolved.icmpOnExhaustion);
  t.false(runSettings([...base, '--no-icmp-on-exhaustion']).resolved.icmpOnExhaustion);
  t.true(runSettings([...base, '--icmp-on-exhaustion']).resolved.icmpOnExhaustion);
  t.false(runSettings(['--config', 'x.toml'], () => minimal + 'icmp_on_exhaustion = false\n').resolved.icmpOnExhaustion);
  t.is(t.throws(() => runSettings([...base, '--icmp-on-exhaustion', '--no-icmp-on-exhaustion']))!.message, '--icmp-on-exhaustion and --no-icmp-on-exhaustion contradict each other: give one');
});

test('outside TUN: --outside-tun and outside_tun, checked names, never the TUN itself, a restart key', (t) => {
  t.is(parseConfigText(minimal + 'outside_tun = "masq1"\n').outsideTun, 'masq1');
  t.regex(fileErr(minimal + 'outside_tun = "a:b"\n').message, /outside_tun: "a:b" is not an interface name/);
  const read = (): string => minimal + 'outside_tun = "masq1"\n';
  t.is(runSettings(['--config', 'x.toml'], read).gateway.outsideTun, 'masq1');
  t.is(runSettings(['--config', 'x.toml', '--outside-tun', 'masq2'], read).gateway.outsideTun, 'masq2');
  t.is(runSettings(['--config', 'x.toml'], () => minimal).gateway.outsideTun, undefined);
  t.throws(() => runSettings(['--config', 'x.toml', '--outside-tun', 'masq0'], read), { instanceOf: UsageError, message: /outside TUN "masq0" is also the TUN/ });
  t.throws(() => runSettings(['--config', 'x.toml', '--outside-tun', 'x y'], read), { instanceOf: UsageError, message: /^--outside-tun: outside TUN interface name "x y" contains/ });
  const up = runSettings(['--config', 'x.toml', '--up', '--lan', 'br-lan'], read);
  t.is(checkedUp(up.up!, up.gateway.tun, up.gateway.outsideTun).outsideTun, 'masq1');
  t.deepEqual(restartKeys(runSettings(['--config', 'x.toml'], () => minimal), up), ['outside_tun']);
});

test('the unanswered timer: [timeouts] unanswered and --timeouts unanswered=, located minimum, at most udp, a live reload change', (t) => {
  t.deepEqual(parseConfigText(minimal + '[timeouts]\nunanswered = "45s"\n').timeouts, { unanswered: 45_000 });
  t.regex(fileErr(minimal + '[timeouts]\nunanswered = "500ms"\n').message, /^masq\.toml:5:1: timeouts\.unanswered: "500ms" is below the 1 second an inside host needs/);
  const read = (): string => minimal + '[timeouts]\nunanswered = "45s"\n';
  t.is(runSettings(['--config', 'x.toml'], read).resolved.timeouts.unanswered, 45_000);
  t.is(runSettings(['--config', 'x.toml', '--timeouts', 'unanswered=10s'], read).resolved.timeouts.unanswered, 10_000);
  t.throws(() => runSettings(['--config', 'x.toml', '--timeouts', 'unanswered=10m'], read), { message: /unanswered=10m is longer than udp=5m/ });
  t.deepEqual(timeoutChanges(runSettings(['--config', 'x.toml'], () => minimal).resolved.timeouts, runSettings(['--config', 'x.toml'], read).resolved.timeouts), ['unanswered 30s -> 45s']);
});
