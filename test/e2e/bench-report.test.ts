/**
 * bench-report.test.ts — the end-to-end benchmark's own parsing and report (pure functions, no
 * namespaces): sockperf's output read right (a real run's text), and the table's ratios and
 * "added per packet" taken against the kernel NAT of the same round, and the bar (issue 13)
 * with its ratios and verdicts.
 */
import test from 'ava';
import { formatBar, formatTable, parseSockperf, type ModeResult } from '../bench/e2e.bench.js';

// The tail of a real `sockperf ping-pong -t 4 -m 64` through nftables masquerade on this machine.
const SOCKPERF_OUT = `sockperf: == version #3.7-no.git ==
sockperf[CLIENT] send on:sockperf: using recvfrom() to block on socket(s)

[ 0] IP = 198.51.100.10   PORT =  7300 # UDP
sockperf: Warmup stage (sending a few dummy messages)...
sockperf: Starting test...
sockperf: Test end (interrupted by timer)
sockperf: Test ended
sockperf: [Total Run] RunTime=4.001 sec; Warm up time=400 msec; SentMessages=122140; ReceivedMessages=122139
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=3.550 sec; SentMessages=107531; ReceivedMessages=107531
sockperf: ====> avg-latency=16.497 (std-dev=10.733)
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: Summary: Latency is 16.497 usec
sockperf: Total 107531 observations; each percentile contains 1075.31 observations
sockperf: ---> <MAX> observation = 1229.122
sockperf: ---> percentile 99.999 = 1197.006
sockperf: ---> percentile 99.990 =  578.247
sockperf: ---> percentile 99.900 =   62.292
sockperf: ---> percentile 99.000 =   40.015
sockperf: ---> percentile 90.000 =   16.591
sockperf: ---> percentile 75.000 =   15.353
sockperf: ---> percentile 50.000 =   15.143
sockperf: ---> percentile 25.000 =   14.988
sockperf: ---> <MIN> observation =   10.269
`;

test('parseSockperf reads p50, p99, min, avg and the sample count; null without figures', (t) => {
  t.deepEqual(parseSockperf(SOCKPERF_OUT), { p50: 15.143, p99: 40.015, min: 10.269, avg: 16.497, samples: 107531 });
  t.is(parseSockperf('sockperf: ERROR: connect failed'), null);
  // 99.900 and 99.990 must not be taken for 99.000.
  t.is(parseSockperf(SOCKPERF_OUT.replace('percentile 99.000 =   40.015', 'percentile 99.000 =   41.5'))?.p99, 41.5);
});

const cpu = { hostBusy: 1, hostSoftirq: 0.1, gateway: null };
const result = (mode: string, round: number | undefined, p50: number, pps?: number): ModeResult => ({
  mode,
  ...(round === undefined ? {} : { round }),
  metrics: {
    latencyP50Us: { value: p50, detail: '', cpu },
    latencyP99Us: { value: p50 * 3, detail: '', cpu },
    ...(pps === undefined ? {} : { udpPps: { value: pps, detail: '', cpu } }),
  },
});

