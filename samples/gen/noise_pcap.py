#!/usr/bin/env python3
"""Small stdlib-only pcap tool for the noise corpus (classic pcap, EN10MB or LINUX_SLL2, IPv4/IPv6, TCP).

  noise_pcap.py info IN                  packets, bytes, connections, payload per direction, probes
  noise_pcap.py cut IN OUT MODE          write a mid-stream copy of IN (drops whole packets only)

MODE (each applied to every TCP connection on its own, so every connection starts mid-stream):
  --after-head           drop the handshake and every packet up to and including the server packet
                         that ends the first HTTP response head (the body starts the capture)
  --skip-data K          drop the handshake and the first K packets that carry payload
  --at-probe [N]         drop everything before the N-th (default 1st) keep-alive / zero-window probe
                         of the connection: the prober's first packet is then the probe itself

A probe is a segment with no SYN/FIN/RST, 0 or 1 payload bytes, whose seq is one below the highest
ack the peer had sent (RFC 9293 3.8.4 keep-alive; Linux zero-window probes are alike: zero-length at
snd_una-1).  It is a zero-window probe when the peer's last advertised window was 0.
"""
import struct
import sys

LINK_EN10MB, LINK_SLL2 = 1, 276


def read_pcap(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise ValueError(f"{path}: classic little-endian pcap expected")
    linktype = struct.unpack("<I", data[20:24])[0]
    recs, pos = [], 24
    while pos + 16 <= len(data):
        caplen = struct.unpack("<I", data[pos + 8:pos + 12])[0]
        recs.append(data[pos:pos + 16 + caplen])
        pos += 16 + caplen
    return data[:24], linktype, recs


def parse_tcp(linktype, rec):
    """Returns (src, dst, seq, ack, flags, win, payload) or None; src/dst are (ip, port)."""
    pkt = rec[16:]
    if linktype == LINK_EN10MB:
        ethertype, off = struct.unpack("!H", pkt[12:14])[0], 14
    elif linktype == LINK_SLL2:
        ethertype, off = struct.unpack("!H", pkt[0:2])[0], 20
    else:
        return None
    if ethertype == 0x0800:
        ihl = (pkt[off] & 15) * 4
        if pkt[off + 9] != 6:
            return None
        total = struct.unpack("!H", pkt[off + 2:off + 4])[0]
        src_ip, dst_ip = ".".join(map(str, pkt[off + 12:off + 16])), ".".join(map(str, pkt[off + 16:off + 20]))
        t, end = off + ihl, off + total
    elif ethertype == 0x86DD:
        if pkt[off + 6] != 6:
            return None
        plen = struct.unpack("!H", pkt[off + 4:off + 6])[0]
        src_ip, dst_ip = pkt[off + 8:off + 24].hex(), pkt[off + 24:off + 40].hex()
        t, end = off + 40, off + 40 + plen
    else:
        return None
    sport, dport, seq, ack, offflags, win = struct.unpack("!HHIIHH", pkt[t:t + 16])
    doff = (offflags >> 12) * 4
    return (src_ip, sport), (dst_ip, dport), seq, ack, offflags & 0x3F, win, pkt[t + doff:end]


FIN, SYN, RST, ACK = 1, 2, 4, 16


def analyse(linktype, recs):
    """Per packet: (index, conn key, direction 0=client->server, parsed) and per-connection state."""
    conns, out = {}, []
    last_ack, last_win = {}, {}
    for i, rec in enumerate(recs):
        p = parse_tcp(linktype, rec)
        if p is None:
            out.append((i, None, None, None, None))
            continue
        src, dst, seq, ack, flags, win, payload = p
        key = tuple(sorted([src, dst]))
        if key not in conns:
            # client = SYN sender, else the side with the higher port
            if flags & SYN and not flags & ACK:
                client = src
            elif flags & SYN:
                client = dst
            else:
                client = src if src[1] > dst[1] else dst
            conns[key] = {"client": client, "packets": 0, "bytes": [0, 0], "probes": []}
        c = conns[key]
        d = 0 if src == c["client"] else 1
        c["packets"] += 1
        c["bytes"][d] += len(payload)
        kind = None
        peer = (key, 1 - d)
        if (not flags & (SYN | FIN | RST) and len(payload) <= 1 and peer in last_ack
                and seq == (last_ack[peer] - 1) & 0xFFFFFFFF):
            kind = "zero-window probe" if last_win.get(peer) == 0 else "keep-alive probe"
            c["probes"].append((i + 1, "c2s" if d == 0 else "s2c", kind, len(payload)))
        if flags & ACK:
            last_ack[(key, d)] = ack
            last_win[(key, d)] = win
        out.append((i, key, d, p, kind))
    return conns, out


def info(path):
    _, lt, recs = read_pcap(path)
    conns, pk = analyse(lt, recs)
    size = 24 + sum(len(r) for r in recs)
    zero_wins = [i + 1 for i, key, d, p, _ in pk if p and p[5] == 0 and not p[4] & RST]
    print(f"{path}: {len(recs)} packets, {size} bytes, linktype {lt}, {len(conns)} TCP connection(s)")
    for key, c in conns.items():
        srv = key[0] if key[1] == c["client"] else key[1]
        print(f"  {c['client'][0]}:{c['client'][1]} -> {srv[0]}:{srv[1]}: {c['packets']} packets, "
              f"payload c2s {c['bytes'][0]} B, s2c {c['bytes'][1]} B")
        for n, d, kind, ln in c["probes"]:
            print(f"    packet {n}: {kind} {d} ({ln} byte{'s' if ln != 1 else ''})")
    if zero_wins:
        print(f"  zero window advertised in packets {zero_wins[:12]}{' ...' if len(zero_wins) > 12 else ''}")


def cut(src, dst, mode, arg):
    head, lt, recs = read_pcap(src)
    conns, pk = analyse(lt, recs)
    start = {}  # conn key -> first packet index kept
    seen_data, probes = {}, {}
    s2c_head = {}
    for i, key, d, p, kind in pk:
        if key is None or key in start:
            continue
        payload = p[6]
        if mode == "--after-head":
            if d == 1 and payload:
                buf = s2c_head.get(key, b"") + payload
                s2c_head[key] = buf
                if b"\r\n\r\n" in buf:
                    start[key] = i + 1
        elif mode == "--skip-data":
            if payload:
                seen_data[key] = seen_data.get(key, 0) + 1
                if seen_data[key] == arg:
                    start[key] = i + 1
        elif mode == "--at-probe":
            if kind:
                probes[key] = probes.get(key, 0) + 1
                if probes[key] == arg:
                    start[key] = i
        else:
            sys.exit(f"unknown mode {mode}")
    kept = [rec for (i, key, d, p, kind), rec in zip(pk, recs)
            if key is not None and key in start and i >= start[key]]
    open(dst, "wb").write(head + b"".join(kept))
    print(f"{dst}: kept {len(kept)} of {len(recs)} packets; {len(start)} of {len(conns)} connection(s) cut")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "info":
        for f in sys.argv[2:]:
            try:
                info(f)
            except ValueError as e:
                print(e)
    elif len(sys.argv) >= 5 and sys.argv[1] == "cut":
        cut(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    else:
        sys.exit(__doc__)
