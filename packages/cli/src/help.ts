/**
 * help.ts — the help texts of every subcommand (man-page style: synopsis, description,
 * options, examples, exit status).
 */
export const HELP = `masq — IP masquerading (NAT/NAPT) for Linux as a userspace gateway

USAGE
  masq <command> [options]

COMMANDS
  run       run the gateway on a TUN device (flags, or --config masq.toml)
  up        route a LAN's traffic through the gateway's TUN (the routing recipe)
  down      remove that routing again
  reload    re-read the running gateway's config file: rules and timeouts, live
  events    a live stream of session create/destroy events (like conntrack -E)
  demo      build a demo network in namespaces, run real traffic through masq, print the table
  table     list the masquerade table of a running gateway (--proc, --watch)
  flush     remove sessions (all, or --proto P, --host H, --port N)
  rule      list, add, insert, delete or flush masquerade rules, live
  stats     counters at a glance
  status    is a gateway running, and with what
  debug     crash-worker N: fault injection for testing the supervisor
  help      this text, or help for one command: masq help run

Every command takes --help (masq help CMD is the same). Exit status: 0 success, 1 the
operation failed (the gateway refused it), 2 usage or configuration error (nothing was
done), 3 system error (TUN, permissions, no gateway running, another gateway on the TUN),
130 interrupted by Ctrl-C (except where Ctrl-C is the normal end: run, events, table --watch).
More: docs/CLI.md (commands, control protocol), docs/CONFIG.md (masq.toml, reload).
`;

const CLIENT_EXIT = `EXIT STATUS
  0 done; 1 the gateway refused the request; 2 usage error (unknown option, missing value,
  stray argument, bad address, port or rule): nothing was sent; 3 no gateway answers on the
  control socket, or permission denied on it; 130 interrupted (Ctrl-C) before the answer came.`;

const CONTROL_OPT = `  --control PATH   the gateway's control socket (default: $MASQ_CONTROL, else
                   /run/masq/control.sock)`;

