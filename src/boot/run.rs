//! Executing a [`BootPlan`] on a board: the small loop that joins the
//! U-Boot driver (`lmx-console`) and the TFTP server's events.
//!
//! Every step is a U-Boot command sent through [`UBootShell`]; a load is
//! accepted only when `${filesize}` and `crc32 ADDR ${filesize}` match the
//! plan, and the boot command is sent only after every load was accepted.
//! While a `tftpboot` runs, the server's events drive a progress bar and a
//! watchdog: no request from the board within the timeout stops the run
//! with a hint, instead of U-Boot's endless `T T T`. Failures become
//! [`BootFailure`]s naming the step, the command, the console's last lines
//! and what to try. Decisions about U-Boot's line protocol stay in the
//! console crate; decisions about addresses stay in the plan.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lmx_boards::Board;
use lmx_builder::caps;
use lmx_builder::plan::{BootPlan, LoadStep, Step, UnpackStep};
use lmx_console::{ShellError, Tail, Transport, UBootShell};
use lmx_tftpd::Event;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A failed step, told so that a person can act on it.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{step} failed: {reason}\n  command: {command}{tail}")]
#[diagnostic(code(lmx::tftpboot), help("{hint}"))]
pub struct BootFailure {
    /// The step, e.g. `load rootfs.squashfs`.
    pub step: String,
    /// The U-Boot command that was running.
    pub command: String,
    /// What was expected and what was seen.
    pub reason: String,
    /// The console's last lines (empty when `reason` already has them).
    pub tail: TailText,
    /// What to try.
    pub hint: String,
}

/// Console lines for a [`BootFailure`] (nothing when empty).
#[derive(Debug, Default)]
pub struct TailText(pub Option<Tail>);

impl std::fmt::Display for TailText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(t) => write!(f, "{t}"),
            None => Ok(()),
        }
    }
}

impl BootFailure {
    fn shell(step: &str, command: &str, e: ShellError) -> BootFailure {
        let hint = miette::Diagnostic::help(&e)
            .map(|h| h.to_string())
            .unwrap_or_else(|| "look at the console lines above".into());
        BootFailure {
            step: step.into(),
            command: command.into(),
            reason: e.to_string(),
            tail: TailText(None),
            hint,
        }
    }
}

/// Network settings given to U-Boot before the first load.
#[derive(Debug, Clone)]
pub struct NetSetup {
    /// `ipaddr`.
    pub board_ip: Ipv4Addr,
    /// `serverip`.
    pub server_ip: Ipv4Addr,
    /// `tftpblocksize`, when the board says.
    pub blocksize: Option<u32>,
    /// `tftpwindowsize`, when the board says (1 = lock-step).
    pub windowsize: Option<u32>,
}

impl NetSetup {
    /// The variables, in order.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("ipaddr", self.board_ip.to_string()),
            ("serverip", self.server_ip.to_string()),
        ];
        if let Some(b) = self.blocksize {
            v.push(("tftpblocksize", b.to_string()));
        }
        if let Some(w) = self.windowsize {
            v.push(("tftpwindowsize", w.to_string()));
        }
        v
    }
}

/// Limits and texts of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Time for the first TFTP request of a load, and for the kernel banner.
    pub timeout: Duration,
    /// Time to reach the U-Boot prompt.
    pub attach_timeout: Duration,
    /// Userland marker.
    pub marker: String,
    /// Time from the kernel banner to the marker.
    pub marker_timeout: Duration,
    /// Copy the console to stdout from the boot command on.
    pub show_boot: bool,
    /// Where lmx listens (for hints).
    pub listen: String,
}

/// Step timings, in order.
#[derive(Debug, Default, Clone)]
pub struct Timings(pub Vec<(String, Duration)>);

impl Timings {
    fn add(&mut self, step: impl Into<String>, d: Duration) {
        self.0.push((step.into(), d));
    }

    /// The table printed at the end.
    pub fn table(&self) -> String {
        let w = self.0.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
        let mut out = String::from("step timings:\n");
        for (s, d) in &self.0 {
            out.push_str(&format!("  {s:<w$}  {:>8.3} s\n", d.as_secs_f64()));
        }
        out
    }
}

/// Parses `crc32 for 44000000 ... 440c8fff ==> 550c020d`.
pub fn parse_crc32(text: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| l.split("==>").nth(1))
        .filter_map(|v| u32::from_str_radix(v.trim(), 16).ok())
        .next_back()
}

