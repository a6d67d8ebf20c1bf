#!/usr/bin/env python3
"""Peers for samples/precision/ (see samples/gen/precision.sh): a real websocket server (Python
`websockets`) and clients that speak to it the way the regression tests need, some through
`websockets`, some through a raw socket that sends what a library would refuse to send.

  precision_peers.py server PORT READY        echo server; writes READY when listening
  precision_peers.py keepalive PORT LPORT     client bound to LPORT, TCP keep-alive probes while idle
  precision_peers.py oversized PORT           raw client: a text, then a close of 2 + 200 bytes
  precision_peers.py badupgrades PORT         raw clients: four handshakes RFC 6455 4.1 refuses, then a good one
  precision_peers.py upgradetcp PORT          raw client: HTTP, then Docker's `Upgrade: tcp`, then raw bytes

Every client prints what it sent and received, one JSON object a line, to stdout.
"""
import asyncio
import base64
import json
import os
import socket
import struct
import sys
import time

KEY = base64.b64encode(b"wsdump-precision").decode()  # 16 bytes, as RFC 6455 4.1 asks
MASK = b"\x37\xfa\x21\x3d"


def log(**kw):
    print(json.dumps(kw), flush=True)


def masked(opcode, payload, fin=True):
    """A client frame (RFC 6455 5.2), with the length in the shortest encoding."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, 0x80 | n])
    elif n < 65536:
        head = bytes([b0, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, 0x80 | 127]) + struct.pack("!Q", n)
    body = bytes(c ^ MASK[i % 4] for i, c in enumerate(payload))
    return head + MASK + body


def read_some(s, timeout=2.0):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if timeout == 0.5:
                continue
            timeout = 0.5
            s.settimeout(timeout)
    except socket.timeout:
        pass
    except ConnectionResetError:
        log(event="reset")
    return out


def handshake(path="/", method="GET", version="HTTP/1.1", upgrade="websocket", ws_version="13", key=KEY):
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    if upgrade:
        lines += [f"Upgrade: {upgrade}", "Connection: Upgrade"]
    if key:
        lines.append(f"Sec-WebSocket-Key: {key}")
    if ws_version:
        lines.append(f"Sec-WebSocket-Version: {ws_version}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def serve(port, ready):
    import websockets

    async def echo(ws):
        async for m in ws:
            await ws.send(m)

    async with websockets.serve(echo, "127.0.0.1", port, compression=None, ping_interval=None):
        open(ready, "w").write("ready\n")
        await asyncio.Future()


async def keepalive(port, lport):
    import websockets

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", lport))
    # Idle for a second, then a probe a second (RFC 9293 3.8.4): a few while the client waits.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    s.connect(("127.0.0.1", port))
    async with websockets.connect(f"ws://127.0.0.1:{port}/", sock=s, compression=None, ping_interval=None) as ws:
        for text in ["before the idle time", "after the idle time"]:
            await ws.send(text)
            log(dir="c2s", opcode="text", text=text)
            got = await ws.recv()
            log(dir="s2c", opcode="text", text=got)
            if text.startswith("before"):
                await asyncio.sleep(4.5)
        await ws.close(1000, "done")
        log(dir="c2s", opcode="close", close_code=1000, close_reason="done")


def oversized(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(handshake())
    log(got=read_some(s).decode("latin-1"))
    s.sendall(masked(0x1, b"a short text first"))
    log(dir="c2s", opcode="text", text="a short text first")
    log(got=read_some(s).decode("latin-1"))
    reason = b"C" * 200
    s.sendall(masked(0x8, struct.pack("!H", 1000) + reason))
    log(dir="c2s", opcode="close", close_code=1000, close_reason=reason.decode(), len=202)
    log(got=base64.b64encode(read_some(s)).decode())
    s.close()


def badupgrades(port):
    cases = [
        ("post", handshake(method="POST")),
        ("no-version", handshake(ws_version=None)),
        ("http10", handshake(version="HTTP/1.0")),
        ("websockets", handshake(upgrade="websockets")),
        ("no-key", handshake(key=None)),
    ]
    for name, req in cases:
        s = socket.create_connection(("127.0.0.1", port))
        # A client that does not wait for the 101 sends its first frame at once: these bytes
        # follow a handshake that is refused, so they are not websocket.
        s.sendall(req + masked(0x1, f"sent after a bad handshake ({name})".encode()))
        got = read_some(s)
        log(case=name, got=got.decode("latin-1"))
        s.close()
        time.sleep(0.2)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(handshake())
    log(case="valid", got=read_some(s).decode("latin-1"))
    s.sendall(masked(0x1, b"after a valid handshake"))
    log(dir="c2s", opcode="text", text="after a valid handshake")
    log(got=base64.b64encode(read_some(s)).decode())
    s.sendall(masked(0x8, struct.pack("!H", 1000)))
    log(dir="c2s", opcode="close", close_code=1000)
    log(got=base64.b64encode(read_some(s)).decode())
    s.close()


def upgradetcp(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /_ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    log(got=read_some(s).decode("latin-1"))
    s.sendall(b"POST /containers/x/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
    log(got=read_some(s).decode("latin-1"))
    # The raw stream after the switch: bytes that would parse as websocket frames (an unmasked
    # text "hello", a masked one) and as an HTTP request line's start ("GET" is not first).
    for raw in [b"\x81\x05hello", masked(0x1, b"not websocket"), b"ls -l\nGET / HTTP/1.1\r\n\r\n"]:
        s.sendall(raw)
        log(sent=base64.b64encode(raw).decode(), got=base64.b64encode(read_some(s)).decode())
    s.close()


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "server":
        asyncio.run(serve(port, sys.argv[3]))
    elif cmd == "keepalive":
        asyncio.run(keepalive(port, int(sys.argv[3])))
    elif cmd == "oversized":
        oversized(port)
    elif cmd == "badupgrades":
        badupgrades(port)
    elif cmd == "upgradetcp":
        upgradetcp(port)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