const RUN = `masq run — masquerade traffic on a TUN device

SYNOPSIS
  masq run --config FILE [flags that override the file]
  masq run --tun NAME [--outside-tun NAME] --address IP [--address IP ...]
           --masquerade "PROTO from CIDR [PORTS] to CIDR [PORTS]" [--masquerade ...]
           [--accept "PROTO from CIDR to CIDR"] [--forward "tcp|udp EXT:PORT to IN:PORT"]
           [--workers N] [--ports LO-HI] [--port-mode random|preserve|sequential]
           [--filtering endpoint|address|address-port] [--timeouts tcp=2h4m,udp=5m,icmp=60s]
           [--preset classic] [--max-sessions N] [--host-limit N] [--host-port-limit N]
           [--no-icmp-on-exhaustion]
           [--no-hop-compensation] [--mtu N] [--no-offload] [--io-thread-reads] [--no-steering]
           [--no-udp-coalesce] [--no-park-read] [--no-io-uring]
           [--sched batch|normal]
           [--alg ftp,rtsp,tftp,irc|none] [--metrics HOST:PORT] [--control PATH]
           [--state FILE [--state-interval DUR]] [-q]
           [--up --lan IF [--wan IF] [--table N] [--rule-priority N]]

DESCRIPTION
  Attaches to the TUN device NAME (creating it if missing; a persistent device made with
  "ip tuntap add", with or without multi_queue, works too), brings it up and translates
  every IPv4 packet the kernel routes into it. Routing traffic into the device is the
  operator's part: --up applies the README's recipe at every start (the TUN is new after a
  restart and the routes into it are gone with the old one), or run masq up after the start.
  One gateway per device: a second masq run on the same TUN exits 3 naming the running one
  (the lock is released by the kernel when a gateway dies, even by SIGKILL).

OPTIONS
  -c, --config FILE     read settings from a TOML file (see masq.toml.sample, docs/CONFIG.md);
                        a flag given as well wins; any rule flag replaces the file's rules.
                        SIGHUP or masq reload re-reads the file: rules and timeouts apply
                        live, the other keys at the next start
  --tun NAME            TUN device (≤ 15 characters)
  --outside-tun NAME    a second TUN device (single-queue) for the outside side: route the
                        external addresses into it instead of --tun (--up and masq up do).
                        Everything read from it is inbound whatever its source (RFC 4787
                        REQ-7). Without it, the direction of a packet is guessed from its
                        source: an outside host whose address a masquerade rule covers is
                        taken for an inside host (docs/CONFORMANCE.md)
  --address IP          external address; repeat for a pool of up to 16 (an inside host
                        always gets the same one: paired pooling). Route it into the TUN, do
                        not assign it.
  --masquerade RULE     translate matching outbound traffic (rules are tried in order; first
                        match wins). PROTO is all, tcp, udp or icmp; "any" = 0.0.0.0/0.
  --accept RULE         pass matching traffic untranslated (exclusion)
  --forward FWD         static port forward, e.g. "tcp 198.51.100.10:8080 to 10.200.0.2:80"
  --workers N           translation workers (default: one per core the machine offers)
  --ports LO-HI         external port range (default 1024-65535; classic: 60000-65535);
                        ports below 1024 go only to source ports below 1024
  --port-mode MODE      random (default: RFC 6056 keyed hash with a secret drawn at start,
                        inside port's parity kept), preserve (keep the inside port when
                        free), sequential (count up, as Linux 2.0 did from 60000)
  --filtering MODE      inbound filtering (RFC 4787): endpoint, address (default), address-port
  --timeouts LIST       tcp (established, default 2h4m, ≥ 2h4m), tcp-opening (SYN seen one
                        way, 4m), tcp-closing (FIN both ways or RST, 4m), tcp-transitory
                        (both), udp (5m, ≥ 2m), icmp (60s, ≥ 60s), fragment (2s),
                        unanswered (30s, 1s to udp: a session an inbound packet created,
                        until the inside host answers; inbound packets never extend it)
  --preset classic      1996 values: TCP 15 min, FIN 2 min, UDP 5 min, ports counted from 60000
                        (TCP 15 min is below RFC 5382's 2h4m: docs/CONFORMANCE.md)
  --max-sessions N      table capacity across workers (default 1000000; ~200 bytes each)
  --host-limit N        sessions one inside host may hold (RFC 6888 REQ-5; default 65536;
                        0: no limit)
  --host-port-limit N   external ports (mappings) one inside host may hold (RFC 6888 REQ-4;
                        default 16384, a quarter of an address's ports; 0: no limit)
  --no-icmp-on-exhaustion
                        drop a refused new flow silently; by default a new outbound flow
                        refused for lack of resources or by policy (ports exhausted, a
                        per-host limit, a full table) is answered with ICMP unreachable
                        code 13 from its external address, at most 100/s per worker
                        (RFC 5508 REQ-8). --icmp-on-exhaustion (the default) is accepted
  --no-hop-compensation let the gateway count as two hops (the kernel forwards twice)
  --mtu N               set the TUN device's MTU
  --no-offload          run the TUN without offloads: one packet of at most the MTU per
                        read and write. By default offloads are on (IFF_VNET_HDR with
                        checksum offload, TSO4, and UDP segmentation offload where the
                        kernel has it, Linux 6.2+): TCP and UDP cross the TUN in super-
                        packets of up to 64 KiB with partial checksums, which the kernel
                        finishes and cuts up on the way out. A level the kernel refuses
                        falls back (csum+tso4+uso, csum+tso4, off) with one log line; the
                        start line says which level runs. --offload (the default) is
                        accepted
  --io-thread-reads     let the I/O thread read every packet and hand each to its worker
                        over a ring, as before run to completion. By default each worker
                        reads its own TUN queue, translates the packets it owns and writes
                        them back on that queue, handing over only those that landed on
                        another worker's queue (the kernel steers a flow to the queue that
                        last wrote it: its owner's). For comparisons; a single-queue
                        persistent device with several workers always reads this way
  --no-steering         with several workers reading their own queues, let the kernel's
                        automatic flow steering choose each packet's queue. By default masq
                        attaches its partition function to the TUN as an eBPF steering
                        program (TUNSETSTEERINGEBPF), so a flow's packets reach the queue of
                        the worker that owns the flow from its first packet on and are not
                        handed over; if the kernel refuses the program masq says so in one
                        log line and runs as with --no-steering. The start line says which
                        ("eBPF steering" or "kernel steering"). For comparisons
  --no-udp-coalesce     write every UDP datagram to the TUN on its own. By default, with
                        UDP segmentation offload (offload csum+tso4+uso), datagrams of one
                        flow that a worker writes in one batch, with the same size and
                        consecutive IP IDs, go to the TUN as one UDP super-packet (one
                        system call), which the kernel cuts back into the same datagrams,
                        byte for byte, on the way out (as Linux's own UDP GRO forwarding
                        does). masq_worker_udp_coalesced_total counts them. For comparisons
  --no-park-read        without io_uring: let an idle worker wait in poll(2) for its TUN
                        queue, then read it. By default (x86-64) it waits in read(2) on the
                        queue itself, so a packet that arrives on an idle gateway costs one
                        read and one write, as in a plain C forwarder; what else wakes the
                        worker (a hand-off from another worker, a control message)
                        interrupts the read with a signal (SIGRTMIN+8). For comparisons
  --no-io-uring         read and write each worker's TUN queue with read(2) and write(2), a
                        system call per packet. By default (Linux 6.7+) each worker's queue
                        goes through one io_uring: the kernel reads packets into slots masq
                        gave it (a multishot read), and one system call writes a batch and
                        takes what arrived meanwhile; an idle worker sleeps in that same
                        call. Where the kernel refuses io_uring (older, or disabled by
                        kernel.io_uring_disabled or seccomp), one log line says so and
                        masq reads as with this flag. For comparisons
  --sched POLICY        Linux scheduling policy of the packet threads: batch (default:
                        SCHED_BATCH, a packet's arrival does not preempt the program that
                        sent it, so packets gather into batches), normal (SCHED_OTHER), or
                        per thread kind: "io=batch,workers=normal"
  --alg LIST            protocol helpers (ALGs) for new sessions, comma-separated names, or
                        "none" to turn all off (default: ftp). ftp: TCP 21; rewrites PORT
                        and EPRT from inside clients, 227 and 229 replies from inside
                        servers behind a --forward, with sequence deltas, and admits the
                        one data connection. rtsp: TCP 554; rewrites client_port in SETUP
                        (and back in the reply) and admits the server's RTP and RTCP.
                        tftp: UDP 69; admits the server's answer from its new port to the
                        client's mapping. irc: TCP 6667; rewrites DCC SEND/CHAT offers and
                        admits one connection from any peer. An unknown name is refused
                        (exit 2) with the list of known ones. Other server ports: [alg_ports]
                        in the config file (ftp = [21, 2121]). A reload applies a changed list
  --metrics HOST:PORT   serve Prometheus metrics at http://HOST:PORT/metrics and a read-only
                        status page at http://HOST:PORT/ (docs/STATUS.md) (default
                        127.0.0.1:9464; "off" disables; 0.0.0.0 must be named to expose it)
  --control PATH        control socket (default: $MASQ_CONTROL, else the config file's
                        control, else /run/masq/control.sock; mode 0600)
  --state FILE          keep the masquerade table across restarts: written to FILE at stop
                        (SIGTERM/SIGINT) and every --state-interval while running
                        (atomically: FILE.tmp, fsync, rename), read back at start. Sessions
                        resume on the same external ports with the idle time they had left.
                        A damaged file, or one saved with other --workers, --ports,
                        addresses or --max-sessions, is refused with the reason, renamed
                        FILE.refused, and the gateway starts empty
  --state-interval DUR  how often to write FILE while running (default 60s; 0: only at stop)
  -q, --quiet           print nothing: no log lines, no "gateway up" line (errors still go
                        to stderr)
  --up                  apply the routing recipe (as masq up) once the TUN exists, before the
                        control socket answers; at stop remove the routes into the TUN and
                        proxy ARP, and keep the iif rule and its unreachable route, so that
                        inside traffic is refused (fail closed) until a gateway runs again
                        (masq down removes those too). Idempotent: safe at every restart
  --lan IF              with --up: the inside interface or bridge
  --wan IF              with --up: the outside interface (proxy ARP for the addresses)
  --table N             with --up: routing table for LAN traffic (default 100)
  --rule-priority N     with --up: priority of the iif rule (default 100)

  Log lines (stderr) start with the local date and time, except when stderr is the systemd
  journal, which stamps them itself.

EXAMPLES
  masq run --tun masq0 --address 198.51.100.100 \\
           --masquerade "all from 10.200.0.0/24 to 0.0.0.0/0"
  masq run --tun masq0 --address 198.51.100.10 --masquerade "all from 192.168.1.0/24 to any" \\
           --forward "tcp 198.51.100.10:8080 to 192.168.1.20:80" --workers 2 --preset classic
  masq run --config /etc/masq/masq.toml
  masq run --config /etc/masq/masq.toml --workers 4     # the flag wins over the file
  masq run --config /etc/masq/masq.toml --up --lan br-lan --wan eth1
  masq run --tun masq0 --outside-tun masq1 --address 198.51.100.100 \
           --masquerade "all from 10.0.0.0/8 to any" --up --lan br-lan --wan eth1
                        # an outside network inside 10.0.0.0/8 stays outside (RFC 4787 REQ-7)

EXIT STATUS
  0 stopped by SIGINT/SIGTERM (Ctrl-C); 2 bad flags or configuration (nothing was started);
  3 TUN or system error: another gateway on the TUN or the control socket, the TUN refused,
  a command of --up failed.
`;

