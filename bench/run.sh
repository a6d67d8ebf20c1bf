#!/usr/bin/env bash
# wsdump throughput benchmark against tshark and tcpdump, on a corpus recorded with real
# peers on loopback. Needs root (capture), python3 with `websockets`, tcpdump, tshark,
# /usr/bin/time (Debian package `time`).
#
#   bench/run.sh                 record, scale, measure, write bench/out/results.md and the
#                                generated part of docs/performance.md
#   bench/run.sh --no-record     reuse bench/out/big.pcap and its peer logs
#
# Environment: RUNS (timed runs per command on the base file, default 5), RUNS_BIG (on the
# scaled files, default 1), CONNS (50), MESSAGES (per side per connection, 80),
# SCALES ("10 100": copies of the base for the bigger files; 100 copies of ~31 MB is ~3.1 GB),
# TSHARK_SCALED (e.g. 10: time tshark on that scaled file too; it takes ~15 s and ~0.5 GB),
# WSDUMP (a wsdump binary; default: cargo build --release and target/release/wsdump),
# KEEP_BIG=1 keeps the scaled files (they are deleted after measuring).
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
OUT=$BENCH/out
mkdir -p "$OUT"
RUNS=${RUNS:-5}
RUNS_BIG=${RUNS_BIG:-1}
CONNS=${CONNS:-50}
MESSAGES=${MESSAGES:-80}
SCALES=${SCALES:-"10 100"}
PORT=9100
RECORD=1
[[ ${1:-} == --no-record ]] && RECORD=0

if [[ -z ${WSDUMP:-} ]]; then
  (cd "$ROOT" && cargo build --release --quiet)
  WSDUMP=$ROOT/target/release/wsdump
  BUILT=1
fi
[[ -x /usr/bin/time ]] || { echo "bench: /usr/bin/time missing (apt-get install -y time)" >&2; exit 2; }

BIG=$OUT/big.pcap

# ---- 1. record ----------------------------------------------------------------------
if [[ $RECORD == 1 ]]; then
  rm -f "$BIG" "$OUT"/server.json "$OUT"/client.json "$OUT"/ready
  tcpdump -i lo -s 0 -w "$BIG" "tcp port $PORT" 2>"$OUT/tcpdump.err" &
  CAP=$!
  for _ in $(seq 100); do grep -q listening "$OUT/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  python3 "$BENCH/peers.py" server --port $PORT --conns "$CONNS" \
    --log "$OUT/server.json" --ready "$OUT/ready" &
  SRV=$!
  for _ in $(seq 100); do [[ -s $OUT/ready ]] && break; sleep 0.1; done
  python3 "$BENCH/peers.py" client --port $PORT --conns "$CONNS" --messages "$MESSAGES" \
    --log "$OUT/client.json"
  wait "$SRV"
  sleep 1
  kill -INT "$CAP"
  wait "$CAP" || true
  cat "$OUT/tcpdump.err" >&2
fi

# ---- 2. what the peers sent, what wsdump and tshark decoded ---------------------------
expected=$(python3 - "$OUT/server.json" "$OUT/client.json" <<'EOF'
import json, sys
t = {"text": 0, "binary": 0, "close": 0}
for p in sys.argv[1:]:
    for k, v in json.load(open(p))["sent"].items():
        t[k] += v
print(t["text"], t["binary"], t["close"])
EOF
)
read -r EXP_TEXT EXP_BIN EXP_CLOSE <<<"$expected"
EXP_TOTAL=$((EXP_TEXT + EXP_BIN + EXP_CLOSE))

count_ws() { # FILE -> "text binary close other"
  "$WSDUMP" -r "$1" --json -m | python3 -c '
import json, sys
c = {"text": 0, "binary": 0, "close": 0, "other": 0}
bad = 0
for line in sys.stdin:
    m = json.loads(line)
    op = m["opcode"]
    c[op if op in c else "other"] += 1
    if m.get("incomplete") or m.get("truncated") or m.get("invalid_utf8") or (op == "text" and "text" not in m):
        bad += 1
print(c["text"], c["binary"], c["close"], c["other"], bad)'
}
read -r WS_TEXT WS_BIN WS_CLOSE WS_OTHER WS_BAD <<<"$(count_ws "$BIG")"

