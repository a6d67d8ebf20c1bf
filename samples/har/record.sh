#!/usr/bin/env bash
# Records the Chromium side of samples/har: a real websocket session between headless
# Chromium and a Python websockets server on loopback, captured with tcpdump while the
# DevTools protocol reports the same session. Writes, next to this script:
#   chromium-ws.pcap         what went over the wire (tcpdump -i lo)
#   chromium-ws.cdp.jsonl    the Network.webSocket* events DevTools got
#   chromium-ws.devtools.har those events made into a HAR as DevTools' exporter does it
#                            (devtools_har.py)
# Needs root, tcpdump, chromium (Debian's), python3 with websockets and websocket-client.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=9333
TMP=$(mktemp -d /tmp/wsdump-har.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
tcpdump -i lo -s 0 -U -w "$TMP/cap.pcap" "tcp port $PORT" 2>"$TMP/tcpdump.err" &
CAP=$!
python3 "$HERE/server.py" $PORT &
PIDS+=($!)
sleep 1
chromium --headless --no-sandbox --disable-gpu --remote-debugging-port=9222 \
  --remote-debugging-address=127.0.0.1 --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run \
  --user-data-dir="$TMP/profile" about:blank >"$TMP/chromium.log" 2>&1 &
PIDS+=($!)
python3 "$HERE/cdp.py" $PORT "$HERE/chromium-ws.cdp.jsonl"
sleep 1
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
PIDS=()
sleep 0.5
kill -INT $CAP
wait $CAP || true
cp "$TMP/cap.pcap" "$HERE/chromium-ws.pcap"
python3 "$HERE/devtools_har.py" "$HERE/chromium-ws.cdp.jsonl" >"$HERE/chromium-ws.devtools.har"
ls -l "$HERE"/chromium-ws.*
