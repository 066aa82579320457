#!/usr/bin/env bash
# TFTP server benchmark on loopback: lmx against dnsmasq, tftpd-hpa and
# atftpd, same client and options for every server.
#
#   bench/tftp.sh [RUNS]        (default 5 runs per cell; needs root for
#                                dnsmasq's fixed port 69 and apt)
#
# Prints a Markdown table of median times and the ratio of each peer to
# lmx (peer time / lmx time: above 1.00 means lmx is faster), the CPU time
# each server spent per transfer, then each server's peak RSS while
# serving a 1 GiB file. "lmx-sleep" is lmx with `--busy-poll 0` (it
# sleeps for every ACK, as the peers do), to show what busy polling buys
# and what it costs. "curl, 4 at once" is four curl clients fetching the
# file at the same time (time until all four are done; MiB/s over all
# four): the CPUs are busy then, which is when spinning could only hurt.
# Not a test: nothing here asserts timings.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RUNS="${1:-5}"
ROOT_DIR="$(pwd)"

scripts/deps.sh bench

WORK="$(mktemp -d /tmp/lmx-bench.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

unpack_hpa "$WORK"

echo "building lmx (release)..." >&2
cargo build --release --quiet
LMX="$ROOT_DIR/target/release/lmx"

SRV="$WORK/srv"
mkdir -p "$SRV"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$SRV/file64"
truncate -s 1G "$SRV/file1g"
SUM64="$(sha256sum < "$SRV/file64" | cut -d' ' -f1)"

start_server() { # name port
  local name="$1" port="$2"
  case "$name" in
    # --client-rx-frames 0: the client is a PC program, not a boot loader
    # with a small receive ring (lmx's default keeps windows within 32
    # frames; see docs/serve.md).
    lmx) setsid "$LMX" serve --bind 127.0.0.1 --port "$port" --max-windowsize 64 --client-rx-frames 0 "$SRV" >/dev/null 2>&1 & ;;
    lmx-sleep) setsid "$LMX" serve --bind 127.0.0.1 --port "$port" --max-windowsize 64 --client-rx-frames 0 --busy-poll 0 "$SRV" >/dev/null 2>&1 & ;;
    dnsmasq) setsid dnsmasq -d -p 0 --enable-tftp --tftp-root="$SRV" --listen-address=127.0.0.1 \
               --bind-interfaces --user=root --conf-file=/dev/null --tftp-max=100 >/dev/null 2>&1 & ;;
    tftpd-hpa) setsid "$HPA" -L -a "127.0.0.1:$port" -u root -s "$SRV" >/dev/null 2>&1 & ;;
    atftpd) setsid atftpd --daemon --no-fork --port "$port" --bind-address 127.0.0.1 \
              --user root.root --logfile /dev/null "$SRV" >/dev/null 2>&1 & ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  sleep 0.5
}

stop_server() {
  kill -- -"$SERVER_PID" 2>/dev/null || kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  sleep 0.2
}

port_of() { case "$1" in dnsmasq) echo 69 ;; lmx) echo 6901 ;; tftpd-hpa) echo 6902 ;; atftpd) echo 6903 ;; lmx-sleep) echo 6904 ;; esac; }



# One transfer; prints seconds. Args: client port blksize window file
fetch() {
  local client="$1" port="$2" blk="$3" win="$4" file="$5" out="$WORK/out" t0 t1
  rm -f "$out" "$out".[1-4]
  t0=$(date +%s.%N)
  case "$client" in
    curl) curl -s --tftp-blksize "$blk" -o "$out" "tftp://127.0.0.1:$port/$file" ;;
    # Four clients at once: the CPUs are busy, nothing is idle to wake.
    curlx4)
      local pids=() i
      for i in 1 2 3 4; do
        curl -s --tftp-blksize "$blk" -o "$out.$i" "tftp://127.0.0.1:$port/$file" &
        pids+=($!)
      done
      wait "${pids[@]}" ;; # (a bare wait would also wait for the servers)
    atftp)
      if [ "$win" = 1 ]; then
        atftp --option "blksize $blk" -g -r "$file" -l "$out" 127.0.0.1 "$port" >/dev/null 2>&1
      else
        atftp --option "blksize $blk" --option "windowsize $win" -g -r "$file" -l "$out" 127.0.0.1 "$port" >/dev/null 2>&1
      fi ;;
  esac
  t1=$(date +%s.%N)
  local o
  for o in "$out" "$out".[1-4]; do
    [ -e "$o" ] || continue
    if [ "$file" = file64 ] && [ "$(sha256sum < "$o" | cut -d' ' -f1)" != "$SUM64" ]; then
      echo "CORRUPT"
      return
    fi
  done
  rm -f "$out".[1-4]
  python3 -c "print(f'{$t1 - $t0:.4f}')"
}

SERVERS=(lmx lmx-sleep dnsmasq tftpd-hpa atftpd)
# client blksize window; windows only where server and client support them
CASES=(
  "curl 512 1" "curl 1468 1" "curl 8192 1"
  "atftp 512 1" "atftp 1468 1" "atftp 8192 1"
  "atftp 1468 8" "atftp 1468 16" "atftp 1468 32"
  "curlx4 1468 1"
)
supports_window() { [ "$1" = lmx ] || [ "$1" = lmx-sleep ] || [ "$1" = atftpd ]; }

