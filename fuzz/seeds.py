#!/usr/bin/env python3
"""Writes the named seed inputs of every fuzz target into corpus/<target>/.

The seeds come from the fixtures already in the tree (the recorded and
written U-Boot consoles of console/tests/fixtures, the `help` listings of
builder/tests/fixtures/uboot-help, the board files, the device-tree
sources and ELF kernel sources of builder/tests/fixtures) and from the
reference tools the oracle tests use (mkimage, dtc, mkenvimage, the
cross compilers: scripts/deps.sh test). Run from fuzz/:

    python3 seeds.py

Each seed is the target's input format (see the check_* function each
target calls). Re-running overwrites the named seeds and leaves the
minimised corpus files (hash names) alone.
"""

import os
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIX = os.path.join(ROOT, "console", "tests", "fixtures")
BFIX = os.path.join(ROOT, "builder", "tests", "fixtures")


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(*p):
    with open(os.path.join(*p), "rb") as f:
        return f.read()


def crlf(b):
    return b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def sections(path):
    """The `@@ NAME` sections of a written vendor transcript."""
    out, name, lines = {}, None, []
    for line in read(path).split(b"\n"):
        if line.startswith(b"@@ "):
            if name is not None:
                out[name] = b"\n".join(lines)
            name, lines = line[3:].decode(), []
        else:
            lines.append(line)
    if name is not None:
        out[name] = b"\n".join(lines)
    return out


# Dialect indices of check_machine: mainline, then the built-in boards by name.
BOARDS = sorted(
    f[:-5]
    for f in os.listdir(os.path.join(ROOT, "boards"))
    if f.endswith(".toml")
)
DIALECT = {"mainline": 0, **{b: i + 1 for i, b in enumerate(BOARDS)}}
VENDOR = {
    "vendor-gl-ar750.txt": "gl-ar750",
    "vendor-gl-mt76xx.txt": "gl-mt300n-v2",
    "vendor-gl-mt300a.txt": "gl-mt300a",
    "vendor-tp-archer-ax23.txt": "tp-archer-ax23",
    "vendor-zyxel-nwa50ax.txt": "zyxel-nwa50ax",
    "vendor-belkin-rt3200.txt": "belkin-rt3200",
    "vendor-openwrt-one.txt": "openwrt-one",
    "vendor-turris-omnia.txt": "turris-omnia",
    "vendor-ath79.txt": "gl-ar750",
    "vendor-ralink-menu.txt": "gl-mt300n-v2",
}


def machine_records(console, cmds=(0, 1, 2)):
    """Console bytes in 48-byte reads with 50 ms between them, time jumps
    to the machine's deadlines, then commands started."""
    rec = b""
    for i in range(0, len(console), 48):
        part = console[i : i + 48]
        rec += bytes([0, len(part)]) + part + bytes([1, 5])
    rec += bytes([2, 2, 2])
    for c in cmds:
        rec += bytes([3, c]) + bytes([2, 2])
    return rec


def console_machine():
    qemu = read(FIX, "qemu-aarch64-session.raw")
    write("console_machine", "qemu-aarch64-session", bytes([DIALECT["qemu-aarch64"]]) + machine_records(qemu))
    write("console_machine", "qemu-aarch64-session-mainline", bytes([0]) + machine_records(qemu))
    write("console_machine", "qemu-aarch64-quoting", bytes([0]) + machine_records(read(FIX, "qemu-aarch64-quoting.raw")))
    for f, board in sorted(VENDOR.items()):
        s = sections(os.path.join(FIX, f)) if b"@@ " in read(FIX, f) else {"boot": read(FIX, f)}
        console = crlf(
            s.get("boot", b"")
            + b"\n"
            + s.get("after-choice", b"")
            + s.get("prompt", b"")
        )
        replies = b"".join(crlf(s[k] + b"\n") for k in ("printenv", "unknown", "usage") if k in s)
        seed = bytes([DIALECT[board]]) + machine_records(console) + machine_records(replies, cmds=(2,))
        write("console_machine", f[:-4], seed)
        # The same board powered on by lmx (a virtual board's attach).
        write("console_machine", f[:-4] + "-power-on", bytes([DIALECT[board] | 0x20]) + machine_records(console))


