//! The eight real seed boards planned as a new user plans them: the real
//! binary, a kernel of the board's architecture linked where the board
//! loads it, a squashfs-sized rootfs and a dtc-compiled device tree, and
//! nothing else but the two addresses. For each of them:
//!
//! * `lmx tftpboot --dry-run` plans with no other flag, and its printed
//!   plan (`plan.txt`: commands, addresses, bootargs, RAM map, notes) is
//!   the golden file `tests/golden/BOARD.plan.txt` (regenerate with
//!   `LMX_UPDATE_GOLDEN=1 cargo test --test seed_boards`, then read the
//!   diff: each address must be the board file's cited value);
//! * `lmx build` from the same inputs writes byte for byte the same plan,
//!   manifest and artifacts (one build path);
//! * the phram recipe leaves Linux all RAM but the rootfs: no `mem=`, a
//!   `/reserved-memory` `no-map` node of the rootfs region's size;
//! * the GL MT76xx boards, whose U-Boots have no `crc32` and a
//!   flash-writing `run`, get one kernel+rootfs uImage checked by `bootm`
//!   and a boot typed directly; what nothing could verify is refused
//!   unless `--no-verify` says otherwise.

mod common;

use std::path::{Path, PathBuf};

use common::{lmx_output as lmx, s, tool};

const BOARDS: [&str; 8] = [
    "gl-ar750",
    "gl-mt300a",
    "gl-mt300n-v2",
    "tp-archer-ax23",
    "zyxel-nwa50ax",
    "belkin-rt3200",
    "openwrt-one",
    "turris-omnia",
];

/// An arm64 `Image` header (magic, image_size) over filler bytes.
fn arm64_image(dir: &Path) -> PathBuf {
    let mut k = vec![0x5au8; 3 << 20];
    k[..0x40].fill(0);
    k[16..24].copy_from_slice(&(8u64 << 20).to_le_bytes());
    k[0x38..0x3c].copy_from_slice(b"ARM\x64");
    let p = dir.join("Image");
    std::fs::write(&p, k).unwrap();
    p
}

/// An ARM `zImage` header (magic at 0x24, start and end at 0x28/0x2c).
fn zimage(dir: &Path) -> PathBuf {
    let len = 3u32 << 20;
    let mut k = vec![0xa5u8; len as usize];
    k[0x24..0x28].copy_from_slice(&0x016f_2818u32.to_le_bytes());
    k[0x28..0x2c].copy_from_slice(&0u32.to_le_bytes());
    k[0x2c..0x30].copy_from_slice(&len.to_le_bytes());
    let p = dir.join("zImage");
    std::fs::write(&p, k).unwrap();
    p
}

