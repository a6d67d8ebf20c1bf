#!/usr/bin/env python3
"""Build a ground-truth NAME.peer.jsonl from the peers' own frame logs.

    merge.py OUT.peer.jsonl PEERLOG [PEERLOG ...]

Input: JSON lines written by pyws.py / nodews.js, one per frame (or, for what
Node `ws` delivers to the application, one per message):
    {"peer", "ev": "send"|"recv", "t": monotonic_ns, "client", "server",
     "opcode", "fin", "rsv1": bool|null, "data": base64}

For every connection and direction, the sender's frames and the receiver's
frames are assembled into messages (data frames + continuations up to FIN;
control frames are messages of their own) and the two sequences are asserted
to be identical (opcode, payload bytes, and RSV1 wherever the receiver knows
it).  The output has one object per message, ordered by the (CLOCK_MONOTONIC)
time at which the sender sent the message's final frame.
"""
import base64
import json
import sys
from collections import defaultdict

OPNAMES = {1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def assemble(frames):
    msgs, cur = [], None
    for f in frames:
        op, data = f["opcode"], base64.b64decode(f["data"])
        if op >= 8:
            msgs.append({"opcode": op, "data": data, "rsv1": f["rsv1"], "t": f["t"], "frames": 1})
            continue
        if op == 0:
            assert cur is not None, "continuation without a started message"
            cur["data"] += data
            cur["frames"] += 1
        else:
            assert cur is None, "new data message while one is open"
            cur = {"opcode": op, "data": data, "rsv1": f["rsv1"], "t": f["t"], "frames": 1}
        if f["fin"]:
            cur["t"] = f["t"]
            msgs.append(cur)
            cur = None
    assert cur is None, "unfinished message at end of log"
    return msgs


def main():
    out_path, logs = sys.argv[1], sys.argv[2:]
    events = []
    for path in logs:
        with open(path) as fh:
            events += [json.loads(line) for line in fh if line.strip()]
    # (client, server, peer, ev) -> frames, in log order
    streams = defaultdict(list)
    conns = []
    for e in events:
        key = (e["client"], e["server"])
        if key not in conns:
            conns.append(key)
        streams[key + (e["peer"], e["ev"])].append(e)
    out = []
    for client, server in conns:
        for direction, sender, receiver in (("c2s", "client", "server"), ("s2c", "server", "client")):
            sent = assemble(streams[(client, server, sender, "send")])
            rcvd = assemble(streams[(client, server, receiver, "recv")])
            assert len(sent) == len(rcvd), (client, direction, len(sent), len(rcvd))
            for i, (s, r) in enumerate(zip(sent, rcvd)):
                where = f"{client} {direction} message #{i}"
                assert s["opcode"] == r["opcode"], (where, s["opcode"], r["opcode"])
                assert s["data"] == r["data"], (where, len(s["data"]), len(r["data"]))
                if r["rsv1"] is not None:
                    assert bool(s["rsv1"]) == bool(r["rsv1"]), (where, "rsv1")
                out.append((s["t"], client, server, direction, s))
            print(f"{client} -> {server} {direction}: {len(sent)} messages, sender log == receiver log",
                  file=sys.stderr)
    out.sort(key=lambda x: x[0])
    with open(out_path, "w") as fh:
        for _, client, server, direction, m in out:
            op, data = m["opcode"], m["data"]
            rec = {"type": "message", "client": client, "server": server, "dir": direction,
                   "opcode": OPNAMES[op], "len": len(data), "compressed": bool(m["rsv1"])}
            if op == 1:
                rec["text"] = data.decode("utf-8")
            elif op == 8:
                if len(data) >= 2:
                    rec["close_code"] = int.from_bytes(data[:2], "big")
                rec["close_reason"] = data[2:].decode("utf-8")
            else:
                rec["base64"] = base64.b64encode(data).decode()
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} messages to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
