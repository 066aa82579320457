#!/usr/bin/env bash
# Builds a U-Boot of the test bed from Debian's source package and caches it.
#
#   testbed/uboot.sh malta|maltael|qemu_arm64|ar750|mt300|mt7622
#
# malta, maltael: the MIPS twins' U-Boot (QEMU malta) with LZMA. Debian's
# own malta U-Boot (u-boot-qemu, little-endian only) has no LZMA, lzmadec
# or FIT, and real MIPS routers boot LZMA uImages; so the twins run a
# U-Boot built from Debian's source package (`apt-get source u-boot`, needs
# a deb-src entry: scripts/deps.sh virtual adds one), malta_defconfig
# (big-endian) or maltael_defconfig (little-endian) plus testbed/uboot/
# lzma.config.
#
# qemu_arm64: Debian's qemu_arm64_defconfig plus testbed/uboot/tftpput.config,
# the aarch64 virtual board's U-Boot with `tftpput` for lmx flash --backup.
#
# ar750, mt300, mt7622: the vendor-dialect twins (docs/design/testbed.md,
# "Vendor-dialect twins"): U-Boot 2023.01 configured to talk like the
# boot loader of gl-ar750 (malta_defconfig + uboot/ar750.config), of
# gl-mt300n-v2 (maltael_defconfig + uboot/mt300.config) and of
# belkin-rt3200 (qemu_arm64_defconfig + uboot/mt7622.config): prompt,
# keyed or zero-delay autoboot, parser, CBSIZE, MAXARGS and the missing
# commands. Every fact is a Kconfig option in 2023.01, so no patch is
# needed.
#
# The result is cached at
#   ${LMX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmx}/u-boot/<key>/u-boot.bin
# where <key> is the sha256 of the fragment, the defconfig name and the
# source package version. u-boot.bin is U-Boot as it runs from the flash,
# in the CPU's byte order; for the maltael builds the build's own
# u-boot-swap.bin (each 32-bit word byte-swapped, what QEMU's little-endian
# malta flash wants) is kept next to it. The path of u-boot.bin is the only
# thing printed on stdout; progress goes to stderr, the build log to
# <key>/build.log. Packages: scripts/deps.sh virtual.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-}"
case "$build" in
  malta) defconfig=malta cross=mips-linux-gnu- fragment="$here/uboot/lzma.config" ;;
  maltael) defconfig=maltael cross=mipsel-linux-gnu- fragment="$here/uboot/lzma.config" ;;
  # The aarch64 virtual board's U-Boot plus tftpput, for lmx flash --backup
  # (Debian's qemu_arm64 build has no tftpput).
  qemu_arm64) defconfig=qemu_arm64 cross=aarch64-linux-gnu- fragment="$here/uboot/tftpput.config" ;;
  # The vendor-dialect twins (board files qemu-mips-ar750,
  # qemu-mipsel-mt300, qemu-aarch64-mt7622).
  ar750) defconfig=malta cross=mips-linux-gnu- fragment="$here/uboot/ar750.config" ;;
  mt300) defconfig=maltael cross=mipsel-linux-gnu- fragment="$here/uboot/mt300.config" ;;
  mt7622) defconfig=qemu_arm64 cross=aarch64-linux-gnu- fragment="$here/uboot/mt7622.config" ;;
  *)
    echo "usage: $0 malta|maltael|qemu_arm64|ar750|mt300|mt7622" >&2
    exit 2
    ;;
esac

what=u-boot
# shellcheck source=lib.sh
. "$here/lib.sh"

need_tools "${cross}gcc" make bison flex bc apt-get dpkg-source
src_version="$(apt-cache showsrc u-boot 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1)"
[ -n "$src_version" ] ||
  die "no source package u-boot known to apt: run scripts/deps.sh virtual (it adds a deb-src entry and runs apt-get update)"

cache_root="${LMX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmx}"
key="$({ cat "$fragment"; printf '%s\n%s\n' "$src_version" "$defconfig"; } | sha256sum | cut -d' ' -f1)"
out="$cache_root/u-boot/$key"
image="$out/u-boot.bin"

# Cached: print it; else one build per key at a time.
reuse_or_lock "$image"

work="$(mktemp -d "$cache_root/u-boot/.build-$build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$out/build.log"
: >"$log"
start=$(date +%s)
echo "lmx testbed u-boot: building $build: ${defconfig}_defconfig + $(basename "$fragment") from Debian's u-boot $src_version (about a minute; log: $log)" >&2

# apt-get source run as root downloads as the _apt user.
[ "$(id -u)" -ne 0 ] || chown _apt "$work" 2>/dev/null || true
if ! (cd "$work" && apt-get source -qq "u-boot=$src_version") >>"$log" 2>&1; then
  tail -n 20 "$log" >&2
  die "apt-get source u-boot=$src_version failed (log: $log)"
fi
tree="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'u-boot-*' | head -n 1)"
[ -n "$tree" ] || die "apt-get source left no u-boot-* directory in $work"

mk=(make -C "$tree" CROSS_COMPILE="$cross" -j"$(nproc)")
if ! {
  "${mk[@]}" "${defconfig}_defconfig" &&
    cat "$fragment" >>"$tree/.config" &&
    "${mk[@]}" olddefconfig
} >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "configuration failed (log: $log)"
fi

check_kept "$tree/.config" <"$fragment"

if ! "${mk[@]}" >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "build failed (log: $log)"
fi

cp "$tree/.config" "$out/config"
if [ "$defconfig" = maltael ]; then
  [ -s "$tree/u-boot-swap.bin" ] || die "the maltael build made no u-boot-swap.bin (log: $log)"
  cp "$tree/u-boot-swap.bin" "$out/u-boot-swap.bin"
fi
cp "$tree/u-boot.bin" "$image.tmp"
mv "$image.tmp" "$image"
printf 'source u-boot %s\nbuild %s\ndefconfig %s\nfragment %s\nseconds %s\n' "$src_version" "$build" "$defconfig" "$(basename "$fragment")" "$(($(date +%s) - start))" >"$out/info"
echo "lmx testbed u-boot: built $image in $(($(date +%s) - start)) s" >&2
echo "$image"
