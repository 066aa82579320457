//! `lmx tftpboot` end to end on the MIPS twins (QEMU malta): the real `lmx`
//! binary builds the uImage from the cached `vmlinux` (LZMA, or gzip for
//! Debian's stock U-Boot), plans command-line phram with `mem=`, starts the
//! board in its own private network namespace, verifies every load with
//! U-Boot's `crc32`, and `bootm` reaches the test rootfs's marker: the
//! static `/init` on big-endian `qemu-mips` (the gl-ar750 path), busybox on
//! little-endian `qemu-mipsel` and `qemu-mipsel-stock`. The refusals come
//! before anything is loaded: an LZMA uImage for the stock U-Boot (which
//! has no LZMA), a big-endian kernel for a little-endian board.
//!
//! Needs `scripts/deps.sh virtual` and the caches of `testbed/kernel.sh
//! mips|mipsel` and `testbed/uboot.sh malta|maltael` (built on first use;
//! `scripts/test.sh` builds them first), and root or unprivileged user
//! namespaces with an openable /dev/net/tun. A missing QEMU fails the test
//! with that hint. One VM at a time (in-process mutex and the host-wide
//! flock shared with tests/tftpboot_e2e.rs); after every run the test
//! checks that no process started by it is left.

mod common;

use std::time::Duration;

use common::{need, one_vm, s, Run, Watch, MARKER};

fn require_qemu(binary: &str) {
    need(
        binary,
        "run `scripts/deps.sh virtual` (QEMU from bookworm-backports, the MIPS cross compilers, U-Boot's source package)",
    );
}

/// Runs `lmx ARGS` (see `common::lmx_watched`) and prints its output.
fn lmx(args: &[&str], limit: Duration) -> Run {
    let r = common::lmx_watched(args, limit);
    eprintln!("--- lmx {} ---\n{}", args.join(" "), r.all());
    r
}

/// Load lines verified by `filesize and crc32 ... match`.
fn verified_loads(all: &str) -> usize {
    all.lines()
        .filter(|l| l.contains("filesize and crc32") && l.contains("match"))
        .count()
}

/// The kernel's `Kernel command line:` line.
fn kernel_cmdline(all: &str) -> &str {
    all.lines()
        .find(|l| l.contains("Kernel command line:"))
        .unwrap_or_else(|| panic!("no kernel command line in\n{all}"))
}

/// What every MIPS twin boot shows: userland reached, the uImage (of
/// `compression`) and the rootfs both checked by crc32 (no separate DTB
/// on MIPS), KSEG0 load addresses. Returns the output.
fn assert_reached_userland(r: &Run, compression: &str) -> String {
    let all = r.all();
    assert!(r.success(), "lmx tftpboot failed:\n{all}");
    assert!(
        all.contains(&format!("userland marker \"{MARKER}\" seen")),
        "{all}"
    );
    assert_eq!(verified_loads(&all), 2, "{all}");
    assert!(all.contains("==> bootm 0x8"), "KSEG0 load address: {all}");
    assert!(all.contains(compression), "{all}");
    assert!(all.contains("MIPS Linux Kernel Image"), "{all}");
    all
}

/// The checks every MIPS twin boot with the board's `cmdline` phram
/// shares; returns the marker line.
fn assert_booted(r: &Run, compression: &str) -> String {
    let all = assert_reached_userland(r, compression);
    // Command-line phram at a physical address, the kernel kept below it.
    let cmdline = kernel_cmdline(&all);
    assert!(cmdline.contains(" mem="), "{cmdline}");
    assert!(cmdline.contains("phram.phram=phram0,0x"), "{cmdline}");
    assert!(
        !cmdline.contains("phram0,0x8"),
        "KSEG0 address given to phram: {cmdline}"
    );
    all.lines()
        .find(|l| l.starts_with(MARKER))
        .unwrap_or_else(|| panic!("no marker line in\n{all}"))
        .to_owned()
}

