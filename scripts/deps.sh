#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages lmx's tests, benchmarks and virtual
# board need. Usage: scripts/deps.sh [test|bench|virtual|all]. Idempotent:
# only missing packages are installed. Uses sudo when not root.
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
# The virtual board (shared/design/testbed.md, testbed/README.md): U-Boot
# for QEMU's virt machine, the kernel's sources and cross compiler, the
# namespace tools. qemu-system-arm and the arm64 busybox are handled by
# install_virtual below (backports suite, foreign architecture).
VIRTUAL_PKGS=(
  u-boot-qemu gcc-aarch64-linux-gnu linux-source-6.1 bc flex bison make
  cpio iproute2 nftables xz-utils
)

virtual=0
case "$what" in
  test) pkgs=("${TEST_PKGS[@]}") ;;
  bench) pkgs=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
  virtual) pkgs=("${VIRTUAL_PKGS[@]}"); virtual=1 ;;
  all) pkgs=("${TEST_PKGS[@]}" "${BENCH_PKGS[@]}" "${VIRTUAL_PKGS[@]}"); virtual=1 ;;
  *) echo "usage: $0 [test|bench|virtual|all]" >&2; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
updated=0
apt_update() {
  if [ "$updated" -eq 0 ]; then
    $SUDO apt-get update -qq
    updated=1
  fi
}
installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# Major version of the installed qemu-system-aarch64, or 0.
qemu_major() {
  local v
  v="$(qemu-system-aarch64 --version 2>/dev/null | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')"
  echo "${v:-0}"
}

# qemu-system-arm: bookworm's QEMU 7.2 cannot complete U-Boot's buffered
# CFI flash writes, so on bookworm it comes from bookworm-backports (10.x).
install_qemu() {
  local codename=""
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  if [ "$codename" = bookworm ]; then
    if installed qemu-system-arm && [ "$(qemu_major)" -ge 8 ]; then
      return 0
    fi
    local src=/etc/apt/sources.list.d/lmx-backports.sources
    if [ ! -e "$src" ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      local main=/etc/apt/sources.list.d/debian.sources uri="http://deb.debian.org/debian"
      local key=/usr/share/keyrings/debian-archive-keyring.gpg
      if [ -r "$main" ]; then
        # The first stanza of the main entry: its URI and keyring.
        uri="$(awk '/^URIs:/{print $2; exit}' "$main")"
        key="$(awk '/^Signed-By:/{print $2; exit}' "$main")"
      fi
      echo "lmx: adding bookworm-backports ($src)" >&2
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
        "$uri" "$key" | $SUDO tee "$src" >/dev/null
      updated=0
    fi
    apt_update
    echo "lmx: installing qemu-system-arm from bookworm-backports" >&2
    $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm >/dev/null
  elif ! installed qemu-system-arm; then
    apt_update
    echo "lmx: installing qemu-system-arm" >&2
    $SUDO apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null
  fi
  if [ "$(qemu_major)" -lt 8 ]; then
    echo "lmx: QEMU $(qemu_major).x is too old for the virtual board (needs >= 8: older versions cannot complete U-Boot's flash writes)" >&2
    exit 1
  fi
}

# busybox-static for arm64, unpacked (never installed as a foreign
# package) under /var/cache/lmx/busybox-arm64 where lmx-testbed looks.
BUSYBOX_DIR="${LMX_BUSYBOX_DIR:-/var/cache/lmx/busybox-arm64}"
install_busybox_arm64() {
  if [ -x "$BUSYBOX_DIR/bin/busybox" ]; then
    return 0
  fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    updated=0
  fi
  apt_update
  local tmp
  tmp="$(mktemp -d)"
  chmod 755 "$tmp"  # apt-get download runs as _apt
  echo "lmx: unpacking busybox-static:arm64 into $BUSYBOX_DIR" >&2
  (cd "$tmp" && apt-get download -qq busybox-static:arm64 >/dev/null)
  $SUDO mkdir -p "$BUSYBOX_DIR"
  $SUDO dpkg-deb -x "$tmp"/busybox-static_*_arm64.deb "$BUSYBOX_DIR"
  rm -rf "$tmp"
}

missing=()
for p in "${pkgs[@]}"; do
  if ! installed "$p"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "lmx: installing Debian packages: ${missing[*]}" >&2
  apt_update
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$virtual" -eq 1 ]; then
  install_qemu
  install_busybox_arm64
fi
