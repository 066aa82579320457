#!/usr/bin/env bash
# TFTP into the real U-Boot of the virtual board over a lossy link: lmx
# against dnsmasq, atftpd and tftpd-hpa (issue 9's benchmark).
#
#   bench/loss.sh [RUNS] [SIZES_MIB] [LOSS_PCTS] [WINDOWS] [CAP_S] [SERVERS]
#   bench/loss.sh 3 "8 32" "0 1 5" "1 16" 240 "lmx dnsmasq atftpd tftpd-hpa"
#                                                   (the defaults)
#
# For each server, loss and window: a fresh U-Boot (a NIC wedged by one
# server cannot spoil the next cell), nftables in the private namespace
# dropping LOSS% of the packets toward the board (`numgen random`, as in
# testbed/tests/loss.rs), `setenv tftpwindowsize W`, then RUNS loads of each
# size, timed on the host from typing `tftpboot` to the prompt; every
# completed load's crc32 is checked against the file. A load that does not
# finish within CAP_S seconds is stopped and reported as "> CAP_S"; a cell
# whose first load took more than 20 s is not repeated. Prints Markdown: medians, and
# each peer's time divided by lmx's.
#
# Needs root (or unprivileged user namespaces with an openable
# /dev/net/tun), the virtual and bench package sets. Not a test: nothing
# here asserts timings. Everything it starts lives in a namespace that ends
# with the script.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
SIZES="${2:-8 32}"
LOSSES="${3:-0 1 5}"
WINDOWS="${4:-1 16}"
CAP="${5:-240}"
SERVERS="${6:-lmx dnsmasq atftpd tftpd-hpa}"
ROOT_DIR="$(pwd)"

scripts/deps.sh virtual >&2
scripts/deps.sh bench >&2

# One VM at a time on this machine (the e2e tests take the same lock).
exec 9>"${TMPDIR:-/tmp}/lmx-virtual-board.lock"
flock 9

WORK="$(mktemp -d /tmp/lmx-bench-loss.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT INT TERM

# tftpd-hpa conflicts with atftpd (both ship in.tftpd): unpack it privately.
(cd "$WORK" && apt-get download -qq tftpd-hpa >/dev/null 2>&1 && dpkg-deb -x tftpd-hpa_*.deb hpa)
HPA="$WORK/hpa/usr/sbin/in.tftpd"
[ -x "$HPA" ] || { echo "could not unpack tftpd-hpa (apt-get download tftpd-hpa)" >&2; exit 1; }
command -v atftpd >/dev/null || { echo "atftpd missing: scripts/deps.sh bench" >&2; exit 1; }

echo "building lmx (release)..." >&2
cargo build --release --quiet --bin lmx
TARGET="${CARGO_TARGET_DIR:-$ROOT_DIR/target}"
LMX="$TARGET/release/lmx"

SRV="$WORK/srv"
mkdir -p "$SRV"
for s in $SIZES; do
  head -c $((s * 1024 * 1024)) /dev/urandom > "$SRV/file$s"
done

UNSHARE=(unshare -n)
[ "$(id -u)" = 0 ] || UNSHARE=(unshare -rn)
BENCH_DIR="$ROOT_DIR/bench" "${UNSHARE[@]}" python3 - "$WORK" "$SRV" "$RUNS" "$LMX" "$HPA" "$SIZES" "$LOSSES" "$WINDOWS" "$CAP" "$SERVERS" <<'PY'
import os, statistics, subprocess, sys, time, zlib
sys.path.insert(0, os.environ["BENCH_DIR"])
from vboard import Board, setup_tap, servers as peer_servers, sh

work, srv, runs, lmx, hpa, sizes, losses, windows, cap, only = sys.argv[1:11]
runs, cap = int(runs), float(cap)
sizes = [int(s) for s in sizes.split()]
losses = [int(x) for x in losses.split()]
windows = [int(w) for w in windows.split()]
setup_tap()

