//! `lmx serve` as users run it: the real binary, a real client, signals.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn lmx() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lmx"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Starts `lmx ARGS… serve --port 0 --bind 127.0.0.1 SERVE_ARGS… ROOT`
/// with piped output; returns it, its stdout lines after the first, and
/// the port that first line names.
fn start_serve(
    args: &[&str],
    serve_args: &[&str],
    root: &std::path::Path,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
    u16,
) {
    let mut child = lmx()
        .args(args)
        .args(["serve", "--port", "0", "--bind", "127.0.0.1"])
        .args(serve_args)
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = port_of(&lines.next().unwrap().unwrap());
    (child, lines, port)
}

/// Runs `cmd`, which must fail; returns its standard error.
fn failing(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "expected a failure: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The port from `lmx serve`'s first line ("listening on 127.0.0.1:PORT; …").
fn port_of(first: &str) -> u16 {
    first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"))
}

#[test]
fn privileged_port_error_names_port_flag_and_setcap() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = if is_root() {
        // Run as nobody so binding port 69 is refused, as for a normal user.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_lmx"));
        c
    } else {
        lmx()
    };
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let err = failing(
        cmd.args(["serve", "--port", "69", "--bind", "127.0.0.1"])
            .arg(dir.path()),
    );
    assert!(err.contains("--port"), "{err}");
    assert!(err.contains("setcap cap_net_bind_service=+ep"), "{err}");
}

#[test]
fn missing_root_is_a_clear_startup_error() {
    let err = failing(lmx().args(["serve", "--port", "0", "/nonexistent/lmx-test-root"]));
    assert!(err.contains("/nonexistent/lmx-test-root"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn serves_then_ctrl_c_prints_summary() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join("uImage"), &data).unwrap();
    let (mut child, lines, port) = start_serve(&[], &[], dir.path());
    let out_file = dir.path().join("got");
    let st = Command::new("curl")
        .args(["-sS", "--tftp-blksize", "1468", "-o"])
        .arg(&out_file)
        .arg(format!("tftp://127.0.0.1:{port}/uImage"))
        .status()
        .expect("curl (Debian package curl) is needed");
    assert!(st.success());
    assert_eq!(std::fs::read(&out_file).unwrap(), data);
    // Ctrl-C.
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "lmx serve ignored SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let text = rest.join("\n");
    assert!(text.contains("1 transfers (1 ok, 0 failed)"), "{text}");
    assert!(text.contains("uImage"), "{text}");
}

#[test]
fn exit_after_and_plain_log_lines_when_not_a_tty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"hello").unwrap();
    let (mut child, lines, port) = start_serve(&[], &["--exit-after", "2"], dir.path());
    for name in ["f", "missing"] {
        let _ = Command::new("curl")
            .args(["-sS", "-o", "/dev/null"])
            .arg(format!("tftp://127.0.0.1:{port}/{name}"))
            .output()
            .unwrap();
    }
    let status = child.wait().unwrap();
    assert!(status.success());
    let text: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let text = text.join("\n");
    assert!(text.contains("start  127.0.0.1"), "{text}");
    assert!(text.contains("done "), "{text}");
    assert!(text.contains("refused 127.0.0.1"), "{text}");
    assert!(text.contains("TFTP error 1"), "{text}");
}

/// Runs `lmx -v serve --exit-after 1 EXTRA…`, fetches a 1 MiB file in
/// lock-step with curl, and returns lmx's `busy poll` log line as
/// (waits, caught, spun in vain).
fn busy_poll_counts(extra: &[&str]) -> (u64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), vec![7u8; 1 << 20]).unwrap();
    let serve_args: Vec<&str> = ["--exit-after", "1"].iter().chain(extra).copied().collect();
    let (child, _lines, port) = start_serve(&["-v"], &serve_args, dir.path());
    let got = Command::new("curl")
        .args(["-sS", "--tftp-blksize", "512", "-o", "/dev/null"])
        .arg(format!("tftp://127.0.0.1:{port}/f"))
        .output()
        .unwrap();
    assert!(got.status.success(), "{got:?}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("busy poll: "))
        .unwrap_or_else(|| panic!("no busy poll line in {log}"));
    let nums: Vec<u64> = line
        .split("busy poll: ")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .take(3)
        .collect();
    assert_eq!(nums.len(), 3, "{line}");
    (nums[0], nums[1], nums[2])
}

