#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30): `fuzz/run.sh [SECONDS]`.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). A crash is left in
# fuzz/artifacts/<target>/; copy it into fixtures/fuzz-regressions/ (where a stable test replays
# every file through the same code) before fixing it.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
for target in awslogs parsers os_metrics sql map_event whatap_decode license; do
  echo "== fuzz $target for ${seconds}s"
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=0 2>&1 | tail -3
done
echo "fuzzing: every target ran ${seconds}s without a crash"
