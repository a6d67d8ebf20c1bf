#!/usr/bin/env bash
# Records the captures of samples/tls (see README.md there). Needs root (tcpdump on lo),
# openssl 3 and python3. Each capture: tcpdump on lo, the Python server (server.py), and
# `openssl s_client` fed lines on stdin; s_client's interactive commands send a TLS 1.3
# KeyUpdate ("K": update_requested, "k") or a TLS 1.2 renegotiation ("R").
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 30 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# client_lines NAME: what s_client gets on stdin, one write per line, 0.4 s apart.
feed() {
  sleep 0.8
  for line in "$@"; do printf '%s\n' "$line"; sleep 0.4; done
  sleep 0.4
}

# capture NAME PORT SERVER_CIPHER(or -) CONNECTIONS -- s_client args... ;; lines...
capture() {
  local name=$1 port=$2 cipher=$3 n=$4; shift 4
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  local args=() lines=()
  while [ "$1" != ";;" ]; do args+=("$1"); shift; done; shift
  lines=("$@")
  rm -f "$name".keylog "$name".*.c2s "$name".*.s2c
  tcpdump -i lo -s 0 -U -w "$name.pcap" "tcp port $port" 2>/dev/null &
  local dump=$!
  sleep 1
  if [ -n "${SERVER_CONF:-}" ]; then export OPENSSL_CONF=$SERVER_CONF; fi
  if [ "$cipher" = - ]; then
    python3 server.py "$port" "$work/cert.pem" "$work/key.pem" "$name.keylog" "$name" "$n" &
  else
    python3 server.py "$port" "$work/cert.pem" "$work/key.pem" "$name.keylog" "$name" "$n" "$cipher" &
  fi
  local srv=$!
  unset OPENSSL_CONF
  # Wait until the server listens (a probe connection would count as a client).
  for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$port " && break; sleep 0.1; done
  for ((i = 0; i < n; i++)); do
    local extra=()
    if [ "$n" -gt 1 ]; then
      if [ "$i" -eq 0 ]; then extra=(-sess_out "$work/sess"); else extra=(-sess_in "$work/sess"); fi
    fi
    feed "${lines[@]}" | openssl s_client -connect 127.0.0.1:"$port" -servername localhost \
      "${args[@]}" "${extra[@]}" >/dev/null 2>&1 || true
    sleep 0.3
  done
  wait "$srv" || echo "$name: server failed" >&2
  sleep 0.5
  kill "$dump"; wait "$dump" || true
}

capture tls13-aes128 9441 - 1 -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 ";;" \
  "GET /chat HTTP/1.1" "K" "after the key update" "k" "after the second key update"
capture tls13-aes256 9442 - 1 -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384 ";;" \
  "GET /chat HTTP/1.1" "aes-256 line"
capture tls13-chacha 9443 - 1 -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256 ";;" \
  "GET /chat HTTP/1.1" "chacha line"
capture tls13-resume 9444 - 2 -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 ";;" \
  "resumption line"
# HelloRetryRequest: the client's key share is P-256, the server takes X25519 only.
printf '%s\n' 'openssl_conf = init' '[init]' 'ssl_conf = ssl' '[ssl]' 'system_default = sd' \
  '[sd]' 'Groups = X25519' >"$work/x25519.cnf"
SERVER_CONF=$work/x25519.cnf capture tls13-hrr 9445 - 1 -tls1_3 -groups P-256:X25519 ";;" \
  "after a hello retry"
capture tls12-aes128gcm 9446 ECDHE-RSA-AES128-GCM-SHA256 1 -tls1_2 ";;" \
  "GET /chat HTTP/1.1" "R" "after renegotiation"
capture tls12-aes256gcm 9447 ECDHE-RSA-AES256-GCM-SHA384 1 -tls1_2 ";;" "aes-256-gcm line"
capture tls12-chacha 9448 ECDHE-RSA-CHACHA20-POLY1305 1 -tls1_2 ";;" "chacha line"
capture tls12-cbc-etm 9449 ECDHE-RSA-AES128-SHA 1 -tls1_2 ";;" "cbc encrypt-then-mac line"
capture tls12-cbc-sha384 9450 ECDHE-RSA-AES256-SHA384 1 -tls1_2 -no_etm ";;" \
  "cbc mac-then-encrypt line"
capture tls12-resume 9451 ECDHE-RSA-AES128-GCM-SHA256 3 -tls1_2 ";;" "resumed line"
capture tls12-resume-id 9452 ECDHE-RSA-AES128-GCM-SHA256 2 -tls1_2 -no_ticket ";;" \
  "resumed by session id"

# 0-RTT: Python's ssl cannot accept early data, so here the server is `openssl s_server
# -early_data` (it sends no application data; stdin is a pipe that stays open). The first
# connection gets a ticket, the second resumes with it and sends early.txt as early data.
# Ground truth: what s_client was given to send.
early() {
  local name=tls13-early port=9453
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then return; fi
  rm -f "$name".keylog "$name".*.c2s "$name".*.s2c
  printf 'GET /early-data HTTP/1.1\r\nHost: localhost\r\n\r\n' >"$work/early.txt"
  tcpdump -i lo -s 0 -U -w "$name.pcap" "tcp port $port" 2>/dev/null &
  local dump=$!
  sleep 1
  (sleep 10) | openssl s_server -accept 127.0.0.1:$port -cert "$work/cert.pem" \
    -key "$work/key.pem" -early_data -keylogfile "$name.keylog" >"$work/s_server.out" 2>&1 &
  local srv=$!
  for _ in $(seq 100); do ss -ltn | grep -q "127.0.0.1:$port " && break; sleep 0.1; done
  (sleep 0.5; printf 'first connection\n'; sleep 0.8) |
    openssl s_client -connect 127.0.0.1:$port -tls1_3 -sess_out "$work/sess" >/dev/null 2>&1
  sleep 0.3
  (sleep 0.5; printf 'after early data\n'; sleep 0.8) |
    openssl s_client -connect 127.0.0.1:$port -tls1_3 -sess_in "$work/sess" \
      -early_data "$work/early.txt" >"$work/s_client.out" 2>&1
  sleep 0.5
  kill "$srv"; wait "$srv" 2>/dev/null || true
  sleep 0.3
  kill "$dump"; wait "$dump" || true
  grep -q "Early data was accepted" "$work/s_client.out" || echo "$name: early data refused" >&2
  printf 'first connection\n' >"$name.0.c2s"
  : >"$name.0.s2c"
  { cat "$work/early.txt"; printf 'after early data\n'; } >"$name.1.c2s"
  : >"$name.1.s2c"
}
early
ls -l
