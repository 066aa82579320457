//! `UBootShell` against the real U-Boot of the virtual board (Debian's
//! u-boot-qemu under QEMU): through the unix socket, through a pty with
//! the serialport path, through the UART simulator at 115200 baud with a
//! 16-byte FIFO, and across a pty that goes away and comes back.
//!
//! These tests need `scripts/deps.sh virtual`; without QEMU they fail
//! with a message saying so.

// Each test runs on its own runtime and holds the one-VM lock for its
// whole duration on purpose; no other task of that runtime takes it.
#![allow(clippy::await_holding_lock)]

mod support;

use std::time::{Duration, Instant};

use lmx_boards::Catalog;
use lmx_console::sim::{SimConfig, UartSim};
use lmx_console::{
    wait_for_port, Dialect, SerialConfig, SerialTransport, ShellError, Transport, UBootShell,
};
use support::qemu::{one_vm, Console, Vm};
use tokio::net::UnixStream;

const T: Duration = Duration::from_secs(10);

fn qemu_dialect() -> Dialect {
    let board = Catalog::builtin().resolve("qemu-aarch64").unwrap().board;
    Dialect::from_board(&board).unwrap()
}

async fn connect(vm: &Vm) -> UnixStream {
    UnixStream::connect(&vm.console).await.unwrap()
}

