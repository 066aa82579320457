//! The virtual board for console tests: Debian's U-Boot under
//! `qemu-system-aarch64 -M virt`, console on a unix socket or a pty.
//! QEMU dies with the test process (`PR_SET_PDEATHSIG`) and is killed on
//! drop, so a failing test leaves nothing behind. One VM at a time: the
//! machine has two cores.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
pub const QEMU: &str = "qemu-system-aarch64";

static ONE_VM: Mutex<()> = Mutex::new(());

/// Serialises the VM tests of this binary.
pub fn one_vm() -> MutexGuard<'static, ()> {
    ONE_VM.lock().unwrap_or_else(|e| e.into_inner())
}

/// Fails (never skips) when the test bed is not installed.
pub fn require_testbed() {
    let qemu = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(QEMU).is_file()))
        .unwrap_or(false);
    assert!(
        qemu && Path::new(UBOOT).is_file(),
        "the virtual board needs {QEMU} and {UBOOT}: run `scripts/deps.sh virtual` \
         (QEMU >= 10 from bookworm-backports and u-boot-qemu)"
    );
}

/// A running QEMU.
pub struct Vm {
    child: Child,
    /// `-serial unix:` socket path, or the pty QEMU created.
    pub console: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

pub enum Console {
    Unix,
    Pty,
}

impl Vm {
    pub fn start(console: Console) -> Vm {
        require_testbed();
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("console.sock");
        let serial = match console {
            Console::Unix => format!("unix:{},server=on,wait=on", sock.display()),
            Console::Pty => "pty".to_string(),
        };
        let mut cmd = Command::new(QEMU);
        cmd.args([
            "-M",
            "virt",
            "-cpu",
            "cortex-a57",
            "-m",
            "512",
            "-bios",
            UBOOT,
            "-nographic",
            "-monitor",
            "none",
            "-display",
            "none",
            "-serial",
            &serial,
            "-nic",
            "none",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("start qemu-system-aarch64");
        let console = match console {
            Console::Unix => {
                let end = Instant::now() + Duration::from_secs(10);
                while !sock.exists() {
                    assert!(
                        Instant::now() < end,
                        "QEMU did not create {}",
                        sock.display()
                    );
                    std::thread::sleep(Duration::from_millis(20));
                }
                sock
            }
            Console::Pty => {
                // "char device redirected to /dev/pts/3 (label serial0)" on stdout.
                let stdout = child.stdout.take().unwrap();
                let mut lines = BufReader::new(stdout).lines();
                let pts = loop {
                    let line = lines
                        .next()
                        .expect("QEMU exited before naming its pty")
                        .unwrap();
                    if let Some(rest) = line.split("redirected to ").nth(1) {
                        break PathBuf::from(rest.split_whitespace().next().unwrap());
                    }
                };
                // Keep draining stdout so QEMU never blocks on it.
                std::thread::spawn(move || for _ in lines {});
                pts
            }
        };
        Vm {
            child,
            console,
            _dir: Some(dir),
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}
