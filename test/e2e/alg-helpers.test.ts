/**
 * alg-helpers.test.ts — the RTSP, TFTP and IRC DCC protocol helpers' peers through the real
 * gateway in network namespaces: tftp-hpa's client inside fetching from and sending to
 * tftpd-hpa outside (the server answers from a new port of its own: RFC 1350 §4), byte for
 * byte, with the sessions that shows in `masq table`.
 *
 * Skipped, with the reason printed, only when this process cannot create network namespaces.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, table, withGateway } from '../src/gateway/e2e.js';
import { removeScratch, scratchDir, startTftpd, tftp } from '../src/gateway/media.js';

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
