#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages lmx's tests, benchmarks and virtual
# board need. Usage: scripts/deps.sh [test|bench|all]. Idempotent: only
# missing packages are installed. Uses sudo when not root.
set -euo pipefail

what="${1:-test}"

# Real clients and reference tools the tests use as oracles.
TEST_PKGS=(
  curl            # TFTP client (tftp://)
  tftp-hpa        # tftp client
  atftp           # TFTP client with windowsize
  u-boot-tools    # mkimage, dumpimage, mkenvimage, fw_printenv
  squashfs-tools  # mksquashfs, unsquashfs
  device-tree-compiler  # dtc, fdtget
  xz-utils        # xz / lzma
  util-linux      # setpriv
)
# Peer servers for benchmarks (atftpd and tftpd-hpa conflict: tftpd-hpa is
# unpacked privately by the benchmark script instead).
BENCH_PKGS=(dnsmasq-base atftpd hyperfine time)

case "$what" in
  test) pkgs=("${TEST_PKGS[@]}") ;;
  bench) pkgs=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  all) pkgs=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  *) echo "usage: $0 [test|bench|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "lmx: installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
