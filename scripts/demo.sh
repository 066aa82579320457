#!/usr/bin/env bash
# The main command, end to end without hardware: installs the virtual
# board's packages, builds (or reuses) the test bed kernel, builds lmx and
# boots the virtual board from RAM over TFTP with `lmx tftpboot`: U-Boot
# loads the rootfs, the DTB and the kernel from lmx's own TFTP server,
# every load is checked with U-Boot's crc32, and the kernel mounts the
# squashfs from RAM through phram and prints the userland marker.
#
# Usage: scripts/demo.sh [extra lmx tftpboot flags]
# On a terminal it stays on the board's console afterwards (Ctrl-] leaves);
# otherwise it exits after the marker (--no-console) with the step timings.
# Needs root, or unprivileged user namespaces plus a /dev/net/tun the user
# may open (testbed/README.md, "Network without root").
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh virtual
echo "== test bed kernel (about 5 min the first time, cached afterwards)"
testbed/kernel.sh aarch64 >/dev/null
echo "== building lmx"
cargo build --release --quiet
lmx=target/release/lmx
if [ -n "${CARGO_TARGET_DIR:-}" ]; then lmx="$CARGO_TARGET_DIR/release/lmx"; fi

console=(--no-console)
if [ -t 0 ] && [ -t 1 ]; then console=(); fi
echo "== lmx tftpboot --board qemu-aarch64 ${console[*]} $*"
exec "$lmx" tftpboot --board qemu-aarch64 "${console[@]}" "$@"
