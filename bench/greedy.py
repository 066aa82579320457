#!/usr/bin/env python3
"""The memory budget's worst case, measured: clients that do answer and
ask for the largest buffers there are.

  bench/greedy.py PORT PID FILE [--clients 64] [--seconds 8]

N clients on N loopback addresses (127.0.3.1 …, so no per-client limit
applies) each read FILE with blksize 65464 and windowsize 64, all at once,
acknowledging every window 50 ms late, so that every transfer holds a
full window buffer for as long as the run lasts (at most --seconds; then
each client sends ERROR and stops). Prints one JSON object: the windows
the server granted (from the OACKs), the bytes received, and the server
process's peak RSS (VmHWM of PID; start a fresh server per run).
Loopback only.
"""

import argparse
import json
import socket
import threading
import time

RRQ = b"\x00\x01%s\x00octet\x00blksize\x0065464\x00windowsize\x0064\x00"


def client(i, port, name, until, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((f"127.0.3.{i + 1}", 0))
    s.settimeout(0.5)
    s.sendto(RRQ % name, ("127.0.0.1", port))
    window, have, got, tid = 1, 0, 0, None
    try:
        while time.monotonic() < until:
            try:
                p, frm = s.recvfrom(70000)
            except socket.timeout:
                if tid:
                    s.sendto(b"\x00\x04" + have.to_bytes(2, "big"), tid)
                continue
            op = int.from_bytes(p[:2], "big")
            if op == 6 and tid is None:
                tid = frm
                f = p[2:].split(b"\x00")
                opts = dict(zip(f[0::2], f[1::2]))
                window = int(opts.get(b"windowsize", b"1"))
                s.sendto(b"\x00\x04\x00\x00", tid)
            elif op == 3 and frm == tid:
                b = int.from_bytes(p[2:4], "big")
                if b != (have + 1) & 0xFFFF:
                    continue
                have, got = b, got + len(p) - 4
                if len(p) - 4 < 65464:
                    s.sendto(b"\x00\x04" + have.to_bytes(2, "big"), tid)
                    break
                if have % window == 0:
                    time.sleep(0.05)  # hold the window a while
                    s.sendto(b"\x00\x04" + have.to_bytes(2, "big"), tid)
            elif op == 5:
                break
    finally:
        if tid:
            s.sendto(b"\x00\x05\x00\x00done\x00", tid)
        s.close()
    out[i] = (window, got)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("file")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=8)
    a = ap.parse_args()
    until = time.monotonic() + a.seconds
    out = [None] * a.clients
    ts = [threading.Thread(target=client, args=(i, a.port, a.file.encode(), until, out))
          for i in range(a.clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    hwm = 0
    with open(f"/proc/{a.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    windows = sorted((o[0] for o in out if o), reverse=True)
    print(json.dumps({
        "clients": a.clients,
        "windows": windows,
        "received_mib": round(sum(o[1] for o in out if o) / 2**20, 1),
        "hwm_mib": round(hwm / 1024, 1),
    }))


if __name__ == "__main__":
    main()