const TABLE = `masq table — the masquerade table of a running gateway

SYNOPSIS
  masq table [--proc | --json] [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]
  masq table --watch [--interval 1s] [--proc] [selectors]
  masq table --expectations [--json] [--control PATH]
  masq table delete [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]

DESCRIPTION
  One line per session: protocol, inside, external and remote address:port, TCP state ("*"
  marks a hairpinned session), idle time, time to expiry, packets and bytes each way.
  The readable table ends with the protocol helpers' pending expectations, if any: a
  related flow (an FTP data connection) that one remote address may open to an external
  port within 60 s, once; it then shows as an ordinary session.
  "delete" removes the sessions the selectors match (all of them without a selector), like
  masq flush. A closed pipe (masq table --watch | head) ends the command quietly.
  The gateway reads the table from shared memory, not on its translation workers, so
  listing even hundreds of thousands of sessions does not hold up forwarding.

OPTIONS
  --proc           the Linux 2.0 /proc/net/ip_masquerade layout: addresses and ports in hex,
                   the masq port, Init-seq/Delta/PDelta (the sequence offsets of a connection
                   whose payload a helper resized, e.g. an FTP PORT rewrite), Expires in
                   hundredths of a second
  --json           one JSON array of rows
  --expectations   only the expectations (with --json: a JSON array of them)
  -w, --watch      redraw the table until Ctrl-C (on a terminal: in place)
  --interval DUR   how often with --watch (default 1s; at least 100ms; 500ms, 2s, 2 = 2s)
  --proto P        only sessions of protocol P (tcp, udp or icmp)
  --host IP        only sessions with IP on any side
  --port N         only sessions with port N on any side
${CONTROL_OPT}

EXAMPLES
  masq table --proto udp
  masq table --proc
  masq table --watch --interval 2s --host 10.200.0.2
  masq table delete --host 10.200.0.7 --port 443

${CLIENT_EXIT}  --watch ends with 0 on Ctrl-C.
`;

