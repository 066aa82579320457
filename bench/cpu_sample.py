"""CPU time (user + system) a server's process tree spends while this runs.

    python3 bench/cpu_sample.py PID OUT &   # writes OUT.ready once it has a baseline
    ... the transfer ...
    kill -TERM $!; wait                     # writes the seconds to OUT

PID's process and all its descendants (threads included, through their
process) are read from /proc every 20 ms; each process counts from its
first sample (or from its start, when it appeared later) to its last. A
child that ends between two samples (tftpd-hpa forks one per transfer and
does not collect its times) loses at most those 20 ms.
"""
import os
import signal
import sys
import time

root, out = int(sys.argv[1]), sys.argv[2]
TICK = os.sysconf("SC_CLK_TCK")


def tree(pid):
    """pid and its descendants, as far as /proc shows them."""
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    pids.extend(tree(int(child)))
    except OSError:
        pass
    return pids


def cpu(pid):
    """utime + stime of pid (all its threads), in clock ticks (None when
    gone). Children are sampled themselves, not through the parent's
    cutime, which would count them twice once collected."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # Fields after the command name start at field 3 (state).
    return int(fields[11]) + int(fields[12])


def sample(into):
    for p in tree(root):
        c = cpu(p)
        if c is not None:
            into[p] = c


base = {}
sample(base)
last = dict(base)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
open(out + ".ready", "w").close()
while not stop:
    sample(last)
    time.sleep(0.02)
sample(last)
total = sum(v - base.get(p, 0) for p, v in last.items())
with open(out, "w") as f:
    f.write(f"{total / TICK:.2f}\n")
