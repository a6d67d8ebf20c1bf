#!/bin/bash
# Records the noise corpus (samples/noise/): real non-websocket traffic between real programs on
# 127.0.0.1 (and one HTTP download between two network namespaces this script creates, over a veth
# with MTU 1500).  Every capture is written twice: NAME-start.pcap (from the first SYN) and
# NAME-mid.pcap (cut by noise_pcap.py so that every connection starts after its handshake).
#
# Usage (as root, Debian 12):  samples/gen/noise.sh [install] [NAME ...]
#   install   apt-get the programs first
#   NAME      http-download http-keepalive http-mtu1500 tls12 tls13 h2c h2-tls ssh redis mqtt
#             postgres keepalive zerowindow   (default: all)
# Ground truth for every file: zero websocket messages.
# Not recorded here: gatewayworker-*.pcap and mixed-gatewayworker.pcap (they need workerman-chat's
# PHP sources, which are not in this repository; samples/noise/README.md says in words how they were
# made).  The mixed-*.pcapng files: samples/gen/noise_mixed.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(cd "$HERE/../noise" 2>/dev/null && pwd || { mkdir -p "$HERE/../noise" && cd "$HERE/../noise" && pwd; })
W=${NOISE_WORK:-/tmp/wsdump-noise}
PCAP="python3 $HERE/noise_pcap.py"
mkdir -p "$W"

if [ "${1:-}" = install ]; then
  shift
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y tcpdump tshark nginx openssh-server openssh-client redis-server redis-tools \
    mosquitto mosquitto-clients postgresql curl nghttp2-server nghttp2-client openssl apache2-utils \
    iproute2 ethtool
fi

PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# cap_start FILE FILTER [netns]: tcpdump -s 0 on lo (or veth in a netns); waits until it listens
cap_start() {
  local f=$1 filter=$2 ns=${3:-} ifc=lo
  rm -f "$W/tcpdump.err"
  if [ -n "$ns" ]; then
    ip netns exec "$ns" tcpdump -i veth0 -s 0 -U -w "$f" "$filter" 2>"$W/tcpdump.err" &
  else
    tcpdump -i lo -s 0 -U -w "$f" "$filter" 2>"$W/tcpdump.err" &
  fi
  CAP=$!
  for _ in $(seq 50); do grep -q listening "$W/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
}
cap_stop() { sleep 1; kill -INT "$CAP"; wait "$CAP" || true; }

# both NAME MODE [ARG]: copy the capture into samples/noise and write the mid-stream cut
both() {
  local name=$1 mode=$2 arg=${3:-}
  cp "$W/$name.pcap" "$OUT/$name-start.pcap"
  $PCAP cut "$OUT/$name-start.pcap" "$OUT/$name-mid.pcap" "$mode" $arg
}

wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 not up" >&2; return 1; }

files() {  # seeded content: nothing random between runs
  mkdir -p "$W/www"
  python3 - "$W/www" <<'EOF'
import gzip, io, random, sys, zipfile
d = sys.argv[1]
r = random.Random(6455)
open(f"{d}/random.bin", "wb").write(bytes(r.getrandbits(8) for _ in range(90000)))
open(f"{d}/small.bin", "wb").write(bytes(r.getrandbits(8) for _ in range(20000)))
lines = "".join(f"{i:06d} {r.getrandbits(64):016x} the quick brown fox jumps over the lazy dog\n" for i in range(1200))
open(f"{d}/page.txt", "w").write(lines)
open(f"{d}/data.gz", "wb").write(gzip.compress(lines.encode() * 2, mtime=0))
z = io.BytesIO()
with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
    zf.writestr(zipfile.ZipInfo("random.bin", (2026, 1, 1, 0, 0, 0)), bytes(r.getrandbits(8) for _ in range(20000)))
    zf.writestr(zipfile.ZipInfo("lines.txt", (2026, 1, 1, 0, 0, 0)), lines, zipfile.ZIP_DEFLATED)
open(f"{d}/archive.zip", "wb").write(z.getvalue())
EOF
}

