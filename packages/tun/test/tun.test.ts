/**
 * tun.test.ts — @masq/tun against the real kernel. Every test makes its own network namespace
 * (mqtun-<pid>-<random>), runs the TUN side there (fixtures/scenario.ts, see helpers/netns.ts)
 * and deletes the namespace when done; test.after.always deletes any left over. Skipped, with
 * the reason printed, when not root or without /dev/net/tun.
 */
import test, { type ExecutionContext } from 'ava';

import { IFF_MULTI_QUEUE, IFF_NO_PI, IFF_PERSIST, IFF_TUN, IFF_UP, IFF_VNET_HDR } from '../src/index.js';
import {
  createNetns,
  deleteAllNetns,
  deleteNetns,
  environmentProblem,
  linkExists,
  scenarioResult,
} from './helpers/netns.js';
import { buildUdp, decodeUdp, fromHex, ip, toHex, udpChecksum } from './helpers/packet.js';

const problem = environmentProblem();
if (problem) {
  console.warn(`@masq/tun kernel tests skipped: ${problem}`);
  test('kernel tests skipped', (t) => {
    t.log(`skipped: ${problem}`);
    t.pass();
  });
}

type NsBody = (t: ExecutionContext, ns: string) => Promise<void>;

/** A test with a fresh namespace, deleted whatever happens. */
function nsTest(title: string, body: NsBody): void {
  if (problem) {
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

const NAME = 'mqtun0';

nsTest('open, configure (address, MTU, tx queue, up/down, IPv6 off), release', async (t, ns) => {
  const r = await scenarioResult<{
    name: string;
    fds: number;
    mtuBefore: number;
    mtu: number;
    txQueueLen: number;
    flagsDown: number;
    flagsUp: number;
    isUp: boolean;
    downAgain: boolean;
    ifType: { name: string; flags: number };
    ipv6Disabled: boolean;
    ipv6File: string | null;
    addrs: { family: string; local: string; prefixlen: number }[];
    sysfsMtu: string;
    existsAfterRelease: boolean;
  }>(ns, 'basic', { name: NAME });
  t.is(r.name, NAME);
  t.is(r.fds, 1);
  t.is(r.mtuBefore, 1500);
  t.is(r.mtu, 1400);
  t.is(r.sysfsMtu, '1400');
  t.is(r.txQueueLen, 1000);
  t.is(r.flagsDown & IFF_UP, 0);
  t.is(r.flagsUp & IFF_UP, IFF_UP);
  t.true(r.isUp);
  t.false(r.downAgain);
  t.is(r.ifType.name, NAME);
  t.is(r.ifType.flags & (IFF_TUN | IFF_NO_PI), IFF_TUN | IFF_NO_PI);
  t.is(r.ifType.flags & (IFF_MULTI_QUEUE | IFF_VNET_HDR | IFF_PERSIST), 0);
  if (r.ipv6File !== null) {
    t.true(r.ipv6Disabled);
    t.is(r.ipv6File, '1');
  }
  t.deepEqual(
    r.addrs.filter((a) => a.family === 'inet'),
    [{ family: 'inet', local: '10.77.0.1', prefixlen: 24 }],
  );
  t.deepEqual(r.addrs.filter((a) => a.family === 'inet6'), []);
  t.false(r.existsAfterRelease, 'a non-persistent TUN goes away with its last fd');
});

nsTest('a UDP datagram routed into the TUN lands in a SharedArrayBuffer slot', async (t, ns) => {
  const payload = 'hello through masq tun';
  const r = await scenarioResult<{
    poll: number;
    count: number;
    packets: string[];
    sourcePort: number;
    isShared: boolean;
    viaSabHex: string;
    canaryIntact: boolean;
    empty: number;
  }>(ns, 'read-udp', { name: NAME, payload, port: 5555 });
  t.true(r.isShared);
  t.is(r.poll, 1);
  t.is(r.count, 1, 'exactly one packet: IPv6 is off, so nothing else is sent');
  t.is(r.empty, 0, 'nothing more to read gives 0 (EAGAIN), not an error');
  t.true(r.canaryIntact, 'bytes outside the filled slot are untouched');
  const pkt = fromHex(r.packets[0]);
  t.is(r.viaSabHex, r.packets[0].slice(0, 56), 'the bytes are in the SharedArrayBuffer itself');
  const d = decodeUdp(pkt);
  if (!d) return t.fail(`not IPv4/UDP: ${r.packets[0]}`);
  t.is(d.version, 4);
  t.is(d.ihl, 20);
  t.is(d.totalLength, pkt.length);
  t.is(d.totalLength, 20 + 8 + payload.length);
  t.is(d.protocol, 17);
  t.is(d.src, '10.77.0.1');
  t.is(d.dst, '10.77.0.2');
  t.true(d.ttl > 0);
  t.true(d.headerChecksumOk);
  t.is(d.sport, r.sourcePort);
  t.is(d.dport, 5555);
  t.is(d.udpLength, 8 + payload.length);
  t.is(d.udpChecksum, udpChecksum(pkt), 'the kernel completed the UDP checksum (no offload)');
  t.is(Buffer.from(d.payload).toString(), payload);
});

nsTest('writeBatch delivers crafted IPv4/UDP packets; a bad packet is counted, not fatal', async (t, ns) => {
  const mk = (text: string, sport: number): Uint8Array =>
    buildUdp({ src: ip('10.77.0.2'), dst: ip('10.77.0.1'), sport, dport: 6000, payload: Buffer.from(text) });
  const good1 = mk('first', 7001);
  const bad = new Uint8Array(40); // IP version 0: the kernel refuses it with EINVAL
  const good2 = mk('second', 7002);
  const r = await scenarioResult<{
    ret: number;
    errors: [number, number];
    received: { payload: string; address: string; port: number }[];
  }>(ns, 'write-udp', { name: NAME, port: 6000, expect: 2, packets: [toHex(good1), toHex(bad), toHex(good2)] });
  t.is(r.ret, 3, 'all three consumed');
  t.deepEqual(r.errors, [1, 22], 'one rejected, with EINVAL');
  t.deepEqual(
    r.received.map((m) => [Buffer.from(m.payload, 'hex').toString(), m.address, m.port]),
    [
      ['first', '10.77.0.2', 7001],
      ['second', '10.77.0.2', 7002],
    ],
  );
});

nsTest('a packet with a wrong UDP checksum is written but dropped by the receiving stack', async (t, ns) => {
  const good = buildUdp({ src: ip('10.77.0.2'), dst: ip('10.77.0.1'), sport: 7003, dport: 6001, payload: Buffer.from('ok') });
  const broken = buildUdp({ src: ip('10.77.0.2'), dst: ip('10.77.0.1'), sport: 7004, dport: 6001, payload: Buffer.from('no') });
  broken[27] ^= 0x01;
  const r = await scenarioResult<{ ret: number; errors: [number, number]; received: { payload: string; port: number }[] }>(
    ns,
    'write-udp',
    { name: NAME, port: 6001, expect: 2, packets: [toHex(broken), toHex(good)] },
  );
  t.is(r.ret, 2);
  t.deepEqual(r.errors, [0, 0]);
  t.deepEqual(r.received.map((m) => m.port), [7003], 'only the packet whose checksum our oracle computed arrives');
});

nsTest('64 packets are read in one readBatch call', async (t, ns) => {
  const r = await scenarioResult<{ poll: number; first: number; second: number; packets: string[] }>(ns, 'batch64', {
    name: NAME,
  });
  t.is(r.poll, 1);
  t.is(r.first, 64);
  t.is(r.second, 0);
  const payloads = r.packets.map((h) => {
    const d = decodeUdp(fromHex(h));
    return d ? Buffer.from(d.payload).toString() : `? ${h}`;
  });
  t.deepEqual(payloads, Array.from({ length: 64 }, (_, i) => `pkt-${i}`), 'in order, each in its own slot');
});

nsTest('multi-queue: two fds on one device, flows spread over both, writes through either', async (t, ns) => {
  const flows = 32;
  const packet = buildUdp({ src: ip('10.77.0.2'), dst: ip('10.77.0.1'), sport: 7100, dport: 6100, payload: Buffer.from('via-q1') });
  const r = await scenarioResult<{
    fds: number;
    multiQueue: boolean;
    flags: number[];
    perQueue: string[][];
    writeRet: number;
    received: { payload: string }[];
  }>(ns, 'multiqueue', { name: NAME, flows, port: 6100, packet: toHex(packet) });
  t.is(r.fds, 2);
  t.true(r.multiQueue);
  for (const f of r.flags) t.is(f & IFF_MULTI_QUEUE, IFF_MULTI_QUEUE);
  const counts = r.perQueue.map((q) => q.length);
  t.log(`flows per queue: ${counts.join(' + ')}`);
  t.is(counts[0] + counts[1], flows, 'each packet is delivered to exactly one queue');
  t.true(counts[0] > 0 && counts[1] > 0, 'the kernel spreads 32 flows over both queues');
  const seen = r.perQueue.flat().map((h) => Buffer.from(decodeUdp(fromHex(h))?.payload ?? []).toString());
  t.deepEqual(seen.sort(), Array.from({ length: flows }, (_, i) => `flow-${i}`).sort());
  t.is(r.writeRet, 1);
  t.deepEqual(r.received.map((m) => Buffer.from(m.payload, 'hex').toString()), ['via-q1']);
});

nsTest('poll: timeout gives 0 in bounds, eventfd wake gives 2 (also from another thread), both gives 3', async (t, ns) => {
  const r = await scenarioResult<{
    timeout: number;
    timeoutMs: number;
    zero: number;
    woken: number;
    drained: number;
    afterDrain: number;
    drainedEmpty: number;
    crossThread: number;
    crossThreadMs: number;
    readable: number;
    both: number;
  }>(ns, 'poll', { name: NAME });
  t.is(r.timeout, 0);
  t.true(r.timeoutMs >= 140 && r.timeoutMs < 1000, `timed out after ${r.timeoutMs} ms (asked 150)`);
  t.is(r.zero, 0);
  t.is(r.woken, 2);
  t.is(r.drained, 2, 'two wakes were pending');
  t.is(r.afterDrain, 0);
  t.is(r.drainedEmpty, 0);
  t.is(r.crossThread, 2);
  t.true(r.crossThreadMs < 2000, `woken by the worker after ${r.crossThreadMs} ms`);
  t.is(r.readable, 1);
  t.is(r.both, 3);
});

nsTest('bad slot offsets and counts give -EINVAL without touching memory or the queue', async (t, ns) => {
  const r = await scenarioResult<Record<string, number | boolean | string>>(ns, 'bad-args', { name: NAME });
  for (const k of [
    'offsetPastEnd',
    'slotOneTooBig',
    'maxBeyondOffsets',
    'maxBeyondLengths',
    'hugeOffset',
    'laterSlotBad',
    'zeroSlotCap',
    'negativeMax',
    'wrongLengthsType',
    'wrongBufType',
    'notAnArray',
    'writePastEnd',
    'writeCountBeyond',
    'writeShortErrors',
  ]) {
    t.is(r[k], -22, k);
  }
  t.is(r.maxZero, 0);
  t.is(r.writeZero, 0);
  t.true(r.untouchedAfterBadCalls);
  t.is(r.exactFit, 1, 'a slot ending exactly at the end of the buffer is fine');
  t.true(r.firstHalfUntouched);
  const d = decodeUdp(fromHex(String(r.exactFitPacket)));
  t.is(d && Buffer.from(d.payload).toString(), 'still-here', 'the refused calls did not consume the packet');
  t.is(r.readClosed, -9, 'EBADF on a released fd');
  t.is(r.writeClosed, -9);
  t.is(r.negativeFd, -9);
});

nsTest('vnet_hdr + offload: 10-byte virtio_net_hdr on read and write', async (t, ns) => {
  const packet = buildUdp({ src: ip('10.77.0.2'), dst: ip('10.77.0.1'), sport: 7200, dport: 6200, payload: Buffer.from('vnet-write') });
  const framed = new Uint8Array(10 + packet.length);
  framed.set(packet, 10); // all-zero virtio_net_hdr: complete packet, no GSO
  const r = await scenarioResult<{
    flags: number;
    got: string[];
    ret: number;
    errors: [number, number];
    received: { payload: string }[];
    plainOffload: { code: string; message: string; tunError: boolean } | null;
  }>(ns, 'vnet', { name: NAME, port: 6200, packet: toHex(framed) });
  t.is(r.flags & IFF_VNET_HDR, IFF_VNET_HDR);
  t.is(r.got.length, 1);
  const raw = fromHex(r.got[0]);
  const hdr = raw.subarray(0, 10);
  const d = decodeUdp(raw.subarray(10));
  t.truthy(d, 'the IPv4 packet starts after the 10-byte header');
  t.is(Buffer.from(d?.payload ?? []).toString(), 'vnet-read');
  t.is(hdr[1], 0, 'gso_type NONE for a small datagram');
  if (hdr[0] & 1) {
    // NEEDS_CSUM: the checksum is partial; csum_start is the UDP header, csum_offset its field.
    t.is(hdr[6] | (hdr[7] << 8), 20);
    t.is(hdr[8] | (hdr[9] << 8), 6);
  }
  t.log(`virtio_net_hdr on read with TUN_F_CSUM: ${toHex(hdr)}`);
  t.is(r.ret, 1);
  t.deepEqual(r.errors, [0, 0]);
  t.deepEqual(r.received.map((m) => Buffer.from(m.payload, 'hex').toString()), ['vnet-write']);
  t.is(r.plainOffload?.code, 'EINVAL');
  t.true(r.plainOffload?.tunError);
  t.regex(r.plainOffload?.message ?? '', /vnetHdr: true/);
});

interface OpenOutcome {
  ok: boolean;
  fds?: number;
  flags?: number;
  error?: { code: string; message: string; tunError: boolean };
}

nsTest('attach to persistent devices made by ip tuntap (single and multi_queue), mismatch explained', async (t, ns) => {
  const r = await scenarioResult<{
    single: OpenOutcome;
    singleAgain: OpenOutcome;
    singleExistsAfter: boolean;
    singleAsMq: OpenOutcome;
    multi: OpenOutcome;
    multiOne: OpenOutcome;
    multiAsSingle: OpenOutcome;
    multiExistsAfter: boolean;
    got: string[];
  }>(ns, 'persistent');
  t.true(r.single.ok, JSON.stringify(r.single));
  t.is((r.single.flags ?? 0) & IFF_PERSIST, IFF_PERSIST);
  t.true(r.singleAgain.ok, 're-attach after release');
  t.true(r.singleExistsAfter, 'a persistent device outlives our fds');
  t.false(r.singleAsMq.ok);
  t.is(r.singleAsMq.error?.code, 'EINVAL');
  t.regex(r.singleAsMq.error?.message ?? '', /"mqp1" exists with other settings: it is a persistent TUN without multi_queue/);
  t.regex(r.singleAsMq.error?.message ?? '', /multiQueue: false/);
  t.regex(r.singleAsMq.error?.message ?? '', /if you made it for masq, recreate it: ip tuntap del dev mqp1 mode tun; ip tuntap add dev mqp1 mode tun multi_queue/);

  t.true(r.multi.ok, JSON.stringify(r.multi));
  t.is(r.multi.fds, 2);
  t.is((r.multi.flags ?? 0) & (IFF_MULTI_QUEUE | IFF_PERSIST), IFF_MULTI_QUEUE | IFF_PERSIST);
  t.true(r.multiOne.ok);
  t.false(r.multiAsSingle.ok);
  t.is(r.multiAsSingle.error?.code, 'EINVAL');
  t.regex(r.multiAsSingle.error?.message ?? '', /"mqp2" exists with other settings: it is a persistent multi_queue TUN; open it with multiQueue: true/);
  t.true(r.multiExistsAfter);

  t.is(r.got.length, 1);
  t.is(Buffer.from(decodeUdp(fromHex(r.got[0]))?.payload ?? []).toString(), 'persistent');
  t.true(await linkExists(ns, 'mqp1'));
});