/// `lmx tftpboot --board BOARD` on QEMU binary `qemu` reaches userland
/// with a uImage of `compression`.
fn boots_to_userland(qemu: &str, board: &str, compression: &str) {
    require_qemu(qemu);
    let _vm = one_vm();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            board,
            "--no-console",
            "--show-console",
        ],
        Duration::from_secs(600),
    );
    let marker = assert_booted(&r, compression);
    // `uname -m` is "mips" on both endiannesses. (lmx stops copying the
    // console right after the marker, so the line may be cut short.)
    assert!(marker.contains(&format!("{MARKER} mips")), "{marker}");
}

#[test]
fn a_big_endian_lzma_uimage_boots_on_qemu_mips() {
    boots_to_userland("qemu-system-mips", "qemu-mips", "lzma compressed");
}

#[test]
fn b_little_endian_lzma_uimage_boots_on_qemu_mipsel() {
    boots_to_userland("qemu-system-mipsel", "qemu-mipsel", "lzma compressed");
}

#[test]
fn c_gzip_uimage_boots_on_debians_stock_uboot() {
    boots_to_userland("qemu-system-mipsel", "qemu-mipsel-stock", "gzip compressed");
}

#[test]
fn d_lzma_for_the_stock_uboot_is_refused_before_loading() {
    require_qemu("qemu-system-mipsel");
    let _vm = one_vm();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-mipsel-stock",
            "--no-console",
            "--format",
            "uimage-lzma",
        ],
        Duration::from_secs(600),
    );
    let all = r.all();
    assert!(!r.success(), "{all}");
    assert!(
        all.contains("not known to boot a uimage-lzma kernel"),
        "{all}"
    );
    assert_nothing_loaded(&all);

    // A ready LZMA uImage (planned for qemu-mipsel, whose U-Boot has
    // LZMA) given to the stock board: refused from the uImage header and
    // the board's `uboot.lzma = false`, naming the bootm failure it avoids.
    let dir = common::tmp("lmx-e2e-");
    let out = s(dir.path());
    let planned = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-mipsel",
            "--dry-run",
            "--out",
            out,
        ],
        Duration::from_secs(600),
    );
    assert!(planned.success(), "{}", planned.all());
    let uimage = dir.path().join("uImage");
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-mipsel-stock",
            "--no-console",
            "--kernel",
            uimage.to_str().unwrap(),
        ],
        Duration::from_secs(600),
    );
    let all = flat(&r.all());
    assert!(!r.success(), "{all}");
    assert!(
        all.contains("board qemu-mipsel-stock's U-Boot has no LZMA"),
        "{all}"
    );
    assert!(all.contains("Unimplemented compression type 3"), "{all}");
    assert_nothing_loaded(&all);
}

/// The output with miette's line wrapping undone (gutters dropped, runs
/// of blanks joined), so messages can be matched whole.
fn flat(all: &str) -> String {
    common::flat(all).replace("- ", "-")
}

/// Refused on the host: the board was never started, nothing was loaded.
fn assert_nothing_loaded(all: &str) {
    assert_eq!(verified_loads(all), 0, "{all}");
    assert!(!all.contains("starting virtual board"), "{all}");
    assert!(!all.contains("==> tftpboot"), "{all}");
    assert!(!all.contains("Uncompressing Kernel Image"), "{all}");
}

#[test]
fn e_a_big_endian_kernel_for_a_little_endian_board_is_refused() {
    require_qemu("qemu-system-mipsel");
    let _vm = one_vm();
    let vmlinux = lmx_testbed::kernel(lmx_testbed::Arch::Mips)
        .unwrap_or_else(|e| panic!("needs the big-endian kernel: {e}"));
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-mipsel",
            "--no-console",
            "--kernel",
            vmlinux.to_str().unwrap(),
        ],
        Duration::from_secs(600),
    );
    let all = r.all();
    assert!(!r.success(), "{all}");
    assert!(
        flat(&all)
            .contains("the ELF is mips big-endian, but board qemu-mipsel is mips little-endian"),
        "{all}"
    );
    assert_nothing_loaded(&all);
}

