#!/usr/bin/python3
"""hostile.py — hostile traffic for the gateway's end-to-end tests and the soak, sent from
inside a test network namespace. Every command is bounded in count and time and prints one
JSON line: {"sent": N, ...}.

    hostile.py syn-flood SRC DST DPORT COUNT [RATE]
        COUNT TCP SYNs from SRC to DST:DPORT, source ports counting up from 1024 (wrapping
        below 65536), at most RATE packets/s (default 20000). A raw socket; no scapy.
    hostile.py port-scan SRC DST [PROTOS [RATE]]
        One packet to every port 1-65535 of DST: a TCP SYN and/or a UDP datagram (PROTOS
        "tcp,udp"). Unsolicited traffic at the gateway's external address.
    hostile.py udp-spray SRC SPORT DST COUNT
        COUNT UDP datagrams from SRC:SPORT to DST ports 1..COUNT: one mapping, COUNT sessions.
    hostile.py tcp-forge SRC SPORT DST DPORT FLAGS SEQ COUNT
        COUNT TCP segments with FLAGS ("R", "F", "FA", "RA") from SRC:SPORT to DST:DPORT, the
        sequence numbers SEQ, SEQ+2^20, SEQ+2*2^20, ... (forged RST/FIN out of the window).
    hostile.py barrage SRC DST DPORT [ROUNDS]
        scapy (Debian python3-scapy): malformed TCP/UDP/ICMP headers, IP options, overlapping,
        tiny, absurd and orphan fragments, ICMP errors quoting garbage, ROUNDS times (default 1).
        The kernel fills in the IP checksum and total length of what a raw socket sends, so
        every packet here is a well-formed IPv4 header: each one reaches the gateway's TUN.

Only addresses inside the test's own namespaces are ever given.
"""
import json
import socket
import struct
import sys
import time


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_header(src: str, dst: str, proto: int, payload_len: int, ident: int = 0) -> bytes:
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident & 0xFFFF, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:]


def l4_checksum(src: str, dst: str, proto: int, seg: bytes) -> int:
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, len(seg))
    return csum(pseudo + seg)