def console_session():
    # Boards of SESSION_BOARDS in check_session, by index.
    session_boards = ["mainline", "gl-ar750", "gl-mt300n-v2", "gl-mt300a", "qemu-mips", "turris-omnia", "belkin-rt3200", "tp-archer-ax23"]
    clean = b""
    for r in range(12):
        clean += bytes([6, r, 7]) + bytes([0, 255] * 4) + bytes([5, 0, 255] * 3)
    for i, b in enumerate(session_boards):
        write("console_session", f"clean-{b}", bytes([i]) + clean)
        write("console_session", f"boot-{b}", bytes([i | 0x80]) + bytes([4, 50, 0, 255, 0, 255]) + clean)
    # Noise towards the host: a dropped newline, a garbled echo byte, a
    # forged prompt and banner, an inserted failure text.
    noisy = bytes([7, 0, 255, 5, 0, 255])
    noisy += bytes([6, 2, 7, 0, 30, 1, 0, 255, 5, 0, 255])
    noisy += bytes([6, 0, 7, 0, 5, 2, ord("x"), 0, 255, 5, 5, 0, 255])
    noisy += bytes([6, 1, 7, 3, 2, 0, 255, 5, 0, 255])
    noisy += bytes([6, 0, 7, 0, 40, 3, 4, 0, 255, 5, 0, 255])
    noisy += bytes([6, 5, 7, 0, 60, 3, 5, 5, 5, 0, 255])
    for i, b in enumerate(session_boards[:3]):
        write("console_session", f"noise-{b}", bytes([i]) + noisy)


def replies():
    w = lambda name, text, setup=6: write("replies", name, bytes([setup]) + text)
    for f, _ in sorted(VENDOR.items()):
        raw = read(FIX, f)
        if b"@@ " in raw:
            s = sections(os.path.join(FIX, f))
            for k in ("printenv", "unknown", "usage"):
                if k in s:
                    w(f"{f[:-4]}-{k}", crlf(s[k]))
    w("qemu-aarch64-session", read(FIX, "qemu-aarch64-session.raw"), 3)
    for f in sorted(os.listdir(os.path.join(BFIX, "uboot-help"))):
        if f.endswith(".txt"):
            w("help-" + f[:-4], crlf(read(BFIX, "uboot-help", f)))
    w("printenv-mainline", crlf(b"arch=arm\nbaudrate=115200\nboot_targets=qfw usb0 scsi0 virtio0 nvme0 dhcp \nbootcmd=run distro_bootcmd\nbootdelay=2\nlmxtest=a b;c$d\nscript=echo one\n  echo two\nlmxmulti=line one\nline=two\nlmxoff=x\n\nEnvironment size: 3390/262140 bytes"))
    w("printenv-missing", b"## Error: \"nosuch\" not defined")
    w("printenv-filesize", b"warning: something\r\nfilesize=c9000")
    w("saveenv-mainline", crlf(b"Saving Environment to Flash... Un-Protected 2 sectors\nErasing Flash...\n. done\nErased 2 sectors\nWriting to Flash... 9....8....7....6....5....4....3....2....1....done\nProtected 2 sectors\nOK"))
    w("saveenv-failed", crlf(b"Saving Environment to Flash... Flash buffer write timeout at address 4000000 data ffffffff\nFailed (1)"))
    w("crc32", b"crc32 for 40000000 ... 40000fff ==> 5a750c9b")
    w("tftpboot", crlf(b"Using virtio-net#31 device\nTFTP from server 10.0.2.2; our IP address is 10.0.2.15\nFilename 'Image'.\nLoad address: 0x40400000\nLoading: ##################################################  5.4 MiB\n\t 5.4 MiB/s\ndone\nBytes transferred = 823296 (c9000 hex)"))
    w("tftpboot-arp", crlf(b"ARP Retry count exceeded; starting again\nTFTP error: 'File not found' (1)\nNot retrying..."))
    w("nand-bad-blocks", crlf(b"NAND erase: device 0 offset 0x200000, size 0x400000\nSkipping bad block at  0x00300000\nErasing at 0x5e0000 -- 100% complete.\nOK\nSkip bad block 0x00400000"))
    w("md-dump", crlf(b"00400000: 27 05 19 56 ff ff ff ff 00 01 02 03 04 05 06 07  '..V............\n00400010: 41 42                                            ab"), 6)
    w("boot-linux", crlf(b"## Booting kernel from Legacy Image at 40400000 ...\n   Image Name:   lmx\n   Verifying Checksum ... OK\nStarting kernel ...\n\n[    0.000000] Booting Linux on physical CPU 0x0\nRun /init as init process\nlmx-userland-ready\n"), 15)
    w("boot-reset", crlf(b"resetting ...\n\n\nU-Boot 2023.01 (Nov 28 2026 - 22:05:08 +0000)\n\nBoard: MIPS Malta CoreLV\nDRAM:  256 MiB\nmalta # "), 0)


def tool(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, **kw).stdout


