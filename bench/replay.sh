#!/usr/bin/env bash
# Live capture under replayed load: the throughput corpus (real Python `websockets` peers
# recorded on loopback by this script, as bench/run.sh records its corpus) is replayed by
# tcpreplay into one end of a veth pair (MTU 65535) in a network namespace the script creates
# and removes; wsdump captures on the other end, and tcpdump does in its own replay of the
# same file, at each rate, for several rounds. Needs root, tcpreplay and tcpdump (Debian
# packages), /usr/bin/time (package `time`), python3 with `websockets`.
#
#   bench/replay.sh               record bench/out/replay.pcap if missing, replay, write
#                                 bench/out/replay.md
#
# Environment: RATES (Mbit/s, "top" for tcpreplay's top speed; default "500 1000 2000 top"),
# ROUNDS (3), CONNS (50), MESSAGES (per side per connection, 600: 60,100 messages in all),
# WSDUMP (a wsdump binary; default: cargo build --release), SINK (directory of wsdump's
# output file; default /dev/shm, a tmpfs), WSDUMP_ARGS (extra flags for
# wsdump, e.g. "-m" or "--threads 1"), VIEW ("--json"), RERECORD=1 records the corpus again.
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
OUT=$BENCH/out
mkdir -p "$OUT"
RATES=${RATES:-"500 1000 2000 top"}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
MESSAGES=${MESSAGES:-600}
VIEW=${VIEW:---json}
WSDUMP_ARGS=${WSDUMP_ARGS:-}
PORT=18711
PCAP=$OUT/replay.pcap
NS=wsreplay$$
RESULTS=${RESULTS:-$OUT/replay.md}
# wsdump's output goes to a file here: tmpfs by default, so that the disk's writeback
# throttling (which would stall the writer, i.e. decoding) is not what is measured.
SINK=${SINK:-/dev/shm}

for t in tcpreplay tcpdump ip python3; do
  command -v $t >/dev/null || { echo "replay: $t missing" >&2; exit 2; }
done
[[ -x /usr/bin/time ]] || { echo "replay: /usr/bin/time missing (apt-get install -y time)" >&2; exit 2; }
if [[ -z ${WSDUMP:-} ]]; then
  (cd "$ROOT" && nice -n 10 cargo build --release --quiet)
  WSDUMP=$ROOT/target/release/wsdump
fi

# ---- the corpus ------------------------------------------------------------------------
if [[ ! -s $PCAP || ${RERECORD:-0} == 1 ]]; then
  rm -f "$PCAP" "$OUT"/replay-server.json "$OUT"/replay-client.json "$OUT"/replay-ready
  tcpdump -i lo -s 0 -w "$PCAP" "tcp port $PORT" 2>"$OUT/replay-tcpdump.err" &
  CAP=$!
  for _ in $(seq 100); do grep -q listening "$OUT/replay-tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  python3 "$BENCH/peers.py" server --port $PORT --conns "$CONNS" \
    --log "$OUT/replay-server.json" --ready "$OUT/replay-ready" &
  SRV=$!
  for _ in $(seq 100); do [[ -s $OUT/replay-ready ]] && break; sleep 0.1; done
  python3 "$BENCH/peers.py" client --port $PORT --conns "$CONNS" --messages "$MESSAGES" \
    --log "$OUT/replay-client.json"
  wait "$SRV"
  sleep 1
  kill -INT "$CAP"
  wait "$CAP" || true
  cat "$OUT/replay-tcpdump.err" >&2
fi
SENT=$(python3 - "$OUT/replay-server.json" "$OUT/replay-client.json" <<'EOF'
import json, sys
print(sum(sum(json.load(open(p))["sent"].values()) for p in sys.argv[1:]))
EOF
)
PACKETS=$(tcpdump -r "$PCAP" 2>/dev/null | wc -l)
FILE_MB=$(( $(stat -c %s "$PCAP") / 1000000 ))
# What wsdump decodes from the file itself: the most a live capture can decode.
FROM_FILE=$("$WSDUMP" -r "$PCAP" --json -m | wc -l)
echo "corpus: $PCAP, $FILE_MB MB, $PACKETS packets, $SENT messages sent, $FROM_FILE decoded from the file" >&2

