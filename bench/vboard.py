"""The virtual aarch64 board for the benchmark scripts (bench/tftpboot.sh,
bench/loss.sh): a tap in the current (private) network namespace, a fresh
QEMU with Debian's U-Boot per call, its console on a unix socket, and the
peer TFTP servers' command lines. Run inside `unshare -n`; QEMUs started
here are killed when the interpreter exits, however it exits."""

import atexit
import os
import re
import socket
import subprocess
import sys
import time

HOST, BOARD = "192.168.77.1", "192.168.77.2"
_LIVE = []
atexit.register(lambda: [q.kill() for q in _LIVE])


def sh(*a, **kw):
    subprocess.run(a, check=True, **kw)


def setup_tap(extra=()):
    """Loopback up and tap0 with the host address (and `extra` ones), in
    this namespace."""
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
    for a in [HOST, *extra]:
        sh("ip", "addr", "add", a + "/24", "dev", "tap0")
    sh("ip", "link", "set", "tap0", "up")


def own_hosts(names):
    """A host address of its own for each server (192.168.77.10 on), so all
    of them can listen at once and one U-Boot can load from each in turn
    (`setenv serverip`)."""
    return {n: f"192.168.77.{10 + i}" for i, n in enumerate(names)}


def servers(srv, lmx, hpa, atftpd=False, hosts=None):
    """argv of each server, serving directory `srv` on port 69 of HOST, or
    of `hosts[name]` when given."""
    at = lambda n: (hosts or {}).get(n, HOST)
    s = {
        "lmx": [lmx, "serve", "--bind", at("lmx"), "--port", "69", "--allow", BOARD, srv],
        "dnsmasq": ["dnsmasq", "-d", "-p", "0", "--enable-tftp", f"--tftp-root={srv}",
                    f"--listen-address={at('dnsmasq')}", "--bind-interfaces",
                    "--user=root", "--conf-file=/dev/null"],
    }
    if atftpd:
        s["atftpd"] = ["atftpd", "--daemon", "--no-fork", "--user", "root", "--group",
                       "root", "--bind-address", at("atftpd"), "--port", "69",
                       "--logfile", "/dev/null", srv]
    s["tftpd-hpa"] = [hpa, "-L", "-a", f"{at('tftpd-hpa')}:69", "-u", "root", "-s", srv]
    return s


class Board:
    """A fresh U-Boot: a NIC wedged by one server cannot spoil the next cell."""

    def __init__(self, work):
        self.sock_path = os.path.join(work, "console.sock")
        if os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
        self.qemu = subprocess.Popen([
            "qemu-system-aarch64", "-machine", "virt", "-cpu", "cortex-a57", "-m", "512",
            "-nodefaults", "-display", "none", "-bios", "/usr/lib/u-boot/qemu_arm64/u-boot.bin",
            "-monitor", "none", "-serial", f"unix:{self.sock_path},server=on,wait=on",
            "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
            "-device", "virtio-net-pci,netdev=n0,romfile=",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _LIVE.append(self.qemu)
        for _ in range(500):
            if os.path.exists(self.sock_path):
                break
            time.sleep(0.02)
        time.sleep(0.2)
        self.con = socket.socket(socket.AF_UNIX)
        self.con.connect(self.sock_path)
        self.buf = b""
        self.until(rb"Hit any key to stop autoboot", 60)
        self.con.sendall(b" ")
        self.until(rb"\n=> ", 10)
        self.cmd(f"setenv ipaddr {BOARD}; setenv serverip {HOST}")

    def until(self, pattern, timeout):
        """Console text up to `pattern`; TimeoutError after `timeout` s."""
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {pattern!r}; console tail: {self.buf[-400:]!r}")
            self.con.settimeout(left)
            try:
                d = self.con.recv(65536)
            except socket.timeout:
                continue
            if not d:
                raise SystemExit("console closed")
            self.buf += d

    def cmd(self, line, timeout=10):
        """Runs a U-Boot command; its output up to the next prompt."""
        self.con.sendall(line.encode() + b"\r")
        return self.until(rb"\n=> ", timeout)

    def load(self, name, addr, fname, size, crc, timeout):
        """Loads `fname` from the server at `addr` to 0x44000000: (seconds
        from typing `tftpboot` to U-Boot's prompt, None) when all `size`
        bytes arrived and their crc32 is `crc`, else (None, why). A load
        that times out leaves U-Boot busy: the caller starts a new board."""
        self.cmd(f"setenv serverip {addr}")
        self.buf = b""
        t = time.monotonic()
        try:
            out = self.cmd(f"tftpboot 0x44000000 {fname}", timeout)
        except TimeoutError:
            return None, f"> {timeout:.0f}"
        dt = time.monotonic() - t
        if f"Bytes transferred = {size} ".encode() not in out:
            print(f"  {name}: load failed after {dt:.1f} s: {out[-160:]!r}", file=sys.stderr)
            return None, "failed"
        got = self.cmd("crc32 0x44000000 ${filesize}", 30)
        if f"==> {crc}".encode() not in got:
            raise SystemExit(f"{name}: crc mismatch after a complete load: {got!r}")
        return dt, None

    def close(self):
        self.qemu.kill()
        self.qemu.wait()