/// Parses `Bytes transferred = 823296 (c9000 hex)`.
pub fn parse_bytes_transferred(text: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Bytes transferred = "))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .next_back()
}

/// Drives one plan on one board.
pub struct Runner<T: Transport> {
    shell: UBootShell<T>,
    events: mpsc::UnboundedReceiver<Event>,
    opts: RunOptions,
    net: NetSetup,
    files: Vec<(String, PathBuf)>,
    /// Step timings so far.
    pub timings: Timings,
    quiet_bars: bool,
}

fn say(line: &str) {
    eprintln!("{line}");
}

impl<T: Transport> Runner<T> {
    /// A runner over `shell`, fed by the TFTP server's `events`.
    pub fn new(
        shell: UBootShell<T>,
        events: mpsc::UnboundedReceiver<Event>,
        opts: RunOptions,
        net: NetSetup,
        files: Vec<(String, PathBuf)>,
    ) -> Self {
        let quiet_bars = !std::io::IsTerminal::is_terminal(&std::io::stderr());
        Runner {
            shell,
            events,
            opts,
            net,
            files,
            timings: Timings::default(),
            quiet_bars,
        }
    }

    /// The shell (e.g. for the interactive console afterwards).
    pub fn shell_mut(&mut self) -> &mut UBootShell<T> {
        &mut self.shell
    }

    /// Stops autoboot and reaches the prompt. `at_power_on`: the board was
    /// just powered on (a VM lmx started), so stay silent until it prints
    /// anything; a key sent before U-Boot listens is lost, and then it
    /// ignores the countdown keys and boots through.
    pub async fn attach(&mut self, since: Instant, at_power_on: bool) -> Result<(), BootFailure> {
        say("==> waiting for U-Boot (stopping autoboot)");
        let t = self.opts.attach_timeout;
        let r = if at_power_on {
            self.shell.attach_at_power_on(t).await
        } else {
            self.shell.attach(t).await
        };
        r.map_err(|e| BootFailure::shell("reaching the U-Boot prompt", "(attach)", e))?;
        let d = since.elapsed();
        say(&format!(
            "    at the U-Boot prompt after {:.3} s",
            d.as_secs_f64()
        ));
        self.timings.add("console open to U-Boot prompt", d);
        Ok(())
    }

    /// Asks U-Boot what it can unpack (`help`) when `plan` needs LZMA or
    /// `lzmadec` and the board file does not say whether this U-Boot has
    /// them; refuses the plan before any load when it cannot be done
    /// (see `lmx_builder::caps`). Does nothing when the board file knows.
    pub async fn check_caps(&mut self, board: &Board, plan: &BootPlan) -> Result<(), BootFailure> {
        let kernel_head = plan
            .loads()
            .find(|l| l.artifact == "kernel")
            .and_then(|l| self.files.iter().find(|(name, _)| *name == l.file))
            .and_then(|(_, path)| {
                let mut head = vec![0u8; lmx_builder::uimage::HEADER_LEN];
                let mut f = std::fs::File::open(path).ok()?;
                std::io::Read::read_exact(&mut f, &mut head).ok()?;
                Some(head)
            });
        let needs = caps::Needs::of_plan(plan, kernel_head.as_deref());
        if !caps::probe_wanted(board, needs) {
            return Ok(());
        }
        say("==> what this U-Boot can unpack (help)");
        let out = self
            .shell
            .exec("help", Duration::from_secs(10))
            .await
            .map_err(|e| BootFailure::shell("asking U-Boot for its commands", "help", e))?;
        let fail = |reason: String, hint: &str| BootFailure {
            step: "U-Boot capabilities".into(),
            command: "help".into(),
            reason,
            tail: TailText(None),
            hint: hint.into(),
        };
        let commands = caps::Commands::from_help(&out.text).map_err(|e| {
            fail(
                e.to_string(),
                "set uboot.lzma / uboot.lzmadec in the board file to skip this question",
            )
        })?;
        let notes = caps::check(board, Some(&commands), needs).map_err(|e| {
            fail(
                e.to_string(),
                "nothing was loaded; record the answer as uboot.lzma / uboot.lzmadec in the board file",
            )
        })?;
        for n in notes {
            say(&format!("    note: {n}"));
        }
        Ok(())
    }

