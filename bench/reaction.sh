#!/usr/bin/env bash
# Lock-step TFTP into the real U-Boot, taken apart packet by packet: how
# long each server takes to answer an ACK with the next DATA block, and
# how long U-Boot takes to answer a DATA block, from a capture on the tap.
# Separates the server's share of a lock-step load from the board's, which
# whole-load times on a busy machine cannot.
#
#   bench/reaction.sh [ROUNDS] [SIZE_MIB]      (default 3 rounds, 8 MiB)
#
# Each round loads the file once per server, servers interleaved, each
# into a fresh U-Boot (virtual aarch64 board) with tcpdump on the tap.
# Prints Markdown: per server, the median over rounds of the whole load
# time and of the per-block medians. Needs root (or unprivileged user
# namespaces with an openable /dev/net/tun) and the virtual and bench
# package sets (tcpdump is in the latter). Not a test: nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS="${1:-3}"
SIZE="${2:-8}"
ROOT_DIR="$(pwd)"

scripts/deps.sh virtual >&2
scripts/deps.sh bench >&2

vm_lock

WORK="$(mktemp -d /tmp/lmx-bench-reaction.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT INT TERM
unpack_hpa "$WORK"

echo "building lmx (release)..." >&2
cargo build --release --quiet --bin lmx
LMX="${CARGO_TARGET_DIR:-$ROOT_DIR/target}/release/lmx"
SRV="$WORK/srv"
mkdir -p "$SRV"
head -c $((SIZE * 1024 * 1024)) /dev/urandom > "$SRV/file"

UNSHARE=(unshare -n)
[ "$(id -u)" = 0 ] || UNSHARE=(unshare -rn)
BENCH_DIR="$ROOT_DIR/bench" "${UNSHARE[@]}" python3 - "$WORK" "$SRV" "$LMX" "$HPA" "$ROUNDS" "$SIZE" <<'PY'
import os, statistics, struct, subprocess, sys, time
sys.path.insert(0, os.environ["BENCH_DIR"])
from vboard import Board, setup_tap, servers as peer_servers

work, srv, lmx, hpa, rounds, size = sys.argv[1:7]
rounds = int(rounds)
setup_tap()
servers = peer_servers(srv, lmx, hpa, atftpd=True)


def tftp_packets(path):
    """(time, opcode, block) of each captured TFTP packet (pcap, Ethernet)."""
    d = open(path, "rb").read()
    nano = struct.unpack("<I", d[:4])[0] == 0xA1B23C4D
    off, out = 24, []
    while off + 16 <= len(d):
        ts, frac, incl, _ = struct.unpack("<IIII", d[off:off + 16])
        pkt = d[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 46 or pkt[12:14] != b"\x08\x00" or pkt[23] != 17:
            continue
        u = 14 + (pkt[14] & 15) * 4
        op, blk = struct.unpack(">HH", pkt[u + 8:u + 12])
        out.append((ts + frac / (1e9 if nano else 1e6), op, blk))
    return out


rows = {n: [] for n in servers}
for r in range(rounds):
    for name, argv in servers.items():
        board = Board(work)
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cap = os.path.join(work, "cap.pcap")
        td = subprocess.Popen(["tcpdump", "-i", "tap0", "-s", "64", "-U", "-w", cap, "udp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        try:
            t = time.monotonic()
            out = board.cmd("tftpboot 0x44000000 file", 300)
            total = time.monotonic() - t
            if b"Bytes transferred" not in out:
                raise SystemExit(f"{name}: load failed: {out[-200:]!r}")
            time.sleep(0.5)
        finally:
            td.terminate()
            td.wait()
            p.kill()
            p.wait()
            board.close()
        data, ack, wraps = {}, {}, 0
        last = 0
        for t, op, blk in tftp_packets(cap):
            # Block numbers wrap at 65536: count the wraps along the way.
            if op in (3, 4):
                if blk < last and last - blk > 32768:
                    wraps += 1
                last = blk
                key = wraps * 65536 + blk
                (data if op == 3 else ack).setdefault(key, t)
        server = [data[n + 1] - ack[n] for n in ack if n + 1 in data and data[n + 1] > ack[n]]
        board_r = [ack[n] - data[n] for n in data if n in ack and ack[n] > data[n]]
        rows[name].append((total, statistics.median(server) * 1e6,
                           statistics.median(board_r) * 1e6, len(server)))
        print(f"  round {r + 1} {name}: {total:.2f} s, server {rows[name][-1][1]:.1f} µs, "
              f"U-Boot {rows[name][-1][2]:.1f} µs over {len(server)} blocks", file=sys.stderr)

print(f"{size} MiB lock-step into U-Boot, median of {rounds} interleaved rounds:")
print()
print("| server | whole load (s) | ACK → next DATA (µs) | DATA → ACK, U-Boot (µs) |")
print("| --- | ---: | ---: | ---: |")
for name, v in rows.items():
    med = lambda i: statistics.median(x[i] for x in v)
    print(f"| {name} | {med(0):.2f} | {med(1):.1f} | {med(2):.1f} |")
PY