crcs = {}
for s in sizes:
    with open(os.path.join(srv, f"file{s}"), "rb") as f:
        crcs[s] = "%08x" % (zlib.crc32(f.read()) & 0xFFFFFFFF)

servers = {k: v for k, v in peer_servers(srv, lmx, hpa, atftpd=True).items()
           if k in only.split()}


def set_loss(pct):
    subprocess.run(["nft", "delete", "table", "inet", "lmxbench"],
                   stderr=subprocess.DEVNULL)
    if pct == 0:
        return
    sh("nft", "add", "table", "inet", "lmxbench")
    sh("nft", "add", "chain", "inet", "lmxbench", "out",
       "{ type filter hook output priority 0; }")
    sh("nft", "add", "rule", "inet", "lmxbench", "out", "oifname", "tap0",
       "numgen", "random", "mod", "100", "<", str(pct), "drop")


results = {}
for name, argv in servers.items():
    for w in windows:
        for pct in losses:
            for s in sizes:
                set_loss(0)
                board = Board(work)
                log = open(os.path.join(work, "server.log"), "w+")
                p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
                time.sleep(0.5)
                times, note = [], ""
                try:
                    board.cmd(f"setenv tftpwindowsize {w}")
                    set_loss(pct)
                    for _ in range(runs):
                        board.buf = b""
                        t = time.monotonic()
                        try:
                            out = board.cmd(f"tftpboot 0x44000000 file{s}", cap)
                        except TimeoutError:
                            note = f"> {cap:.0f}"
                            break
                        dt = time.monotonic() - t
                        size = s * 1024 * 1024
                        if f"Bytes transferred = {size} ".encode() not in out:
                            note = "failed"
                            print(f"  {name} w={w} {pct}% {s} MiB: failed after {dt:.1f} s: "
                                  f"{out[-160:]!r}", file=sys.stderr)
                            break
                        set_loss(0)
                        got = board.cmd("crc32 0x44000000 ${filesize}", 30)
                        set_loss(pct)
                        if f"==> {crcs[s]}".encode() not in got:
                            raise SystemExit(f"{name} w={w} {pct}% {s} MiB: crc mismatch: {got!r}")
                        times.append(dt)
                        if dt > 20:
                            break  # one slow run says enough
                finally:
                    set_loss(0)
                    p.kill()
                    p.wait()
                    board.close()
                if name == "lmx":
                    # lmx's own account of each load: retransmits, timeouts,
                    # drain waits, probes.
                    log.seek(0)
                    for line in log.read().splitlines():
                        if " sent file" in line:
                            print(f"    {line.strip()}", file=sys.stderr)
                log.close()
                med = statistics.median(times) if times else None
                results[(name, w, pct, s)] = (med, note, len(times))
                print(f"  {name} window {w} loss {pct}% {s} MiB: {med} {note} "
                      f"({len(times)} runs)", file=sys.stderr)

names = list(servers)
for s in sizes:
    print()
    print(f"#### {s} MiB (seconds, median; runs in brackets when fewer than {runs})")
    print()
    heads = names + [f"{n} / lmx" for n in names if n != "lmx"]
    print("| loss | window | " + " | ".join(heads) + " |")
    print("| ---: | ---: | " + " | ".join("---:" for _ in heads) + " |")
    for pct in losses:
        for w in windows:
            cells, ratios = [], []
            base = results.get(("lmx", w, pct, s), (None,))[0]
            for n in names:
                med, note, k = results[(n, w, pct, s)]
                c = "-" if med is None else f"{med:.2f}"
                if k and k < runs:
                    c += f" [{k}]"
                if note:
                    c = note if med is None else f"{c}, then {note}"
                cells.append(c)
            for n in [n for n in names if n != "lmx"]:
                med, note, _ = results[(n, w, pct, s)]
                if med is not None and base:
                    ratios.append(f"{med / base:.1f}")
                elif note.startswith(">") and base:
                    ratios.append(f"> {cap / base:.0f}")
                else:
                    ratios.append("-")
            print(f"| {pct}% | {w} | " + " | ".join(cells + ratios) + " |")
PY
