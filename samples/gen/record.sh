#!/usr/bin/env bash
# Record one (or all) of wsdump's sample captures on loopback, with ground truth.
#
#   samples/gen/record.sh NAME      # NAME: python-deflate node-fragmented ipv6
#                                   #       sll2-any dumpcap-multi nanosecond tls-wss
#                                   #       wss-python-deflate wss-python-aes128
#                                   #       wss-python-chacha wss-node-gcm wss-node-chacha
#                                   #       wss-python-ccm
#   samples/gen/record.sh all
#
# Writes samples/NAME.pcap (.pcapng for dumpcap-multi) and samples/NAME.peer.jsonl.
# Needs root (packet capture), python3 with `websockets`, node with
# samples/gen/node_modules (npm install --prefix samples/gen), tcpdump, dumpcap.
set -euo pipefail

GEN=$(cd "$(dirname "$0")" && pwd)
SAMPLES=$(dirname "$GEN")

if [[ $# -ne 1 ]]; then
  sed -n '2,10p' "$0"
  exit 2
fi
if [[ $1 == all ]]; then
  for n in python-deflate node-fragmented ipv6 sll2-any dumpcap-multi nanosecond tls-wss \
    wss-python-deflate wss-python-aes128 wss-python-chacha wss-node-gcm wss-node-chacha \
    wss-python-ccm; do
    "$0" "$n"
  done
  exit 0
fi

NAME=$1
TMP=$(mktemp -d /tmp/wsdump-rec.XXXXXX)
chmod 755 "$TMP"
CAP_PID=
SRV_PID=
cleanup() {
  [[ -n $SRV_PID ]] && kill "$SRV_PID" 2>/dev/null || true
  [[ -n $CAP_PID ]] && kill -INT "$CAP_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

wait_for() { # wait_for FILE [PATTERN]
  for _ in $(seq 100); do
    if [[ -s $1 ]] && grep -q "${2:-.}" "$1"; then return 0; fi
    sleep 0.1
  done
  echo "timeout waiting for $1 ${2:-}" >&2
  cat "$1" >&2 || true
  exit 1
}

start_capture() { # start_capture PATTERN CMD...
  local pattern=$1; shift
  echo "+ $*" >&2
  "$@" 2>"$TMP/capture.err" &
  CAP_PID=$!
  wait_for "$TMP/capture.err" "$pattern"
  sleep 1
}

stop_capture() {
  sleep 1
  kill -INT "$CAP_PID"
  wait "$CAP_PID" || true
  CAP_PID=
  cat "$TMP/capture.err" >&2
}

py_server() { # py_server SCENARIO HOST PORT [extra args]
  local sc=$1 host=$2 port=$3; shift 3
  python3 "$GEN/pyws.py" server --scenario "$sc" --host "$host" --port "$port" \
    --log "$TMP/server.log" --ready "$TMP/ready" "$@" &
  SRV_PID=$!
  wait_for "$TMP/ready"
}

py_client() { # py_client SCENARIO HOST PORT [extra args]
  local sc=$1 host=$2 port=$3; shift 3
  python3 "$GEN/pyws.py" client --scenario "$sc" --host "$host" --port "$port" \
    --log "$TMP/client.log" "$@"
  wait "$SRV_PID"
  SRV_PID=
}

node_pair() { # node_pair SCENARIO PORT
  node "$GEN/nodews.js" server "$1" "$2" "$TMP/server.log" "$TMP/ready" &
  SRV_PID=$!
  wait_for "$TMP/ready"
  node "$GEN/nodews.js" client "$1" "$2" "$TMP/client.log"
  wait "$SRV_PID"
  SRV_PID=
}

tls_cert() { # a throwaway self-signed certificate, not kept
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
}

TCPDUMP_READY='listening on'
case $NAME in
  python-deflate) # permessage-deflate with context takeover (websockets' default)
    PORT=9001; OUT=$NAME.pcap
    start_capture "$TCPDUMP_READY" tcpdump -i lo -s 0 -w "$TMP/$OUT" "port $PORT"
    # small MSS and receive windows: the big messages span many segments
    py_server "$NAME" 127.0.0.1 $PORT --small-rcvbuf
    py_client "$NAME" 127.0.0.1 $PORT --mss 1448
    ;;
  node-fragmented)
    PORT=9002; OUT=$NAME.pcap
    start_capture "$TCPDUMP_READY" tcpdump -i lo -s 0 -w "$TMP/$OUT" "port $PORT"
    node_pair "$NAME" $PORT
    ;;
  ipv6)
    PORT=9003; OUT=$NAME.pcap
    start_capture "$TCPDUMP_READY" tcpdump -i lo -s 0 -w "$TMP/$OUT" "port $PORT"
    py_server "$NAME" ::1 $PORT
    py_client "$NAME" ::1 $PORT
    ;;
  sll2-any)
    PORT=9004; OUT=$NAME.pcap
    start_capture "$TCPDUMP_READY" tcpdump -i any -s 0 -w "$TMP/$OUT" "port $PORT"
    node_pair "$NAME" $PORT
    ;;
  dumpcap-multi)
    PORT=9005; OUT=$NAME.pcapng
    # -f before the first -i: the default capture filter for every interface
    start_capture "Capturing on" dumpcap -q -f "port $PORT" -i lo -i any -s 262144 -w "$TMP/$OUT"
    py_server "$NAME" 127.0.0.1 $PORT
    py_client "$NAME" 127.0.0.1 $PORT
    ;;
  nanosecond)
    PORT=9006; OUT=$NAME.pcap
    start_capture "$TCPDUMP_READY" tcpdump -i lo -s 0 --time-stamp-precision=nano -w "$TMP/$OUT" "port $PORT"
    py_server "$NAME" 127.0.0.1 $PORT
    py_client "$NAME" 127.0.0.1 $PORT
    ;;
  tls-wss)
    PORT=9007; OUT=$NAME.pcap
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
      -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
    start_capture "$TCPDUMP_READY" tcpdump -i lo -s 0 -w "$TMP/$OUT" "port $PORT"
    py_server "$NAME" 127.0.0.1 $PORT --tls --cert "$TMP/cert.pem" --key "$TMP/key.pem"
    py_client "$NAME" 127.0.0.1 $PORT --tls --keylog "$TMP/$NAME.keylog"
    ;;
  wss-python-deflate | wss-python-aes128 | wss-python-chacha | wss-python-ccm)
    # Python websockets over TLS 1.3; the client's SSLContext.keylog_filename is the key
    # log. The suite is chosen by the client's OpenSSL configuration (Python's ssl has no
    # call for TLS 1.3 suites); wss-python-deflate takes the default (TLS_AES_256_GCM_SHA384).
    case $NAME in
      wss-python-deflate) PORT=9011; SCENARIO=python-deflate; SUITE= ;;
      wss-python-aes128) PORT=9012; SCENARIO=ipv6; SUITE=TLS_AES_128_GCM_SHA256 ;;
      wss-python-chacha) PORT=9013; SCENARIO=nanosecond; SUITE=TLS_CHACHA20_POLY1305_SHA256 ;;
      # a suite wsdump does not decrypt (OpenSSL enables CCM only when asked, on both sides)
      wss-python-ccm) PORT=9016; SCENARIO=nanosecond; SUITE=TLS_AES_128_CCM_SHA256 ;;
    esac
    if [[ -n $SUITE ]]; then
      printf '%s\n' 'openssl_conf = init' '[init]' 'ssl_conf = ssl' '[ssl]' \
        'system_default = sd' '[sd]' "Ciphersuites = $SUITE" >"$TMP/suite.cnf"
    fi
    SERVER_CONF=
    [[ $NAME == wss-python-ccm ]] && SERVER_CONF=$TMP/suite.cnf
    OUT=$NAME.pcap
    tls_cert
    start_capture "$TCPDUMP_READY" tcpdump -i lo -s 0 -w "$TMP/$OUT" "port $PORT"
    OPENSSL_CONF=$SERVER_CONF py_server "$SCENARIO" 127.0.0.1 $PORT --tls --cert "$TMP/cert.pem" --key "$TMP/key.pem"
    if [[ -n $SUITE ]]; then
      OPENSSL_CONF=$TMP/suite.cnf py_client "$SCENARIO" 127.0.0.1 $PORT --tls --keylog "$TMP/$NAME.keylog"
    elif [[ $SCENARIO == python-deflate ]]; then
      py_client "$SCENARIO" 127.0.0.1 $PORT --tls --keylog "$TMP/$NAME.keylog" --mss 1448
    else
      py_client "$SCENARIO" 127.0.0.1 $PORT --tls --keylog "$TMP/$NAME.keylog"
    fi
    ;;
  wss-node-gcm | wss-node-chacha)
    # Node ws over TLS 1.2 with one suite; the client's `node --tls-keylog` is the key log.
    case $NAME in
      wss-node-gcm) PORT=9014; CIPHER=ECDHE-RSA-AES128-GCM-SHA256 ;;
      wss-node-chacha) PORT=9015; CIPHER=ECDHE-RSA-CHACHA20-POLY1305 ;;
    esac
    OUT=$NAME.pcap
    tls_cert
    start_capture "$TCPDUMP_READY" tcpdump -i lo -s 0 -w "$TMP/$OUT" "port $PORT"
    WSDUMP_TLS_CERT=$TMP/cert.pem WSDUMP_TLS_KEY=$TMP/key.pem WSDUMP_TLS_CIPHER=$CIPHER \
      node "$GEN/nodews.js" server "$NAME" $PORT "$TMP/server.log" "$TMP/ready" &
    SRV_PID=$!
    wait_for "$TMP/ready"
    WSDUMP_TLS_CERT=$TMP/cert.pem WSDUMP_TLS_KEY=$TMP/key.pem \
      node --tls-keylog="$TMP/$NAME.keylog" "$GEN/nodews.js" client "$NAME" $PORT "$TMP/client.log"
    wait "$SRV_PID"
    SRV_PID=
    ;;
  *)
    echo "unknown sample $NAME" >&2
    exit 2
    ;;
