#!/usr/bin/env python3
"""Measures invented and missed websocket messages: runs wsdump --json on every capture of a
manifest and compares the messages it prints with the expected count.

  scripts/precision.py [--wsdump target/release/wsdump] [--manifest samples/noise/manifest.json]
                       [--external /work/shared/external [--external-manifest scripts/external_manifest.json]]
                       [--markdown] [--only SUBSTRING]

Manifest (JSON): {"captures": [{"file": NAME, "expected": N, "args": [...], "ws_ports": [P, ...],
"messages": [SPEC, ...], "note": "..."}, ...]}.  `file` is relative to the manifest's folder (for --external: to that
folder).  `ws_ports` names the websocket connections (either port of the connection on the list):
messages on any other connection are invented.  Without `ws_ports` every connection may hold the
expected messages.  `messages`, when given, lists the expected messages themselves, each a dict of
message fields that must be equal (e.g. {"opcode": "text", "text": "Hello, world!"}; any of
opcode, dir, text, len, close_code, base64): a found message that matches no spec is invented, a
spec that no found message matches is missed.  Otherwise, per capture:
  invented = messages on non-websocket connections + max(0, messages on websocket ones - expected)
  missed   = max(0, expected - messages on websocket connections)
`unflagged` counts the invented messages that wsdump printed without `"resync": true`, i.e. as
trusted (known only where every invented message is known: expected 0, `ws_ports` or `messages`).
The exit status is 1 when anything was invented, 2 on a usage error, else 0.  Stdlib only.
"""
import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def port_of(addr):
    return int(addr.rsplit(":", 1)[1]) if addr and ":" in addr else None


def run(wsdump, path, args, timeout):
    cmd = [wsdump, "-r", path, "--json"] + list(args)
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=dict(os.environ, LC_ALL="C.UTF-8"))
    except subprocess.TimeoutExpired:
        return None, "timeout", cmd
    events = []
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            events.append({"type": "unparsed"})
    return events, p.returncode, cmd


def measure(wsdump, base, entry, timeout):
    path = os.path.join(base, entry["file"])
    events, status, cmd = run(wsdump, path, entry.get("args", []), timeout)
    label = entry["file"] + ("  " + " ".join(entry["args"]) if entry.get("args") else "")
    row = {"file": label, "expected": entry["expected"], "status": status, "cmd": cmd}
    if events is None:
        row.update(found=None, invented=None, unflagged=None, missed=None, violations=None, gaps=None, opcodes="")
        return row
    ws_ports = set(entry.get("ws_ports", []))
    msgs = [e for e in events if e.get("type") == "message"]
    on_ws = [m for m in msgs if not ws_ports or
             port_of(m.get("client")) in ws_ports or port_of(m.get("server")) in ws_ports]
    off_ws = len(msgs) - len(on_ws)
    # the opcodes of the messages known to be invented (when the expected count is exceeded on a
    # websocket connection, which ones are extra is not known: they are not listed)
    invented_msgs = [m for m in msgs if m not in on_ws] + (on_ws if entry["expected"] == 0 else [])
    ops = collections.Counter(m.get("opcode", "?") for m in invented_msgs)
    if "messages" in entry:
        left = list(on_ws)
        missed = 0
        for spec in entry["messages"]:
            hit = next((m for m in left if all(m.get(k) == v for k, v in spec.items())), None)
            if hit is None:
                missed += 1
            else:
                left.remove(hit)
        invented_msgs = [m for m in msgs if m not in on_ws] + left
        invented, missed = len(invented_msgs), missed
        ops = collections.Counter(m.get("opcode", "?") for m in invented_msgs)
    else:
        invented = off_ws + max(0, len(on_ws) - entry["expected"])
        missed = max(0, entry["expected"] - len(on_ws))
    row.update(
        found=len(msgs),
        invented=invented,
        missed=missed,
        violations=sum(e.get("type") == "violation" for e in events),
        gaps=sum(e.get("type") == "gap" for e in events),
        unflagged=sum(not m.get("resync") for m in invented_msgs),
        opcodes=" ".join(f"{k}:{v}" for k, v in sorted(ops.items())),
    )
    return row


def table(rows, markdown, title):
    cols = ["capture", "expected", "found", "invented", "unflagged", "missed", "violations", "gaps", "exit",
            "invented opcodes"]
    keys = ("found", "invented", "unflagged", "missed", "violations", "gaps")
    data = [[r["file"], r["expected"]] + [r.get(k) for k in keys] + [r["status"], r["opcodes"]] for r in rows]
    tot = [f"TOTAL ({len(rows)})", sum(r["expected"] for r in rows)] + [
        sum(r.get(k) or 0 for r in rows) for k in keys] + ["", ""]
    data.append(tot)
    data = [["" if v is None else str(v) for v in row] for row in data]
    print(f"\n{title}\n")
    if markdown:
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" if i == 0 or i == len(cols) - 1 else "---:" for i in range(len(cols))) + "|")
        for row in data:
            print("| " + " | ".join(row) + " |")
    else:
        w = [max(len(c), *(len(row[i]) for row in data)) for i, c in enumerate(cols)]
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(cols)))
        for row in data:
            print("  ".join(v.ljust(w[i]) if i in (0, len(cols) - 1) else v.rjust(w[i]) for i, v in enumerate(row)))


def load(path):
    with open(path) as f:
        return json.load(f)["captures"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wsdump", default=os.path.join(ROOT, "target", "release", "wsdump"))
    ap.add_argument("--manifest", default=os.path.join(ROOT, "samples", "noise", "manifest.json"))
    ap.add_argument("--no-manifest", action="store_true", help="only the external captures")
    ap.add_argument("--external", help="folder of the external captures (e.g. /work/shared/external)")
    ap.add_argument("--external-manifest", default=os.path.join(HERE, "external_manifest.json"))
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--only", help="captures whose name contains this")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    if not os.access(a.wsdump, os.X_OK):
        print(f"no wsdump binary at {a.wsdump} (cargo build --release)", file=sys.stderr)
        return 2
    sets = []
    if not a.no_manifest:
        sets.append((a.manifest, os.path.dirname(os.path.abspath(a.manifest))))
    if a.external:
        sets.append((a.external_manifest, a.external))
    invented = 0
    for manifest, base in sets:
        rows = []
        for entry in load(manifest):
            if a.only and a.only not in entry["file"]:
                continue
            if not os.path.exists(os.path.join(base, entry["file"])):
                print(f"missing: {os.path.join(base, entry['file'])}", file=sys.stderr)
                continue
            rows.append(measure(a.wsdump, base, entry, a.timeout))
        def rel(x):
            x = os.path.abspath(x)
            return os.path.relpath(x, ROOT) if x.startswith(ROOT + os.sep) else x
        table(rows, a.markdown, f"{rel(manifest)} (captures in {rel(base)})")
        invented += sum(r["invented"] or 0 for r in rows)
    return 1 if invented else 0


if __name__ == "__main__":
    sys.exit(main())