    /// Runs every step of `plan` up to and including the boot command, then
    /// waits for the kernel banner and the userland marker.
    pub async fn run(&mut self, plan: &BootPlan) -> Result<(), BootFailure> {
        let at_prompt = Instant::now();
        let t = Instant::now();
        say("==> network settings");
        for (name, value) in self.net.vars() {
            let cmd = format!("setenv {name} {value}");
            self.shell
                .setenv(name, &value)
                .await
                .map_err(|e| BootFailure::shell("network settings", &cmd, e))?;
            say(&format!("    {cmd}"));
        }
        self.timings.add("network settings", t.elapsed());
        let sent: Vec<&str> = self.net.vars().iter().map(|(n, _)| *n).collect();
        for step in &plan.steps {
            match step {
                // The run's network settings, just sent, win over a plan's
                // own (a saved plan may carry other addresses).
                Step::Setenv { name, .. } if sent.contains(&name.as_str()) => {}
                Step::Setenv { name, commands, .. } => {
                    let t = Instant::now();
                    for c in commands {
                        self.shell
                            .run(c, Duration::from_secs(5))
                            .await
                            .map_err(|e| BootFailure::shell(&format!("setenv {name}"), c, e))?;
                    }
                    say(&format!("==> setenv {name} ({} line(s))", commands.len()));
                    self.timings.add(format!("setenv {name}"), t.elapsed());
                }
                Step::Load(l) => self.load(l).await?,
                Step::Unpack(u) => self.unpack(u).await?,
                Step::Boot { command } => {
                    self.boot(command, at_prompt).await?;
                }
            }
        }
        Ok(())
    }

    fn host_hint(&self) -> String {
        format!(
            "no TFTP request from {} within {} s: check the cable, the host firewall for UDP 69, and serverip (U-Boot was told {}; lmx listens on {})",
            self.net.board_ip,
            self.opts.timeout.as_secs(),
            self.net.server_ip,
            self.opts.listen
        )
    }

    async fn load(&mut self, l: &LoadStep) -> Result<(), BootFailure> {
        let step = format!("load {}", l.file);
        let cmd = l.command();
        say(&format!(
            "==> {cmd}  ({} bytes, crc32 {:08x})",
            l.size, l.crc32
        ));
        while self.events.try_recv().is_ok() {}
        let t = Instant::now();
        // Generous: the watchdog below catches a silent board early.
        let limit = self.opts.timeout
            + Duration::from_secs(30)
            + Duration::from_secs_f64(l.size as f64 / (256.0 * 1024.0));
        let board = IpAddr::V4(self.net.board_ip);
        let mut started = false;
        let mut refused: Option<String> = None;
        let mut server_error: Option<String> = None;
        let mut bar: Option<ProgressBar> = None;
        let deadline = tokio::time::Instant::now() + self.opts.timeout;
        let result = {
            let exec = self.shell.exec(&cmd, limit);
            tokio::pin!(exec);
            loop {
                tokio::select! {
                    r = &mut exec => break Some(r),
                    ev = self.events.recv() => match ev {
                        Some(Event::Started(info)) if info.client.ip() == board => {
                            started = true;
                            if info.file == l.file {
                                bar = Some(self_bar(self.quiet_bars, &l.file, info.size.unwrap_or(l.size)));
                                tracing::debug!(blksize = info.blksize, windowsize = info.windowsize, "transfer of {} started", info.file);
                            }
                        }
                        Some(Event::Progress { bytes, .. }) => {
                            if let Some(b) = &bar { b.set_position(bytes); }
                        }
                        Some(Event::Finished(s)) if s.info.client.ip() == board => {
                            if let Some(b) = bar.take() { b.finish_and_clear(); }
                            tracing::debug!(retransmits = s.retransmits, "transfer finished");
                        }
                        Some(Event::Failed(s)) if s.info.client.ip() == board => {
                            if let Some(b) = bar.take() { b.abandon(); }
                            server_error = s.error.clone();
                        }
                        Some(Event::Refused { client, file, reason, .. }) if client.ip() == board => {
                            started = true;
                            refused = Some(format!("lmx refused {file:?}: {reason}"));
                        }
                        _ => {}
                    },
                    _ = tokio::time::sleep_until(deadline), if !started => break None,
                }
            }
        };
        if let Some(b) = bar.take() {
            b.finish_and_clear();
        }
        let out = match result {
            None => {
                // Stop U-Boot's retries so the board is left at a prompt.
                let _ = self.shell.transport_mut().write_all(&[0x03]).await;
                let _ = self.shell.transport_mut().flush().await;
                return Err(BootFailure {
                    step,
                    command: cmd,
                    reason: format!(
                        "U-Boot did not ask for {} within {} s",
                        l.file,
                        self.opts.timeout.as_secs()
                    ),
                    tail: TailText(Some(self.shell.machine().tail())),
                    hint: self.host_hint(),
                });
            }
            Some(Err(e)) => return Err(BootFailure::shell(&step, &cmd, e)),
            Some(Ok(out)) => out,
        };
        if !out.success() {
            let mut reason = format!(
                "U-Boot reported {}",
                out.failure
                    .clone()
                    .or(out.status.map(|s| format!("status {s}")))
                    .unwrap_or_default()
            );
            if let Some(r) = refused.or(server_error) {
                reason.push_str(&format!("; {r}"));
            }
            let hint = if out.text.contains("reserved memory") {
                "the load address overlaps memory U-Boot reserved: check the board's ram section and the layout (lmx tftpboot --dry-run)".to_string()
            } else if out.text.contains("not found") || out.text.contains("File not found") {
                format!("lmx serves only the plan's files: {}", self.served_names())
            } else {
                self.host_hint()
            };
            return Err(BootFailure {
                step,
                command: cmd,
                reason,
                tail: TailText(Some(self.shell.machine().tail())),
                hint,
            });
        }
        if let Some(n) = parse_bytes_transferred(&out.text) {
            if n != l.size {
                return Err(self.mismatch(
                    &step,
                    &cmd,
                    format!(
                        "U-Boot received {n} bytes of {}, the plan expects {}",
                        l.file, l.size
                    ),
                    l,
                ));
            }
        }
        let load_time = t.elapsed();
        self.verify(&step, l.addr, l.size, l.crc32, &l.file).await?;
        let total = t.elapsed();
        say(&format!(
            "    ok: {} bytes in {:.3} s ({:.1} MiB/s), filesize and crc32 {:08x} match",
            l.size,
            load_time.as_secs_f64(),
            l.size as f64 / (1 << 20) as f64 / load_time.as_secs_f64().max(1e-6),
            l.crc32
        ));
        self.timings.add(
            format!("load {} ({} bytes) + verify", l.file, l.size),
            total,
        );
        Ok(())
    }

