#!/usr/bin/env python3
"""Cross-check a sample capture against its ground truth with tshark's
websocket dissector (independent of wsdump).

    tshark_check.py CAPTURE PORT [--interface ID] [-v]

Runs `tshark -d tcp.port==PORT,http -o tcp.reassemble_out_of_order:TRUE -T pdml`
(the HTTP dissector sees the Upgrade and hands the stream to the websocket
dissector), rebuilds messages from tshark's websocket frames (tshark shows the
reassembled / decompressed payload on a message's final frame) and compares
them, per connection and direction, with NAME.peer.jsonl.  Prints one line per
message and a summary; exit status 1 if anything differs.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

OPNAMES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def run_tshark(cap, port, keylog=None):
    base = ["tshark", "-r", cap, "-d", f"tcp.port=={port},http",
            "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "websocket"]
    if keylog:
        base[3:5] = ["-d", f"tcp.port=={port},tls", "-d", f"tls.port=={port},http",
                     "-o", f"tls.keylog_file:{keylog}"]
    pdml = subprocess.run(base + ["-T", "pdml"], capture_output=True, check=True).stdout
    js = subprocess.run(base + ["-T", "json", "-e", "frame.number", "-e", "websocket.payload.text"],
                        capture_output=True, check=True).stdout
    texts = {}
    for pkt in json.loads(js or b"[]"):
        f = pkt["_source"]["layers"]
        if "websocket.payload.text" in f:
            texts[int(f["frame.number"][0])] = list(f["websocket.payload.text"])
    return ET.fromstring(pdml), texts


def fields(proto):
    out = {}
    for el in proto.iter("field"):
        out.setdefault(el.get("name"), el)
    return out


def tshark_frames(root, texts):
    """One dict per websocket frame tshark dissected, in order."""
    frames = []
    for pkt in root.findall("packet"):
        protos = pkt.findall("proto")
        geninfo = fields(protos[0])
        num = int(geninfo["num"].get("show"))
        allf = {}
        for p in protos:
            for el in p.iter("field"):
                allf.setdefault(el.get("name"), el)
        src = (allf.get("ip.src") if "ip.src" in allf else allf.get("ipv6.src")).get("show")
        dst = (allf.get("ip.dst") if "ip.dst" in allf else allf.get("ipv6.dst")).get("show")
        sport, dport = int(allf["tcp.srcport"].get("show")), int(allf["tcp.dstport"].get("show"))
        iface = allf.get("frame.interface_id")
        text_vals = list(texts.get(num, []))
        cur = None
        for p in protos:
            name = p.get("name")
            if name == "websocket":
                f = fields(p)
                cur = {
                    "frame": num, "iface": iface.get("show") if iface is not None else "0",
                    "src": (src, sport), "dst": (dst, dport),
                    "fin": f["websocket.fin"].get("show") == "1",
                    "rsv": int(f["websocket.rsv"].get("show"), 16),
                    "opcode": int(f["websocket.opcode"].get("show")),
                    "wire_len": int(f.get("websocket.payload_length_ext_64", f.get(
                        "websocket.payload_length_ext_16", f["websocket.payload_length"])).get("show")),
                    "payload": None,
                }
                if "websocket.payload.text" in f:
                    cur["payload"] = text_vals.pop(0).encode() if text_vals else None
                for k in ("websocket.payload.ping", "websocket.payload.pong"):
                    if k in f:
                        cur["payload"] = bytes.fromhex(f[k].get("value") or "")
                if cur["opcode"] in (9, 10) and cur["payload"] is None:
                    cur["payload"] = b""
                if cur["opcode"] == 8:
                    body = b""
                    if "websocket.payload.close.status_code" in f:
                        body = int(f["websocket.payload.close.status_code"].get("show")).to_bytes(2, "big")
                        if "websocket.payload.close.reason" in f:
                            body += f["websocket.payload.close.reason"].get("show").encode()
                    cur["payload"] = body
                cur["decompression_failed"] = "websocket.decompression.failed.expert" in f or any(
                    "Decompression failed" in (el.get("showname") or "") for el in p.iter("field"))
                frames.append(cur)
            elif cur is not None and name in ("fake-field-wrapper", "data"):
                for el in p.iter("field"):
                    if el.get("name") == "data.data" and cur["opcode"] in (0, 2) and cur["payload"] is None:
                        cur["payload"] = bytes.fromhex(el.get("value") or "")
    return frames


def tshark_messages(frames, server_port):
    """Group tshark's frames into messages per (client, direction)."""
    open_msgs, out = {}, []
    for f in frames:
        if f["dst"][1] == server_port:
            client, d = f["src"], "c2s"
        else:
            client, d = f["dst"], "s2c"
        key = (client, d)
        if f["opcode"] >= 8:
            out.append({"client": client, "dir": d, "opcode": f["opcode"], "frames": [f],
                        "rsv1": bool(f["rsv"] & 4), "payload": f["payload"]})
            continue
        if f["opcode"] != 0 or key not in open_msgs:
            open_msgs[key] = {"client": client, "dir": d, "opcode": f["opcode"], "frames": [],
                              "rsv1": bool(f["rsv"] & 4), "payload": None}
        m = open_msgs[key]
        m["frames"].append(f)
        if f["fin"]:
            m["payload"] = f["payload"]
            out.append(m)
            del open_msgs[key]
    for m in open_msgs.values():
        m["payload"] = None
        out.append(m)
    return out


