#!/usr/bin/env bash
# The test suite. Usage: scripts/test.sh [--quick]
#
# scripts/test.sh (the full suite, what CI runs): installs what the tests
# need, then runs formatting and lint checks and every test (unit,
# in-process servers, real clients, reference-tool oracles, the QEMU
# virtual board).
#
# scripts/test.sh --quick: the same formatting and lint checks, the unit
# tests, the doc tests and every integration test target that does not
# boot a virtual board. No kernel or U-Boot is built and no QEMU runs; the
# QEMU-tier targets listed below are not run (the script says so).
set -euo pipefail
cd "$(dirname "$0")/.."
# Set below for --quick only: the full suite must never inherit it.
unset LMX_QUICK

quick=0
case "${1:-}" in
  "") ;;
  --quick) quick=1 ;;
  -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "usage: $0 [--quick]" >&2
    exit 2
    ;;
esac

# The QEMU tier: the integration test targets that boot a virtual board
# (QEMU with the test bed's kernels and U-Boots, or U-Boot alone). The full
# suite runs them with everything else; --quick leaves them out. A new test
# file that starts QEMU or needs a test bed kernel or U-Boot belongs here:
# otherwise --quick stops at testbed/kernel.sh or testbed/uboot.sh, which
# refuse to run under LMX_QUICK=1.
QEMU_TIER=(
  tests/console_cli.rs
  tests/env_live.rs
  tests/flash_e2e.rs
  tests/flash_mips.rs
  tests/tftpboot_armv7.rs
  tests/tftpboot_caps_e2e.rs
  tests/tftpboot_e2e.rs
  tests/tftpboot_mips.rs
  tests/vendor_twins.rs
  builder/tests/uboot_oracle.rs
  console/tests/qemu.rs
  session/tests/power.rs
  testbed/tests/boot.rs
  testbed/tests/loss.rs
  testbed/tests/malta.rs
)

scripts/deps.sh test

if ! command -v cargo >/dev/null; then
  echo "lmx: cargo not found. Install Rust (https://rustup.rs) first." >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

if [ "$quick" -eq 1 ]; then
  # The name of a test target: tests/NAME.rs or tests/NAME/main.rs.
  target_name() {
    case "$1" in
      */main.rs) basename "$(dirname "$1")" ;;
      *) basename "$1" .rs ;;
    esac
  }
  qemu_names=()
  for f in "${QEMU_TIER[@]}"; do
    [ -f "$f" ] || {
      echo "lmx: scripts/test.sh lists $f in QEMU_TIER, but there is no such file: update the list" >&2
      exit 1
    }
    qemu_names+=("$(target_name "$f")")
  done
  # Every other test target of the workspace's packages (the root package
  # and each member directory with a Cargo.toml).
  quick_args=()
  for f in tests/*.rs tests/*/main.rs */tests/*.rs */tests/*/main.rs; do
    [ -f "$f" ] || continue
    case "$f" in
      tests/*) ;;
      *) [ -f "${f%%/*}/Cargo.toml" ] || continue ;;
    esac
    case " ${QEMU_TIER[*]} " in *" $f "*) continue ;; esac
    name="$(target_name "$f")"
    # `cargo test --workspace --test NAME` runs NAME in every package that
    # has it: a quick target may not share its name with a QEMU-tier one.
    case " ${qemu_names[*]} " in
      *" $name "*)
        echo "lmx: test target $f has the name of a QEMU-tier target; rename one of them" >&2
        exit 1
        ;;
    esac
    quick_args+=(--test "$name")
  done

  # testbed/kernel.sh and testbed/uboot.sh refuse to run under LMX_QUICK=1.
  export LMX_QUICK=1
  echo "== cargo test (quick tier: unit tests, doc tests, non-VM integration tests)"
  status=0
  cargo test --workspace --no-fail-fast --lib --bins "${quick_args[@]}" || status=1
  cargo test --workspace --no-fail-fast --doc || status=1
  echo "== skipped (quick tier): the QEMU tier, ${QEMU_TIER[*]}; scripts/test.sh runs it"
  exit "$status"
fi

# The QEMU tier: lmx-testbed's tests boot the virtual board (U-Boot, then
# a kernel from RAM over TFTP in a private network namespace). They need
# the virtual package set and the cached kernels (about 5 + 4 min to build
# the first time, plus the MIPS twins' kernels and U-Boots below); their
# VMs run one at a time inside `cargo test`.
# tests/tftpboot_e2e.rs drives the real `lmx tftpboot --board qemu-aarch64`
# (one VM at a time: an in-process mutex plus a flock on
# $TMPDIR/lmx-virtual-board.lock), tests/tftpboot_armv7.rs the same for
# qemu-armv7l (the armv7l kernel below); tests/env_live.rs drives `lmx env`
# against the same U-Boot and its pflash files, under the same lock;
# tests/flash_e2e.rs drives `lmx flash` on pflash files of its own.
echo "== virtual board: packages and kernel"
scripts/deps.sh virtual
testbed/kernel.sh aarch64 >/dev/null
testbed/kernel.sh armv7l >/dev/null
# The MIPS twins (testbed/tests/malta.rs, tests/tftpboot_mips.rs,
# tests/flash_mips.rs for `lmx flash` on qemu-mips): the
# malta kernels and U-Boot with LZMA from Debian's source package. First
# build measured on this 2-core machine with other builds running: kernels
# 330 + 338 s (load ~4; 823 + 660 s at load 8), U-Boots 129 + 45 s, so
# about 14 min (up to 28); cached afterwards. The MIPS tests then take
# about 1.5 min.
testbed/kernel.sh mips >/dev/null
testbed/kernel.sh mipsel >/dev/null
testbed/uboot.sh malta >/dev/null
testbed/uboot.sh maltael >/dev/null
# tests/flash_e2e.rs's tftpput backup boots the virtual board's U-Boot
# rebuilt with tftpput (Debian source, about 3 min the first time, cached).
testbed/uboot.sh qemu_arm64 >/dev/null
# tests/vendor_twins.rs: the vendor-dialect twins' U-Boots (gl-ar750's,
# gl-mt300n-v2's and belkin-rt3200's dialects on malta and virt; Debian
# source, 31 + 44 + 63 s here the first time, cached).
testbed/uboot.sh ar750 >/dev/null
testbed/uboot.sh mt300 >/dev/null
testbed/uboot.sh mt7622 >/dev/null

echo "== cargo test"
cargo test --workspace --no-fail-fast