/// A device tree with the cell sizes of the board's architecture.
fn dtb(dir: &Path, cells: u32) -> PathBuf {
    let dts = dir.join(format!("board-{cells}.dts"));
    std::fs::write(
        &dts,
        format!(
            "/dts-v1/;\n/ {{\n\t#address-cells = <{cells}>;\n\t#size-cells = <{cells}>;\n\
             \tcompatible = \"lmx,test\";\n\tchosen {{ }};\n}};\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("board-{cells}.dtb"));
    tool(
        "dtc",
        &["-q", "-I", "dts", "-O", "dtb", "-o", s(&out), s(&dts)],
    );
    out
}

/// A stand-in for a squashfs image: its magic, then 2.5 MiB of bytes.
fn rootfs(dir: &Path) -> PathBuf {
    let mut r: Vec<u8> = (0..(5u32 << 19)).map(|i| (i % 253) as u8).collect();
    r[..4].copy_from_slice(b"hsqs");
    let p = dir.join("root.squashfs");
    std::fs::write(&p, r).unwrap();
    p
}

/// Kernel and DTB for `board`.
fn inputs(dir: &Path, board: &str) -> (PathBuf, PathBuf) {
    match board {
        "gl-ar750" => (
            common::vmlinux_at(dir, "mips-linux-gnu", 0x8006_0000),
            dtb(dir, 1),
        ),
        "gl-mt300a" | "gl-mt300n-v2" => (
            common::vmlinux_at(dir, "mipsel-linux-gnu", 0x8000_0000),
            dtb(dir, 1),
        ),
        "tp-archer-ax23" | "zyxel-nwa50ax" => (
            common::vmlinux_at(dir, "mipsel-linux-gnu", 0x8000_1000),
            dtb(dir, 1),
        ),
        "belkin-rt3200" | "openwrt-one" => (arm64_image(dir), dtb(dir, 2)),
        "turris-omnia" => (zimage(dir), dtb(dir, 1)),
        other => panic!("no inputs for {other}"),
    }
}

fn golden(board: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{board}.plan.txt"))
}

/// Every file of an artifact directory, by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// The addresses a `tftpboot` run gives, and the same for `build`.
const TFTPBOOT_ADDRS: [&str; 4] = ["--board-ip", "192.168.1.1", "--server-ip", "192.168.1.2"];
const BUILD_ADDRS: [&str; 4] = ["--ipaddr", "192.168.1.1", "--serverip", "192.168.1.2"];

/// `--board B --kernel K --rootfs R --dtb D` with the board's kernel and
/// DTB made in `t/BOARD/`.
fn input_args(t: &Path, board: &str, root: &Path) -> Vec<String> {
    let dir = t.join(board);
    std::fs::create_dir_all(&dir).unwrap();
    let (kernel, dtb) = inputs(&dir, board);
    [
        "--board",
        board,
        "--kernel",
        s(&kernel),
        "--rootfs",
        s(root),
        "--dtb",
        s(&dtb),
    ]
    .map(String::from)
    .to_vec()
}

/// `lmx CMD INPUTS REST`.
fn lmx_with(cmd: &str, inputs: &[String], rest: &[&str]) -> std::process::Output {
    let mut args = vec![cmd];
    args.extend(inputs.iter().map(String::as_str));
    args.extend(rest);
    lmx(&args)
}

#[test]
fn without_crc32_the_gl_mt76xx_plans_verify_through_bootm_or_need_no_verify() {
    let t = tempfile::tempdir().unwrap();
    let root = rootfs(t.path());
    for board in ["gl-mt300a", "gl-mt300n-v2"] {
        let inputs = input_args(t.path(), board, &root);
        let tftpboot = [&TFTPBOOT_ADDRS[..], &["--dry-run"]].concat();
        let out = lmx_with("tftpboot", &inputs, &tftpboot);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{board}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("kernel-rootfs.uimg"), "{board}: {text}");
        assert!(
            text.contains("every byte by bootm's uImage data CRC"),
            "{board}: {text}"
        );
        assert!(text.contains("setenv verify y"), "{board}: {text}");
        assert!(
            !text.contains("run lmxboot") && !text.contains("crc32 0x"),
            "{board}: {text}"
        );
        // A DTB loaded beside the kernel would go unchecked: refused by both
        // commands before anything is sent, naming the ways out.
        for (cmd, rest) in [("tftpboot", &tftpboot[..]), ("build", &["--dry-run"][..])] {
            let rest = [rest, &["--no-append-dtb"]].concat();
            let out = lmx_with(cmd, &inputs, &rest);
            let err = common::flat(&String::from_utf8_lossy(&out.stderr));
            assert!(!out.status.success(), "{board} {cmd}: planned:\n{err}");
            let head = format!("board {board}: lmx cannot verify loads");
            for p in [head.as_str(), "no crc32", "--append-dtb", "--no-verify"] {
                assert!(err.contains(p), "{board} {cmd}: {p:?} not in\n{err}");
            }
            // --no-verify plans it, and says so.
            let rest = [&rest[..], &["--no-verify"]].concat();
            let out = lmx_with(cmd, &inputs, &rest);
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "{board} {cmd}: {all}");
            assert!(all.contains("--no-verify"), "{board} {cmd}: {all}");
        }
    }
}

