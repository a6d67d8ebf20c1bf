#!/usr/bin/env bash
# Live-capture benchmark: wsdump (pnet AF_PACKET) against tcpdump under the same loopback
# websocket load, at several message rates.
#
#   sudo bench/live.sh                      # all rates, writes bench/live_results.md
#   RATES="1000 5000" DURATION=5 sudo bench/live.sh
#
# For each rate: one run with `wsdump -i lo --port P --json -m > out.jsonl` capturing, one
# run with `tcpdump -i lo -w /dev/null port P` capturing, each under /usr/bin/time -v, each
# with its own port and its own run of bench/live_load.py (40 connections, half with
# permessage-deflate, the server echoes every message; see that file). After the load ends
# and a grace period, the capture gets SIGINT and its stderr summary is read.
#
# Counted: websocket data messages (text + binary) in both directions. "sent" is the exact
# number the peers sent (client messages + server echoes, each confirmed received by the
# other peer); "decoded" is the number of `"type":"message"` JSON lines wsdump printed with
# opcode text or binary and no `incomplete` field. Pings, pongs and closes are not counted.
#
# Needs root (or CAP_NET_RAW on both binaries), python3 with `websockets`, tcpdump,
# /usr/bin/time. Runs in about 3 minutes with the defaults. Idempotent: scratch files go
# to $WORKDIR (recreated), the table to bench/live_results.md (regenerated; everything
# after the `<!-- analysis -->` line of an existing file is kept).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
RATES=${RATES:-"1000 5000 10000 20000 max"}
DURATION=${DURATION:-10}
CONNS=${CONNS:-40}
PROCS=${PROCS:-2}
GRACE=${GRACE:-2}
BASE_PORT=${BASE_PORT:-47300}
WORKDIR=${WORKDIR:-/tmp/wsdump-live-bench}
RESULTS=${RESULTS:-$ROOT/bench/live_results.md}
WSDUMP=$ROOT/target/release/wsdump

command -v tcpdump >/dev/null || { echo "live.sh: tcpdump is needed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "live.sh: /usr/bin/time is needed (apt-get install -y time)" >&2; exit 2; }
python3 -c 'import websockets.asyncio.server' || { echo "live.sh: python3 websockets is needed" >&2; exit 2; }

cargo build --release --quiet
rm -rf "$WORKDIR"
mkdir -p "$WORKDIR"

# Waits until FILE contains PATTERN (up to 10 s).
wait_for() {
    local file=$1 pattern=$2 i
    for i in $(seq 100); do
        grep -q "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "live.sh: timed out waiting for '$pattern' in $file" >&2
    cat "$file" >&2
    return 1
}

# Field of /usr/bin/time -v output.
tv() { sed -n "s/^[[:space:]]*$2: //p" "$1"; }

# run TOOL RATE PORT DIR: one capture under one load.
run() {
    local tool=$1 rate=$2 port=$3 dir=$4 lrate tpid cpid t0 t1 i
    mkdir -p "$dir"
    lrate=$rate
    [ "$rate" = max ] && lrate=0
    cat /proc/loadavg >"$dir/loadavg"
    if [ "$tool" = wsdump ]; then
        /usr/bin/time -v -o "$dir/time.txt" \
            "$WSDUMP" -i lo --port "$port" --json -m >"$dir/out.jsonl" 2>"$dir/stderr.txt" &
    else
        /usr/bin/time -v -o "$dir/time.txt" \
            tcpdump -i lo -w /dev/null port "$port" >/dev/null 2>"$dir/stderr.txt" &
    fi
    tpid=$!
    wait_for "$dir/stderr.txt" "listening on"
    cpid=$(pgrep -P "$tpid")
    python3 "$ROOT/bench/live_load.py" --port "$port" --rate "$lrate" --duration "$DURATION" \
        --conns "$CONNS" --procs "$PROCS" >"$dir/load.json" 2>"$dir/load.err" || {
        echo "live.sh: load generator failed ($tool, rate $rate):" >&2
        cat "$dir/load.json" "$dir/load.err" >&2
    }
    sleep "$GRACE"
    t0=$(date +%s.%N)
    kill -INT "$cpid"
    # Wait for the capture to finish (wsdump drains its queue first); give up after 120 s.
    for i in $(seq 1200); do
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$cpid" 2>/dev/null; then
        echo "live.sh: $tool did not stop within 120 s, killing it" >&2
        kill -KILL "$cpid" || true
    fi
    wait "$tpid" || true
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.1f\n", $2 - $1}' >"$dir/exit_lag"
}

# Table row for one run.
row() {
    local tool=$1 rate=$2 dir=$3 sent achieved decoded incomplete drops captured received unread user sys cpu rss lag gaps load
    sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["messages"])' "$dir/load.json" 2>/dev/null || echo "?")
    achieved=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["achieved_rate"])' "$dir/load.json" 2>/dev/null || echo "?")
    drops=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$dir/stderr.txt" | tail -1)
    captured=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$dir/stderr.txt" | tail -1)
    received=$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter.*/\1/p' "$dir/stderr.txt" | tail -1)
    unread="—"
    # wsdump's "received by filter" is the kernel's tp_packets (drops included); what was
    # neither captured nor dropped was still queued in the socket when capture stopped.
    # (tcpdump's counts both copies of every loopback packet: not comparable.)
    [ "$tool" = wsdump ] && unread=$((${received:-0} - ${drops:-0} - ${captured:-0}))
    user=$(tv "$dir/time.txt" "User time (seconds)")
    sys=$(tv "$dir/time.txt" "System time (seconds)")
    cpu=$(echo "$user $sys $DURATION" | awk '{printf "%.2f s (%.0f%%)", $1 + $2, 100 * ($1 + $2) / $3}')
    rss=$(tv "$dir/time.txt" "Maximum resident set size (kbytes)" | awk '{printf "%.0f MiB", $1 / 1024}')
    lag=$(cat "$dir/exit_lag")
    load=$(cut -d' ' -f1 "$dir/loadavg")
    if [ "$tool" = wsdump ]; then
        decoded=$(grep -E '"opcode":"(text|binary)"' "$dir/out.jsonl" | grep -vc '"incomplete"' || true)
        incomplete=$(grep -E '"opcode":"(text|binary)"' "$dir/out.jsonl" | grep -c '"incomplete"' || true)
        gaps=$(sed -n 's/.* \([0-9]*\) gaps\{0,1\}$/\1/p' "$dir/stderr.txt" | tail -1)
        local note=""
        [ "$incomplete" != 0 ] && note="$incomplete incomplete; "
        [ -n "$gaps" ] && [ "$gaps" != 0 ] && note="$note$gaps gaps; "
        decoded="$decoded${note:+ ($note}"
        decoded=${decoded%; }
        [ -n "$note" ] && decoded="$decoded)"
    else
        decoded="—"
    fi
    echo "| $rate | $tool | $sent | $achieved | $decoded | ${drops:-?} | ${captured:-?} | $unread | $cpu | $rss | $lag s | $load |"
}