/// A value of printable ASCII (quotes, `$`, `;`, backslashes included).
fn random_value(rng: &mut u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            (0x20 + (*rng % 95) as u8) as char
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_uboot_over_the_unix_socket() {
    let _one = one_vm();
    let vm = Vm::start(Console::Unix);
    let mut sh = UBootShell::new(connect(&vm).await, qemu_dialect());
    // The VM waits for us: attach sees the whole boot and stops autoboot.
    sh.attach(Duration::from_secs(30)).await.unwrap();
    let tail = sh.machine().tail().0.join("\n");
    assert!(tail.contains("Hit any key to stop autoboot"), "{tail}");

    let v = sh.run("version", T).await.unwrap();
    assert!(v.text.starts_with("U-Boot 2023.01"), "{}", v.text);

    // `==>` in crc32's output is output, not a prompt.
    let crc = sh.run("crc32 0x40000000 0x1000", T).await.unwrap();
    assert!(
        crc.text.starts_with("crc32 for 40000000 ... 40000fff ==> "),
        "{}",
        crc.text
    );
    assert_eq!(crc.status, Some(0));

    let m = sh.run("echo 'AB''CD'", T).await.unwrap();
    assert_eq!(m.text, "ABCD");

    match sh.run("nosuchcmd", T).await {
        Err(ShellError::Failed {
            status, failure, ..
        }) => {
            assert_eq!(status, Some(1));
            assert!(failure.unwrap().starts_with("Unknown command 'nosuchcmd'"));
        }
        other => panic!("{other:?}"),
    }
    let st = sh.exec("false", T).await.unwrap();
    assert_eq!(st.status, Some(1));
    assert_eq!(sh.printenv("lmx_nothing").await.unwrap(), None);

    let nasty = "a b;c$d\\e\"f'g  ${bootcmd} $? #x \\' \\\\";
    sh.setenv("lmxq", nasty).await.unwrap();
    assert_eq!(sh.printenv("lmxq").await.unwrap().as_deref(), Some(nasty));

    // The longest command that fits CBSIZE 512 runs intact; one more byte is refused.
    let max = match sh.machine().check(&"x".repeat(600)) {
        Err(lmx_console::Refusal::TooLong { max, .. }) => max,
        other => panic!("{other:?}"),
    };
    let fill = "v".repeat(max - "setenv lmxlong ''".len());
    let longest = format!("setenv lmxlong '{fill}'");
    assert_eq!(longest.len(), max);
    sh.run(&longest, T).await.unwrap();
    assert_eq!(
        sh.printenv("lmxlong").await.unwrap().as_deref(),
        Some(fill.as_str())
    );
    let refused = sh.run(&format!("{longest}v"), T).await.unwrap_err();
    assert!(matches!(refused, ShellError::Refused { .. }), "{refused}");

    // Hush's `> ` continuation is cancelled and reported.
    let open = sh.run("setenv t3 'unterminated", T).await.unwrap_err();
    assert!(matches!(open, ShellError::Refused { .. }), "{open}");
    let inc = sh.run("if true; then echo x", T).await.unwrap_err();
    assert!(matches!(inc, ShellError::Incomplete { .. }), "{inc}");
    sh.run("true", T).await.unwrap();

    // A command that outlives its timeout is stopped with Ctrl-C.
    let slow = sh.run("sleep 5", Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(slow, ShellError::Timeout { .. }), "{slow}");
    sh.run("true", T).await.unwrap();

    // A reset mid-command fails the command; the next call re-attaches
    // (the board is booting again: autoboot is stopped once more).
    let reset = sh.run("reset", T).await.unwrap_err();
    assert!(matches!(reset, ShellError::Reset { .. }), "{reset}");
    let after = sh.run("echo back", Duration::from_secs(30)).await.unwrap();
    assert_eq!(after.text, "back");
    let s = sh.stats();
    assert_eq!(
        s.mismatches, 0,
        "a lossless socket never needs a retype: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_uboot_through_a_pty_with_serialport() {
    let _one = one_vm();
    let vm = Vm::start(Console::Pty);
    let port = SerialTransport::open(&vm.console, &SerialConfig::default()).unwrap();
    assert_eq!(port.describe(), vm.console.display().to_string());
    // A second opener is refused: TIOCEXCL + flock.
    let busy = SerialTransport::open(&vm.console, &SerialConfig::default()).unwrap_err();
    assert!(
        matches!(busy, lmx_console::PortError::Busy { .. }),
        "{busy}"
    );
    let mut sh = UBootShell::new(port, qemu_dialect());
    // QEMU drops pty output nobody reads: we attach somewhere mid-boot.
    sh.attach(Duration::from_secs(30)).await.unwrap();
    let crc = sh.run("crc32 0x40000000 0x1000", T).await.unwrap();
    assert!(crc.text.contains("==> "), "{}", crc.text);
    sh.setenv("lmxpty", "over a real tty").await.unwrap();
    assert_eq!(
        sh.printenv("lmxpty").await.unwrap().as_deref(),
        Some("over a real tty")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_commands_through_a_16_byte_fifo_at_115200() {
    let _one = one_vm();
    let vm = Vm::start(Console::Unix);
    let cfg = SimConfig::uart_115200_fifo16();
    let (line, sim) = UartSim::in_front_of(cfg, connect(&vm).await).unwrap();
    let mut sh = UBootShell::new(line, qemu_dialect());
    sh.attach(Duration::from_secs(30)).await.unwrap();

    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let started = Instant::now();
    let mut bytes = 0usize;
    for n in 0..200 {
        // Commands of 100 to 400 bytes.
        let target = 100 + (rng % 301) as usize;
        let name = format!("lmxt{n}");
        let mut value = random_value(&mut rng, target.saturating_sub(name.len() + 10));
        let mut line =
            lmx_console::quote::setenv_line(sh.machine().dialect(), &name, &value).unwrap();
        while line.len() > 400 {
            value.pop();
            line = lmx_console::quote::setenv_line(sh.machine().dialect(), &name, &value).unwrap();
        }
        assert!((100..=400).contains(&line.len()), "{}", line.len());
        sh.run(&line, T)
            .await
            .unwrap_or_else(|e| panic!("command {n}: {e}"));
        bytes += line.len();
        let got = sh
            .printenv(&name)
            .await
            .unwrap_or_else(|e| panic!("printenv {n}: {e}"));
        assert_eq!(
            got.as_deref(),
            Some(value.as_str()),
            "command {n} was altered"
        );
    }
    let elapsed = started.elapsed();
    let s = sim.stats();
    let st = sh.stats();
    eprintln!("200 commands, {bytes} bytes in {elapsed:?}; simulator {s:?}; shell {st:?}");
    // The line really was lossy, and every loss was caught and retyped.
    assert!(s.dropped > 0, "the simulator never dropped a byte: {s:?}");
    assert!(st.mismatches > 0, "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_when_the_pty_comes_back() {
    let _one = one_vm();
    let dir = tempfile::tempdir().unwrap();
    // A stable name, as /dev/serial/by-id gives for a USB adapter.
    let stable = dir.path().join("board-console");
    let mut vm = Vm::start(Console::Pty);
    std::os::unix::fs::symlink(&vm.console, &stable).unwrap();
    let cfg = SerialConfig::default();
    let mut sh = UBootShell::new(
        SerialTransport::open(&stable, &cfg).unwrap(),
        qemu_dialect(),
    );
    sh.attach(Duration::from_secs(30)).await.unwrap();
    sh.run("true", T).await.unwrap();

    // The adapter goes away: the next command fails with a transport error.
    vm.kill();
    let gone = sh.run("true", T).await.unwrap_err();
    assert!(matches!(gone, ShellError::Transport { .. }), "{gone}");
    std::fs::remove_file(&stable).unwrap();

    // ... and comes back a little later under the same name.
    let waiter = {
        let stable = stable.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move { wait_for_port(&stable, &cfg, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let vm2 = Vm::start(Console::Pty);
    std::os::unix::fs::symlink(&vm2.console, &stable).unwrap();
    let port = waiter.await.unwrap().unwrap();
    let mut sh = UBootShell::new(port, qemu_dialect());
    sh.attach(Duration::from_secs(30)).await.unwrap();
    assert_eq!(sh.run("echo 'again'", T).await.unwrap().text, "again");
}

/// Noise on the way back (garbled echo and output) makes commands retry
/// or fail, never run altered: every variable is either exactly what was
/// meant or, for a command reported as failed, possibly absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_towards_the_host_never_changes_what_runs() {
    let _one = one_vm();
    let vm = Vm::start(Console::Unix);
    let (line, sim) =
        UartSim::in_front_of(SimConfig::uart_115200_fifo16(), connect(&vm).await).unwrap();
    let mut sh = UBootShell::new(line, qemu_dialect());
    sh.attach(Duration::from_secs(30)).await.unwrap();
    // One byte in 300 from the board gets a bit flipped.
    sim.set_noise(1.0 / 300.0, 0.0);
    let mut rng = 0x1234_5678_9abc_def1u64;
    let mut sent = Vec::new();
    let mut failed = 0;
    for n in 0..40 {
        let name = format!("lmxn{n}");
        let value = random_value(&mut rng, 150);
        let ok = sh.setenv(&name, &value).await.is_ok();
        if !ok {
            failed += 1;
        }
        sent.push((name, value, ok));
    }
    sim.set_noise(0.0, 0.0);
    sh.attach(Duration::from_secs(30)).await.unwrap();
    for (name, value, ok) in &sent {
        let got = sh.printenv(name).await.unwrap();
        if *ok {
            assert_eq!(got.as_deref(), Some(value.as_str()), "{name}");
        } else {
            assert!(
                got.is_none() || got.as_deref() == Some(value.as_str()),
                "{name}: {got:?}"
            );
        }
    }
    let s = sim.stats();
    eprintln!(
        "noise: {s:?}; {failed} of 40 reported failed; shell {:?}",
        sh.stats()
    );
    assert!(s.corrupted > 0, "{s:?}");
}

/// `bootdelay=0`: the real U-Boot checks for a key once; hammering the
/// key from the banner on still reaches the prompt after a reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootdelay_zero_is_stopped_by_hammering() {
    let _one = one_vm();
    let vm = Vm::start(Console::Unix);
    let mut dialect = qemu_dialect();
    dialect.hammer = true;
    let mut sh = UBootShell::new(connect(&vm).await, dialect);
    sh.attach(Duration::from_secs(30)).await.unwrap();
    sh.run("setenv bootdelay 0", T).await.unwrap();
    let saved = sh.run("saveenv", Duration::from_secs(30)).await;
    assert!(
        saved.is_ok(),
        "saveenv on the virtual board's flash: {saved:?}"
    );
    let reset = sh.run("reset", T).await.unwrap_err();
    assert!(matches!(reset, ShellError::Reset { .. }), "{reset}");
    sh.attach(Duration::from_secs(30)).await.unwrap();
    let tail = sh.machine().tail().0.join("\n");
    assert!(!tail.contains("starting USB"), "autoboot ran:\n{tail}");
    assert_eq!(
        sh.printenv("bootdelay").await.unwrap().as_deref(),
        Some("0")
    );
}