/// The appended-DTB image that gl-ar750-class U-Boots need, made by `lmx
/// build --append-dtb` and booted from its manifest: the test bed's malta
/// kernel (built with `CONFIG_MIPS_ELF_APPENDED_DTB` and
/// testbed/kernel/malta-appended-dtb.patch) takes the DTB from its
/// `.appended_dtb` section, so the machine is named from the tree lmx put
/// there (the machine's own malta.dtb with a `model` the test sets), here
/// with the board's default command-line phram.
#[test]
fn g_an_appended_dtb_built_by_lmx_build_is_the_one_the_kernel_uses() {
    require_qemu("qemu-system-mips");
    let _vm = one_vm();
    let dir = common::tmp("lmx-e2e-");
    let vmlinux = lmx_testbed::kernel(lmx_testbed::Arch::Mips)
        .unwrap_or_else(|e| panic!("needs the big-endian kernel: {e}"));
    let dtb = dir.path().join("appended.dtb");
    std::fs::copy(vmlinux.with_file_name("malta.dtb"), &dtb).unwrap();
    common::tool(
        "fdtput",
        &["-t", "s", s(&dtb), "/", "model", "lmx appended DTB"],
    );
    let rootfs = dir.path().join("rootfs.squashfs");
    lmx_testbed::rootfs::build_for(lmx_testbed::Arch::Mips, &rootfs)
        .unwrap_or_else(|e| panic!("needs the test rootfs: {e}"));
    let out = dir.path().join("out");
    let built = lmx(
        &[
            "build",
            "--board",
            "qemu-mips",
            "--kernel",
            vmlinux.to_str().unwrap(),
            "--rootfs",
            rootfs.to_str().unwrap(),
            "--dtb",
            dtb.to_str().unwrap(),
            "--append-dtb",
            "--append",
            "init=/init",
            "--out",
            out.to_str().unwrap(),
        ],
        Duration::from_secs(600),
    );
    assert!(built.success(), "{}", built.all());
    assert!(
        built.all().contains(".appended_dtb section"),
        "{}",
        built.all()
    );
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-mips",
            "--manifest",
            out.join("manifest.json").to_str().unwrap(),
            "--no-console",
            "--show-console",
        ],
        Duration::from_secs(600),
    );
    assert_booted(&r, "lzma compressed");
    let all = r.all();
    assert!(all.contains("MIPS: machine is lmx appended DTB"), "{all}");
}

/// `--watch` on the big-endian twin: after a change lmx types `reboot -f`
/// on the running system (the static `/init` reboots, the kernel resets
/// malta through its syscon-reboot driver), U-Boot comes back, and the
/// board boots again. Ctrl-C ends the watch and QEMU with it.
#[test]
fn g_watch_reboots_the_big_endian_twin_and_boots_again() {
    require_qemu("qemu-system-mips");
    let _vm = one_vm();
    let dir = common::tmp("lmx-e2e-");
    let planned = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-mips",
            "--dry-run",
            "--out",
            s(dir.path()),
        ],
        Duration::from_secs(600),
    );
    assert!(planned.success(), "{}", planned.all());
    let uimage = dir.path().join("uImage");
    let rootfs = dir.path().join("rootfs.squashfs");
    Watch::cycle(
        &[
            "tftpboot",
            "--board",
            "qemu-mips",
            "--no-console",
            "--kernel",
            s(&uimage),
            "--rootfs",
            s(&rootfs),
            "--append",
            "init=/init",
            "--watch",
            s(&rootfs),
        ],
        "qemu-mips",
        &rootfs,
        Duration::from_secs(300),
    );
}