const RULE = `masq rule — the masquerade rules of a running gateway, changed live

SYNOPSIS
  masq rule list [--json]
  masq rule add RULE            append
  masq rule insert [N] RULE     insert before rule N (default: first)
  masq rule delete N | RULE
  masq rule flush
  (each takes --control PATH)

RULES
  masquerade <all|tcp|udp|icmp> from <cidr|any> [ports] to <cidr|any> [ports]
  accept     <all|tcp|udp|icmp> from <cidr|any> [ports] to <cidr|any> [ports]
  forward    <tcp|udp> <ext-addr>:<port>[-<port>] to <inside-addr>:<port>[-<port>]

DESCRIPTION
  Sessions no rule allows any more are flushed; all others keep running. These edits live in
  the running gateway only: masq reload (or SIGHUP) replaces them with the config file's rules.
  A rule is checked before it is sent (a syntax error shows its column). After add and insert
  the gateway lints the new rule list as it lints a config file and the warnings are printed
  ("never matches: rule 1 ... forwards all of its ports first"); the change is made anyway.

OPTIONS
  --json           rule list: the rules as a JSON array of strings
${CONTROL_OPT}

EXAMPLES
  masq rule add masquerade all from 192.168.1.0/24 to 0.0.0.0/0
  masq rule insert 1 accept all from 192.168.1.0/24 to 10.0.0.0/8
  masq rule delete 2

${CLIENT_EXIT}
`;

const FLUSH = `masq flush — remove sessions from a running gateway

SYNOPSIS
  masq flush [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]

DESCRIPTION
  With no selector every session goes (static port forwards stay). Use it after the
  external address changed, or to drop one host's flows. A flushed TCP connection cannot
  resume: its next segment is not a SYN and is dropped. Selectors are checked before
  anything is sent: a misspelt option (--hots) or a bad value flushes nothing.

OPTIONS
  --proto P        only sessions of protocol P (tcp, udp or icmp)
  --host IP        only sessions with IP on any side (inside, external or remote)
  --port N         only sessions with port N on any side
${CONTROL_OPT}

EXAMPLES
  masq flush --host 10.200.0.7
  masq flush --proto udp --port 53

${CLIENT_EXIT}
`;

