/**
 * offload.test.ts — the TUN offloads masq runs with by default (tun-open.ts): checksum offload,
 * TSO4 and UDP segmentation offload. The kernel hands the gateway TCP and UDP super-packets of
 * up to 64 KiB with partial checksums; every rewrite must leave them valid, and the kernel cuts
 * them up again on the way out. Shown end to end with real sockets:
 *  - the start line names the level (`offload csum+tso4+uso` on this kernel); a 6 MB upload
 *    through the masquerade and a 6 MB download through a port forward arrive byte-identical,
 *    and the session's packet counters show super-packets (far fewer packets than 1448-byte
 *    segments); with `--no-offload` the same upload crosses one segment per packet;
 *  - UDP sent with UDP_SEGMENT (GSO) crosses as super-packets (one per send in the session's
 *    counter) and arrives at the server as the right number of datagrams, each intact;
 *  - a hairpinned bulk TCP transfer (inside → external address → port forward → inside): both
 *    translations of one super-packet in one pass, checksums finished by the kernel;
 *  - UDP coalescing (workers/src/coalesce.ts): bursts of ordinary datagrams of one flow are
 *    written as UDP super-packets (counted) and arrive at the server as the same datagrams, in
 *    order, intact, with the sender's consecutive IP IDs and one TTL (seen by a raw socket);
 *    with `--no-udp-coalesce` none is joined and the same burst arrives the same way.
 * Fragments, ICMP errors, the protocol helpers and the other forwards run with offloads on in
 * the rest of the end-to-end suite, since it is the default.
 */
import fs from 'node:fs';
import type { ExecutionContext } from 'ava';
import type { SinkEvent, Topology } from '../src/harness/index.js';
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, stats, table, waitForLog, withGateway } from '../src/gateway/e2e.js';

const netnsTest = netnsSuite('offload e2e tests');

const MSS = 1448;
const BYTES = 6 * 1024 * 1024;

/** Upload BYTES from the first inside host to a sink on the server; the sink's event. */
async function upload(topo: Topology, port: number): Promise<{ sent: { sha256: string; localPort: number }; got: SinkEvent }> {
  const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port });
  const sent = await topo.peer(topo.inside[0].ns, 'tcp-send', { to: topo.server, port, bytes: BYTES, timeout: 60_000 }, { timeoutMs: 70_000 });
  const got = (await sink.waitFor((e) => e.event === 'sink', 10_000)) as SinkEvent;
  await sink.stop();
  return { sent, got };
}

function checkDelivered(t: ExecutionContext, sent: { sha256: string }, got: SinkEvent): void {
  t.is(got.bytes, BYTES);
  t.is(got.sha256, sent.sha256, 'the receiver hashed exactly the bytes sent');
}

netnsTest('offloads are on by default: TCP crosses the gateway in super-packets both ways, byte-identical', async (t) => {
  const done = await withGateway({ hosts: 1 }, { forwards: ['tcp 198.51.100.100:8080 to 10.200.0.2:7100'] }, async ({ topo, gw }) => {
    const line = await waitForLog(gw, /gateway up on .*/);
    t.regex(line, /offload csum\+tso4\+uso, /, 'this kernel (6.2+) takes all three levels');

    const { sent, got } = await upload(topo, 7002);
    checkDelivered(t, sent, got);
    t.is(got.remote, topo.external);
    const row = (await table(gw, 'tcp')).find((r) => r.inside === topo.inside[0].addr && r.insidePort === sent.localPort);
    t.truthy(row);
    const segments = BYTES / MSS;
    t.log(`upload: ${row?.packetsOut} packets out for ${segments.toFixed(0)} segments' worth`);
    t.true((row?.packetsOut ?? Infinity) < segments / 4, `super-packets: ${row?.packetsOut} packets out for ${BYTES} bytes`);

    // Download through the port forward: the server sends to the external address.
    const sink = await topo.startServer(topo.inside[0].ns, 'tcp-sink', { port: 7100 });
    const down = await topo.peer(topo.serverNs, 'tcp-send', { to: topo.external, port: 8080, bytes: BYTES, timeout: 60_000 }, { timeoutMs: 70_000 });
    const dgot = (await sink.waitFor((e) => e.event === 'sink', 10_000)) as SinkEvent;
    await sink.stop();
    checkDelivered(t, down, dgot);
    t.is(dgot.remote, topo.server, 'a forward keeps the outside source');
    const frow = (await table(gw, 'tcp')).find((r) => r.inside === topo.inside[0].addr && r.insidePort === 7100 && r.remotePort === down.localPort);
    t.truthy(frow, 'the forwarded connection is listed');
    t.true((frow?.packetsIn ?? Infinity) < segments / 4, `super-packets inbound: ${frow?.packetsIn} packets in for ${BYTES} bytes`);
    const s = await stats(gw);
    t.is(s.drops['bad_checksum'] ?? 0, 0);
  });
  assertTornDown(t, done);
});

