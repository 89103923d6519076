/**
 * unit.test.ts — @masq/tun without a TUN device: TunDevice over a recording fake TunBinding
 * (argument checks happen before any system call, fds are closed on partial failure, release is
 * idempotent), virtio_net_hdr golden bytes, and the native batch calls against an eventfd,
 * which proves the SharedArrayBuffer data pointer without needing root.
 */
import test from 'ava';

import {
  EINVAL,
  getBinding,
  loadNativeBinding,
  readBatch,
  setBinding,
  TunDevice,
  TunError,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VNET_HDR_LEN,
  vnetCsumOffset,
  vnetCsumStart,
  vnetFlags,
  vnetGsoSize,
  vnetGsoType,
  vnetHdrLen,
  writeBatch,
  writeVnetNeedsCsum,
  type IfType,
  type OpenFlags,
  type OpenResult,
  type PollResult,
  type TunBinding,
} from '../src/index.js';

type Call = [string, ...unknown[]];

class FakeBinding implements TunBinding {
  calls: Call[] = [];
  nextFd = 100;
  failOpenAt = -1;
  opens = 0;
  open(name: string, flags: OpenFlags): OpenResult {
    this.calls.push(['open', name, flags]);
    if (this.opens++ === this.failOpenAt) {
      throw Object.assign(new Error('TUNSETIFF x: Device or resource busy (EBUSY)'), { code: 'EBUSY', errno: -16, syscall: 'ioctl' });
    }
    return { fd: this.nextFd++, name: name.replace('%d', '7') };
  }
  readBatch(): number {
    this.calls.push(['readBatch']);
    return 0;
  }
  writeBatch(fd: number, _b: Uint8Array, _o: Uint32Array, _l: Uint32Array, count: number): number {
    this.calls.push(['writeBatch', fd, count]);
    return count;
  }
  poll(): PollResult {
    return 0;
  }
  pollMany(): number {
    return 0;
  }
  eventfd(): number {
    return 99;
  }
  wake(): void {}
  drainWake(): number {
    return 0;
  }
  yieldCpu(): number {
    return 0;
  }
  setThreadPolicy(): void {}
  close(fd: number): void {
    this.calls.push(['close', fd]);
  }
  setMtu(name: string, mtu: number): void {
    this.calls.push(['setMtu', name, mtu]);
  }
  getMtu(): number {
    return 1500;
  }
  setUp(name: string, up: boolean): void {
    this.calls.push(['setUp', name, up]);
  }
  setTxQueueLen(name: string, n: number): void {
    this.calls.push(['setTxQueueLen', name, n]);
  }
  getTxQueueLen(): number {
    return 500;
  }
  setAddress(name: string, addr: number, prefix: number): void {
    this.calls.push(['setAddress', name, addr, prefix]);
  }
  getFlags(): number {
    return 0;
  }
  setOffload(fd: number, flags: number): void {
    this.calls.push(['setOffload', fd, flags]);
  }
  setVnetHdrSize(): void {}
  getIfType(): IfType {
    return { name: 'x', flags: 0 };
  }
  errnoName(): string {
    return 'E';
  }
}

test('a name longer than 15 bytes is refused before any system call', (t) => {
  const fake = new FakeBinding();
  const e = t.throws(() => TunDevice.open({ name: 'masq-tun-way-too-long' }, fake), { instanceOf: TunError });
  t.is(e?.code, 'ENAMETOOLONG');
  t.regex(e?.message ?? '', /21 bytes; Linux interface names are at most 15/);
  t.deepEqual(fake.calls, []);
  t.notThrows(() => TunDevice.open({ name: '123456789012345' }, fake).release());
  // 15 characters but 16 bytes in UTF-8.
  t.is(t.throws(() => TunDevice.open({ name: 'ééééééé12' }, fake), { instanceOf: TunError })?.code, 'ENAMETOOLONG');
});

test('invalid names and queue counts are refused before any system call', (t) => {
  const fake = new FakeBinding();
  for (const name of ['', '.', '..', 'a/b', 'a:b', 'a b']) {
    t.is(t.throws(() => TunDevice.open({ name }, fake), { instanceOf: TunError })?.code, 'EINVAL', name);
  }
  t.regex(t.throws(() => TunDevice.open({ name: 'q', queues: 2, multiQueue: false }, fake))?.message ?? '', /multiQueue: true/);
  t.is(t.throws(() => TunDevice.open({ name: 'q', queues: 0 }, fake), { instanceOf: TunError })?.code, 'EINVAL');
  t.is(t.throws(() => TunDevice.open({ name: 'q', queues: 257 }, fake), { instanceOf: TunError })?.code, 'EINVAL');
  t.deepEqual(fake.calls, []);
});

