/**
 * route.test.ts — routeSlot (route.ts), the one piece both TUN readers (the I/O thread and a
 * worker running to completion) use to send a packet on after classifying it: every slot
 * reaches exactly one sink call (or is held), with the partition and direction the dispatcher
 * chose, the exact drop reason, and held fragments released through the same sink — accepted
 * later fragments passed after the IPv4 header check, or dropped with its reason.
 */
import test from 'ava';
import { Dispatcher, DropReason, PortPlan, RuleSet, Side, parseIPv4, parseRules } from '@masq/core';
import { routeSlot, type RouteSink } from '../src/route.js';

const SLOT = 2048;
const EXTERNAL = parseIPv4('198.51.100.100')!;
const RULES = 'accept all from 10.200.0.0/24 to 10.9.0.0/16\nmasquerade all from 10.200.0.0/24 to any';

function csum(b: Uint8Array, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) s += (b[off + i]! << 8) | (b[off + i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An IPv4 packet (no options) of `proto` with `payload` after the header; fragment fields as given. */
function ipv4(src: string, dst: string, proto: number, payload: Uint8Array, id = 1, fragOff8 = 0, more = false): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[4] = id >> 8;
  p[5] = id & 0xff;
  const ff = (more ? 0x2000 : 0) | fragOff8;
  p[6] = ff >> 8;
  p[7] = ff & 0xff;
  p[8] = 64;
  p[9] = proto;
  const s = parseIPv4(src)!;
  const d = parseIPv4(dst)!;
  new DataView(p.buffer).setUint32(12, s);
  new DataView(p.buffer).setUint32(16, d);
  const c = csum(p, 0, 20);
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(payload, 20);
  return p;
}

function udp(sport: number, dport: number, body: number): Uint8Array {
  const u = new Uint8Array(8 + body);
  u[0] = sport >> 8;
  u[1] = sport & 0xff;
  u[2] = dport >> 8;
  u[3] = dport & 0xff;
  u[4] = u.length >> 8;
  u[5] = u.length & 0xff;
  return u;
}

type Call = [string, number, ...number[]];

function setup(partitions = 4) {
  const d = new Dispatcher(new RuleSet(parseRules(RULES)), [EXTERNAL], new PortPlan(1024, 65535, partitions), partitions, 16, 2000, null);
  const pool = new Uint8Array(SLOT * 16);
  const lens = new Int32Array(16);
  const calls: Call[] = [];
  const sink: RouteSink = {
    toPartition: (s, p, dir) => void calls.push(['partition', s, p, dir]),
    pass: (s) => void calls.push(['pass', s]),
    drop: (s, r) => void calls.push(['drop', s, r]),
    free: (s) => void calls.push(['free', s]),
  };
  const put = (slot: number, bytes: Uint8Array, H = 0): void => {
    pool.fill(0, slot * SLOT, slot * SLOT + H);
    pool.set(bytes, slot * SLOT + H);
    lens[slot] = H + bytes.length;
  };
  const route = (slot: number, H = 0, side: Side = Side.Unknown): void => routeSlot(d, pool, lens, SLOT, H, slot, 1000, side, sink);
  return { d, pool, lens, calls, put, route };
}

test('a masqueraded packet goes to the partition the dispatcher chose, with its direction (with and without a vnet header)', (t) => {
  for (const H of [0, 10]) {
    const { d, calls, put, route } = setup();
    put(3, ipv4('10.200.0.2', '203.0.113.9', 17, udp(4000, 53, 10)), H);
    route(3, H);
    t.is(calls.length, 1);
    t.deepEqual(calls[0], ['partition', 3, calls[0]![2]!, d.dir]);
    t.true(calls[0]![2]! >= 0 && calls[0]![2]! < 4);
  }
});

test('an accepted packet passes; a packet for nobody is dropped with its exact reason', (t) => {
  const { calls, put, route } = setup();
  put(1, ipv4('10.200.0.2', '10.9.0.7', 17, udp(4000, 7000, 10)));
  route(1);
  put(2, ipv4('203.0.113.9', EXTERNALS_STR, 17, udp(53, 4000, 10)));
  route(2, 0, Side.Outside);
  put(4, new Uint8Array([0x45, 0, 0]));
  route(4);
  t.deepEqual(calls[0], ['pass', 1]);
  t.is(calls[1]![0], 'partition', 'inbound to the external address: to the partition that owns the port');
  t.deepEqual(calls[2], ['drop', 4, DropReason.Truncated]);
  t.is(calls.length, 3);
});
const EXTERNALS_STR = '198.51.100.100';

test('accepted fragments out of order: held, then released through the sink as passes after the header check', (t) => {
  const { calls, put, route } = setup();
  const body = udp(4000, 7000, 64); // 72 bytes of UDP: fragments of 32 + 40
  const first = ipv4('10.200.0.2', '10.9.0.7', 17, body.subarray(0, 32), 77, 0, true);
  const second = ipv4('10.200.0.2', '10.9.0.7', 17, body.subarray(32, 72), 77, 4, false);
  put(5, second);
  route(5);
  t.deepEqual(calls, [], 'an early later fragment is held: no sink call');
  put(6, first);
  route(6);
  t.deepEqual(calls, [
    ['pass', 6],
    ['pass', 5],
  ]);
});

test('an accepted later fragment released with a broken header checksum is dropped as such', (t) => {
  const { calls, put, route } = setup();
  const body = udp(4000, 7000, 64);
  const first = ipv4('10.200.0.2', '10.9.0.7', 17, body.subarray(0, 32), 78, 0, true);
  const second = ipv4('10.200.0.2', '10.9.0.7', 17, body.subarray(32, 72), 78, 4, false);
  second[10]! ^= 0xff;
  put(7, second);
  route(7);
  put(8, first);
  route(8);
  t.deepEqual(calls[0], ['pass', 8]);
  t.is(calls[1]![0], 'drop');
  t.is(calls[1]![1], 7);
  t.is(calls[1]![2], DropReason.BadIpChecksum);
  t.is(calls.length, 2);
});

test('masqueraded fragments out of order: the held one is released to the same partition as the first', (t) => {
  const { calls, put, route } = setup();
  const body = udp(4001, 53, 64);
  const first = ipv4('10.200.0.2', '203.0.113.9', 17, body.subarray(0, 32), 79, 0, true);
  const second = ipv4('10.200.0.2', '203.0.113.9', 17, body.subarray(32, 72), 79, 4, false);
  put(9, second);
  route(9);
  put(10, first);
  route(10);
  t.is(calls.length, 2);
  t.is(calls[0]![0], 'partition');
  t.is(calls[1]![0], 'partition');
  t.is(calls[0]![1], 10);
  t.is(calls[1]![1], 9);
  t.is(calls[1]![2], calls[0]![2], 'same partition');
});