# ---- the namespace ---------------------------------------------------------------------
cleanup() { ip netns del "$NS" 2>/dev/null || true; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add va type veth peer name vb
for d in va vb lo; do ip -n "$NS" link set "$d" mtu 65535 2>/dev/null || true; ip -n "$NS" link set "$d" up; done
# The recorded frames are not addressed to vb: nothing above the packet sockets answers them.
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 || true

# Replays the corpus at rate $1 into va; prints tcpreplay's achieved Mbit/s.
replay() {
  local how
  if [[ $1 == top ]]; then how=(--topspeed); else how=(--mbps="$1"); fi
  ip netns exec "$NS" tcpreplay -q -i va "${how[@]}" "$PCAP" >"$OUT/replay-tcpreplay.txt" 2>&1
  sed -n 's/.*Rated: [0-9.]* Bps, \([0-9.]*\) Mbps.*/\1/p' "$OUT/replay-tcpreplay.txt" | tail -1
}

wait_listening() { # FILE
  for _ in $(seq 200); do grep -q listening "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "replay: capture did not start: $(cat "$1")" >&2; exit 1
}

# One wsdump round at rate $1: "mbps messages gaps kernel_drops own_drops cpu_s rss_mb".
wsdump_round() {
  local err=$OUT/replay-wsdump.err tim=$OUT/replay-wsdump.time out=$SINK/replay-wsdump.out
  rm -f "$err" "$tim"
  # shellcheck disable=SC2086
  ip netns exec "$NS" /usr/bin/time -f "%U %S %M" -o "$tim" \
    "$WSDUMP" -i vb --port $PORT $VIEW $WSDUMP_ARGS >"$out" 2>"$err" &
  local tpid=$!
  wait_listening "$err"
  local mbps
  mbps=$(replay "$1")
  sleep 1
  pkill -INT -P "$tpid" || true
  wait "$tpid" || true
  local messages gaps kdrops odrops
  if [[ $VIEW == --json ]]; then
    messages=$(grep -c '"type":"message"' "$out" || true)
    gaps=$(grep -c '"type":"gap"' "$out" || true)
  else
    messages=$(sed -n 's/.*, \([0-9]*\) messages\{0,1\} decoded.*/\1/p' "$err" | tail -1)
    gaps=$(sed -n 's/.*decoded, \([0-9]*\) gaps\{0,1\}.*/\1/p' "$err" | tail -1)
  fi
  kdrops=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$err" | tail -1)
  odrops=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by wsdump.*/\1/p' "$err" | tail -1)
  read -r u s m <"$tim" || true
  echo "$mbps $messages $gaps ${kdrops:-?} ${odrops:-?} $(awk "BEGIN{print $u+$s}") $((m / 1024))"
}

# One tcpdump round at rate $1: "mbps captured kernel_drops".
tcpdump_round() {
  local err=$OUT/replay-tcpdump-live.err
  rm -f "$err"
  ip netns exec "$NS" tcpdump -i vb -w /dev/null "port $PORT" 2>"$err" &
  local pid=$!
  wait_listening "$err"
  local mbps
  mbps=$(replay "$1")
  sleep 1
  kill -INT "$pid"
  wait "$pid" || true
  local cap drops
  cap=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$err")
  drops=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$err")
  echo "$mbps $cap $drops"
}

{
  echo "Recorded $(date -u +%Y-%m-%d) by \`bench/replay.sh\` (ROUNDS=$ROUNDS, view \`$VIEW $WSDUMP_ARGS\`)."
  echo
  echo "- machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -r), load average at the start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- wsdump $("$WSDUMP" --version | cut -d' ' -f2) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo "- $(tcpdump --version 2>&1 | head -2 | tr '\n' ' ')"
  echo "- $(tcpreplay --version 2>&1 | head -1)"
  echo "- corpus: $FILE_MB MB, $PACKETS packets, $CONNS connections (half permessage-deflate), $SENT messages sent by the peers, $FROM_FILE decoded by \`wsdump -r\`"
  echo
  echo "| rate asked | round | achieved Mbit/s | wsdump: messages | gaps | kernel drops | wsdump's drops | CPU s | peak RSS MB | tcpdump: achieved Mbit/s | captured | kernel drops |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
} >"$RESULTS"

for rate in $RATES; do
  for round in $(seq "$ROUNDS"); do
    read -r wm msgs gaps kd od cpu rss <<<"$(wsdump_round "$rate")"
    read -r tm tcap td <<<"$(tcpdump_round "$rate")"
    label=$rate; [[ $rate != top ]] && label="$rate Mbit/s"
    line="| $label | $round | $wm | $msgs | $gaps | $kd | $od | $cpu | $rss | $tm | $tcap | $td |"
    echo "$line" >>"$RESULTS"
    echo "$line" >&2
  done
done
echo >&2
cat "$RESULTS"
