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
  u-boot-tools    # mkimage, dumpimage, mkenvimage
  libubootenv-tool  # fw_printenv, fw_setenv (only a Recommends of u-boot-tools)
  squashfs-tools  # mksquashfs, unsquashfs
  device-tree-compiler  # dtc, fdtget
  xz-utils        # xz / lzma
  util-linux      # setpriv
  tmux            # drives lmx console in a terminal (tests/console_cli.rs)
  ser2net socat   # RFC 2217 serial server over a pty pair (console/tests/rfc2217.rs)
  # MIPS cross compilers: the non-VM tests compile kernel-like ELFs with
  # them (builder/tests/elf_oracle.rs, tests/seed_boards.rs,
  # tests/build_mips_cli.rs), so the quick tier needs them too.
  gcc-mips-linux-gnu gcc-mipsel-linux-gnu
)
# Peer servers for benchmarks (atftpd and tftpd-hpa conflict: tftpd-hpa is
# unpacked privately by the benchmark script instead).
# The scripts themselves use python3 (tables, bench/vboard.py,
# bench/cpu_sample.py) and ps (procps; peak RSS), which minimal images lack.
BENCH_PKGS=(dnsmasq-base atftpd hyperfine time tcpdump python3 procps)
# The virtual board (docs/design/testbed.md, testbed/README.md): U-Boot
# for QEMU's virt machine, the kernel's sources and cross compiler, the
# namespace tools. qemu-system-arm and the busyboxes are handled by
# install_qemu and install_busybox below (backports suite, foreign
# architectures).
VIRTUAL_PKGS=(
  u-boot-qemu gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf linux-source-6.1
  bc flex bison make patch cpio iproute2 nftables xz-utils
  # The MIPS twins (qemu-mips, qemu-mipsel): cross compilers for the
  # kernels, U-Boot and the big-endian /init; U-Boot's build needs.
  gcc-mips-linux-gnu gcc-mipsel-linux-gnu libc6-dev-mips-cross
  libssl-dev libgnutls28-dev dpkg-dev
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
    # A mirror caught mid-sync fails one index; the rest is still usable.
    $SUDO apt-get update -qq ||
      echo "lmx: apt-get update reported errors; continuing with the package lists it has" >&2
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

# qemu-system-arm and qemu-system-mips: bookworm's QEMU 7.2 cannot
# complete U-Boot's buffered CFI flash writes, so on bookworm they come from
# bookworm-backports (10.x).
install_qemu() {
  local codename=""
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
  if [ "$codename" = bookworm ]; then
    if installed qemu-system-arm && installed qemu-system-mips && [ "$(qemu_major)" -ge 8 ]; then
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
    echo "lmx: installing qemu-system-arm and qemu-system-mips from bookworm-backports" >&2
    $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-arm qemu-system-mips >/dev/null
  elif ! installed qemu-system-arm || ! installed qemu-system-mips; then
    apt_update
    echo "lmx: installing qemu-system-arm and qemu-system-mips" >&2
    $SUDO apt-get install -y -qq --no-install-recommends qemu-system-arm qemu-system-mips >/dev/null
  fi
  if [ "$(qemu_major)" -lt 8 ]; then
    echo "lmx: QEMU $(qemu_major).x is too old for the virtual board (needs >= 8: older versions cannot complete U-Boot's flash writes)" >&2
    exit 1
  fi
}

# busybox-static for the boards' userlands (arm64, armhf), unpacked (never
# installed as a foreign package) under /var/cache/lmx/busybox-ARCH/, where
# lmx-testbed looks for it.
install_busybox() {
  local arch="$1" dir="/var/cache/lmx/busybox-$1"
  if [ -x "$dir/bin/busybox" ]; then
    return 0
  fi
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    $SUDO dpkg --add-architecture "$arch"
    updated=0
  fi
  apt_update
  local tmp
  tmp="$(mktemp -d)"
  # apt-get download, run as root, fetches as the _apt user into this dir.
  [ "$(id -u)" -ne 0 ] || chown _apt "$tmp" 2>/dev/null || true
  echo "lmx: unpacking busybox-static:$arch into $dir" >&2
  (cd "$tmp" && apt-get download -qq "busybox-static:$arch" >/dev/null)
  $SUDO mkdir -p "$dir"
  $SUDO dpkg-deb -x "$tmp"/busybox-static_*_"$arch".deb "$dir"
  rm -rf "$tmp"
}

# U-Boot's Debian source package (testbed/uboot.sh builds the MIPS twins'
# U-Boot with LZMA from it): a deb-src entry for the main suite.
add_deb_src() {
  if grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ || grep -qs '^deb-src' /etc/apt/sources.list; then
    return 0
  fi
  local src=/etc/apt/sources.list.d/lmx-src.sources
  local main=/etc/apt/sources.list.d/debian.sources uri="http://deb.debian.org/debian"
  local key=/usr/share/keyrings/debian-archive-keyring.gpg suite
  suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  if [ -r "$main" ]; then
    uri="$(awk '/^URIs:/{print $2; exit}' "$main")"
    key="$(awk '/^Signed-By:/{print $2; exit}' "$main")"
  fi
  echo "lmx: adding a deb-src entry for $suite ($src)" >&2
  printf 'Types: deb-src\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
    "$uri" "$suite" "$suite" "$key" | $SUDO tee "$src" >/dev/null
  updated=0
  apt_update
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
  install_busybox arm64
  install_busybox armhf
  install_busybox mipsel
  add_deb_src
fi
