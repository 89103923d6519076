/**
 * http-get.ts — fetch one URL and print the body, for reaching HTTP servers that listen on a
 * network namespace's loopback (masq's metrics, Prometheus's API) from inside that namespace:
 *
 *     ip netns exec NS node dist/src/ops/http-get.js URL [--timeout ms]
 *
 * Contract: exit 0 and the body on stdout for a 2xx answer; exit 1 with the status (or the error)
 * on stderr otherwise. Bounded by the timeout (default 5 s).
 */

const [url, flag, value] = process.argv.slice(2);
if (url === undefined || (flag !== undefined && flag !== '--timeout')) {
  process.stderr.write('usage: http-get URL [--timeout ms]\n');
  process.exit(2);
}
const timeoutMs = value === undefined ? 5_000 : Number(value);

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const body = await res.text();
  if (!res.ok) {
    process.stderr.write(`HTTP ${res.status} ${res.statusText}\n${body}`);
    process.exitCode = 1;
  } else {
    process.stdout.write(body);
  }
} catch (e) {
  process.stderr.write(`${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
  process.exitCode = 1;
}
