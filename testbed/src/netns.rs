//! A private network for the calling process: a network namespace with a
//! tap device, no root required where the kernel allows it.
//!
//! [`enter_private_netns`] moves the *whole process* into a new network
//! namespace (and, when not root, a new user namespace in which the caller
//! is root), brings `lo` up and creates a tap device carrying the host
//! address. QEMU started afterwards attaches to the tap; a TFTP server
//! bound to the host address answers the board. Nothing of this is visible
//! from the host's network, and nothing needs cleaning up: the namespace
//! disappears with the last process in it.
//!
//! # Requirements
//!
//! - Root; **or** unprivileged user namespaces
//!   (`sysctl kernel.unprivileged_userns_clone=1` on Debian kernels that
//!   have the switch, `user.max_user_namespaces` > 0) **and** a
//!   `/dev/net/tun` that the user may open (mode 0666, as on typical
//!   desktops). Inside a user namespace the caller is root only over the
//!   namespace's objects: opening `/dev/net/tun` is still checked against
//!   the real user, so where the device is `0600 root` (as on some servers
//!   and containers) creating the tap fails and root is needed.
//! - A single-threaded caller: `unshare(CLONE_NEWUSER)` refuses a process
//!   with several threads, and `CLONE_NEWNET` would move only the calling
//!   thread. Call it first thing in `main`, before any tokio runtime, thread
//!   or QEMU is started.
//! - `ip` from iproute2 (the commands run as child processes, which inherit
//!   the namespace).

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use ipnet::Ipv4Net;

use crate::{Error, Result};

/// Moves the calling process into a new network namespace with `lo` up and
/// a tap device `tap` carrying `host` (e.g. `192.168.77.1/24`).
///
/// As root only a network namespace is created; otherwise a user namespace
/// too, mapping the caller's uid and gid to 0. See the module docs for the
/// requirements. On error the process may already be in the new namespace
/// and should exit.
pub fn enter_private_netns(host: Ipv4Net, tap: &str) -> Result<()> {
    let threads = thread_count();
    if threads > 1 {
        return Err(Error::Netns {
            step: "checking that the process is single-threaded".into(),
            reason: format!("it has {threads} threads"),
            hint: "call enter_private_netns first in main, before starting threads or an async runtime".into(),
        });
    }
    // SAFETY: plain system calls without pointers.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if uid == 0 {
        unshare(libc::CLONE_NEWNET, "unshare(CLONE_NEWNET)")?;
    } else {
        unshare(
            libc::CLONE_NEWUSER | libc::CLONE_NEWNET,
            "unshare(CLONE_NEWUSER|CLONE_NEWNET)",
        )?;
        // setgroups must be denied before an unprivileged gid_map is written.
        write_proc("/proc/self/setgroups", "deny")?;
        write_proc("/proc/self/uid_map", &format!("0 {uid} 1"))?;
        write_proc("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    }
    ip(&["link", "set", "lo", "up"])?;
    ip(&["tuntap", "add", "dev", tap, "mode", "tap"]).map_err(|e| match e {
        Error::CommandFailed { command, output, .. } => Error::Netns {
            step: format!("`{command}`"),
            reason: output,
            hint: "creating a tap needs /dev/net/tun to be openable by the real user: run as root, or make /dev/net/tun mode 0666".into(),
        },
        other => other,
    })?;
    ip(&["addr", "add", &host.to_string(), "dev", tap])?;
    ip(&["link", "set", tap, "up"])?;
    Ok(())
}

/// The address a board on `host`'s network gets by default: the next one
/// (e.g. `192.168.77.2` for `192.168.77.1/24`).
pub fn default_board_ip(host: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(host.addr()).wrapping_add(1))
}

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(1)
}

fn unshare(flags: libc::c_int, step: &str) -> Result<()> {
    // SAFETY: unshare takes no pointers.
    if unsafe { libc::unshare(flags) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "unprivileged user namespaces are disabled: run as root, or enable them with `sudo sysctl kernel.unprivileged_userns_clone=1` (and a non-zero user.max_user_namespaces; on Ubuntu 24.04+ also kernel.apparmor_restrict_unprivileged_userns=0)"
        }
        Some(libc::EINVAL) => "the process must be single-threaded",
        Some(libc::ENOSPC) => "the namespace limit is reached: raise user.max_user_namespaces / user.max_net_namespaces",
        _ => "run as root",
    };
    Err(Error::Netns {
        step: step.into(),
        reason: e.to_string(),
        hint: hint.into(),
    })
}

fn write_proc(path: &str, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::Netns {
        step: format!("writing {text:?} to {path}"),
        reason: e.to_string(),
        hint: "run as root".into(),
    })
}

fn ip(args: &[&str]) -> Result<()> {
    let command = format!("ip {}", args.join(" "));
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::Missing {
                what: "the `ip` command".into(),
                path: "ip".into(),
                hint: "install iproute2 (scripts/deps.sh virtual)".into(),
            },
            _ => Error::Spawn {
                program: "ip".into(),
                source,
            },
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::CommandFailed {
            command,
            status: out.status,
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_ip_is_next_address() {
        let host: Ipv4Net = "192.168.77.1/24".parse().unwrap();
        assert_eq!(default_board_ip(host), Ipv4Addr::new(192, 168, 77, 2));
    }

    #[test]
    fn refuses_a_multithreaded_process() {
        // A second thread for sure (the harness may run tests on the main one).
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        let e = enter_private_netns("192.168.77.1/24".parse().unwrap(), "tap0").unwrap_err();
        drop(tx);
        let _ = t.join();
        assert!(e.to_string().contains("threads"), "{e}");
    }
}
