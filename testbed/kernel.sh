#!/usr/bin/env bash
# Builds the small kernel of a virtual board and caches it.
#
#   testbed/kernel.sh aarch64|armv7l|mips|mipsel
#
# The kernel is Debian's linux-source-6.1, allnoconfig plus the fragment in
# testbed/kernel/ (for armv7l: aarch64.config + armv7l.config; for the MIPS
# twins: malta.config + mips.config or mipsel.config), built with the Debian
# cross compiler. The image is cached at
#   ${LMX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmx}/kernel/<key>/Image
# (zImage for armv7l; the vmlinux ELF for mips and mipsel, which lmx build
# turns into a uImage itself, with the machine's malta.dtb beside it), where
# <key> is the sha256 of the fragment(s) and patches, the
# linux-source package version and the architecture: a rerun with the same
# inputs prints the cached path at once. The path of the image is the only
# thing printed on stdout; progress goes to stderr and the build log to
# <key>/build.log. Packages: scripts/deps.sh virtual.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
arch="${1:-}"
patches=()
case "$arch" in
  aarch64)
    karch=arm64 cross=aarch64-linux-gnu- target=Image
    fragments=("$here/kernel/aarch64.config")
    ;;
  armv7l)
    karch=arm cross=arm-linux-gnueabihf- target=zImage
    fragments=("$here/kernel/aarch64.config" "$here/kernel/armv7l.config")
    ;;
  mips | mipsel)
    karch=mips cross="$arch-linux-gnu-" target=vmlinux
    fragments=("$here/kernel/malta.config" "$here/kernel/$arch.config")
    # Malta's platform code reads only its built-in device tree; the patch
    # makes a DTB in the .appended_dtb section win, as it does on the
    # ath79/ramips routers the twins stand in for.
    patches=("$here/kernel/malta-appended-dtb.patch")
    ;;
  *)
    echo "usage: $0 aarch64|armv7l|mips|mipsel" >&2
    exit 2
    ;;
esac

what=kernel
# shellcheck source=lib.sh
. "$here/lib.sh"

src_pkg=linux-source-6.1
src_version="$(dpkg-query -W -f='${Version}' "$src_pkg" 2>/dev/null || true)"
tarball="/usr/src/$src_pkg.tar.xz"
[ -n "$src_version" ] && [ -r "$tarball" ] ||
  die "$tarball is missing: run scripts/deps.sh virtual (package $src_pkg)"
need_tools "${cross}gcc" make bc flex bison xz
[ "${#patches[@]}" -eq 0 ] || need_tools patch

cache_root="${LMX_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmx}"
key="$({ cat "${fragments[@]}" "${patches[@]+"${patches[@]}"}"; printf '%s\n%s\n' "$src_version" "$arch"; } | sha256sum | cut -d' ' -f1)"
out="$cache_root/kernel/$key"
image="$out/$target"

# Cached: print it; else one build per key at a time.
reuse_or_lock "$image"

work="$(mktemp -d "$cache_root/kernel/.build-$arch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log="$out/build.log"
: >"$log"
start=$(date +%s)
echo "lmx testbed kernel: building $arch from $src_pkg $src_version (a few minutes; log: $log)" >&2

tar -xJf "$tarball" -C "$work"
tree="$work/$src_pkg"
for p in "${patches[@]+"${patches[@]}"}"; do
  patch -d "$tree" -p1 --quiet <"$p" >>"$log" 2>&1 || die "patch $p does not apply (log: $log)"
done
# KCONFIG_ALLCONFIG forces the fragment's values on top of allnoconfig.
cat "${fragments[@]}" >"$work/fragment.config"
mk=(make -C "$tree" ARCH="$karch" CROSS_COMPILE="$cross" -j"$(nproc)")
if ! {
  KCONFIG_ALLCONFIG="$work/fragment.config" "${mk[@]}" allnoconfig &&
    "${mk[@]}" olddefconfig
} >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "configuration failed (log: $log)"
fi

# Every option the fragment asks for must have survived olddefconfig: a
# missing dependency drops an option silently.
check_kept "$tree/.config" < <(cat "${fragments[@]}")

if ! "${mk[@]}" "$target" >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "build failed (log: $log)"
fi

cp "$tree/.config" "$out/config"
if [ "$target" = vmlinux ]; then
  cp "$tree/vmlinux" "$image.tmp"
  # The machine's own device tree (built in as well): the DTB to give lmx
  # when the kernel should take it from its .appended_dtb section.
  cp "$tree/arch/mips/boot/dts/mti/malta.dtb" "$out/malta.dtb"
else
  cp "$tree/arch/$karch/boot/$target" "$image.tmp"
fi
mv "$image.tmp" "$image"
printf 'source %s %s\narch %s\nseconds %s\n' "$src_pkg" "$src_version" "$arch" "$(($(date +%s) - start))" >"$out/info"
echo "lmx testbed kernel: built $image in $(($(date +%s) - start)) s" >&2
echo "$image"
