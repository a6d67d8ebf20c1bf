#!/usr/bin/env python3
"""Builds the HAR that Chrome DevTools' "Save all as HAR" would write for the websocket
sessions in a recording of Network.webSocket* events (chromium-ws.cdp.jsonl).

Headless Chromium cannot save a HAR itself, so this follows what DevTools does with those
events, step by step: the SDK's NetworkManager handlers (webSocketCreated,
webSocketWillSendHandshakeRequest, webSocketHandshakeResponseReceived, webSocketFrameSent/
Received/Error, webSocketClosed) fill a NetworkRequest, and front_end/models/har/Log.ts
turns that into an entry. The quirks are DevTools' own, kept on purpose:

- every frame event moves `responseReceivedTime`, so `timings.wait` runs from the
  handshake request to the *last message*, and `receive` from there to the close;
- `serverIPAddress` is empty (a websocket has no responseReceived with remoteIPAddress),
  so there is no `connection`;
- `response.bodySize` is `transferSize - len(headersText)` with a transfer size of 0 (a
  negative number), and `content.compression` is minus that;
- `headersSize` counts the header text DevTools was given, whose request line Chromium
  writes with the full URL (`GET ws://host/path HTTP/1.1`), not the one on the wire.
- message `time` is the "pseudo wall time": the handshake's wall time plus the
  monotonic time elapsed since.

Usage: devtools_har.py EVENTS.jsonl > OUT.har
"""

import datetime
import json
import re
import sys


def headers_map_to_array(m):
    # NetworkManager.headersMapToHeadersArray: a value with newlines is several headers.
    out = []
    for name, value in m.items():
        for v in str(value).split("\n"):
            out.append({"name": name, "value": v})
    return out


def to_json_date(seconds):
    # JavaScript's Date.prototype.toJSON: milliseconds, UTC, "Z".
    ms = int(seconds * 1000)
    d = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def query_parameters(url):
    # NetworkRequest.parseParameters: split on & and the first =, no decoding.
    q = url.split("#", 1)[0].split("?", 1)
    if len(q) < 2 or not q[1]:
        return []
    out = []
    for pair in q[1].split("&"):
        name, eq, value = pair.partition("=")
        out.append({"name": name, "value": value if eq else ""})
    return out


class Request:
    def __init__(self, request_id, url, initiator):
        self.id = request_id
        self.url = url
        self.initiator = initiator
        self.method = ""
        self.request_headers = []
        self.request_headers_text = ""
        self.issue_time = -1.0
        self.wall_issue_time = 0.0
        self.start_time = -1.0
        self.response_received_time = -1.0
        self.end_time = -1.0
        self.status = 0
        self.status_text = ""
        self.response_headers = []
        self.response_headers_text = ""
        self.frames = []

    def pseudo_wall_time(self, t):
        if self.wall_issue_time:
            return self.wall_issue_time - self.issue_time + t
        return t


def build(events):
    reqs = {}
    order = []
    for e in events:
        p = e["params"]
        m = e["method"]
        if m == "Network.webSocketCreated":
            r = Request(p["requestId"], p["url"], p.get("initiator"))
            reqs[r.id] = r
            order.append(r)
            continue
        r = reqs.get(p["requestId"])
        if r is None:
            continue
        if m == "Network.webSocketWillSendHandshakeRequest":
            r.method = "GET"
            r.request_headers = headers_map_to_array(p["request"]["headers"])
            # setIssueTime: issue time and start time are the same instant.
            r.issue_time = r.start_time = p["timestamp"]
            r.wall_issue_time = p["wallTime"]
        elif m == "Network.webSocketHandshakeResponseReceived":
            resp = p["response"]
            r.status = resp["status"]
            r.status_text = resp["statusText"]
            r.response_headers = headers_map_to_array(resp["headers"])
            r.response_headers_text = resp.get("headersText") or ""
            if resp.get("requestHeaders"):
                r.request_headers = headers_map_to_array(resp["requestHeaders"])
            if resp.get("requestHeadersText"):
                r.request_headers_text = resp["requestHeadersText"]
            r.response_received_time = p["timestamp"]
        elif m in ("Network.webSocketFrameSent", "Network.webSocketFrameReceived"):
            f = p["response"]
            r.frames.append(
                {
                    "type": "send" if m.endswith("Sent") else "receive",
                    "time": r.pseudo_wall_time(p["timestamp"]),
                    "opcode": f["opcode"],
                    "data": f["payloadData"],
                }
            )
            r.response_received_time = p["timestamp"]
        elif m == "Network.webSocketFrameError":
            r.frames.append(
                {
                    "type": "error",
                    "time": r.pseudo_wall_time(p["timestamp"]),
                    "opcode": -1,
                    "data": p["errorMessage"],
                }
            )
            r.response_received_time = p["timestamp"]
        elif m == "Network.webSocketClosed":
            r.end_time = p["timestamp"]
    return order