def image(tmp):
    for d in ("mips-ar750.dts", "virt-arm64.dts", os.path.join("plan", "mips.dts"), os.path.join("plan", "virt.dts")):
        name = os.path.basename(d)[:-4]
        dtb = tool("dtc", "-I", "dts", "-O", "dtb", os.path.join(BFIX, d))
        write("image", "dtb-" + name, dtb)
    # Version 16 (no size_dt_struct) and a memory reservation.
    dts = os.path.join(tmp, "v16.dts")
    with open(dts, "w") as f:
        f.write('/dts-v1/;\n/memreserve/ 0x40000000 0x100000;\n/ { #address-cells = <1>; model = "m"; chosen { bootargs = "console=ttyS0"; }; c { x; }; };\n')
    write("image", "dtb-v16-memreserve", tool("dtc", "-I", "dts", "-O", "dtb", "-V", "16", dts))
    payload = os.path.join(tmp, "payload")
    with open(payload, "wb") as f:
        f.write(bytes(range(256)) * 3)
    env = dict(os.environ, SOURCE_DATE_EPOCH="1700000000")
    for arch, comp, typ in [("arm64", "none", "kernel"), ("mips", "lzma", "kernel"), ("arm", "gzip", "ramdisk"), ("mips", "none", "multi")]:
        out = os.path.join(tmp, "u")
        data = payload if typ != "multi" else payload + ":" + os.path.join(BFIX, "elf", "hello.c")
        tool("mkimage", "-A", arch, "-O", "linux", "-T", typ, "-C", comp, "-a", "0x80060000", "-e", "0x80060000", "-n", f"lmx {arch} {typ}", "-d", data, out, env=env)
        write("image", f"uimage-{arch}-{typ}-{comp}", read(out))
    script = os.path.join(tmp, "boot.cmd")
    with open(script, "w") as f:
        f.write("setenv bootargs console=ttyS0\nbootm 0x80060000\n")
    tool("mkimage", "-A", "mips", "-O", "linux", "-T", "script", "-C", "none", "-n", "lmx script", "-d", script, out, env=env)
    write("image", "uimage-script", read(out))
    dtb = os.path.join(tmp, "virt.dtb")
    with open(dtb, "wb") as f:
        f.write(tool("dtc", "-I", "dts", "-O", "dtb", os.path.join(BFIX, "virt-arm64.dts")))
    for algo in ("crc32", "sha1", "sha256"):
        its = os.path.join(tmp, "k.its")
        with open(its, "w") as f:
            f.write(f"""/dts-v1/;
/ {{
  description = "lmx fuzz seed";
  #address-cells = <1>;
  images {{
    kernel-1 {{ description = "k"; data = /incbin/("{payload}"); type = "kernel"; arch = "arm64"; os = "linux"; compression = "none"; load = <0x40400000>; entry = <0x40400000>; hash-1 {{ algo = "{algo}"; }}; }};
    fdt-1 {{ description = "d"; data = /incbin/("{dtb}"); type = "flat_dt"; arch = "arm64"; compression = "none"; hash-1 {{ algo = "{algo}"; }}; }};
  }};
  configurations {{ default = "conf-1"; conf-1 {{ description = "c"; kernel = "kernel-1"; fdt = "fdt-1"; }}; }};
}};
""")
        itb = os.path.join(tmp, "k.itb")
        tool("mkimage", "-f", its, itb, env=env)
        write("image", f"fit-{algo}", read(itb))
    # External data (mkimage -E): data-offset and data-size.
    tool("mkimage", "-E", "-f", its, itb, env=env)
    write("image", "fit-external", read(itb))


def kernel(tmp):
    # Setup byte: board index of check_kernel (bits 0-6), DTB given (bit 7).
    freestanding = ["-O2", "-fno-pic", "-mno-abicalls", "-nostdlib", "-static", "-s", "-Wl,--build-id=none", "-Wl,-z,max-page-size=16"]
    for triple, flags, board in [
        ("mips-linux-gnu", [], 0x80),
        ("mipsel-linux-gnu", [], 0x82),
        ("mips-linux-gnu", ["-mabi=64", "-march=mips64r2"], 0x81),
    ]:
        elf = os.path.join(tmp, "vmlinux")
        tool(f"{triple}-gcc", *freestanding, *flags, f"-Wl,-T,{os.path.join(BFIX, 'elf', 'kernel.lds')}", "-o", elf, os.path.join(BFIX, "elf", "kernel.c"))
        name = triple.split("-")[0] + ("64" if flags else "")
        write("kernel", f"elf-{name}", bytes([board]) + read(elf))
    elf = os.path.join(tmp, "vmlinux-dtb")
    tool("mips-linux-gnu-gcc", *freestanding, f"-Wl,-T,{os.path.join(BFIX, 'elf', 'kernel-appended-dtb.lds')}", "-o", elf, os.path.join(BFIX, "elf", "kernel.c"), os.path.join(BFIX, "elf", "appended_dtb.c"))
    write("kernel", "elf-mips-appended-dtb", bytes([0x81]) + read(elf))
    # A raw MIPS binary, a uImage around it, an arm64 Image and an ARM zImage header.
    raw = os.path.join(tmp, "vmlinux.bin")
    tool("mips-linux-gnu-objcopy", "-O", "binary", os.path.join(tmp, "vmlinux"), raw)
    # The code, without the linker script's 64 KiB alignment gap after it.
    with open(raw, "r+b") as f:
        f.truncate(4096)
    write("kernel", "raw-mips", bytes([0]) + read(raw))
    out = os.path.join(tmp, "uImage")
    tool("mkimage", "-A", "mips", "-O", "linux", "-T", "kernel", "-C", "none", "-a", "0x80060000", "-e", "0x80060000", "-n", "lmx", "-d", raw, out, env=dict(os.environ, SOURCE_DATE_EPOCH="1700000000"))
    write("kernel", "uimage-mips", bytes([0]) + read(out))
    image = bytearray(0x80)
    image[8:16] = struct.pack("<Q", 0)
    image[16:24] = struct.pack("<Q", 0x200000)
    image[0x38:0x3C] = b"ARM\x64"
    write("kernel", "arm64-image", bytes([6]) + bytes(image))
    z = bytearray(0x40)
    z[0x24:0x28] = struct.pack("<I", 0x016F2818)
    write("kernel", "arm-zimage", bytes([7]) + bytes(z))


