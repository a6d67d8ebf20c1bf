#!/usr/bin/env python3
"""Real websocket peers (Python `websockets`, asyncio API) for wsdump's throughput corpus.

    peers.py server --port N --log FILE --ready FILE --conns C
    peers.py client --port N --log FILE --conns C --messages M [--seed S]

With --tls CERT KEY (server) or --tls-keylog FILE (client) the same conversations go over
TLS (wss://); the client writes its NSS key log to FILE (SSLContext.keylog_filename).

The client opens C connections at once to 127.0.0.1:N: even-numbered ones offer
permessage-deflate (the library's default: context takeover both ways), odd-numbered ones
offer no extension. On each connection both sides send M messages, interleaved (the client
sends one, the server answers with one, and so on), then the client closes with 1000 and the
server echoes the close. Sizes are mixed: mostly chat-size JSON, some 1-8 KiB documents, a
tail of 16-64 KiB blobs; about one in four messages is binary. Keepalive pings are off so
that the message count is exact.

Each peer writes, at the end, one JSON object to --log: the messages it sent and received by
kind ({"text": n, "binary": n, "close": n}), and bytes of payload sent. The server exits after
C connections have finished.
"""
import argparse
import asyncio
import json
import random
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
    "zulu hello world message room user typing online offline joined left said price "
    "order status pending filled cancelled symbol bid ask volume ts seq"
).split()


def chat(rng):
    return json.dumps(
        {
            "type": rng.choice(["say", "typing", "presence", "ack"]),
            "room": rng.randrange(1, 50),
            "from": "user%d" % rng.randrange(1000),
            "seq": rng.randrange(1 << 30),
            "text": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 40))),
        }
    )


def document(rng, size):
    rows = []
    n = 0
    while n < size:
        row = {
            "id": rng.randrange(1 << 40),
            "sym": rng.choice(WORDS).upper()[:4],
            "px": round(rng.uniform(1, 1000), 4),
            "qty": rng.randrange(1, 10000),
            "note": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 12))),
            "unicode": rng.choice(["", "naïve", "日本語", "привет", "emoji 🚀", "tab\there"]),
        }
        s = json.dumps(row, ensure_ascii=False)
        rows.append(s)
        n += len(s.encode()) + 1
    return "[" + ",".join(rows) + "]"


def binary(rng, size):
    # Half noise (incompressible), half structure: like real binary protocols.
    noise = rng.randbytes(size // 2)
    pattern = bytes((i * 7 + (i >> 5)) & 0xFF for i in range(size - size // 2))
    return noise + pattern


def make_message(rng):
    """A text (str) or binary (bytes) message of a realistic size."""
    r = rng.random()
    if r < 0.70:
        size = None
    elif r < 0.90:
        size = rng.randrange(1024, 8 * 1024)
    else:
        size = rng.randrange(16 * 1024, 64 * 1024 + 1)
    if rng.random() < 0.25:
        return binary(rng, size if size else rng.randrange(16, 512))
    return chat(rng) if size is None else document(rng, size)


class Counts:
    def __init__(self):
        self.sent = {"text": 0, "binary": 0, "close": 0}
        self.recv = {"text": 0, "binary": 0, "close": 0}
        self.sent_bytes = 0
        self.connections = 0

    def count_send(self, m):
        self.sent["binary" if isinstance(m, bytes) else "text"] += 1
        self.sent_bytes += len(m) if isinstance(m, bytes) else len(m.encode())

    def count_recv(self, m):
        self.recv["binary" if isinstance(m, bytes) else "text"] += 1

    def dump(self, path, role):
        with open(path, "w") as f:
            json.dump(
                {
                    "peer": role,
                    "connections": self.connections,
                    "sent": self.sent,
                    "recv": self.recv,
                    "sent_payload_bytes": self.sent_bytes,
                },
                f,
            )
            f.write("\n")


async def run_server(a):
    counts = Counts()
    done = asyncio.Event()
    finished = 0

    async def handler(ws):
        nonlocal finished
        idx = int(ws.request.path.strip("/") or 0)
        rng = random.Random(a.seed * 1_000_003 + idx * 2 + 1)
        async for m in ws:
            counts.count_recv(m)
            reply = make_message(rng)
            await ws.send(reply)
            counts.count_send(reply)
        # The client's close arrived; the library echoes it.
        counts.recv["close"] += 1
        counts.sent["close"] += 1
        counts.connections += 1
        finished += 1
        if finished == a.conns:
            done.set()

    tls = {}
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*a.tls)
        tls["ssl"] = ctx
    async with serve(
        handler,
        "127.0.0.1",
        a.port,
        ping_interval=None,
        max_size=None,
        compression="deflate",
        **tls,
    ):
        with open(a.ready, "w") as f:
            f.write("ready\n")
        await done.wait()
        # Let the last close handshakes finish.
        await asyncio.sleep(0.5)
    counts.dump(a.log, "server")


async def run_client(a):
    counts = Counts()

    async def one(idx):
        rng = random.Random(a.seed * 1_000_003 + idx * 2)
        comp = "deflate" if idx % 2 == 0 else None
        tls = {}
        if a.tls_keylog:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.keylog_filename = a.tls_keylog
            tls = {"ssl": ctx, "server_hostname": "localhost"}
        scheme = "wss" if tls else "ws"
        async with connect(
            f"{scheme}://127.0.0.1:{a.port}/{idx}",
            ping_interval=None,
            max_size=None,
            compression=comp,
            **tls,
        ) as ws:
            for _ in range(a.messages):
                m = make_message(rng)
                await ws.send(m)
                counts.count_send(m)
                reply = await ws.recv()
                counts.count_recv(reply)
            await ws.close(1000, "bench done")
            counts.sent["close"] += 1
            counts.recv["close"] += 1
            counts.connections += 1

    await asyncio.gather(*(one(i) for i in range(a.conns)))
    counts.dump(a.log, "client")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--ready")
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--messages", type=int, default=100)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="server: wss")
    p.add_argument("--tls-keylog", metavar="FILE", help="client: wss, key log to FILE")
    a = p.parse_args()
    asyncio.run(run_server(a) if a.role == "server" else run_client(a))


if __name__ == "__main__":
    sys.exit(main())
