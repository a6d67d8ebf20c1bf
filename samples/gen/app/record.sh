#!/usr/bin/env bash
# Record the application-protocol samples on loopback, with the peers' logs as ground truth.
#
#   samples/gen/app/record.sh NAME    # NAME: socketio socketio2 mqtt mqtt5 graphql graphql-legacy jsonrpc sockjs stomp binary
#   samples/gen/app/record.sh all
#
# Writes samples/app/NAME.pcap and samples/app/NAME.peer.jsonl. Needs root (capture),
# tcpdump, node with this folder's node_modules (npm ci --prefix samples/gen/app), and for
# stomp a RabbitMQ started by rabbitmq.sh, for mqtt5 python with mqttools.
set -euo pipefail
GEN=$(cd "$(dirname "$0")" && pwd)
OUT=$(cd "$GEN/../.." && pwd)/app
mkdir -p "$OUT"
if [[ $# -ne 1 ]]; then sed -n '2,10p' "$0"; exit 2; fi
if [[ $1 == all ]]; then for n in socketio socketio2 mqtt mqtt5 graphql graphql-legacy jsonrpc sockjs stomp binary; do "$0" "$n"; done; exit 0; fi
NAME=$1
case $NAME in
  socketio) PORT=9101 ;;
  socketio2) PORT=9106 ;;
  mqtt) PORT=9102 ;;
  # The MQTT 5 broker is mqttools (pip install mqttools==0.50.0), on 127.0.0.1:1884 behind
  # mqtt5.js's websocket bridge; MQTTOOLS_PYTHON names the python that has it.
  mqtt5) PORT=9109 ;;
  graphql) PORT=9103 ;;
  graphql-legacy) PORT=9108 ;;
  jsonrpc) PORT=9104 ;;
  sockjs) PORT=9105 ;;
  binary) PORT=9107 ;;
  # The broker is RabbitMQ's Web STOMP plugin: start it first with rabbitmq.sh.
  stomp) PORT=15674 ;;
  *) echo "unknown sample $NAME" >&2; exit 2 ;;
esac
ERR=$(mktemp)
tcpdump -i lo -s 0 -U -w "$OUT/$NAME.pcap" "tcp port $PORT" 2>"$ERR" &
CAP=$!
for _ in $(seq 50); do grep -q listening "$ERR" && break; sleep 0.1; done
sleep 0.5
BROKER=
if [[ $NAME == mqtt5 ]]; then
  "${MQTTOOLS_PYTHON:-python3}" -m mqttools broker --host 127.0.0.1 --port 1884 &
  BROKER=$!
  sleep 1.5
fi
node "$GEN/$NAME.js" "$OUT/$NAME.peer.jsonl" "$PORT"
[[ -n $BROKER ]] && kill "$BROKER"
sleep 1
kill -INT "$CAP"
wait "$CAP" || true
cat "$ERR" >&2
rm -f "$ERR"
