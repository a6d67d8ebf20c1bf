#!/usr/bin/env python3
"""Make a bigger capture by repeating a recorded one with distinct connections.

    scale.py IN.pcap OUT.pcap COPIES SERVER_PORT

Copy k of IN gets its timestamps shifted past the end of copy k-1 (plus one second) and
every client port rewritten to 20000 + k * n + i (i = the port's rank among IN's client
ports), so no 4-tuple repeats and connections stay distinct, one set after another, as a
long capture of many sessions would be. The TCP checksum is adjusted incrementally
(RFC 1624). Handles classic pcap (micro- or nanosecond) over Ethernet with IPv4, which is
what `tcpdump -i lo -w` writes.
"""
import struct
import sys


def csum_adjust(csum, old, new):
    # RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')
    s = (~csum & 0xFFFF) + (~old & 0xFFFF) + new
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main():
    src, dst, copies, server_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    data = open(src, "rb").read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        endian, frac = "<", 1_000_000
    elif magic == b"\x4d\x3c\xb2\xa1":
        endian, frac = "<", 1_000_000_000
    else:
        sys.exit("scale.py: little-endian classic pcap expected")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit("scale.py: Ethernet link type expected")
    rec = struct.Struct(endian + "IIII")
    # Parse once: (ts, header bytes, packet bytes, offset of TCP header or -1).
    pkts = []
    ports = {}
    off = 24
    while off + 16 <= len(data):
        sec, sub, incl, orig = rec.unpack_from(data, off)
        p = data[off + 16 : off + 16 + incl]
        off += 16 + incl
        tcp = -1
        if len(p) >= 34 and p[12:14] == b"\x08\x00" and p[23] == 6:
            tcp = 14 + (p[14] & 0x0F) * 4
            sp, dp = struct.unpack_from("!HH", p, tcp)
            client = dp if sp == server_port else sp if dp == server_port else None
            if client is None:
                tcp = -1
            else:
                ports.setdefault(client, len(ports))
        pkts.append((sec * frac + sub, orig, p, tcp))
    if not pkts:
        sys.exit("scale.py: no packets")
    first, last = pkts[0][0], pkts[-1][0]
    span = last - first + frac
    n = len(ports)
    if 20000 + copies * n > 65535:
        sys.exit("scale.py: too many copies for distinct ports")
    with open(dst, "wb", buffering=8 << 20) as out:
        out.write(data[:24])
        for k in range(copies):
            shift = k * span
            for ts, orig, p, tcp in pkts:
                t = ts + shift
                if tcp >= 0:
                    b = bytearray(p)
                    sp, dp, = struct.unpack_from("!HH", b, tcp)
                    csum = struct.unpack_from("!H", b, tcp + 16)[0]
                    if sp == server_port:
                        new = 20000 + k * n + ports[dp]
                        struct.pack_into("!H", b, tcp + 2, new)
                        csum = csum_adjust(csum, dp, new)
                    else:
                        new = 20000 + k * n + ports[sp]
                        struct.pack_into("!H", b, tcp, new)
                        csum = csum_adjust(csum, sp, new)
                    struct.pack_into("!H", b, tcp + 16, csum)
                    p = bytes(b)
                out.write(rec.pack(t // frac, t % frac, len(p), orig))
                out.write(p)


if __name__ == "__main__":
    main()
