#!/usr/bin/env bash
# Benchmark of lmx-builder against the reference tools (not a test):
#   1. squashfs of a large real tree: `lmx image squashfs` vs `mksquashfs`,
#      same compression, both with -all-root and SOURCE_DATE_EPOCH;
#   2. a uImage of a 20 MiB kernel-sized random file: the `mkuimage`
#      example vs `mkimage` (median of 5 runs each; outputs compared).
#
# Usage: bench/builder.sh [TREE] [COMP]     (defaults: /usr/share xz)
# Needs: squashfs-tools, u-boot-tools. Prints a Markdown table.
set -euo pipefail

tree=${1:-/usr/share}
comp=${2:-xz}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-builder}
export SOURCE_DATE_EPOCH=1700000000

for t in mksquashfs unsquashfs mkimage; do
    command -v "$t" >/dev/null || {
        echo "missing $t: apt-get install squashfs-tools u-boot-tools" >&2
        exit 1
    }
done

lmx=$CARGO_TARGET_DIR/release/lmx
mkuimage=$CARGO_TARGET_DIR/release/examples/mkuimage
if ! (cd "$root" && cargo build --quiet --release --bin lmx \
    && cargo build --quiet --release -p lmx-builder --example mkuimage); then
    [[ -x $lmx && -x $mkuimage ]] || exit 1
    echo "warning: the release build failed; timing the binaries already built" >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

tree_bytes=$(du -sb "$tree" | cut -f1)
tree_files=$(find "$tree" | wc -l)

# Warm the page cache so that neither side pays for the first read.
tar -cf - "$tree" 2>/dev/null | cat >/dev/null

t0=$(now)
"$lmx" image squashfs --all-root --comp "$comp" "$tree" "$work/lmx.sqfs" >/dev/null
t1=$(now)
mksquashfs "$tree" "$work/mksquashfs.sqfs" -noappend -quiet -no-progress \
    -all-root -no-xattrs -comp "$comp" >/dev/null
t2=$(now)
lmx_s=$(elapsed "$t0" "$t1")
mk_s=$(elapsed "$t1" "$t2")
lmx_b=$(stat -c %s "$work/lmx.sqfs")
mk_b=$(stat -c %s "$work/mksquashfs.sqfs")
# Same entries in both (directory sizes aside)?
same_entries=$(
    diff <(unsquashfs -lln -d R "$work/lmx.sqfs" | awk '/ R/{print $1, $2, $NF}' | sort) \
         <(unsquashfs -lln -d R "$work/mksquashfs.sqfs" | awk '/ R/{print $1, $2, $NF}' | sort) \
        >/dev/null && echo yes || echo no
)

head -c $((20 * 1024 * 1024)) /dev/urandom >"$work/kernel"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run5() {
    for _ in 1 2 3 4 5; do
        local s e
        s=$(now)
        "$@" >/dev/null
        e=$(now)
        elapsed "$s" "$e"
        echo
    done | median
}
ours_u=$(run5 "$mkuimage" arm64 kernel none 0x40400000 0x40400000 bench "$work/kernel" "$work/lmx.uimg")
theirs_u=$(run5 mkimage -A arm64 -O linux -T kernel -C none -a 0x40400000 -e 0x40400000 \
    -n bench -d "$work/kernel" "$work/mkimage.uimg")
cmp -s "$work/lmx.uimg" "$work/mkimage.uimg" && same_u=yes || same_u=no

cat <<TABLE
Tree: $tree ($tree_bytes bytes, $tree_files entries), compression $comp, $(nproc) CPUs.

| artifact | lmx | reference | time ratio (lmx/ref) | size ratio (lmx/ref) | notes |
| --- | --- | --- | --- | --- | --- |
| squashfs ($comp) | ${lmx_s}s, $lmx_b B | mksquashfs ${mk_s}s, $mk_b B | $(ratio "$lmx_s" "$mk_s") | $(ratio "$lmx_b" "$mk_b") | same entries: $same_entries |
| uImage, 20 MiB | ${ours_u}s | mkimage ${theirs_u}s | $(ratio "$ours_u" "$theirs_u") | 1.00 | byte-identical: $same_u |
TABLE
