//! Helpers shared by the root package's integration tests: tool checks,
//! the one-VM-at-a-time lock, running the real `lmx` binary under a
//! watchdog with a check that nothing it started is left, temp dirs and
//! output flattening. Each test file is its own crate and uses only some
//! of these, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What the test rootfs's init prints once userland runs.
pub const MARKER: &str = "LMX-USERLAND-READY";

/// Whether `tool` is an executable file in a `PATH` directory.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// Fails the test (never skips it) when `tool` is not on `PATH`; `hint`
/// says what to install.
pub fn need(tool: &str, hint: &str) {
    assert!(on_path(tool), "`{tool}` is missing: {hint}");
}

/// One VM at a time, host-wide (the lock lives in `lmx-testbed`, shared
/// with every other suite that starts a virtual board).
#[allow(unused_imports)]
pub use lmx_testbed::{one_vm, VmLock};

/// Pseudo-random bytes (xorshift), different per seed: flash contents
/// that no two regions share by accident.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Processes whose environment carries `tag` (QEMU inherits lmx's).
pub fn processes_tagged(tag: &str) -> Vec<String> {
    let needle = format!("LMX_E2E_TAG={tag}");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = e.path();
        if let Ok(env) = std::fs::read(p.join("environ")) {
            if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
                let cmd = std::fs::read_to_string(p.join("cmdline")).unwrap_or_default();
                found.push(format!("{}: {}", p.display(), cmd.replace('\0', " ")));
            }
        }
    }
    found
}

/// A tag for `LMX_E2E_TAG`, unique to this process and moment.
pub fn new_tag() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Fails the test when a process tagged `tag` is still there.
pub fn assert_nothing_left(tag: &str) {
    // QEMU has PDEATHSIG; give the kernel a moment to deliver it.
    let mut left = processes_tagged(tag);
    for _ in 0..40 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        left = processes_tagged(tag);
    }
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// A finished `lmx` run.
pub struct Run {
    pub out: Output,
    pub elapsed: Duration,
    /// Whether a QEMU process was seen while lmx ran.
    pub qemu_seen: bool,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    /// stdout, a newline, stderr.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout(), self.stderr())
    }
    /// [`Run::all`] flattened by [`flat`], so phrases match across lines.
    pub fn flat(&self) -> String {
        flat(&self.all())
    }
    pub fn success(&self) -> bool {
        self.out.status.success()
    }
}

/// Runs `lmx ARGS` with a hard limit (a watchdog against hangs, not a
/// performance threshold), then checks nothing it started is left.
pub fn lmx_watched(args: &[&str], limit: Duration) -> Run {
    let tag = new_tag();
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args(args)
        .env("LMX_E2E_TAG", &tag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting lmx");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let mut qemu_seen = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if !qemu_seen {
            qemu_seen = processes_tagged(&tag)
                .iter()
                .any(|p| p.contains("qemu-system"));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let out = Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    };
    assert_nothing_left(&tag);
    Run {
        out,
        elapsed,
        qemu_seen,
    }
}

