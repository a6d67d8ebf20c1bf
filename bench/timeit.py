#!/usr/bin/env python3
"""Time commands in rounds: one run of each per round, so that a slow spell of the machine
weighs on all of them alike. For each command: median wall seconds (perf_counter around
the run: /usr/bin/time's %e rounds to 10 ms, too coarse for runs of 60 ms), median CPU
seconds and the largest peak RSS in KB (both from /usr/bin/time, which runs the command:
a child forked from this Python process would count Python's pages in its peak RSS).

    timeit.py RUNS NAME=CMD [NAME=CMD ...]   # CMD split on spaces; output to /dev/null

Prints one line per command: NAME<TAB>wall<TAB>cpu<TAB>rss_kb.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    runs = int(sys.argv[1])
    specs = [a.split("=", 1) for a in sys.argv[2:]]
    res = {name: [] for name, _ in specs}
    fd, tf = tempfile.mkstemp()
    os.close(fd)
    with open(os.devnull, "wb") as null:
        for _ in range(runs):
            for name, cmd in specs:
                argv = ["/usr/bin/time", "-o", tf, "-f", "%U %S %M"] + cmd.split()
                t = time.perf_counter()
                subprocess.run(argv, stdout=null, stderr=null)
                wall = time.perf_counter() - t
                u, s_, m = open(tf).read().split()[-3:]
                res[name].append((wall, float(u) + float(s_), int(m)))
    os.unlink(tf)
    for name, _ in specs:
        rows = res[name]
        print(
            f"{name}\t{statistics.median(r[0] for r in rows):.4f}"
            f"\t{statistics.median(r[1] for r in rows):.4f}\t{max(r[2] for r in rows)}"
        )


if __name__ == "__main__":
    main()
