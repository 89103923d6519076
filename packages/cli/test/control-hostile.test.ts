/**
 * control-hostile.test.ts — the control socket under bad requests: it is 0600 in a directory
 * that must be ours and not writable by others; an oversized request line gets an error and
 * the connection is closed; garbage, a wrong version, an unknown command and a huge number of
 * requests get an error each; the server keeps answering throughout.
 */
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Gateway } from '@masq/workers';
import { startControlServer, MAX_REQUEST } from '../src/control.js';

/** Send raw bytes, collect the answer lines until the server closes or `lines` have come. */
function exchange(sock: string, data: string | Buffer, lines: number, timeoutMs = 5_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let buf = '';
    const done = (): void => {
      clearTimeout(timer);
      c.destroy();
      resolve(buf.split('\n').filter((l) => l !== ''));
    };
    const timer = setTimeout(done, timeoutMs);
    c.on('data', (d) => {
      buf += d.toString();
      if (buf.split('\n').filter((l) => l !== '').length >= lines) done();
    });
    c.on('end', done);
    c.on('error', (e) => (buf === '' ? reject(e) : done()));
    c.write(data);
  });
}

const stand = { partitions: 1, tun: { name: 'masq0' }, config: { externals: [] }, startedAt: Date.now(), state: null } as unknown as Gateway;

test('the control socket refuses bad requests with an error each and keeps serving', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'masq-ctl-'));
  const server = await startControlServer(stand, path.join(dir, 'c.sock'));
  try {
    t.is(fs.statSync(server.path).mode & 0o777, 0o600);
    const bad = await exchange(server.path, 'not json\n{"v":1}\n{"v":9,"id":2,"cmd":"status"}\n{"v":1,"id":3,"cmd":"no-such"}\n[]\nnull\n', 6);
    t.is(bad.length, 6);
    for (const l of bad) t.false((JSON.parse(l) as { ok: boolean }).ok, l);
    t.regex(bad[2]!, /protocol version 9 not supported/);
    // 1 MiB and more without a newline: an error, then the server hangs up.
    const big = await exchange(server.path, Buffer.alloc(MAX_REQUEST + 10, 0x61), 1);
    t.is(big.length, 1);
    t.regex(big[0]!, /request longer than 1048576 bytes/);
    // Many requests at once, each answered.
    const many = await exchange(server.path, '{"v":1,"id":1,"cmd":"bogus"}\n'.repeat(500), 500, 20_000);
    t.is(many.length, 500);
    // Still serving.
    const ok = await exchange(server.path, '{"v":1,"id":7,"cmd":"status"}\n', 1);
    t.like(JSON.parse(ok[0]!), { id: 7, ok: true });
  } finally {
    await server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the control socket is not served from a directory others can write or another user owns', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'masq-ctl-'));
  try {
    fs.chmodSync(dir, 0o777);
    await t.throwsAsync(startControlServer(stand, path.join(dir, 'c.sock')), { message: /is writable by group or others and not sticky \(mode 777\)/ });
    fs.chmodSync(dir, 0o1777);
    const server = await startControlServer(stand, path.join(dir, 'c.sock'));
    await server.close();
    if (process.getuid?.() === 0) {
      fs.chmodSync(dir, 0o700);
      fs.chownSync(dir, 65534, 65534);
      await t.throwsAsync(startControlServer(stand, path.join(dir, 'c.sock')), { message: /belongs to uid 65534, not to this user \(0\)/ });
    }
    t.pass();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
