#!/usr/bin/env bash
# Memory at the scale of a busy chat server: N websocket connections that all open, upgrade
# and stay open while they chat in rounds (bench/conns.py). Reports, for each capture and
# thread count, messages decoded (of those sent), evictions, peak RSS and wall time.
#   bench/memory.sh [N...]          default: 10000 (deflate and plain) and 100000 (plain)
# Results go to docs/performance.md by hand; this script never times anything in a test.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
cargo build --release --quiet
bin=target/release/wsdump
run() { # capture sent-messages label
  local cap=$1 sent=$2 label=$3
  for t in 1 2; do
    local json=$out/mem-$label-t$t.jsonl
    local line
    line=$( { /usr/bin/time -f "%M %e" "$bin" -r "$cap" --json --threads "$t" > "$json"; } 2>&1 | tail -1)
    local rss=${line% *} wall=${line#* }
    local msgs ev hist
    msgs=$(grep -c '"type":"message"' "$json" || true)
    ev=$(grep -c '"kind":"evicted"' "$json" || true)
    hist=$(grep -c '"kind":"history_dropped"' "$json" || true)
    printf '| %s | %d | %s of %s | %s | %s | %.1f MB | %s s |\n' \
      "$label" "$t" "$msgs" "$sent" "$ev" "$hist" "$(echo "$rss/1024" | bc -l)" "$wall"
  done
}
echo "| capture | threads | messages decoded | evicted | history dropped | peak RSS | wall |"
echo "|---|---|---|---|---|---|---|"
for spec in "${@:-10000:deflate 10000:plain 100000:plain}"; do
  for s in $spec; do
    n=${s%%:*}; kind=${s#*:}
    cap=$out/c$n-$kind.pcap
    flag=(); [ "$kind" = deflate ] && flag=(--deflate)
    [ -f "$cap" ] || python3 bench/conns.py "$cap" "$n" "${flag[@]}" >/dev/null
    run "$cap" $((n * 8)) "$n-$kind"
  done
done
