/**
 * tun-open.test.ts — the offload ladder of openTun (tun-open.ts) against a stand-in binding
 * that refuses what a given kernel refuses: offloads are asked for by default, each refused
 * level falls back to the next with one log line, the device is reopened without the vnet
 * header when nothing is left, --no-offload never asks, and errors that are not a refusal are
 * thrown with the device released. Also the io_uring probe's one log line (ioUringRefusal).
 */
import test from 'ava';
import { TUN_F_CSUM, TUN_F_TSO4, TUN_F_USO4, TUN_F_USO6, getBinding, setBinding, uringProbe, type TunBinding } from '@masq/tun';
import { ioUringRefusal, openTun } from '../src/tun-open.js';

const ALL = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4 | TUN_F_USO6;
const TSO = TUN_F_CSUM | TUN_F_TSO4;

/** A binding whose setOffload refuses every flag set for which `refuse(flags)` names an errno. */
function kernel(refuse: (flags: number) => string | null): { binding: TunBinding; calls: string[] } {
  const calls: string[] = [];
  let fd = 40;
  const sysErr = (code: string): Error => Object.assign(new Error(`TUNSETOFFLOAD: ${code}`), { code, errno: -22, syscall: 'ioctl' });
  const own: Partial<TunBinding> = {
    open: (name, flags) => {
      calls.push(`open vnet=${flags.vnetHdr} mq=${flags.multiQueue}`);
      return { fd: fd++, name };
    },
    close: (f) => void calls.push(`close ${f}`),
    setOffload: (f, flags) => {
      calls.push(`offload ${f} 0x${flags.toString(16)}`);
      const code = refuse(flags);
      if (code) throw sysErr(code);
    },
    getMtu: () => 1500,
    getTxQueueLen: () => 500,
    setUp: (_n, up) => void calls.push(`up ${up}`),
  };
  // Every other call (MTU, queue length) is accepted and not recorded.
  const binding = new Proxy(own, { get: (o, k: string) => (o as Record<string, unknown>)[k] ?? (() => 0) }) as TunBinding;
  return { binding, calls };
}

test('by default the gateway asks for checksum, TSO4 and USO, and runs with all three when the kernel takes them', (t) => {
  const { binding, calls } = kernel(() => null);
  const lines: string[] = [];
  const r = openTun({ name: 'mq0', workers: 1, binding, log: (l) => lines.push(l) });
  t.is(r.offload, 'csum+tso4+uso');
  t.true(r.dev.vnetHdr);
  t.deepEqual(calls, ['open vnet=true mq=false', `offload 40 0x${ALL.toString(16)}`, 'up true']);
  t.deepEqual(lines, []);
});

test('a kernel without USO (before 6.2: EINVAL for the USO bits): checksum + TSO4, one log line', (t) => {
  const { binding, calls } = kernel((f) => ((f & TUN_F_USO4) !== 0 ? 'EINVAL' : null));
  const lines: string[] = [];
  const r = openTun({ name: 'mq0', workers: 2, binding, log: (l) => lines.push(l) });
  t.is(r.offload, 'csum+tso4');
  t.true(r.dev.vnetHdr);
  t.deepEqual(calls, ['open vnet=true mq=true', 'open vnet=true mq=true', `offload 40 0x${ALL.toString(16)}`, `offload 40 0x${TSO.toString(16)}`, 'up true']);
  t.is(lines.length, 1);
  t.regex(lines[0]!, /^masq: TUN mq0: the kernel refused UDP segmentation offload \(EINVAL: .*\); running with checksum \+ TSO4 offloads$/);
});

test('every offload refused: the device is reopened without the vnet header, one line says so', (t) => {
  const { binding, calls } = kernel(() => 'EINVAL');
  const lines: string[] = [];
  const r = openTun({ name: 'mq0', workers: 1, binding, log: (l) => lines.push(l) });
  t.is(r.offload, 'off');
  t.false(r.dev.vnetHdr, 'a vnet header on a device without offloads would shift every packet by 10 bytes');
  t.deepEqual(calls, ['open vnet=true mq=false', `offload 40 0x${ALL.toString(16)}`, `offload 40 0x${TSO.toString(16)}`, 'close 40', 'open vnet=false mq=false', 'up true']);
  t.is(lines.length, 1);
  t.regex(lines[0]!, /^masq: TUN mq0: offloads refused \(EINVAL: .*\); running without them \(--no-offload silences this\)$/);
});

test('an offload call refused with EPERM (a restricted container): run without offloads', (t) => {
  const { binding } = kernel(() => 'EPERM');
  const lines: string[] = [];
  const r = openTun({ name: 'mq0', workers: 1, binding, log: (l) => lines.push(l) });
  t.is(r.offload, 'off');
  t.false(r.dev.vnetHdr);
  t.is(lines.length, 1);
  t.regex(lines[0]!, /offloads refused \(EPERM: /);
});

test('--no-offload: no vnet header, no TUNSETOFFLOAD, no log line', (t) => {
  const { binding, calls } = kernel(() => {
    throw new Error('setOffload must not be called');
  });
  const lines: string[] = [];
  const r = openTun({ name: 'mq0', workers: 1, offload: false, binding, log: (l) => lines.push(l) });
  t.is(r.offload, 'off');
  t.false(r.dev.vnetHdr);
  t.deepEqual(calls, ['open vnet=false mq=false', 'up true']);
  t.deepEqual(lines, []);
});

test('io_uring: no log line where the probe passes; one line naming the errno and the way out where it is refused', (t) => {
  t.is(ioUringRefusal(() => 0), null);
  t.is(ioUringRefusal(() => -22), 'masq: io_uring refused (EINVAL: multishot reads need Linux 6.7); workers read and write their queues with read(2) and write(2)');
  t.is(ioUringRefusal(() => -1), 'masq: io_uring refused (EPERM: io_uring is disabled here (kernel.io_uring_disabled, a seccomp filter) or the addon was built without it); workers read and write their queues with read(2) and write(2)');
  t.regex(ioUringRefusal(() => -38)!, /^masq: io_uring refused \(ENOSYS: io_uring is disabled here/);
  t.regex(ioUringRefusal(() => -12)!, /^masq: io_uring refused \(ENOMEM\); workers read and write their queues with read\(2\) and write\(2\)$/);
});

test('io_uring: a binding without it probes as ENOSYS (the gateway then keeps read(2) and write(2))', (t) => {
  const native = getBinding();
  const { uringOpen: _o, uringPass: _p, uringClose: _c, ...rest } = native;
  const prev = setBinding(rest as TunBinding);
  try {
    t.is(uringProbe(), -38);
    t.regex(ioUringRefusal()!, /^masq: io_uring refused \(ENOSYS/);
  } finally {
    setBinding(prev);
  }
});
