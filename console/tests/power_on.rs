//! Power-on of the eight real boards, replayed: each board's written
//! transcript (`tests/fixtures/vendor-*.txt`) printed by the fake U-Boot
//! with that board's autoboot loop modelled on its vendor source, and
//! lmx attaching with the board's own `Dialect::from_board`, in virtual
//! time. Each test checks the exact bytes lmx sends from power-on to the
//! prompt (the interrupt and nothing before it), that the prompt is
//! recognised, and one command run there. Where a board file leaves a
//! fact open (a delay, the stock loader's behaviour), the plausible
//! values are all tried.

mod support;

use std::time::{Duration, Instant};

use lmx_boards::Catalog;
use lmx_console::{
    CommandOptions, CommandOutput, Dialect, MarkerMode, Outcome, Pacing, Refusal, ShellError,
    ShellMachine, UBootShell,
};
use support::fake::{maybe_section, section, Boot, Countdown, FakeUBoot};

const CTRL_C: u8 = 0x03;

fn board_dialect(name: &str) -> Dialect {
    let board = Catalog::builtin().resolve(name).unwrap().board;
    Dialect::from_board(&board).unwrap()
}

/// A fake U-Boot printing `fixture`, stopped as `countdown` says.
fn vendor(fixture: &str, countdown: Countdown, d: &Dialect) -> FakeUBoot {
    let crlf = |mut v: Vec<u8>| {
        v.extend_from_slice(b"\r\n");
        v
    };
    let mut f = FakeUBoot::mainline();
    f.prompt = String::from_utf8(section(fixture, "prompt")).unwrap();
    f.hush = d.quotes_special;
    f.has_echo = d.markers != MarkerMode::UnknownCommand;
    f.boot = Boot::Timed(countdown);
    f.boot_log = section(fixture, "boot");
    f.after_interrupt = section(fixture, "after-choice");
    f.boot_through = crlf(section(fixture, "boot-through"));
    if let Some(p) = maybe_section(fixture, "printenv") {
        f.canned.insert("printenv".into(), crlf(p));
    }
    if let Some(u) = maybe_section(fixture, "usage") {
        f.canned.insert("crc32".into(), crlf(u));
    }
    // A board typed through a wrapper has a restricted prompt.
    f.restricted = d.wrapper.is_some();
    f
}

/// Splits the boot log before the line holding `needle`: that line comes
/// `gap` after the rest (U-Boot's init between banner and autoboot).
fn gap_before(f: &mut FakeUBoot, needle: &str, gap: Duration) {
    let log = String::from_utf8(f.boot_log.clone()).unwrap();
    let at = log.find(needle).unwrap_or_else(|| panic!("{needle:?}"));
    let at = log[..at].rfind('\n').map_or(0, |i| i + 1);
    f.script = vec![
        (Duration::ZERO, log.as_bytes()[..at].to_vec()),
        (gap, log.as_bytes()[at..].to_vec()),
    ];
}

/// The machine and the fake, in virtual time.
struct Rig {
    m: ShellMachine,
    f: FakeUBoot,
    now: Instant,
    /// Every byte lmx sent, in order.
    sent: Vec<u8>,
    /// Index into `sent` at power-on.
    powered_at: usize,
}

impl Rig {
    fn new(d: Dialect, f: FakeUBoot) -> Rig {
        Rig {
            m: ShellMachine::new(d, Pacing::default()),
            f,
            now: Instant::now(),
            sent: Vec::new(),
            powered_at: 0,
        }
    }