def fmt_client(c):
    host, port = c
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def truth_payload(m):
    if m["opcode"] == "text":
        return m["text"].encode()
    if m["opcode"] == "close":
        if "close_code" not in m:
            return b""
        return m["close_code"].to_bytes(2, "big") + m["close_reason"].encode()
    return base64.b64decode(m["base64"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("port", type=int)
    ap.add_argument("--truth")
    ap.add_argument("--interface", type=int, help="only packets of this pcapng interface id")
    ap.add_argument("--keylog", help="TLS key log file: decrypt (tls-wss)")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    cap = a.capture
    truth_path = a.truth or cap.rsplit(".", 1)[0] + ".peer.jsonl"
    truth = [json.loads(l) for l in open(truth_path) if l.strip()]
    tmp = None
    if a.interface is not None:
        tmp = tempfile.NamedTemporaryFile(suffix=".pcapng", delete=False).name
        subprocess.run(["tshark", "-r", cap, "-Y", f"frame.interface_id=={a.interface}", "-w", tmp],
                       check=True, capture_output=True)
        cap = tmp
    root, texts = run_tshark(cap, a.port, a.keylog)
    if tmp:
        os.unlink(tmp)
    frames = tshark_frames(root, texts)
    msgs = tshark_messages(frames, a.port)
    print(f"{a.capture}{'' if a.interface is None else ' (interface %d)' % a.interface}: "
          f"tshark dissected {len(frames)} websocket frames -> {len(msgs)} messages; "
          f"ground truth has {len(truth)} messages")
    # compare per (client, dir) sequence
    from collections import defaultdict
    tq, sq = defaultdict(list), defaultdict(list)
    for m in msgs:
        tq[(fmt_client(m["client"]), m["dir"])].append(m)
    for idx, m in enumerate(truth):
        m["_idx"] = idx
        sq[(m["client"], m["dir"])].append(m)
    problems = 0
    last_frame = {}  # truth index -> number of the frame that completes the message
    for key in sorted(set(tq) | set(sq)):
        ts, gs = tq[key], sq[key]
        for i in range(max(len(ts), len(gs))):
            t = ts[i] if i < len(ts) else None
            g = gs[i] if i < len(gs) else None
            issues = []
            if t is None:
                issues.append("missing in tshark")
            elif g is None:
                issues.append("extra in tshark")
            else:
                if OPNAMES.get(t["opcode"]) != g["opcode"]:
                    issues.append(f"opcode {OPNAMES.get(t['opcode'])} != {g['opcode']}")
                if t["rsv1"] != g["compressed"]:
                    issues.append(f"rsv1 {t['rsv1']} != compressed {g['compressed']}")
                want = truth_payload(g)
                if t["payload"] is None:
                    issues.append("tshark shows no payload")
                elif t["payload"] != want:
                    issues.append(f"payload differs (tshark {len(t['payload'])} bytes, truth {len(want)})")
                if any(f["decompression_failed"] for f in t["frames"]):
                    issues.append("tshark: decompression failed")
            if t and g:
                last_frame[g["_idx"]] = t["frames"][-1]["frame"]
            frames_s = ",".join(str(f["frame"]) for f in t["frames"]) if t else "-"
            desc = f"{key[0]} {key[1]} #{i:<2} {(g or {}).get('opcode', '?'):6} len={(g or {}).get('len', '?'):<6} frames {frames_s}"
            if issues:
                problems += 1
                print(f"  DIFF {desc}: {'; '.join(issues)}")
            elif a.v:
                print(f"  ok   {desc}")
    # ground truth order == wire order of the frames that complete each message
    order = [last_frame[i] for i in sorted(last_frame)]
    bad = [(i, a_, b_) for i, (a_, b_) in enumerate(zip(order, order[1:])) if b_ < a_]
    if bad:
        problems += 1
        print(f"  DIFF order: ground-truth order differs from capture order at {bad[:5]}")
    elif a.v:
        print("  ok   ground-truth order == order of the messages' final frames in the capture")
    print(f"  => {'all messages agree' if not problems else f'{problems} message(s) differ'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