i=0
for rate in $RATES; do
    for tool in wsdump tcpdump; do
        port=$((BASE_PORT + i))
        i=$((i + 1))
        echo "live.sh: rate $rate, $tool, port $port" >&2
        run "$tool" "$rate" "$port" "$WORKDIR/$rate-$tool"
        row "$tool" "$rate" "$WORKDIR/$rate-$tool" | tee -a "$WORKDIR/rows.md" >&2
    done
done

# ---------------------------------------------------------------- bench/live_results.md
kept=""
if [ -f "$RESULTS" ] && grep -q '^<!-- analysis -->' "$RESULTS"; then
    kept=$(sed -n '/^<!-- analysis -->/,$p' "$RESULTS")
fi
{
    echo "# Live capture benchmark: wsdump vs tcpdump on loopback"
    echo
    echo "Generated by \`bench/live.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Machine: $(nproc) CPUs"
    echo "($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), kernel $(uname -r), \`net.core.rmem_max\` $(sysctl -n net.core.rmem_max)."
    echo "Tools: $("$WSDUMP" --version 2>/dev/null | head -1) (\`cargo build --release\`, commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' plus uncommitted work in the tree')),"
    echo "$(tcpdump --version 2>&1 | head -1), $(tcpdump --version 2>&1 | sed -n 2p), Python $(python3 -c 'import sys; print(sys.version.split()[0])'),"
    echo "websockets $(python3 -c 'import websockets; print(websockets.__version__)')."
    echo
    echo "Load (\`bench/live_load.py\`): $CONNS websocket connections on 127.0.0.1, half with permessage-deflate,"
    echo "$PROCS client and $PROCS server processes; clients send a mix of chat-size JSON (75 %), 1-8 KiB JSON"
    echo "documents and binary messages, paced to the rate for ${DURATION} s; the server echoes every message."
    echo "The rate is data messages per second on the wire, both directions; \`max\` = as fast as the peers go."
    echo "Each row is its own run (its own port, its own load); the load generator runs on the same CPUs."
    echo
    echo "Commands, per rate and tool (P = a fresh port):"
    echo
    echo '```'
    echo "wsdump:  /usr/bin/time -v target/release/wsdump -i lo --port P --json -m > out.jsonl"
    echo "tcpdump: /usr/bin/time -v tcpdump -i lo -w /dev/null port P"
    echo "load:    python3 bench/live_load.py --port P --rate R --duration $DURATION --conns $CONNS --procs $PROCS"
    echo "then, ${GRACE} s after the load ends: kill -INT <capture pid>"
    echo '```'
    echo
    echo "Columns: *sent* = data messages the peers sent (and each confirmed received); *decoded* ="
    echo "complete text/binary \`message\` lines in wsdump's output; *kernel drops* and *packets* ="
    echo "the tool's own summary (\"packets dropped by kernel\", \"packets captured\"); *unread* = packets still"
    echo "queued in wsdump's socket when it stopped (received by filter - dropped - captured); *CPU* = user + system"
    echo "time of the capture process, and as a share of one CPU over the ${DURATION} s of load; *RSS* = peak"
    echo "resident memory; *exit* = time from SIGINT to exit (wsdump first decodes what it has queued);"
    echo "*load* = 1-minute load average when the run started (other work on the machine)."
    echo
    echo "| rate (msg/s) | tool | sent | achieved msg/s | decoded | kernel drops | packets | unread | CPU | RSS | exit | load |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    cat "$WORKDIR/rows.md"
    echo
    if [ -n "$kept" ]; then
        echo "$kept"
    else
        echo "<!-- analysis -->"
    fi
} >"$RESULTS"
echo "live.sh: wrote $RESULTS (raw files in $WORKDIR)" >&2