def tcp_segment(src: str, dst: str, sport: int, dport: int, flags: int, seq: int = 0, ack: int = 0, window: int = 64240) -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, window, 0, 0)
    c = l4_checksum(src, dst, 6, seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def udp_datagram(src: str, dst: str, sport: int, dport: int, payload: bytes = b"x") -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = l4_checksum(src, dst, 17, seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def raw_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return s


def send_paced(s: socket.socket, dst: str, packets, rate: int, deadline_s: float = 60.0) -> int:
    sent = 0
    t0 = time.monotonic()
    for p in packets:
        while True:
            try:
                s.sendto(p, (dst, 0))
                break
            except (BlockingIOError, OSError) as e:
                if getattr(e, "errno", 0) not in (105, 11):  # ENOBUFS, EAGAIN: wait and retry
                    raise
                time.sleep(0.001)
        sent += 1
        ahead = sent / rate - (time.monotonic() - t0)
        if ahead > 0.002:
            time.sleep(ahead)
        if time.monotonic() - t0 > deadline_s:
            break
    return sent


def syn_flood(src: str, dst: str, dport: int, count: int, rate: int = 20000) -> dict:
    s = raw_socket()

    def gen():
        for i in range(count):
            sport = 1024 + i % (65536 - 1024)
            seg = tcp_segment(src, dst, sport, dport, 0x02, seq=0x10000000 + i)
            yield ip_header(src, dst, 6, len(seg), i) + seg

    t0 = time.monotonic()
    n = send_paced(s, dst, gen(), rate)
    return {"sent": n, "ms": round((time.monotonic() - t0) * 1000)}


def port_scan(src: str, dst: str, protos: str = "tcp,udp", rate: int = 20000) -> dict:
    s = raw_socket()
    want = protos.split(",")

    def gen():
        for port in range(1, 65536):
            if "tcp" in want:
                seg = tcp_segment(src, dst, 40000, port, 0x02, seq=port)
                yield ip_header(src, dst, 6, len(seg), port) + seg
            if "udp" in want:
                seg = udp_datagram(src, dst, 40000, port)
                yield ip_header(src, dst, 17, len(seg), port) + seg

    t0 = time.monotonic()
    n = send_paced(s, dst, gen(), rate)
    return {"sent": n, "ms": round((time.monotonic() - t0) * 1000)}


def udp_spray(src: str, sport: int, dst: str, count: int) -> dict:
    s = raw_socket()

    def gen():
        for port in range(1, count + 1):
            seg = udp_datagram(src, dst, sport, port)
            yield ip_header(src, dst, 17, len(seg), port) + seg

    n = send_paced(s, dst, gen(), 20000)
    return {"sent": n}


FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def tcp_forge(src: str, sport: int, dst: str, dport: int, flags: str, seq: int, count: int) -> dict:
    s = raw_socket()
    f = 0
    for ch in flags:
        f |= FLAG_BITS[ch]
    pkts = []
    for i in range(count):
        seg = tcp_segment(src, dst, sport, dport, f, seq=seq + i * (1 << 20), ack=0x1234567 if f & 0x10 else 0)
        pkts.append(ip_header(src, dst, 6, len(seg), 7000 + i) + seg)
    n = send_paced(s, dst, pkts, 1000)
    return {"sent": n}


def barrage(src: str, dst: str, dport: int, rounds: int = 1) -> dict:
    from scapy.all import IP, TCP, UDP, ICMP, Raw, IPOption_RR, IPOption_Timestamp, IPOption_NOP, fragment, conf, send  # noqa: E402
    from scapy.supersocket import L3RawSocket  # noqa: E402

    conf.L3socket = L3RawSocket
    conf.verb = 0
    kinds: dict = {}
    pkts = []

    def add(kind: str, p) -> None:
        kinds[kind] = kinds.get(kind, 0) + 1
        pkts.append(p)

    for r in range(rounds):
        base = IP(src=src, dst=dst, id=1000 + r)
        # TCP: data offset below 5 and beyond the packet, every flag combination, a segment cut short
        add("tcp-offset-small", base / TCP(sport=33000, dport=dport, dataofs=2, flags="S"))
        add("tcp-offset-beyond", base / TCP(sport=33001, dport=dport, dataofs=15, flags="S"))
        for flags in (0x00, 0x03, 0x05, 0x06, 0x07, 0x3F, 0xFF, 0x11, 0x14):
            add("tcp-odd-flags", base / TCP(sport=33002 + flags, dport=dport, flags=flags))
        add("tcp-truncated", IP(src=src, dst=dst, proto=6) / Raw(b"\x80\x00\x00"))
        add("tcp-bad-checksum", base / TCP(sport=33300, dport=dport, flags="S", chksum=0x1234))
        # UDP: length field shorter and longer than the datagram, truncated header, port 0
        add("udp-len-short", base / UDP(sport=33400, dport=dport, len=4) / Raw(b"hello"))
        add("udp-len-long", base / UDP(sport=33401, dport=dport, len=4000) / Raw(b"hello"))
        add("udp-truncated", IP(src=src, dst=dst, proto=17) / Raw(b"\x01\x02\x03"))
        add("udp-port-zero", base / UDP(sport=0, dport=0) / Raw(b"zero"))
        # ICMP: unknown types, truncated echo, errors quoting garbage / nothing / a truncated header
        for t in (3, 4, 5, 11, 12, 13, 15, 40, 200, 255):
            add("icmp-type", base / ICMP(type=t, code=0) / Raw(b"\xde\xad\xbe\xef" * 2))
        add("icmp-truncated", IP(src=src, dst=dst, proto=1) / Raw(b"\x08\x00"))
        add("icmp-error-quoting-garbage", base / ICMP(type=3, code=3) / Raw(bytes(range(48))))
        add("icmp-error-quoting-nothing", base / ICMP(type=11, code=0))
        add("icmp-error-quoting-short-ip", base / ICMP(type=3, code=1) / Raw(b"\x45\x00\x00"))
        add("icmp-error-quoting-bad-ihl", base / ICMP(type=3, code=1) / IP(src=dst, dst=src, ihl=15) / Raw(b"\x00" * 8))
        add("icmp-error-quoting-error", base / ICMP(type=3, code=3) / IP(src=dst, dst=src) / ICMP(type=3, code=3) / IP(src=src, dst=dst) / UDP(sport=1, dport=2))
        add("icmp-error-quoting-unknown-flow", base / ICMP(type=3, code=3) / IP(src=dst, dst=src) / UDP(sport=61000 + r, dport=53))
        # IP options: record route, timestamp, NOPs
        add("ip-options", IP(src=src, dst=dst, options=[IPOption_RR()]) / UDP(sport=33500, dport=dport) / Raw(b"rr"))
        add("ip-options", IP(src=src, dst=dst, options=[IPOption_Timestamp(flg=0)]) / TCP(sport=33501, dport=dport, flags="S"))
        add("ip-options", IP(src=src, dst=dst, options=[IPOption_NOP()] * 4) / ICMP() / Raw(b"nop"))
        # Fragments: overlapping, tiny (8-byte), a first fragment too short for the header,
        # orphans (no first fragment), an offset near the 64 KiB limit, duplicates
        payload = UDP(sport=33600 + r, dport=dport) / Raw(b"F" * 400)
        for f in fragment(IP(src=src, dst=dst, id=20000 + r) / payload, fragsize=64):
            add("frag-in-order", f)
        add("frag-overlap", IP(src=src, dst=dst, id=21000 + r, proto=17, flags="MF", frag=0) / Raw(bytes(UDP(sport=33700, dport=dport, len=100)) + b"A" * 40))
        add("frag-overlap", IP(src=src, dst=dst, id=21000 + r, proto=17, flags="MF", frag=2) / Raw(b"B" * 48))
        add("frag-overlap", IP(src=src, dst=dst, id=21000 + r, proto=17, frag=4) / Raw(b"C" * 60))
        add("frag-tiny-first", IP(src=src, dst=dst, id=22000 + r, proto=6, flags="MF", frag=0) / Raw(b"\x81\x01\x00\x50\x00\x00\x00\x00"))
        add("frag-tiny-first", IP(src=src, dst=dst, id=22000 + r, proto=6, frag=1) / Raw(b"\x00" * 12))
        add("frag-orphan", IP(src=src, dst=dst, id=23000 + r, proto=17, frag=100) / Raw(b"D" * 64))
        add("frag-absurd-offset", IP(src=src, dst=dst, id=24000 + r, proto=17, frag=8189) / Raw(b"E" * 40))
        add("frag-absurd-offset", IP(src=src, dst=dst, id=24100 + r, proto=1, flags="MF", frag=8000) / Raw(b"E" * 16))
        add("frag-duplicate-first", IP(src=src, dst=dst, id=25000 + r, proto=17, flags="MF", frag=0) / Raw(bytes(UDP(sport=33800, dport=dport, len=60)) + b"G" * 24))
        add("frag-duplicate-first", IP(src=src, dst=dst, id=25000 + r, proto=17, flags="MF", frag=0) / Raw(bytes(UDP(sport=33800, dport=dport, len=60)) + b"G" * 24))
        # Unknown transport protocols
        for proto in (0, 2, 41, 47, 50, 132, 253, 255):
            add("ip-unknown-proto", IP(src=src, dst=dst, proto=proto) / Raw(b"\x00" * 20))
    t0 = time.monotonic()
    s = conf.L3socket()
    for p in pkts:
        s.send(p)
        time.sleep(0.0005)
    s.close()
    return {"sent": len(pkts), "kinds": kinds, "ms": round((time.monotonic() - t0) * 1000)}


def main(argv: list) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, a = argv[0], argv[1:]
    if cmd == "syn-flood":
        r = syn_flood(a[0], a[1], int(a[2]), min(int(a[3]), 200000), int(a[4]) if len(a) > 4 else 20000)
    elif cmd == "port-scan":
        r = port_scan(a[0], a[1], a[2] if len(a) > 2 else "tcp,udp", int(a[3]) if len(a) > 3 else 20000)
    elif cmd == "udp-spray":
        r = udp_spray(a[0], int(a[1]), a[2], min(int(a[3]), 65535))
    elif cmd == "tcp-forge":
        r = tcp_forge(a[0], int(a[1]), a[2], int(a[3]), a[4], int(a[5]), min(int(a[6]), 10000))
    elif cmd == "barrage":
        r = barrage(a[0], a[1], int(a[2]), min(int(a[3]) if len(a) > 3 else 1, 100))
    else:
        print(f"hostile.py: unknown command {cmd}", file=sys.stderr)
        return 2
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
