/**
 * poll.ts — a bounded HTTP load on the status page's endpoints, for the packet-path cost
 * benchmark: `node poll.js --url U [--url U2 ...] --interval MS --seconds S`. Every `interval`
 * ms (0: back to back) it GETs each URL once, one request at a time, for S seconds (at most
 * 120), and prints one JSON line: {"requests":N,"ms":T,"scanMs":[p50,max]} (scanMs from the
 * /api/sessions answers). Only ever pointed at the gateway namespace's loopback.
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { url: { type: 'string', multiple: true }, interval: { type: 'string' }, seconds: { type: 'string' } } });
const urls = values.url ?? [];
const interval = Number(values.interval);
const seconds = Number(values.seconds);
if (urls.length === 0 || !urls.every((u) => u.startsWith('http://127.0.0.1:'))) throw new Error('--url http://127.0.0.1:PORT/... (loopback only)');
if (!Number.isInteger(interval) || interval < 0 || interval > 60_000) throw new Error('--interval: 0..60000 ms');
if (!(seconds > 0 && seconds <= 120)) throw new Error('--seconds: 1..120');

const t0 = Date.now();
let requests = 0;
const scans: number[] = [];
while (Date.now() - t0 < seconds * 1000) {
  const round = Date.now();
  for (const u of urls) {
    const res = await fetch(u);
    const body = (await res.json()) as { scanMs?: number };
    if (typeof body.scanMs === 'number') scans.push(body.scanMs);
    requests++;
  }
  const wait = interval - (Date.now() - round);
  if (wait > 0) await new Promise((r) => setTimeout(r, Math.min(wait, seconds * 1000 - (Date.now() - t0) + 1)));
}
scans.sort((a, b) => a - b);
const p50 = scans.length ? scans[Math.floor(scans.length / 2)]! : 0;
const max = scans.length ? scans[scans.length - 1]! : 0;
console.log(JSON.stringify({ requests, ms: Date.now() - t0, scanMs: [Number(p50.toFixed(2)), Number(max.toFixed(2))] }));
