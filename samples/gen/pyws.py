#!/usr/bin/env python3
"""Python `websockets` peers (asyncio API) used to record wsdump sample captures.

    pyws.py server --scenario NAME --host H --port N --log FILE [--ready FILE] [--tls --cert C --key K]
    pyws.py client --scenario NAME --host H --port N --log FILE [--mss N] [--tls]

Every frame the library sends or receives is logged, as one JSON line, to --log:
    {"peer": "client"|"server", "ev": "send"|"recv", "t": monotonic_ns,
     "client": "ip:port", "server": "ip:port", "opcode": int, "fin": bool,
     "rsv1": bool, "data": base64}
The hooks sit on the sans-I/O protocol object (Protocol.send_frame / recv_frame),
so they see exactly the frames the library puts on / takes off the wire, before
compression / after decompression, including the automatic pong and the
close-frame echo.  rsv1 is taken from the permessage-deflate extension: for
sends, the RSV1 bit of the frame it produced; for receives, the RSV1 bit of the
frame as it arrived.  merge.py turns the two peers' logs into the
ground-truth .peer.jsonl and asserts that they agree.

The server serves exactly one connection and then exits.
"""
import argparse
import asyncio
import base64
import json
import random
import socket
import ssl
import sys
import time

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import Protocol

LOG = None
ROLE = None


def fmt_addr(addr):
    host, port = addr[0], addr[1]
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


# --- frame-level logging hooks ------------------------------------------------

_orig_encode = PerMessageDeflate.encode
_orig_decode = PerMessageDeflate.decode


def _encode(self, frame):
    out = _orig_encode(self, frame)
    self._last_rsv1 = bool(out.rsv1)
    return out


def _decode(self, frame, *, max_size=None):
    self._last_rsv1 = bool(frame.rsv1)
    return _orig_decode(self, frame, max_size=max_size)


PerMessageDeflate.encode = _encode
PerMessageDeflate.decode = _decode


def _rsv1(proto, frame):
    for ext in proto.extensions:
        if isinstance(ext, PerMessageDeflate):
            return getattr(ext, "_last_rsv1", False)
    return bool(frame.rsv1)


def _log(proto, ev, frame, rsv1):
    conn = proto._wsconn
    local, remote = fmt_addr(conn.local_address), fmt_addr(conn.remote_address)
    client, server = (local, remote) if ROLE == "client" else (remote, local)
    rec = {
        "peer": ROLE,
        "ev": ev,
        "t": time.monotonic_ns(),
        "client": client,
        "server": server,
        "opcode": int(frame.opcode.value),
        "fin": bool(frame.fin),
        "rsv1": rsv1,
        "data": base64.b64encode(bytes(frame.data)).decode(),
    }
    LOG.write(json.dumps(rec) + "\n")
    LOG.flush()


_orig_send_frame = Protocol.send_frame
_orig_recv_frame = Protocol.recv_frame


def _send_frame(self, frame):
    _orig_send_frame(self, frame)  # serializes (and compresses) synchronously
    _log(self, "send", frame, _rsv1(self, frame))


def _recv_frame(self, frame):
    # Frame.parse() already ran the extension decoder (decompression).
    _log(self, "recv", frame, _rsv1(self, frame))
    _orig_recv_frame(self, frame)


Protocol.send_frame = _send_frame
Protocol.recv_frame = _recv_frame


class LoggedServerConnection(ServerConnection):
    def __init__(self, protocol, *args, **kwargs):
        super().__init__(protocol, *args, **kwargs)
        protocol._wsconn = self


class LoggedClientConnection(ClientConnection):
    def __init__(self, protocol, *args, **kwargs):
        super().__init__(protocol, *args, **kwargs)
        protocol._wsconn = self


# --- content ---------------------------------------------------------------------

WORDS = (
    "the quick brown fox jumps over lazy dog websocket frame mask payload "
    "deflate window context takeover chat room hello world message server "
    "client ping pong close reason code binary text fragment continuation "
    "привет мир сообщение данные 👋 🌍 ✓"
).split()