const STATS = `masq stats — counters of a running gateway at a glance

SYNOPSIS
  masq stats [--json] [--control PATH]

DESCRIPTION
  Packets by direction and protocol, bytes, live sessions by protocol against the limit,
  live mappings (an inside endpoint's external address and port, shared by its sessions;
  port forwards included), TCP sessions by state, external ports in use per address,
  drops by reason (only reasons that occurred), hairpinned packets, translated ICMP
  errors, and per worker its packets and sessions; where workers read their own queues,
  also what each read and handed over, its io_uring passes and its packet slots (free,
  with the kernel, of its share: on an idle gateway the first two add up to the share),
  and the slots a restarted worker took back from its dead predecessor. The counters run
  from the gateway's start.

OPTIONS
  --json           one JSON object (the control protocol's answer; for scripts)
${CONTROL_OPT}

EXAMPLES
  masq stats
  masq stats --json | jq .drops

${CLIENT_EXIT}
`;

const STATUS = `masq status — is a gateway running, and with what

SYNOPSIS
  masq status [--json] [--control PATH]

DESCRIPTION
  Asks the gateway on the control socket for its pid, uptime, TUN device, number of
  translation workers, external addresses, control protocol version and config file (none
  when it was started from flags only: then masq reload is refused), and its runtime: the
  node version and the V8 flag masq set (a larger inlining budget for the packet path;
  jit null: V8's own, under MASQ_JIT_DEFAULTS=1 or node's own flag).

OPTIONS
  --json           one JSON object {pid, tun, workers, externals, uptimeMs, version, config,
                   node, jit}
${CONTROL_OPT}

EXAMPLES
  masq status
  masq status --control /run/masq/lab.sock

${CLIENT_EXIT}
`;

const DEBUG = `masq debug — fault injection for testing the supervisor

SYNOPSIS
  masq debug crash-worker N [--control PATH]

DESCRIPTION
  Makes translation worker N's thread die (N from 0; masq status shows how many there are).
  The supervisor restarts it on its partition of the table, which lives in shared memory, so
  no session is lost. Packets for that partition are queued or dropped meanwhile.

EXAMPLES
  masq debug crash-worker 0

${CLIENT_EXIT}
`;

const DEMO = `masq demo — masquerading between network namespaces, with real traffic

SYNOPSIS
  masq demo [--workers N]

DESCRIPTION
  Builds an inside network (10.200.0.0/24, two hosts), a gateway namespace running masq on a
  TUN device and an outside server (198.51.100.10), runs a telnet-like TCP session, a
  DNS-like UDP query, a connection from outside through a port forward and a ping through the
  gateway, prints the rule list and the masquerade table, and removes everything. Needs root.
  Takes a few seconds.

OPTIONS
  --workers N      translation workers of the demo gateway (default 1)

EXAMPLES
  ./scripts/demo               (as root: set-up, then this)
  masq demo --workers 2

EXIT STATUS
  0 done; 1 a step failed (its error is printed; everything is removed); 2 usage error;
  3 not root.
`;

const UP = `masq up — steer a LAN's forwarded IPv4 traffic through the masq TUN device

SYNOPSIS
  masq up --lan IF --tun NAME --address IP [--address IP ...] [--wan IF] [--table N]
          [--outside-tun NAME] [--rule-priority N] [--config FILE] [--netns NS] [-n|--dry-run]

DESCRIPTION
  Applies the routing recipe, printing each command as it runs it: rp_filter off, a policy
  rule "iif LAN lookup TABLE" with a fail-closed unreachable default, the TUN up with a
  default route in TABLE, a /32 route into the TUN per external address (routed, never
  assigned), proxy ARP for them on the WAN interface when --wan is given, and forwarding on.
  Idempotent: what is already there is reported as "already present". The TUN (and the
  outside TUN, with --outside-tun) must exist (start masq run with the same --tun and
  --outside-tun first, or make persistent ones: ip tuntap add dev NAME mode tun); without
  them the LAN side is prepared and masq up exits 3, naming the missing device.

OPTIONS
  --lan IF              inside interface or bridge
  --tun NAME            the masq TUN device (or tun from --config)
  --outside-tun NAME    the gateway's outside TUN (masq run --outside-tun; or outside_tun
                        from --config): the external addresses are routed into it instead,
                        with the same settings as the TUN
  --address IP[/N]      external address or block (or addresses from --config)
  --wan IF              outside interface: answer ARP for the external addresses on it
  --table N             routing table for LAN traffic (default 100; 253-255 are the kernel's)
  --rule-priority N     priority of the iif rule (default 100)
  -c, --config FILE     take tun and addresses from the masq run config file
  --netns NS            run every command inside network namespace NS
  -n, --dry-run         print the commands, run nothing

EXAMPLES
  masq up --lan br-lan --tun masq0 --address 198.51.100.100 --wan eth1 --dry-run
  masq up --lan br-lan --wan eth1 --config /etc/masq/masq.toml      (as root)

EXIT STATUS
  0 applied; 1 a command failed (the ones before it stay applied; run again once fixed);
  2 usage error; 3 not root, an interface is missing, or the TUN does not exist yet.
`;

