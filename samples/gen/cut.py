#!/usr/bin/env python3
"""Writes a copy of a classic pcap keeping only some packets, to make real captures that
start mid-conversation or lost packets.  Usage: cut.py IN OUT SPEC
SPEC is a comma-separated list of 1-based packet numbers or ranges to DROP, e.g. "1-9,14"."""
import struct, sys

def ranges(spec):
    drop = set()
    for part in filter(None, spec.split(",")):
        a, _, b = part.partition("-")
        drop.update(range(int(a), int(b or a) + 1))
    return drop

src, dst, spec = sys.argv[1:4]
drop = ranges(spec)
data = open(src, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
assert magic in (0xA1B2C3D4, 0xA1B23C4D), "classic little-endian pcap expected"
out = [data[:24]]
pos, n = 24, 0
while pos + 16 <= len(data):
    caplen = struct.unpack("<I", data[pos + 8:pos + 12])[0]
    rec = data[pos:pos + 16 + caplen]
    n += 1
    if n not in drop:
        out.append(rec)
    pos += 16 + caplen
open(dst, "wb").write(b"".join(out))
print(f"{dst}: kept {n - len(drop & set(range(1, n + 1)))} of {n} packets")
