# Drives headless Chromium over the DevTools protocol (port 9222 on loopback): opens a
# websocket from about:blank, runs a short script of sends, and records every
# Network.webSocket* event as DevTools receives it, one JSON object a line.
import json, sys, time, urllib.request, websocket

PORT = int(sys.argv[1]); OUT = sys.argv[2]
for _ in range(100):
    try:
        targets = json.load(urllib.request.urlopen("http://127.0.0.1:9222/json"))
        break
    except Exception:
        time.sleep(0.1)
page = next(t for t in targets if t["type"] == "page")
ws = websocket.create_connection(page["webSocketDebuggerUrl"], suppress_origin=True)
n = 0
def call(method, **params):
    global n; n += 1
    ws.send(json.dumps({"id": n, "method": method, "params": params}))
    return n
call("Network.enable")
JS = """
(async () => {
  const w = new WebSocket('ws://127.0.0.1:%d/chat?room=1');
  w.binaryType = 'arraybuffer';
  const next = () => new Promise(r => w.addEventListener('message', r, {once: true}));
  await new Promise(r => w.onopen = r);
  w.send('hello from chromium'); await next();
  w.send('caf\\u00e9 \\u2192 \\u{1F600}'); await next();
  w.send(new Uint8Array([0, 1, 2, 254, 255])); await next();
  w.send(''); await next();
  w.send('fragmented please'); await next();
  w.send('ping me'); await next();
  w.send('close please');
  await new Promise(r => w.onclose = r);
  return 'done';
})()
""" % PORT
events = []
call("Runtime.evaluate", expression=JS, awaitPromise=True)
deadline = time.time() + 15
ws.settimeout(1)
while time.time() < deadline:
    try:
        m = json.loads(ws.recv())
    except websocket.WebSocketTimeoutException:
        continue
    if m.get("method", "").startswith("Network.webSocket"):
        events.append(m)
        if m["method"] == "Network.webSocketClosed":
            break
with open(OUT, "w") as f:
    for e in events:
        f.write(json.dumps(e) + "\n")
print(len(events), "events")
