/**
 * sweep.ts — fill the masquerade table with many UDP sessions, bounded in count and time:
 * `node sweep.js --to ADDR --sockets S --dports D --sport-base P --dport-base Q`
 * binds S sockets to the fixed source ports P..P+S-1 and sends one 1-byte datagram from each
 * to ADDR:Q..Q+D-1, S × D datagrams in all (each a session at the gateway: the same S
 * mappings, D remotes each). Fixed ports make a second run refresh the same sessions instead
 * of making new ones, so a caller can repeat it to fill in what the gateway dropped.
 * Paced in bursts of 256 with a yield between them; gives up after --timeout ms (default
 * 60000). Prints one JSON line: {"sent":N,"ms":T}. Only for the test topology's namespaces.
 */
import { createSocket, type Socket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    to: { type: 'string' },
    sockets: { type: 'string' },
    dports: { type: 'string' },
    'sport-base': { type: 'string' },
    'dport-base': { type: 'string' },
    timeout: { type: 'string', default: '60000' },
  },
});

function num(name: string, v: string | undefined, lo: number, hi: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`--${name}: expected a whole number from ${lo} to ${hi}, got ${String(v)}`);
  return n;
}

const to = values.to ?? '';
const sockets = num('sockets', values.sockets, 1, 1000);
const dports = num('dports', values.dports, 1, 60000);
const sportBase = num('sport-base', values['sport-base'], 1024, 65535 - sockets);
const dportBase = num('dport-base', values['dport-base'], 1, 65535 - dports);
const timeout = num('timeout', values.timeout, 1, 600_000);
if (sockets * dports > 1_000_000) throw new Error('at most 1,000,000 datagrams');

const t0 = Date.now();
const socks: Socket[] = [];
for (let i = 0; i < sockets; i++) {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(sportBase + i, () => resolve());
  });
  s.on('error', () => {}); // ICMP port unreachable from the far side: expected, ignored
  socks.push(s);
}
const payload = Buffer.from([0x2a]);
let sent = 0;
let inFlight = 0;
outer: for (let d = 0; d < dports; d++) {
  for (let i = 0; i < sockets; i++) {
    inFlight++;
    socks[i]!.send(payload, dportBase + d, to, () => inFlight--);
    sent++;
    if (sent % 256 === 0) {
      await new Promise((r) => setTimeout(r, 1));
      if (Date.now() - t0 > timeout) break outer;
    }
  }
}
while (inFlight > 0 && Date.now() - t0 < timeout) await new Promise((r) => setTimeout(r, 5));
for (const s of socks) s.close();
console.log(JSON.stringify({ sent, ms: Date.now() - t0 }));
