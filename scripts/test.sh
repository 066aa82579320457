#!/usr/bin/env bash
# The full test suite: installs what the tests need, then runs formatting
# and lint checks and every test (unit, in-process servers, real clients,
# reference-tool oracles). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test

if ! command -v cargo >/dev/null; then
  echo "lmx: cargo not found. Install Rust (https://rustup.rs) first." >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== cargo test"
cargo test --workspace --no-fail-fast