    /// Runs until an outcome, or until `until` passes (then `None`).
    fn run(&mut self, until: Option<Instant>) -> Option<Outcome> {
        let end = self.now + Duration::from_secs(600);
        loop {
            let mut progressed = false;
            self.f.advance(self.now);
            let out = self.f.take_output();
            if !out.is_empty() {
                self.m.receive(self.now, &out);
                progressed = true;
            }
            while let Some(tx) = self.m.poll_transmit(self.now) {
                self.sent.extend_from_slice(&tx);
                self.f.input(&tx);
                progressed = true;
            }
            if let Some(o) = self.m.poll_outcome() {
                while let Some(tx) = self.m.poll_transmit(self.now) {
                    self.sent.extend_from_slice(&tx);
                    self.f.input(&tx);
                }
                return Some(o);
            }
            if until.is_some_and(|u| self.now >= u) {
                return None;
            }
            if !progressed {
                let mut next = self.m.poll_deadline();
                if let Some(e) = self.f.next_event() {
                    next = Some(next.map_or(e, |d| d.min(e)));
                }
                if let Some(u) = until {
                    next = Some(next.map_or(u, |d| d.min(u)));
                }
                let next = next.expect("something is due");
                assert!(next <= end, "virtual time ran away");
                self.now = self.now.max(next);
                self.m.handle_timeout(self.now);
            }
            self.now += Duration::from_micros(200);
        }
    }

    /// lmx attaches while the board is off, waits `off`, then the board
    /// is powered on; the attach's outcome.
    fn power_on_after(&mut self, off: Duration) -> Outcome {
        self.m.attach(self.now, Duration::from_secs(30)).unwrap();
        let on = self.now + off;
        assert!(
            self.run(Some(on)).is_none(),
            "attached to a board that is off"
        );
        self.powered_at = self.sent.len();
        self.f.power_on();
        self.run(None).expect("an outcome")
    }

    /// What lmx sent from power-on until it first cleared the line with
    /// Ctrl-C to sync at the prompt: the interrupt, and nothing else.
    fn interrupt_sent(&self) -> &[u8] {
        let after = &self.sent[self.powered_at..];
        let end = after
            .iter()
            .position(|&b| b == CTRL_C)
            .unwrap_or(after.len());
        &after[..end]
    }

    fn exec(&mut self, cmd: &str) -> Result<CommandOutput, ShellError> {
        self.m.command(
            self.now,
            cmd,
            Duration::from_secs(10),
            CommandOptions::default(),
        )?;
        match self.run(None).expect("an outcome") {
            Outcome::Output(o) => Ok(o),
            Outcome::Failed(e) => Err(e),
            Outcome::Ready => panic!("a command ended in Ready"),
        }
    }
}

fn ready(o: Outcome, rig: &Rig) {
    match o {
        Outcome::Ready => {}
        other => panic!(
            "expected the prompt, got {other:?}; lmx sent {:?}; the board {}",
            String::from_utf8_lossy(&rig.sent),
            if rig.f.booted {
                "booted through"
            } else {
                "did not boot"
            }
        ),
    }
    assert!(!rig.f.booted);
    assert!(rig.f.at_prompt());
}

/// Attaches before power-on, with the board off for 2.5 s (lmx pokes a
/// silent line; a board that is off loses it).
fn boot(d: Dialect, f: FakeUBoot) -> Rig {
    let mut rig = Rig::new(d, f);
    let o = rig.power_on_after(Duration::from_millis(2500));
    ready(o, &rig);
    rig
}

#[test]
fn gl_ar750_types_gl_and_nothing_before_it() {
    let d = board_dialect("gl-ar750");
    assert!(!d.hammer, "a stray key costs GL's countdown a second");
    let mut f = vendor("vendor-gl-ar750.txt", Countdown::GlAr750 { delay: 2 }, &d);
    gap_before(&mut f, "Hit 'gl'", Duration::from_millis(800));
    let mut rig = boot(d, f);
    assert_eq!(rig.interrupt_sent(), b"gl");
    assert_eq!(rig.f.consumed, b"gl");
    // One command: the listing of the shipped binary's environment.
    let out = rig.exec("printenv").unwrap();
    let want = String::from_utf8(section("vendor-gl-ar750.txt", "printenv")).unwrap();
    assert_eq!(out.text, want.replace("\r\n", "\n"));
    assert_eq!(out.status, Some(0));
    let listing = lmx_console::printenv::parse_listing(&out.text);
    assert!(listing
        .vars
        .iter()
        .any(|(k, v)| k == "bootdelay" && v == "2"));
    let u = rig.exec("nosuchcmd").unwrap();
    assert_eq!(
        u.failure.as_deref(),
        Some("Unknown command 'nosuchcmd' - try 'help'")
    );
    let u = rig.exec("crc32").unwrap();
    assert_eq!(u.failure.as_deref(), Some("Usage:"));
}