esac
stop_capture

if [[ $NAME == tls-wss ]]; then
  # the capture holds only TLS records, so there is no websocket message
  # wsdump could decode: empty ground truth.  What the peers exchanged inside
  # TLS goes to NAME.decrypted.peer.jsonl, with the TLS secrets in NAME.keylog
  # (tshark -o tls.keylog_file:samples/tls-wss.keylog can decrypt it).
  python3 "$GEN/merge.py" "$TMP/$NAME.decrypted.peer.jsonl" "$TMP/server.log" "$TMP/client.log"
  : >"$TMP/$NAME.peer.jsonl"
  cp "$TMP/$NAME.decrypted.peer.jsonl" "$TMP/$NAME.keylog" "$SAMPLES/"
else
  python3 "$GEN/merge.py" "$TMP/$NAME.peer.jsonl" "$TMP/server.log" "$TMP/client.log"
fi
if [[ $NAME == wss-* ]]; then
  # the ground truth is what the peers sent inside TLS; wsdump needs the key log for it
  cp "$TMP/$NAME.keylog" "$SAMPLES/"
fi
if [[ $NAME == wss-python-ccm ]]; then
  # wsdump does not decrypt CCM: what the peers sent is kept apart (NAME.sent.jsonl), and
  # the test expects no message and a notice that says why
  mv "$TMP/$NAME.peer.jsonl" "$TMP/$NAME.sent.jsonl"
  cp "$TMP/$NAME.sent.jsonl" "$SAMPLES/"
  : >"$TMP/$NAME.peer.jsonl"
fi
cp "$TMP/$OUT" "$SAMPLES/$OUT"
cp "$TMP/$NAME.peer.jsonl" "$SAMPLES/$NAME.peer.jsonl"
capinfos -c -E -T "$SAMPLES/$OUT" >&2 || true
echo "wrote $SAMPLES/$OUT and $SAMPLES/$NAME.peer.jsonl" >&2
