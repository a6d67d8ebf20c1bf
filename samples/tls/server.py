#!/usr/bin/env python3
"""TLS test server for samples/tls: accepts N connections one after the other on
127.0.0.1:PORT; on each it sends a greeting, then answers every chunk it receives with
"echo: " + chunk, until the client closes. The bytes it received and sent per connection
are written to OUT.<i>.c2s and OUT.<i>.s2c: the ground truth of the capture.

usage: server.py PORT CERT KEY KEYLOG OUT N [tls12-cipher]
With a cipher (OpenSSL name) the server is TLS 1.2 only and offers just that suite;
without, it allows TLS 1.2 and 1.3 and takes the client's TLS 1.3 suite.
"""
import socket
import ssl
import sys

port, cert, key, keylog, out, n = sys.argv[1:7]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.keylog_filename = keylog
if len(sys.argv) > 7:
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(sys.argv[7])
    # Python refuses client-initiated renegotiation by default; one sample needs it.
    # OpenSSL 3 servers also need SSL_OP_ALLOW_CLIENT_RENEGOTIATION (0x100).
    ctx.options = (ctx.options & ~ssl.OP_NO_RENEGOTIATION) | 0x100
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(port)))
ls.listen(1)
ls.settimeout(30)
for i in range(int(n)):
    raw, _ = ls.accept()
    raw.settimeout(20)
    c2s, s2c = b"", b""
    with ctx.wrap_socket(raw, server_side=True) as s:
        greeting = b"hello from the server, connection %d\n" % i
        s.sendall(greeting)
        s2c += greeting
        while True:
            try:
                d = s.recv(65536)
            except (ssl.SSLError, OSError):
                break
            if not d:
                break
            c2s += d
            reply = b"echo: " + d
            s.sendall(reply)
            s2c += reply
        try:
            s.unwrap()
        except (ssl.SSLError, OSError):
            pass
    open(f"{out}.{i}.c2s", "wb").write(c2s)
    open(f"{out}.{i}.s2c", "wb").write(s2c)
