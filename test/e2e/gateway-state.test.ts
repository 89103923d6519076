/**
 * gateway-state.test.ts — `masq run --state FILE` end to end: the gateway is stopped with
 * SIGTERM in the middle of a paced upload, with an idle TCP connection open and a UDP flow
 * mapped, and started again on the same file. The upload completes intact, the idle
 * connection echoes, the UDP flow keeps its external port, and the table shows the same
 * external ports. The restart gap (SIGTERM to the first echo through the new gateway) is
 * measured and logged. Then a truncated state file: refused with its reason, renamed
 * FILE.refused, and the gateway starts empty and translates.
 */

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTopology, leftoverNamespaces, type SinkEvent } from '../src/harness/index.js';
import { netnsSuite } from '../src/harness/suite.js';
import { chat, masqOk, probe, sleep, table, waitForLog } from '../src/gateway/e2e.js';
import { startMasq, type RunningGateway } from '../src/gateway/start.js';
import type { TcpPacedResult, UdpPunchResult } from '../src/gateway/probe.js';

const netnsTest = netnsSuite('gateway state e2e namespace tests');

netnsTest('--state: an upload in progress, an idle TCP connection and a UDP flow survive SIGTERM and restart on their external ports', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'masq-state-e2e-'));
  const file = path.join(dir, 'masq.state');
  const topo = await createTopology({ mode: 'masq', hosts: 2 });
  // A small table (the default is 1,000,000 sessions, 200 MB) keeps each start and save quick.
  const extra = ['--state', file, '--state-interval', '2s', '--max-sessions', '50000'];
  let gw: RunningGateway | null = null;
  try {
    gw = await startMasq(topo, { extra });
    await waitForLog(gw, /state: .* does not exist yet; starting with an empty table/);
    const [h1, h2] = topo.inside;
    const sink = await topo.startServer(topo.serverNs, 'tcp-sink', { port: 7002 });
    await topo.startServer(topo.serverNs, 'tcp-echo', { port: 7000 });
    await topo.startServer(topo.serverNs, 'udp-echo', { port: 7001, reflect: true, quiet: true });

    const idle = await chat(topo, h2.ns, topo.server, 7000);
    t.is((await idle.say('before the restart')).event, 'echo');
    const punch = async (): Promise<string> => {
      const r = await probe<UdpPunchResult>(topo, h1.ns, 'udp-punch', { lport: 40001, to: topo.server, port: 7001, count: 5, interval: 200, grace: 2000 });
      if (r.json === null || !r.json.ok) throw new Error(`udp-punch: ${r.result.stdout}${r.result.stderr}`);
      return r.json.received[0]!.data;
    };
    const udpSeen = await punch();
    t.regex(udpSeen, new RegExp(`^${topo.external.replaceAll('.', '\\.')}:\\d+$`));
    const before = await table(gw);
    const idleRow = before.find((r) => r.proto === 'tcp' && r.inside === h2.addr && r.insidePort === idle.localPort);
    const udpRow = before.find((r) => r.proto === 'udp' && r.inside === h1.addr && r.insidePort === 40001);
    t.truthy(idleRow);
    t.is(`${topo.external}:${udpRow?.externalPort}`, udpSeen);

    // 12 MB at 3 MB/s: about 4 s, so the restart lands in the middle of it.
    const bytes = 12 * 1024 * 1024;
    let finished = false;
    const upload = probe<TcpPacedResult>(topo, h1.ns, 'tcp-paced', { to: topo.server, port: 7002, bytes, rate: 3 * 1024 * 1024, timeout: 60_000 }, 70_000).finally(() => {
      finished = true;
    });
    // Stop once the upload is under way (its session moved data), not before it connected.
    for (let i = 0; i < 80; i++) {
      const rows = await table(gw, 'tcp');
      if (rows.some((r) => r.inside === h1.addr && r.remotePort === 7002 && r.bytesOut > 256 * 1024)) break;
      await sleep(250);
    }
    t.false(finished, 'the upload is running when the gateway is stopped');
    const t0 = Date.now();
    t.is(await gw.stop(), 0, 'SIGTERM: drained, saved, stopped');
    const stopMs = Date.now() - t0;
    const saved = /state: saved (\d+) session\(s\) to \S+: (\d+) bytes in (\d+) ms/.exec(gw.log.join(''));
    t.truthy(saved, `the stop wrote the state file:\n${gw.log.join('')}`);
    t.true(Number(saved?.[1]) >= 3, `sessions saved: ${saved?.[1]}`);
    t.is(fs.statSync(file).mode & 0o777, 0o600);

    gw = await startMasq(topo, { extra });
    const upMs = Date.now() - t0;
    const restored = await waitForLog(gw, /state: restored (\d+) session\(s\) and (\d+) mapping\(s\) from \S+ \(saved [0-9.]+ s ago; (\d+) bytes read in (\d+) ms\)/);
    t.is(Number(/restored (\d+)/.exec(restored)?.[1]), Number(saved?.[1]), 'every saved session restored');
    const echoed = await idle.say('after the restart');
    const gapMs = Date.now() - t0;
    t.is(echoed.event, 'echo', `the idle connection works across the restart: ${JSON.stringify(echoed)}`);
    t.false(finished, 'the upload was still running after the restart');
    t.is(await punch(), udpSeen, 'the UDP flow kept its external port');

    const up = await upload;
    if (up.json === null || !up.json.ok) throw new Error(`upload failed: ${up.result.stdout}${up.result.stderr}`);
    const got = (await sink.waitFor((e) => e.event === 'sink', 10_000)) as SinkEvent;
    t.is(got.bytes, bytes);
    t.is(got.sha256, up.json.sha256, 'the sink received exactly the bytes sent');
    t.is(got.remote, topo.external);
    const after = await table(gw);
    const idleAfter = after.find((r) => r.proto === 'tcp' && r.inside === h2.addr && r.insidePort === idle.localPort);
    t.is(idleAfter?.externalPort, idleRow?.externalPort, 'the idle connection kept its external port');
    t.is(idleAfter?.state, 'established');
    const uploadRow = after.find((r) => r.proto === 'tcp' && r.inside === h1.addr && r.insidePort === up.json!.localPort);
    t.truthy(uploadRow, 'the upload still has its session');
    // Every byte of the upload crossed the gateway before or after the restart: the session's
    // byte counter (IP lengths, so headers too) covers all of it only if the counts survived.
    // (Packets are not a measure here: with offloads a packet is a super-packet of up to 64 KiB.)
    t.true(uploadRow !== undefined && uploadRow.bytesOut >= bytes, `bytes counted before and after: ${uploadRow?.bytesOut} of ${bytes}`);
    const status = JSON.parse(await masqOk(gw, ['status', '--json'])) as { state?: { restored: { sessions: number } | null; refused: unknown } };
    t.is(status.state?.restored?.sessions, Number(saved?.[1]));
    t.is(status.state?.refused, null);
    t.log(`restart: SIGTERM to stopped ${stopMs} ms (state file ${saved?.[2]} bytes written in ${saved?.[3]} ms), to gateway up ${upMs} ms, to the first echo through it ${gapMs} ms; upload of ${bytes} bytes took ${up.json.ms} ms`);
    await sink.stop();

    // A crash (SIGKILL): the periodic save, taken by each worker between two batches, brings
    // the idle connection back.
    type Status = { state?: { saves: number; lastSave: { sessions: number; workerPauseMs: number; bytes: number; ms: number } | null } };
    const saves = async (): Promise<Status> => JSON.parse(await masqOk(gw!, ['status', '--json'])) as Status;
    const first = (await saves()).state?.saves ?? 0;
    for (let i = 0; i < 60 && ((await saves()).state?.saves ?? 0) <= first; i++) await sleep(250);
    const periodic = (await saves()).state?.lastSave;
    t.true(periodic !== null && periodic !== undefined && periodic.sessions >= 2, `a periodic save ran: ${JSON.stringify(periodic)}`);
    gw.proc.kill('SIGKILL');
    await gw.stop();
    gw = await startMasq(topo, { extra });
    await waitForLog(gw, /state: restored \d+ session\(s\)/);
    t.is((await idle.say('after the crash')).event, 'echo', 'the idle connection works after a crash and restart');
    const afterCrash = (await table(gw)).find((r) => r.proto === 'tcp' && r.inside === h2.addr && r.insidePort === idle.localPort);
    t.is(afterCrash?.externalPort, idleRow?.externalPort);
    t.log(`periodic save: ${JSON.stringify(periodic)}`);
    await idle.close();

    // A damaged file: refused, kept aside, the gateway starts empty and works.
    t.is(await gw.stop(), 0);
    const whole = fs.readFileSync(file);
    fs.writeFileSync(file, whole.subarray(0, whole.length >> 1));
    gw = await startMasq(topo, { extra });
    await waitForLog(gw, /state: \S+ is truncated: \d+ of \d+ bytes; starting with an empty table \(the file is kept as \S+\.refused\)/);
    t.true(fs.existsSync(`${file}.refused`));
    t.is((await table(gw)).length, 0, 'the gateway started empty');
    const fresh = await topo.peer(h1.ns, 'tcp-request', { to: topo.server, port: 7000, data: 'fresh' });
    t.is(fresh.reply, 'fresh');
    const st2 = JSON.parse(await masqOk(gw, ['status', '--json'])) as { state?: { refused: { kind: string } | null } };
    t.is(st2.state?.refused?.kind, 'truncated');
  } finally {
    if (gw !== null) await gw.stop();
    await topo.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  t.deepEqual(leftoverNamespaces(topo.prefix), []);
});