#[test]
fn every_seed_board_plans_with_only_its_inputs_and_build_agrees() {
    let t = tempfile::tempdir().unwrap();
    let root = rootfs(t.path());
    let update = std::env::var_os("LMX_UPDATE_GOLDEN").is_some();
    let mut mismatched = Vec::new();
    for board in BOARDS {
        let inputs = input_args(t.path(), board, &root);
        let dir = t.path().join(board);
        let booted = dir.join("tftpboot");
        let rest = [&TFTPBOOT_ADDRS[..], &["--dry-run", "--out", s(&booted)]].concat();
        let out = lmx_with("tftpboot", &inputs, &rest);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{board}: tftpboot --dry-run:\n{text}");
        assert!(!text.contains("starting virtual board"), "{text}");

        let built = dir.join("build");
        let rest = [&BUILD_ADDRS[..], &["--out", s(&built)]].concat();
        let out = lmx_with("build", &inputs, &rest);
        assert!(
            out.status.success(),
            "{board}: build:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // One build path: the same plan, manifest and artifacts.
        let mut from_tftpboot = files(&booted);
        from_tftpboot.retain(|(n, _)| n != "boot-plan.json");
        let from_build = files(&built);
        let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&from_tftpboot), names(&from_build), "{board}");
        for ((n, a), (_, b)) in from_tftpboot.iter().zip(&from_build) {
            assert!(a == b, "{board}: {n} differs between tftpboot and build");
        }

        let plan = std::fs::read_to_string(built.join("plan.txt")).unwrap();
        let manifest = common::manifest(&built);
        let bootargs = manifest["bootargs"].as_str().unwrap();
        // All RAM but the rootfs stays Linux's: no mem= anywhere.
        assert!(!bootargs.contains("mem="), "{board}: {bootargs}");
        assert_eq!(manifest["phram"], "dt-cmdline", "{board}");
        assert!(
            bootargs.contains("phram.phram=phram0,") && bootargs.contains("root=/dev/mtdblock0"),
            "{board}: {bootargs}"
        );
        // The separately loaded DTB carries the no-map node of the
        // rootfs region (appended DTBs are checked in builder's tests).
        let rootfs_region = manifest["layout"]["regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "rootfs")
            .unwrap_or_else(|| panic!("{board}: no rootfs region in {manifest}"))
            .clone();
        if built.join("board.dtb").is_file() {
            let start = rootfs_region["phys"].as_u64().unwrap();
            let node = format!("/reserved-memory/phram-rootfs@{start:x}");
            let props = tool("fdtget", &["-p", s(&built.join("board.dtb")), &node]);
            assert!(props.lines().any(|l| l == "no-map"), "{board}: {props}");
        }

        let path = golden(board);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &plan).unwrap();
        } else {
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if want != plan {
                mismatched.push(format!(
                    "{board}: plan differs from {}:\n--- want\n{want}\n--- got\n{plan}",
                    path.display()
                ));
            }
        }
    }
    assert!(mismatched.is_empty(), "{}", mismatched.join("\n"));
}

/// `--power` on a real board: the console is opened, nothing is typed
/// into it (a board being powered on gets no byte before it speaks), and a
/// power command that fails ends the run with its status and stderr.
#[test]
fn a_failing_power_command_is_reported_and_the_console_gets_nothing() {
    use std::io::Read;
    let t = tempfile::tempdir().unwrap();
    let root = rootfs(t.path());
    let inputs = input_args(t.path(), "gl-ar750", &root);
    let sock = t.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let received = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        got
    });
    let port = format!("unix:{}", sock.display());
    let out = lmx_with(
        "tftpboot",
        &inputs,
        &[
            "--board-ip",
            "127.0.0.2",
            "--server-ip",
            "127.0.0.1",
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--no-console",
            "--power",
            "echo 'relay 2: no such device' >&2; exit 3",
        ],
    );
    let err = common::flat(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("==> power cycle: echo"), "{err}");
    assert!(err.contains("exit status: 3"), "{err}");
    assert!(err.contains("relay 2: no such device"), "{err}");
    assert!(err.contains("labgrid-client -p PLACE acquire"), "{err}");
    assert_eq!(
        received.join().unwrap(),
        b"",
        "lmx typed into a board being powered on"
    );

    // A virtual board is powered on by lmx itself.
    let out = lmx(&[
        "tftpboot",
        "--board",
        "qemu-aarch64",
        "--power",
        "true",
        "--dry-run",
    ]);
    let err = common::flat(&String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--power is for a real board's power switch"),
        "{err}"
    );
}

/// `--json` when the run ends before a board is touched: `started`, then
/// one `error` event with the message and its help, nothing else on stdout.
#[test]
fn json_tells_a_refused_plan_as_an_error_event() {
    let t = tempfile::tempdir().unwrap();
    let root = rootfs(t.path());
    let inputs = input_args(t.path(), "gl-mt300n-v2", &root);
    let rest = [
        &TFTPBOOT_ADDRS[..],
        &["--dry-run", "--no-append-dtb", "--json"],
    ]
    .concat();
    let out = lmx_with("tftpboot", &inputs, &rest);
    assert!(!out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["event"], "started");
    assert_eq!(lines[0]["board"], "gl-mt300n-v2");
    let e = &lines[1];
    assert_eq!(e["event"], "error", "{e}");
    assert_eq!(e["schema"], "lmx.events/1");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("cannot verify loads"), "{msg}");
    assert!(e["help"].as_str().unwrap().contains("--no-verify"), "{e}");
}
