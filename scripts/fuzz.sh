#!/usr/bin/env bash
# Runs every fuzz target for a while (default 60 s each) and reports how many inputs ran.
#   scripts/fuzz.sh [seconds-per-target]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). On a stable toolchain RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its unstable flags; new interesting inputs land in fuzz/corpus/<target>/,
# which `cargo test` replays. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
for target in callback_query zap_request username lnurl backend_response; do
  log="fuzz/$target.log"
  cargo fuzz run --sanitizer none "$target" -- -max_total_time="$seconds" -max_len=8192 >"$log" 2>&1 || {
    echo "$target: FAILED (see $log and fuzz/artifacts/$target/)"; exit 1; }
  runs=$(grep -o 'Done [0-9]* runs' "$log" | tail -1 || true)
  echo "$target: ${runs:-no summary} in ${seconds}s, corpus $(ls "fuzz/corpus/$target" | wc -l) inputs"
done
