#!/usr/bin/env bash
# Fuzzes one target, then merges what it found into its committed corpus.
#
#   fuzz/run.sh TARGET [SECONDS] [RUNS]
#
# Runs at the lowest priority (the machine is shared), with the limits
# docs/reliability.md reports against: 1 s per input, 256 MiB of memory,
# SECONDS (default 600) or RUNS executions (default 10 million),
# whichever comes first. New inputs go to fuzz/work/TARGET (not
# committed); afterwards only those that add coverage to corpus/TARGET
# are merged into it (libFuzzer's merge, what `cargo fuzz cmin` runs): the
# named seeds stay; and of those, a smallest set that covers every new
# edge (`-set_cover_merge=1 -use_counters=0`: hit counts left out), so the
# corpus stays small for `cargo test`. A crash, hang or OOM
# stops the run and leaves its input in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS] [RUNS]}
seconds=${2:-600}
runs=${3:-10000000}
extra=()
# ELF seeds are tens of KiB, most of it zero fill; mutations of the
# first 16 KiB reach every header.
[ "$target" = kernel ] && extra+=(-max_len=16384)
mkdir -p "work/$target"
# AddressSanitizer holds freed memory in a quarantine of up to 256 MiB,
# which alone would reach the memory limit; keep it small so the limit
# measures lmx.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}
# -O -a: optimised, with overflow checks and debug assertions on (an
# overflow that wraps in a release build is a crash here).
nice -n 19 cargo +nightly fuzz run -O -a "$target" "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -runs="$runs" -timeout=1 -rss_limit_mb=256 \
    -malloc_limit_mb=256 -print_final_stats=1 "${extra[@]}"
bin=target/x86_64-unknown-linux-gnu/release/$target
nice -n 19 "$bin" -set_cover_merge=1 -use_counters=0 -rss_limit_mb=256 -malloc_limit_mb=256 -timeout=1 "${extra[@]}" \
    "corpus/$target" "work/$target"
