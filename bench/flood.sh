#!/usr/bin/env bash
# One noisy client must not lock out the others: lmx, dnsmasq, tftpd-hpa
# and atftpd, each with its default settings on loopback, while one host
# (127.0.0.1) floods it with read requests it never acknowledges and with
# garbage; a client on another address (127.0.0.2, curl, blksize 1468)
# fetches a 10 MiB file. See bench/flood.py for the flood and what is
# measured; docs/performance.md for results.
#
#   bench/flood.sh [RUNS]       (default 3 runs per server; needs root for
#                                dnsmasq's fixed port 69 and for apt)
#   FLOOD=burst bench/flood.sh  the issue's scenario: one burst, no more
#
# Servers not installed are installed with scripts/deps.sh bench
# (tftpd-hpa is unpacked privately, as bench/tftp.sh does). Not a test:
# nothing here asserts timings. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-3}"
ROOT_DIR="$(pwd)"
FLOOD_ARGS=()
[ "${FLOOD:-sustained}" = burst ] && FLOOD_ARGS=(--burst-only)

if ! command -v dnsmasq >/dev/null || ! command -v atftpd >/dev/null || ! command -v curl >/dev/null; then
  scripts/deps.sh bench
fi

WORK="$(mktemp -d /tmp/lmx-flood.XXXXXX)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -- -"$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

unpack_hpa "$WORK"

echo "building lmx (release)..." >&2
cargo build --release --quiet -p lmx
LMX="$ROOT_DIR/target/release/lmx"

SRV="$WORK/srv"
mkdir -p "$SRV"
head -c $((10 * 1024 * 1024)) /dev/urandom > "$SRV/file10"
SUM="$(sha256sum < "$SRV/file10" | cut -d' ' -f1)"

port_of() { case "$1" in dnsmasq) echo 69 ;; lmx) echo 6901 ;; tftpd-hpa) echo 6902 ;; atftpd) echo 6903 ;; esac; }

# Each server as the issue ran lmx: its defaults, bound to 127.0.0.1.
start_server() { # name
  local port; port="$(port_of "$1")"
  case "$1" in
    lmx) setsid "$LMX" serve --port "$port" --bind 127.0.0.1 "$SRV" >/dev/null 2>&1 & ;;
    dnsmasq) setsid dnsmasq -d -p 0 --enable-tftp --tftp-root="$SRV" --listen-address=127.0.0.1 \
               --bind-interfaces --user=root --conf-file=/dev/null >/dev/null 2>&1 & ;;
    tftpd-hpa) setsid "$HPA" -L -a "127.0.0.1:$port" -u root -s "$SRV" >/dev/null 2>&1 & ;;
    atftpd) setsid atftpd --daemon --no-fork --port "$port" --bind-address 127.0.0.1 \
              --user root.root --logfile /dev/null "$SRV" >/dev/null 2>&1 & ;;
  esac
  SERVER_PID=$!
  sleep 0.5
}

stop_server() {
  kill -- -"$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  sleep 1
}

SERVERS=(lmx dnsmasq tftpd-hpa atftpd)
RES="$WORK/results.jsonl"
: > "$RES"
for r in $(seq "$RUNS"); do
  for s in "${SERVERS[@]}"; do
    start_server "$s"
    echo "run $r: $s" >&2
    if out=$(python3 bench/flood.py "$(port_of "$s")" "$SERVER_PID" file10 "$SUM" "${FLOOD_ARGS[@]}"); then
      echo "  $out" >&2
      printf '{"server": "%s", "run": %s, "result": %s}\n' "$s" "$r" "$out" >> "$RES"
    else
      printf '{"server": "%s", "run": %s, "result": null}\n' "$s" "$r" >> "$RES"
    fi
    stop_server
  done
done

python3 - "$RES" "$RUNS" "${FLOOD:-sustained}" <<'PY'
import sys, json, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d = json.loads(line)
    rows[d["server"]].append(d["result"])
what = "one burst from 127.0.0.1" if sys.argv[3] == "burst" else "while 127.0.0.1 floods"
print(f"10 MiB over loopback to curl on 127.0.0.2 (blksize 1468), {what}; median of {sys.argv[2]} runs\n")
print("| server | clean fetch | complete fetch, from the flood's start | x clean | curl attempts | peak memory (PSS, all processes) | server process peak RSS |")
print("|---|---|---|---|---|---|---|")
for s in ["lmx", "dnsmasq", "tftpd-hpa", "atftpd"]:
    rs = [r for r in rows.get(s, []) if r]
    if not rs:
        print(f"| {s} | n/a | n/a | | | | |"); continue
    clean = statistics.median(r["clean_s"] for r in rs)
    done = [r["flood_s"] for r in rs if r["flood_s"] is not None]
    failed = len(rs) - len(done)
    # A run that never completed counts as slower than any that did.
    fl = statistics.median(done + [float("inf")] * failed)
    fl_s = f"{fl:.2f} s" if fl != float("inf") else "not within 60 s"
    if failed:
        fl_s += f" ({failed} of {len(rs)} runs not within 60 s)"
    ratio = f"{fl / clean:.1f}" if fl != float("inf") else "n/a"
    att = statistics.median(r["attempts"] for r in rs)
    peak = max(r["peak_mib"] for r in rs)
    hwm = max(r["hwm_mib"] for r in rs)
    print(f"| {s} | {clean:.2f} s | {fl_s} | {ratio} | {att:g} | {peak:.1f} MiB | {hwm:.1f} MiB |")
PY
