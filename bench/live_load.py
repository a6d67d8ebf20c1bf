#!/usr/bin/env python3
"""Loopback websocket load for wsdump's live-capture benchmark (bench/live.sh).

    live_load.py --port P --rate R [--duration 10] [--conns 40] [--procs 2] [--seed 1]

Real peers on the Python `websockets` asyncio API. The main process is the server; --procs
worker processes open --conns connections between them to ws://127.0.0.1:P/. Every
connection with an even index offers permessage-deflate (the library's default: context
takeover both ways, accepted by the server); odd ones offer no extension.

Load: each client sends text and binary messages, paced so that the clients together send
R/2 messages per second for --duration seconds, and the server echoes every message back on
the same connection (so the server's side is compressed too when the connection is). R is
therefore the total number of websocket data messages per second on the wire, both
directions together. R = 0 means as fast as possible: every connection sends bursts of up to 256
messages separated by 2 ms pauses, limited only by CPU and TCP flow control.

Sizes: about 75 % chat-size JSON (60-400 bytes), 20 % JSON documents of 1-4 KiB and 5 %
larger ones of 4-8 KiB; one message in five is binary (half noise, half pattern). Payloads
come from a pre-generated pool of 2048 per worker (several MiB, much longer than deflate's
32 KiB window, so compression never sees the same message twice within its window).

Pacing: a connection sends whatever is due by now (a burst when it fell behind, at most
256), then sleeps until its next message is due (at least 2 ms); connections are
phase-shifted so that sends spread evenly. After the duration, each client waits until it has received the echo of every
message it sent, then closes with 1000; keepalive pings are off so the count is exact.

Output: one JSON line on stdout: the target rate, the achieved rate, and exact counts:
c2s_sent (clients), c2s_recv (server), s2c_sent (server echoes), s2c_recv (clients),
messages = c2s_sent + s2c_sent (the data messages a capture should decode), payload bytes,
connections, and wall time of the sending phase.
"""
import argparse
import asyncio
import json
import multiprocessing as mp
import random
import sys
import time

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
            "text": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(3, 50))),
        }
    )


def document(rng, size):
    rows, n = [], 0
    while n < size:
        s = json.dumps(
            {
                "id": rng.randrange(1 << 40),
                "sym": rng.choice(WORDS).upper()[:4],
                "px": round(rng.uniform(1, 1000), 4),
                "qty": rng.randrange(1, 10000),
                "note": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 12))),
                "u": rng.choice(["", "naïve", "日本語", "привет", "emoji 🚀"]),
            },
            ensure_ascii=False,
        )
        rows.append(s)
        n += len(s.encode()) + 1
    return "[" + ",".join(rows) + "]"


