#!/usr/bin/env bash
# lmx tftpboot on the virtual board, measured.
#
#   bench/tftpboot.sh [RUNS]    (default 3 runs per cell)
#   CYCLE_ONLY=1 bench/tftpboot.sh [RUNS]    (part 1 only)
#
# 1. The whole cycle, command to userland marker, of
#    `lmx tftpboot --board qemu-aarch64 --no-console`, broken down by step
#    (medians of RUNS runs of lmx's own step timings).
# 2. Loading a 32 MiB file into the same U-Boot, lock-step and with
#    `tftpwindowsize` 8, 16 and 32, served by lmx, dnsmasq and tftpd-hpa on
#    the same tap link in one private network namespace: host time from
#    typing `tftpboot` to U-Boot's prompt after `Bytes transferred`, median
#    of RUNS rounds; each load's crc32 is checked. All servers listen at
#    once on addresses of their own, and each round is one fresh U-Boot
#    that loads from each server in turn (rotating order), so every ratio
#    compares loads into the same boot of the board.
#
# Needs root (or unprivileged user namespaces with an openable
# /dev/net/tun), the virtual package set and the cached kernel. Prints
# Markdown. Not a test: nothing here asserts timings. Everything it starts
# lives in a namespace that ends with the script.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-3}"
ROOT_DIR="$(pwd)"

scripts/deps.sh virtual >&2
scripts/deps.sh bench >&2
testbed/kernel.sh aarch64 >/dev/null

vm_lock

WORK="$(mktemp -d /tmp/lmx-bench-boot.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT INT TERM

unpack_hpa "$WORK"

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
# The physical parts: the machine starting and U-Boot reaching its
# prompt, the transfers with their checks, the kernel booting. The rest
# (planning, artifacts, setenv lines) is lmx's host overhead.
physical = ("start board, open console", "console open to U-Boot prompt",
            "boot command to kernel start", "kernel start to userland marker")
ratios, phys = [], []
for i in range(runs):
    p = sum(steps[n][i] for n in physical) + sum(
        steps[n][i] for n in order if n.startswith("load ") or n.startswith("unpack "))
    phys.append(p)
    ratios.append(steps["command start to end"][i] / p)
print()
print(f"Physical parts (machine start to prompt, transfers, kernel boot): median "
      f"{statistics.median(phys):.3f} s; command to userland / physical parts: median "
      f"{statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})")
PY
[ "${CYCLE_ONLY:-0}" = 1 ] && exit 0

SRV="$WORK/srv"
mkdir -p "$SRV"
head -c $((32 * 1024 * 1024)) /dev/urandom > "$SRV/file32"
CRC="$(python3 -c 'import sys,zlib; print("%08x" % (zlib.crc32(open(sys.argv[1],"rb").read()) & 0xffffffff))' "$SRV/file32")"

echo
echo "### 32 MiB into U-Boot (seconds, median of $RUNS rounds; MiB/s in parentheses)"
echo
UNSHARE=(unshare -n)
[ "$(id -u)" = 0 ] || UNSHARE=(unshare -rn)
BENCH_DIR="$ROOT_DIR/bench" "${UNSHARE[@]}" python3 - "$WORK" "$SRV" "$CRC" "$RUNS" "$LMX" "$HPA" <<'PY'
import os, re, statistics, subprocess, sys, time
sys.path.insert(0, os.environ["BENCH_DIR"])
from vboard import Board, setup_tap, own_hosts, servers as peer_servers

work, srv, crc, runs, lmx, hpa = sys.argv[1:7]
runs = int(runs)
names = ["lmx", "dnsmasq", "tftpd-hpa"]
hosts = own_hosts(names)
setup_tap(hosts.values())
servers = peer_servers(srv, lmx, hpa, hosts=hosts)
windows = [1, 8, 16, 32]
size = os.path.getsize(os.path.join(srv, "file32"))
times = {(n, w): [] for n in names for w in windows}
fails = {(n, w): 0 for n in names for w in windows}
# Per round and window, each peer's time over lmx's in the same round.
paired = {(n, w): [] for n in names for w in windows}

# Every server listens at once, each on its own address; one U-Boot per
# round loads from each in turn (the order rotates from round to round), so
# the board's own pace, which moves by several percent from one boot of the
# VM to the next, is the same for all servers of a round.
# lmx logs (-v) how many of its waits for an ACK spun and caught it.
servers["lmx"].insert(1, "-v")
lmx_log = open(os.path.join(work, "lmx.log"), "w")
procs = [subprocess.Popen(servers[n], stdout=subprocess.DEVNULL,
                          stderr=lmx_log if n == "lmx" else subprocess.DEVNULL)
         for n in names]
time.sleep(0.5)
try:
    for r in range(runs):
        board = Board(work)
        for wi, w in enumerate(windows):
            board.cmd(f"setenv tftpwindowsize {w}")
            k = (r + wi) % len(names)
            got = {}
            for name in names[k:] + names[:k]:
                dt, note = board.load(name, hosts[name], "file32", size, crc, 300)
                if dt is None:
                    fails[(name, w)] += 1
                    print(f"  round {r + 1} {name} window {w}: {note}", file=sys.stderr)
                    # The NIC may be wedged: go on with a fresh U-Boot.
                    board.close()
                    board = Board(work)
                    board.cmd(f"setenv tftpwindowsize {w}")
                    continue
                got[name] = dt
                times[(name, w)].append(dt)
            print(f"  round {r + 1} window {w}: " +
                  ", ".join(f"{n} {t:.3f}" for n, t in got.items()), file=sys.stderr)
            if "lmx" in got:
                for n, t in got.items():
                    paired[(n, w)].append(t / got["lmx"])
        board.close()
finally:
    for p in procs:
        p.kill()
        p.wait()

spun = [tuple(map(int, m.groups())) for m in re.finditer(
    r"busy poll: (\d+) waits, (\d+) caught the answer spinning, (\d+) spun in vain",
    open(os.path.join(work, "lmx.log")).read())]
if spun:
    w, c, m = (sum(x[i] for x in spun) for i in range(3))
    print(f"lmx busy polling over its {len(spun)} loads: {w} waits for an ACK, "
          f"{c + m} spun ({c} caught the ACK, {m} in vain)\n")
mib = size / (1 << 20)
print("| server | lock-step | window 8 | window 16 | window 32 |")
print("| --- | ---: | ---: | ---: | ---: |")
def cell(name, w):
    v, f = times[(name, w)], fails[(name, w)]
    note = f" ({f}/{runs} failed)" if f else ""
    return ("failed" if not v else f"{statistics.median(v):.2f} ({mib / statistics.median(v):.0f})") + note
for name in names:
    print(f"| {name} | " + " | ".join(cell(name, w) for w in windows) + " |")
print()
print("Peer time / lmx time, median over rounds of the ratio within a round "
      "(above 1: lmx faster), interquartile range in parentheses:")
print()
print("| ratio peer / lmx | lock-step | window 8 | window 16 | window 32 |")
print("| --- | ---: | ---: | ---: | ---: |")
for name in names[1:]:
    def ratio(v):
        if not v:
            return "-"
        if len(v) < 4:
            return f"{statistics.median(v):.2f}"
        q = statistics.quantiles(v, n=4)
        return f"{statistics.median(v):.2f} ({q[0]:.2f}–{q[2]:.2f})"
    cells = [ratio(paired[(name, w)]) for w in windows]
    print(f"| {name} | " + " | ".join(cells) + " |")
PY