TSHARK=(tshark -r "$BIG" -d "tcp.port==$PORT,http" -Y websocket -T fields
  -e websocket.opcode -e websocket.payload.text -e data.data)
"${TSHARK[@]}" 2>/dev/null >"$OUT/tshark.txt"
read -r TS_TEXT TS_BIN TS_CLOSE <<<"$(cut -f1 "$OUT/tshark.txt" | tr ',' '\n' |
  awk '$1==1{t++} $1==2{b++} $1==8{c++} END{print t+0, b+0, c+0}')"

# ---- 3. timing ------------------------------------------------------------------------
# bench/timeit.py times the commands of a set in rounds, one run of each per round, so that
# a slow spell of the machine (this VM's speed drifts by tens of percent) weighs on all of
# them alike and the ratios stay fair: median wall and CPU seconds, largest peak RSS.
declare -A WALL CPU RSS
time_set() { # RUNS NAME=CMD... (CMD is split on spaces; paths here have none)
  local runs=$1; shift
  local name w c m
  while IFS=$'\t' read -r name w c m; do
    WALL[$name]=$w CPU[$name]=$c RSS[$name]=$m
    printf '%-32s wall %7.3f s  cpu %7.3f s  rss %7d KB\n' "$name" "$w" "$c" "$m" >&2
  done < <(python3 "$BENCH/timeit.py" "$runs" "$@")
}

run_set() { # TAG FILE RUNS WITH_TSHARK
  local tag=$1 file=$2 runs=$3 tsh=$4
  cat "$file" >/dev/null # warm the page cache: every tool reads from memory
  local set=(
    "$tag wsdump --json=$WSDUMP -r $file --json"
    "$tag wsdump --json --threads 1=$WSDUMP -r $file --json --threads 1"
    "$tag wsdump -m=$WSDUMP -r $file -m"
    "$tag wsdump=$WSDUMP -r $file"
    "$tag tcpdump -w=tcpdump -r $file -w /dev/null"
  )
  if [[ $tsh == 1 ]]; then
    # tcpdump -A and tshark take minutes on the scaled files: the base file only, unless
    # TSHARK_SCALED names a scale (then tshark there too, with its ~0.3 s start-up diluted).
    set+=("$tag tcpdump -A=tcpdump -r $file -A -nn")
  fi
  if [[ $tsh == 1 || ${TSHARK_SCALED:-} == "${tag#x}" ]]; then
    set+=("$tag tshark=tshark -r $file -d tcp.port==$PORT,http -Y websocket -T fields -e websocket.opcode -e websocket.payload.text -e data.data")
  fi
  time_set "$runs" "${set[@]}"
}

SIZES=()
mb() { echo $(( $(stat -c %s "$1") / 1000000 )); }
SIZES+=("base $(mb "$BIG")")
run_set base "$BIG" "$RUNS" 1
for n in $SCALES; do
  f=$OUT/big-x$n.pcap
  python3 "$BENCH/scale.py" "$BIG" "$f" "$n" "$PORT"
  SIZES+=("x$n $(mb "$f")")
  read -r t b c o bad <<<"$(count_ws "$f")"
  [[ $((t + b + c)) == $((EXP_TOTAL * n)) && $bad == 0 ]] ||
    echo "bench: x$n decoded $t/$b/$c (bad $bad), expected $((EXP_TOTAL * n))" >&2
  run_set "x$n" "$f" "$RUNS_BIG" 0
  [[ ${KEEP_BIG:-0} == 1 ]] || rm -f "$f"
done