#[test]
fn gl_ar750_model_two_stray_keys_boot_it() {
    // The model of GL's loop: each key ends a second, so two keys before
    // `gl` use up a delay of 2 and the board boots. lmx must send none.
    let d = board_dialect("gl-ar750");
    let mut f = vendor("vendor-gl-ar750.txt", Countdown::GlAr750 { delay: 2 }, &d);
    gap_before(&mut f, "Hit 'gl'", Duration::from_millis(500));
    let t = Instant::now();
    f.advance(t);
    f.power_on();
    f.input(b"xx");
    f.advance(t + Duration::from_millis(500));
    f.input(b"gl");
    f.advance(t + Duration::from_secs(5));
    assert!(f.booted);
    assert_eq!(f.consumed, b"xxg");
    // `g`, a wrong key, then `l` still stops it: the flag is never reset.
    let mut f = vendor("vendor-gl-ar750.txt", Countdown::GlAr750 { delay: 2 }, &d);
    let t = Instant::now();
    f.advance(t);
    f.power_on();
    f.input(b"gxl");
    assert!(f.at_prompt());
}

#[test]
fn gl_ar750_a_pause_in_an_unrecognised_boot_log_is_not_poked() {
    // A boot log without the banner lmx knows, with a 2 s pause before the
    // countdown: a Ctrl-C poke there would cost GL's loop a second each.
    let d = board_dialect("gl-ar750");
    let mut f = vendor("vendor-gl-ar750.txt", Countdown::GlAr750 { delay: 1 }, &d);
    let log = String::from_utf8(f.boot_log.clone()).unwrap();
    let log = log.replace("U-Boot 1.1.4-ga35cd45d-dirty (Jul  5 2018 - 13:13:30)", "");
    f.boot_log = log.into_bytes();
    gap_before(&mut f, "Hit 'gl'", Duration::from_millis(2500));
    let rig = boot(d, f);
    assert_eq!(rig.interrupt_sent(), b"gl");
    assert_eq!(rig.f.consumed, b"gl");
}

fn gl_mt76xx(board: &str, fixture: &str, prompt: &str) {
    let d = board_dialect(board);
    assert!(!d.hammer);
    let mut f = vendor(
        fixture,
        Countdown::Keyed {
            stop: "gl".into(),
            delay: 2,
        },
        &d,
    );
    gap_before(&mut f, "Autobooting in:", Duration::from_millis(600));
    let mut rig = boot(d, f);
    assert_eq!(rig.interrupt_sent(), b"gl");
    assert_eq!(rig.f.consumed, b"gl");
    assert_eq!(rig.f.prompt, prompt);
    // Marker-only mode on the simple parser: output, no status.
    let out = rig.exec("printenv").unwrap();
    assert!(out.text.contains("bootdelay=2"), "{out:?}");
    assert!(
        out.text.ends_with("Environment size: 122/4092 bytes"),
        "{out:?}"
    );
    assert_eq!(out.status, None);
    let u = rig.exec("nosuchcmd").unwrap();
    assert!(!u.success());
}

#[test]
fn gl_mt300n_v2_types_gl() {
    gl_mt76xx("gl-mt300n-v2", "vendor-gl-mt76xx.txt", "MT7628 # ");
}

#[test]
fn gl_mt300a_types_gl() {
    gl_mt76xx("gl-mt300a", "vendor-gl-mt300a.txt", "MT7620 # ");
}

