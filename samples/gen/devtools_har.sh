#!/usr/bin/env bash
# Records samples/har/workerman-chat.*: a workerman-chat session between two headless
# Chromium pages, captured with tcpdump, and the HAR each page's own DevTools front end saves
# of it (devtools_har.py). tests/har.rs compares wsdump's --har of the capture with them.
#
#   samples/gen/devtools_har.sh SRC
#
# SRC holds checkouts of the server's code (never committed here):
#   git clone -b v5.2.2 https://github.com/walkor/workerman         SRC/workerman
#   git clone -b v1.1.4 https://github.com/workerman-php/coroutine  SRC/coroutine
#   git clone -b v4.0.0 https://github.com/walkor/GatewayWorker     SRC/gateway
#   git clone https://github.com/walkor/workerman-chat              SRC/chat
# Needs root (a network namespace of its own, so the fixed ports 7272/55151/1236/2300 clash
# with nothing), Debian's php-cli, chromium and tcpdump, python3 with websocket-client.
set -euo pipefail
GEN=$(cd "$(dirname "$0")" && pwd)
OUT=$(dirname "$GEN")/har
SRC=$(cd "${1:?usage: devtools_har.sh SRC}" && pwd)
NS=wsdump-devtools-har
TMP=$(mktemp -d /tmp/wsdump-devtools-har.XXXXXX)
chmod 755 "$TMP"
CAP=
CHROME=
cleanup() {
  [[ -n $CHROME ]] && kill "$CHROME" 2>/dev/null || true
  [[ -d $TMP/chat ]] && ip netns exec $NS php "$TMP/chat/start.php" stop >/dev/null 2>&1 || true
  [[ -n $CAP ]] && kill -INT "$CAP" 2>/dev/null || true
  ip netns del $NS 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add $NS
ip netns exec $NS ip link set lo up

# workerman-chat with a stand-in for composer's autoloader (the PSR-4 roots the packages declare).
cp -r "$SRC/chat" "$TMP/chat"
mkdir -p "$TMP/chat/vendor"
cat >"$TMP/chat/vendor/autoload.php" <<'EOF'
<?php
$roots = [
    ['Workerman\\Coroutine\\', getenv('COROUTINE_SRC')],
    ['Workerman\\', getenv('WORKERMAN_SRC')],
    ['Workerman\\', getenv('COROUTINE_SRC')],
    ['GatewayWorker\\', getenv('GATEWAY_SRC')],
    ['', __DIR__ . '/../Applications/Chat/'],
];
spl_autoload_register(function ($class) use ($roots) {
    foreach ($roots as [$prefix, $dir]) {
        if ($prefix === '' || strncmp($class, $prefix, strlen($prefix)) === 0) {
            $f = rtrim($dir, '/') . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($f)) { require $f; return; }
        }
    }
});
EOF
export WORKERMAN_SRC=$SRC/workerman/src COROUTINE_SRC=$SRC/coroutine/src GATEWAY_SRC=$SRC/gateway/src

ip netns exec $NS tcpdump -i any -s 0 -U -w "$TMP/cap.pcap" "tcp port 7272 or tcp port 55151" \
  2>"$TMP/tcpdump.err" &
CAP=$!
for _ in $(seq 50); do grep -q listening "$TMP/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
(cd "$TMP/chat" && ip netns exec $NS php start.php start -d >/dev/null)
ip netns exec $NS chromium --headless --no-sandbox --disable-gpu --remote-debugging-port=9222 \
  --remote-debugging-address=127.0.0.1 --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run \
  --user-data-dir="$TMP/profile" about:blank >"$TMP/chromium.log" 2>&1 &
CHROME=$!
for _ in $(seq 100); do
  ip netns exec $NS python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:9222/json")' \
    2>/dev/null && break
  sleep 0.1
done
ip netns exec $NS python3 "$GEN/devtools_har.py" http://127.0.0.1:55151/ \
  "$OUT/workerman-chat.mynick.chromium.har" "$OUT/workerman-chat.second.chromium.har"
sleep 1
kill "$CHROME"; wait "$CHROME" 2>/dev/null || true; CHROME=
ip netns exec $NS php "$TMP/chat/start.php" stop >/dev/null
sleep 0.5
kill -INT "$CAP"; wait "$CAP" || true; CAP=
cp "$TMP/cap.pcap" "$OUT/workerman-chat.pcap"
tcpdump -r "$OUT/workerman-chat.pcap" 2>/dev/null | wc -l | xargs echo packets:
ls -l "$OUT"/workerman-chat.*
