/**
 * gateway-ftp.test.ts — FTP through the real gateway with real programs (Debian vsftpd and
 * lftp) in network namespaces: the protocol-helper seam end to end.
 *
 *  - active mode (`set ftp:passive-mode off`, and `ftp:auto-passive-mode no` so lftp cannot
 *    fall back to passive): lftp inside sends PORT with its inside address; masq rewrites it (vsftpd refuses a PORT that does not name the control
 *    connection's peer), opens the expectation, and vsftpd's data connections from port 20
 *    come in: a 3 MB download and a 2 MB upload byte-identical, the control connection's row
 *    with non-zero Init-seq and Delta (`masq table --json` and `--proc`);
 *  - the same with `--alg none` fails with vsftpd's "Illegal PORT command" (the helper is
 *    what makes it work);
 *  - passive mode from inside (no rewrite needed, none done);
 *  - an inside vsftpd behind `--forward` reached from outside in passive mode, 227 and 229
 *    rewritten;
 *  - two workers, where the data connection's session lives in the control session's
 *    partition and the inside client's packets of it are steered there by the pinned-endpoint
 *    table (transfers repeated until one crossed partitions, bounded);
 *  - `--offload` (partial checksums: the pseudo-header length of a grown segment).
 */
import type { ExecutionContext } from 'ava';
import { join } from 'node:path';
import { PortPlan, parseIPv4 } from '@masq/core';
import { insidePartition } from '@masq/core/testing';
import { netnsSuite } from '../src/harness/suite.js';
import { assertTornDown, masqOk, stats, table, withGateway, type GatewayRun } from '../src/gateway/e2e.js';
import { ftpToolsMissing, lftp, randomFile, sha256, startVsftpd, type FtpServer } from '../src/gateway/ftp.js';

const netnsTest = netnsSuite('FTP end-to-end namespace tests');
const MB = 1024 * 1024;

function tools(t: ExecutionContext): boolean {
  const missing = ftpToolsMissing();
  if (missing !== null) t.fail(missing);
  return missing === null;
}

/** Active-mode download and upload (and `extraGets` more downloads) from the first inside host to vsftpd outside. */
async function activeTransfer(t: ExecutionContext, { topo, gw }: GatewayRun, srv: FtpServer, extraGets = 0, tag = '0'): Promise<void> {
  const h1 = topo.inside[0]!;
  const before = (await stats(gw)).alg.rewrites['ftp'] ?? 0;
  {
    // Fresh names per call (`tag`): vsftpd's anonymous user may not overwrite an upload.
    const down = `down-${tag}.bin`;
    const up = `up-${tag}.bin`;
    randomFile(join(srv.root, 'pub', down), 3 * MB);
    randomFile(join(srv.work, up), 2 * MB);
    const gets = Array.from({ length: extraGets }, (_, i) => `get ${down} -o again-${tag}-${i}.bin`);
    const r = await lftp(topo, h1.ns, topo.server, ['set ftp:passive-mode off', 'set ftp:auto-passive-mode no'], ['cd pub', `get ${down}`, `put ${up} -o ${up}`, ...gets], srv.work);
    t.is(r.code, 0, `lftp: ${r.stdout}${r.stderr}`);
    t.is(sha256(join(srv.work, down)), sha256(join(srv.root, 'pub', down)), '3 MB download byte-identical');
    t.is(sha256(join(srv.root, 'pub', up)), sha256(join(srv.work, up)), '2 MB upload byte-identical');
    const rows = await table(gw, 'tcp');
    const ctl = rows.find((x) => x.inside === h1.addr && x.remotePort === 21);
    if (!ctl) return void t.fail(`no control session in ${JSON.stringify(rows)}`);
    // Each PORT grew by 4 bytes of address (10,200,0,2 → 198,51,100,100) ± the port digits.
    t.not(ctl.initSeq, 0, 'Init-seq recorded');
    t.not(ctl.delta, 0, 'Delta recorded');
    const data = rows.filter((x) => x.inside === h1.addr && x.remotePort === 20 && x.inboundCreated);
    t.is(data.length, 2 + extraGets, 'one data connection from port 20 per transfer, each admitted once');
    const proc = await masqOk(gw, ['table', '--proc']);
    const hex = (ctl.initSeq >>> 0).toString(16).toUpperCase().padStart(8, '0');
    t.regex(proc, new RegExp(`TCP 0AC80002:[0-9A-F]{4} C633640A:0015 [0-9A-F]{4} ${hex} +${ctl.delta} +${ctl.pdelta} `), proc);
    const s = await stats(gw);
    t.is(s.alg.rewrites['ftp']! - before, 2 + extraGets, 'one rewrite per PORT');
    t.deepEqual(s.alg.errors, {});
  }
}

/** Start vsftpd outside, run `body`, clean its files up. */
async function withOutsideServer(run: GatewayRun, body: (srv: FtpServer) => Promise<void>): Promise<void> {
  const srv = await startVsftpd(run.topo, run.topo.serverNs, run.topo.server);
  try {
    await body(srv);
  } finally {
    srv.cleanup();
  }
}

netnsTest('active FTP: lftp PORT through masq to vsftpd, 3 MB down and 2 MB up byte-identical, Init-seq/Delta in the table', async (t) => {
  if (!tools(t)) return;
  assertTornDown(t, await withGateway({ hosts: 1 }, { workers: 1 }, (run) => withOutsideServer(run, (srv) => activeTransfer(t, run, srv))));
});

