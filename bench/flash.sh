#!/usr/bin/env bash
# lmx flash on the virtual board, measured: write plus verify of 16 MiB.
#
#   bench/flash.sh [RUNS]    (default 3)
#
# Flashes a 16 MiB pseudo-random image into the firmware partition of
# qemu-aarch64 (CFI NOR, pflash bank files in a temporary --flash-dir)
# RUNS times, alternating two images so every run really changes the
# flash, and prints the medians of lmx's own per-step timings: TFTP load
# into RAM, crc32 of the RAM copy, erase, cp.b, crc32 of the flash, and
# the whole command. Then the same image with --verify-only.
#
# Needs root (or unprivileged user namespaces with an openable
# /dev/net/tun) and the virtual package set. Prints Markdown. Not a test:
# nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-3}"
ROOT_DIR="$(pwd)"

scripts/deps.sh virtual >&2

vm_lock

WORK="$(mktemp -d /tmp/lmx-bench-flash.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT INT TERM

echo "building lmx (release)..." >&2
cargo build --release --quiet --bin lmx
TARGET="${CARGO_TARGET_DIR:-$ROOT_DIR/target}"
LMX="$TARGET/release/lmx"

python3 - "$WORK" <<'PY'
import random, sys
for seed in (1, 2):
    r = random.Random(seed)
    open(f"{sys.argv[1]}/image{seed}.bin", "wb").write(r.randbytes(16 << 20))
PY

for i in $(seq "$RUNS"); do
  img="$WORK/image$(( (i - 1) % 2 + 1 )).bin"
  /usr/bin/time -f "%e" -o "$WORK/wall.$i" \
    "$LMX" flash --board qemu-aarch64 --image "$img" --yes --flash-dir "$WORK/flash" \
    2>"$WORK/run.$i" || { cat "$WORK/run.$i" >&2; exit 1; }
done
last="$WORK/image$(( (RUNS - 1) % 2 + 1 )).bin"
for i in $(seq "$RUNS"); do
  /usr/bin/time -f "%e" -o "$WORK/vwall.$i" \
    "$LMX" flash --board qemu-aarch64 --image "$last" --verify-only --flash-dir "$WORK/flash" \
    2>"$WORK/verify.$i" || { cat "$WORK/verify.$i" >&2; exit 1; }
done

python3 - "$WORK" "$RUNS" <<'PY'
import re, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])

def steps(path):
    out, current = {}, None
    for line in open(path):
        m = re.match(r"==> \[(\w[\w ]*)\] (\S+)", line)
        if m:
            current = f"{m.group(1)}: {m.group(2)}"
            continue
        m = re.match(r"\s+ok in ([0-9.]+) s", line)
        if m and current:
            out[current] = out.get(current, 0.0) + float(m.group(1))
            current = None
    return out

def table(prefix, wall, title):
    runs_steps = [steps(f"{work}/{prefix}.{i}") for i in range(1, runs + 1)]
    walls = [float(open(f"{work}/{wall}.{i}").read().split()[-1]) for i in range(1, runs + 1)]
    print(f"\n### {title} (median of {runs})\n")
    print("| step | seconds | MiB/s |")
    print("| --- | ---: | ---: |")
    for name in runs_steps[0]:
        v = statistics.median(r[name] for r in runs_steps)
        print(f"| {name} | {v:.3f} | {16 / v:.1f} |")
    w = statistics.median(walls)
    print(f"| whole command (QEMU start to exit) | {w:.2f} | |")

table("run", "wall", "lmx flash, 16 MiB into qemu-aarch64's CFI NOR")
table("verify", "vwall", "lmx flash --verify-only, the same 16 MiB")
PY