#[test]
fn gl_mt76xx_model_wrong_keys_do_no_harm() {
    let d = board_dialect("gl-mt300n-v2");
    let mut f = vendor(
        "vendor-gl-mt76xx.txt",
        Countdown::Keyed {
            stop: "gl".into(),
            delay: 2,
        },
        &d,
    );
    f.advance(Instant::now());
    f.power_on();
    f.input(b"x\x03ggl");
    assert!(f.at_prompt());
}

fn tp_link(delay: u32, strict: bool, pause: Option<Duration>) -> Rig {
    let d = board_dialect("tp-archer-ax23");
    assert!(!d.hammer, "a wrong first key boots TP-Link's loader");
    let mut f = vendor(
        "vendor-tp-archer-ax23.txt",
        Countdown::TpLink { delay, strict },
        &d,
    );
    if let Some(p) = pause {
        // The log as posted: no banner line lmx recognises, and a pause.
        let log = String::from_utf8(f.boot_log.clone()).unwrap();
        let log = log.replacen("U-Boot 1.1.3 (Feb 16 2022 - 16:26:34)\r\n", "", 1);
        f.boot_log = log.into_bytes();
        gap_before(&mut f, "Config XHCI", p);
    } else {
        gap_before(&mut f, "Press '4'", Duration::from_millis(300));
    }
    boot(d, f)
}

#[test]
fn tp_archer_ax23_sends_t_first_whatever_its_delay() {
    // CONFIG_BOOTDELAY of this build is unknown; TP-Link's loop is read
    // as its source runs it and as the audit read it (first key decides).
    for delay in [1, 3] {
        for strict in [false, true] {
            let mut rig = tp_link(delay, strict, None);
            assert_eq!(rig.interrupt_sent(), b"t", "delay {delay} strict {strict}");
            assert_eq!(rig.f.consumed, b"t");
            let u = rig.exec("nosuchcmd").unwrap();
            assert_eq!(
                u.failure.as_deref(),
                Some("Unknown command 'nosuchcmd' - try 'help'")
            );
        }
    }
}

#[test]
fn tp_archer_ax23_a_pause_without_a_known_banner_gets_no_poke() {
    // The posted log starts at `Board:`; a 2 s pause in it must not draw a
    // Ctrl-C, which the strict reading of the loop takes as "boot".
    for strict in [false, true] {
        let rig = tp_link(2, strict, Some(Duration::from_millis(2000)));
        assert_eq!(rig.interrupt_sent(), b"t", "strict {strict}");
        assert_eq!(rig.f.consumed, b"t");
    }
}

#[test]
fn tp_archer_ax23_model_a_wrong_first_key() {
    let d = board_dialect("tp-archer-ax23");
    for (strict, keys, boots) in [
        // The source: the last key of the second decides, `t` at once.
        (false, &b"\x03t"[..], false),
        (false, &b"x"[..], true),
        (false, &b"4"[..], false),
        // The audit's reading: the first key decides.
        (true, &b"\x03t"[..], true),
        (true, &b"t"[..], false),
    ] {
        let mut f = vendor(
            "vendor-tp-archer-ax23.txt",
            Countdown::TpLink { delay: 2, strict },
            &d,
        );
        let t = Instant::now();
        f.advance(t);
        f.power_on();
        f.input(keys);
        f.advance(t + Duration::from_secs(5));
        assert_eq!(f.booted, boots, "strict {strict} keys {keys:?}");
    }
}

fn any_key(board: &str, fixture: &str, delay: u32) -> Rig {
    let d = board_dialect(board);
    let mut f = vendor(fixture, Countdown::AnyKey { delay }, &d);
    gap_before(&mut f, "Hit any key", Duration::from_millis(500));
    boot(d, f)
}

