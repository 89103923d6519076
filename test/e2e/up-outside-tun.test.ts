/**
 * up-outside-tun.test.ts — `masq up --outside-tun NAME` when that TUN does not exist yet
 * (docs/CLI.md, masq up): exit 3 with advice about that device — start `masq run` with
 * `--outside-tun NAME` (it creates it) or make a persistent device — instead of "an interface
 * is missing"; the LAN half is applied (fail closed), no route goes to the missing device; once
 * the device exists, the same `masq up` routes the external address into it.
 *
 * Runs a real `masq up` in the gateway namespace of a topology this test creates (and with
 * `--netns` from outside it); the main TUN is a persistent device, the outside TUN is not there.
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */
import { createTopology, leftoverNamespaces, run } from '../src/harness/index.js';
import { netnsSuite } from '../src/harness/suite.js';
import { MASQ_MAIN } from '../src/gateway/start.js';

const netnsTest = netnsSuite('masq up outside TUN e2e tests');

const OUTSIDE = 'masq9';

netnsTest('masq up --outside-tun with that TUN missing: exit 3, advice naming it (masq run --outside-tun, ip tuntap add), the LAN half applied; once it exists the external address is routed into it', async (t) => {
  const topo = await createTopology({ mode: 'masq', hosts: 1 });
  try {
    const gw = topo.gateway;
    await topo.createTun();
    const args = ['up', '--lan', gw.lan, '--wan', gw.wan, '--tun', gw.tun, '--outside-tun', OUTSIDE, '--address', topo.external];
    const want = [
      `masq up: the outside TUN device ${OUTSIDE} (--outside-tun) does not exist yet, so the external addresses cannot be routed into it.`,
      '  The LAN side is prepared (inside traffic is refused until masq runs: fail closed).',
      `  Start the gateway (masq run --tun ${gw.tun} --outside-tun ${OUTSIDE} ...; it creates both devices), then run masq up again;`,
      `  or create a persistent device first: ip tuntap add dev ${OUTSIDE} mode tun`,
      '',
    ].join('\n');

    // In the namespace, then from outside it with --netns: the same answer.
    const inNs = await topo.exec(gw.ns, [process.execPath, MASQ_MAIN, ...args], { timeoutMs: 30_000 });
    t.is(inNs.code, 3, inNs.stderr);
    t.is(inNs.stderr, want);
    const viaNetns = await run([process.execPath, MASQ_MAIN, ...args, '--netns', gw.ns], { timeoutMs: 30_000 });
    t.is(viaNetns.code, 3, viaNetns.stderr);
    t.is(viaNetns.stderr, want);
    // The LAN half is there (fail closed); nothing routes to the missing device.
    const rules = await topo.exec(gw.ns, ['ip', 'rule', 'show'], { timeoutMs: 5_000 });
    t.regex(rules.stdout, new RegExp(`iif ${gw.lan} lookup 100`));
    const before = await topo.exec(gw.ns, ['ip', 'route', 'show', `${topo.external}/32`], { timeoutMs: 5_000 });
    t.notRegex(before.stdout, new RegExp(`dev ${OUTSIDE}`));

    // Following the advice: make the device, run the same masq up.
    const mk = await topo.exec(gw.ns, ['ip', 'tuntap', 'add', 'dev', OUTSIDE, 'mode', 'tun'], { timeoutMs: 5_000 });
    t.is(mk.code, 0, mk.stderr);
    const again = await topo.exec(gw.ns, [process.execPath, MASQ_MAIN, ...args], { timeoutMs: 30_000 });
    t.is(again.code, 0, again.stderr);
    const after = await topo.exec(gw.ns, ['ip', 'route', 'show', `${topo.external}/32`], { timeoutMs: 5_000 });
    t.regex(after.stdout, new RegExp(`^${topo.external.replaceAll('.', '\\.')} dev ${OUTSIDE}`, 'm'));
  } finally {
    await topo.destroy();
  }
  t.deepEqual(leftoverNamespaces(topo.prefix), []);
});
