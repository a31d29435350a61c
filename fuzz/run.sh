#!/usr/bin/env bash
# Runs libFuzzer harnesses one after another (one process at a time).
# Usage: fuzz/run.sh BUILD_DIR SECONDS HARNESS...   (BUILD_DIR configured with
#   -DCMAKE_C_COMPILER=clang -DMAILBARS_FUZZ=ON). New corpus units go to BUILD_DIR/fuzz-work/<h>,
# crashes to BUILD_DIR/fuzz-artifacts/<h>/; a log per run in BUILD_DIR/fuzz-logs/.
set -u
build=$1 secs=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
for h in "$@"; do
  mkdir -p "$build/fuzz-work/$h" "$build/fuzz-artifacts/$h" "$build/fuzz-logs"
  log="$build/fuzz-logs/$h-$(date +%s).log"
  echo "== $h for ${secs}s, log $log"
  /usr/bin/time -f "cpu_user=%U cpu_sys=%S wall=%e" \
    "$build/fuzz/fuzz_$h" -dict="$src/dict/handlebars.dict" -max_total_time="$secs" \
    -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
    -artifact_prefix="$build/fuzz-artifacts/$h/" \
    "$build/fuzz-work/$h" "$src/corpus/$h" >"$log" 2>&1
  echo "exit $?"; grep -E "stat::number_of_executed_units|cpu_user|SUMMARY|^==[0-9]+==ERROR" "$log" | head -5
done