netnsTest('--no-offload: the same upload crosses one segment per packet', async (t) => {
  const done = await withGateway({ hosts: 1 }, { extra: ['--no-offload'] }, async ({ topo, gw }) => {
    t.regex(await waitForLog(gw, /gateway up on .*/), /offload off, /);
    const { sent, got } = await upload(topo, 7002);
    checkDelivered(t, sent, got);
    const row = (await table(gw, 'tcp')).find((r) => r.inside === topo.inside[0].addr && r.insidePort === sent.localPort);
    t.true((row?.packetsOut ?? 0) >= BYTES / MSS, `one packet per segment: ${row?.packetsOut}`);
  });
  assertTornDown(t, done);
});

/** Python: receive UDP on PORT until 3 s of silence after the first; print count, sizes and a content check. */
const UDP_RECV = `
import socket, sys, json, os
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root): room for every datagram
s.bind(('0.0.0.0', int(sys.argv[1])))
open(sys.argv[2], 'w').close()
s.settimeout(25.0)  # the first datagram: the sender may start late on a loaded machine
n = 0; sizes = {}; bad = 0; src = None
try:
    while n < 100000:
        d, a = s.recvfrom(65535)
        s.settimeout(3.0)  # then 3 s of silence ends it
        src = a[0]; n += 1
        sizes[len(d)] = sizes.get(len(d), 0) + 1
        if d != bytes([d[0]]) * len(d): bad += 1
except socket.timeout:
    pass
print(json.dumps({'n': n, 'sizes': sizes, 'bad': bad, 'src': src}))
`;

/** Python: send SENDS buffers of SEG*K bytes with UDP_SEGMENT=SEG (the kernel's UDP GSO). */
const UDP_GSO_SEND = `
import socket, sys, time
to, port, sends, seg, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(17, 103, seg)  # SOL_UDP, UDP_SEGMENT
s.connect((to, port))
for i in range(sends):
    # Each datagram of the send is one byte value repeated, so the receiver can check it whole.
    s.send(b''.join(bytes([(i * k + j) % 251 + 1]) * seg for j in range(k)))
    time.sleep(0.005)
print(s.getsockname()[1])
`;

