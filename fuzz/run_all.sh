#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 180 s each), one at a time under
# `nice -n 15` (the machine is shared), on the corpus seeded by seed_corpus.py. Crashes land
# in fuzz/artifacts/<target>/. Logs in fuzz/logs/.
#   fuzz/run_all.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-180}
shift || true
export RUSTC_BOOTSTRAP=1   # stable rustc accepts the -Z flags cargo-fuzz passes
[ -d corpus ] || python3 seed_corpus.py
targets=${*:-$(cargo fuzz list)}
RUSTC_BOOTSTRAP=1 cargo fuzz build -O
mkdir -p logs
run() {
  local t=$1 extra=""
  case $t in pipeline_*|capture_file|shards|views) extra="-max_len=65536" ;; esac
  mkdir -p "corpus/$t"
  nice -n 15 cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 \
    -print_final_stats=1 $extra >"logs/$t.log" 2>&1 || echo "$t: FAILED (see logs/$t.log)"
  grep -E '^(stat::number_of_executed_units|Done)|SUMMARY|panicked' "logs/$t.log" | sed "s/^/$t: /" || true
}
for t in $targets; do
  run "$t"
done
