//! A command's output that runs into lmx's end marker (the line end
//! between them lost on the way) is judged like any other output line.
//! Found by the `console_session` fuzz target (`fuzz/README.md`): a
//! failure text on the marker's line was kept as output but not judged,
//! so the command counted as a success.

use std::time::{Duration, Instant};

use lmx_console::{CommandOptions, Dialect, Outcome, Pacing, ShellMachine};

/// Echoes what the machine types until it sends Enter; returns the line.
fn echo_line(m: &mut ShellMachine, now: Instant) -> String {
    let mut line = Vec::new();
    for _ in 0..1000 {
        while let Some(tx) = m.poll_transmit(now) {
            for b in tx {
                if b == b'\r' {
                    m.receive(now, b"\r\n");
                    return String::from_utf8(line).unwrap();
                }
                if b != 0x03 {
                    line.push(b);
                    m.receive(now, &[b]);
                }
            }
        }
    }
    panic!("no Enter; typed {:?}", String::from_utf8_lossy(&line));
}

/// `lmxN.` of a typed `...; echo 'lmx''N.'$?`.
fn marker(line: &str) -> String {
    let at = line.rfind("echo 'lmx''").unwrap() + "echo 'lmx''".len();
    format!("lmx{}", &line[at..at + 7])
}

#[test]
fn a_failure_text_that_ran_into_the_marker_fails_the_command() {
    let now = Instant::now();
    let mut m = ShellMachine::new(Dialect::mainline(), Pacing::default());
    m.attach(now, Duration::from_secs(10)).unwrap();
    m.receive(now, b"=> ");
    m.receive(now, b"<INTERRUPT>\r\n=> ");
    let sync = echo_line(&mut m, now);
    m.receive(now, format!("{}0\r\n=> ", marker(&sync)).as_bytes());
    assert!(matches!(m.poll_outcome(), Some(Outcome::Ready)));

    m.command(
        now,
        "printenv lmxa",
        Duration::from_secs(10),
        CommandOptions::default(),
    )
    .unwrap();
    let line = echo_line(&mut m, now);
    // `## Error` and the marker on one line: the newline was lost.
    m.receive(
        now,
        format!("## Error: \"lmxa\" not defined{}0\r\n=> ", marker(&line)).as_bytes(),
    );
    match m.poll_outcome() {
        Some(Outcome::Output(o)) => {
            assert!(!o.success(), "{o:?}");
            assert_eq!(o.failure.as_deref(), Some("## Error: \"lmxa\" not defined"));
        }
        other => panic!("{other:?}"),
    }
}