#[test]
fn zyxel_nwa50ax_stops_with_a_space_and_types_through_atns() {
    // CONFIG_BOOTDELAY=1: a second to answer the text.
    let mut rig = any_key("zyxel-nwa50ax", "vendor-zyxel-nwa50ax.txt", 1);
    assert!(!rig.m.dialect().hammer);
    assert_eq!(rig.interrupt_sent(), b" ");
    assert!(rig.f.restricted);
    // The defaults of the NAND configuration (include/configs/mt7621_nand.h
    // l.39-40).
    rig.f.env.insert("ipaddr".into(), "192.168.1.2".into());
    rig.f.env.insert("serverip".into(), "192.168.1.103".into());
    // The prompt refuses `printenv` as typed (the fixture's reply) ...
    rig.f.input(b"printenv\r");
    let typed = String::from_utf8(rig.f.take_output()).unwrap();
    let unknown = String::from_utf8(section("vendor-zyxel-nwa50ax.txt", "unknown")).unwrap();
    assert!(typed.contains(&unknown), "{typed}");
    // ... and runs it through the wrapper, marker included.
    let sync = ready_again(&mut rig);
    assert!(
        sync.starts_with("setenv serverip ${serverip}; lmx"),
        "{sync}"
    );
    let out = rig.exec("printenv ipaddr").unwrap();
    assert_eq!(out.text, "ipaddr=192.168.1.2");
    assert!(out.success(), "{out:?}");
    let last = rig.f.wrapped.last().unwrap();
    assert!(
        last.starts_with("setenv serverip ${serverip}; printenv ipaddr; lmx"),
        "{last}"
    );
    // The wrapper's own setenv left serverip as it was.
    assert_eq!(rig.f.env["serverip"], "192.168.1.103");
}

/// Clears the line and syncs again; the wrapped sync line the fake ran.
fn ready_again(rig: &mut Rig) -> String {
    rig.m.attach(rig.now, Duration::from_secs(10)).unwrap();
    let o = rig.run(None).unwrap();
    ready(o, rig);
    rig.f.wrapped.last().cloned().unwrap_or_default()
}

#[test]
fn belkin_rt3200_reaches_the_prompt_whatever_its_delay() {
    // Neither the stock nor OpenWrt's delay is in the board file: an
    // unknown delay with an any-key interrupt is hammered from the banner,
    // which a delay of 0 (one check, right after the text) needs.
    for delay in [0, 3] {
        let mut rig = any_key("belkin-rt3200", "vendor-belkin-rt3200.txt", delay);
        assert!(rig.m.dialect().hammer);
        let sent = rig.interrupt_sent().to_vec();
        assert!(
            !sent.is_empty() && sent.iter().all(|&b| b == b' '),
            "{sent:?}"
        );
        assert_eq!(rig.f.consumed, b" ");
        let out = rig.exec("setenv serverip 192.168.1.2").unwrap();
        assert!(out.success(), "{out:?}");
        assert_eq!(rig.f.env["serverip"], "192.168.1.2");
    }
}

#[test]
fn without_hammering_a_delay_of_zero_boots_through() {
    // What lmx did before it hammered an unknown delay: it answered the
    // text, after U-Boot's only check.
    let mut d = board_dialect("belkin-rt3200");
    d.hammer = false;
    let mut f = vendor(
        "vendor-belkin-rt3200.txt",
        Countdown::AnyKey { delay: 0 },
        &d,
    );
    gap_before(&mut f, "Hit any key", Duration::from_millis(500));
    let mut rig = Rig::new(d, f);
    let o = rig.power_on_after(Duration::from_millis(2500));
    assert!(
        matches!(o, Outcome::Failed(ShellError::NoPrompt { .. })),
        "{o:?}"
    );
    assert!(rig.f.booted);
}

