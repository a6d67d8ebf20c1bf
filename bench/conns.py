#!/usr/bin/env python3
"""A capture of N websocket connections that all open, upgrade and stay open while they chat
in rounds: what a chat server with N users online looks like. Each round every connection
sends one masked text message (a workerman-chat `say`) and gets one reply; none closes.

    bench/conns.py OUT.pcap N [--deflate] [--rounds R] [--gap SECONDS]

With --deflate the upgrade negotiates permessage-deflate with context takeover and every
message is compressed by zlib (raw deflate, sync flush, trailer stripped: RFC 7692), one
compressor per direction per connection that lives across messages. Link type RAW (IPv4),
clients 10.(i>>16).(i>>8).i:40000+ to server 10.255.255.254:7272. Stdlib only.
"""
import argparse
import base64
import hashlib
import os
import random
import struct
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SERVER = (bytes([10, 255, 255, 254]), 7272)


def ip_tcp(src, dst, seq, ack, flags, payload):
    total = 40 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0, src[0], dst[0])
    tcp = struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      5 << 4, flags, 65535, 0, 0)
    return ip + tcp + payload


def frame(payload, mask, rsv1):
    b0 = 0x80 | (0x40 if rsv1 else 0) | 0x1
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def deflate(z, data):
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class Conn:
    def __init__(self, i, deflate_on):
        self.client = (bytes([10, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF]),
                       40000 + (i % 20000))
        self.cseq = random.getrandbits(32)
        self.sseq = random.getrandbits(32)
        self.i = i
        self.z = [zlib.compressobj(6, zlib.DEFLATED, -15), zlib.compressobj(6, zlib.DEFLATED, -15)] if deflate_on else None


class Writer:
    def __init__(self, path):
        self.f = open(path, "wb", buffering=1 << 20)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        self.t = 1_764_000_000.0
        self.packets = 0

    def write(self, pkt, dt=0.00001):
        self.t += dt
        sec = int(self.t)
        usec = int((self.t - sec) * 1e6)
        self.f.write(struct.pack("<IIII", sec, usec, len(pkt), len(pkt)))
        self.f.write(pkt)
        self.packets += 1


def send(w, c, from_client, payload, flags=0x18):
    if from_client:
        w.write(ip_tcp(c.client, SERVER, c.cseq, c.sseq, flags, payload))
        c.cseq += len(payload)
        w.write(ip_tcp(SERVER, c.client, c.sseq, c.cseq, 0x10, b""))
    else:
        w.write(ip_tcp(SERVER, c.client, c.sseq, c.cseq, flags, payload))
        c.sseq += len(payload)
        w.write(ip_tcp(c.client, SERVER, c.cseq, c.sseq, 0x10, b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--deflate", action="store_true")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--gap", type=float, default=10.0, help="seconds between rounds")
    ap.add_argument("--seed", type=int, default=7272)
    a = ap.parse_args()
    random.seed(a.seed)
    w = Writer(a.out)
    conns = [Conn(i, a.deflate) for i in range(a.n)]
    ext_offer = b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if a.deflate else b""
    ext_agreed = b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if a.deflate else b""
    for c in conns:
        w.write(ip_tcp(c.client, SERVER, c.cseq, 0, 0x02, b""))
        w.write(ip_tcp(SERVER, c.client, c.sseq, c.cseq + 1, 0x12, b""))
        c.cseq += 1
        c.sseq += 1
        w.write(ip_tcp(c.client, SERVER, c.cseq, c.sseq, 0x10, b""))
        key = base64.b64encode(os.urandom(16))
        req = (b"GET / HTTP/1.1\r\nHost: 10.255.255.254:7272\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key +
               b"\r\n" + ext_offer + b"\r\n")
        send(w, c, True, req)
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n" + ext_agreed + b"\r\n")
        send(w, c, False, resp)
    messages = 0
    for r in range(a.rounds):
        w.t += a.gap
        for c in conns:
            say = ('{"type":"say","to_client_id":"all","to_client_name":"all","content":"user %d says hello in round %d"}'
                   % (c.i, r)).encode()
            reply = ('{"type":"say","from_client_id":"7f0000010b%010d","from_client_name":"user%d",'
                     '"to_client_id":"all","content":"user %d says hello in round %d","time":"2026-12-02 10:%02d:00"}'
                     % (c.i, c.i, c.i, r, r % 60)).encode()
            if c.z:
                send(w, c, True, frame(deflate(c.z[0], say), True, True))
                send(w, c, False, frame(deflate(c.z[1], reply), False, True))
            else:
                send(w, c, True, frame(say, True, False))
                send(w, c, False, frame(reply, False, False))
            messages += 2
    w.f.close()
    print(f"{a.out}: {a.n} connections, {messages} messages, {w.packets} packets, "
          f"{os.path.getsize(a.out)} bytes")


if __name__ == "__main__":
    main()