test('open: one fd per queue with the same flags; kernel-chosen name is used for later queues', (t) => {
  const fake = new FakeBinding();
  const dev = TunDevice.open({ name: 'mq%d', queues: 3 }, fake);
  t.is(dev.name, 'mq7');
  t.deepEqual(dev.fds, [100, 101, 102]);
  t.true(dev.multiQueue);
  t.false(dev.vnetHdr);
  t.deepEqual(fake.calls, [
    ['open', 'mq%d', { multiQueue: true, vnetHdr: false }],
    ['open', 'mq7', { multiQueue: true, vnetHdr: false }],
    ['open', 'mq7', { multiQueue: true, vnetHdr: false }],
  ]);
});

test('open: a failure on a later queue closes the fds already opened', (t) => {
  const fake = new FakeBinding();
  fake.failOpenAt = 2;
  const e = t.throws(() => TunDevice.open({ name: 'mqx', queues: 4 }, fake), { instanceOf: TunError });
  t.is(e?.code, 'EBUSY');
  t.is(e?.errno, -16);
  t.is(e?.syscall, 'ioctl');
  t.deepEqual(
    fake.calls.filter((c) => c[0] === 'close'),
    [
      ['close', 100],
      ['close', 101],
    ],
  );
});

test('release closes every fd once; later configuration throws EBADF', (t) => {
  const fake = new FakeBinding();
  const dev = TunDevice.open({ name: 'mqr', queues: 2 }, fake);
  dev.release();
  dev.release();
  t.deepEqual(
    fake.calls.filter((c) => c[0] === 'close'),
    [
      ['close', 100],
      ['close', 101],
    ],
  );
  t.true(dev.released);
  t.is(t.throws(() => dev.up(), { instanceOf: TunError })?.code, 'EBADF');
});

test('configuration calls reach the binding with parsed arguments', (t) => {
  const fake = new FakeBinding();
  const dev = TunDevice.open({ name: 'mqc', vnetHdr: true }, fake);
  fake.calls = [];
  dev.mtu = 1280;
  dev.up();
  dev.down();
  dev.setTxQueueLen(4096);
  dev.setAddress('10.0.0.1', 24);
  dev.setAddress(0xc0a80101, 32);
  dev.enableOffload({ csum: true, tso4: true });
  dev.enableOffload({ csum: true, tso4: false });
  dev.enableOffload({ csum: true, tso4: true, uso: true });
  t.deepEqual(fake.calls, [
    ['setMtu', 'mqc', 1280],
    ['setUp', 'mqc', true],
    ['setUp', 'mqc', false],
    ['setTxQueueLen', 'mqc', 4096],
    ['setAddress', 'mqc', 0x0a000001, 24],
    ['setAddress', 'mqc', 0xc0a80101, 32],
    ['setOffload', 100, 0x03],
    ['setOffload', 100, 0x01],
    ['setOffload', 100, 0x63],
  ]);
  t.is(t.throws(() => dev.setAddress('10.0.0.256', 24), { instanceOf: TunError })?.code, 'EINVAL');
  t.is(t.throws(() => dev.setAddress('10.0.0.1', 33), { instanceOf: TunError })?.code, 'EINVAL');
  t.is(t.throws(() => (dev.mtu = 1.5), { instanceOf: TunError })?.code, 'EINVAL');
  t.regex(t.throws(() => dev.enableOffload({ csum: false, tso4: true }))?.message ?? '', /tso4 and uso need csum/);
  t.regex(t.throws(() => dev.enableOffload({ csum: false, tso4: false, uso: true }))?.message ?? '', /tso4 and uso need csum/);
});

test('enableOffload without vnetHdr explains why', (t) => {
  const dev = TunDevice.open({ name: 'mqo' }, new FakeBinding());
  const e = t.throws(() => dev.enableOffload({ csum: true, tso4: false }), { instanceOf: TunError });
  t.is(e?.code, 'EINVAL');
  t.regex(e?.message ?? '', /opened without vnetHdr/);
});

test('the exported batch functions use the installed binding', (t) => {
  const fake = new FakeBinding();
  const prev = setBinding(fake);
  try {
    t.is(getBinding(), fake);
    t.is(writeBatch(7, new Uint8Array(1), new Uint32Array(1), new Uint32Array(1), 1), 1);
    t.is(readBatch(7, new Uint8Array(1), new Uint32Array(1), 1, new Uint32Array(1), 1), 0);
    t.deepEqual(fake.calls, [['writeBatch', 7, 1], ['readBatch']]);
  } finally {
    setBinding(prev);
  }
});

test('virtio_net_hdr: golden bytes (little-endian u16 fields)', (t) => {
  const b = new Uint8Array(16).fill(0xa5);
  writeVnetNeedsCsum(b, 3, 20, 6);
  t.deepEqual([...b], [0xa5, 0xa5, 0xa5, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x06, 0x00, 0xa5, 0xa5, 0xa5]);
  t.is(VNET_HDR_LEN, 10);
  t.is(vnetFlags(b, 3), VIRTIO_NET_HDR_F_NEEDS_CSUM);
  t.is(vnetGsoType(b, 3), 0);
  t.is(vnetHdrLen(b, 3), 0);
  t.is(vnetGsoSize(b, 3), 0);
  t.is(vnetCsumStart(b, 3), 20);
  t.is(vnetCsumOffset(b, 3), 6);
  const g = new Uint8Array([0, 1, 0x36, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00]);
  t.is(vnetGsoType(g, 0), 1);
  t.is(vnetHdrLen(g, 0), 54);
  t.is(vnetGsoSize(g, 0), 1448);
  t.is(vnetCsumStart(g, 0), 34);
  t.is(vnetCsumOffset(g, 0), 16);
});

