#!/usr/bin/env bash
# lmx tftpboot on the virtual board, measured.
#
#   bench/tftpboot.sh [RUNS]    (default 3 runs per cell)
#
# 1. The whole cycle, command to userland marker, of
#    `lmx tftpboot --board qemu-aarch64 --no-console`, broken down by step
#    (medians of RUNS runs of lmx's own step timings).
# 2. Loading a 32 MiB file into the same U-Boot, lock-step and with
#    `tftpwindowsize` 8, 16 and 32, served by lmx, dnsmasq and tftpd-hpa in
#    turn on the same tap link in one private network namespace: host time
#    from typing `tftpboot` to U-Boot's `Bytes transferred` line, median of
#    RUNS; each load's crc32 is checked.
#
# Needs root (or unprivileged user namespaces with an openable
# /dev/net/tun), the virtual package set and the cached kernel. Prints
# Markdown. Not a test: nothing here asserts timings. Everything it starts
# lives in a namespace that ends with the script.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
ROOT_DIR="$(pwd)"

scripts/deps.sh virtual >&2
scripts/deps.sh bench >&2
testbed/kernel.sh aarch64 >/dev/null

# One VM at a time on this machine (the e2e tests take the same lock).
exec 9>"${TMPDIR:-/tmp}/lmx-virtual-board.lock"
flock 9

WORK="$(mktemp -d /tmp/lmx-bench-boot.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT INT TERM

# tftpd-hpa conflicts with atftpd (both ship in.tftpd): unpack it privately.
(cd "$WORK" && apt-get download -qq tftpd-hpa >/dev/null 2>&1 && dpkg-deb -x tftpd-hpa_*.deb hpa)
HPA="$WORK/hpa/usr/sbin/in.tftpd"
[ -x "$HPA" ] || { echo "could not unpack tftpd-hpa (apt-get download tftpd-hpa)" >&2; exit 1; }

echo "building lmx (release)..." >&2
cargo build --release --quiet
TARGET="${CARGO_TARGET_DIR:-$ROOT_DIR/target}"
LMX="$TARGET/release/lmx"

echo
echo "### Cycle: command to userland marker (median of $RUNS)"
echo
for i in $(seq "$RUNS"); do
  "$LMX" tftpboot --board qemu-aarch64 --no-console > "$WORK/cycle.$i" 2>"$WORK/cycle.$i.err" \
    || { cat "$WORK/cycle.$i.err" >&2; exit 1; }
done
python3 - "$WORK" "$RUNS" <<'PY'
import re, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
steps, order = {}, []
for i in range(1, runs + 1):
    text = open(f"{work}/cycle.{i}").read()
    for line in text.split("step timings:")[1].splitlines():
        m = re.match(r"\s+(.*?)\s+([0-9.]+) s$", line)
        if m:
            name = m.group(1)
            if name not in steps:
                order.append(name)
            steps.setdefault(name, []).append(float(m.group(2)))
print("| step | median (s) | min | max |")
print("| --- | ---: | ---: | ---: |")
for n in order:
    v = steps[n]
    print(f"| {n} | {statistics.median(v):.3f} | {min(v):.3f} | {max(v):.3f} |")
PY

SRV="$WORK/srv"
mkdir -p "$SRV"
head -c $((32 * 1024 * 1024)) /dev/urandom > "$SRV/file32"
CRC="$(python3 -c 'import sys,zlib; print("%08x" % (zlib.crc32(open(sys.argv[1],"rb").read()) & 0xffffffff))' "$SRV/file32")"

echo
echo "### 32 MiB into U-Boot (seconds, median of $RUNS; MiB/s in parentheses)"
echo
UNSHARE=(unshare -n)
[ "$(id -u)" = 0 ] || UNSHARE=(unshare -rn)
BENCH_DIR="$ROOT_DIR/bench" "${UNSHARE[@]}" python3 - "$WORK" "$SRV" "$CRC" "$RUNS" "$LMX" "$HPA" <<'PY'
import os, statistics, subprocess, sys, time
sys.path.insert(0, os.environ["BENCH_DIR"])
from vboard import Board, setup_tap, servers as peer_servers

work, srv, crc, runs, lmx, hpa = sys.argv[1:7]
runs = int(runs)
setup_tap()
servers = peer_servers(srv, lmx, hpa)
windows = [1, 8, 16, 32]
size = os.path.getsize(os.path.join(srv, "file32"))
results = {}


for name, argv in servers.items():
    for w in windows:
        board = Board(work)
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            board.cmd(f"setenv tftpwindowsize {w}")
            times, failed = [], 0
            for _ in range(runs):
                board.buf = b""
                t = time.monotonic()
                out = board.cmd("tftpboot 0x44000000 file32", 300)
                dt = time.monotonic() - t
                if f"Bytes transferred = {size} ".encode() not in out:
                    failed += 1
                    print(f"  {name} w={w}: load failed after {dt:.1f} s: {out[-160:]!r}", file=sys.stderr)
                    continue
                got = board.cmd("crc32 0x44000000 ${filesize}", 30)
                if f"==> {crc}".encode() not in got:
                    raise SystemExit(f"{name} w={w}: crc mismatch: {got!r}")
                times.append(dt)
            results[(name, w)] = (statistics.median(times) if times else None, failed)
            print(f"  {name} window {w}: {results[(name, w)]}", file=sys.stderr)
        finally:
            p.kill()
            p.wait()
            board.close()
mib = size / (1 << 20)
print("| server | lock-step | window 8 | window 16 | window 32 |")
print("| --- | ---: | ---: | ---: | ---: |")
def cell(name, w):
    t, failed = results[(name, w)]
    note = f" ({failed}/{runs} failed)" if failed else ""
    return ("failed" if t is None else f"{t:.2f} ({mib / t:.0f})") + note
for name in servers:
    cells = [cell(name, w) for w in windows]
    print(f"| {name} | " + " | ".join(cells) + " |")
print()
print("| ratio peer / lmx | lock-step | window 8 | window 16 | window 32 |")
print("| --- | ---: | ---: | ---: | ---: |")
for name in servers:
    if name == "lmx":
        continue
    cells = [
        f"{results[(name, w)][0] / results[('lmx', w)][0]:.2f}"
        if results[(name, w)][0] and results[("lmx", w)][0] else "-"
        for w in windows
    ]
    print(f"| {name} | " + " | ".join(cells) + " |")
PY
