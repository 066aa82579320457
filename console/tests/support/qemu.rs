//! The virtual board for console tests: Debian's U-Boot under
//! `qemu-system-aarch64 -M virt` (through `lmx-testbed`), console on a
//! unix socket or a pty. QEMU dies with the test process
//! (`PR_SET_PDEATHSIG`) and is killed on drop, so a failing test leaves
//! nothing behind. One VM at a time: the machine has two cores.

use std::path::{Path, PathBuf};

pub const UBOOT: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";
pub const QEMU: &str = "qemu-system-aarch64";

/// One VM at a time, host-wide (`lmx_testbed::one_vm`).
pub fn one_vm() -> lmx_testbed::VmLock {
    lmx_testbed::one_vm()
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

/// A running virtual board, started through `lmx-testbed` (QEMU dies
/// with the test process and is killed on drop).
pub struct Vm {
    vm: lmx_testbed::Vm,
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
        let console = match console {
            Console::Unix => lmx_testbed::Console::Unix(sock),
            Console::Pty => lmx_testbed::Console::Pty,
        };
        let cfg = lmx_testbed::VmConfig::new(lmx_testbed::Arch::Aarch64, console);
        let vm = lmx_testbed::Vm::start(&cfg).unwrap_or_else(|e| {
            panic!("starting the virtual board: {e} (scripts/deps.sh virtual)")
        });
        let console = match vm.console() {
            lmx_testbed::ConsoleEndpoint::Unix(p) | lmx_testbed::ConsoleEndpoint::Pty(p) => {
                p.clone()
            }
        };
        Vm {
            vm,
            console,
            _dir: Some(dir),
        }
    }

    pub fn kill(&mut self) {
        self.vm.kill();
    }
}