#[test]
fn openwrt_one_reaches_the_prompt_whatever_its_delay() {
    for delay in [0, 3] {
        let mut rig = any_key("openwrt-one", "vendor-openwrt-one.txt", delay);
        let sent = rig.interrupt_sent().to_vec();
        assert!(
            !sent.is_empty() && sent.iter().all(|&b| b == b' '),
            "{sent:?}"
        );
        assert_eq!(rig.f.prompt, "OpenWrt One> ");
        let out = rig.exec("printenv nothing").unwrap();
        assert!(out.failure.unwrap().starts_with("## Error"));
    }
}

#[test]
fn turris_omnia_stops_its_three_seconds_with_one_space() {
    let mut rig = any_key("turris-omnia", "vendor-turris-omnia.txt", 3);
    assert!(!rig.m.dialect().hammer);
    assert_eq!(rig.interrupt_sent(), b" ");
    let u = rig.exec("crc32").unwrap();
    assert_eq!(u.failure.as_deref(), Some("Usage:"));
}

// ---- Zyxel's wrapper, against the fake's model of the vendor code ----

/// Zyxel's dialect and a fake at its restricted prompt.
fn zyxel() -> (Dialect, FakeUBoot) {
    let d = board_dialect("zyxel-nwa50ax");
    let mut f = vendor(
        "vendor-zyxel-nwa50ax.txt",
        Countdown::AnyKey { delay: 1 },
        &d,
    );
    f.restricted = true;
    f.env.insert("ipaddr".into(), "192.168.1.2".into());
    f.env.insert("serverip".into(), "192.168.1.103".into());
    f.at_prompt_unseen();
    (d, f)
}

#[test]
fn quoting_survives_the_wrapper_and_the_inner_hush() {
    let (d, f) = zyxel();
    let mut rig = Rig::new(d, f);
    rig.m.attach(rig.now, Duration::from_secs(10)).unwrap();
    let o = rig.run(None).unwrap();
    ready(o, &rig);
    for value in [
        "console=ttyS0,115200 root=/dev/mtdblock0",
        "a b;c$d\\e\"f'g  h $? ${x} #no",
        "it's; reset",
    ] {
        let line = lmx_console::quote::setenv_line(rig.m.dialect(), "t1", value).unwrap();
        let out = rig.exec(&line).unwrap();
        assert!(out.success(), "{value:?}: {out:?}");
        assert_eq!(rig.f.env["t1"], value);
    }
    // `$?` and `${...}` are read by the inner hush when the command runs.
    rig.f.env.insert("filesize".into(), "1000".into());
    let out = rig.exec("setenv t2 ${filesize}").unwrap();
    assert!(out.success());
    assert_eq!(rig.f.env["t2"], "1000");
    assert_eq!(rig.f.env["serverip"], "192.168.1.103");
}

#[test]
fn the_naive_injection_deletes_serverip_lmxs_keeps_it() {
    // Liminix's form, `atns "; CMD"`, runs `setenv serverip ; CMD`.
    let (_, mut f) = zyxel();
    f.input(b"atns \"; printenv ipaddr\"\r");
    assert!(!f.env.contains_key("serverip"));
    let (_, mut f) = zyxel();
    f.input(b"atns '${serverip}; printenv ipaddr'\r");
    let out = String::from_utf8(f.take_output()).unwrap();
    assert!(out.contains("ipaddr=192.168.1.2"), "{out}");
    assert_eq!(f.env["serverip"], "192.168.1.103");
}