/// The seed boards' recipe on the big-endian twin: the DTB travels in the
/// vmlinux's `.appended_dtb` section (the test bed's malta kernel is built
/// with `CONFIG_MIPS_ELF_APPENDED_DTB` and boots on that DTB when the
/// section holds one), carrying the `/reserved-memory` `no-map` node;
/// `phram.phram=` and `mtdparts=` on the command line, no `mem=`. The
/// kernel must name the machine from the DTB lmx put there, mount the
/// phram rootfs and keep the RAM that `mem=` used to take.
#[test]
fn f_seed_recipe_with_the_dtb_in_the_elf_section_boots_qemu_mips() {
    require_qemu("qemu-system-mips");
    let _vm = one_vm();
    let vmlinux = lmx_testbed::kernel(lmx_testbed::Arch::Mips)
        .unwrap_or_else(|e| panic!("needs the big-endian kernel: {e}"));
    let builtin = vmlinux.with_file_name("malta.dtb");
    assert!(
        builtin.is_file(),
        "{} missing: testbed/kernel.sh mips keeps the machine's DTB beside the vmlinux",
        builtin.display()
    );
    let dir = common::tmp("lmx-e2e-");
    let dtb = dir.path().join("malta-seed.dtb");
    std::fs::copy(&builtin, &dtb).unwrap();
    const MODEL: &str = "lmx seed recipe twin";
    common::tool("fdtput", &["-t", "s", s(&dtb), "/", "model", MODEL]);
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            "qemu-mips",
            "--no-console",
            "--show-console",
            "--kernel",
            s(&vmlinux),
            "--dtb",
            s(&dtb),
            "--phram",
            "dt-cmdline",
            "--append-dtb",
            // A 64 MiB phram region, so that whether the no-map node holds
            // shows in the kernel's memory count.
            "--free",
            "64M",
        ],
        Duration::from_secs(600),
    );
    let all = assert_reached_userland(&r, "lzma compressed");
    assert!(
        all.contains("written into the kernel's .appended_dtb section"),
        "{all}"
    );
    // The kernel took the DTB lmx wrote into the section.
    assert!(all.contains(&format!("MIPS: machine is {MODEL}")), "{all}");
    let cmdline = kernel_cmdline(&all);
    assert!(!cmdline.contains("mem="), "{cmdline}");
    assert!(
        cmdline.contains("phram.phram=phram0,0xa000000,"),
        "{cmdline}"
    );
    assert!(cmdline.contains("mtdparts=phram0:"), "{cmdline}");
    // `Memory: AK/TK available`: with mem=160M (the cmdline method) the
    // kernel had at most 160 MiB; now it has the 256 MiB less the no-map
    // phram region (64 MiB and the rootfs), which the allocator never
    // gets. Without the node it would have about 245 MiB available.
    let available_k: u64 = all
        .lines()
        .find_map(|l| {
            let rest = l.split("Memory: ").nth(1)?;
            rest.split('K').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no `Memory:` line in\n{all}"));
    assert!(
        available_k > 160 * 1024 && available_k < 192 * 1024,
        "kernel has {available_k}K available:\n{all}"
    );
    assert!(
        cmdline.contains("mtdparts=phram0:0x4"),
        "a phram region of 64 MiB and more: {cmdline}"
    );
}

/// `--json` lines of a run, parsed; every line must be one JSON object of
/// the documented schema.
fn events(r: &Run) -> Vec<serde_json::Value> {
    r.stdout()
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}"));
            assert_eq!(v["schema"], "lmx.events/1", "{l}");
            assert!(v["t"].is_f64() || v["t"].is_u64(), "{l}");
            v
        })
        .collect()
}

fn names(ev: &[serde_json::Value]) -> Vec<&str> {
    ev.iter().map(|e| e["event"].as_str().unwrap()).collect()
}