def binary(rng, size):
    noise = rng.randbytes(size // 2)
    pattern = bytes((i * 7 + (i >> 5)) & 0xFF for i in range(size - size // 2))
    return noise + pattern


def make_message(rng):
    r = rng.random()
    if r < 0.75:
        size = None
    elif r < 0.95:
        size = rng.randrange(1024, 4096)
    else:
        size = rng.randrange(4096, 8192)
    if rng.random() < 0.20:
        return binary(rng, size if size else rng.randrange(60, 400))
    return chat(rng) if size is None else document(rng, size)


def payload_len(m):
    return len(m) if isinstance(m, bytes) else len(m.encode())


# ---------------------------------------------------------------- client worker process


async def client_main(port, conns, first, conns_total, rate, duration, start_at, seed):
    """Runs connections first..first+conns-1; returns counts."""
    rng = random.Random(seed * 7919 + first)
    pool = [make_message(rng) for _ in range(2048)]
    sizes = [payload_len(m) for m in pool]
    loop = asyncio.get_running_loop()
    per_conn = rate / 2 / conns_total if rate else 0.0  # client messages/s per connection
    out = {"c2s_sent": 0, "s2c_recv": 0, "bytes": 0, "connections": 0, "unechoed": 0}

    async def one(idx):
        comp = "deflate" if idx % 2 == 0 else None
        async with connect(
            f"ws://127.0.0.1:{port}/{idx}",
            ping_interval=None,
            max_size=None,
            compression=comp,
            open_timeout=30,
        ) as ws:
            got = 0
            sent = 0
            all_echoed = asyncio.Event()
            sending = True

            async def reader():
                nonlocal got
                async for _ in ws:
                    got += 1
                    if not sending and got >= sent:
                        all_echoed.set()

            rt = asyncio.create_task(reader())
            # Wall-clock start shared by every worker, converted to this loop's clock.
            t0 = loop.time() + (start_at - time.time())
            await asyncio.sleep(max(0.0, t0 - loop.time()))
            end = t0 + duration
            k = (idx * 131) % len(pool)
            nbytes = 0
            # Paced: send what is due, then sleep until the next message is due. As fast as
            # possible (rate 0) is the same loop with everything always due: bursts of up to
            # 256 messages per connection separated by 2 ms pauses, which lets the peers read
            # the echoes (sending back to back starves the readers and ends up slower).
            rate_c = per_conn or 1e9
            phase = (idx / conns_total) / rate_c
            while True:
                now = loop.time()
                if now >= end:
                    break
                due = int((now - t0 - phase) * rate_c) + 1 if now >= t0 + phase else 0
                burst = 0
                while sent < due and burst < 256:
                    m = pool[k]
                    await ws.send(m)
                    nbytes += sizes[k]
                    k = (k + 1) % len(pool)
                    sent += 1
                    burst += 1
                nxt = t0 + phase + sent / rate_c
                await asyncio.sleep(max(0.002, nxt - loop.time()))
            sending = False
            if got < sent:
                try:
                    await asyncio.wait_for(all_echoed.wait(), timeout=60)
                except asyncio.TimeoutError:
                    pass
            await ws.close(1000, "bench done")
            await rt
            out["c2s_sent"] += sent
            out["s2c_recv"] += got
            out["bytes"] += nbytes
            out["connections"] += 1
            out["unechoed"] += max(0, sent - got)

    await asyncio.gather(*(one(first + i) for i in range(conns)))
    return out


def client_proc(q, port, conns, first, total, rate, duration, start_at, seed):
    try:
        q.put(asyncio.run(client_main(port, conns, first, total, rate, duration, start_at, seed)))
    except Exception as e:  # reported, and the run counts as failed
        q.put({"error": repr(e)})


# ---------------------------------------------------------------- server worker processes


async def server_main(port, ready, stop):
    counts = {"c2s_recv": 0, "s2c_sent": 0, "closed": 0}

    async def handler(ws):
        try:
            async for m in ws:
                counts["c2s_recv"] += 1
                await ws.send(m)
                counts["s2c_sent"] += 1
        finally:
            counts["closed"] += 1

    # Several server processes share the port (SO_REUSEPORT); the kernel spreads connections.
    async with serve(
        handler,
        "127.0.0.1",
        port,
        ping_interval=None,
        max_size=None,
        compression="deflate",
        backlog=1024,
        reuse_port=True,
    ):
        ready.set()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop.wait)
    return counts


def server_proc(q, port, ready, stop):
    try:
        q.put(asyncio.run(server_main(port, ready, stop)))
    except Exception as e:
        ready.set()
        q.put({"error": repr(e)})


# ---------------------------------------------------------------- orchestration


def run(a):
    sq, cq = mp.Queue(), mp.Queue()
    stop = mp.Event()
    servers = []
    for _ in range(a.procs):
        ready = mp.Event()
        p = mp.Process(target=server_proc, args=(sq, a.port, ready, stop))
        p.start()
        ready.wait(30)
        servers.append(p)
    # Time for the workers to start and connect before the common start instant.
    start_at = time.time() + 1.0 + 0.02 * a.conns
    clients = []
    per = [a.conns // a.procs + (1 if i < a.conns % a.procs else 0) for i in range(a.procs)]
    first = 0
    for n in per:
        if n == 0:
            continue
        p = mp.Process(
            target=client_proc,
            args=(cq, a.port, n, first, a.conns, a.rate, a.duration, start_at, a.seed),
        )
        p.start()
        clients.append(p)
        first += n
    results = [cq.get() for _ in clients]
    for p in clients:
        p.join()
    time.sleep(0.3)  # the last close handshakes
    stop.set()
    sresults = [sq.get() for _ in servers]
    for p in servers:
        p.join()
    errors = [r["error"] for r in results + sresults if "error" in r]
    c2s_sent = sum(r.get("c2s_sent", 0) for r in results)
    s2c_recv = sum(r.get("s2c_recv", 0) for r in results)
    c2s_recv = sum(r.get("c2s_recv", 0) for r in sresults)
    s2c_sent = sum(r.get("s2c_sent", 0) for r in sresults)
    res = {
        "target_rate": a.rate,
        "duration": a.duration,
        "connections": sum(r.get("connections", 0) for r in results),
        "deflate_connections": (a.conns + 1) // 2,
        "c2s_sent": c2s_sent,
        "c2s_recv": c2s_recv,
        "s2c_sent": s2c_sent,
        "s2c_recv": s2c_recv,
        "messages": c2s_sent + s2c_sent,
        "achieved_rate": round((c2s_sent + s2c_sent) / a.duration),
        "payload_bytes": 2 * sum(r.get("bytes", 0) for r in results),
        "errors": errors,
    }
    print(json.dumps(res), flush=True)
    ok = not errors and c2s_sent == c2s_recv == s2c_sent == s2c_recv
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rate", type=float, required=True, help="messages/s, both directions; 0 = max")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--conns", type=int, default=40)
    p.add_argument("--procs", type=int, default=2, help="client processes, and as many server processes")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