const DOWN = `masq down — remove the routing that masq up applied

SYNOPSIS
  masq down --lan IF --tun NAME --address IP [...] [--wan IF] [--table N] [--rule-priority N]
            [--outside-tun NAME] [--config FILE] [--netns NS] [-n|--dry-run]

  Deletes the external routes, the TUN default route, the iif rule and the fail-closed route,
  and turns proxy ARP off on --wan. What is already gone is reported as "already gone".
  ip_forward, rp_filter and disable_ipv6 are left alone (their earlier values are unknown).
  Give the same options as to masq up.

EXAMPLES
  masq down --lan br-lan --tun masq0 --address 198.51.100.100 --wan eth1
  masq down --lan br-lan --config /etc/masq/masq.toml --dry-run

EXIT STATUS
  0 done; 1 a command failed; 2 usage error; 3 not root or an interface is missing.
`;

const RELOAD = `masq reload — re-read the running gateway's --config file

SYNOPSIS
  masq reload [--json] [--control PATH]
  kill -HUP <pid of masq run>          (the same; the outcome goes to masq run's log)

DESCRIPTION
  The gateway re-reads its config file and merges the flags it was started with over it,
  as at start. Changes to rules and [timeouts] apply live, with no session lost: sessions
  that no rule allows any more are flushed, all others keep their mappings. New timeouts
  apply to sessions from their next packet on. Other keys (tun, outside_tun, addresses,
  workers, ports, port_mode, filtering, max_sessions, host_limit, host_port_limit, icmp_on_exhaustion,
  hop_compensation, mtu, offload, sched, metrics, control, state, state_interval) are
  reported as needing a restart and are not applied. A file with an error changes nothing: the error (file:line:column) is
  the answer. Rules changed live with
  masq rule are replaced by the file's.

EXAMPLES
  masq reload
  masq reload --json

EXIT STATUS
  0 reloaded; 1 the gateway refused (an error in the file, or it was started without
  --config); 2 usage error; 3 no gateway running or permission denied.
`;

const EVENTS = `masq events — a live stream of masquerade table events, like conntrack -E

SYNOPSIS
  masq events [--json] [--proto tcp|udp|icmp] [--host IP] [--port N] [--control PATH]

DESCRIPTION
  Prints one line per event until Ctrl-C:
    [NEW]     a session was created
    [UPDATE]  a TCP session changed state
    [DESTROY] a session went: expired (its timer ran out) or removed (flush, rule change,
              TCP teardown, table reset)
  The first tuple is the original direction (inside -> remote), the second the reply as the
  remote host sees it (remote -> external address and port; for ICMP the external
  identifier). The gateway samples its table every 500 ms and reports the differences, so a
  session that lives less than that may not be seen.

OPTIONS
  --json           one JSON object per line
  --proto, --host, --port   only events of sessions that match (as masq table)
${CONTROL_OPT}

EXAMPLES
  masq events
  masq events --proto udp --json
  masq events | head -1        (ends quietly once head has its line)

${CLIENT_EXIT}  Ctrl-C, a closed pipe or the gateway stopping end it with 0.
`;

const TEXTS: Record<string, string> = { run: RUN, table: TABLE, rule: RULE, flush: FLUSH, stats: STATS, status: STATUS, debug: DEBUG, demo: DEMO, up: UP, down: DOWN, reload: RELOAD, events: EVENTS, help: HELP };

export function helpFor(cmd: string): string | undefined {
  return TEXTS[cmd];
}
