#!/usr/bin/env python3
"""Cross-check: tshark decrypts each samples/tls capture with its key log, and its
decrypted TLS streams (`-z follow,tls,raw,N`) are compared with what the peers sent
(NAME.N.c2s / NAME.N.s2c). Prints one line per connection and a closing count."""
import glob
import os
import re
import subprocess
import sys

os.chdir(os.path.dirname(os.path.abspath(__file__)))
ok = bad = 0
for pcap in sorted(glob.glob("*.pcap")):
    name = pcap[:-5]
    n = len(glob.glob(f"{name}.*.c2s"))
    for i in range(n):
        out = subprocess.run(
            ["tshark", "-r", pcap, "-o", f"tls.keylog_file:{name}.keylog",
             "-d", "tcp.port==9440-9460,tls", "-q", "-z", f"follow,tls,raw,{i}"],
            capture_output=True, text=True).stdout
        node0 = re.search(r"Node 0: [^\n]*:(\d+)\n", out)
        first, second = b"", b""
        for line in out.splitlines():
            if re.fullmatch(r"\t[0-9a-f]+", line):
                second += bytes.fromhex(line.strip())
            elif re.fullmatch(r"[0-9a-f]+", line):
                first += bytes.fromhex(line)
        # Node 0 is the side that sent first; the server port is 94xx.
        server_first = node0 is not None and node0.group(1).startswith("94")
        s2c, c2s = (first, second) if server_first else (second, first)
        want_c = open(f"{name}.{i}.c2s", "rb").read()
        want_s = open(f"{name}.{i}.s2c", "rb").read()
        good = c2s == want_c and s2c == want_s
        ok += good
        bad += not good
        print(f"{'agree' if good else 'DIFFER'}  {name} #{i}  c2s {len(c2s)}/{len(want_c)}  s2c {len(s2c)}/{len(want_s)}")
print(f"tshark: {ok} passed, {bad} failed")
sys.exit(1 if bad else 0)