RES="$WORK/results.tsv"
: > "$RES"
# All the servers run at once (different ports); measurements are
# interleaved round-robin so that background load, if any, hits every
# server alike.
declare -A SPID
for s in "${SERVERS[@]}"; do
  start_server "$s" "$(port_of "$s")"
  SPID[$s]=$SERVER_PID
done
for c in "${CASES[@]}"; do
  read -r client blk win <<< "$c"
  for s in "${SERVERS[@]}"; do
    if [ "$win" != 1 ] && ! supports_window "$s"; then continue; fi
    fetch "$client" "$(port_of "$s")" "$blk" "$win" file64 >/dev/null # warm-up
  done
  for r in $(seq "$RUNS"); do
    for s in "${SERVERS[@]}"; do
      if [ "$win" != 1 ] && ! supports_window "$s"; then continue; fi
      rm -f "$WORK/cpu" "$WORK/cpu.ready"
      python3 bench/cpu_sample.py "${SPID[$s]}" "$WORK/cpu" &
      sampler=$!
      while [ ! -e "$WORK/cpu.ready" ]; do sleep 0.01; done
      t=$(fetch "$client" "$(port_of "$s")" "$blk" "$win" file64)
      kill -TERM "$sampler"
      wait "$sampler"
      cpu=$(cat "$WORK/cpu")
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$client" "$blk" "$win" "$t" "$cpu" >> "$RES"
    done
  done
done
for s in "${SERVERS[@]}"; do
  SERVER_PID=${SPID[$s]}
  stop_server
done

# Peak RSS while serving 1 GiB (blksize 8192, curl), sampled every 50 ms
# over the server's whole process group (tftpd-hpa forks per transfer).
RSS="$WORK/rss.tsv"
: > "$RSS"
for s in "${SERVERS[@]}"; do
  port=$(port_of "$s")
  start_server "$s" "$port"
  pgid="$SERVER_PID"
  curl -s --tftp-blksize 8192 -o /dev/null "tftp://127.0.0.1:$port/file1g" &
  cpid=$!
  peak=0
  while kill -0 "$cpid" 2>/dev/null; do
    kb=$(ps -o rss= -g "$pgid" 2>/dev/null | awk '{s+=$1} END {print s+0}')
    [ "$kb" -gt "$peak" ] && peak=$kb
    sleep 0.05
  done
  wait "$cpid" || true
  printf '%s\t%s\n' "$s" "$peak" >> "$RSS"
  stop_server
done

python3 - "$RES" "$RSS" "$RUNS" <<'PY'
import sys, statistics, collections
res, rss, runs = sys.argv[1], sys.argv[2], sys.argv[3]
cells = collections.defaultdict(list)
cpus = collections.defaultdict(list)
corrupt = set()
for line in open(res):
    s, c, b, w, t, cpu = line.rstrip("\n").split("\t")
    if t == "CORRUPT":
        corrupt.add((s, c, b, w)); continue
    cells[(c, b, w, s)].append(float(t))
    cpus[(c, b, w, s)].append(float(cpu))
servers = ["lmx", "lmx-sleep", "dnsmasq", "tftpd-hpa", "atftpd"]
keys = sorted({(c, b, w) for (c, b, w, s) in cells}, key=lambda k: (k[0], int(k[2]), int(k[1])))
size = 64 * 1024 * 1024
label = {"curlx4": "curl, 4 at once"}
files = {"curlx4": 4}
print(f"64 MiB file on loopback, median of {runs} runs (seconds; MiB/s; peer/lmx time ratio)\n")
print("| client | blksize | window | " + " | ".join(servers) + " |")
print("|---|---|---|" + "---|" * len(servers))
for (c, b, w) in keys:
    row = [label.get(c, c), b, w]
    base = cells.get((c, b, w, "lmx"))
    base_m = statistics.median(base) if base else None
    for s in servers:
        v = cells.get((c, b, w, s))
        if (s, c, b, w) in corrupt:
            row.append("CORRUPT")
        elif not v:
            row.append("n/a")
        else:
            m = statistics.median(v)
            rate = size * files.get(c, 1) / m / 2**20
            ratio = f", x{m / base_m:.2f}" if base_m and s != "lmx" else ""
            row.append(f"{m:.3f} s ({rate:.0f} MiB/s{ratio})")
    print("| " + " | ".join(row) + " |")
print("\nServer CPU time per transfer, median (seconds, user + system, the server's processes and threads; bench/cpu_sample.py):\n")
print("| client | blksize | window | " + " | ".join(servers) + " |")
print("|---|---|---|" + "---|" * len(servers))
for (c, b, w) in keys:
    row = [label.get(c, c), b, w]
    for s in servers:
        v = cpus.get((c, b, w, s))
        row.append(f"{statistics.median(v):.2f}" if v else "n/a")
    print("| " + " | ".join(row) + " |")
print("\nPeak RSS while serving a 1 GiB file (curl, blksize 8192):\n")
print("| server | peak RSS |")
print("|---|---|")
for line in open(rss):
    s, kb = line.split()
    print(f"| {s} | {int(kb)/1024:.1f} MiB |")
PY
