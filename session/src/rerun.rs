//! The edit-build-boot loop (`lmx tftpboot --watch`). After a boot, lmx
//! watches paths (files, or directories walked recursively) and, when
//! they change and then stay still for a moment, brings the board back
//! to U-Boot by the chosen [`ResetMethod`] so the caller can plan and
//! boot again.
//!
//! While it waits, the console keeps being read (and handed to the
//! [`Reporter`], which shows it when the user asked), so the board never
//! blocks on a full line.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lmx_console::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::report::Reporter;

/// How the board gets back to U-Boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetMethod {
    /// Type `reboot -f` on the running system's shell.
    Reboot,
    /// Run a host command (e.g. a power switch), through `sh -c`.
    Command(String),
    /// Ask the person at the board to reset it.
    Manual,
}

impl std::str::FromStr for ResetMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reboot" => Ok(ResetMethod::Reboot),
            "manual" => Ok(ResetMethod::Manual),
            _ => match s.strip_prefix("cmd:") {
                Some(c) if !c.trim().is_empty() => Ok(ResetMethod::Command(c.to_string())),
                _ => Err(format!(
                    "unknown reset method {s:?}: reboot, manual or cmd:SHELL-COMMAND"
                )),
            },
        }
    }
}

/// What the watched paths looked like: (path, size, mtime) of every file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl Snapshot {
    /// Reads the state of `paths` now (missing paths count as empty).
    pub fn take(paths: &[PathBuf]) -> Snapshot {
        let mut v = Vec::new();
        for p in paths {
            walk(p, &mut v, 0);
        }
        v.sort();
        Snapshot(v)
    }

    /// The first path that differs from `other`, for the message.
    pub fn changed_path(&self, other: &Snapshot) -> Option<PathBuf> {
        for e in &self.0 {
            if !other.0.contains(e) {
                return Some(e.0.clone());
            }
        }
        other
            .0
            .iter()
            .find(|e| !self.0.contains(e))
            .map(|e| e.0.clone())
    }
}

fn walk(p: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>, depth: usize) {
    let Ok(m) = std::fs::metadata(p) else {
        return;
    };
    if m.is_dir() {
        if depth > 16 {
            return;
        }
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                walk(&e.path(), out, depth + 1);
            }
        }
    } else {
        out.push((p.to_path_buf(), m.len(), m.modified().ok()));
    }
}

/// How often the paths are looked at, and how long they must stay still.
const POLL: Duration = Duration::from_millis(300);
const SETTLE: Duration = Duration::from_millis(700);

/// Waits until `paths` differ from `base` and then stay unchanged for a
/// moment; reads the console meanwhile and hands it to `report`. Returns
/// the new snapshot and a changed path, or `None` on Ctrl-C.
///
/// `interrupt` must be created before the user is told that Ctrl-C stops
/// the watch: a signal stream installed only when this function runs
/// would leave a window in which Ctrl-C kills the process outright (and a
/// fresh `ctrl_c()` per loop turn would miss a signal arriving between
/// turns).
pub async fn wait_for_change<T: Transport + ?Sized>(
    io: &mut T,
    paths: &[PathBuf],
    base: &Snapshot,
    report: &mut dyn Reporter,
    interrupt: &mut tokio::signal::unix::Signal,
) -> std::io::Result<Option<(Snapshot, PathBuf)>> {
    let mut buf = vec![0u8; 4096];
    let mut pending: Option<(Snapshot, std::time::Instant)> = None;
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            r = io.read(&mut buf) => {
                let n = r?;
                if n == 0 {
                    return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the console closed"));
                }
                report.console(&buf[..n]);
            }
            _ = interrupt.recv() => return Ok(None),
            _ = tick.tick() => {
                let now = Snapshot::take(paths);
                match &pending {
                    None if now != *base => pending = Some((now, std::time::Instant::now())),
                    Some((s, since)) if *s == now && since.elapsed() >= SETTLE => {
                        let path = now.changed_path(base).unwrap_or_else(|| paths[0].clone());
                        return Ok(Some((now, path)));
                    }
                    Some((s, _)) if *s == now => {}
                    Some(_) => pending = Some((now, std::time::Instant::now())),
                    None => {}
                }
            }
        }
    }
}

/// Brings the board back towards U-Boot; the caller then attaches (which
/// stops autoboot). A manual reset is asked for through `report`.
pub async fn reset<T: Transport + ?Sized>(
    io: &mut T,
    method: &ResetMethod,
    report: &mut dyn Reporter,
) -> std::io::Result<()> {
    match method {
        ResetMethod::Reboot => {
            // Ctrl-C clears a half-typed line; then a forced reboot.
            io.write_all(b"\x03\rreboot -f\r").await?;
            io.flush().await
        }
        ResetMethod::Command(c) => {
            let cmd = c.clone();
            let status = tokio::task::spawn_blocking(move || {
                std::process::Command::new("sh").arg("-c").arg(cmd).status()
            })
            .await
            .map_err(std::io::Error::other)??;
            if status.success() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "reset command `{c}` failed with {status}"
                )))
            }
        }
        ResetMethod::Manual => {
            report.say("==> reset the board now (power-cycle or press its reset button); lmx waits for U-Boot");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_see_changes() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a");
        std::fs::write(&f, b"1").unwrap();
        let a = Snapshot::take(&[d.path().to_path_buf()]);
        assert_eq!(a, Snapshot::take(&[d.path().to_path_buf()]));
        std::fs::write(&f, b"22").unwrap();
        let b = Snapshot::take(&[d.path().to_path_buf()]);
        assert_ne!(a, b);
        assert_eq!(b.changed_path(&a), Some(f));
    }

    #[tokio::test]
    async fn a_reboot_clears_the_line_and_a_manual_reset_is_asked_for() {
        let (mut ours, mut board) = tokio::io::duplex(64);
        let mut r = crate::Recorder::default();
        reset(&mut ours, &ResetMethod::Reboot, &mut r)
            .await
            .unwrap();
        let mut got = [0u8; 12];
        board.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"\x03\rreboot -f\r");
        reset(&mut ours, &ResetMethod::Manual, &mut r)
            .await
            .unwrap();
        assert!(
            r.lines[0].starts_with("==> reset the board now"),
            "{:?}",
            r.lines
        );
        let e = reset(&mut ours, &ResetMethod::Command("exit 3".into()), &mut r)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("reset command `exit 3` failed"),
            "{e}"
        );
    }

    #[test]
    fn reset_methods_parse() {
        assert_eq!("reboot".parse(), Ok(ResetMethod::Reboot));
        assert_eq!("manual".parse(), Ok(ResetMethod::Manual));
        assert_eq!(
            "cmd:usbrelay R1=0".parse(),
            Ok(ResetMethod::Command("usbrelay R1=0".into()))
        );
        assert!("zap".parse::<ResetMethod>().is_err());
    }
}
