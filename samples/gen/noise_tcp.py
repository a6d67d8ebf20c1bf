#!/usr/bin/env python3
"""Plain TCP peers for the noise corpus (stdlib only, 127.0.0.1 only).

  noise_tcp.py keepalive PORT   a connection that exchanges a few lines, stays idle ~5 s with
                                SO_KEEPALIVE, TCP_KEEPIDLE=1, TCP_KEEPINTVL=1 on both ends (so both
                                send keep-alive probes, each ACKed), then exchanges a few lines more
  noise_tcp.py zerowindow PORT  a receiver with SO_RCVBUF 4096 that stops reading for ~5 s while the
                                sender pushes 96 KiB: the sender's zero-window probes appear, then the
                                receiver drains (window updates) and the transfer ends
"""
import random
import socket
import sys
import threading
import time

HOST = "127.0.0.1"


def keepalive_opts(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 20)


def keepalive(port):
    ls = socket.create_server((HOST, port))
    done = threading.Event()

    def server():
        c, _ = ls.accept()
        keepalive_opts(c)
        f = c.makefile("rb")
        for line in f:
            c.sendall(b"ok " + line)
            if line.startswith(b"quit"):
                break
        c.close()
        done.set()

    threading.Thread(target=server, daemon=True).start()
    s = socket.create_connection((HOST, port))
    keepalive_opts(s)
    f = s.makefile("rb")
    for msg in (b"hello server\n", b"status?\n"):
        s.sendall(msg)
        f.readline()
    time.sleep(5.5)  # idle: probes at 1 s, then every 1 s, from both ends
    for msg in (b"still there?\n", b"quit\n"):
        s.sendall(msg)
        f.readline()
    s.close()
    done.wait(5)


def zerowindow(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by the accepted socket
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, port))
    ls.listen(1)
    total = 96 * 1024
    got = []

    def receiver():
        c, _ = ls.accept()
        got.append(c.recv(1000))  # read a little, then stop reading
        time.sleep(5)
        n = len(got[0])
        while n < total:
            b = c.recv(2048)  # drain slowly: several window updates
            if not b:
                break
            n += len(b)
            time.sleep(0.002)
        c.sendall(b"received %d\n" % n)
        c.close()

    t = threading.Thread(target=receiver)
    t.start()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    s.connect((HOST, port))
    rng = random.Random(1500)
    s.sendall(bytes(rng.getrandbits(8) for _ in range(total)))
    print(s.recv(100).decode().strip())
    s.close()
    t.join()


if __name__ == "__main__":
    {"keepalive": keepalive, "zerowindow": zerowindow}[sys.argv[1]](int(sys.argv[2]))
