//! Helpers shared by the test bed's VM tests (`boot.rs`, `malta.rs`):
//! one VM at a time in this binary, and running `lmx-testbed-run` under a
//! watchdog with both outputs collected. Each test file is its own crate
//! and uses only some of these, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One VM at a time, host-wide (`lmx_testbed::one_vm`).
pub fn one_vm() -> lmx_testbed::VmLock {
    lmx_testbed::one_vm()
}

/// A child process killed when this guard drops (test failure included).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `r` to its end on a thread of its own; the text, lossily.
pub fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// What a bounded run of `lmx-testbed-run` left.
pub struct Finished {
    /// `None` when it did not finish within the limit (it was killed).
    pub status: Option<ExitStatus>,
    /// Its stdout: the board's console.
    pub console: String,
    /// Its stderr: the step report.
    pub report: String,
}

/// Runs `cmd` (killed with the test thread, by `PR_SET_PDEATHSIG`) for at
/// most `limit` (a watchdog against hangs, not a performance threshold),
/// collects both outputs and prints them for the test log.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Finished {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: only prctl between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    let mut child = KillOnDrop(cmd.spawn().unwrap());
    let out = read_all(child.0.stdout.take().unwrap());
    let err = read_all(child.0.stderr.take().unwrap());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(child);
    let (console, report) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("--- console ---\n{console}\n--- lmx-testbed-run ---\n{report}");
    Finished {
        status,
        console,
        report,
    }
}

/// The lines of `/proc/mtd` in the console output.
pub fn proc_mtd(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("mtd") && l.contains(": "))
        .collect()
}