netnsTest('active FTP with --alg none fails: vsftpd refuses the unrewritten PORT', async (t) => {
  if (!tools(t)) return;
  const done = await withGateway({ hosts: 1 }, { workers: 1, extra: ['--alg', 'none'] }, async ({ topo, gw }) => {
    const srv = await startVsftpd(topo, topo.serverNs, topo.server);
    try {
      randomFile(join(srv.root, 'pub', 'down.bin'), 64 * 1024);
      const r = await lftp(topo, topo.inside[0]!.ns, topo.server, ['set ftp:passive-mode off', 'set ftp:auto-passive-mode no'], ['cd pub', 'get down.bin'], srv.work, 40_000);
      t.not(r.code, 0);
      t.regex(r.stdout + r.stderr, /Illegal PORT command/);
      t.deepEqual((await stats(gw)).alg.enabled, []);
    } finally {
      srv.cleanup();
    }
  });
  assertTornDown(t, done);
});

netnsTest('passive FTP from inside: no rewrite needed and none done', async (t) => {
  if (!tools(t)) return;
  const done = await withGateway({ hosts: 1 }, { workers: 1 }, async ({ topo, gw }) => {
    const srv = await startVsftpd(topo, topo.serverNs, topo.server);
    try {
      randomFile(join(srv.root, 'pub', 'down.bin'), 3 * MB);
      const r = await lftp(topo, topo.inside[0]!.ns, topo.server, ['set ftp:passive-mode on'], ['cd pub', 'get down.bin'], srv.work);
      t.is(r.code, 0, `lftp: ${r.stdout}${r.stderr}`);
      t.is(sha256(join(srv.work, 'down.bin')), sha256(join(srv.root, 'pub', 'down.bin')));
      t.is((await stats(gw)).alg.rewrites['ftp'], 0);
    } finally {
      srv.cleanup();
    }
  });
  assertTornDown(t, done);
});

netnsTest('inside vsftpd behind a port forward, passive: 227 and 229 rewritten, downloads byte-identical', async (t) => {
  if (!tools(t)) return;
  let forward = '';
  // The topology's default addresses: external 198.51.100.100, first inside host 10.200.0.2.
  const run = await withGateway({ hosts: 1 }, { workers: 1, forwards: ['tcp 198.51.100.100:21 to 10.200.0.2:21'] }, async ({ topo, gw }) => {
    const h1 = topo.inside[0]!;
    forward = `${topo.external}:21 → ${h1.addr}:21`;
    t.is(topo.external, '198.51.100.100');
    t.is(h1.addr, '10.200.0.2');
    const srv = await startVsftpd(topo, h1.ns, h1.addr);
    try {
      randomFile(join(srv.root, 'pub', 'down.bin'), 3 * MB);
      for (const [i, epsv] of [[0, 'no'], [1, 'yes']] as const) {
        const r = await lftp(topo, topo.serverNs, topo.external, ['set ftp:passive-mode on', `set ftp:prefer-epsv ${epsv}`], ['cd pub', `get down.bin -o got${i}.bin`], srv.work);
        t.is(r.code, 0, `lftp (prefer-epsv ${epsv}) via ${forward}: ${r.stdout}${r.stderr}`);
        t.is(sha256(join(srv.work, `got${i}.bin`)), sha256(join(srv.root, 'pub', 'down.bin')));
      }
      const s = await stats(gw);
      t.is(s.alg.rewrites['ftp'], 2, 'the 227 and the 229 reply');
      t.deepEqual(s.alg.errors, {});
    } finally {
      srv.cleanup();
    }
  });
  assertTornDown(t, run);
});

netnsTest('two workers: the data connection crosses partitions and still works (pinned endpoint)', async (t) => {
  if (!tools(t)) return;
  const plan = new PortPlan(1024, 65535, 2);
  let crossed = 0;
  const done = await withGateway({ hosts: 1 }, { workers: 2 }, async (run) => {
    // Each round: new control connection (random port, so random partition) and three
    // data connections (random ports): a round crosses with probability 7/8 or more.
    await withOutsideServer(run, async (srv) => {
      for (let round = 0; round < 4 && crossed === 0; round++) {
        await masqOk(run.gw, ['flush']);
        await activeTransfer(t, run, srv, 1, String(round));
        const h1 = parseIPv4(run.topo.inside[0]!.addr)!;
        for (const r of await table(run.gw, 'tcp')) {
          if (r.remotePort !== 20) continue;
          if (insidePartition(6, h1, r.insidePort, 2) !== plan.ownerOf[r.externalPort]) crossed++;
        }
        t.log(`round ${round}: ${crossed} data connection(s) crossed partitions`);
      }
    });
  });
  t.true(crossed > 0, 'some data connection hashed to the other partition than its session');
  assertTornDown(t, done);
});

netnsTest('active FTP with --offload: grown segments with partial checksums', async (t) => {
  if (!tools(t)) return;
  assertTornDown(t, await withGateway({ hosts: 1 }, { workers: 1, extra: ['--offload'] }, (run) => withOutsideServer(run, (srv) => activeTransfer(t, run, srv))));
});
