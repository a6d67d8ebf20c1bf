#!/usr/bin/env python3
"""Two workerman-chat clients (Python `websockets`) against a real workerman-chat server, for
samples/workerman-heartbeat.pcap: heartbeats, a 100 KB message, a client the server cuts
after a missed heartbeat. The server setup is in samples/README.md.

    wmclients.py --port 7272 --log FILE

- mynick and second log in to room 1 (with the Origin the application checks, and a
  cookie, as a browser on the chat's page would send);
- mynick says "hi, all !", second answers in Russian, mynick writes to second privately,
  then sends a 100,000-character message to all;
- mynick answers every {"type":"ping"} with {"type":"pong"}, as the chat's web page does;
  second answers none, so the server (pingNotResponseLimit = 1) cuts it;
- after the server announces that second left, mynick waits for one more heartbeat and
  closes (1000).

Every message sent and received is logged, one JSON line each, to --log (the ground truth).
"""
import argparse
import asyncio
import json
import time

import websockets
from websockets.asyncio.client import connect

LOG = None
ORIGIN = "http://chat.workerman.net"


def log(**ev):
    ev["t"] = time.monotonic_ns()
    LOG.write(json.dumps(ev, ensure_ascii=False) + "\n")
    LOG.flush()


async def send(ws, who, obj):
    text = json.dumps(obj, ensure_ascii=False)
    await ws.send(text)
    log(peer=who, ev="send", text=text if len(text) < 1000 else f"<{len(text)} chars>")


async def second(url, ids, left):
    async with connect(url, origin=ORIGIN, compression=None,
                       additional_headers={"Cookie": "PHPSESSID=4f2a9c0e7b1d; lang=ru"}) as ws:
        await send(ws, "second", {"type": "login", "client_name": "second", "room_id": 1})
        await asyncio.sleep(0.6)
        await send(ws, "second", {"type": "say", "to_client_id": "all",
                                  "to_client_name": "所有人", "content": "привет, mynick 👋"})
        try:
            async for m in ws:
                v = json.loads(m)
                log(peer="second", ev="recv", type=v.get("type"), len=len(m))
                if v.get("type") == "login" and v.get("client_name") == "second":
                    ids["second"] = v["client_id"]
        except websockets.ConnectionClosed as e:
            log(peer="second", ev="closed", code=e.rcvd.code if e.rcvd else None)


async def mynick(url, ids):
    async with connect(url, origin=ORIGIN, compression=None, max_size=None,
                       additional_headers={"Cookie": "PHPSESSID=9d8e7f6a5b4c; lang=en"}) as ws:
        await send(ws, "mynick", {"type": "login", "client_name": "mynick", "room_id": 1})
        steps = [
            (0.5, {"type": "say", "to_client_id": "all", "to_client_name": "所有人",
                   "content": "hi, all !"}),
            (1.2, "private"),
            (1.5, {"type": "say", "to_client_id": "all", "to_client_name": "所有人",
                   "content": "".join(chr(ord("a") + i % 26) for i in range(100_000))}),
        ]
        start = time.monotonic()
        left = False
        pings_after = 0
        while True:
            timeout = None
            if steps:
                timeout = max(0.0, start + steps[0][0] - time.monotonic())
            try:
                m = await asyncio.wait_for(ws.recv(), timeout)
            except asyncio.TimeoutError:
                _, step = steps.pop(0)
                if step == "private":
                    step = {"type": "say", "to_client_id": ids.get("second", ""),
                            "to_client_name": "second",
                            "content": "psst second, this one is private"}
                await send(ws, "mynick", step)
                continue
            v = json.loads(m)
            log(peer="mynick", ev="recv", type=v.get("type"), len=len(m))
            if v.get("type") == "login" and v.get("client_name") == "second":
                ids["second"] = v["client_id"]
            if v.get("type") == "ping":
                await send(ws, "mynick", {"type": "pong"})
                if left:
                    pings_after += 1
                    if pings_after >= 1:
                        break
            if v.get("type") == "logout":
                left = True
        await ws.close(1000)
        log(peer="mynick", ev="closed", code=1000)


async def main(port):
    url = f"ws://127.0.0.1:{port}/"
    ids = {}
    a = asyncio.create_task(mynick(url, ids))
    await asyncio.sleep(0.3)
    b = asyncio.create_task(second(url, ids, None))
    await asyncio.gather(a, b)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=7272)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    LOG = open(a.log, "w")
    asyncio.run(main(a.port))