def env(tmp):
    text = b"bootdelay=2\nbootcmd=run boot_flash\nbootargs=console=ttyS0,115200 root=/dev/mtdblock2\nscript=echo one\\\necho two\n# comment\n\nethaddr=00:aa:bb:cc:dd:ee\n"
    src = os.path.join(tmp, "env.txt")
    with open(src, "wb") as f:
        f.write(text)
    # Setup: bit 0 redundant, bit 1 boolean, bit 2 big-endian, bits 3-5
    # size index (5 = 0x400), bit 7 fix CRCs; byte 1 offset, byte 2 gap.
    for args, setup, name in [
        ([], 5 << 3, "single-le"),
        (["-b"], 5 << 3 | 4, "single-be"),
        (["-p", "0"], 5 << 3, "single-pad0"),
    ]:
        out = os.path.join(tmp, "env.bin")
        tool("mkenvimage", "-s", "0x400", *args, "-o", out, src)
        write("env", "mkenvimage-" + name, bytes([setup, 0, 0]) + read(out))
    for flags, bit in [("boolean", 2), ("counter", 0)]:
        out = os.path.join(tmp, "env.bin")
        tool("mkenvimage", "-s", "0x400", "-r", "-o", out, src)
        a = read(out)
        # The second copy: the same variables, flag 0 (obsolete / older).
        b = bytearray(a)
        b[4] = 0
        write("env", f"mkenvimage-redundant-{flags}", bytes([5 << 3 | 1 | bit, 0, 0]) + a + bytes(b))
    # The text form alone (parse_text), and tiny layouts with fixed CRCs.
    write("env", "text", bytes([0]) + text)
    write("env", "tiny-fixed-crc", bytes([0x80 | 2 << 3, 0, 0]) + b"\0\0\0\0a=1\0\0" + bytes(54))
    write("env", "tiny-redundant-fixed-crc", bytes([0x80 | 2 << 3 | 1 | 2, 0, 4]) + b"\0\0\0\0\1a=1\0\0" + bytes(6) + b"\0\0\0\0\0b=2\0\0" + bytes(40))
    write("env", "offsets-u64", bytes([0x40 | 2 << 3 | 1]) + struct.pack("<QQ", 0xFFFF_FFFF_FFFF_FFF0, 0) + bytes(32))


def boards():
    bdir = os.path.join(ROOT, "boards")
    for f in sorted(os.listdir(bdir)):
        if f.endswith(".toml"):
            text = read(bdir, f)
            # The file as `fuzz.toml` (its name no longer matches: an error
            # path) and with the name fixed (it resolves).
            fixed = text.replace(b'name = "' + f[:-5].encode() + b'"', b'name = "fuzz"')
            write("boards", "board-" + f[:-5], fixed)
    fam = os.path.join(bdir, "families")
    for f in sorted(os.listdir(fam)):
        board = read(bdir, "qemu-aarch64.toml").replace(b'name = "qemu-aarch64"', b'name = "fuzz"')
        board = board.replace(b'extends = "qemu-virt"', b'extends = "fuzzfam"')
        family = read(fam, f).replace(b'name = "' + f[:-5].encode() + b'"', b'name = "fuzzfam"')
        write("boards", "family-" + f[:-5], board + b"\n%%family\n" + family)
    tfix = os.path.join(bdir, "tests", "fixtures")
    for f in sorted(os.listdir(tfix)):
        if f.endswith(".toml"):
            write("boards", "fixture-" + f[:-5], read(tfix, f))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        console_machine()
        console_session()
        replies()
        image(tmp)
        kernel(tmp)
        env(tmp)
        boards()


if __name__ == "__main__":
    sys.exit(main())
