#!/usr/bin/env bash
# TFTP into the real U-Boot of the virtual board over a lossy link: lmx
# against dnsmasq, atftpd and tftpd-hpa (issue 9's benchmark).
#
#   bench/loss.sh [RUNS] [SIZES_MIB] [LOSS_PCTS] [WINDOWS] [CAP_S] [SERVERS]
#   bench/loss.sh 3 "8 32" "0 1 5" "1 16" 240 "lmx dnsmasq atftpd tftpd-hpa"
#                                                   (the defaults)
#
# All servers listen at once, each on an address of its own. RUNS rounds;
# in each, one fresh U-Boot loads every (window, loss, size) cell from each
# server in turn, order rotating: nftables in the private namespace drops
# LOSS% of the packets toward the board (`numgen random`, as in
# testbed/tests/loss.rs), `setenv tftpwindowsize W`, `setenv serverip`,
# then one load, timed on the host from typing `tftpboot` to the prompt;
# every completed load's crc32 is checked against the file. A load that
# does not finish within CAP_S seconds is stopped and reported as "> CAP_S"
# (and the next load gets a fresh U-Boot: its NIC may be wedged); a cell
# whose load took more than 20 s is not repeated. Prints Markdown: medians,
# and the median over rounds of each peer's time divided by lmx's in the
# same round.
#
# Needs root (or unprivileged user namespaces with an openable
# /dev/net/tun), the virtual and bench package sets. Not a test: nothing
# here asserts timings. Everything it starts lives in a namespace that ends
# with the script.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-3}"
SIZES="${2:-8 32}"
LOSSES="${3:-0 1 5}"
WINDOWS="${4:-1 16}"
CAP="${5:-240}"
SERVERS="${6:-lmx dnsmasq atftpd tftpd-hpa}"
ROOT_DIR="$(pwd)"

scripts/deps.sh virtual >&2
scripts/deps.sh bench >&2

vm_lock

WORK="$(mktemp -d /tmp/lmx-bench-loss.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT INT TERM

unpack_hpa "$WORK"
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
from vboard import Board, setup_tap, own_hosts, servers as peer_servers, sh

work, srv, runs, lmx, hpa, sizes, losses, windows, cap, only = sys.argv[1:11]
runs, cap = int(runs), float(cap)
sizes = [int(s) for s in sizes.split()]
losses = [int(x) for x in losses.split()]
windows = [int(w) for w in windows.split()]

crcs = {}
for s in sizes:
    with open(os.path.join(srv, f"file{s}"), "rb") as f:
        crcs[s] = "%08x" % (zlib.crc32(f.read()) & 0xFFFFFFFF)

names = [n for n in ["lmx", "dnsmasq", "atftpd", "tftpd-hpa"] if n in only.split()]


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


hosts = own_hosts(names)
setup_tap(hosts.values())
servers = {k: v for k, v in peer_servers(srv, lmx, hpa, atftpd=True, hosts=hosts).items()
           if k in names}
cells = [(w, pct, s) for w in windows for pct in losses for s in sizes]
times = {(n, *c): [] for n in names for c in cells}
notes = {}
paired = {(n, *c): [] for n in names for c in cells}

# Every server listens at once, each on its own address; each round, one
# U-Boot loads every cell from each server in turn (the order rotates), so
# ratios compare loads into the same boot of the board. A load that failed,
# hit the cap or took more than 20 s is not repeated in later rounds; one
# that failed or hit the cap ends that U-Boot (its NIC may be wedged).
logs = {n: open(os.path.join(work, f"{n}.log"), "w+") for n in names}
procs = [subprocess.Popen(servers[n], stdout=logs[n], stderr=subprocess.STDOUT) for n in names]
time.sleep(0.5)
lmx_seen = 0
try:
    for r in range(runs):
        board = None
        for ci, (w, pct, s) in enumerate(cells):
            k = (r + ci) % len(names)
            got = {}
            for name in names[k:] + names[:k]:
                key = (name, w, pct, s)
                if key in notes:
                    continue
                if board is None:
                    set_loss(0)
                    board = Board(work)
                board.cmd(f"setenv tftpwindowsize {w}")
                set_loss(pct)
                dt, note = board.load(name, hosts[name], f"file{s}", s << 20, crcs[s], cap)
                set_loss(0)
                if name == "lmx":
                    # lmx's own account of the load: retransmits, timeouts,
                    # drain waits, probes.
                    logs[name].seek(lmx_seen)
                    text = logs[name].read()
                    lmx_seen += len(text)
                    for line in text.splitlines():
                        if " sent file" in line:
                            print(f"    {line.strip()}", file=sys.stderr)
                if dt is None:
                    notes[key] = note
                    board.close()
                    board = None
                else:
                    times[key].append(dt)
                    got[name] = dt
                    if dt > 20:
                        notes[key] = ""  # one slow run says enough
                print(f"  round {r + 1} {name} window {w} loss {pct}% {s} MiB: "
                      f"{note or f'{dt:.3f} s'}", file=sys.stderr)
            if "lmx" in got:
                for n, t in got.items():
                    paired[(n, w, pct, s)].append(t / got["lmx"])
        if board is not None:
            board.close()
finally:
    set_loss(0)
    for p in procs:
        p.kill()
        p.wait()

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
            lt = times[("lmx", w, pct, s)] if "lmx" in names else []
            base = statistics.median(lt) if lt else None
            for n in names:
                v, note = times[(n, w, pct, s)], notes.get((n, w, pct, s), "")
                c = "-" if not v else f"{statistics.median(v):.2f}"
                if v and len(v) < runs:
                    c += f" [{len(v)}]"
                if note:
                    c = note if not v else f"{c}, then {note}"
                cells.append(c)
            for n in [n for n in names if n != "lmx"]:
                pr, note = paired[(n, w, pct, s)], notes.get((n, w, pct, s), "")
                if pr:
                    m = statistics.median(pr)
                    ratios.append(f"{m:.2f}" if m < 10 else f"{m:.0f}")
                elif note.startswith(">") and base:
                    ratios.append(f"> {cap / base:.0f}")
                else:
                    ratios.append("-")
            print(f"| {pct}% | {w} | " + " | ".join(cells + ratios) + " |")
PY