#[test]
fn busy_poll_spins_by_default_and_never_when_off() {
    // 1 MiB at 512 bytes: 2049 DATA blocks, one wait for each ACK.
    let (waits, caught, missed) = busy_poll_counts(&["--busy-poll", "0"]);
    assert!(waits >= 2049, "{waits} waits");
    assert_eq!((caught, missed), (0, 0), "--busy-poll 0 spun");

    let (waits, caught, missed) = busy_poll_counts(&[]);
    assert!(waits >= 2049, "{waits} waits");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus > 1 {
        // The first wait always spins (nothing missed yet, a slot free).
        assert!(caught + missed >= 1, "never spun on {cpus} CPUs");
    } else {
        assert_eq!((caught, missed), (0, 0), "spun on one CPU");
    }
}

#[test]
fn busy_poll_out_of_range_is_refused_with_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let err = failing(
        lmx()
            .args(["serve", "--port", "0", "--busy-poll", "10001"])
            .arg(dir.path()),
    );
    assert!(err.contains("--busy-poll"), "{err}");
    assert!(err.contains("0..=10000"), "{err}");
}

#[test]
fn a_timeout_range_upside_down_is_refused_by_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let err = failing(
        lmx()
            .args([
                "serve",
                "--port",
                "0",
                "--min-timeout",
                "10",
                "--max-timeout",
                "5",
            ])
            .arg(dir.path()),
    );
    assert!(
        err.contains("--min-timeout 10 is larger than --max-timeout 5"),
        "{err}"
    );
}

#[test]
fn per_client_limit_refuses_by_name_and_half_open_transfers_are_dropped() {
    use std::io::Read;
    use std::net::UdpSocket;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), vec![1u8; 100_000]).unwrap();
    let (mut child, lines, port) = start_serve(
        &["-v"],
        &["--per-client", "1", "--half-open-after", "500"],
        dir.path(),
    );
    let server = format!("127.0.0.1:{port}");
    let rrq = b"\x00\x01f\x00octet\x00";
    let recv = |s: &UdpSocket| {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = vec![0u8; 2048];
        let (n, _) = s.recv_from(&mut buf).expect("an answer");
        buf.truncate(n);
        buf
    };
    // A silent client takes 127.0.0.1's only place; a second request from
    // the same address is refused, naming the limit.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    silent.send_to(rrq, &server).unwrap();
    assert_eq!(&recv(&silent)[..4], b"\x00\x03\x00\x01");
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    other.send_to(rrq, &server).unwrap();
    let p = recv(&other);
    assert_eq!(&p[..4], b"\x00\x05\x00\x00", "{p:?}");
    let msg = String::from_utf8_lossy(&p[4..]).into_owned();
    assert!(msg.contains("per-client limit 1"), "{msg}");
    // A small flood: shown one a line up to five a second, then summed up.
    for _ in 0..9 {
        other.send_to(rrq, &server).unwrap();
        assert_eq!(&recv(&other)[..4], b"\x00\x05\x00\x00");
    }
    // The silent one is dropped after the half-open limit; the place is
    // free again.
    std::thread::sleep(Duration::from_millis(1200));
    other.send_to(rrq, &server).unwrap();
    assert_eq!(&recv(&other)[..4], b"\x00\x03\x00\x01");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "ignored SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let text = text.join("\n");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let shown = text
        .lines()
        .filter(|l| l.starts_with("refused 127.0.0.1:") && l.contains("per-client limit 1"))
        .count();
    // (Five unless a second ended amid the ten refusals.)
    let summed: usize = text
        .lines()
        .filter_map(|l| l.strip_prefix("refused "))
        .filter_map(|l| l.split_once(" more requests in the last second ("))
        .map(|(n, _)| n.parse::<usize>().unwrap())
        .sum();
    assert!(shown >= 5 && shown + summed == 10, "{text}");
    assert!(text.contains("dropped as half-open"), "{text}");
    // The counts by reason, on exit and (with -v) once a second.
    assert!(
        text.contains("lmx serve: refused 10 requests (10 per-client limit)"),
        "{text}"
    );
    assert!(text.contains("1 half-open transfers dropped"), "{text}");
    assert!(
        log.contains("last second: refused") && log.contains("per-client limit"),
        "{log}"
    );
}
