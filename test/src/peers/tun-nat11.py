#!/usr/bin/env python3
"""tun-nat11.py — a toy 1:1 NAT on a TUN device, to prove the routing recipe without masq.

    tun-nat11.py INSIDE_ADDR EXTERNAL_ADDR TUN_NAME [mq]

Owns nothing of masq: it is a stand-in userspace gateway for the harness's own tests. It opens
(or creates) the TUN with IFF_TUN | IFF_NO_PI (| IFF_MULTI_QUEUE with `mq`), prints `ready`, and
rewrites every IPv4 packet: source INSIDE -> EXTERNAL outbound, destination EXTERNAL -> INSIDE
inbound, recomputing the IPv4 header checksum and the TCP/UDP checksum in full (RFC 768: a
computed UDP checksum of 0 is sent as 0xffff). ICMP errors' embedded packets are not rewritten.
Bounded: it exits after 60 s, or when its stdin closes (the harness went away).
"""
import fcntl
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI, IFF_MULTI_QUEUE = 0x0001, 0x1000, 0x0100


def addr(a):
    return bytes(int(x) for x in a.split('.'))


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def fix_checksums(p):
    ihl = (p[0] & 15) * 4
    tot = struct.unpack('!H', p[2:4])[0]
    p[10:12] = b'\0\0'
    p[10:12] = struct.pack('!H', csum(bytes(p[:ihl])))
    proto = p[9]
    frag = struct.unpack('!H', p[6:8])[0] & 0x1FFF
    if proto not in (6, 17) or frag != 0:
        return
    off = ihl + (16 if proto == 6 else 6)
    p[off:off + 2] = b'\0\0'
    pseudo = bytes(p[12:20]) + struct.pack('!BBH', 0, proto, tot - ihl)
    c = csum(pseudo + bytes(p[ihl:tot]))
    if proto == 17 and c == 0:
        c = 0xFFFF
    p[off:off + 2] = struct.pack('!H', c)


def main():
    inside, external, tun = addr(sys.argv[1]), addr(sys.argv[2]), sys.argv[3]
    flags = IFF_TUN | IFF_NO_PI | (IFF_MULTI_QUEUE if sys.argv[4:5] == ['mq'] else 0)
    fd = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH', tun.encode(), flags))
    print('ready', flush=True)
    stdin = sys.stdin.fileno()
    end = time.time() + 60
    while time.time() < end:
        ready, _, _ = select.select([fd, stdin], [], [], 0.5)
        if stdin in ready and not os.read(stdin, 4096):
            return
        if fd not in ready:
            continue
        p = bytearray(os.read(fd, 65536))
        if len(p) < 20 or p[0] >> 4 != 4:
            continue
        if p[12:16] == inside:
            p[12:16] = external
        elif p[16:20] == external:
            p[16:20] = inside
        else:
            continue
        fix_checksums(p)
        os.write(fd, bytes(p))


main()