netnsTest('UDP segmentation offload: GSO sends cross as super-packets and arrive as whole datagrams', async (t) => {
  const done = await withGateway({ hosts: 1 }, {}, async ({ topo, gw }) => {
    const ready = `/tmp/${topo.prefix}-udp-ready`;
    const SENDS = 20;
    const SEG = 1200;
    const K = 10;
    try {
      const recv = topo.exec(topo.serverNs, ['python3', '-c', UDP_RECV, '7300', ready], { timeoutMs: 45_000 });
      for (let i = 0; i < 100 && !fs.existsSync(ready); i++) await new Promise((r) => setTimeout(r, 50));
      t.true(fs.existsSync(ready), 'the receiver is bound');
      const snd = await topo.exec(topo.inside[0].ns, ['python3', '-c', UDP_GSO_SEND, topo.server, '7300', String(SENDS), String(SEG), String(K)], { timeoutMs: 20_000 });
      t.is(snd.code, 0, snd.stderr);
      const r = await recv;
      t.is(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout) as { n: number; sizes: Record<string, number>; bad: number; src: string };
      t.is(got.n, SENDS * K, 'every datagram of every send arrived');
      t.deepEqual(got.sizes, { [SEG]: SENDS * K });
      t.is(got.bad, 0, 'each datagram intact');
      t.is(got.src, topo.external);
      const localPort = Number(snd.stdout.trim());
      const row = (await table(gw, 'udp')).find((x) => x.inside === topo.inside[0].addr && x.insidePort === localPort);
      t.truthy(row);
      t.is(row?.packetsOut, SENDS, 'one super-packet per send crossed the TUN');
      t.is(row?.bytesOut, SENDS * (20 + 8 + SEG * K));
    } finally {
      fs.rmSync(ready, { force: true });
    }
  });
  assertTornDown(t, done);
});

netnsTest('hairpinned bulk TCP with offloads: inside → external address → forward → inside, byte-identical', async (t) => {
  const done = await withGateway({ hosts: 2 }, { forwards: ['tcp 198.51.100.100:8080 to 10.200.0.3:7000'] }, async ({ topo, gw }) => {
    const [a, b] = topo.inside;
    const sink = await topo.startServer(b.ns, 'tcp-sink', { port: 7000 });
    const sent = await topo.peer(a.ns, 'tcp-send', { to: topo.external, port: 8080, bytes: BYTES, timeout: 60_000 }, { timeoutMs: 70_000 });
    const got = (await sink.waitFor((e) => e.event === 'sink', 10_000)) as SinkEvent;
    await sink.stop();
    checkDelivered(t, sent, got);
    t.is(got.remote, topo.external, 'B sees the external address');
    const row = (await table(gw, 'tcp')).find((x) => x.inside === a.addr && x.insidePort === sent.localPort);
    t.truthy(row);
    t.true(row?.hairpin);
    t.true((row?.packetsOut ?? Infinity) < BYTES / MSS / 4, `super-packets hairpinned: ${row?.packetsOut}`);
    t.true((await stats(gw)).hairpinned > 0);
  });
  assertTornDown(t, done);
});

/** Python: send BURSTS bursts of PER datagrams of SIZE bytes (4-byte sequence number, then a pattern) on a connected socket. */
const UDP_BURST_SEND = `
import socket, sys, time, struct
to, port, bursts, per, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((to, port))
seq = 0
for b in range(bursts):
    for i in range(per):
        s.send(struct.pack('!I', seq) + bytes((seq * 7 + j) % 256 for j in range(size - 4)))
        seq += 1
    time.sleep(0.01)
print(s.getsockname()[1])
`;

/**
 * Python: a UDP socket bound on PORT (so the kernel sends no port unreachable) and a raw socket
 * that sees each datagram's IPv4 header too; until 3 s of silence, then print what arrived: the
 * sequence numbers in order, bad payloads, the IP IDs' steps, the TTLs.
 */
const UDP_RAW_RECV = `
import socket, sys, json, struct
port = int(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
u.bind(('0.0.0.0', port))
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
r.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
open(sys.argv[2], 'w').close()
r.settimeout(25.0)
seqs = []; bad = 0; ids = []; ttls = set(); src = None
try:
    while len(seqs) < 100000:
        d = r.recv(65535)
        r.settimeout(3.0)
        hl = (d[0] & 15) * 4
        if struct.unpack('!H', d[hl + 2:hl + 4])[0] != port: continue
        p = d[hl + 8:]
        q = struct.unpack('!I', p[:4])[0]
        if p[4:] != bytes((q * 7 + j) % 256 for j in range(len(p) - 4)): bad += 1
        seqs.append(q); ids.append(struct.unpack('!H', d[4:6])[0]); ttls.add(d[8]); src = socket.inet_ntoa(d[12:16])
except socket.timeout:
    pass
steps = sorted(set((ids[i + 1] - ids[i]) % 65536 for i in range(len(ids) - 1)))
u.setblocking(False)
useqs = []
try:
    while True:
        p = u.recv(65535)
        q = struct.unpack('!I', p[:4])[0]
        if p[4:] != bytes((q * 7 + j) % 256 for j in range(len(p) - 4)): bad += 1
        useqs.append(q)
except BlockingIOError:
    pass
print(json.dumps({'seqs': seqs, 'useqs': useqs, 'bad': bad, 'idSteps': steps, 'ttls': sorted(ttls), 'src': src}))
`;