/// The mt300-like twin has no crc32: its one load is checked by bootm's
/// data CRC over the kernel+rootfs file. A byte changed in the rootfs part
/// (planned as it is, so size and manifest agree) must stop the boot at
/// `Bad Data CRC` with U-Boot still at its prompt; `--json` tells both
/// runs as events.
#[test]
fn h_bootm_checks_every_byte_where_crc32_is_missing_and_json_tells_the_run() {
    require_qemu("qemu-system-mipsel");
    let _vm = one_vm();
    let board = "qemu-mipsel-mt300";

    // A good run, as events.
    let r = lmx(
        &["tftpboot", "--board", board, "--json"],
        Duration::from_secs(600),
    );
    assert!(r.success(), "{}", r.all());
    let ev = events(&r);
    let n = names(&ev);
    let pos = |name: &str| {
        n.iter()
            .position(|x| *x == name)
            .unwrap_or_else(|| panic!("no {name} event in {n:?}"))
    };
    assert_eq!(n[0], "started");
    assert!(pos("plan") < pos("at-prompt"));
    assert!(pos("loaded") < pos("bootm-verified"));
    assert!(pos("bootm-verified") < pos("kernel-started"));
    assert!(pos("kernel-started") < pos("userland"));
    assert_eq!(*n.last().unwrap(), "done");
    let plan = &ev[pos("plan")];
    assert_eq!(plan["loads"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan["loads"][0]["check"], "bootm-data-crc", "{plan}");
    let loaded = &ev[pos("loaded")];
    assert_eq!(loaded["file"], "kernel-rootfs.uimg");
    assert_eq!(loaded["proof"], "bootm-data-crc");
    assert_eq!(loaded["size"], plan["loads"][0]["size"]);
    assert_eq!(ev.last().unwrap()["ok"], true);
    // No crc32, echo or run was typed at this U-Boot.
    let err = r.stderr();
    assert!(err.contains("==> bootm 0x8"), "{err}");
    assert!(!err.contains("run lmxboot"), "{err}");

    // The same plan with one rootfs byte flipped.
    let dir = common::tmp("lmx-e2e-");
    let out = dir.path().join("plan");
    let planned = lmx(
        &["tftpboot", "--board", board, "--dry-run", "--out", s(&out)],
        Duration::from_secs(600),
    );
    assert!(planned.success(), "{}", planned.all());
    let file = out.join("kernel-rootfs.uimg");
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 5000;
    bytes[at] ^= 0x40;
    std::fs::write(&file, &bytes).unwrap();
    let mut m = common::manifest(&out);
    let crc = crc32fast::hash(&bytes);
    let sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for a in m["artifacts"].as_array_mut().unwrap() {
        if a["path"] == "kernel-rootfs.uimg" {
            a["crc32"] = crc.into();
            a["sha256"] = sha.clone().into();
        }
    }
    for st in m["steps"].as_array_mut().unwrap() {
        if st["file"] == "kernel-rootfs.uimg" {
            st["crc32"] = crc.into();
        }
    }
    std::fs::write(out.join("manifest.json"), m.to_string()).unwrap();
    let r = lmx(
        &[
            "tftpboot",
            "--board",
            board,
            "--manifest",
            s(&out),
            "--json",
        ],
        Duration::from_secs(600),
    );
    assert!(!r.success(), "a corrupted rootfs booted:\n{}", r.all());
    let ev = events(&r);
    let n = names(&ev);
    assert!(n.contains(&"loaded"), "{n:?}");
    assert!(
        !n.contains(&"bootm-verified") && !n.contains(&"kernel-started"),
        "{n:?}"
    );
    let f = ev.last().unwrap();
    assert_eq!(f["event"], "failure", "{f}");
    assert_eq!(f["step"], "boot", "{f}");
    assert!(
        f["reason"].as_str().unwrap().contains("Bad Data CRC"),
        "{f}"
    );
    let tail = f["console_tail"].as_array().unwrap();
    assert!(
        tail.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("Verifying Checksum ... Bad Data CRC")),
        "{f}"
    );
}
