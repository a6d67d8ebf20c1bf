#!/usr/bin/env python3
"""Generates hostile captures for wsdump and (with --run) measures wsdump on each.

    python3 scripts/adversarial.py            # write bench/out/adversarial/*.pcap
    python3 scripts/adversarial.py --run      # ... then run target/release/wsdump on each
                                              # under /usr/bin/time -v and print a table

The files are built packet by packet with struct (pcap, LINKTYPE_RAW IPv4, TCP), never by
hand-written hex. bench/out/ is git-ignored. Each capture targets one resource limit; see
docs/robustness.md for what wsdump is expected to do with it.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "adversarial"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

LINKTYPE_RAW = 101
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


class Pcap:
    """A classic little-endian microsecond pcap of raw IPv4 packets."""

    def __init__(self, path):
        self.f = open(path, "wb", buffering=1 << 20)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, LINKTYPE_RAW))
        self.t = 1_700_000_000.0
        self.packets = 0

    def raw(self, data, caplen=None, origlen=None, tick=1e-6):
        self.t += tick
        sec = int(self.t)
        usec = int((self.t - sec) * 1e6)
        caplen = len(data) if caplen is None else caplen
        origlen = len(data) if origlen is None else origlen
        self.f.write(struct.pack("<IIII", sec, usec, caplen, origlen))
        self.f.write(data)
        self.packets += 1

    def tcp(self, src, dst, seq, ack, flags, payload=b"", window=65535):
        sip, sport = src
        dip, dport = dst
        tcph = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                           5 << 4, flags, window, 0, 0)
        total = 20 + len(tcph) + len(payload)
        iph = struct.pack(">BBHHHBBH4s4s", 0x45, 0, total, 0, 0x4000, 64, 6, 0,
                          bytes(sip), bytes(dip))
        self.raw(iph + tcph + payload)

    def close(self):
        self.f.close()


class Conn:
    """One TCP connection with sequence numbers tracked per side."""

    def __init__(self, pcap, client=((10, 0, 0, 1), 40000), server=((10, 0, 0, 2), 8080)):
        self.p = pcap
        self.c, self.s = client, server
        self.cseq, self.sseq = 1000, 5000

    def handshake(self):
        self.p.tcp(self.c, self.s, self.cseq, 0, SYN)
        self.p.tcp(self.s, self.c, self.sseq, self.cseq + 1, SYN | ACK)
        self.cseq += 1
        self.sseq += 1
        self.p.tcp(self.c, self.s, self.cseq, self.sseq, ACK)

    def send(self, from_client, data, mss=1400):
        for i in range(0, len(data), mss):
            chunk = data[i:i + mss]
            if from_client:
                self.p.tcp(self.c, self.s, self.cseq, self.sseq, PSH | ACK, chunk)
                self.cseq += len(chunk)
            else:
                self.p.tcp(self.s, self.c, self.sseq, self.cseq, PSH | ACK, chunk)
                self.sseq += len(chunk)

    def upgrade(self, deflate=False):
        key = base64.b64encode(b"adversarial-key!").decode()
        ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if deflate else ""
        req = ("GET /chat HTTP/1.1\r\nHost: 10.0.0.2:8080\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (key, ext)).encode()
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: %s\r\n%s\r\n" % (accept, ext)).encode()
        self.send(True, req)
        self.send(False, resp)

    def fin(self):
        self.p.tcp(self.c, self.s, self.cseq, self.sseq, FIN | ACK)
        self.p.tcp(self.s, self.c, self.sseq, self.cseq + 1, FIN | ACK)
        self.p.tcp(self.c, self.s, self.cseq + 1, self.sseq + 1, ACK)


def frame(payload, opcode=1, fin=True, rsv1=False, mask=None, length=None):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload) if length is None else length
    m = 0x80 if mask else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n < 65536:
        h = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if mask:
        h += mask
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return h + payload


def syn_flood(path):
    """A million SYNs, each from its own source address and port, to one server port."""
    p = Pcap(path)
    dst = ((10, 0, 0, 2), 8080)
    for i in range(1_000_000):
        src = ((10, 1 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF), 1024 + (i * 7919) % 64000)
        p.tcp(src, dst, i * 2654435761, 0, SYN)
    p.close()


def ooo_tiny(path):
    """One websocket connection whose server stream comes as a million 1-byte segments, in
    reverse order: every segment but the last arrives before the bytes in front of it."""
    p = Pcap(path)
    c = Conn(p)
    c.handshake()
    c.upgrade()
    stream = b"".join(frame(b"message %06d" % i, opcode=1) for i in range(1_000_000 // 16))
    stream = stream[:1_000_000]
    base = c.sseq
    for off in range(len(stream) - 1, -1, -1):
        p.tcp(c.s, c.c, base + off, c.cseq, PSH | ACK, stream[off:off + 1])
    c.sseq += len(stream)
    c.fin()
    p.close()


def huge_frame(path):
    """Frame headers claiming 2^63 and 2^63 - 1 bytes, each followed by a little data and a
    normal message; the connection then ends."""
    p = Pcap(path)
    c = Conn(p)
    c.handshake()
    c.upgrade()
    c.send(False, frame(b"before", opcode=1))
    c.send(False, frame(b"A" * 100, length=1 << 63))
    c.send(False, frame(b"after 2^63", opcode=1))
    c.fin()
    c2 = Conn(p, client=((10, 0, 0, 3), 40001))
    c2.handshake()
    c2.upgrade()
    c2.send(True, frame(b"B" * 100, length=(1 << 63) - 1, mask=b"\x01\x02\x03\x04"))
    c2.send(True, frame(b"after 2^63-1", opcode=1, mask=b"\x01\x02\x03\x04"))
    c2.fin()
    p.close()


def deflate_bomb(path, gib=4):
    """permessage-deflate negotiated, then one server message of `gib` GiB of zeros, compressed
    to a few MB, sent in one frame; then a normal compressed message."""
    p = Pcap(path)
    c = Conn(p)
    c.handshake()
    c.upgrade(deflate=True)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    zero = bytes(1 << 20)
    parts = [z.compress(zero) for _ in range(gib << 10)]
    parts.append(z.flush(zlib.Z_SYNC_FLUSH))
    bomb = b"".join(parts)[:-4]
    c.send(False, frame(bomb, rsv1=True), mss=65000)
    tail = z.compress(b"still decoding after the bomb") + z.flush(zlib.Z_SYNC_FLUSH)
    c.send(False, frame(tail[:-4], rsv1=True))
    c.fin()
    p.close()
    return len(bomb)


def fragments(path, n=100_000, size=100):
    """One client text message in `n` masked fragments of `size` bytes (10 MB in all, past
    the 4 MiB message limit), then a short message."""
    p = Pcap(path)
    c = Conn(p)
    c.handshake()
    c.upgrade()
    key = b"\x37\xfa\x21\x3d"
    body = b"x" * size
    buf = []
    for i in range(n):
        op = 1 if i == 0 else 0
        buf.append(frame(body, opcode=op, fin=(i == n - 1), mask=key))
        if len(buf) == 100:
            c.send(True, b"".join(buf), mss=65000)
            buf = []
    if buf:
        c.send(True, b"".join(buf), mss=65000)
    c.send(True, frame(b"done", mask=key))
    c.fin()
    p.close()


def resync_flood(path, n=12_000, size=100):
    """A connection joined mid-stream (no handshake in the capture) whose server sends `n`
    segments of `size` bytes, each starting with a text frame header that claims 0x3ffffff
    bytes (just under the 64 MiB a resynchronisation believes in): every segment start is a
    candidate that can only be decided 64 MiB later."""
    p = Pcap(path)
    s, c = ((10, 0, 0, 2), 8080), ((10, 0, 0, 1), 40000)
    head = bytes([0x81, 127]) + struct.pack(">Q", 0x3FFFFFF)
    body = head + b"x" * (size - len(head))
    seq = 77_000
    for _ in range(n):
        p.tcp(s, c, seq, 1000, PSH | ACK, body)
        seq += len(body)
    p.close()


def http_trickle(path, conns=10, head_len=64_000):
    """`conns` connections, each sending an HTTP request head of about `head_len` bytes (one
    long header, under the 64 KiB head limit) one byte per TCP segment after a first segment
    of 8 bytes (a first segment under 3 bytes was a loss of its own), answered by a 404."""
    p = Pcap(path)
    for k in range(conns):
        c = Conn(p, client=((10, 0, 1, k), 40000 + k))
        c.handshake()
        pad = "a" * (head_len - 80)
        req = ("GET /trickle HTTP/1.1\r\nHost: 10.0.0.2\r\nX-Pad: %s\r\n\r\n" % pad).encode()
        c.send(True, req[:8])
        c.send(True, req[8:], mss=1)
        c.send(False, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        c.fin()
    p.close()


def http_whole(path, conns=10, head_len=64_000):
    """The same requests as `http_trickle`, in 1400-byte segments: the baseline."""
    p = Pcap(path)
    for k in range(conns):
        c = Conn(p, client=((10, 0, 1, k), 40000 + k))
        c.handshake()
        pad = "a" * (head_len - 80)
        req = ("GET /trickle HTTP/1.1\r\nHost: 10.0.0.2\r\nX-Pad: %s\r\n\r\n" % pad).encode()
        c.send(True, req)
        c.send(False, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        c.fin()
    p.close()


def big_lines(path, n=32):
    """permessage-deflate, then `n` server messages of 4 MiB of zeros (the --max-message
    limit), each about 4 KB compressed (no context takeover): with -X each prints as one
    ~20 MB piece of output, which decoding threads hand over in batches."""
    p = Pcap(path)
    c = Conn(p)
    c.handshake()
    c.upgrade(deflate=True)
    zero = bytes(4 << 20)
    for _ in range(n):
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = (z.compress(zero) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
        c.send(False, frame(body, rsv1=True), mss=65000)
    c.fin()
    p.close()


def ladder_flood(path, conns=100, msgs=2000):
    """`conns` permessage-deflate connections that never end, each with `msgs` server text
    messages of 200 NUL bytes (a few bytes each, compressed with context takeover): every
    message is a ladder row whose label escapes to 800 bytes, held until the end."""
    p = Pcap(path)
    for k in range(conns):
        c = Conn(p, client=((10, 0, 2, k), 41000 + k))
        c.handshake()
        c.upgrade(deflate=True)
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        buf = []
        for _ in range(msgs):
            body = (z.compress(bytes(200)) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
            buf.append(frame(body, rsv1=True))
            if len(buf) == 200:
                c.send(False, b"".join(buf), mss=65000)
                buf = []
        if buf:
            c.send(False, b"".join(buf), mss=65000)
    p.close()


def lying_records(out):
    """Three pcaps whose record headers lie: a caplen of 4 GiB - 16 after good packets; a
    caplen of 12 MiB in a file much shorter than that; an origlen below caplen."""
    files = []
    for name, lie in (("lying-caplen-huge.pcap", 0xFFFFFFF0),
                      ("lying-caplen-past-eof.pcap", 12 << 20),
                      ("lying-origlen.pcap", None)):
        path = out / name
        p = Pcap(path)
        c = Conn(p)
        c.handshake()
        c.upgrade()
        c.send(False, frame(b"a message before the lie"))
        if lie is None:
            c.p.raw(b"\x45" + bytes(59), caplen=60, origlen=20)
            c.send(False, frame(b"a message after the lie"))
            c.fin()
        else:
            p.f.write(struct.pack("<IIII", 1_700_000_100, 0, lie, lie))
            p.f.write(bytes(100_000))
        p.close()
        files.append(path)
    return files


CASES = [
    ("syn-flood.pcap", syn_flood, "1,000,000 SYNs from 1,000,000 source address/port pairs"),
    ("ooo-tiny.pcap", ooo_tiny, "1,000,000 one-byte segments in reverse order, one connection"),
    ("huge-frame.pcap", huge_frame, "frame headers claiming 2^63 and 2^63-1 bytes"),
    ("deflate-bomb.pcap", deflate_bomb, "4 GiB of zeros deflated into one message"),
    ("fragments.pcap", fragments, "one message in 100,000 fragments (10 MB)"),
    ("resync-flood.pcap", resync_flood, "mid-stream: 12,000 segments each claiming 0x3ffffff bytes"),
    ("http-trickle.pcap", http_trickle, "10 HTTP heads of 64 KB, one byte per segment"),
    ("http-whole.pcap", http_whole, "the same heads in 1400-byte segments (baseline)"),
    ("big-lines.pcap", big_lines, "32 deflated messages of 4 MiB: 20 MB lines with -X"),
    ("ladder-flood.pcap", ladder_flood, "200,000 ladder rows of 800-byte labels, never drawn"),
]


def measure(binary, path):
    cmd = ["/usr/bin/time", "-v", str(binary), "-r", str(path), "--json"]
    t0 = time.time()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wall = time.time() - t0
    err = r.stderr.decode(errors="replace")
    rss = next((int(l.split(":")[1]) for l in err.splitlines()
                if "Maximum resident set size" in l), 0)
    wsdump_err = [l for l in err.splitlines() if l.startswith("wsdump:")]
    counts = {}
    for line in r.stdout.splitlines():
        ev = json.loads(line)
        k = ev.get("type")
        if k in ("violation", "notice", "gap"):
            k = "%s:%s" % (k, ev.get("kind") or ev.get("reason") or "")
        counts[k] = counts.get(k, 0) + 1
    return {
        "file": path.name,
        "size_mb": round(path.stat().st_size / 1e6, 1),
        "exit": r.returncode,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(rss / 1024, 1),
        "events": counts,
        "stderr": wsdump_err,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="store_true", help="run wsdump on each file")
    ap.add_argument("--only", help="generate/run only files whose name contains this")
    ap.add_argument("--binary", default=str(ROOT / "target" / "release" / "wsdump"))
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, gen, _ in CASES:
        if args.only and args.only not in name:
            continue
        path = OUT / name
        if not path.exists():
            t0 = time.time()
            gen(path)
            print("wrote %s (%.1f MB, %.1f s)" % (path, path.stat().st_size / 1e6, time.time() - t0),
                  file=sys.stderr)
        paths.append(path)
    if not args.only or "lying" in args.only:
        paths += lying_records(OUT)
    if args.run:
        for path in paths:
            print(json.dumps(measure(args.binary, path)), flush=True)


if __name__ == "__main__":
    main()