#[test]
fn a_line_the_wrappers_buffer_would_cut_is_refused() {
    let (d, mut f) = zyxel();
    let m = ShellMachine::new(d.clone(), Pacing::default());
    let max = m.dialect().max_command_len();
    assert_eq!(max, 255 - 29 - 11);
    let fits = format!("setenv t3 {}", "v".repeat(max - 10));
    assert!(m.check(&fits).is_ok());
    let e = m.check(&format!("{fits}v")).unwrap_err();
    assert!(
        matches!(e, Refusal::TooLongWrapped { max: 215, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("256-byte buffer"), "{e}");
    // Quotes cost 4 bytes once quoted for the wrapper's argument.
    let quoted = format!("setenv t3 '{}'", "v".repeat(max - 12));
    assert!(m.check(&quoted).is_ok());
    let typed = d.wrap_line(&format!("{quoted}; lmx000000"));
    assert!(typed.len() <= 254, "{}", typed.len());
    // What the vendor code does with a line lmx refuses: snprintf cuts
    // it at 255 bytes, the marker never runs and the value is stored cut
    // short (216 of its 225 bytes).
    let long = format!("{fits}{}", "v".repeat(20));
    let typed = d.wrap_line(&format!("{long}; lmx000000"));
    f.input(format!("{typed}\r").as_bytes());
    let ran = f.wrapped.last().unwrap();
    assert_eq!(ran.len(), 255);
    assert!(!ran.contains("lmx"));
    assert_eq!(f.env["t3"].len(), 216);
    // An operator first would join the wrapper's own setenv.
    assert!(matches!(
        m.check("&& reset"),
        Err(Refusal::Unwrappable { .. })
    ));
}

#[test]
fn a_raw_boot_is_typed_through_the_wrapper_too() {
    let (d, mut f) = zyxel();
    let line = d.raw_line("run lmxboot").unwrap();
    assert_eq!(line, "atns '${serverip}; run lmxboot'");
    f.env.insert("lmxboot".into(), "hang".into());
    f.input(format!("{line}\r").as_bytes());
    assert!(!f.at_prompt(), "run lmxboot ran and did not come back");
    // Unwrapped, the restricted prompt answers `Unknown command`.
    let (_, mut f) = zyxel();
    f.input(b"run lmxboot\r");
    let out = String::from_utf8(f.take_output()).unwrap();
    assert!(out.contains("Unknown command 'run'"), "{out}");
    // Traps are refused on the raw path as well.
    assert!(matches!(d.raw_line("atnz"), Err(Refusal::Trap { .. })));
    // A board without a wrapper types the line as it is.
    assert_eq!(
        board_dialect("gl-ar750").raw_line("run lmxboot").unwrap(),
        "run lmxboot"
    );
}

#[tokio::test]
async fn ubootshell_sets_and_reads_back_through_the_wrapper() {
    let (d, f) = zyxel();
    assert!(d.needs_readback());
    let mut sh = UBootShell::new(f.piped(), d);
    sh.setenv_checked("bootargs", "console=ttyS0,115200 root=ubi0:rootfs")
        .await
        .unwrap();
    assert_eq!(
        sh.printenv("bootargs").await.unwrap().as_deref(),
        Some("console=ttyS0,115200 root=ubi0:rootfs")
    );
    assert_eq!(
        sh.printenv("serverip").await.unwrap().as_deref(),
        Some("192.168.1.103")
    );
    let e = sh
        .run("nosuchcmd", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Unknown command 'nosuchcmd'"), "{e}");
}

#[test]
fn an_echo_marker_with_its_quotes_survives_the_wrapper_too() {
    // If a unit's build turns out to have `echo` (CMD_ECHO is on by
    // default in its cmd/Kconfig) and the board file says so, the marker
    // `echo 'lmx''N.'$?` goes through the wrapper quoted, and `$?` is the
    // wrapped command's own status.
    let (mut d, mut f) = zyxel();
    d.markers = MarkerMode::EchoStatus;
    f.has_echo = true;
    let mut rig = Rig::new(d, f);
    rig.m.attach(rig.now, Duration::from_secs(10)).unwrap();
    let o = rig.run(None).unwrap();
    ready(o, &rig);
    let out = rig.exec("printenv ipaddr").unwrap();
    assert_eq!(
        (out.text.as_str(), out.status),
        ("ipaddr=192.168.1.2", Some(0))
    );
    let out = rig.exec("printenv nothing").unwrap();
    assert_eq!(out.status, Some(1));
    let last = rig.f.wrapped.last().unwrap();
    assert!(last.ends_with(".'$?"), "{last}");
}
