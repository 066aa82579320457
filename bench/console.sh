#!/usr/bin/env bash
# Console command throughput: lmx's echo-verified sending against fixed
# per-character delays and a plain paste, into the real U-Boot of the
# virtual board through the UART simulator (115200 baud, 16-byte FIFO,
# target reading at 90 % of the line rate with 4 ms stalls every 50 ms).
# Prints a Markdown table; results are kept in docs/performance.md.
# Usage: bench/console.sh [COMMANDS]   (needs scripts/deps.sh virtual)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v qemu-system-aarch64 >/dev/null || [ ! -f /usr/lib/u-boot/qemu_arm64/u-boot.bin ]; then
  echo "bench/console.sh: needs QEMU and u-boot-qemu: run scripts/deps.sh virtual" >&2
  exit 1
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo run --quiet --release -p lmx-console --example console_bench -- "${1:-40}"
