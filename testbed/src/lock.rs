//! One virtual board at a time, across test binaries and processes.
//!
//! The machine has two cores; two QEMU guests at once make both slow
//! enough to trip the tests' timeouts. Every test that starts a VM holds
//! [`one_vm`]: an in-process mutex (tests of one binary run on threads)
//! plus an exclusive `flock` on one lock file in the temporary directory
//! (test binaries that run at the same time, e.g. under nextest, and
//! benchmark scripts that take the same file).

use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

static ONE_VM: Mutex<()> = Mutex::new(());

/// The host-wide lock file (`$TMPDIR/lmx-virtual-board.lock`).
pub fn lock_path() -> PathBuf {
    std::env::temp_dir().join("lmx-virtual-board.lock")
}

/// Held while a virtual board runs; released on drop.
pub struct VmLock {
    _guard: MutexGuard<'static, ()>,
    _file: std::fs::File,
}

/// Waits until no other test (in this process or another) runs a
/// virtual board, and holds that until the returned guard drops.
pub fn one_vm() -> VmLock {
    let guard = ONE_VM.lock().unwrap_or_else(|e| e.into_inner());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path())
        .unwrap_or_else(|e| panic!("lock file {}: {e}", lock_path().display()));
    // SAFETY: flock on a descriptor this function owns and keeps open
    // for as long as the lock is held (it closes with the guard).
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock {}", lock_path().display());
    VmLock {
        _guard: guard,
        _file: file,
    }
}
