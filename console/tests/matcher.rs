//! The sans-I/O `ShellMachine` against transcripts: the recorded session
//! of the test bed's U-Boot and vendor-style logs written from
//! `docs/design/uboot-and-tftp.md` ("Vendor builds"), replayed by a scripted fake with virtual time.

mod support;

use std::time::{Duration, Instant};

use lmx_boards::{Catalog, LineLimit};
use lmx_console::printenv::{judge_readback, ReadBack};
use lmx_console::{
    CommandOptions, Dialect, MarkerMode, Outcome, Pacing, Refusal, ShellError, ShellMachine,
    UBootShell,
};
use support::fake::{fixture, Boot, FakeUBoot};

/// A machine wired to a fake, in virtual time.
struct Pair {
    m: ShellMachine,
    f: FakeUBoot,
    now: Instant,
    /// Every byte the machine sent, in order.
    sent: Vec<u8>,
    /// Host bytes (by index into `sent`) the "line" drops.
    drop: Box<dyn FnMut(usize, u8) -> bool>,
    /// How late the board's output reaches the machine (a busy emulator,
    /// a slow adapter).
    latency: Duration,
    /// Board output on its way: when it arrives, and the bytes.
    pending: std::collections::VecDeque<(Instant, Vec<u8>)>,
}

impl Pair {
    fn new(dialect: Dialect, f: FakeUBoot) -> Pair {
        Pair {
            m: ShellMachine::new(dialect, Pacing::default()),
            f,
            now: Instant::now(),
            sent: Vec::new(),
            drop: Box::new(|_, _| false),
            latency: Duration::ZERO,
            pending: std::collections::VecDeque::new(),
        }
    }

    fn until_outcome(&mut self) -> Outcome {
        let end = self.now + Duration::from_secs(600);
        loop {
            let mut progressed = false;
            let out = self.f.take_output();
            if !out.is_empty() {
                self.pending.push_back((self.now + self.latency, out));
                progressed = true;
            }
            while self.pending.front().is_some_and(|(t, _)| *t <= self.now) {
                let (_, out) = self.pending.pop_front().unwrap();
                self.m.receive(self.now, &out);
                progressed = true;
            }
            while let Some(tx) = self.m.poll_transmit(self.now) {
                for b in tx {
                    let i = self.sent.len();
                    self.sent.push(b);
                    if !(self.drop)(i, b) {
                        self.f.input(&[b]);
                    }
                }
                progressed = true;
            }
            if let Some(o) = self.m.poll_outcome() {
                // Deliver what the machine sent on the way out (a Ctrl-C).
                while let Some(tx) = self.m.poll_transmit(self.now) {
                    self.sent.extend_from_slice(&tx);
                    self.f.input(&tx);
                }
                return o;
            }
            if !progressed {
                let mut d = self.m.poll_deadline().expect("an operation has a deadline");
                if let Some((t, _)) = self.pending.front() {
                    d = d.min(*t);
                }
                assert!(d <= end, "virtual time ran away");
                self.now = self.now.max(d);
                self.m.handle_timeout(self.now);
            }
            self.now += Duration::from_micros(200);
        }
    }

    fn attach(&mut self) -> Outcome {
        self.m.attach(self.now, Duration::from_secs(20)).unwrap();
        self.until_outcome()
    }

    fn exec(&mut self, cmd: &str) -> Result<lmx_console::CommandOutput, ShellError> {
        let opts = CommandOptions {
            banner_expected: cmd.starts_with("version"),
        };
        self.m
            .command(self.now, cmd, Duration::from_secs(10), opts)?;
        match self.until_outcome() {
            Outcome::Output(o) => Ok(o),
            Outcome::Failed(e) => Err(e),
            Outcome::Ready => panic!("a command ended in Ready"),
        }
    }

    /// No Enter was ever sent on its own: every CR follows a typed byte.
    fn assert_no_bare_newline(&self) {
        for (i, &b) in self.sent.iter().enumerate() {
            if b == b'\r' || b == b'\n' {
                assert!(
                    i > 0 && (0x20..0x7f).contains(&self.sent[i - 1]),
                    "bare newline at {i}: {:?}",
                    String::from_utf8_lossy(&self.sent)
                );
            }
        }
    }
}