def ms(t):
    return -1 if t == -1 else t * 1000


def timings(r):
    # Log.ts Entry.buildTimings with no ResourceTiming (websockets never have one).
    queued = r.start_time - r.issue_time if r.issue_time < r.start_time else -1
    t = {
        "blocked": ms(queued),
        "dns": -1,
        "ssl": -1,
        "connect": -1,
        "send": 0,
        "wait": 0,
        "receive": 0,
        "_blocked_queueing": ms(queued),
    }
    if r.response_received_time == -1:
        t["blocked"] = ms(r.end_time - r.issue_time)
        return t
    wait_end = ms(r.response_received_time - r.start_time)
    t["wait"] = wait_end - 0
    t["receive"] = max(ms(r.end_time - r.start_time) - wait_end, 0)
    return t


def http_version(text, pattern):
    m = re.search(pattern, text.split("\r\n", 1)[0]) if text else None
    return m.group(1) if m else "HTTP/0.9"


def entry(r):
    t = timings(r)
    time = sum(max(t[k], 0) for k in ("blocked", "dns", "connect", "send", "wait", "receive"))
    initiator = None
    if r.initiator:
        initiator = {"type": r.initiator["type"]}
        for k in ("url", "requestId", "lineNumber", "stack"):
            if k in r.initiator:
                initiator[k] = r.initiator[k]
    headers_len = len(r.response_headers_text)
    body_size = -1 if not r.response_headers_text else 0 - headers_len
    content = {"size": 0, "mimeType": "x-unknown"}
    if r.response_headers_text:
        content["compression"] = 0 - body_size
    return {
        "_initiator": initiator,
        "_priority": None,
        "_resourceType": "websocket",
        "cache": {},
        "request": {
            "method": r.method,
            "url": r.url.split("#", 1)[0],
            "httpVersion": http_version(r.request_headers_text, r"(HTTP/\d+\.\d+)$"),
            "headers": r.request_headers,
            "queryString": query_parameters(r.url),
            "cookies": [],
            "headersSize": len(r.request_headers_text) if r.request_headers_text else -1,
            "bodySize": 0,
        },
        "response": {
            "status": r.status,
            "statusText": r.status_text,
            "httpVersion": http_version(r.response_headers_text, r"^(HTTP/\d+\.\d+)"),
            "headers": r.response_headers,
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": headers_len if r.response_headers_text else -1,
            "bodySize": body_size,
            "_transferSize": 0,
            "_error": None,
            "_fetchedViaServiceWorker": False,
        },
        "serverIPAddress": "",
        "startedDateTime": to_json_date(r.pseudo_wall_time(r.issue_time)),
        "time": time,
        "timings": t,
        "_webSocketMessages": r.frames,
    }


def main():
    events = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    ua = ""
    for e in events:
        if e["method"] == "Network.webSocketWillSendHandshakeRequest":
            ua = e["params"]["request"]["headers"].get("User-Agent", "")
    webkit = re.search(r"AppleWebKit/([^ ]+)", ua)
    har = {
        "log": {
            "version": "1.2",
            "creator": {"name": "WebInspector", "version": webkit.group(1) if webkit else "n/a"},
            "pages": [],
            "entries": [entry(r) for r in build(events)],
        }
    }
    json.dump(har, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
