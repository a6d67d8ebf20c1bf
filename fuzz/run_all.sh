#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each), two at a time, on the corpus
# seeded by seed_corpus.py. Crashes land in fuzz/artifacts/<target>/. Logs in fuzz/logs/.
#   fuzz/run_all.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
export RUSTC_BOOTSTRAP=1   # stable rustc accepts the -Z flags cargo-fuzz passes
[ -d corpus ] || python3 seed_corpus.py
targets=$(cargo fuzz list)
RUSTC_BOOTSTRAP=1 cargo fuzz build -O
mkdir -p logs
run() {
  local t=$1 extra=""
  case $t in pipeline_*|capture_file|shards) extra="-max_len=65536" ;; esac
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
    -print_final_stats=1 $extra >"logs/$t.log" 2>&1 || echo "$t: FAILED (see logs/$t.log)"
  grep -E '^(stat::number_of_executed_units|Done)|SUMMARY|panicked' "logs/$t.log" | sed "s/^/$t: /" || true
}
set -- $targets
while [ $# -gt 0 ]; do
  run "$1" & if [ $# -gt 1 ]; then run "$2" & shift; fi; shift; wait
done