/// Text with miette's line wrapping, gutter and arrows undone: every
/// whitespace run becomes one blank, so phrases match across lines.
pub fn flat(text: &str) -> String {
    text.replace(['│', '×', '╰', '├', '─', '▶'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fresh temp dir named `PREFIX…`, removed when dropped.
pub fn tmp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// A path as `&str`, for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `cmd`, failing the test with its stderr when it fails; its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A long-running `lmx ARGS` (`--watch`) whose stderr is read line by line.
pub struct Watch {
    child: std::process::Child,
    tag: String,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
}

impl Watch {
    /// Starts `lmx ARGS`, tagged, stdout discarded.
    pub fn start(args: &[&str]) -> Watch {
        let tag = new_tag();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lmx"))
            .args(args)
            .env("LMX_E2E_TAG", &tag)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            tag,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads lines until one contains `text` (true) or `limit` passes or
    /// stderr ends (false).
    pub fn wait_for(&mut self, text: &str, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(text);
                    self.seen.push(l);
                    if hit {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Ctrl-C: SIGINT to lmx.
    pub fn interrupt(&self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
    }

    /// Waits up to `limit` for lmx to exit (killed after that: `None`).
    pub fn exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The stderr lines read so far, one a line.
    pub fn transcript(&self) -> String {
        self.seen.join("\n")
    }

    /// Fails the test when a process lmx started is still there.
    pub fn assert_nothing_left(&self) {
        assert_nothing_left(&self.tag);
    }

    /// The edit-compile-test loop of `lmx tftpboot ARGS --watch ROOTFS` on
    /// virtual board `board`: waits for the first boot (up to `boot`),
    /// rewrites `rootfs` with the same bytes (a rebuild with a new mtime),
    /// waits for the board to boot again, then Ctrl-C. Asserts each step,
    /// a clean exit and that nothing lmx started is left; returns the
    /// transcript for the caller's own checks.
    pub fn cycle(args: &[&str], board: &str, rootfs: &Path, boot: Duration) -> String {
        let mut w = Watch::start(args);
        let first = w.wait_for(&format!("==> booted: {board} is up"), boot);
        let watching = first && w.wait_for("==> watching", Duration::from_secs(10));
        if watching {
            let bytes = std::fs::read(rootfs).unwrap();
            std::fs::write(rootfs, bytes).unwrap();
        }
        let again = watching
            && w.wait_for("==> booted again", boot)
            && w.wait_for("==> watching", Duration::from_secs(10));
        // Ctrl-C ends the watch; lmx stops QEMU and reaps it.
        w.interrupt();
        let stopped = again && w.wait_for("==> stopped watching", Duration::from_secs(10));
        let status = w.exit(Duration::from_secs(10));
        let transcript = w.transcript();
        assert!(first, "first boot:\n{transcript}");
        assert!(again, "second boot after the change:\n{transcript}");
        assert!(
            transcript.contains("rootfs.squashfs changed: resetting the board"),
            "{transcript}"
        );
        assert!(stopped, "Ctrl-C:\n{transcript}");
        assert!(
            status.is_some_and(|s| s.success()),
            "exit after Ctrl-C: {status:?}"
        );
        w.assert_nothing_left();
        transcript
    }
}

/// A tmux session (a real terminal for `lmx console`), killed on drop.
pub struct Tmux(String);

impl Tmux {
    pub fn new(name: &str) -> Tmux {
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", name, "-x", "160", "-y", "50"])
            .args(["bash", "--norc", "--noprofile"])
            .status()
            .expect("tmux is needed for this test (scripts/deps.sh test)")
            .success();
        assert!(ok);
        Tmux(name.to_string())
    }

    pub fn keys(&self, keys: &[&str]) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.0])
            .args(keys)
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    pub fn line(&self, text: &str) {
        self.keys(&["-l", text]);
        self.keys(&["Enter"]);
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-S", "-200", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until `pred` holds for the screen.
    pub fn wait(&self, what: &str, pred: impl Fn(&str) -> bool) {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if pred(&s) {
                return;
            }
            assert!(
                std::time::Instant::now() < end,
                "waited for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_for(&self, text: &str) {
        self.wait(text, |s| s.contains(text));
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// `lmx ARGS` run to completion as a user runs it: no colour, a fixed
/// `SOURCE_DATE_EPOCH`, the built-in boards.
pub fn lmx_output(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lmx"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("LMX_BOARDS_DIR")
        .output()
        .expect("run lmx")
}

/// The Debian package that has `tool`.
pub fn package_of(tool: &str) -> String {
    match tool {
        "mkimage" | "dumpimage" => "u-boot-tools".into(),
        "dtc" | "fdtget" => "device-tree-compiler".into(),
        "unsquashfs" | "mksquashfs" => "squashfs-tools".into(),
        "xz" => "xz-utils".into(),
        t if t.ends_with("-gcc") => format!("gcc-{}", t.trim_end_matches("-gcc")),
        t => format!("binutils-{}", t.rsplit_once('-').map(|x| x.0).unwrap_or(t)),
    }
}

/// Runs the reference tool `name ARGS` (C locale), failing the test with
/// its Debian package when it is missing and with its stderr when it
/// fails; its stdout.
pub fn tool(name: &str, args: &[&str]) -> String {
    need(
        name,
        &format!(
            "install the Debian package {} (scripts/deps.sh virtual)",
            package_of(name)
        ),
    );
    run(Command::new(name).args(args).env("LC_ALL", "C"))
}

/// The kernel-like ELF of the builder's oracle test
/// (`builder/tests/fixtures/elf`, linked at KSEG0 0x80100000 as the
/// malta kernel is), compiled in `dir` by `TRIPLE-gcc`.
pub fn vmlinux(dir: &Path, triple: &str) -> std::path::PathBuf {
    vmlinux_at(dir, triple, 0x8010_0000)
}

/// [`vmlinux`] linked at `load` instead (a board's kernel.load).
pub fn vmlinux_at(dir: &Path, triple: &str, load: u64) -> std::path::PathBuf {
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("builder/tests/fixtures/elf");
    let lds = std::fs::read_to_string(fx.join("kernel.lds"))
        .unwrap()
        .replace("0x80100000", &format!("{load:#x}"));
    let lds_path = dir.join(format!("kernel-{load:x}.lds"));
    std::fs::write(&lds_path, lds).unwrap();
    let out = if load == 0x8010_0000 {
        dir.join(format!("vmlinux-{triple}"))
    } else {
        dir.join(format!("vmlinux-{triple}-{load:x}"))
    };
    tool(
        &format!("{triple}-gcc"),
        &[
            "-O2",
            "-fno-pic",
            "-mno-abicalls",
            "-nostdlib",
            "-static",
            "-Wl,--build-id=none",
            &format!("-Wl,-T,{}", lds_path.display()),
            "-o",
            s(&out),
            s(&fx.join("kernel.c")),
        ],
    );
    out
}

/// The aarch64 test bed's inputs (kernel `Image`, `rootfs.squashfs`, the
/// machine's `virt.dtb`), planned by `lmx tftpboot --dry-run`, in a
/// directory of their own.
pub fn testbed_inputs() -> tempfile::TempDir {
    let planned = tmp("lmx-e2e-");
    let r = lmx_watched(
        &[
            "tftpboot",
            "--board",
            "qemu-aarch64",
            "--dry-run",
            "--out",
            s(planned.path()),
        ],
        Duration::from_secs(600),
    );
    assert!(r.success(), "{}", r.all());
    let inputs = tmp("lmx-e2e-");
    for f in ["Image", "rootfs.squashfs", "virt.dtb"] {
        std::fs::copy(planned.path().join(f), inputs.path().join(f)).unwrap();
    }
    inputs
}

/// `manifest.json` of an `lmx build` output directory.
pub fn manifest(out: &Path) -> serde_json::Value {
    let path = out.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where a kernel-then-rootfs firmware puts its parts, from the manifest's
/// `firmware` entry (which must name them `kernel` and `rootfs`, in that
/// order).
#[derive(Debug, Clone, Copy)]
pub struct FirmwareParts {
    /// Flash offset and padded size of the kernel.
    pub kernel: (u64, u64),
    /// Flash offset and padded size of the rootfs.
    pub rootfs: (u64, u64),
}

/// The kernel and rootfs parts of `manifest["firmware"]`.
pub fn firmware_parts(manifest: &serde_json::Value) -> FirmwareParts {
    let parts = manifest["firmware"]["parts"]
        .as_array()
        .expect("firmware parts in the manifest");
    let (k, r) = (&parts[0], &parts[1]);
    assert_eq!(
        (k["name"].as_str(), r["name"].as_str()),
        (Some("kernel"), Some("rootfs")),
        "{manifest}"
    );
    let at = |p: &serde_json::Value| {
        (
            p["flash_offset"].as_u64().unwrap(),
            p["padded_size"].as_u64().unwrap(),
        )
    };
    FirmwareParts {
        kernel: at(k),
        rootfs: at(r),
    }
}

/// `lmx flash` writing the build in `from` to the board's flash in DIR,
/// then booting from flash with `bootcmd` and `bootargs` and showing the
/// console: the last step of the flash tests on each board.
pub fn flash_and_boot_args<'a>(
    board: &'a str,
    flash_dir: &'a Path,
    from: &'a Path,
    bootcmd: &'a str,
    bootargs: &'a str,
) -> Vec<&'a str> {
    let mut args = flash_args(board, flash_dir);
    args.extend([
        "--from",
        s(from),
        "--bootcmd",
        bootcmd,
        "--bootargs",
        bootargs,
        "--boot",
        "--show-console",
    ]);
    args
}

/// `lmx flash --board BOARD --yes --flash-dir DIR`, the start of every
/// flash test's command line (the virtual board keeps its flash in DIR).
pub fn flash_args<'a>(board: &'a str, flash_dir: &'a Path) -> Vec<&'a str> {
    vec![
        "flash",
        "--board",
        board,
        "--yes",
        "--flash-dir",
        s(flash_dir),
    ]
}