    fn served_names(&self) -> String {
        self.files
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn mismatch(&self, step: &str, cmd: &str, reason: String, l: &LoadStep) -> BootFailure {
        let path = self
            .files
            .iter()
            .find(|(n, _)| *n == l.file)
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_else(|| l.file.clone());
        BootFailure {
            step: step.into(),
            command: cmd.into(),
            reason: format!("{reason}; not booting"),
            tail: TailText(Some(self.shell.machine().tail())),
            hint: format!(
                "{path} changed after the plan was made, or the transfer was corrupted: rebuild the plan (run without --manifest, or lmx build again) and retry"
            ),
        }
    }

    /// `${filesize}` and `crc32 ADDR ${filesize}` against the plan.
    async fn verify(
        &mut self,
        step: &str,
        addr: u64,
        size: u64,
        crc: u32,
        file: &str,
    ) -> Result<(), BootFailure> {
        let fs = self
            .shell
            .printenv("filesize")
            .await
            .map_err(|e| BootFailure::shell(step, "printenv filesize", e))?;
        let got = fs
            .as_deref()
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
        let l = LoadStep {
            artifact: String::new(),
            file: file.into(),
            addr,
            phys: addr,
            size,
            crc32: crc,
        };
        if got != Some(size) {
            return Err(self.mismatch(
                step,
                "printenv filesize",
                format!(
                    "${{filesize}} is {} for {file}, the plan expects {size:x} ({size} bytes)",
                    fs.as_deref().unwrap_or("unset")
                ),
                &l,
            ));
        }
        let cmd = l.crc_command();
        let out = self
            .shell
            .run(&cmd, Duration::from_secs(30))
            .await
            .map_err(|e| BootFailure::shell(step, &cmd, e))?;
        match parse_crc32(&out.text) {
            Some(c) if c == crc => Ok(()),
            Some(c) => Err(self.mismatch(
                step,
                &cmd,
                format!(
                    "crc32 mismatch for {file}: U-Boot computed {c:08x} over {size} bytes at {addr:#x}, the plan expects {crc:08x}"
                ),
                &l,
            )),
            None => Err(BootFailure {
                step: step.into(),
                command: cmd,
                reason: format!("no `==> CRC` line in the output: {:?}", out.text),
                tail: TailText(Some(self.shell.machine().tail())),
                hint: "this U-Boot may lack the crc32 command (CONFIG_CMD_CRC32); lmx cannot verify loads without it".into(),
            }),
        }
    }

    async fn unpack(&mut self, u: &UnpackStep) -> Result<(), BootFailure> {
        let step = format!("unpack {}", u.artifact);
        let cmd = u.command();
        say(&format!(
            "==> {cmd}  ({} bytes, crc32 {:08x})",
            u.size, u.crc32
        ));
        let t = Instant::now();
        self.shell
            .run(&cmd, Duration::from_secs(120))
            .await
            .map_err(|e| BootFailure::shell(&step, &cmd, e))?;
        let name = format!("{} (unpacked)", u.artifact);
        self.verify(&step, u.dst, u.size, u.crc32, &name).await?;
        say(&format!(
            "    ok: {} bytes unpacked in {:.3} s, crc32 matches",
            u.size,
            t.elapsed().as_secs_f64()
        ));
        self.timings
            .add(format!("unpack {} + verify", u.artifact), t.elapsed());
        Ok(())
    }

    async fn boot(&mut self, command: &str, at_prompt: Instant) -> Result<(), BootFailure> {
        let step = "boot";
        say(&format!("==> {command}"));
        // The boot command never returns to the prompt, so it cannot carry
        // the driver's end marker: store it with a verified setenv and
        // start it with a short `run`.
        self.shell
            .setenv("lmxboot", command)
            .await
            .map_err(|e| BootFailure::shell(step, command, e))?;
        let t = Instant::now();
        let io = self.shell.transport_mut();
        io.write_all(b"run lmxboot\r")
            .await
            .and(io.flush().await)
            .map_err(|e| BootFailure {
                step: step.into(),
                command: command.into(),
                reason: format!("writing to the console: {e}"),
                tail: TailText(None),
                hint: "was the adapter unplugged or the emulator stopped?".into(),
            })?;
        let failures: Vec<String> = self
            .shell
            .machine()
            .dialect()
            .failure_texts
            .iter()
            .cloned()
            .chain(["Kernel panic".to_string(), "U-Boot 20".to_string()])
            .collect();
        let mut watch = Watch::new(self.opts.show_boot);
        let kernel_wait = self.opts.timeout.max(Duration::from_secs(30));
        let io = self.shell.transport_mut();
        match watch
            .until(io, &["Starting kernel", "Linux version"], &failures, kernel_wait)
            .await
        {
            Ok(_) => {}
            Err(w) => return Err(w.failure(step, command, "the kernel to start", "check the boot command, the image format (lmx image info FILE) and the addresses (--dry-run)")),
        }
        self.timings
            .add("boot command to kernel start", t.elapsed());
        let k = Instant::now();
        say("    kernel started");
        if !watch.seen("Linux version") {
            watch
                .until(io, &["Linux version"], &failures, self.opts.timeout)
                .await
                .map_err(|w| {
                    w.failure(
                        step,
                        command,
                        "the kernel banner (\"Linux version\")",
                        "the kernel printed nothing: check that it is built for this board and that console= names the board's serial port",
                    )
                })?;
        }
        say("    kernel banner seen");
        let marker = self.opts.marker.clone();
        watch
            .until(io, &[marker.as_str()], &failures, self.opts.marker_timeout)
            .await
            .map_err(|w| {
                w.failure(
                    step,
                    command,
                    &format!("the userland marker {marker:?}"),
                    "if the kernel could not mount its root, check root= and the phram region (--dry-run); if init ran, check --marker",
                )
            })?;
        if self.opts.show_boot {
            watch.finish_line(io, Duration::from_millis(300)).await;
        }
        say(&format!("    userland marker {marker:?} seen"));
        self.timings
            .add("kernel start to userland marker", k.elapsed());
        self.timings
            .add("U-Boot prompt to userland marker", at_prompt.elapsed());
        Ok(())
    }
}

fn self_bar(quiet: bool, name: &str, size: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(
        Some(size),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "    {msg:<20} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta:>4}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_message(name.to_string());
    bar
}

/// Reads raw console text after the boot command and matches lines.
struct Watch {
    lines: VecDeque<String>,
    partial: String,
    all: String,
    echo: bool,
}

struct WatchError {
    what: String,
    tail: Vec<String>,
}

impl WatchError {
    fn failure(self, step: &str, command: &str, waiting: &str, hint: &str) -> BootFailure {
        BootFailure {
            step: step.into(),
            command: command.into(),
            reason: format!("{} while waiting for {waiting}", self.what),
            tail: TailText(Some(Tail(self.tail))),
            hint: hint.into(),
        }
    }
}

impl Watch {
    fn new(echo: bool) -> Watch {
        Watch {
            lines: VecDeque::new(),
            partial: String::new(),
            all: String::new(),
            echo,
        }
    }

    fn seen(&self, text: &str) -> bool {
        self.all.contains(text)
    }

    fn tail(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lines.iter().cloned().collect();
        if !self.partial.trim().is_empty() {
            v.push(self.partial.clone());
        }
        let n = v.len().saturating_sub(12);
        v.split_off(n)
    }

    /// Appends console bytes: echoed when asked, split into lines.
    fn take(&mut self, bytes: &[u8]) {
        let chunk = String::from_utf8_lossy(bytes).into_owned();
        if self.echo {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        }
        self.all.push_str(&chunk);
        for c in chunk.chars() {
            if c == '\n' {
                let line = std::mem::take(&mut self.partial)
                    .trim_end_matches('\r')
                    .to_string();
                self.lines.push_back(line);
                if self.lines.len() > 40 {
                    self.lines.pop_front();
                }
            } else {
                self.partial.push(c);
            }
        }
    }

    /// Reads on until the current console line ends, at most `timeout`:
    /// echoed console text then ends with its line instead of running into
    /// lmx's own output.
    async fn finish_line<T: Transport + ?Sized>(&mut self, io: &mut T, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 4096];
        while !self.partial.is_empty() {
            tokio::select! {
                r = io.read(&mut buf) => match r {
                    Ok(n) if n > 0 => self.take(&buf[..n]),
                    _ => return,
                },
                _ = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Reads until one of `want` appears (Ok) or one of `fail` or the
    /// timeout (Err). Text already seen counts.
    async fn until<T: Transport + ?Sized>(
        &mut self,
        io: &mut T,
        want: &[&str],
        fail: &[String],
        timeout: Duration,
    ) -> Result<String, WatchError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut scan_from = 0usize;
        let mut buf = vec![0u8; 4096];
        loop {
            // Failures and wants are matched on complete lines and the partial one.
            let text = &self.all[scan_from.min(self.all.len())..];
            if let Some(w) = want.iter().find(|w| self.all.contains(**w)) {
                return Ok(w.to_string());
            }
            if let Some(f) = fail.iter().find(|f| text.contains(f.as_str())) {
                return Err(WatchError {
                    what: format!("the console showed {f:?}"),
                    tail: self.tail(),
                });
            }
            scan_from = self.all.len().saturating_sub(64);
            let n = tokio::select! {
                r = io.read(&mut buf) => match r {
                    Ok(0) => return Err(WatchError { what: "the console closed".into(), tail: self.tail() }),
                    Ok(n) => n,
                    Err(e) => return Err(WatchError { what: format!("reading the console failed: {e}"), tail: self.tail() }),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(WatchError {
                        what: format!("nothing matched within {} s", timeout.as_secs()),
                        tail: self.tail(),
                    })
                }
            };
            self.take(&buf[..n]);
            // Keep the search text bounded.
            if self.all.len() > 1 << 20 {
                let cut = self.all.len() - (1 << 16);
                let cut = (cut..self.all.len())
                    .find(|i| self.all.is_char_boundary(*i))
                    .unwrap_or(self.all.len());
                self.all.drain(..cut);
                scan_from = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uboot_output() {
        assert_eq!(
            parse_crc32("crc32 for 44000000 ... 440c8fff ==> 550c020d"),
            Some(0x550c_020d)
        );
        assert_eq!(parse_crc32("nothing"), None);
        assert_eq!(
            parse_bytes_transferred(
                "TFTP from server\n\t 5.4 MiB/s\nBytes transferred = 823296 (c9000 hex)"
            ),
            Some(823_296)
        );
    }

    #[test]
    fn net_setup_lists_board_values() {
        let n = NetSetup {
            board_ip: "192.168.77.2".parse().unwrap(),
            server_ip: "192.168.77.1".parse().unwrap(),
            blocksize: Some(1468),
            windowsize: None,
        };
        assert_eq!(
            n.vars(),
            vec![
                ("ipaddr", "192.168.77.2".to_string()),
                ("serverip", "192.168.77.1".to_string()),
                ("tftpblocksize", "1468".to_string())
            ]
        );
    }
}