// The native tests below need only the compiled addon (no root, no TUN).
let native: TunBinding | null = null;
let nativeProblem = '';
try {
  native = loadNativeBinding();
} catch (e: unknown) {
  nativeProblem = e instanceof Error ? e.message : String(e);
  console.warn(`@masq/tun native unit tests skipped: ${nativeProblem}`);
}
const ntest = native ? test : test.skip;

ntest('native readBatch/writeBatch move bytes in and out of a SharedArrayBuffer (via an eventfd)', (t) => {
  const b = native as TunBinding;
  const efd = b.eventfd();
  t.teardown(() => b.close(efd));
  const sab = new SharedArrayBuffer(256);
  const buf = new Uint8Array(sab, 16, 128); // non-zero byteOffset
  buf.fill(0xa5);
  const offs = new Uint32Array([40]);
  const lens = new Uint32Array(1);
  t.is(b.readBatch(efd, buf, offs, 8, lens, 1), 0, 'empty eventfd: EAGAIN gives 0');
  b.wake(efd);
  b.wake(efd);
  b.wake(efd);
  t.is(b.readBatch(efd, buf, offs, 8, lens, 1), 1);
  t.is(lens[0], 8);
  t.is(new DataView(sab).getBigUint64(16 + 40, true), 3n, 'the counter landed in the SAB at byteOffset + slot offset');
  t.true(buf.subarray(0, 40).every((x) => x === 0xa5) && buf.subarray(48).every((x) => x === 0xa5));

  new DataView(sab).setBigUint64(16 + 64, 5n, true);
  const errs = new Uint32Array([9, 9]);
  t.is(b.writeBatch(efd, buf, new Uint32Array([64]), new Uint32Array([8]), 1, errs), 1);
  t.deepEqual([...errs], [0, 0]);
  t.is(b.drainWake(efd), 5, 'writeBatch read its bytes from the SAB');
  // A 4-byte write to an eventfd is refused with EINVAL: counted as a rejected packet.
  t.is(b.writeBatch(efd, buf, new Uint32Array([64, 64]), new Uint32Array([4, 8]), 2, errs), 2);
  t.deepEqual([...errs], [1, EINVAL]);
  t.is(b.drainWake(efd), 5);
});

ntest('native poll on a waker alone, errnoName, close errors carry code and hint', (t) => {
  const b = native as TunBinding;
  const efd = b.eventfd();
  t.is(b.poll(-1, efd, 0), 0);
  b.wake(efd);
  t.is(b.poll(-1, efd, 0), 2);
  t.is(b.drainWake(efd), 1);
  t.is(b.yieldCpu(), 0);
  t.is(b.errnoName(-11), 'EAGAIN');
  t.is(b.errnoName(22), 'EINVAL');
  b.close(efd);
  const e = t.throws(() => b.close(efd));
  t.is((e as unknown as { code: string }).code, 'EBADF');
  t.is((e as unknown as { errno: number }).errno, -9);
  t.regex(e?.message ?? '', /close fd \d+: Bad file descriptor \(EBADF\)/);
  t.throws(() => b.setMtu('x'.repeat(16), 1400), { code: 'ENAMETOOLONG' });
  t.throws(() => b.poll(1.5, -1, 0), { code: 'ERR_INVALID_ARG_TYPE' });
});

ntest('native pollMany: bit i per readable fd, bit 30 for the waker, 0 on timeout; bad arguments refused', (t) => {
  const b = native as TunBinding;
  const w = b.eventfd();
  const q0 = b.eventfd();
  const q1 = b.eventfd();
  const fds = Int32Array.from([q0, q1]);
  t.is(b.pollMany(fds, 2, w, 0), 0);
  b.wake(q1);
  t.is(b.pollMany(fds, 2, w, 0), 1 << 1);
  b.wake(q0);
  b.wake(w);
  t.is(b.pollMany(fds, 2, w, 0), (1 << 0) | (1 << 1) | (1 << 30));
  t.is(b.pollMany(fds, 1, -1, 0), 1 << 0);
  t.throws(() => b.pollMany(fds, 3, w, 0), { code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => b.pollMany(fds, 31, w, 0), { code: 'ERR_INVALID_ARG_TYPE' });
  for (const fd of [w, q0, q1]) b.close(fd);
});

ntest('native getMtu on a missing interface names it and the namespace', (t) => {
  const b = native as TunBinding;
  const e = t.throws(() => b.getMtu('mqnonexist0'));
  t.is((e as unknown as { code: string }).code, 'ENODEV');
  t.regex(e?.message ?? '', /SIOCGIFMTU mqnonexist0: No such device \(ENODEV\): no interface with that name/);
});

