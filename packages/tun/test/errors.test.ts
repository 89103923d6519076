/**
 * errors.test.ts — the errors a user meets when opening a TUN, produced by the real kernel in a
 * private namespace: name taken by a non-TUN device or a TAP, a single-queue TUN already in use,
 * no CAP_NET_ADMIN (setpriv drops it from the bounding set), no /dev/net/tun (a private mount
 * namespace hides it under a tmpfs). Skipped, with the reason printed, when not root.
 */
import { spawnSync } from 'node:child_process';

import test, { type ExecutionContext } from 'ava';

import { createNetns, deleteAllNetns, deleteNetns, environmentProblem, scenarioResult } from './helpers/netns.js';

const problem = environmentProblem();
if (problem) {
  console.warn(`@masq/tun kernel error tests skipped: ${problem}`);
  test('kernel error tests skipped', (t) => {
    t.log(`skipped: ${problem}`);
    t.pass();
  });
}

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function nsTest(title: string, body: (t: ExecutionContext, ns: string) => Promise<void>, needs = ''): void {
  if (problem || (needs && !has(needs))) {
    if (!problem) console.warn(`skipping "${title}": ${needs} is not installed`);
    test.skip(title, () => undefined);
    return;
  }
  test(title, async (t) => {
    const ns = await createNetns();
    t.teardown(() => deleteNetns(ns));
    await body(t, ns);
  });
}

test.after.always('delete namespaces', () => {
  deleteAllNetns();
});

interface OpenOutcome {
  ok: boolean;
  error?: { code: string; message: string; errno: number; tunError: boolean };
}

nsTest('name in use by a non-TUN device, by a TAP, by a busy single-queue TUN', async (t, ns) => {
  const r = await scenarioResult<{ kind: string; other: OpenOutcome; tap: OpenOutcome; second: OpenOutcome }>(
    ns,
    'name-in-use',
  );
  t.log(`non-TUN device used: ${r.kind}`);
  t.false(r.other.ok);
  t.is(r.other.error?.code, 'EINVAL');
  t.is(r.other.error?.errno, -22);
  t.true(r.other.error?.tunError);
  t.regex(r.other.error?.message ?? '', /exists with other settings/);
  t.regex(r.other.error?.message ?? '', /"mqother" exists with other settings: it is not a TUN device/);
  t.regex(r.other.error?.message ?? '', /give masq a device name of its own \(--tun masq0\)/);
  t.notRegex(r.other.error?.message ?? '', /delete|del dev/, 'never advise deleting the operator\'s interface');

  t.false(r.tap.ok);
  t.is(r.tap.error?.code, 'EINVAL');
  t.regex(r.tap.error?.message ?? '', /"mqtap" exists with other settings: it is a persistent TAP device/);
  t.notRegex(r.tap.error?.message ?? '', /delete|del dev/);

  t.false(r.second.ok);
  t.is(r.second.error?.code, 'EBUSY');
  t.regex(r.second.error?.message ?? '', /already attached/);
  t.notRegex(r.second.error?.message ?? '', /delete|del dev/);
});

nsTest(
  'no CAP_NET_ADMIN gives EPERM with the setcap hint',
  async (t, ns) => {
    const r = await scenarioResult<OpenOutcome>(ns, 'open-error', { name: 'mqperm0' }, [
      'setpriv',
      '--bounding-set=-net_admin',
      '--inh-caps=-net_admin',
      '--',
    ]);
    t.false(r.ok);
    t.is(r.error?.code, 'EPERM');
    t.regex(r.error?.message ?? '', /TUNSETIFF mqperm0/);
    t.regex(r.error?.message ?? '', /run as root or grant CAP_NET_ADMIN/);
    t.regex(r.error?.message ?? '', /setcap cap_net_admin\+ep \$\(which node\)/);
  },
  'setpriv',
);

nsTest(
  'missing /dev/net/tun gives ENOENT with the modprobe hint',
  async (t, ns) => {
    // A private mount namespace (propagation private) with a tmpfs over /dev/net: the host's
    // /dev is not affected.
    const r = await scenarioResult<OpenOutcome>(ns, 'open-error', { name: 'mqnodev0' }, [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount -t tmpfs none /dev/net && exec "$0" "$@"',
    ]);
    t.false(r.ok);
    t.is(r.error?.code, 'ENOENT');
    t.regex(r.error?.message ?? '', /open \/dev\/net\/tun/);
    t.regex(r.error?.message ?? '', /load the tun module: modprobe tun/);
  },
  'unshare',
);