fn ready(o: Outcome) {
    match o {
        Outcome::Ready => {}
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn mainline() -> Pair {
    let mut f = FakeUBoot::mainline();
    f.power_on();
    let mut p = Pair::new(Dialect::mainline(), f);
    ready(p.attach());
    p
}

fn board_dialect(name: &str) -> Dialect {
    let board = Catalog::builtin().resolve(name).unwrap().board;
    Dialect::from_board(&board).unwrap()
}

#[test]
fn autoboot_is_stopped_with_the_boards_key_then_synced() {
    let p = mainline();
    // The recorded boot log up to "Hit any key" made it send the space.
    assert_eq!(p.sent[0], b' ');
    assert_eq!(p.f.executed.len(), 1, "only the sync line ran");
    let sync = &p.f.executed[0];
    assert!(
        sync.starts_with("echo 'lmx''") && sync.ends_with(".'$?"),
        "{sync}"
    );
    p.assert_no_bare_newline();
}

#[test]
fn silent_prompt_is_poked_with_ctrl_c_never_a_newline() {
    let mut f = FakeUBoot::mainline();
    f.at_prompt_unseen();
    let mut p = Pair::new(Dialect::mainline(), f);
    ready(p.attach());
    assert_eq!(p.sent[0], 0x03);
    p.assert_no_bare_newline();
}

#[test]
fn attached_after_a_reset_mid_boot() {
    // Attach while the board is silent, then it resets and boots.
    let mut f = FakeUBoot::mainline();
    f.power_on();
    let log = f.take_output();
    let mut p = Pair::new(Dialect::mainline(), f);
    p.m.attach(p.now, Duration::from_secs(20)).unwrap();
    // Half a boot log arrives (attached mid-boot), then a full boot.
    p.m.receive(p.now, &log[..log.len() / 2]);
    p.f.power_on();
    ready(p.until_outcome());
}

#[test]
fn output_and_status_through_echo_dollar_question() {
    let mut p = mainline();
    let crc = p.exec("crc32 0x40000000 0x1000").unwrap();
    // `==>` in the output is not a prompt: the line is output.
    assert_eq!(crc.text, "crc32 for 40000000 ... 40000fff ==> 5a750c9b");
    assert_eq!(crc.status, Some(0));
    assert!(crc.success());
    let f = p.exec("false").unwrap();
    assert_eq!((f.text.as_str(), f.status), ("", Some(1)));
    let u = p.exec("nosuchcmd").unwrap();
    assert_eq!(u.status, Some(1));
    assert_eq!(
        u.failure.as_deref(),
        Some("Unknown command 'nosuchcmd' - try 'help'")
    );
    let e = p.exec("printenv nosuch").unwrap();
    assert!(e.failure.as_deref().unwrap().starts_with("## Error"));
    // Output without a final newline before the marker is kept, and
    // flagged.
    let n = p.exec("echo -n abc").unwrap();
    assert_eq!(n.text, "abc");
    assert!(n.unterminated);
    assert!(!crc.unterminated);
    // `version` prints the banner: expected, not a reset.
    let v = p.exec("version").unwrap();
    assert!(v.text.starts_with("U-Boot 2023.01"), "{}", v.text);
    p.assert_no_bare_newline();
}

#[test]
fn setenv_quoting_survives_hush() {
    let mut p = mainline();
    let value = "a b;c$d\\e\"f'g  h $? ${x}";
    let line = lmx_console::quote::setenv_line(p.m.dialect(), "t1", value).unwrap();
    assert!(p.exec(&line).unwrap().success());
    assert_eq!(p.f.env.get("t1").map(String::as_str), Some(value));
}

#[test]
fn refused_before_sending() {
    let mut p = mainline();
    let before = p.sent.len();
    let long = format!("setenv x {}", "y".repeat(600));
    for (cmd, want) in [
        ("", "Empty"),
        ("   ;", "Empty"),
        ("echo a\tb", "ControlByte"),
        ("echo \u{1b}[A", "ControlByte"),
        ("echo caf\u{e9}", "ControlByte"),
        (long.as_str(), "TooLong"),
    ] {
        let err =
            p.m.command(
                p.now,
                cmd,
                Duration::from_secs(1),
                CommandOptions::default(),
            )
            .unwrap_err();
        let ShellError::Refused { reason, .. } = &err else {
            panic!("{err}")
        };
        assert!(
            format!("{reason:?}").starts_with(want),
            "{cmd:?}: {reason:?}"
        );
    }
    assert_eq!(p.sent.len(), before, "nothing was sent");
    // The limit is CBSIZE - 1 minus the marker suffix.
    let Err(Refusal::TooLong { max, cbsize, .. }) = p.m.check(&long) else {
        panic!()
    };
    assert_eq!(cbsize, 512);
    assert!(p.m.check(&format!("echo {}", "z".repeat(max - 5))).is_ok());
    assert!(p.m.check(&format!("echo {}", "z".repeat(max - 4))).is_err());
}

#[test]
fn dropped_characters_are_retyped_never_run_garbled() {
    let mut p = mainline();
    let start = p.sent.len();
    // Drop the 30th and 31st byte of the command and one byte of the retype.
    p.drop = Box::new(move |i, _| i == start + 30 || i == start + 31 || i == start + 140);
    let value = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".repeat(2);
    let cmd = format!("setenv lmxt1 '{value}'");
    assert!(p.exec(&cmd).unwrap().success());
    assert_eq!(p.f.env["lmxt1"], value);
    // Exactly one command line ran after the sync, and it was complete.
    assert_eq!(p.f.executed.len(), 2);
    assert!(p.f.executed[1].starts_with(&cmd));
    let s = p.m.stats();
    assert!(s.mismatches >= 2, "{s:?}");
}

#[test]
fn a_lost_enter_is_cancelled_not_repeated() {
    let mut p = mainline();
    let mut first = true;
    p.drop = Box::new(move |_, b| {
        let hit = b == b'\r' && first;
        if hit {
            first = false;
        }
        hit
    });
    assert!(p.exec("setenv a 1").unwrap().success());
    assert_eq!(p.f.executed.len(), 2, "{:?}", p.f.executed);
    p.assert_no_bare_newline();
}

#[test]
fn a_line_that_never_echoes_right_gives_up() {
    let mut p = mainline();
    let start = p.sent.len();
    // Every 5th byte of the command is lost, forever.
    p.drop = Box::new(move |i, b| i > start && b != 0x03 && i % 5 == 0);
    let err = p.exec("setenv a 0123456789").unwrap_err();
    assert!(
        matches!(err, ShellError::Unreliable { attempts: 8, .. }),
        "{err}"
    );
    assert_eq!(p.f.executed.len(), 1, "nothing but the sync ran");
    assert!(err.to_string().contains("last console lines"), "{err}");
}

#[test]
fn a_reset_mid_command_fails_it() {
    let mut p = mainline();
    let err = p.exec("reset").unwrap_err();
    assert!(matches!(err, ShellError::Reset { .. }), "{err}");
    assert!(err.to_string().contains("U-Boot 2023.01"), "{err}");
    // The next attach stops autoboot again.
    ready(p.attach());
    assert!(p.exec("true").unwrap().success());
}

#[test]
fn open_quotes_and_comments_are_refused_for_hush() {
    let p = mainline();
    assert_eq!(
        p.m.check("setenv t3 'unterminated"),
        Err(Refusal::Unbalanced)
    );
    assert_eq!(p.m.check("setenv t9 a #b"), Err(Refusal::Comment(12)));
    assert!(p.m.check("setenv t8 'a #b' x#y").is_ok());
    assert!(
        p.m.check("setenv t 'x\\'").is_ok(),
        "`\\'` ends the quote in U-Boot's hush"
    );
}

#[test]
fn hush_continuation_prompt_is_cancelled() {
    // An `if` without `fi`: hush asks for more with `> `.
    let mut p = mainline();
    let err = p.exec("if true; then echo x").unwrap_err();
    assert!(matches!(err, ShellError::Incomplete { .. }), "{err}");
    ready(p.attach());
}

#[test]
fn timeouts_carry_the_last_lines() {
    let mut p = mainline();
    p.exec("echo before the hang").unwrap();
    let err = p.exec("hang").unwrap_err();
    let ShellError::Timeout { tail, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        tail.0.iter().any(|l| l.contains("before the hang")),
        "{err}"
    );
}

#[test]
fn a_board_that_never_prompts_times_out_showing_what_it_saw() {
    // Powered off: it never answers.
    let mut p = Pair::new(Dialect::mainline(), FakeUBoot::mainline());
    p.m.attach(p.now, Duration::from_secs(5)).unwrap();
    // Line noise and a wrong baud rate's garbage: no crash, a clear error.
    let mut x: u32 = 7;
    let noise: Vec<u8> = (0..5000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    p.m.receive(p.now, &noise);
    p.m.receive(p.now, b"\r\nstill booting Linux...\r\n");
    let Outcome::Failed(err) = p.until_outcome() else {
        panic!()
    };
    assert!(matches!(err, ShellError::NoPrompt { .. }), "{err}");
    assert!(err.to_string().contains("still booting Linux..."), "{err}");
    p.assert_no_bare_newline();
}

#[test]
fn ralink_menu_wants_4_and_has_no_echo() {
    // A stock Ralink/MediaTek 1.1.3 build with the boot menu (not GL's,
    // which is keyed): the MT76xx dialect with the menu's key.
    let mut d = board_dialect("gl-mt300n-v2");
    assert_eq!(d.markers, MarkerMode::UnknownCommand);
    assert!(!d.quotes_special);
    d.interrupt = lmx_console::InterruptKey::Menu(b"4".to_vec());
    d.autoboot = vec!["Please choose the operation:".into()];
    let mut f = FakeUBoot::ralink();
    f.power_on();
    let mut p = Pair::new(d, f);
    ready(p.attach());
    assert_eq!(p.sent[0], b'4');
    assert!(p.f.executed[0].starts_with("lmx"), "{:?}", p.f.executed);
    // Marker-only mode: output and failures, no status.
    let line = lmx_console::quote::setenv_line(p.m.dialect(), "ipaddr", "192.168.1.1").unwrap();
    assert!(p.exec(&line).unwrap().success());
    let out = p.exec("printenv ipaddr").unwrap();
    assert_eq!(
        (out.text.as_str(), out.status),
        ("ipaddr=192.168.1.1", None)
    );
    let bad = p.exec("tftpboot 0x80a00000 nothing").unwrap();
    assert!(!bad.success(), "{bad:?}");
    // Values the simple parser would change are refused.
    assert!(lmx_console::quote::setenv_line(p.m.dialect(), "x", "a;b").is_err());
}

#[test]
fn ath79_prompt_and_unknown_command_markers() {
    // A generic Atheros vendor build (any key, no echo), not GL's: the
    // ath79 prompt with the safe defaults of unknown facts.
    let mut d = board_dialect("gl-ar750");
    d.interrupt = lmx_console::InterruptKey::AnyKey(b" ".to_vec());
    d.markers = MarkerMode::UnknownCommand;
    d.quotes_special = false;
    d.braces_required = true;
    let mut f = FakeUBoot::ath79();
    f.power_on();
    let mut p = Pair::new(d, f);
    ready(p.attach());
    let out = p.exec("setenv serverip 192.168.8.111").unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(p.f.env["serverip"], "192.168.8.111");
}

#[test]
fn gl_ar750_is_stopped_by_typing_gl_and_nothing_before_it() {
    // Any other key shortens GL's countdown (src/common/main.c), so the
    // first bytes lmx sends must be `g`, `l`.
    let d = board_dialect("gl-ar750");
    assert_eq!(d.markers, MarkerMode::EchoStatus);
    let mut f = FakeUBoot::gl_ar750();
    f.power_on();
    let mut p = Pair::new(d, f);
    ready(p.attach());
    assert_eq!(
        &p.sent[..2],
        b"gl",
        "{:?}",
        String::from_utf8_lossy(&p.sent)
    );
    let out = p.exec("setenv serverip 192.168.1.2").unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(out.status, Some(0));
    assert_eq!(p.f.env["serverip"], "192.168.1.2");
    p.assert_no_bare_newline();
}

#[test]
fn gl_mt76xx_is_stopped_by_typing_gl_and_has_no_echo() {
    let d = board_dialect("gl-mt300n-v2");
    assert_eq!(d.markers, MarkerMode::UnknownCommand);
    let mut f = FakeUBoot::gl_mt76xx();
    f.power_on();
    let mut p = Pair::new(d, f);
    ready(p.attach());
    assert_eq!(
        &p.sent[..2],
        b"gl",
        "{:?}",
        String::from_utf8_lossy(&p.sent)
    );
    let line = lmx_console::quote::setenv_line(p.m.dialect(), "ipaddr", "192.168.1.1").unwrap();
    assert!(p.exec(&line).unwrap().success());
    assert_eq!(p.f.env["ipaddr"], "192.168.1.1");
    p.assert_no_bare_newline();
}

#[test]
fn keyed_autoboot_string() {
    let mut d = Dialect::mainline();
    d.interrupt = lmx_console::InterruptKey::String(b"gl".to_vec());
    let mut f = FakeUBoot::mainline();
    f.boot = Boot::Keyed("gl".into());
    f.power_on();
    let mut p = Pair::new(d, f);
    ready(p.attach());
    assert_eq!(&p.sent[..2], b"gl");
}

#[test]
fn bootdelay_zero_boards_get_the_key_hammered_from_the_banner_on() {
    let mut d = Dialect::mainline();
    d.hammer = true;
    let mut m = ShellMachine::new(d, Pacing::default());
    let t0 = Instant::now();
    m.attach(t0, Duration::from_secs(20)).unwrap();
    m.receive(t0, b"\r\nU-Boot 2014.07 (vendor)\r\n\r\nDRAM:  128 MiB\r\n");
    let mut keys = 0;
    let mut now = t0;
    while now < t0 + Duration::from_millis(500) {
        while let Some(tx) = m.poll_transmit(now) {
            assert_eq!(tx, b" ", "only the interrupt key while booting");
            keys += 1;
        }
        now = m.poll_deadline().unwrap();
        m.handle_timeout(now);
    }
    assert!((9..=11).contains(&keys), "{keys} keys in 500 ms");
    // From a board file: bootdelay = 0 turns it on.
    let board = Catalog::builtin().resolve("qemu-aarch64").unwrap().board;
    assert!(!Dialect::from_board(&board).unwrap().hammer);
    // So does an unknown delay with an any-key interrupt on a real board
    // (belkin-rt3200), not on a virtual one whose U-Boot has no autoboot
    // (qemu-mips), nor with a menu or a key string (tp-archer-ax23).
    assert!(board_dialect("belkin-rt3200").hammer);
    assert!(!board_dialect("qemu-mips").hammer);
    assert!(!board_dialect("tp-archer-ax23").hammer);
    assert!(!board_dialect("gl-ar750").hammer);
}

#[test]
fn recorded_session_prompts_only_at_line_start() {
    let d = Dialect::mainline();
    let raw = String::from_utf8_lossy(&fixture("qemu-aarch64-session.raw")).into_owned();
    let mut prompts = 0;
    for line in raw.split("\r\n") {
        if d.is_prompt(line) {
            prompts += 1;
        }
        if line.contains("==>") {
            assert!(!d.is_prompt(line));
            assert!(!d.is_prompt(&line[..line.find("==>").unwrap() + 4]));
        }
    }
    // The one bare prompt of the recording: the last line.
    assert_eq!(prompts, 1);
    assert!(d.is_prompt("=> "));
    assert!(!d.is_prompt("=> echo"));
    assert!(!d.is_prompt("crc32 for 40000000 ... 40000fff ==> "));
}

#[test]
fn a_board_just_powered_on_is_not_poked_before_it_speaks() {
    let t0 = Instant::now();
    // Drives a machine through `secs` of silence; returns what it sent.
    let silence = |m: &mut ShellMachine, secs: u64| {
        let mut sent = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(secs) {
            while let Some(tx) = m.poll_transmit(now) {
                sent.extend(tx);
            }
            let d = m.poll_deadline().expect("attaching has a deadline");
            assert!(d > now, "the deadline must move on (no busy loop)");
            now = d.min(t0 + Duration::from_secs(secs));
            m.handle_timeout(now);
        }
        while let Some(tx) = m.poll_transmit(now) {
            sent.extend(tx);
        }
        (sent, now)
    };
    // The plain attach pokes a silent board with Ctrl-C.
    let mut m = ShellMachine::new(Dialect::mainline(), Pacing::default());
    m.attach(t0, Duration::from_secs(20)).unwrap();
    assert!(silence(&mut m, 5).0.contains(&0x03));
    // Right after power-on: nothing at all until the first byte ...
    let mut m = ShellMachine::new(Dialect::mainline(), Pacing::default());
    m.attach_at_power_on(t0, Duration::from_secs(20)).unwrap();
    let (sent, now) = silence(&mut m, 5);
    assert!(sent.is_empty(), "sent {sent:?}");
    // ... then the countdown is answered with the key, as by `attach`.
    m.receive(
        now,
        b"\r\nU-Boot 2023.01 (Jun 22 2026 - 08:38:07 +0000)\r\n\r\nHit any key to stop autoboot:  2 ",
    );
    let mut sent = Vec::new();
    while let Some(tx) = m.poll_transmit(now) {
        sent.extend(tx);
    }
    assert_eq!(sent, b" ");
}

#[test]
fn traps_are_refused_before_anything_is_sent() {
    // GL's MT76xx builds: `run` and `cp` write flash, `erase all` wipes
    // the chip (gl-mt300n-v2.toml, uboot.traps).
    let d = board_dialect("gl-mt300n-v2");
    let mut f = FakeUBoot::gl_mt76xx();
    f.power_on();
    let mut p = Pair::new(d, f);
    ready(p.attach());
    let before = p.sent.len();
    for cmd in [
        "run lmxboot",
        "setenv ipaddr 192.168.1.1; run lu",
        "cp.b 0x80a00000 0x80b00000 0x100",
        "erase all",
        "ru lf",
    ] {
        let err =
            p.m.command(
                p.now,
                cmd,
                Duration::from_secs(1),
                CommandOptions::default(),
            )
            .unwrap_err();
        match &err {
            ShellError::Refused {
                reason: Refusal::Trap { reason, .. },
                ..
            } => assert!(reason.contains("gl-inet/uboot-source-for_mtk"), "{reason}"),
            other => panic!("{cmd:?}: {other}"),
        }
        assert!(err.to_string().contains("never typed"), "{err}");
    }
    assert_eq!(p.sent.len(), before, "nothing was sent");
    assert!(p.f.executed.iter().all(|l| !l.starts_with("run")));
    // What writes on the console without the machine asks the dialect.
    assert!(p.m.dialect().trap("run lmxboot").is_some());
    // GL's documented erase by address is not a trap.
    assert!(p.m.check("erase 0xbc050000 +0x10000").is_ok());
    // Double quotes are text on the simple parser: the `;` still splits.
    assert!(matches!(
        p.m.check("setenv x \"a; run lf\""),
        Err(Refusal::Trap { .. })
    ));

    // GL's AR750 (hush): its own `run` is fine, its update scripts are not,
    // and a quoted value that mentions them is only a value.
    let ar = ShellMachine::new(board_dialect("gl-ar750"), Pacing::default());
    assert!(ar.check("run lmxboot").is_ok());
    assert!(ar.check("setenv x 'run lu'").is_ok());
    for cmd in ["run lu", "echo a; run lf", "true && run lc"] {
        assert!(matches!(ar.check(cmd), Err(Refusal::Trap { .. })), "{cmd}");
    }
    // A board without traps refuses nothing for it.
    assert!(ShellMachine::new(Dialect::mainline(), Pacing::default())
        .check("cp.b 1 2 3; run lu")
        .is_ok());
}

#[test]
fn one_line_limit_shared_with_the_planners() {
    for (_, r) in Catalog::builtin().resolve_all() {
        let b = r.unwrap().board;
        let d = Dialect::from_board(&b).unwrap();
        let limit = LineLimit::of(&b.uboot);
        let name = &b.name;
        assert_eq!(d.line_limit(), limit, "{name}");
        let max = d.max_command_len();
        assert_eq!(max, limit.body_max(), "{name}");
        let fits = format!("setenv x {}", "y".repeat(max - "setenv x ".len()));
        assert_eq!(fits.len(), max);
        let marker = d.markers.suffix("000000");
        let typed = d.wrap_line(&format!("{fits}; {marker}"));
        match &d.wrapper {
            // With the marker the typed line is CBSIZE - 2, what every
            // readline keeps.
            None => assert_eq!(typed.len(), d.cbsize - 2, "{name}"),
            // Through a wrapper both the typed line and the line the
            // wrapper builds fit, and one of them exactly.
            Some(w) => {
                let runs = w.runs(&format!("{fits}; {marker}"));
                assert!(typed.len() <= d.cbsize - 2, "{name}: {typed}");
                assert!(runs.len() < w.buffer, "{name}: {runs}");
                assert!(
                    typed.len() == d.cbsize - 2 || runs.len() == w.buffer - 1,
                    "{name}"
                );
            }
        }
        let wrapped = d.wrapper.is_some();
        let m = ShellMachine::new(d, Pacing::default());
        assert!(m.check(&fits).is_ok(), "{name}");
        match m.check(&format!("{fits}y")) {
            Err(Refusal::TooLong { max: said, .. }) if !wrapped => assert_eq!(said, max, "{name}"),
            Err(Refusal::TooLongWrapped { max: said, .. }) if wrapped => {
                assert_eq!(said, max, "{name}")
            }
            other => panic!("{name}: one byte more must be refused, got {other:?}"),
        }
    }
    // qemu-mips: CBSIZE 256, hush with $?: 254 - 23.
    assert_eq!(board_dialect("qemu-mips").max_command_len(), 231);
    // gl-mt300n-v2: CBSIZE 256, marker-only: 254 - 11.
    assert_eq!(board_dialect("gl-mt300n-v2").max_command_len(), 243);

    // The longest command, typed on the fake: the buffer holds CBSIZE - 2.
    let mut p = mainline();
    let max = p.m.dialect().max_command_len();
    let cmd = format!("echo {}", "z".repeat(max - 5));
    assert!(p.exec(&cmd).unwrap().success());
    assert_eq!(p.f.executed.last().unwrap().len(), 512 - 2);
}

#[test]
fn too_many_words_are_refused_and_a_cut_setenv_is_seen() {
    // CFG_MAXARGS 16 (gl-mt300n-v2.toml): `setenv x` and 14 words at most.
    let d = board_dialect("gl-mt300n-v2");
    assert_eq!(d.maxargs, 16);
    let m = ShellMachine::new(d.clone(), Pacing::default());
    let words: Vec<String> = (0..15).map(|i| format!("w{i}")).collect();
    assert!(matches!(
        m.check(&format!("setenv x {}", words.join(" "))),
        Err(Refusal::TooManyArgs {
            words: 17,
            maxargs: 16,
            ..
        })
    ));
    assert!(m
        .check(&format!("setenv x {}", words[..14].join(" ")))
        .is_ok());
    // The simple parser splits quoted text too, so quotes do not help.
    assert!(matches!(
        m.check(&format!("setenv x '{}'", words.join(" "))),
        Err(Refusal::TooManyArgs { .. })
    ));

    // A build that takes fewer words than its board file says: the simple
    // parser prints `** Too many args` and stores a cut value, so the
    // command fails and reading it back shows what was kept.
    let mut f = FakeUBoot::gl_mt76xx();
    f.maxargs = Some(4);
    f.power_on();
    let mut p = Pair::new(d, f);
    ready(p.attach());
    let out = p.exec("setenv x a b c d").unwrap();
    assert!(!out.success());
    assert!(
        out.failure.as_deref().unwrap().contains("Too many args"),
        "{out:?}"
    );
    assert_eq!(p.f.env["x"], "a b");
    let out = p.exec("printenv x").unwrap();
    assert_eq!(
        judge_readback("x", "a b c d", &out.text, out.status),
        ReadBack::Different("a b".into())
    );
    assert_eq!(
        judge_readback("x", "a b", &out.text, out.status),
        ReadBack::Same
    );
    let out = p.exec("printenv nothing").unwrap();
    assert_eq!(
        judge_readback("nothing", "a", &out.text, out.status),
        ReadBack::Missing
    );

    // Hush prints `Usage:` and runs nothing.
    let mut f = FakeUBoot::mainline();
    f.maxargs = Some(4);
    f.power_on();
    let mut p = Pair::new(Dialect::mainline(), f);
    ready(p.attach());
    let out = p.exec("setenv x a b c").unwrap();
    assert!(!out.success());
    assert_eq!(out.failure.as_deref(), Some("Usage:"));
    assert!(!p.f.env.contains_key("x"));
}

#[test]
fn an_arp_retry_is_not_a_failure_but_a_tftp_retry_is() {
    let d = Dialect::mainline();
    assert_eq!(
        d.failure_in("ARP Retry count exceeded; starting again"),
        None
    );
    assert_eq!(
        d.failure_in("Retry count exceeded; starting again"),
        Some("Retry count exceeded")
    );
    let mut p = mainline();
    let out = p.exec("tftp-arp-retry").unwrap();
    assert!(out.success(), "{out:?}");
    assert!(out.text.contains("Bytes transferred = 4096"));
    let out = p.exec("tftp-retry").unwrap();
    assert!(!out.success());
    assert_eq!(
        out.failure.as_deref(),
        Some("Retry count exceeded; starting again")
    );
}

#[tokio::test]
async fn setenv_checked_reads_back_where_there_is_no_status() {
    let d = board_dialect("gl-mt300n-v2");
    assert!(d.needs_readback());
    assert!(!Dialect::mainline().needs_readback());
    let mut f = FakeUBoot::gl_mt76xx();
    f.maxargs = Some(4);
    f.at_prompt_unseen();
    let mut sh = UBootShell::new(f.piped(), d);
    sh.setenv_checked("ipaddr", "192.168.1.1").await.unwrap();
    sh.verify_env("ipaddr", "192.168.1.1").await.unwrap();
    // A value the build cut short: the setenv fails on its own text, and
    // the read-back names what the board holds.
    assert!(sh.run("setenv y a b c d", T).await.is_err());
    let e = sh.verify_env("y", "a b c d").await.unwrap_err();
    match &e {
        ShellError::EnvMismatch { name, got, .. } => {
            assert_eq!(name, "y");
            assert_eq!(got.as_deref(), Some("a b"));
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("\"a b\""), "{e}");
    let e = sh.verify_env("z", "1").await.unwrap_err();
    assert!(
        matches!(e, ShellError::EnvMismatch { got: None, .. }),
        "{e}"
    );
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn a_printenv_answer_cut_by_the_print_buffer_is_read_whole_from_the_listing() {
    // Mainline prints one variable through printf and its PBSIZE buffer
    // (found on the mt7622-like twin: 1044 bytes of bootargs came back as
    // 1039); the listing is printed with puts, whole.
    for (name, dialect, mut f) in [
        ("mainline", Dialect::mainline(), FakeUBoot::mainline()),
        (
            "no $?",
            board_dialect("gl-mt300n-v2"),
            FakeUBoot::gl_mt76xx(),
        ),
    ] {
        f.pbsize = Some(64);
        f.at_prompt_unseen();
        let long: String = (0..30).map(|i| format!("w{i} ")).collect::<String>() + "end";
        f.env.insert("bootargs".into(), long.clone());
        f.env.insert("short".into(), "ok".into());
        let mut sh = UBootShell::new(f.piped(), dialect);
        assert_eq!(
            sh.printenv("bootargs").await.unwrap().as_deref(),
            Some(long.as_str()),
            "{name}"
        );
        sh.verify_env("bootargs", &long).await.unwrap();
        assert_eq!(sh.printenv("short").await.unwrap().as_deref(), Some("ok"));
        // A cut answer the listing does not confirm is an error, not a
        // wrong value.
        let e = sh.verify_env("bootargs", "other").await.unwrap_err();
        assert!(matches!(e, ShellError::EnvMismatch { .. }), "{name}: {e}");
    }
    assert_eq!(
        lmx_console::printenv::unescape_listing("a\\\\b\\\nc\\"),
        "a\\b\nc\\"
    );
}

#[test]
fn an_echo_that_comes_late_widens_the_slack_instead_of_failing_the_line() {
    // A board (or an emulator on a loaded host) that echoes 300 ms late,
    // three times the default slack: the first tries time out, the slack
    // doubles each time, and the line goes through unchanged (seen on the
    // test bed: a 420-byte setenv to the malta twin never got through 8
    // attempts while the host was saturated).
    let mut p = mainline();
    p.latency = Duration::from_millis(300);
    let value = "k".repeat(100);
    let line = lmx_console::quote::setenv_line(p.m.dialect(), "slow", &value).unwrap();
    let out = p.exec(&line).unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(
        p.f.env.get("slow").map(String::as_str),
        Some(value.as_str())
    );
    // Only the intended line ran: no partial or repeated command.
    assert_eq!(
        p.f.executed.iter().filter(|l| l.contains("slow")).count(),
        1,
        "{:?}",
        p.f.executed
    );
    p.assert_no_bare_newline();
}