# ---- 4. report ------------------------------------------------------------------------
ratio() { python3 -c "print(f'{$1/$2:.1f}')"; }
{
  echo "Recorded $(date -u +%Y-%m-%d) by \`bench/run.sh\` (RUNS=$RUNS, RUNS_BIG=$RUNS_BIG)."
  echo
  echo "- machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(uname -r), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  if [[ -n ${BUILT:-} ]]; then
    echo "- wsdump $("$WSDUMP" --version | awk '{print $2}') ($(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- src Cargo.toml || echo '+local changes'))"
  else
    echo "- wsdump $("$WSDUMP" --version | awk '{print $2}') (binary given: $WSDUMP)"
  fi
  echo "- $(tshark --version 2>/dev/null | head -1)"
  echo "- $(tcpdump --version 2>&1 | head -1), $(tcpdump --version 2>&1 | sed -n 2p)"
  echo "- peers: Python $(python3 -c 'import sys; print(sys.version.split()[0])'), websockets $(python3 -c 'import websockets; print(websockets.__version__)')"
  echo
  echo "Corpus: $CONNS connections on loopback, $MESSAGES messages each way on each, half with"
  echo "permessage-deflate (context takeover), a quarter of the messages binary; sizes from chat"
  echo "lines to 64 KiB. Files: $(printf '%s MB, ' "${SIZES[@]#* }" | sed 's/, $//')."
  echo
  echo "| | text | binary | close | total |"
  echo "|---|---:|---:|---:|---:|"
  echo "| sent by the peers | $EXP_TEXT | $EXP_BIN | $EXP_CLOSE | $EXP_TOTAL |"
  echo "| decoded by wsdump | $WS_TEXT | $WS_BIN | $WS_CLOSE | $((WS_TEXT + WS_BIN + WS_CLOSE)) (other $WS_OTHER, incomplete $WS_BAD) |"
  echo "| decoded by tshark | $TS_TEXT | $TS_BIN | $TS_CLOSE | $((TS_TEXT + TS_BIN + TS_CLOSE)) |"
  echo
  echo "Median of the runs, taken in rounds (one run of each command per round); CPU = user +"
  echo "system; RSS = the largest of the runs."
  echo
  echo "| file | command | wall s | CPU s | MB/s (wall) | peak RSS MB | tshark wall ÷ this |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  for s in "${SIZES[@]}"; do
    tag=${s% *}; size=${s#* }
    for cmd in "wsdump --json" "wsdump --json --threads 1" "wsdump -m" "wsdump" "tcpdump -w" "tcpdump -A" "tshark"; do
      k="$tag $cmd"
      [[ -n ${WALL[$k]:-} ]] || continue
      w=${WALL[$k]}
      rate=$(python3 -c "print(f'{$size/max($w,0.001):.0f}')")
      vs=""
      [[ -n ${WALL["$tag tshark"]:-} && $cmd != tshark ]] && vs=$(ratio "${WALL["$tag tshark"]}" "$w")
      printf '| %s (%s MB) | `%s` | %.3f | %.3f | %s | %.1f | %s |\n' "$tag" "$size" "$cmd" \
        "$w" "${CPU[$k]}" "$rate" "$(python3 -c "print(${RSS[$k]}/1024)")" "$vs"
    done
  done
  echo
  echo "Commands (FILE = the capture):"
  echo
  echo '```'
  echo "wsdump -r FILE --json > /dev/null              # decoding threads: one per CPU ($(nproc) here)"
  echo "wsdump -r FILE --json --threads 1 > /dev/null  # everything on one thread"
  echo "wsdump -r FILE -m > /dev/null"
  echo "wsdump -r FILE > /dev/null"
  echo "tcpdump -r FILE -w /dev/null"
  echo "tcpdump -r FILE -A -nn > /dev/null"
  echo "tshark -r FILE -d tcp.port==$PORT,http -Y websocket -T fields -e websocket.opcode -e websocket.payload.text -e data.data > /dev/null"
  echo '```'
} >"$OUT/results.md"
cat "$OUT/results.md"

# Splice into docs/performance.md between the markers.
DOC=$ROOT/docs/performance.md
if [[ -f $DOC ]] && grep -q '<!-- bench:begin -->' "$DOC"; then
  python3 - "$DOC" "$OUT/results.md" <<'EOF'
import sys
doc, res = sys.argv[1], open(sys.argv[2]).read()
s = open(doc).read()
a = s.index("<!-- bench:begin -->") + len("<!-- bench:begin -->")
b = s.index("<!-- bench:end -->")
open(doc, "w").write(s[:a] + "\n" + res + "\n" + s[b:])
EOF
  echo "bench: updated $DOC" >&2
fi
