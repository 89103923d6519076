/**
 * help.ts — the help texts of every subcommand (man-page style: synopsis, description,
 * options, examples, exit status).
 */
export const HELP = `masq — IP masquerading (NAT/NAPT) for Linux as a userspace gateway

USAGE
  masq <command> [options]

COMMANDS
  run       run the gateway on a TUN device
  demo      build a demo network in namespaces, run real traffic through masq, print the table
  table     list the masquerade table of a running gateway (--proc for the classic layout)
  flush     remove sessions (all, or --proto P, --host H, --port N)
  rule      list, add, insert, delete or flush masquerade rules, live
  stats     counters at a glance
  status    is a gateway running, and with what
  help      this text, or help for one command: masq help run

Every command takes --help. Exit status: 0 success, 1 operation failed, 2 usage or
configuration error, 3 system error (TUN, permissions, no gateway running).
`;

const RUN = `masq run — masquerade traffic on a TUN device

SYNOPSIS
  masq run --config FILE [flags that override the file]
  masq run --tun NAME --address IP [--address IP ...]
           --masquerade "PROTO from CIDR [PORTS] to CIDR [PORTS]" [--masquerade ...]
           [--accept "PROTO from CIDR to CIDR"] [--forward "tcp|udp EXT:PORT to IN:PORT"]
           [--workers N] [--ports LO-HI] [--port-mode random|preserve|sequential]
           [--filtering endpoint|address|address-port] [--timeouts tcp=2h4m,udp=5m,icmp=60s]
           [--preset classic] [--max-sessions N] [--host-limit N] [--icmp-on-exhaustion]
           [--no-hop-compensation] [--mtu N] [--metrics HOST:PORT] [--control PATH] [-q]

DESCRIPTION
  Attaches to the TUN device NAME (creating it if missing; a persistent device made with
  "ip tuntap add", with or without multi_queue, works too), brings it up and translates
  every IPv4 packet the kernel routes into it. Routing traffic into the device is the
  operator's part: see the README's deployment recipe (masq up applies it).

OPTIONS
  -c, --config FILE     read settings from a TOML file (see masq.toml.sample, docs/CONFIG.md);
                        a flag given as well wins; any rule flag replaces the file's rules.
                        SIGHUP or masq reload re-reads the file: rules and timeouts apply
                        live, the other keys at the next start
  --tun NAME            TUN device (≤ 15 characters)
  --address IP          external address; repeat for a pool (an inside host always gets the
                        same one: paired pooling). Route it into the TUN, do not assign it.
  --masquerade RULE     translate matching outbound traffic (rules are tried in order; first
                        match wins). PROTO is all, tcp, udp or icmp; "any" = 0.0.0.0/0.
  --accept RULE         pass matching traffic untranslated (exclusion)
  --forward FWD         static port forward, e.g. "tcp 198.51.100.10:8080 to 10.200.0.2:80"
  --workers N           translation workers (default 1; one per core is the usual choice)
  --ports LO-HI         external port range (default 1024-65535; classic: 60000-65535)
  --port-mode MODE      random (RFC 6056, default), preserve (keep the inside port when free),
                        sequential (count up, as Linux 2.0 did from 60000)
  --filtering MODE      inbound filtering (RFC 4787): endpoint, address (default), address-port
  --timeouts LIST       tcp (established, default 2h4m), tcp-transitory (4m), udp (5m, ≥ 2m),
                        icmp (60s), fragment (2s)
  --preset classic      1996 values: TCP 15 min, FIN 2 min, UDP 5 min, ports counted from 60000
  --max-sessions N      table capacity across workers (default 1000000; ~161 bytes each)
  --host-limit N        sessions one inside host may hold (default 0: no limit)
  --icmp-on-exhaustion  answer a refused new flow with ICMP unreachable, code 13
  --no-hop-compensation let the gateway count as two hops (the kernel forwards twice)
  --mtu N               set the TUN device's MTU
  --metrics HOST:PORT   serve Prometheus metrics (e.g. 127.0.0.1:9464)
  --control PATH        control socket (default /run/masq/control.sock, mode 0600)
  -q, --quiet           no log lines on stderr

EXAMPLES
  masq run --tun masq0 --address 198.51.100.100 \\
           --masquerade "all from 10.200.0.0/24 to 0.0.0.0/0"
  masq run --tun masq0 --address 198.51.100.10 --masquerade "all from 192.168.1.0/24 to any" \\
           --forward "tcp 198.51.100.10:8080 to 192.168.1.20:80" --workers 2 --preset classic
  masq run --config /etc/masq/masq.toml
  masq run --config /etc/masq/masq.toml --workers 4     # the flag wins over the file

EXIT STATUS
  0 stopped by SIGINT/SIGTERM; 2 bad flags or configuration; 3 TUN or system error.
`;

const TABLE = `masq table — the masquerade table of a running gateway

SYNOPSIS
  masq table [--proc] [--json] [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]
  masq table delete [--proto P] [--host IP] [--port N]

  --proc   the Linux 2.0 /proc/net/ip_masquerade layout: addresses and ports in hex, the
           masq port, Init-seq/Delta/PDelta, Expires in hundredths of a second
  --json   one JSON array of rows

EXAMPLES
  masq table --proto udp
  masq table --proc
`;

const RULE = `masq rule — the masquerade rules of a running gateway, changed live

SYNOPSIS
  masq rule list [--json]
  masq rule add RULE            append
  masq rule insert [N] RULE     insert before rule N (default: first)
  masq rule delete N | RULE
  masq rule flush

RULES
  masquerade <all|tcp|udp|icmp> from <cidr|any> [ports] to <cidr|any> [ports]
  accept     <all|tcp|udp|icmp> from <cidr|any> [ports] to <cidr|any> [ports]
  forward    <tcp|udp> <ext-addr>:<port>[-<port>] to <inside-addr>:<port>[-<port>]

  Sessions no rule allows any more are flushed; all others keep running.

EXAMPLES
  masq rule add masquerade all from 192.168.1.0/24 to 0.0.0.0/0
  masq rule insert 1 accept all from 192.168.1.0/24 to 10.0.0.0/8
  masq rule delete 2
`;

const FLUSH = `masq flush — remove sessions from a running gateway

SYNOPSIS
  masq flush [--proto tcp|udp|icmp] [--host IP] [--port N]

  With no selector every session goes (static port forwards stay). Use it after the
  external address changed, or to drop one host's flows.
`;

const STATS = `masq stats — counters at a glance: packets by direction and protocol, drops by reason,
sessions by protocol and TCP state, port use per external address, per-worker load.

SYNOPSIS
  masq stats [--json] [--control PATH]
`;

const DEMO = `masq demo — masquerading between network namespaces, with real traffic

SYNOPSIS
  masq demo [--workers N] [--keep]

  Builds an inside network (10.200.0.0/24, two hosts), a gateway namespace running masq on a
  TUN device and an outside server (198.51.100.10), runs a telnet-like TCP session, a
  DNS-like UDP query and a ping through the gateway, prints the rule list and the masquerade
  table, and removes everything. Needs root. Takes a few seconds.
`;

const TEXTS: Record<string, string> = { run: RUN, table: TABLE, rule: RULE, flush: FLUSH, stats: STATS, demo: DEMO };

export function helpFor(cmd: string): string | undefined {
  return TEXTS[cmd];
}
