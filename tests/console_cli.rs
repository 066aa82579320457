//! `lmx console` in a real terminal (tmux) against the virtual board's
//! real U-Boot: typing, a second lmx driving U-Boot through the share
//! socket while the person watches, reconnecting when the board's socket
//! comes back, and the terminal restored after the exit key and SIGTERM.
//! Needs tmux and `scripts/deps.sh virtual`; fails (never skips) without.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Tmux;
use lmx_console::share;
use lmx_console::{Dialect, Endpoint, SerialConfig, UBootShell};
use lmx_testbed::{Arch, Console, Vm, VmConfig};

/// The virtual board's U-Boot alone (no network), its console on `sock`.
fn qemu(sock: &Path) -> Vm {
    Vm::start(&VmConfig::new(Arch::Aarch64, Console::Unix(sock.into())))
        .unwrap_or_else(|e| panic!("{e} (scripts/deps.sh virtual)"))
}

fn count(s: &str, needle: &str) -> usize {
    s.matches(needle).count()
}

#[test]
fn console_in_tmux_shares_reconnects_and_restores_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sock = d.join("board.sock");
    let xdg = d.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    let lmx = PathBuf::from(env!("CARGO_BIN_EXE_lmx"));
    let vm = qemu(&sock);

    let t = Tmux::new(&format!("lmx-console-test-{}", std::process::id()));
    t.line(&format!("stty -a > {}/stty-before.txt", d.display()));
    t.line(&format!(
        "XDG_RUNTIME_DIR={xdg} {lmx} console --port unix:{sock} --log {d}/console.log; stty -a > {d}/stty-after.txt; echo EXIT-$((40+2))",
        xdg = xdg.display(),
        lmx = lmx.display(),
        sock = sock.display(),
        d = d.display()
    ));
    t.wait_for("Hit any key to stop autoboot");
    t.keys(&["Space"]);
    t.wait("the prompt", |s| s.lines().any(|l| l.trim_end() == "=>"));
    t.line("echo tmux-says-hi");
    t.wait("the echo output", |s| count(s, "tmux-says-hi") >= 2);

    // A second lmx drives U-Boot through the share socket while we watch.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let endpoint = Endpoint::Unix(sock.clone());
    std::env::set_var("XDG_RUNTIME_DIR", &xdg);
    let port = rt
        .block_on(share::open_console(
            &endpoint,
            &SerialConfig::default(),
            "pid 1 (console test)",
        ))
        .unwrap();
    let mut shell = UBootShell::new(port, Dialect::mainline());
    let out = rt
        .block_on(async {
            shell.attach(Duration::from_secs(20)).await?;
            shell
                .run("echo from-the-writer", Duration::from_secs(10))
                .await
        })
        .unwrap();
    assert_eq!(out.text, "from-the-writer");
    t.wait("the writer's output on the watcher's screen", |s| {
        count(s, "from-the-writer") >= 1
    });
    t.keys(&["x"]);
    t.wait_for("keys ignored: the console is driven by pid 1 (console test)");
    // A second writer is refused, naming the first.
    let busy = rt
        .block_on(share::open_console(
            &endpoint,
            &SerialConfig::default(),
            "pid 2 (second)",
        ))
        .unwrap_err();
    assert!(busy.to_string().contains("pid 1 (console test)"), "{busy}");
    drop(shell);
    std::thread::sleep(Duration::from_millis(300));

    // The board goes away and comes back at the same socket.
    drop(vm);
    t.wait_for("went away");
    let vm = qemu(&sock);
    t.wait_for("is back");
    t.wait("autoboot after the restart", |s| {
        count(s, "Hit any key to stop autoboot") >= 2
    });
    t.keys(&["Space"]);
    std::thread::sleep(Duration::from_millis(500));
    t.line("echo after-reconnect");
    t.wait("output after reconnect", |s| {
        count(s, "after-reconnect") >= 2
    });

    // The exit key; the terminal settings are as before.
    t.keys(&["C-]"]);
    t.wait_for("EXIT-42");
    let before = std::fs::read_to_string(d.join("stty-before.txt")).unwrap();
    let after = std::fs::read_to_string(d.join("stty-after.txt")).unwrap();
    assert_eq!(before, after, "terminal not restored after the exit key");
    assert!(
        !xdg.join("lmx").read_dir().unwrap().any(|_| true),
        "share socket left behind"
    );

    // SIGTERM restores it too.
    let _ = std::fs::remove_file(d.join("stty-after.txt"));
    t.line(&format!(
        "sh -c 'echo $$ > {d}/pid; exec {lmx} console --port unix:{sock} --no-share'; stty -a > {d}/stty-after.txt; echo TERM-$((40+2))",
        lmx = lmx.display(),
        sock = sock.display(),
        d = d.display()
    ));
    t.wait_for("[lmx] unix:");
    // The screen still shows the first run's status line, so the text
    // above may match before this run started: wait for its pid file.
    let pid_file = d.join("pid");
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid: i32 = loop {
        if let Some(p) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the second lmx console never started (no {})",
            pid_file.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: signalling the lmx process this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    t.wait_for("TERM-42");
    let after = std::fs::read_to_string(d.join("stty-after.txt")).unwrap();
    assert_eq!(before, after, "terminal not restored after SIGTERM");

    let log = std::fs::read_to_string(d.join("console.log")).unwrap();
    assert!(log.contains("tmux-says-hi"), "{log}");
    assert!(log.contains("[lmx] "), "{log}");
    assert!(
        !log.contains('\x1b') && !log.contains('\r'),
        "log not cleaned"
    );
    drop(vm);
}

#[test]
fn a_missing_port_is_named_with_the_ports_that_exist() {
    let lmx = env!("CARGO_BIN_EXE_lmx");
    let out = Command::new(lmx)
        .args(["console", "--port", "/dev/ttyUSB-lmx-missing", "--no-share"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/ttyUSB-lmx-missing does not exist"),
        "{err}"
    );
    assert!(err.contains("plug the adapter in"), "{err}");
    let list = Command::new(lmx)
        .args(["console", "--list"])
        .output()
        .unwrap();
    assert!(list.status.success());
}
