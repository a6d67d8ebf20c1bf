#!/usr/bin/env python3
"""A reconnecting client and a server that cuts it, on loopback (Python `websockets`), for
samples/reconnect.pcap: what wsdump's verdicts are about.

    reconnect.py --port N --log FILE

1. The client tries to connect while nothing listens on the port: ATTEMPTS refused
   connections (SYN answered by RST), DELAY seconds apart, as a browser's retry loop does.
2. The server starts. The client connects, logs in (workerman-chat's JSON), and the server
   cuts the connection without a close frame (it closes its socket: FIN).
3. The client reconnects at once, logs in again, says hello; the server answers, and the
   client closes normally (close 1000).

Every step is logged, one JSON line each, to --log: the ground truth of the sample.
"""
import argparse
import asyncio
import json
import time

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

ATTEMPTS = 4
DELAY = 0.03
LOG = None


def log(**ev):
    ev["t"] = time.monotonic_ns()
    LOG.write(json.dumps(ev, ensure_ascii=False) + "\n")
    LOG.flush()


async def handler(ws):
    n = handler.count
    handler.count += 1
    msg = await ws.recv()
    log(peer="server", ev="recv", conn=n, text=msg)
    if n == 0:
        # Cut: the socket is closed under the websocket, no close frame.
        log(peer="server", ev="cut", conn=n)
        ws.transport.close()
        return
    msg = await ws.recv()
    log(peer="server", ev="recv", conn=n, text=msg)
    reply = json.dumps({"type": "say", "from_client_id": "1", "from_client_name": "alice",
                        "to_client_id": "all", "content": "hello again"})
    await ws.send(reply)
    log(peer="server", ev="send", conn=n, text=reply)
    try:
        await ws.recv()
    except websockets.ConnectionClosed as e:
        log(peer="server", ev="closed", conn=n, code=e.rcvd.code if e.rcvd else None)


handler.count = 0


async def main(port):
    url = f"ws://127.0.0.1:{port}/"
    for i in range(ATTEMPTS):
        try:
            async with connect(url, compression=None):
                raise SystemExit("something listens on the port")
        except ConnectionRefusedError:
            log(peer="client", ev="refused", attempt=i + 1)
        await asyncio.sleep(DELAY)
    async with serve(handler, "127.0.0.1", port, compression=None):
        login = json.dumps({"type": "login", "client_name": "alice", "room_id": 1})
        ws = await connect(url, compression=None)
        log(peer="client", ev="open", conn=0)
        await ws.send(login)
        log(peer="client", ev="send", conn=0, text=login)
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            log(peer="client", ev="closed", conn=0, code=e.rcvd.code if e.rcvd else None)
        async with connect(url, compression=None) as ws:
            log(peer="client", ev="open", conn=1)
            await ws.send(login)
            log(peer="client", ev="send", conn=1, text=login)
            say = json.dumps({"type": "say", "to_client_id": "all", "to_client_name": "all",
                              "content": "hello"})
            await ws.send(say)
            log(peer="client", ev="send", conn=1, text=say)
            got = await ws.recv()
            log(peer="client", ev="recv", conn=1, text=got)
        log(peer="client", ev="closed", conn=1, code=1000)
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    LOG = open(a.log, "w")
    asyncio.run(main(a.port))