def big_text(seed, size):
    """~size bytes of chat-log-like text: JSON lines with random ids (so it
    does not compress too well) and words from a small vocabulary."""
    rnd = random.Random(seed)
    out = ["# chat log export\n"]
    n, line = len(out[0]), 0
    while n < size:
        line += 1
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 10)))
        s = json.dumps({"n": line, "id": rnd.randbytes(12).hex(), "from": rnd.choice(WORDS[:8]),
                        "text": words}, ensure_ascii=False) + "\n"
        out.append(s)
        n += len(s.encode())
    text = "".join(out).encode()[:size]
    return text.decode("utf-8", "ignore")


def chat_reply(msg):
    """The server's reply to a chat-like JSON message (workerman-chat style)."""
    d = json.loads(msg)
    if d["type"] == "login":
        return json.dumps(
            {"type": "login", "client_id": "7f0000010b5400000001", "client_name": d["client_name"],
             "time": "2024-05-01 12:00:00", "client_list": {"7f0000010b5400000001": d["client_name"]}},
            ensure_ascii=False)
    return json.dumps(
        {"type": "say", "from_client_id": "7f0000010b5400000001", "from_client_name": "alice",
         "to_client_id": d.get("to_client_id", "all"), "content": d["content"],
         "time": "2024-05-01 12:00:%02d" % (len(d["content"]) % 60)},
        ensure_ascii=False)


# --- server ----------------------------------------------------------------------

async def server_handler(ws, scenario, done):
    try:
        async for msg in ws:
            if isinstance(msg, bytes):
                await ws.send(msg)  # echo binary
                continue
            if msg.startswith("{"):
                await ws.send(chat_reply(msg))
            elif msg == "please ping me":
                pong = await ws.ping(b"\x00server-ping\xff")
                await pong
                await ws.send("pinged you")
            elif msg == "empty ping":
                pong = await ws.ping(b"")
                await pong
                await ws.send("pinged you, empty")
            elif msg.startswith("привет"):
                await ws.send("и тебе привет 😀 — ещё раз: привет, мир! 🌍✨")
            else:
                await ws.send(msg)  # echo text
    finally:
        done.set()


async def run_server(a):
    done = asyncio.Event()
    kwargs = {}
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        kwargs["ssl"] = ctx
    if a.scenario in NO_COMPRESSION:
        kwargs["compression"] = None
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.small_rcvbuf:
        # inherited by the accepted socket: small window for c2s data
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lsock.bind((a.host, a.port))
    kwargs["sock"] = lsock
    async with serve(lambda ws: server_handler(ws, a.scenario, done), None, None,
                     create_connection=LoggedServerConnection, ping_interval=None,
                     max_size=2**22, **kwargs):
        if a.ready:
            open(a.ready, "w").write("ready\n")
        await done.wait()
        await asyncio.sleep(0.2)  # let the closing handshake / TCP FIN finish


# --- client scenarios ------------------------------------------------------------

NO_COMPRESSION = {"ipv6", "nanosecond"}


async def expect(ws, want):
    got = await ws.recv()
    assert got == want, (got[:80], want[:80])


async def ping(ws, data):
    pong = await ws.ping(data)
    await pong


