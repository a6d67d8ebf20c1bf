#!/usr/bin/env python3
"""Turns the reassembly crashes the fuzzer found into capture files for the golden tests:

    python3 fuzz/crash_samples.py      # writes samples/crash-*.pcap

Each is a real websocket connection (handshake, upgrade, messages) with the segment pattern
of the crash, built with scripts/adversarial.py's pcap writer.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from adversarial import ACK, FIN, PSH, Conn, Pcap, frame  # noqa: E402


def after_fin(path):
    """crash-70b38409: the server's FIN is delivered, then segments beyond the FIN arrive out
    of order and overflow the buffer: they used to come out as a gap after the FIN."""
    p = Pcap(path)
    c = Conn(p)
    c.handshake()
    c.upgrade()
    c.send(False, frame(b"last message before FIN"))
    p.tcp(c.s, c.c, c.sseq, c.cseq, FIN | ACK)
    fin_at = c.sseq + 1
    # 100 KB of junk beyond the FIN, last segment first (the TESTLIST runs it with
    # --max-ooo 32768).
    junk = frame(b"after FIN " * 100)
    for i in range(100, 0, -1):
        p.tcp(c.s, c.c, fin_at + 1000 + i * len(junk), c.cseq, PSH | ACK, junk)
    p.tcp(c.c, c.s, c.cseq, fin_at, FIN | ACK)
    p.tcp(c.s, c.c, fin_at, c.cseq + 1, ACK)
    p.close()


def holes(path):
    """crash-75fa8c73: several holes buffered at once; one forced release left the stream over
    its limit. Also: segments from inside a forced gap, arriving late, were compared with
    unrelated history and reported as differing retransmissions."""
    p = Pcap(path)
    c = Conn(p)
    c.handshake()
    c.upgrade()
    stream = b"".join(frame(b"message %04d " % i + b"x" * 1000) for i in range(120))
    base = c.sseq
    seg = 1000
    order = []
    # Two islands far ahead of a missing start, then everything else backwards.
    n = len(stream) // seg + 1
    # (the TESTLIST runs it with --max-ooo 32768).
    order += list(range(n // 2, n // 2 + 30)) + list(range(n - 30, n))
    rest = [i for i in range(n) if i not in set(order)]
    order += rest[::-1]
    for i in order:
        chunk = stream[i * seg:(i + 1) * seg]
        if chunk:
            p.tcp(c.s, c.c, base + i * seg, c.cseq, PSH | ACK, chunk)
    c.sseq += len(stream)
    c.fin()
    p.close()


if __name__ == "__main__":
    out = ROOT / "samples"
    after_fin(out / "crash-70b38409.pcap")
    holes(out / "crash-75fa8c73.pcap")
    for f in sorted(out.glob("crash-*.pcap")):
        print(f, f.stat().st_size)
