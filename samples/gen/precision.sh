#!/usr/bin/env bash
# Records samples/precision/: real captures behind wsdump's precision regression tests
# (tests/precision.rs). Each peer is a real program on 127.0.0.1: the Python `websockets`
# server, Node's HTTP server, and clients (samples/gen/precision_peers.py) that send what the
# tests need: odd handshakes, an oversized close, keep-alive probes, Docker's `Upgrade: tcp`.
#
#   samples/gen/precision.sh [NAME ...]   # keepalive oversized-close bad-upgrades upgrade-tcp
#
# Needs root (tcpdump on lo), python3 with websockets (pip install websockets), node.
# Writes samples/precision/NAME.pcap and NAME.peer.log (what the clients sent and received);
# keepalive-mid.pcap is keepalive.pcap cut after the 101, keepalive-probe.pcap cut so that it
# starts at the first keep-alive probe (samples/gen/noise_pcap.py), keepalive-nosyn.pcap
# without its three handshake packets (samples/gen/cut.py).
set -euo pipefail
GEN=$(cd "$(dirname "$0")" && pwd)
OUT=$GEN/../precision
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d /tmp/wsdump-precision.XXXXXX)
CAP=
SRV=
cleanup() {
  [[ -n $SRV ]] && kill "$SRV" 2>/dev/null || true
  [[ -n $CAP ]] && kill -INT "$CAP" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

wait_for() { for _ in $(seq 100); do [[ -s $1 ]] && grep -q "${2:-.}" "$1" && return 0; sleep 0.1; done; echo "timeout: $1" >&2; exit 1; }
cap_start() { # cap_start NAME FILTER
  tcpdump -i lo -s 0 -U -w "$TMP/$1.pcap" "$2" 2>"$TMP/tcpdump.err" &
  CAP=$!
  wait_for "$TMP/tcpdump.err" listening
  sleep 0.5
}
cap_stop() { # cap_stop NAME
  sleep 1
  kill -INT "$CAP"; wait "$CAP" || true; CAP=
  cp "$TMP/$1.pcap" "$OUT/$1.pcap"
}
py_server() { # py_server PORT
  rm -f "$TMP/ready"
  python3 "$GEN/precision_peers.py" server "$1" "$TMP/ready" 2>>"$TMP/server.err" & SRV=$!
  wait_for "$TMP/ready"
}
srv_stop() { kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; SRV=; }

record() {
  case $1 in
    keepalive)
      # The client binds 47001 (higher than the server's 9301): `--port 47001` names the
      # client's port, and only the masking can tell who is who.
      py_server 9301
      cap_start keepalive "tcp port 9301"
      python3 "$GEN/precision_peers.py" keepalive 9301 47001 >"$OUT/keepalive.peer.log"
      cap_stop keepalive; srv_stop
      python3 "$GEN/noise_pcap.py" cut "$OUT/keepalive.pcap" "$OUT/keepalive-mid.pcap" --after-head
      python3 "$GEN/noise_pcap.py" cut "$OUT/keepalive.pcap" "$OUT/keepalive-probe.pcap" --at-probe 1
      python3 "$GEN/cut.py" "$OUT/keepalive.pcap" "$OUT/keepalive-nosyn.pcap" 1-3 ;;
    oversized-close)
      py_server 9303
      cap_start oversized-close "tcp port 9303"
      python3 "$GEN/precision_peers.py" oversized 9303 >"$OUT/oversized-close.peer.log"
      cap_stop oversized-close; srv_stop ;;
    bad-upgrades)
      py_server 9304
      cap_start bad-upgrades "tcp port 9304"
      python3 "$GEN/precision_peers.py" badupgrades 9304 >"$OUT/bad-upgrades.peer.log"
      cap_stop bad-upgrades; srv_stop ;;
    upgrade-tcp)
      rm -f "$TMP/ready"
      node "$GEN/upgrade_tcp.js" 9305 "$TMP/ready" & SRV=$!
      wait_for "$TMP/ready"
      cap_start upgrade-tcp "tcp port 9305"
      python3 "$GEN/precision_peers.py" upgradetcp 9305 >"$OUT/upgrade-tcp.peer.log"
      cap_stop upgrade-tcp; srv_stop ;;
    *) echo "unknown capture $1" >&2; exit 2 ;;
  esac
}

names=("$@")
[[ ${#names[@]} -eq 0 ]] && names=(keepalive oversized-close bad-upgrades upgrade-tcp)
for n in "${names[@]}"; do echo "== $n" >&2; record "$n"; done