certs() {
  [ -f "$W/cert.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" \
    -days 30 -subj /CN=localhost 2>/dev/null
}

nginx_start() {  # nginx_start [listen address]: plain HTTP on 8081, TLS + h2 on 8443
  local addr=${1:-127.0.0.1}
  certs
  cat > "$W/nginx.conf" <<EOF
worker_processes 1;
error_log $W/nginx-error.log;
pid $W/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  types { application/octet-stream bin; application/gzip gz; application/zip zip; text/plain txt; }
  sendfile on;
  gzip on; gzip_types text/plain; gzip_min_length 100;
  keepalive_requests 100;
  server { listen $addr:8081; root $W/www; }
  server { listen $addr:8443 ssl http2; root $W/www;
           ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem; ssl_protocols TLSv1.2 TLSv1.3; }
}
EOF
  nginx -c "$W/nginx.conf" -p "$W" -g 'daemon off;' &
  NGINX=$!; PIDS+=($NGINX)
}
nginx_stop() { kill "$NGINX"; wait "$NGINX" 2>/dev/null || true; }

rec_http_download() {
  files; nginx_start; wait_port 8081
  cap_start "$W/http-download.pcap" 'tcp port 8081'
  curl -s -o /dev/null http://127.0.0.1:8081/random.bin
  python3 -c 'import urllib.request as u
for p in ("data.gz", "archive.zip"): u.urlopen("http://127.0.0.1:8081/" + p).read()'
  cap_stop; nginx_stop
  both http-download --after-head
}

rec_http_keepalive() {
  files; nginx_start; wait_port 8081
  cap_start "$W/http-keepalive.pcap" 'tcp port 8081'
  # one connection, four requests; page.txt is gzipped on the fly by nginx: chunked encoding
  curl -s --compressed -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    http://127.0.0.1:8081/small.bin http://127.0.0.1:8081/page.txt http://127.0.0.1:8081/archive.zip \
    http://127.0.0.1:8081/nothing-here
  ab -q -k -n 4 -c 1 http://127.0.0.1:8081/small.bin > /dev/null
  cap_stop; nginx_stop
  both http-keepalive --after-head
}

rec_http_mtu1500() {  # two namespaces, veth MTU 1500, offloads off: Ethernet-sized segments
  files
  ip netns del wsn-cli 2>/dev/null || true; ip netns del wsn-srv 2>/dev/null || true
  ip netns add wsn-cli; ip netns add wsn-srv
  ip link add wsn-c type veth peer name wsn-s
  ip link set wsn-c netns wsn-cli; ip link set wsn-s netns wsn-srv
  ip -n wsn-cli link set wsn-c name veth0; ip -n wsn-srv link set wsn-s name veth0
  ip -n wsn-cli addr add 10.250.0.1/30 dev veth0; ip -n wsn-srv addr add 10.250.0.2/30 dev veth0
  for ns in wsn-cli wsn-srv; do
    ip -n $ns link set lo up; ip -n $ns link set veth0 mtu 1500 up
    ip netns exec $ns ethtool -K veth0 tso off gso off gro off >/dev/null 2>&1 || true
  done
  ip netns exec wsn-srv bash -c "$(declare -f certs nginx_start); W=$W; PIDS=(); nginx_start 10.250.0.2; wait" &
  local ns_pid=$!
  sleep 1
  cap_start "$W/http-mtu1500.pcap" 'tcp port 8081' wsn-cli
  ip netns exec wsn-cli curl -s -o /dev/null http://10.250.0.2:8081/random.bin
  ip netns exec wsn-cli curl -s -o /dev/null http://10.250.0.2:8081/archive.zip
  cap_stop
  ip netns pids wsn-srv | xargs -r kill; wait $ns_pid 2>/dev/null || true
  ip netns del wsn-cli; ip netns del wsn-srv
  both http-mtu1500 --after-head
}

rec_tls() {  # rec_tls 12|13: openssl s_server -WWW; clients curl -k and openssl s_client; key logs kept
  local v=$1 port=$((4400 + $1)) opt
  [ "$v" = 12 ] && opt=-tls1_2 || opt=-tls1_3
  files; certs
  rm -f "$W/tls$v.keylog"
  (cd "$W/www" && exec openssl s_server -quiet -accept 127.0.0.1:$port -cert "$W/cert.pem" -key "$W/key.pem" \
     $opt -WWW -keylogfile "$W/tls$v-server.keylog") &
  local srv=$!; PIDS+=($srv); wait_port $port
  cap_start "$W/tls$v-bulk.pcap" "tcp port $port"
  local copt="--tlsv1.3"; [ "$v" = 12 ] && copt="--tlsv1.2 --tls-max 1.2"
  SSLKEYLOGFILE="$W/tls$v.keylog" curl -sk $copt -o /dev/null https://127.0.0.1:$port/random.bin
  sleep 0.3
  (printf 'GET /archive.zip HTTP/1.0\r\n\r\n'; sleep 1) | openssl s_client -quiet -connect 127.0.0.1:$port \
    $opt -keylogfile "$W/tls$v.keylog" > /dev/null 2>"$W/s_client.err" || true
  cap_stop; kill $srv; wait $srv 2>/dev/null || true
  cat "$W/tls$v.keylog" > "$OUT/tls$v-bulk.keylog"
  both tls$v-bulk --skip-data 4
}