async function udpBurst(t: ExecutionContext, extra: string[]): Promise<{ udpSupers: number; udpCoalesced: number }> {
  let counted = { udpSupers: -1, udpCoalesced: -1 };
  const done = await withGateway({ hosts: 1 }, { extra }, async ({ topo, gw }) => {
    const ready = `/tmp/${topo.prefix}-raw-ready`;
    const BURSTS = 20;
    const PER = 40;
    // Cut super-packets on the way out of the gateway, as a NIC without UDP segmentation
    // offload would: the server's raw socket then sees the datagrams as they cross the wire
    // (a veth would carry the super-packet to the server's UDP layer whole).
    const e = await topo.exec(topo.ns.gw, ['ethtool', '-K', 'wan0', 'tx-udp-segmentation', 'off'], { timeoutMs: 5000 });
    t.is(e.code, 0, e.stderr);
    try {
      const recv = topo.exec(topo.serverNs, ['python3', '-c', UDP_RAW_RECV, '7301', ready], { timeoutMs: 60_000 });
      for (let i = 0; i < 100 && !fs.existsSync(ready); i++) await new Promise((r) => setTimeout(r, 50));
      t.true(fs.existsSync(ready), 'the receiver is bound');
      const snd = await topo.exec(topo.inside[0].ns, ['python3', '-c', UDP_BURST_SEND, topo.server, '7301', String(BURSTS), String(PER), '200'], { timeoutMs: 30_000 });
      t.is(snd.code, 0, snd.stderr);
      const r = await recv;
      t.is(r.code, 0, r.stderr);
      const got = JSON.parse(r.stdout) as { seqs: number[]; useqs: number[]; bad: number; idSteps: number[]; ttls: number[]; src: string };
      const all = Array.from({ length: BURSTS * PER }, (_, i) => i);
      t.deepEqual(got.seqs, all, 'every datagram crossed the wire, in order');
      t.deepEqual(got.useqs, all, 'and reached the socket');
      t.is(got.bad, 0, 'each datagram intact');
      t.deepEqual(got.idSteps, [1], "the sender's consecutive IP IDs, one after another");
      t.is(got.ttls.length, 1, 'one TTL for all');
      t.is(got.src, topo.external);
      const w = ((await stats(gw)) as unknown as { workers: { udpSupers: number; udpCoalesced: number }[] }).workers;
      counted = { udpSupers: w.reduce((a, x) => a + x.udpSupers, 0), udpCoalesced: w.reduce((a, x) => a + x.udpCoalesced, 0) };
      t.log(`${BURSTS * PER} datagrams: ${counted.udpCoalesced} went out in ${counted.udpSupers} UDP super-packet(s)`);
    } finally {
      fs.rmSync(ready, { force: true });
    }
  });
  assertTornDown(t, done);
  return counted;
}

netnsTest('UDP coalescing: bursts of datagrams go out as super-packets and arrive as the same datagrams, in order, with their IP IDs', async (t) => {
  const c = await udpBurst(t, []);
  t.true(c.udpSupers > 0, 'super-packets were written');
  t.true(c.udpCoalesced >= 2 * c.udpSupers, 'each holds two datagrams or more');
});

netnsTest('--no-udp-coalesce: the same bursts, one write per datagram', async (t) => {
  const c = await udpBurst(t, ['--no-udp-coalesce']);
  t.deepEqual(c, { udpSupers: 0, udpCoalesced: 0 });
});
