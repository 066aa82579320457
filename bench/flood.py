#!/usr/bin/env python3
"""One TFTP server under the flood of docs/performance.md ("One noisy
client"), measured from outside: how long a legitimate client on another
address needs to fetch a file while one host floods the server with read
requests it never acknowledges, and how much memory the server uses.

  bench/flood.py PORT PGID FILE SHA256 [--clean-runs N] [--burst-only]

PGID is the server's process group (its processes' memory is summed: PSS
from /proc/PID/smaps_rollup, so that forked children sharing pages are not
counted many times). Prints one JSON object:

  clean_s      median time of a clean fetch (curl from 127.0.0.2)
  flood_s      time from the start of the flood to the first complete,
               intact fetch (curl retried every 0.1 s after a failure)
  attempts     curl runs until then
  peak_mib     the server's peak memory during the flood and 1 s after
  hwm_mib      the server process's own peak RSS over its life (VmHWM; the
               parent only, for servers that fork)
  sent         datagrams the flood sent

The flood, from 127.0.0.1 only and bounded in count and time: a burst of
2,000 read requests (blksize 65464, windowsize 64) from 2,000 source ports
and 2,000 garbage datagrams, then 200 requests and 200 garbage datagrams
every 100 ms until the fetch is complete (at most 60 s, 250,000
datagrams); with --burst-only, the burst alone (the issue's scenario: the
silent requests then hold the server until it gives up on them). The
flooding sockets never read what they are sent. The
flood runs at nice 10 (its CPU would be another host's on a real
network), on the same CPUs as the server and curl.
"""

import argparse
import hashlib
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import threading
import time

LEGIT_IP = "127.0.0.2"
FLOOD_IP = "127.0.0.1"
GREEDY_RRQ = b"\x00\x01%s\x00octet\x00blksize\x0065464\x00windowsize\x0064\x00"
MAX_TIME = 60.0
MAX_DATAGRAMS = 250_000


def fetch(port, name, sha, timeout):
    """One curl fetch from LEGIT_IP; True when complete and intact."""
    out = f"/tmp/lmx-flood-fetch.{os.getpid()}"
    try:
        r = subprocess.run(
            ["curl", "-s", "--interface", LEGIT_IP, "--tftp-blksize", "1468",
             "--max-time", str(timeout), "-o", out,
             f"tftp://127.0.0.1:{port}/{name}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0:
            return False
        with open(out, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest() == sha
    finally:
        try:
            os.unlink(out)
        except FileNotFoundError:
            pass


def group_pss_kib(pgid):
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return total


class Sampler(threading.Thread):
    def __init__(self, pgid):
        super().__init__(daemon=True)
        self.pgid, self.peak, self.stop = pgid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, group_pss_kib(self.pgid))
            time.sleep(0.05)


class Flood(threading.Thread):
    def __init__(self, port, name, burst_only):
        super().__init__(daemon=True)
        self.burst_only = burst_only
        self.port, self.rrq = port, GREEDY_RRQ % name.encode()
        self.stop, self.sent = threading.Event(), 0
        self.burst_done = threading.Event()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
        self.socks = []
        for _ in range(2000):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((FLOOD_IP, 0))
            s.setblocking(False)
            self.socks.append(s)
        rng = random.Random(7)
        # Garbage made up front: the flood stands in for another host, so
        # its own CPU time should disturb the measured server and client
        # as little as it can on the same machine.
        self.pool = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 90)))
                     for _ in range(512)]
        self.n = 0

    def send(self, s, data):
        try:
            s.sendto(data, (FLOOD_IP, self.port))
        except (BlockingIOError, OSError):
            pass
        self.sent += 1

    def garbage(self):
        self.n += 1
        return self.pool[self.n % len(self.pool)]

    def run(self):
        # Nice 10 for this thread (Linux threads have their own nice value):
        # on the real network the flood's CPU is another host's.
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        start = time.monotonic()
        for s in self.socks:
            self.send(s, self.rrq)
            self.send(s, self.garbage())
        self.burst_done.set()
        i = 0
        while (not self.burst_only and not self.stop.is_set()
               and time.monotonic() - start < MAX_TIME
               and self.sent < MAX_DATAGRAMS):
            time.sleep(0.1)
            for _ in range(200):
                s = self.socks[i % len(self.socks)]
                i += 1
                self.send(s, self.rrq)
                self.send(s, self.garbage())

    def close(self):
        for s in self.socks:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("pgid", type=int)
    ap.add_argument("file")
    ap.add_argument("sha")
    ap.add_argument("--clean-runs", type=int, default=3)
    ap.add_argument("--burst-only", action="store_true")
    a = ap.parse_args()

    clean = []
    for _ in range(a.clean_runs):
        t = time.monotonic()
        if not fetch(a.port, a.file, a.sha, 30):
            raise SystemExit("clean fetch failed")
        clean.append(time.monotonic() - t)

    sampler = Sampler(a.pgid)
    sampler.start()
    flood = Flood(a.port, a.file, a.burst_only)
    t0 = time.monotonic()
    flood.start()
    flood.burst_done.wait()
    attempts, ok = 0, False
    while time.monotonic() - t0 < MAX_TIME:
        attempts += 1
        if fetch(a.port, a.file, a.sha, max(1, int(MAX_TIME - (time.monotonic() - t0)))):
            ok = True
            break
        time.sleep(0.1)
    flood_s = time.monotonic() - t0
    flood.stop.set()
    flood.join()
    time.sleep(1)
    sampler.stop.set()
    sampler.join()
    flood.close()
    hwm = 0
    with open(f"/proc/{a.pgid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    print(json.dumps({
        "clean_s": round(statistics.median(clean), 3),
        "flood_s": round(flood_s, 3) if ok else None,
        "attempts": attempts,
        "peak_mib": round(sampler.peak / 1024, 1),
        "hwm_mib": round(hwm / 1024, 1),
        "sent": flood.sent,
    }))


if __name__ == "__main__":
    main()