rec_h2c() {
  files
  nghttpd --no-tls -a 127.0.0.1 -d "$W/www" 8082 &
  local srv=$!; PIDS+=($srv); wait_port 8082
  cap_start "$W/h2c.pcap" 'tcp port 8082'
  nghttp -n http://127.0.0.1:8082/random.bin http://127.0.0.1:8082/small.bin http://127.0.0.1:8082/nothing-here
  cap_stop; kill $srv; wait $srv 2>/dev/null || true
  both h2c --skip-data 3
}

rec_h2_tls() {
  files; nginx_start; wait_port 8443
  rm -f "$W/h2-tls.keylog"
  cap_start "$W/h2-tls.pcap" 'tcp port 8443'
  SSLKEYLOGFILE="$W/h2-tls.keylog" curl -sk --http2 -o /dev/null -o /dev/null \
    https://127.0.0.1:8443/random.bin https://127.0.0.1:8443/small.bin
  cap_stop; nginx_stop
  cp "$W/h2-tls.keylog" "$OUT/h2-tls.keylog"
  both h2-tls --skip-data 4
}

rec_ssh() {  # sshd in the foreground on 127.0.0.1:2222 with a throwaway host key and user key
  local s=$W/ssh; mkdir -p "$s" /run/sshd; chmod 700 "$s"
  [ -f "$s/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$s/host_ed25519"
  [ -f "$s/user_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$s/user_ed25519"
  cp "$s/user_ed25519.pub" "$s/authorized_keys"
  cat > "$s/sshd_config" <<EOF
Port 2222
ListenAddress 127.0.0.1
HostKey $s/host_ed25519
PidFile $s/sshd.pid
AuthorizedKeysFile $s/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
  /usr/sbin/sshd -D -e -f "$s/sshd_config" 2>"$s/sshd.log" &
  local srv=$!; PIDS+=($srv); wait_port 2222
  local o="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR -i $s/user_ed25519"
  files
  cap_start "$W/ssh.pcap" 'tcp port 2222'
  # an interactive session on a pty, typed line by line
  (sleep 1; for c in 'uname -sr' 'ls /usr' 'head -c 3000 /dev/urandom | base64' 'exit'; do echo "$c"; sleep 0.4; done) |
    ssh -tt -p 2222 $o root@127.0.0.1 > /dev/null 2>&1 || true
  scp -q -P 2222 $o "$W/www/small.bin" root@127.0.0.1:/tmp/wsdump-noise-scp.bin
  cap_stop; kill $srv; wait $srv 2>/dev/null || true
  rm -f /tmp/wsdump-noise-scp.bin
  both ssh --skip-data 12
}

rec_redis() {
  redis-server --port 6380 --bind 127.0.0.1 --save '' --appendonly no --daemonize no --loglevel warning &
  local srv=$!; PIDS+=($srv); wait_port 6380
  cap_start "$W/redis.pcap" 'tcp port 6380'
  head -c 3000 "$W/www/random.bin" | redis-cli -p 6380 -x SET blob > /dev/null
  redis-cli -p 6380 GET blob > /dev/null
  # commands as arguments (redis-cli reading commands from stdin first asks for COMMAND DOCS, 170 KB)
  redis-cli -p 6380 SET greeting hello > /dev/null; redis-cli -p 6380 INCR counter > /dev/null
  redis-cli -p 6380 LPUSH list a b c d > /dev/null; redis-cli -p 6380 LRANGE list 0 -1 > /dev/null
  redis-cli -p 6380 HSET h f1 v1 f2 v2 > /dev/null; redis-cli -p 6380 HGETALL h > /dev/null
  redis-cli -p 6380 INFO server > /dev/null
  redis-benchmark -p 6380 -n 20 -c 2 -d 64 -q -t set,get,lpush > /dev/null
  cap_stop; kill $srv; wait $srv 2>/dev/null || true
  both redis --skip-data 1
}

rec_mqtt() {
  printf 'listener 1884 127.0.0.1\nallow_anonymous true\npersistence false\n' > "$W/mosquitto.conf"
  mosquitto -c "$W/mosquitto.conf" 2>/dev/null &
  local srv=$!; PIDS+=($srv); wait_port 1884
  cap_start "$W/mqtt.pcap" 'tcp port 1884'
  # subscriber with keep-alive 5 s stays ~7 s: one PINGREQ/PINGRESP
  mosquitto_sub -h 127.0.0.1 -p 1884 -k 5 -q 1 -t 'noise/#' -W 7 -v > /dev/null 2>&1 &
  local sub=$!; sleep 0.5
  mosquitto_pub -h 127.0.0.1 -p 1884 -t noise/text -m 'hello mqtt'
  mosquitto_pub -h 127.0.0.1 -p 1884 -q 1 -t noise/json -m '{"temp":21.5,"unit":"C"}'
  mosquitto_pub -h 127.0.0.1 -p 1884 -q 2 -t noise/bin -f "$W/www/small.bin"
  mosquitto_pub -h 127.0.0.1 -p 1884 -q 1 -r -t noise/retained -m retained
  wait $sub || true
  cap_stop; kill $srv; wait $srv 2>/dev/null || true
  both mqtt --skip-data 2
}

rec_postgres() {
  local d=$W/pg bin=/usr/lib/postgresql/15/bin
  rm -rf "$d"; mkdir -p "$d"; chown postgres "$d"
  su postgres -c "$bin/initdb -D $d/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" > /dev/null
  su postgres -c "$bin/pg_ctl -D $d/data -l $d/log -w -o '-p 5433 -k $d -c listen_addresses=127.0.0.1' start" > /dev/null
  cap_start "$W/postgres.pcap" 'tcp port 5433'
  psql -h 127.0.0.1 -p 5433 -U postgres -X -q > /dev/null <<'EOF'
CREATE TABLE t (id int, payload bytea, note text);
INSERT INTO t SELECT i, sha256(i::text::bytea) || decode(md5(i::text), 'hex'), repeat('x', i % 50) FROM generate_series(1, 300) i;
SELECT * FROM t WHERE id % 7 = 0;
SELECT id, encode(payload, 'base64') FROM t ORDER BY id DESC LIMIT 40;
SELECT count(*), sum(length(payload)) FROM t;
COPY (SELECT * FROM t LIMIT 60) TO STDOUT (FORMAT binary);
EOF
  psql -h 127.0.0.1 -p 5433 -U postgres -X -q -c 'SELECT version()' -c 'SELECT now()' > /dev/null
  cap_stop
  su postgres -c "$bin/pg_ctl -D $d/data -m fast stop" > /dev/null
  both postgres --skip-data 6
}

rec_keepalive() {
  cap_start "$W/keepalive-idle.pcap" 'tcp port 9101'
  python3 "$HERE/noise_tcp.py" keepalive 9101
  cap_stop
  cp "$W/keepalive-idle.pcap" "$OUT/keepalive-idle-start.pcap"
  $PCAP cut "$OUT/keepalive-idle-start.pcap" "$OUT/keepalive-idle-mid.pcap" --at-probe 1
}

rec_zerowindow() {
  cap_start "$W/zerowindow.pcap" 'tcp port 9102'
  python3 "$HERE/noise_tcp.py" zerowindow 9102
  cap_stop
  cp "$W/zerowindow.pcap" "$OUT/zerowindow-start.pcap"
  $PCAP cut "$OUT/zerowindow-start.pcap" "$OUT/zerowindow-mid.pcap" --at-probe 1
}

ALL="http-download http-keepalive http-mtu1500 tls12 tls13 h2c h2-tls ssh redis mqtt postgres keepalive zerowindow"
for n in ${@:-$ALL}; do
  echo "== $n"
  case $n in
    tls12|tls13) rec_tls "${n#tls}" ;;
    *) "rec_${n//-/_}" ;;
  esac
done
$PCAP info "$OUT"/*.pcap > "$W/info.txt" && echo "summary: $W/info.txt"
