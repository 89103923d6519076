/**
 * alg-helpers.test.ts — the RTSP and TFTP protocol helpers through the real gateway in
 * network namespaces, each run with and without its helper so that the test proves the helper:
 *  - RTSP: GStreamer's RTSP server outside, ffmpeg inside playing over RTP/UDP
 *    (`-rtsp_transport udp`, no TCP fallback): with `--alg rtsp` the audio arrives and the
 *    table shows the RTP/RTCP sessions on the ports the helper expected; with `--alg none` the
 *    SETUP goes out naming the inside ports and no media arrives.
 *  - TFTP: tftp-hpa's client inside fetching from and sending to tftpd-hpa outside (the server
 *    answers from a new port of its own: RFC 1350 §4), byte for byte: under the default
 *    (address-dependent) filtering with no helper; under address-and-port-dependent filtering
 *    only with `--alg tftp`, and the transfer times out without it.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, masqOk, stats, table, withGateway } from '../src/gateway/e2e.js';
import { playRtsp, removeScratch, scratchDir, startRtspServer, startTftpd, tftp } from '../src/gateway/media.js';

const netnsTest = netnsSuite('protocol helper e2e tests');

netnsTest('TFTP: tftp-hpa get and put through masq, byte-identical; the answers from the server\'s new port reach the client\'s mapping', async (t) => {
  const dir = scratchDir();
  try {
    const root = path.join(dir, 'root');
    const local = path.join(dir, 'local');
    for (const d of [root, local]) mkdirSync(d);
    const served = randomBytes(100_000);
    const sent = randomBytes(70_000);
    writeFileSync(path.join(root, 'served.bin'), served);
    writeFileSync(path.join(local, 'sent.bin'), sent);
    const done = await withGateway({ hosts: 1 }, {}, async ({ topo, gw }) => {
      const h = topo.inside[0];
      await startTftpd(topo, topo.serverNs, topo.server, root);
      let t0 = Date.now();
      const get = await tftp(topo, h.ns, topo.server, `get served.bin ${path.join(local, 'got.bin')}`);
      t.notRegex(get.stdout + get.stderr, /timed out|Error/i);
      t.deepEqual(readFileSync(path.join(local, 'got.bin')), served, 'get: the file arrived byte for byte');
      t.log(`get ${Date.now() - t0} ms`);
      t0 = Date.now();
      const put = await tftp(topo, h.ns, topo.server, `put ${path.join(local, 'sent.bin')} sent.bin`);
      t.notRegex(put.stdout + put.stderr, /timed out|Error/i);
      t.deepEqual(readFileSync(path.join(root, 'sent.bin')), sent, 'put: the file arrived byte for byte');
      t.log(`put ${Date.now() - t0} ms`);

      // Each transfer: one mapping, two sessions: to port 69 (the request), and to the
      // server's transfer port (every later packet).
      const rows = (await table(gw, 'udp')).filter((r) => r.inside === h.addr && r.remote === topo.server);
      const byMapping = new Map<number, number[]>();
      for (const r of rows) byMapping.set(r.externalPort, [...(byMapping.get(r.externalPort) ?? []), r.remotePort]);
      t.is(byMapping.size, 2, JSON.stringify(rows));
      for (const [ext, remotePorts] of byMapping) {
        t.is(remotePorts.length, 2, `mapping ${ext}: ${JSON.stringify(remotePorts)}`);
        t.true(remotePorts.includes(69), `mapping ${ext} sent the request to port 69`);
        t.true(remotePorts.some((p) => p !== 69 && p >= 1024), `mapping ${ext} talked to the server's transfer port`);
      }
    });
    assertTornDown(t, done);
  } finally {
    removeScratch(dir);
  }
});

netnsTest('TFTP with address-and-port filtering: tftp-hpa gets its file only with --alg tftp; without, the answer from the new port is filtered', async (t) => {
  const dir = scratchDir();
  try {
    const root = path.join(dir, 'root');
    const local = path.join(dir, 'local');
    for (const d of [root, local]) mkdirSync(d);
    const served = randomBytes(20_000);
    writeFileSync(path.join(root, 'served.bin'), served);
    for (const alg of ['tftp', 'none']) {
      const got = path.join(local, `got-${alg}.bin`);
      const done = await withGateway({ hosts: 1 }, { extra: ['--filtering', 'address-port', '--alg', alg] }, async ({ topo, gw }) => {
        const h = topo.inside[0];
        await startTftpd(topo, topo.serverNs, topo.server, root);
        const r = await tftp(topo, h.ns, topo.server, `get served.bin ${got}`, 2);
        const s = await stats(gw);
        if (alg === 'tftp') {
          t.notRegex(r.stdout + r.stderr, /timed out|Error/i);
          t.deepEqual(readFileSync(got), served, '--alg tftp: the file arrived byte for byte');
          t.is(s.drops.filtered ?? 0, 0);
        } else {
          t.regex(r.stdout, /Transfer timed out/, '--alg none: the client never hears from the new port');
          t.true((s.drops.filtered ?? 0) >= 1, `the answers were dropped as filtered: ${JSON.stringify(s.drops)}`);
        }
      });
      assertTornDown(t, done);
    }
  } finally {
    removeScratch(dir);
  }
});

netnsTest('RTSP: ffmpeg inside plays GStreamer\'s RTP/UDP stream through masq with --alg rtsp, and receives nothing with --alg none', async (t) => {
  const dir = scratchDir();
  try {
    for (const alg of ['rtsp', 'none']) {
      const done = await withGateway({ hosts: 1 }, { extra: ['--alg', alg] }, async ({ topo, gw }) => {
        const h = topo.inside[0];
        await startRtspServer(topo, topo.serverNs, topo.server, 554);
        const play = await playRtsp(topo, h.ns, `rtsp://${topo.server}:554/test`, dir, { seconds: 0.5, timeoutSec: 2 });
        const udp = (await table(gw, 'udp')).filter((r) => r.inside === h.addr && r.remote === topo.server);
        if (alg === 'rtsp') {
          t.is(play.result.code, 0, play.result.stderr);
          // PCMU is 8000 bytes a second: half a second of it, as ffmpeg cut it.
          t.true(play.bytes >= 3000, `ffmpeg wrote ${play.bytes} bytes of audio`);
          const rtp = udp.find((r) => r.packetsIn >= 3);
          t.truthy(rtp, `an RTP session with media in: ${JSON.stringify(udp)}`);
          t.is(rtp!.insidePort % 2, 0, 'RTP on the even inside port');
          t.is(rtp!.externalPort % 2, 0, 'and on an even external port (parity kept)');
          const helpers = JSON.parse(await masqOk(gw, ['stats', '--json'])) as { alg?: { rewrites?: Record<string, number> } };
          t.is(helpers.alg?.rewrites?.rtsp, 2, `the SETUP and its reply rewritten: ${JSON.stringify(helpers.alg)}`);
        } else {
          t.is(play.bytes, 0, 'no audio without the helper');
          t.regex(play.result.stderr, /timed out|Connection timed out|Invalid data/i);
          t.true(udp.every((r) => r.packetsIn === 0), `no media came in: ${JSON.stringify(udp)}`);
          const s = await stats(gw);
          t.true((s.drops.no_mapping ?? 0) >= 1, `the server's RTP was dropped (no mapping): ${JSON.stringify(s.drops)}`);
        }
      });
      assertTornDown(t, done);
    }
  } finally {
    removeScratch(dir);
  }
});