test('formatTable: ratios and added latency against the kernel NAT of the same round; unmeasured rows left out', (t) => {
  const out = formatTable([result('kernel-nat', 1, 15, 1000), result('masq', 1, 45, 600), result('kernel-nat', 2, 20, 2000), result('masq', 2, 40, 500)]);
  const lines = out.split('\n');
  t.regex(lines[0] ?? '', /kernel-nat #1\s+masq #1\s+kernel-nat #2\s+masq #2/);
  const pps = lines.find((l) => l.startsWith('UDP 64 B delivered')) ?? '';
  t.regex(pps, /600 \(0\.60x\).*500 \(0\.25x\)/);
  const added = lines.find((l) => l.includes('added per packet')) ?? '';
  t.regex(added, /30\.0\s+20\.0\s*$/);
  t.false(out.includes('TCP throughput'), 'a step no column ran is not printed');
});

const m = (value: number) => ({ value, detail: '', cpu });
const bar = (mode: string, tcp: number, pps: number, cps: number, lat: number, lat1: number, round?: number): ModeResult => ({
  mode,
  ...(round === undefined ? {} : { round }),
  metrics: { tcpMbps: m(tcp), udpPps: m(pps), tcpCps: m(cps), latencyP50Us: m(lat), latency1cpuP50Us: m(lat1) },
});

test('formatBar: masq (defaults) against the kernel NAT and the C NAT of the same round, PASS/FAIL per item', (t) => {
  const lines = formatBar([
    bar('kernel-nat', 10_000, 100_000, 5_000, 15, 12),
    bar('cnat', 1_000, 90_000, 4_000, 40, 30),
    // masq-2w is not what the bar means by masq.
    bar('masq-2w', 1, 1, 1, 1_000, 1_000),
    bar('masq', 8_600, 85_000, 3_900, 48, 37),
  ]).split('\n');
  t.regex(lines[0] ?? '', /masq with its default settings/);
  t.is(lines[1], '  PASS  TCP 1 stream ≥ 0.85x kernel-nat: 0.86x kernel-nat');
  // 85,000 is ≥ 0.8x the kernel NAT but below the C NAT: one failed bound fails the item.
  t.is(lines[2], '  FAIL  UDP 64 B delivered ≥ 1.00x cnat and ≥ 0.80x kernel-nat: 0.94x cnat, 0.85x kernel-nat');
  t.is(lines[3], '  FAIL  TCP connections/s ≥ 1.00x cnat and ≥ 0.80x kernel-nat: 0.97x cnat, 0.78x kernel-nat');
  // Latency: at most 1.2x the C NAT's (37/30 = 1.23 fails, 48/40 = 1.20 passes).
  t.regex(lines[4] ?? '', /^ {2}FAIL {2}UDP request\/response p50, client, server and gateway on CPU 0 ≤ 1\.20x cnat: 1\.23x cnat$/);
  t.regex(lines[5] ?? '', /^ {2}PASS {2}UDP request\/response p50, not pinned .* ≤ 1\.20x cnat: 1\.20x cnat$/);
});

test('formatBar: the stream shows the C NAT with offloads beside masq for reference, without a bound, when the round measured it', (t) => {
  const lines = formatBar([bar('kernel-nat', 10_000, 100_000, 5_000, 15, 12), bar('cnat-offload', 6_200, 1, 1, 1, 1), bar('masq', 5_700, 85_000, 3_900, 48, 37)]).split('\n');
  t.is(lines[1], '  FAIL  TCP 1 stream ≥ 0.85x kernel-nat: 0.57x kernel-nat; for reference, cnat-offload on the same TUN: 0.62x kernel-nat');
  // Other items have no reference mode: cnat-offload's figures there change nothing.
  t.is(lines[2], '  n/a   UDP 64 B delivered ≥ 1.00x cnat and ≥ 0.80x kernel-nat: cnat not measured, 0.85x kernel-nat');
});

test('formatBar: a mode or step not measured gives n/a and says which; rounds are kept apart', (t) => {
  const out = formatBar([bar('kernel-nat', 10, 10, 10, 10, 10, 1), bar('masq', 9, 9, 9, 9, 9, 1), bar('cnat', 10, 10, 10, 10, 10, 2), bar('masq', 9, 9, 9, 9, 9, 2)]);
  const lines = out.split('\n');
  t.regex(lines[0] ?? '', /round 1/);
  t.is(lines[1], '  PASS  TCP 1 stream ≥ 0.85x kernel-nat: 0.90x kernel-nat');
  t.is(lines[2], '  n/a   UDP 64 B delivered ≥ 1.00x cnat and ≥ 0.80x kernel-nat: cnat not measured, 0.90x kernel-nat');
  t.regex(lines[6] ?? '', /round 2/);
  t.is(lines[7], '  n/a   TCP 1 stream ≥ 0.85x kernel-nat: kernel-nat not measured');
});
