#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the real captures in samples/ (and a few synthetic inputs
for the targets whose input is not a capture file). Run from anywhere:

    python3 fuzz/seed_corpus.py

corpus/ is git-ignored: fuzzing grows it.
"""
import base64
import hashlib
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SAMPLES = ROOT / "samples"
CORPUS = FUZZ / "corpus"

# The link-type selector byte of the packet_decode target (index into its TYPES table).
LINK_INDEX = {0: 0, 1: 1, 101: 2, 12: 3, 14: 4, 108: 5, 113: 6, 228: 7, 229: 8, 276: 9}


def put(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def pcap_records(blob):
    """(linktype, packet bytes) of a classic pcap file; nothing for pcapng."""
    if len(blob) < 24:
        return
    magic = blob[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return
    linktype = struct.unpack(e + "I", blob[20:24])[0]
    at = 24
    while at + 16 <= len(blob):
        caplen = struct.unpack(e + "I", blob[at + 8 : at + 12])[0]
        yield linktype, blob[at + 16 : at + 16 + caplen]
        at += 16 + caplen


def tcp_payloads(linktype, pkt):
    """Rough: the TCP payload of an Ethernet/SLL2/raw IPv4 or IPv6 packet, for HTTP seeds."""
    off = {1: 14, 276: 20, 113: 16, 101: 0, 0: 4, 108: 4}.get(linktype)
    if off is None or len(pkt) <= off:
        return b""
    ip = pkt[off:]
    if ip[0] >> 4 == 4:
        ihl = (ip[0] & 15) * 4
        if len(ip) < ihl + 20 or ip[9] != 6:
            return b""
        tcp = ip[ihl:]
    elif ip[0] >> 4 == 6:
        if len(ip) < 60 or ip[6] != 6:
            return b""
        tcp = ip[40:]
    else:
        return b""
    return tcp[(tcp[12] >> 4) * 4 :]


def deflate_frames():
    """Synthetic websocket byte streams for ws_decoder, in its op encoding."""
    def frame(payload, opcode=1, fin=True, rsv1=False, mask=None):
        b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            h = bytes([b0, m | n])
        elif n < 65536:
            h = bytes([b0, m | 126]) + struct.pack(">H", n)
        else:
            h = bytes([b0, m | 127]) + struct.pack(">Q", n)
        if mask:
            h += mask
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return h + payload

    def deflate(msgs):
        c = zlib.compressobj(wbits=-15)
        out = []
        for m in msgs:
            d = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
            out.append(d[:-4])
        return out

    def ops(stream):
        # Chunks of 7, 50, 200 bytes, then whatever is left in one go.
        res, i = b"", 0
        for n in (7, 50, 200):
            chunk = stream[i : i + n]
            if not chunk:
                break
            res += bytes([len(chunk) - 1]) + chunk
            i += n
        if i < len(stream):
            res += b"\xf0" + stream[i:]
        return res

    msgs = [b'{"type":"login","client_name":"x"}', b"hello " * 40, "привет \x1b]0;t\x07".encode()]
    comp = deflate(msgs)
    key = b"\x11\x22\x33\x44"
    client = b"".join(frame(c, rsv1=True, mask=key) for c in comp)
    server = b"".join(frame(c, rsv1=True) for c in comp)
    plain = frame(b"hi") + frame(b"frag1", fin=False) + frame(b"", opcode=9) + frame(b"frag2", opcode=0)
    plain += frame(struct.pack(">H", 1000) + b"bye", opcode=8)
    # cfg byte: bits 0-1 compression (1 = deflate), bit 3-4 masking, bit 7 direction.
    yield bytes([0x01 | (1 << 3), 0x15]) + ops(client)
    yield bytes([0x81 | (2 << 3), 0x15]) + ops(server)
    yield bytes([0x02, 0x00]) + ops(server)
    yield bytes([0x05, 0x15]) + ops(server)  # mid-stream
    yield bytes([0x80 | (2 << 3), 0x31]) + ops(plain)
    big = deflate([b"A" * 200000])[0]
    yield bytes([0x81 | (2 << 3), 0x00]) + ops(frame(big, rsv1=True))
    # A gap inside a frame, then more frames.
    yield bytes([0x81, 0x15]) + ops(server[:20]) + b"\xfd\x00\x05" + ops(server[25:])


def main():
    if CORPUS.exists():
        for t in ("capture_file", "pipeline_human", "pipeline_json", "shards", "views"):
            shutil.rmtree(CORPUS / t, ignore_errors=True)
    http = set()
    for p in sorted(SAMPLES.glob("*.pcap*")):
        blob = p.read_bytes()
        for t in ("capture_file", "pipeline_human", "pipeline_json", "shards", "views"):
            put(t, blob)
        # The first 40 records alone: small seeds mutate faster.
        recs = list(pcap_records(blob))
        if recs:
            head = blob[:24]
            at = 24
            for _ in range(min(40, len(recs))):
                caplen = struct.unpack("<I", blob[at + 8 : at + 12])[0]
                at += 16 + caplen
            put("pipeline_human", blob[:at])
            put("pipeline_json", blob[:at])
            put("shards", blob[:at])
            put("views", blob[:at])
            put("capture_file", head + blob[24:at][:200])
        for lt, pkt in recs[:30]:
            if lt in LINK_INDEX:
                put("packet_decode", bytes([LINK_INDEX[lt]]) + pkt)
            pl = tcp_payloads(lt, pkt)
            if pl.startswith((b"GET ", b"HTTP/1.1 ")):
                http.add(pl)
    reqs = [h for h in http if h.startswith(b"GET ")]
    resps = [h for h in http if h.startswith(b"HTTP/")]
    for r in reqs:
        put("http_upgrade", r)
    for r, s in zip(reqs, resps):
        put("http_upgrade", r + b"\x00" + s)
    for s in deflate_frames():
        put("ws_decoder", s)
    # reassembly: per-stream limit, ISN, SYN flag, then segments (op, mode, offset, len).
    put("reassembly", bytes([2, 0, 0, 0, 100, 1]) + bytes([0, 0, 0, 10, 20, 0, 0, 0, 0, 10, 4, 0, 0, 30, 2]))
    # app_readers: a reader (index into wsdump::app::NAMES), then messages [flags][len][bytes]
    # from the peers' logs of samples/app/ (flags bit 0: server; bit 1: binary).
    app_index = {"graphql": 2, "graphql-legacy": 1, "jsonrpc": 6, "stomp": 3, "sockjs": 4, "binary": 8}
    for name, index in app_index.items():
        log = SAMPLES / "app" / f"{name}.peer.jsonl"
        if not log.exists():
            continue
        seed = bytearray([index])
        for line in log.read_text().splitlines():
            e = json.loads(line)
            if e.get("dir") != "sent" or not ("text" in e or "base64" in e):
                continue
            b = e["text"].encode() if "text" in e else base64.b64decode(e["base64"])
            flags = (1 if e.get("peer") == "server" else 0) | (2 if "base64" in e else 0)
            seed += bytes([flags]) + struct.pack(">H", min(len(b), 65535)) + b[:65535]
        put("app_readers", bytes(seed))
    # tls_session: tls-wss.pcap's payloads in capture order as pieces [flags][len][bytes]
    # (flags bit 0: server to client), each payload cut to pieces of at most 255 bytes; the
    # target decrypts them with tls-wss.keylog.
    seed = bytearray()
    for lt, pkt in pcap_records((SAMPLES / "tls-wss.pcap").read_bytes()):
        pl = tcp_payloads(lt, pkt)
        if not pl:
            continue
        ip = pkt[14:]
        sport = struct.unpack(">H", ip[(ip[0] & 15) * 4 : (ip[0] & 15) * 4 + 2])[0]
        flags = 1 if sport == 9007 else 0
        for i in range(0, len(pl), 255):
            chunk = pl[i : i + 255]
            seed += bytes([flags, len(chunk)]) + chunk
    put("tls_session", bytes(seed))
    for t in sorted(os.listdir(CORPUS)):
        print(f"{t}: {len(os.listdir(CORPUS / t))} seeds")


if __name__ == "__main__":
    main()
