#!/usr/bin/env bash
# The full test suite: installs what the tests need, then runs formatting
# and lint checks and every test (unit, in-process servers, real clients,
# reference-tool oracles, the QEMU virtual board). Usage: scripts/test.sh
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

echo "== cargo test"
cargo test --workspace --no-fail-fast