async def scenario_python_deflate(ws):
    login = {"type": "login", "client_name": "alice", "room_id": 1}
    await ws.send(json.dumps(login))
    await expect(ws, chat_reply(json.dumps(login)))
    # chat-like messages that repeat content, so later ones back-reference
    # earlier ones in the shared deflate window (context takeover)
    contents = [
        "hello everyone, how is it going today?",
        "hello everyone, how is it going today? anyone here?",
        "hello everyone, how is it going today? anyone here? ok, bye for now",
        "hello everyone, how is it going today?",
    ]
    for c in contents:
        m = json.dumps({"type": "say", "to_client_id": "all", "to_client_name": "all", "content": c})
        await ws.send(m)
        await expect(ws, chat_reply(m))
    # non-ASCII text: Cyrillic + emoji
    await ws.send("привет, мир! 👋🌍 съешь же ещё этих мягких французских булок")
    await expect(ws, "и тебе привет 😀 — ещё раз: привет, мир! 🌍✨")
    # 3000 bytes of seeded random-ish binary, echoed
    blob = bytes(random.Random(3000).randbytes(2000)) + bytes(range(256)) * 3 + b"\x00" * 232
    assert len(blob) == 3000
    await ws.send(blob)
    await expect(ws, blob)
    # ~100 KB text, echoed
    text = big_text(100, 100_000)
    await ws.send(text)
    await expect(ws, text)
    # ping with payload from the client; the server's library answers the pong
    await ping(ws, b"client-ping-\x01\x02\x03")
    # ping from the server
    await ws.send("please ping me")
    await expect(ws, "pinged you")
    await ws.close(1000, "bye")


async def scenario_ipv6(ws):
    for m in ["hello over ::1", "second message", "третье сообщение ✓", "last one"]:
        await ws.send(m)
        await expect(ws, m)
    await ws.close(1000, "")


async def scenario_dumpcap_multi(ws):
    for m in ["hello from dumpcap-multi", "hello from dumpcap-multi, again",
              "hello from dumpcap-multi, again and again"]:
        await ws.send(m)
        await expect(ws, m)
    await ws.send(b"\x01\x02\x03binary\xfe\xff")
    await expect(ws, b"\x01\x02\x03binary\xfe\xff")
    await ping(ws, b"dc-ping")
    await ws.close(1000, "finished")


async def scenario_nanosecond(ws):
    for m in ["nanosecond timestamps one", "two", "three: ünïcödé"]:
        await ws.send(m)
        await expect(ws, m)
    await ws.close(1000, "")


async def scenario_tls_wss(ws):
    for m in ["secret one", "secret two", json.dumps({"type": "login", "client_name": "tls", "room_id": 1})]:
        await ws.send(m)
        await ws.recv()
    await ws.close(1000, "tls bye")


SCENARIOS = {
    "python-deflate": scenario_python_deflate,
    "ipv6": scenario_ipv6,
    "dumpcap-multi": scenario_dumpcap_multi,
    "nanosecond": scenario_nanosecond,
    "tls-wss": scenario_tls_wss,
}


async def run_client(a):
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if a.mss:
        # clamp the MSS (SYN option and our own segment size) and keep the
        # receive window small, so that big messages span many TCP segments
        # even on loopback (where GSO would otherwise give ~64 KB segments)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, a.mss)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (a.host, a.port))
    kwargs = {}
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if a.keylog:
            ctx.keylog_filename = a.keylog  # NSS key log, lets tshark decrypt
        kwargs["ssl"] = ctx
        kwargs["server_hostname"] = "localhost"
    if a.scenario in NO_COMPRESSION:
        kwargs["compression"] = None
    host = f"[{a.host}]" if ":" in a.host else a.host
    uri = f"{'wss' if a.tls else 'ws'}://{host}:{a.port}/{a.scenario}"
    async with connect(uri, sock=sock, create_connection=LoggedClientConnection,
                       ping_interval=None, max_size=2**22, **kwargs) as ws:
        await SCENARIOS[a.scenario](ws)


def main():
    global LOG, ROLE
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--scenario", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--ready")
    p.add_argument("--mss", type=int, help="client: TCP_MAXSEG and a 4 KiB SO_RCVBUF")
    p.add_argument("--small-rcvbuf", action="store_true", help="server: 4 KiB SO_RCVBUF")
    p.add_argument("--tls", action="store_true", help="wss (server also needs --cert/--key)")
    p.add_argument("--keylog", help="client: write TLS secrets (SSLKEYLOGFILE format) here")
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()
    ROLE = a.role
    LOG = open(a.log, "w")
    print(f"websockets {websockets.__version__}, python {sys.version.split()[0]}", file=sys.stderr)
    asyncio.run(run_server(a) if a.role == "server" else run_client(a))


if __name__ == "__main__":
    main()
